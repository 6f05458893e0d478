//! Live capture with libpcap, end to end, in network namespaces (root).
//!
//! A real HTTP server (Python's `http.server`) runs in one namespace, a
//! client in the other drives a known mix over a veth pair, and the sensor
//! captures in the server's namespace. The records must say exactly what
//! the client sent and received, and must equal what the file source makes
//! of tcpdump's capture of the same traffic.
//!
//! Without root these tests print why and pass, except under `cargo xtask
//! test` (`SHADOWTAP_UNDER_XTASK`), where they fail.

#![cfg(feature = "libpcap")]

mod netns;

use std::io::Read;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use netns::http::{self, Request};
use netns::sensor::{
    assert_clean_exit, path_str, read_records, settle, start_tcpdump, stats, stop_tcpdump,
    tcpdump_available, Fixture, EXIT_TIMEOUT, SENSOR,
};
use netns::{command_works, privileged, ready};

#[test]
fn records_match_the_client_and_the_file_source() {
    const TEST: &str = "records_match_the_client_and_the_file_source";
    if !privileged(TEST) || !tcpdump_available(TEST) {
        return;
    }
    let fx = Fixture::new("live-match");
    let (veth_out, any_out, pcap) = (
        fx.path("veth.jsonl"),
        fx.path("any.jsonl"),
        fx.path("tcpdump.pcap"),
    );
    let veth_stats = fx.path("veth-stats.json");
    let on_veth = fx.sensor(
        "sensor -i veth",
        &[
            "-i",
            &fx.pair.server_if,
            "-w",
            path_str(&veth_out),
            "--stats-json",
            path_str(&veth_stats),
            "--stats-interval",
            "1",
        ],
    );
    let on_any = fx.sensor("sensor -i any", &["-i", "any", "-w", path_str(&any_out)]);
    let dump = start_tcpdump(&fx.pair.server, &fx.pair.server_if, &pcap);

    let seen = http::drive(&fx.pair.client, fx.addr(), http::standard_mix());
    assert_eq!(seen.len(), 13);
    settle();
    let veth_run = on_veth.terminate(EXIT_TIMEOUT);
    let any_run = on_any.terminate(EXIT_TIMEOUT);
    stop_tcpdump(dump);

    let stderr = assert_clean_exit(&veth_run, "sensor -i veth");
    assert!(
        stderr.contains(&format!("capturing on {} (EN10MB)", fx.pair.server_if)),
        "{stderr}"
    );
    assert!(
        stderr.contains("capture drops: ps_drop=0 ps_ifdrop="),
        "{stderr}"
    );
    assert!(
        stderr.contains("live: stopped by signal, 13 records written"),
        "{stderr}"
    );
    let any_stderr = assert_clean_exit(&any_run, "sensor -i any");
    assert!(
        any_stderr.contains("capturing on any (LINUX_SLL2)"),
        "{any_stderr}"
    );

    let s = stats(&veth_stats);
    assert_eq!(s["stopped_by"], "signal");
    assert_eq!(s["records_written"], 13);
    assert_eq!(s["capture_drops"]["ps_drop"], 0, "{s}");

    // What the client did, exactly, on both live sources.
    http::assert_records_match(&read_records(&veth_out), &seen);
    http::assert_records_match(&read_records(&any_out), &seen);

    // The file source on tcpdump's capture of the same interface.
    let file_records = fx.file_records(&pcap);
    http::assert_records_match(&http::parse_records(&file_records), &seen);
    let veth_records = std::fs::read(&veth_out).expect("veth records");
    let any_records = std::fs::read(&any_out).expect("any records");
    http::assert_same_records(&veth_records, &file_records, "live (veth) vs file");
    http::assert_same_records(&any_records, &file_records, "live (any) vs file");
}

