//! Golden outputs: the exact records for captures shipped in the repo.
//!
//! Regenerate after an intended change with `SHADOWTAP_BLESS=1 cargo test
//! -p shadowtap-tests golden` and review the diff.

use std::path::Path;

use crate::support::run_capture;

fn check(capture: &str, golden: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pcap = std::fs::read(root.join(capture)).expect("capture");
    let (records, _) = run_capture(pcap);
    let got: String = records
        .iter()
        .map(|r| serde_json::to_string(r).expect("serializes") + "\n")
        .collect();
    let path = root.join(golden);
    if std::env::var_os("SHADOWTAP_BLESS").is_some() {
        std::fs::write(&path, &got).expect("write golden");
    }
    let want = std::fs::read_to_string(&path).expect("golden file (bless to create)");
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "{golden}: record {} differs", i + 1);
    }
    assert_eq!(
        got.lines().count(),
        want.lines().count(),
        "{golden}: record count"
    );
}

/// The sensor writes records with `ExchangeRecord::write_json`, which must
/// say exactly what serde says.
#[test]
fn direct_json_matches_serde() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for capture in [
        "../samples/demo-api.pcap",
        "fixtures/pcapplusplus/ExamplesTest/pcap_examples/http-packets2.pcap",
    ] {
        let (records, _) = run_capture(std::fs::read(root.join(capture)).expect("capture"));
        for (i, r) in records.iter().enumerate() {
            let mut direct = Vec::new();
            r.write_json(&mut direct);
            let serde = serde_json::to_string(r).expect("serializes");
            assert_eq!(
                String::from_utf8_lossy(&direct),
                serde,
                "{capture}: record {}",
                i + 1
            );
        }
    }
}

#[test]
fn demo_api_sample() {
    check(
        "../samples/demo-api.pcap",
        "fixtures/golden/demo-api/expected.jsonl",
    );
}

#[test]
fn pcapplusplus_http_packets2() {
    check(
        "fixtures/pcapplusplus/ExamplesTest/pcap_examples/http-packets2.pcap",
        "fixtures/golden/http-packets2/expected.jsonl",
    );
}

/// The sample's client logged what it sent and received (method, path,
/// status, response body bytes on the wire after de-chunking); the sensor
/// must find exactly those exchanges.
#[test]
fn demo_api_matches_what_the_client_saw() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (records, counters) =
        run_capture(std::fs::read(root.join("samples/demo-api.pcap")).expect("sample"));
    let mut ours: Vec<String> = records
        .iter()
        .map(|r| {
            let bytes = r.response.as_ref().map_or(0, |m| m.body.bytes);
            format!(
                "{} {} {} {bytes}",
                r.method,
                r.path,
                r.status.map_or(0, u32::from)
            )
        })
        .collect();
    let log =
        std::fs::read_to_string(root.join("samples/demo-api.expected.txt")).expect("client log");
    let mut theirs: Vec<String> = log
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);
    assert_eq!(counters.reassembly.gaps, 0);
    assert!(records
        .iter()
        .all(|r| r.anomalies.is_empty() && !r.flags.truncated && !r.flags.gap));
}
