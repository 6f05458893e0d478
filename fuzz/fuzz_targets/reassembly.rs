//! A capture file through defragmentation, flows, reassembly, HTTP and records,
//! with small caps so eviction and overflow paths are reached.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| shadowtap_sensor::internal::fuzz_pipeline(data));
