//! The detectors against generated scenarios (`shadowtap-scenario`): steady
//! API traffic over hours of packet time with every anomaly kind injected at
//! known times. Scored per kind over all scenarios: recall ≥ 0.95 and
//! precision ≥ 0.9; and at most one false alarm in ten clean hours.
//!
//! Matching: a reported anomaly matches an injected one of the same kind on
//! the same service and endpoint (service-wide reports match any endpoint)
//! whose window, widened by one detector window on each side, overlaps it.
//! A report of a kind the injection also causes (its `side_effects`) counts
//! as neither a hit nor a false alarm.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use shadowtap_analyzer::anomaly::Anomaly;
use shadowtap_scenario::{generate, AnomalyPlan, Config, Diurnal, Expected};

const HOUR_NS: u64 = 3_600_000_000_000;
const WINDOW_NS: u64 = 300_000_000_000;

/// Generates a scenario and streams it, as a capture on stdin, into
/// `shadowtap analyze -` (no file: at 500 req/s an hour is 7 GB); returns
/// the expected and the reported anomalies.
fn run(name: &str, config: &Config) -> (Expected, Vec<Anomaly>) {
    let (report, stdout) = analyze(name, config, &["--format", "json"]);
    let json: serde_json::Value =
        serde_json::from_slice(&stdout).unwrap_or_else(|e| panic!("{name}: not JSON ({e})"));
    assert_eq!(
        json["summary"]["requests"].as_u64(),
        Some(report.requests),
        "{name}"
    );
    let anomalies: Vec<Anomaly> =
        serde_json::from_value(json["anomalies"].clone()).expect("anomalies");
    (report, anomalies)
}

/// Streams the scenario into `shadowtap analyze -q ARGS -`; returns the
/// expected anomalies and the report on standard output.
fn analyze(name: &str, config: &Config, args: &[&str]) -> (Expected, Vec<u8>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shadowtap"))
        .args(["analyze", "-q"])
        .args(args)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting shadowtap");
    let stdin = child.stdin.take().expect("piped stdin");
    let generator = {
        let config = config.clone();
        std::thread::spawn(move || {
            generate(&config, std::io::BufWriter::with_capacity(1 << 20, stdin))
                .expect("generating the scenario")
        })
    };
    let out = child.wait_with_output().expect("running shadowtap");
    let report = generator.join().expect("the generator thread");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
    (report.expected, out.stdout)
}

#[derive(Default, Debug)]
struct Score {
    injected: u64,
    found: u64,
    reported: u64,
    true_reports: u64,
}

fn score(expected: &Expected, reported: &[Anomaly], scores: &mut BTreeMap<String, Score>) {
    let mut hit = vec![false; expected.anomalies.len()];
    for a in reported {
        let kind = a.kind.as_str();
        let mut matched = false;
        let mut side_effect = false;
        for (i, x) in expected.anomalies.iter().enumerate() {
            let (lo, hi) = (
                x.start.as_nanos().saturating_sub(WINDOW_NS),
                x.end.as_nanos() + WINDOW_NS,
            );
            if a.end.as_nanos() < lo || a.start.as_nanos() > hi || a.service != x.service {
                continue;
            }
            let same_endpoint = a.method.is_none()
                || (a.method.as_deref() == Some(&x.method)
                    && a.template.as_deref() == Some(&x.template));
            if !same_endpoint {
                continue;
            }
            if x.kind.name() == kind {
                matched = true;
                hit[i] = true;
            } else if x.side_effects.iter().any(|s| s.name() == kind) {
                side_effect = true;
            }
        }
        if matched || !side_effect {
            let s = scores.entry(kind.to_owned()).or_default();
            s.reported += 1;
            if matched {
                s.true_reports += 1;
            } else {
                eprintln!("false alarm: {a:?}");
            }
        }
    }
    for (x, h) in expected.anomalies.iter().zip(hit) {
        let s = scores.entry(x.kind.name().to_owned()).or_default();
        s.injected += 1;
        if h {
            s.found += 1;
        } else {
            eprintln!("missed: {x:?}");
        }
    }
}

#[test]
fn detectors_find_injected_anomalies() {
    let mut scenarios = Vec::new();
    // Flat load, low rate.
    let mut a = Config::new(1, 2.0, 5.0);
    a.anomalies = AnomalyPlan::all(2);
    scenarios.push(("seed1-5rps", a));
    // Diurnal load (a compressed day over the two hours), higher rate.
    let mut b = Config::new(2, 2.0, 20.0);
    b.diurnal = Some(Diurnal::compressed(2 * HOUR_NS));
    b.anomalies = AnomalyPlan::all(2);
    scenarios.push(("seed2-20rps-diurnal", b));
    // Another seed, very low rate.
    let mut c = Config::new(4, 2.0, 2.0);
    c.anomalies = AnomalyPlan::all(2);
    scenarios.push(("seed4-2rps", c));
    // The floor: one request a second over three hours.
    let mut d = Config::new(7, 3.0, 1.0);
    d.anomalies = AnomalyPlan::all(1);
    scenarios.push(("seed7-1rps", d));

    assert_scores(&scenarios);
}

/// The same at the high end: 100 req/s over a compressed day and 500 req/s
/// (1.5 million requests in 50 minutes, streamed): the longest test of the
/// suite, about 6 to 11 minutes on 2 cores.
#[test]
fn detectors_find_injected_anomalies_at_high_rates() {
    let mut scenarios = Vec::new();
    let mut a = Config::new(5, 1.5, 100.0);
    a.diurnal = Some(Diurnal::compressed(3 * HOUR_NS / 2));
    a.anomalies = AnomalyPlan::all(1);
    scenarios.push(("seed5-100rps-diurnal", a));
    let mut b = Config::new(6, 50.0 / 60.0, 500.0);
    b.anomalies = AnomalyPlan::all(1);
    b.anomalies.warmup_ns = Some(HOUR_NS / 2);
    scenarios.push(("seed6-500rps", b));
    assert_scores(&scenarios);
}

