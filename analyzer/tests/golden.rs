//! The shipped sample against its contract: exactly the five deliberate
//! gaps are found, and the whole JSON report is pinned.
//!
//! Re-bless after an intended change with
//! `SHADOWTAP_BLESS=1 cargo test -p shadowtap-analyzer --test golden`
//! and review the diff of `analyzer/tests/golden/demo-api.report.json`.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn analyze(extra: &[&str]) -> (Value, Option<i32>) {
    let out = Command::new(env!("CARGO_BIN_EXE_shadowtap"))
        .current_dir(ROOT)
        .args([
            "analyze",
            "-q",
            "--format",
            "json",
            "samples/demo-api.pcap",
            "--spec",
            "samples/demo-api.openapi.yaml",
        ])
        .args(extra)
        .output()
        .expect("running shadowtap");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON: {e}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (json, out.status.code())
}

#[test]
fn the_sample_has_exactly_the_deliberate_gaps() {
    let (report, code) = analyze(&[]);
    assert_eq!(code, Some(0));
    let found: Vec<(String, String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let kind = match f["drift"].as_str() {
                Some(d) => format!("drift/{d}"),
                None => f["kind"].as_str().unwrap().to_owned(),
            };
            (
                kind,
                f["method"].as_str().unwrap_or("").to_owned(),
                f["template"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected = [
        ("undocumented", "GET", "/api/v1/reports/export"),
        ("zombie", "GET", "/api/v1/catalog"),
        ("drift/auth", "GET", "/api/v1/health"),
        ("drift/query_parameter", "GET", "/api/v1/users"),
        ("drift/response_field", "GET", "/api/v1/users/me"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(k, m, t)| ((*k).to_owned(), (*m).to_owned(), (*t).to_owned()))
        .collect();
    assert_eq!(found, expected);
    // Every finding names the contract and its version.
    for f in report["findings"].as_array().unwrap() {
        assert_eq!(f["spec_file"], "samples/demo-api.openapi.yaml");
        assert_eq!(f["spec_version"], "1.4.0");
    }
    // The contract's template wins over raw slugs.
    let templates: Vec<&str> = report["services"][0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["template"].as_str().unwrap())
        .collect();
    assert!(
        templates.contains(&"/api/v1/products/by-slug/{slug}"),
        "{templates:?}"
    );
}

#[test]
fn fail_on_sets_the_exit_status() {
    assert_eq!(analyze(&["--fail-on", "zombie"]).1, Some(4));
    assert_eq!(analyze(&["--fail-on", "shadow,unused"]).1, Some(0));
    assert_eq!(analyze(&["--fail-on", "drift"]).1, Some(4));
}

#[test]
fn golden_report() {
    let (mut report, _) = analyze(&[]);
    // The generator line carries the version; pin the rest.
    report["generator"] = Value::from("shadowtap");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/demo-api.report.json");
    let actual = serde_json::to_string_pretty(&report).unwrap() + "\n";
    if std::env::var_os("SHADOWTAP_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; bless it with SHADOWTAP_BLESS=1", path.display()));
    if expected != actual {
        let diff_at = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "the report differs from {} from line {} on:\n expected: {:?}\n actual:   {:?}\n(re-bless with SHADOWTAP_BLESS=1 if intended)",
            path.display(),
            diff_at + 1,
            expected.lines().nth(diff_at),
            actual.lines().nth(diff_at),
        );
    }
}
