//! Replays the committed fuzz corpora (`fuzz/regressions/<target>/`) through
//! the fuzz targets' own entry points, on stable and in every `cargo test`
//! (reliability target S1). Each input once reached code no other input
//! reached, or once made a target fail; none may panic now. The corpora are
//! refreshed with `cargo xtask fuzz --save-regressions`.

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn openapi(data: &[u8]) {
    shadowtap_analyzer::fuzzing::openapi(data);
}

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions")
}

/// Every input of `target`'s corpus, sorted by name.
fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = regressions().join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let files = inputs(target);
    assert!(
        !files.is_empty(),
        "fuzz/regressions/{target} is empty: run `cargo xtask fuzz --save-regressions {target}`"
    );
    let mut failed = Vec::new();
    for file in &files {
        let data = fs::read(file).unwrap();
        if panic::catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(file.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} regression inputs panic: {failed:?}",
        failed.len(),
        files.len()
    );
}

/// The binaries of `fuzz/Cargo.toml`, each of which has a test below.
fn fuzz_targets() -> Vec<String> {
    let manifest = fs::read_to_string(regressions().join("../Cargo.toml")).unwrap();
    let mut targets: Vec<String> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|bin| {
            let line = bin.lines().find(|l| l.starts_with("name = "))?;
            Some(
                line.trim_start_matches("name = ")
                    .trim_matches('"')
                    .to_owned(),
            )
        })
        .collect();
    targets.sort();
    targets
}

#[test]
fn every_fuzz_target_has_a_regression_corpus_and_no_other() {
    let mut dirs: Vec<String> = fs::read_dir(regressions())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 7, "{dirs:?}");
    assert_eq!(dirs, fuzz_targets());
}

#[test]
fn file_reader_corpus_replays() {
    replay("file_reader", shadowtap_sensor::internal::fuzz_file_reader);
}

#[test]
fn packet_decoder_corpus_replays() {
    replay("packet_decoder", shadowtap_proto::internal::fuzz_decode);
}

#[test]
fn reassembly_corpus_replays() {
    replay("reassembly", shadowtap_sensor::internal::fuzz_pipeline);
}

#[test]
fn http_corpus_replays() {
    replay("http", shadowtap_proto::internal::fuzz_http);
}

#[test]
fn shape_corpus_replays() {
    replay("shape", shadowtap_proto::internal::fuzz_shape);
}

#[test]
fn records_corpus_replays() {
    replay("records", shadowtap_analyzer::fuzzing::records);
}

#[test]
fn openapi_corpus_replays() {
    replay("openapi", openapi);
}

/// The replay fails, naming the inputs, when a target panics on them.
#[test]
#[should_panic(expected = "regression inputs panic")]
fn a_target_that_panics_fails_the_replay() {
    replay("packet_decoder", |_| panic!("planted"));
}
