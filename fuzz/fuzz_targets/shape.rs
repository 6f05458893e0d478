//! A JSON body sample through the shape scanner: the rendered shape must be
//! the same from a fresh and a reused scanner, and canonical.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| shadowtap_proto::internal::fuzz_shape(data));
