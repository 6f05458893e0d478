//! pcap/pcapng reader on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| shadowtap_sensor::internal::fuzz_file_reader(data));
