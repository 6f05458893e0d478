//! The `shadowtap-sensor` command line: output stream, exit codes, errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/pcapplusplus")
        .join(rel)
}

fn sensor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shadowtap-sensor"))
        .args(args)
        .output()
        .expect("sensor runs")
}

fn records(stdout: &[u8]) -> Vec<serde_json::Value> {
    std::str::from_utf8(stdout)
        .expect("utf-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON record: {e}: {l}")))
        .collect()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shadowtap-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

const HTTP2: &str = "ExamplesTest/pcap_examples/http-packets2.pcap";

#[test]
fn stdout_carries_only_records_and_stderr_the_summary() {
    let out = sensor(&[
        "-r",
        fixture(HTTP2).to_str().expect("utf-8 path"),
        "-w",
        "-",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = records(&out.stdout);
    assert_eq!(recs.len(), 57);
    assert!(recs
        .iter()
        .all(|r| r["schema"] == 1 && r["method"] == "GET"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("222 packets"), "{stderr}");
    assert!(stderr.contains("exchanges: 57"), "{stderr}");
}

#[test]
fn several_inputs_are_read_in_order_and_stats_are_written() {
    let stats = tmp("stats.json");
    let a = fixture("Pcap++Test/PcapExamples/one_http_stream_fin.pcap");
    let b = fixture("Pcap++Test/PcapExamples/three_http_streams.pcap");
    let out = sensor(&[
        "-q",
        "-r",
        a.to_str().expect("path"),
        "-r",
        b.to_str().expect("path"),
        "--stats-json",
        stats.to_str().expect("path"),
    ]);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "-q prints nothing: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(records(&out.stdout).len(), 4);
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stats).expect("stats written")).expect("json");
    assert_eq!(s["packets"], 15 + 28);
    assert_eq!(s["http"]["exchanges"], 4);
    assert_eq!(s["damaged_inputs"], 0);
    assert!(s["peak_rss_bytes"].as_u64().is_some_and(|v| v > 0));
}

#[test]
fn a_memory_limit_lowers_the_caps_and_is_reported() {
    let stats = tmp("memory-stats.json");
    let run = |limit: &str| {
        sensor(&[
            "-r",
            fixture(HTTP2).to_str().expect("utf-8 path"),
            "-w",
            "/dev/null",
            "--stats-json",
            stats.to_str().expect("utf-8 path"),
            "--memory-limit",
            limit,
        ])
    };
    let out = run("64Mi");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "memory limit 64 MiB (--memory-limit): caps fitted to 50 % of it less 32 MiB"
        ),
        "{stderr}"
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).expect("stats")).expect("json");
    let m = &s["memory"];
    assert_eq!(m["limit_bytes"], 64 << 20);
    assert!(m["max_flows"].as_u64().is_some_and(|n| n < 65_536), "{m}");
    assert!(m["http_state_memcap_bytes"]
        .as_u64()
        .is_some_and(|n| n < 256 << 20));
    assert_eq!(
        s["http"]["exchanges"], 57,
        "the same traffic, the same records"
    );

    let out = run("none");
    assert!(out.status.success());
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).expect("stats")).expect("json");
    assert!(s["memory"].is_null());

    let out = run("12MB");
    assert_eq!(out.status.code(), Some(2), "a bad size is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown unit `MB`"));
}

/// Connections and requests of [`hostile_pipelining_capture`].
const HOSTILE_FLOWS: u16 = 4_000;
const HOSTILE_REQUESTS_PER_FLOW: u32 = 100;