#[test]
fn a_filter_expression_selects_the_traffic() {
    const TEST: &str = "a_filter_expression_selects_the_traffic";
    if !privileged(TEST) {
        return;
    }
    let mut fx = Fixture::new("live-filter");
    let other = fx.addr();
    let kept = SocketAddr::new(fx.pair.server_ip.into(), 8081);
    fx.serve(kept);
    let out = fx.path("out.jsonl");
    // Several words, joined as tcpdump joins them.
    let sensor = fx.sensor(
        "sensor",
        &[
            "-i",
            &fx.pair.server_if,
            "-w",
            path_str(&out),
            "tcp",
            "port",
            "8081",
        ],
    );
    let seen = fx
        .pair
        .client
        .spawn(move || {
            let mut all = http::converse(other, &[vec![Request::get("/small")]]);
            let kept_seen = http::converse(
                kept,
                &[vec![Request::get("/small")], vec![Request::get("/chunked")]],
            );
            all.extend(http::converse(other, &[vec![Request::get("/missing")]]));
            (kept_seen, all.len())
        })
        .join()
        .expect("client");
    let (kept_seen, others) = seen;
    assert_eq!(others, 2);
    settle();
    assert_clean_exit(&sensor.terminate(EXIT_TIMEOUT), "sensor");
    http::assert_records_match(&read_records(&out), &kept_seen);
}

#[test]
fn several_interfaces_are_merged() {
    const TEST: &str = "several_interfaces_are_merged";
    if !privileged(TEST) {
        return;
    }
    let mut fx = Fixture::new("live-merge");
    let on_veth = fx.addr();
    let on_lo: SocketAddr = "127.0.0.1:8082".parse().expect("addr");
    fx.serve(on_lo);
    let out = fx.path("out.jsonl");
    let sensor = fx.sensor(
        "sensor",
        &["-i", &fx.pair.server_if, "-i", "lo", "-w", path_str(&out)],
    );
    let remote = fx.pair.client.spawn(move || {
        http::converse(
            on_veth,
            &[vec![Request::get("/small")], vec![Request::get("/chunked")]],
        )
    });
    let local = fx.pair.server.spawn(move || {
        http::converse(
            on_lo,
            &[vec![Request::get("/missing"), Request::get("/small?x=1")]],
        )
    });
    let mut seen = remote.join().expect("client");
    seen.extend(local.join().expect("local client"));
    settle();
    let run = sensor.terminate(EXIT_TIMEOUT);
    let stderr = assert_clean_exit(&run, "sensor");
    assert!(
        stderr.contains(&format!(
            "capturing on {} (EN10MB), lo (EN10MB)",
            fx.pair.server_if
        )),
        "{stderr}"
    );
    http::assert_records_match(&read_records(&out), &seen);
}

#[test]
fn count_stops_after_n_records() {
    const TEST: &str = "count_stops_after_n_records";
    if !privileged(TEST) {
        return;
    }
    let fx = Fixture::new("live-count");
    let addr = fx.addr();
    let out = fx.path("out.jsonl");
    let sensor = fx.sensor(
        "sensor",
        &[
            "-i",
            &fx.pair.server_if,
            "-w",
            path_str(&out),
            "--count",
            "3",
        ],
    );
    let batches: Vec<Vec<Request>> = (0..5)
        .map(|i| vec![Request::get(&format!("/small?n={i}"))])
        .collect();
    let seen = fx
        .pair
        .client
        .spawn(move || http::converse(addr, &batches))
        .join()
        .expect("client");
    // The sensor stops by itself once the third record is written.
    let run = sensor.wait(EXIT_TIMEOUT);
    let stderr = assert_clean_exit(&run, "sensor --count 3");
    assert!(
        stderr.contains("stopped by --count, 3 records written"),
        "{stderr}"
    );
    http::assert_records_match(&read_records(&out), &seen[..3]);
}

