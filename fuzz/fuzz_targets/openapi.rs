//! An OpenAPI or Swagger contract (JSON or YAML) loaded, and a fixed set
//! of records analysed against it and rendered in every report format.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shadowtap_analyzer::fuzzing::openapi(data);
});