/// A raw-IP capture of [`HOSTILE_FLOWS`] connections to one server, each
/// pipelining [`HOSTILE_REQUESTS_PER_FLOW`] tiny requests that are never
/// answered and never closed: about 13 MB that make the HTTP parser hold
/// each request until the end (reliability target S17's soak traffic).
fn hostile_pipelining_capture(path: &Path) {
    use shadowtap_scenario::pcap::{tcp_packet, PcapWriter, ACK, PSH, SYN};
    let file = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut w = PcapWriter::new(file, 101).expect("pcap header");
    let server = std::net::SocketAddr::from(([10, 9, 0, 1], 80));
    let mut ts = 1_700_000_000_000_000u64;
    let mut frame = |w: &mut PcapWriter<_>, p: Vec<u8>| {
        ts += 10;
        w.write_frame(ts, &[&p]).expect("write");
    };
    let request = b"GET /a HTTP/1.1\r\n\r\n";
    let per_segment = HOSTILE_REQUESTS_PER_FLOW / 2;
    let segment: Vec<u8> = (0..per_segment)
        .flat_map(|_| request.iter().copied())
        .collect();
    for i in 0..HOSTILE_FLOWS {
        let client = std::net::SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 20_000 + i));
        frame(&mut w, tcp_packet(client, server, 999, 0, SYN, &[]));
        frame(
            &mut w,
            tcp_packet(server, client, 4_999, 1_000, SYN | ACK, &[]),
        );
        frame(&mut w, tcp_packet(client, server, 1_000, 5_000, ACK, &[]));
        let mut seq = 1_000u32;
        for _ in 0..2 {
            frame(
                &mut w,
                tcp_packet(client, server, seq, 5_000, PSH | ACK, &segment),
            );
            seq += segment.len() as u32;
        }
    }
    w.into_inner().expect("flush");
}