#[test]
fn duration_stops_and_counter_lines_are_printed() {
    const TEST: &str = "duration_stops_and_counter_lines_are_printed";
    if !privileged(TEST) {
        return;
    }
    let fx = Fixture::without_server("live-duration");
    let started = Instant::now();
    let sensor = fx.sensor(
        "sensor",
        &[
            "-i",
            &fx.pair.server_if,
            "-w",
            "/dev/null",
            "--duration",
            "1.5",
            "--stats-interval",
            "0.4",
        ],
    );
    let run = sensor.wait(EXIT_TIMEOUT);
    let elapsed = started.elapsed();
    let stderr = assert_clean_exit(&run, "sensor --duration 1.5");
    assert!(
        elapsed >= Duration::from_millis(1500) && elapsed < Duration::from_secs(15),
        "{elapsed:?}"
    );
    assert!(
        stderr.contains("live: stopped by --duration, 0 records written"),
        "{stderr}"
    );
    let counter_lines = stderr
        .lines()
        .filter(|l| l.contains(" packets, ") && l.contains("capture drops: ps_drop="))
        .count();
    assert!(counter_lines >= 2, "periodic counter lines: {stderr}");
}

#[test]
fn sigterm_flushes_every_completed_exchange() {
    const TEST: &str = "sigterm_flushes_every_completed_exchange";
    if !privileged(TEST) {
        return;
    }
    let fx = Fixture::new("live-sigterm");
    let addr = fx.addr();
    let out = fx.path("out.jsonl");
    let stats_path = fx.path("stats.json");
    let sensor = fx.sensor(
        "sensor",
        &[
            "-i",
            &fx.pair.server_if,
            "-w",
            path_str(&out),
            "--stats-json",
            path_str(&stats_path),
        ],
    );
    // Completed exchanges on a connection that stays open, then a request
    // whose response is still 30 s away when the signal comes.
    let batches = vec![
        vec![Request::get("/small")],
        vec![Request::post_bytes("/upload", 200_000, false)],
        vec![Request::get("/chunked")],
    ];
    let (seen, mut stream) = fx
        .pair
        .client
        .spawn(move || http::converse_open(addr, &batches))
        .join()
        .expect("client");
    http::send_only(&mut stream, &Request::get("/slow?secs=30"));
    settle();
    let run = sensor.terminate(EXIT_TIMEOUT);
    drop(stream);
    let stderr = assert_clean_exit(&run, "sensor");
    assert!(
        stderr.contains("live: stopped by signal, 4 records written"),
        "{stderr}"
    );
    let records = read_records(&out);
    http::assert_records_match(&records[..3], &seen);
    let pending = &records[3];
    assert_eq!(pending["path"], "/slow");
    assert_eq!(pending["flags"]["unanswered"], true, "{pending}");
    assert_eq!(stats(&stats_path)["stopped_by"], "signal");
}

