//! The store on both backends: SQLite (a file) and PostgreSQL (the server
//! `cargo xtask test` starts; its URL comes in `SHADOWTAP_TEST_POSTGRES_URL`).
//! The same scenarios run on each.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/demo-api.pcap");

fn shadowtap(args: &[&str]) -> (Value, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_shadowtap"))
        .args(args)
        .output()
        .expect("running shadowtap");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("shadowtap {args:?}: not JSON ({e}); stderr: {stderr}"));
    (json, out.status.code().unwrap_or(-1))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shadowtap-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `shadowtap analyze --db DB INPUT` with a JSON report.
fn analyze_into(db: &str, input: &Path) -> (Value, i32) {
    shadowtap(&[
        "analyze",
        "-q",
        "--format",
        "json",
        "--db",
        db,
        input.to_str().unwrap(),
    ])
}

/// A fresh, empty database URL per test and backend.
fn databases(test: &str) -> Vec<(String, String)> {
    let mut out = vec![(
        "sqlite".to_owned(),
        scratch(test).join("inventory.db").display().to_string(),
    )];
    match std::env::var("SHADOWTAP_TEST_POSTGRES_URL") {
        Ok(admin) => {
            let name = format!("shadowtap_{test}_{}", std::process::id());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                sqlx::any::install_default_drivers();
                let pool = sqlx::AnyPool::connect(&admin).await.expect("connecting to the test PostgreSQL");
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                    .execute(&pool)
                    .await
                    .unwrap();
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
            });
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            out.push(("postgres".to_owned(), format!("{base}/{name}")));
        }
        Err(_) if std::env::var_os("SHADOWTAP_UNDER_XTASK").is_some() => {
            panic!("SHADOWTAP_TEST_POSTGRES_URL is not set although the test runs under cargo xtask test")
        }
        Err(_) => eprintln!(
            "SKIPPING the PostgreSQL half of `{test}`: SHADOWTAP_TEST_POSTGRES_URL is not set (`cargo xtask test` sets it)"
        ),
    }
    out
}

/// `(service, method, template) → requests` of a report.
fn endpoints(report: &Value) -> Vec<(String, String, String, u64)> {
    let mut v = Vec::new();
    for s in report["services"].as_array().unwrap() {
        for e in s["endpoints"].as_array().unwrap() {
            v.push((
                s["name"].as_str().unwrap().to_owned(),
                e["method"].as_str().unwrap().to_owned(),
                e["template"].as_str().unwrap().to_owned(),
                e["requests"].as_u64().unwrap(),
            ));
        }
    }
    v
}

#[test]
fn analysing_the_same_capture_twice_does_not_double_count() {
    for (backend, db) in databases("twice") {
        let (first, code) = shadowtap(&["analyze", "-q", "--format", "json", "--db", &db, SAMPLE]);
        assert_eq!(code, 0, "{backend}");
        assert_eq!(first["summary"]["requests"], 85, "{backend}");
        assert_eq!(first["inputs"][0]["already_ingested"], false, "{backend}");
        let (second, code) = shadowtap(&["analyze", "-q", "--format", "json", "--db", &db, SAMPLE]);
        assert_eq!(code, 0, "{backend}");
        assert_eq!(second["inputs"][0]["already_ingested"], true, "{backend}");
        assert_eq!(endpoints(&first), endpoints(&second), "{backend}");
        assert_eq!(first["services"], second["services"], "{backend}");
    }
}

#[test]
fn report_prints_the_stored_analysis() {
    for (backend, db) in databases("report") {
        let (analysed, _) = shadowtap(&["analyze", "-q", "--format", "json", "--db", &db, SAMPLE]);
        let (reported, code) = shadowtap(&["report", "--format", "json", "--db", &db]);
        assert_eq!(code, 0, "{backend}");
        assert_eq!(
            analysed, reported,
            "{backend}: report must equal the analysis it stored"
        );
    }
}

/// Writes the sample's records as JSON Lines, split into two files.
fn split_records(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    split_capture_records(Path::new(SAMPLE), dir)
}