/// Reliability target S17: under a memory limit (the caps fitted to it),
/// traffic that makes the sensor hold far more HTTP state than the caps
/// allow runs with peak RSS below 80 % of the limit: the state is shed, and
/// every request is still reported (unanswered).
#[test]
fn hostile_traffic_stays_below_80_percent_of_the_memory_limit() {
    let pcap = tmp("hostile-pipelining.pcap");
    hostile_pipelining_capture(&pcap);
    let stats_path = tmp("hostile-stats.json");
    let run = |limit: &str| {
        let out = sensor(&[
            "-q",
            "-r",
            pcap.to_str().expect("utf-8 path"),
            "-w",
            "/dev/null",
            "--stats-json",
            stats_path.to_str().expect("utf-8 path"),
            "--memory-limit",
            limit,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&stats_path).expect("stats");
        serde_json::from_str::<serde_json::Value>(&text).expect("json")
    };
    const LIMIT: u64 = 128 << 20;
    let requests = u64::from(HOSTILE_FLOWS) * u64::from(HOSTILE_REQUESTS_PER_FLOW);

    let fitted = run("128Mi");
    let rss = fitted["peak_rss_bytes"].as_u64().expect("rss");
    let cap = fitted["memory"]["http_state_memcap_bytes"]
        .as_u64()
        .expect("cap");
    assert!(
        rss < LIMIT / 5 * 4,
        "peak RSS {rss} bytes, limit {LIMIT}: {fitted}"
    );
    assert!(fitted["flows"]["handler_memcap_sheds"].as_u64() > Some(0));
    // The cap holds, give or take one segment's growth.
    assert!(fitted["flows"]["peak_handler_bytes"].as_u64() <= Some(cap + (64 << 10)));
    assert_eq!(fitted["http"]["exchanges"], requests);
    assert_eq!(fitted["http"]["unanswered"], requests);

    // Without a limit the same traffic holds several times that cap: the
    // limit, not the traffic, kept the sensor small.
    let free = run("none");
    let held = free["flows"]["peak_handler_bytes"].as_u64().expect("peak");
    assert!(held > 3 * cap, "the traffic holds only {held} bytes");
    assert_eq!(free["http"]["exchanges"], requests);
    eprintln!(
        "HTTP state without a limit {held} B (peak RSS {} B); under 128 MiB: cap {cap} B, \
         peak RSS {rss} B",
        free["peak_rss_bytes"]
    );
}

#[test]
fn a_truncated_pcap_keeps_what_came_before_and_exits_3() {
    let whole = std::fs::read(fixture(HTTP2)).expect("fixture");
    let cut = tmp("cut.pcap");
    std::fs::write(&cut, &whole[..whole.len() / 2 + 7]).expect("write");
    let out = sensor(&["-r", cut.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cut.pcap") && stderr.contains("byte offset"),
        "{stderr}"
    );
    let recs = records(&out.stdout);
    assert!(!recs.is_empty() && recs.len() < 57, "{}", recs.len());
}

#[test]
fn a_truncated_pcapng_exits_3_with_the_offset() {
    let whole = std::fs::read(fixture(
        "Packet++Test/PacketExamples/HttpMalformedResponse.pcapng",
    ))
    .expect("fixture");
    let cut = tmp("cut.pcapng");
    std::fs::write(&cut, &whole[..whole.len() - 10]).expect("write");
    let out = sensor(&["-r", cut.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cut.pcapng") && stderr.contains("byte offset"),
        "{stderr}"
    );
}

#[test]
fn garbage_is_not_a_capture() {
    let junk = tmp("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file at all").expect("write");
    let out = sensor(&["-r", junk.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_missing_input_exits_1() {
    let out = sensor(&["-r", "/nonexistent/capture.pcap"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/capture.pcap"));
}

#[test]
fn output_to_a_file() {
    let path = tmp("out.jsonl");
    let out = sensor(&[
        "-q",
        "-r",
        fixture(HTTP2).to_str().expect("path"),
        "-w",
        path.to_str().expect("path"),
    ]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    assert_eq!(records(&std::fs::read(&path).expect("written")).len(), 57);
}

#[test]
fn no_secret_reaches_stdout_or_the_logs_even_at_trace_level() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let secrets =
        std::fs::read_to_string(root.join("samples/demo-api.secrets.txt")).expect("secrets");
    let out = Command::new(env!("CARGO_BIN_EXE_shadowtap-sensor"))
        .args([
            "-r",
            root.join("samples/demo-api.pcap").to_str().expect("path"),
        ])
        .env("SHADOWTAP_LOG", "trace")
        .output()
        .expect("sensor runs");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(records(&out.stdout).len(), 85);
    for s in secrets.lines().filter(|l| !l.is_empty()) {
        assert!(!stdout.contains(s), "{s:?} in the records");
        assert!(!stderr.contains(s), "{s:?} in the logs");
    }
}

/// Without the `libpcap` feature, `-i` is one clear error saying how to get it.
#[cfg(not(feature = "libpcap"))]
#[test]
fn live_capture_without_the_feature_says_how_to_build_it() {
    let out = sensor(&["-i", "eth0"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--features libpcap") && stderr.contains("libpcap-dev"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn options_of_the_other_source_are_named() {
    let file = fixture(HTTP2);
    let file = file.to_str().expect("path");
    for (args, message) in [
        (
            vec!["-r", file, "--server-side"],
            "--server-side needs --ebpf",
        ),
        (
            vec!["-i", "lo", "--ports", "80", "--follow", "x*"],
            "--ports, --follow need --ebpf",
        ),
        (
            vec!["--ebpf", "-i", "lo", "-s", "100"],
            "-s only applies to libpcap capture (without --ebpf)",
        ),
        (
            vec!["-r", file, "--duration", "1", "--count", "2"],
            "--duration, --count only apply to live capture (-i or --ebpf)",
        ),
    ] {
        let out = sensor(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{args:?}: {err}");
    }
}

#[test]
fn live_options_need_an_interface_and_exclude_files() {
    let file = fixture(HTTP2);
    let file = file.to_str().expect("path");
    for args in [
        vec!["-r", file, "--count", "3"],
        vec!["-r", file, "-s", "100"],
        vec!["-r", file, "--output-queue", "100"],
        vec!["-i", "lo", "--output-queue", "0"],
        vec!["-r", file, "-i", "lo"],
        vec![],
    ] {
        let out = sensor(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
