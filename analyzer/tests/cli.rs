//! Bad input to `shadowtap analyze`: a clear message and the documented
//! exit status, never a panic; what could be read is still analysed.

use std::path::PathBuf;
use std::process::{Command, Output};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shadowtap"))
        .current_dir(ROOT)
        .args(args)
        .output()
        .expect("running shadowtap")
}

fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shadowtap-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_missing_input_is_an_error() {
    let o = run(&["analyze", "-q", "no/such/file.pcap"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("no/such/file.pcap"), "{}", stderr(&o));
}

#[test]
fn garbage_is_named_and_the_rest_still_analysed() {
    let junk = scratch("junk.bin", b"\x00\x01garbage that is no capture");
    let o = run(&[
        "analyze",
        "-q",
        "--format",
        "json",
        junk.to_str().unwrap(),
        "samples/demo-api.pcap",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not a pcap/pcapng capture"),
        "{}",
        stderr(&o)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["summary"]["requests"], 85);
}

#[test]
fn a_truncated_capture_is_analysed_up_to_the_damage() {
    let whole = std::fs::read(format!("{ROOT}/samples/demo-api.pcap")).unwrap();
    let cut = scratch("cut.pcap", &whole[..whole.len() * 2 / 3 + 7]);
    let o = run(&["analyze", "-q", "--format", "json", cut.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("cut.pcap"), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let n = report["summary"]["requests"].as_u64().unwrap();
    assert!(n > 20 && n < 85, "{n}");
}

#[test]
fn bad_record_lines_are_counted_not_fatal() {
    let line = r#"{"schema":1,"ts":"2024-01-01T00:00:00Z","client":"10.0.0.1:5000","server":"10.0.0.2:80","host":"api.example.com","method":"GET","path":"/v1/users/7","version":"1.1","status":200,"request":{"headers":["host"],"body":{"framing":"none","wire_bytes":0,"bytes":0,"decoded_bytes":0}},"auth":{"scheme":"none"},"flags":{}}"#;
    let text = format!("{line}\nnot json at all\n{line}\n{{\"schema\":1}}\n");
    let path = scratch("records.jsonl", text.as_bytes());
    let o = run(&["analyze", "-q", "--format", "json", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("2 line(s) are not exchange records (first: line 2"),
        "{}",
        stderr(&o)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["summary"]["requests"], 2);
}

#[test]
fn a_broken_contract_names_the_file_and_pointer() {
    let spec = scratch(
        "broken.yaml",
        b"openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get:\n      responses: nope\n",
    );
    let o = run(&[
        "analyze",
        "-q",
        "samples/demo-api.pcap",
        "--spec",
        spec.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("broken.yaml"), "{err}");
    assert!(err.contains("/paths/~1a/get/responses"), "{err}");
}

#[test]
fn a_broken_har_is_an_error_and_bad_entries_are_counted() {
    let har = scratch("broken.har", b"{\"log\": {\"entries\": [ {\"oops\": 1} ]}}");
    let o = run(&["analyze", "-q", har.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not a valid HAR file"),
        "{}",
        stderr(&o)
    );
    let har = scratch(
        "entries.har",
        br#"{"log":{"entries":[
          {"startedDateTime":"2024-05-01T12:00:00Z","request":{"method":"GET","url":"http://a.example/x/1"},"response":{"status":200}},
          {"startedDateTime":"never","request":{"method":"GET","url":"http://a.example/x/2"},"response":{"status":200}}]}}"#,
    );
    let o = run(&["analyze", "-q", "--format", "json", har.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 HAR entries could not be read"),
        "{}",
        stderr(&o)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["summary"]["requests"], 1);
}

#[test]
fn unknown_format_and_fail_on_kinds_are_usage_errors() {
    let o = run(&["analyze", "samples/demo-api.pcap", "--format", "pdf"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown format `pdf`"),
        "{}",
        stderr(&o)
    );
    let o = run(&["analyze", "samples/demo-api.pcap", "--fail-on", "ghost"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown finding kind `ghost`"),
        "{}",
        stderr(&o)
    );
}