/// Writes a capture's records as JSON Lines: all of them, and split into
/// two files at the middle record.
fn split_capture_records(capture: &Path, dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let all = dir.join("all.jsonl");
    // The records the sensor would write, made in process by its library.
    let mut engine =
        shadowtap_proto::engine::Engine::new(shadowtap_proto::engine::EngineConfig::new(
            shadowtap_proto::record::FingerprintKey::new([9; 32]),
        ));
    let mut lines = String::new();
    shadowtap_sensor::runtime::read_captures(
        &[capture.to_path_buf()],
        &mut engine,
        &shadowtap_sensor::runtime::ReadOptions {
            program: "test",
            progress: false,
        },
        &mut |records| {
            for r in records.drain(..) {
                lines.push_str(&serde_json::to_string(&r)?);
                lines.push('\n');
            }
            Ok(())
        },
    )
    .unwrap();
    std::fs::write(&all, lines).unwrap();
    let text = std::fs::read_to_string(&all).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (a, b) = lines.split_at(lines.len() / 2);
    let (pa, pb) = (dir.join("first.jsonl"), dir.join("second.jsonl"));
    std::fs::write(&pa, a.join("\n") + "\n").unwrap();
    std::fs::write(&pb, b.join("\n") + "\n").unwrap();
    (all, pa, pb)
}

#[test]
fn two_halves_into_one_database_equal_the_whole() {
    let dir = scratch("halves-records");
    let (all, first, second) = split_records(&dir);
    let (whole, _) = shadowtap(&["analyze", "-q", "--format", "json", all.to_str().unwrap()]);
    for (backend, db) in databases("halves") {
        let (_, code) = analyze_into(&db, &first);
        assert_eq!(code, 0, "{backend}");
        let (split, code) = analyze_into(&db, &second);
        assert_eq!(code, 0, "{backend}");
        assert_eq!(endpoints(&split), endpoints(&whole), "{backend}");
        assert_eq!(split["services"], whole["services"], "{backend}");
        assert_eq!(split["findings"], whole["findings"], "{backend}");
    }
}

/// Baselines persist: two hours of scenario traffic with every anomaly
/// kind, analysed as two halves into one database, give exactly the
/// anomalies of the whole (the split falls inside a detector window, which
/// the second run continues and judges whole).
#[test]
fn anomalies_of_two_halves_equal_the_whole() {
    let dir = scratch("halves-anomalies");
    let pcap = dir.join("scenario.pcap");
    let mut config = shadowtap_scenario::Config::new(11, 2.0, 5.0);
    config.anomalies = shadowtap_scenario::AnomalyPlan::all(1);
    let file = std::io::BufWriter::new(std::fs::File::create(&pcap).unwrap());
    shadowtap_scenario::generate(&config, file).expect("generating the scenario");
    let (all, first, second) = split_capture_records(&pcap, &dir);
    let (whole, code) = shadowtap(&["analyze", "-q", "--format", "json", all.to_str().unwrap()]);
    assert_eq!(code, 0);
    let kinds = |report: &Value| -> std::collections::BTreeSet<String> {
        report["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(
        kinds(&whole).len() >= 8,
        "the scenario should show most kinds: {:?}",
        kinds(&whole)
    );
    // Without the first half's baselines the second half alone sees less.
    let (alone, _) = shadowtap(&[
        "analyze",
        "-q",
        "--format",
        "json",
        second.to_str().unwrap(),
    ]);
    let after_split = |report: &Value| -> Vec<Value> {
        // RFC 3339 UTC times of one format sort as text.
        let split = alone["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["start"].as_str())
            .min()
            .unwrap_or("");
        report["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["start"].as_str().unwrap_or("") >= split)
            .cloned()
            .collect()
    };
    assert_ne!(
        after_split(&alone),
        after_split(&whole),
        "the second half alone should differ from the whole"
    );
    for (backend, db) in databases("halves_anomalies") {
        let (part, code) = analyze_into(&db, &first);
        assert_eq!(code, 0, "{backend}");
        assert!(
            !part["anomalies"].as_array().unwrap().is_empty(),
            "{backend}: the first half has anomalies of its own"
        );
        let (split, code) = analyze_into(&db, &second);
        assert_eq!(code, 0, "{backend}");
        assert_eq!(split["anomalies"], whole["anomalies"], "{backend}");
        assert_eq!(
            split["summary"]["anomalies"], whole["summary"]["anomalies"],
            "{backend}"
        );
        let (stored, code) = shadowtap(&["report", "--format", "json", "--db", &db]);
        assert_eq!(code, 0, "{backend}");
        assert_eq!(stored["anomalies"], whole["anomalies"], "{backend}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_database_url_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_shadowtap"))
        .args([
            "report",
            "--db",
            "postgres://nobody:secret@127.0.0.1:9/none",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("opening database postgres://nobody:***@127.0.0.1:9/none"),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
    let dir = scratch("empty");
    let db = dir.join("empty.db");
    let out = Command::new(env!("CARGO_BIN_EXE_shadowtap"))
        .args(["report", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holds no analysis yet"), "{err}");
}
