//! Link, IP and TCP header decoding of one frame, for every link type.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| shadowtap_proto::internal::fuzz_decode(data));
