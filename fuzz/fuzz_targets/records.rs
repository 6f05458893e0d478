//! Exchange records as `analyze` reads them (JSON Lines, or HAR when the
//! first byte is odd) through the whole analysis and every report format.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| shadowtap_analyzer::fuzzing::records(data));
