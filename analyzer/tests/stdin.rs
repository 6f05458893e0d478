//! `shadowtap analyze -`: whatever comes on standard input (a capture,
//! the sensor's records, a HAR file) is recognised by its first bytes and
//! gives the report its file gives, as in
//! `kubectl logs … | grep '^{' | shadowtap analyze -`.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The JSON report of `analyze` on `args`, with `stdin` piped in; its
/// exit status.
fn report(args: &[&str], stdin: &[u8]) -> (Value, Option<i32>) {
    // One key for every run: the HAR's principal fingerprints are made here.
    let key = std::env::temp_dir().join(format!("shadowtap-stdin-{}.key", std::process::id()));
    std::fs::write(&key, b"shadowtap stdin test fingerprint key").expect("key");
    let mut child = Command::new(env!("CARGO_BIN_EXE_shadowtap"))
        .current_dir(ROOT)
        .args([
            "analyze",
            "-q",
            "--format",
            "json",
            "--fingerprint-key-file",
        ])
        .arg(&key)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running shadowtap");
    let mut pipe = child.stdin.take().expect("stdin");
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // A reader that stops early closes the pipe: not this test's concern.
        let _ = pipe.write_all(&input);
    });
    let out = child.wait_with_output().expect("shadowtap runs");
    writer.join().expect("writer");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (report, out.status.code())
}

#[test]
fn every_input_kind_reads_the_same_from_stdin_as_from_its_file() {
    for (file, kind) in [
        ("samples/demo-api.pcap", "capture"),
        ("tests/fixtures/golden/demo-api/expected.jsonl", "records"),
        ("analyzer/testdata/har/two-entries.har", "har"),
    ] {
        let bytes = std::fs::read(format!("{ROOT}/{file}")).expect(file);
        let (mut from_file, file_status) = report(&[file], b"");
        let (mut from_stdin, stdin_status) = report(&["-"], &bytes);
        assert_eq!(file_status, Some(0), "{file}");
        assert_eq!(stdin_status, Some(0), "{file} on stdin");
        assert_eq!(from_file["inputs"][0]["kind"], kind, "{file}");
        assert_eq!(from_stdin["inputs"][0]["kind"], kind, "{file} on stdin");
        assert_eq!(from_stdin["inputs"][0]["path"], "-");
        assert!(
            from_file["summary"]["requests"].as_u64() > Some(0),
            "{file}: {}",
            from_file["summary"]
        );
        // The rest of the report is the same.
        from_file["inputs"] = Value::Null;
        from_stdin["inputs"] = Value::Null;
        assert_eq!(from_file, from_stdin, "{file}");
    }
}

#[test]
fn log_lines_on_stdin_are_bad_lines_of_a_records_stream() {
    // `kubectl logs` without the `grep '^{'`: the counter lines are counted
    // as lines that are not records, the records still read.
    let records = std::fs::read_to_string(format!(
        "{ROOT}/tests/fixtures/golden/demo-api/expected.jsonl"
    ))
    .expect("records");
    let total = records.lines().count();
    let mixed = format!(
        "{records}shadowtap-sensor: 60.0 s: 1532 packets, 2.1 MB, 3 flows, {total} exchanges, {total} written\n"
    );
    let (report, status) = report(&["-"], mixed.as_bytes());
    assert_eq!(status, Some(3));
    assert_eq!(report["inputs"][0]["kind"], "records");
    assert_eq!(report["summary"]["requests"], total as u64);
}