/// Runs the scenarios, scores them together per kind, and asserts recall
/// and precision for every kind.
fn assert_scores(scenarios: &[(&str, Config)]) {
    let mut scores: BTreeMap<String, Score> = BTreeMap::new();
    for (name, config) in scenarios {
        let (expected, reported) = run(name, config);
        score(&expected, &reported, &mut scores);
    }
    let mut failures = Vec::new();
    for (kind, s) in &scores {
        let recall = s.found as f64 / s.injected.max(1) as f64;
        let precision = s.true_reports as f64 / s.reported.max(1) as f64;
        eprintln!(
            "{kind:24} recall {}/{} = {recall:.2}, precision {}/{} = {precision:.2}",
            s.found, s.injected, s.true_reports, s.reported
        );
        if s.injected > 0 && recall < 0.95 {
            failures.push(format!("{kind}: recall {recall:.2}"));
        }
        if s.reported > 0 && precision < 0.9 {
            failures.push(format!("{kind}: precision {precision:.2}"));
        }
    }
    // Every kind was injected.
    assert_eq!(
        scores.values().filter(|s| s.injected > 0).count(),
        10,
        "{scores:?}"
    );
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn ten_clean_hours_raise_at_most_one_alarm() {
    let mut config = Config::new(3, 10.0, 2.0);
    config.diurnal = Some(Diurnal::compressed(10 * HOUR_NS));
    config.anomalies = AnomalyPlan::clean();
    let (expected, reported) = run("seed3-clean-10h", &config);
    assert!(expected.anomalies.is_empty());
    for a in &reported {
        eprintln!("false alarm: {a:?}");
    }
    assert!(reported.len() <= 1, "{} false alarms", reported.len());
}

/// The shipped sample, `samples/anomalies.pcap.gz`, is exactly the
/// generator's output for the configuration `samples/README.md` states, and
/// `samples/anomalies.expected.json` is its list of injected anomalies.
fn shipped_sample_config() -> Config {
    let mut config = Config::new(7, 3.0, 1.0);
    config.anomalies = AnomalyPlan::all(1);
    config.body_scale = 0.1;
    config
}

fn shipped(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../samples")
        .join(name)
}

#[test]
fn shipped_sample_is_the_generators_output() {
    use std::io::Read;
    let gz = std::fs::read(shipped("anomalies.pcap.gz")).expect("reading the sample");
    let mut pcap = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut pcap)
        .expect("gunzipping the sample");
    let mut generated = Vec::new();
    let report = generate(&shipped_sample_config(), &mut generated).expect("generating");
    assert!(
        pcap == generated,
        "samples/anomalies.pcap.gz is stale: regenerate it (samples/README.md)"
    );
    let expected =
        std::fs::read_to_string(shipped("anomalies.expected.json")).expect("reading expected");
    assert_eq!(expected, report.expected.to_json());
}

/// Caller labels are keyed fingerprints: without `--fingerprint-key-file`
/// the key is random per run, so the docs and the test compare them as `…`.
fn mask_callers(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("caller ") {
        let (head, tail) = rest.split_at(at + "caller ".len());
        out.push_str(head);
        let hex = tail.bytes().take_while(u8::is_ascii_hexdigit).count();
        if hex == 12 {
            out.push_str("CALLER");
            rest = &tail[hex..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// The shipped sample scores like the generated suite (every injected
/// anomaly found, no false alarm), and the example in `docs/anomalies.md`
/// ("On the shipped sample") is what `shadowtap analyze` prints for it:
/// every line of the block is a line of the report (callers masked), and
/// the report has as many anomalies as the text says.
#[test]
fn docs_example_is_what_the_detectors_report_on_the_shipped_sample() {
    let sample = shipped("anomalies.pcap.gz");
    let analyze = |format: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_shadowtap"))
            .args(["analyze", "-q", "--format", format])
            .arg(&sample)
            .output()
            .expect("running shadowtap");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 report")
    };

    let json: serde_json::Value = serde_json::from_str(&analyze("json")).expect("JSON report");
    let reported: Vec<Anomaly> =
        serde_json::from_value(json["anomalies"].clone()).expect("anomalies");
    let expected: Expected = serde_json::from_str(
        &std::fs::read_to_string(shipped("anomalies.expected.json")).expect("reading expected"),
    )
    .expect("the expected file");
    let mut scores = BTreeMap::new();
    score(&expected, &reported, &mut scores);
    for (kind, s) in &scores {
        assert_eq!(
            (s.found, s.true_reports),
            (s.injected, s.reported),
            "{kind}: {s:?}"
        );
    }
    assert_eq!(scores.values().map(|s| s.injected).sum::<u64>(), 10);

    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/anomalies.md"))
            .expect("reading docs/anomalies.md");
    let block: Vec<&str> = docs
        .split("<!-- example: samples/anomalies.pcap.gz -->\n```text\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("the example block in docs/anomalies.md")
        .lines()
        .collect();
    let claimed: usize = docs
        .split("The report ends with ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the anomaly count in docs/anomalies.md");
    let report = analyze("table");
    let section: Vec<String> = report
        .lines()
        .skip_while(|l| *l != "Anomalies")
        .map(mask_callers)
        .collect();
    assert_eq!(section.len(), claimed + 1, "{}", section.join("\n"));
    assert_eq!(reported.len(), claimed);
    for line in block {
        assert!(
            section.iter().any(|l| l == line),
            "docs line not in the report:\n{line}\nreport:\n{}",
            section.join("\n")
        );
    }
}