#[test]
fn a_bad_filter_expression_is_one_clear_error() {
    const TEST: &str = "a_bad_filter_expression_is_one_clear_error";
    if !privileged(TEST) {
        return;
    }
    let fx = Fixture::without_server("live-bad-filter");
    let out = fx
        .pair
        .server
        .command(SENSOR)
        .args(["-i", &fx.pair.server_if, "tcp", "prot", "80"])
        .output()
        .expect("sensor runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("shadowtap-sensor: bad filter expression `tcp prot 80`")
            && stderr.contains("syntax error"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_missing_interface_is_one_clear_error() {
    let out = Command::new(SENSOR)
        .args(["-i", "shadowtap-no0"])
        .output()
        .expect("sensor runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        "shadowtap-sensor: no such interface: shadowtap-no0 (`ip link` lists them; `any` \
         captures on all)"
    );
}

#[test]
fn a_missing_capability_is_named() {
    // As root, drop CAP_NET_RAW for the child; otherwise we lack it already.
    let mut cmd = if rustix::process::geteuid().is_root() {
        let setpriv = command_works("setpriv", &["--version"]);
        let missing = (!setpriv).then_some("setpriv (util-linux) is not installed");
        if !ready("a_missing_capability_is_named", missing) {
            return;
        }
        let mut c = Command::new("setpriv");
        c.args(["--inh-caps=-net_raw", "--bounding-set=-net_raw", SENSOR]);
        c
    } else {
        Command::new(SENSOR)
    };
    let out = cmd.args(["-i", "lo"]).output().expect("sensor runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("capturing on lo needs the CAP_NET_RAW capability"),
        "{stderr}"
    );
}

#[test]
fn a_stalled_output_is_counted_and_never_stops_the_capture() {
    // Reliability target S15: the records go to a FIFO whose reader stops
    // reading. The capture must go on (every exchange parsed, no packet
    // lost), drop whole records once the pipe and the output queue are
    // full, count them, and write again once the reader is back.
    const TEST: &str = "a_stalled_output_is_counted_and_never_stops_the_capture";
    if !privileged(TEST) || !command_works("mkfifo", &["--version"]) {
        return;
    }
    const FLOOD: usize = 600;
    const AFTER: usize = 20;
    let fx = Fixture::new("live-stall");
    let fifo = fx.path("records.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let stats_path = fx.path("stats.json");
    // The reader opens the FIFO (the sensor's open waits for that) and then
    // reads nothing until told to.
    let (go, wait) = mpsc::channel::<()>();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::File::open(&fifo).expect("open the FIFO");
            wait.recv().expect("go");
            let mut records = Vec::new();
            f.read_to_end(&mut records).expect("read the FIFO");
            records
        })
    };
    let mut sensor = fx.sensor(
        "sensor",
        &[
            "-i",
            &fx.pair.server_if,
            "-w",
            path_str(&fifo),
            "--stats-json",
            path_str(&stats_path),
            "--stats-interval",
            "0.2",
            "--output-queue",
            "50",
        ],
    );
    sensor.wait_for_stderr("capturing on", Duration::from_secs(20));

    // About 64 KiB of records fit in the pipe (some 130) and 50 in the
    // queue: far fewer than the flood's.
    let addr = fx.addr();
    let flood = fx
        .pair
        .client
        .spawn(move || {
            // Connections of ten batches of ten pipelined requests.
            (0..FLOOD / 100)
                .map(|_| http::converse(addr, &vec![vec![Request::get("/small"); 10]; 10]).len())
                .sum::<usize>()
        })
        .join()
        .expect("client");
    assert_eq!(flood, FLOOD);
    // While nobody reads, the counter line shows every exchange parsed.
    sensor.wait_for_stderr(&format!(" {FLOOD} exchanges, "), Duration::from_secs(20));
    assert!(
        sensor.stderr().contains("dropped (output queue full)"),
        "{}",
        sensor.stderr()
    );

    // The reader is back: what comes next is written.
    go.send(()).expect("reader");
    let after = fx
        .pair
        .client
        .spawn(move || http::converse(addr, &vec![vec![Request::get("/missing")]; AFTER]).len())
        .join()
        .expect("client");
    assert_eq!(after, AFTER);
    settle();
    let run = sensor.terminate(EXIT_TIMEOUT);
    let stderr = assert_clean_exit(&run, "sensor");
    let records = http::parse_records(&reader.join().expect("reader"));

    let s = stats(&stats_path);
    assert_eq!(s["http"]["exchanges"], (FLOOD + AFTER) as u64, "{s}");
    assert_eq!(s["capture_drops"]["ps_drop"], 0, "{s}");
    assert_eq!(s["output_unflushed"], 0, "{s}");
    let written = s["records_written"].as_u64().expect("records_written");
    let dropped = s["output_queue_full"].as_u64().expect("output_queue_full");
    eprintln!("{TEST}: {written} records written, {dropped} dropped");
    assert!(dropped > 0, "{s}");
    assert_eq!(written + dropped, (FLOOD + AFTER) as u64, "{s}");
    assert_eq!(records.len() as u64, written);
    // Whole records only, and every one after the reader came back.
    assert!(records
        .iter()
        .all(|r| r["flags"].as_object().is_some_and(|f| f.is_empty())));
    let missing = records.iter().filter(|r| r["path"] == "/missing").count();
    assert_eq!(missing, AFTER);
    assert!(
        stderr.contains(&format!(
            "{written} records written, {dropped} dropped (output queue full)"
        )),
        "{stderr}"
    );
}
