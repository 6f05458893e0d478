//! The HTTP/1.x connection parser on arbitrary client and server bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| shadowtap_proto::internal::fuzz_http(data));
