//! `cargo xtask load-test`: the live sensor under load, against the server alone.
//!
//! ```text
//!  netns st-lt-cli-PID                 netns st-lt-srv-PID
//!  wrk ── veth stlc<PID> ═══ veth stls<PID> ── nginx (1 worker, keep-alive)
//!                                    └─ shadowtap-sensor (eBPF TC or libpcap) -w records
//! ```
//!
//! Each round runs wrk twice against nginx alone and twice with the sensor
//! capturing on the server's veth, alternating, so drift of a noisy machine
//! hits both sides alike:
//! - throughput: `wrk -t T -c C -d D`, requests/s;
//! - latency: one connection (`-c 1`) for `--latency-seconds`, mean latency;
//!   the difference with and without the sensor is what it adds per request.
//!
//! With the sensor, every request wrk completed must be an exchange record
//! with a status (loss = completed − recorded, never negative), and the
//! sensor's CPU share, peak RSS and loss counters are read from `/proc` and
//! its `--stats-json`. Needs root (namespaces, capture), `nginx` and `wrk`
//! (installed with apt when missing).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use crate::bench::summarize;
use crate::provision::{ensure_tools, Tool};
use crate::util::{banner, cargo, is_root, run_checked, target_dir};

/// Server address inside the server namespace.
const SERVER_IP: &str = "10.231.0.1";
const CLIENT_IP: &str = "10.231.0.2";
const PORT: u16 = 8080;
/// The response nginx gives: a small JSON object, like an API's item.
const BODY: &str = r#"{"id":1,"name":"widget","price":9.5,"tags":["a","b"],"stock":{"warehouse":"w1","count":12}}"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Source {
    /// `--ebpf -i IFACE` (TC classifier, ring buffer).
    Ebpf,
    /// `-i IFACE` through libpcap.
    Pcap,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LoadTestArgs {
    /// Capture source the sensor uses.
    #[arg(long, value_enum, default_value = "ebpf")]
    source: Source,
    /// Seconds of each throughput phase.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Seconds of each one-connection latency phase.
    #[arg(long, default_value_t = 10)]
    latency_seconds: u64,
    /// wrk connections for the throughput phase.
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// wrk threads.
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// Rounds (alone, with sensor) to take medians over.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Use this sensor binary instead of building the release sensor.
    #[arg(long, value_name = "PATH")]
    sensor: Option<PathBuf>,
    /// Requests/s the sensor must sustain (a median below it fails).
    #[arg(long, default_value_t = 20_000.0)]
    min_rps: f64,
    /// Highest tolerated loss, percent of completed requests.
    #[arg(long, default_value_t = 0.1)]
    max_loss_pct: f64,
}

/// What one wrk run reported.
#[derive(Debug, Clone, Copy, PartialEq)]
struct WrkResult {
    requests: u64,
    seconds: f64,
    latency_us: f64,
}

impl WrkResult {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// Parses wrk's summary: `N requests in 10.04s, …` and the mean of the
/// `Latency` line (`2.30ms`, `705.00us`, `1.2s`).
fn parse_wrk(text: &str) -> Result<WrkResult> {
    let line = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .context("wrk printed no `requests in` line")?;
    let mut words = line.split_whitespace();
    let requests: u64 = words
        .next()
        .and_then(|w| w.parse().ok())
        .context("wrk request count")?;
    let seconds = words
        .nth(2)
        .map(|w| w.trim_end_matches(','))
        .and_then(parse_duration_s)
        .context("wrk duration")?;
    let latency = text
        .lines()
        .find(|l| l.trim_start().starts_with("Latency") && !l.contains("Distribution"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(parse_duration_s)
        .context("wrk latency line")?;
    Ok(WrkResult {
        requests,
        seconds,
        latency_us: latency * 1e6,
    })
}

/// `705.00us`, `2.30ms`, `10.04s`, `1.00m` as seconds.
fn parse_duration_s(w: &str) -> Option<f64> {
    let split = w.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = w.split_at(split);
    let n: f64 = n.parse().ok()?;
    let scale = match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        _ => return None,
    };
    Some(n * scale)
}

/// The two namespaces and the veth pair; removed on drop.
struct Netns {
    server: String,
    client: String,
    server_if: String,
}

impl Netns {
    fn create() -> Result<Netns> {
        let id = std::process::id();
        let n = Netns {
            server: format!("st-lt-srv-{id}"),
            client: format!("st-lt-cli-{id}"),
            server_if: format!("stls{id}"),
        };
        let client_if = format!("stlc{id}");
        let ip = |args: &[&str]| run_quiet(Command::new("ip").args(args));
        ip(&["netns", "add", &n.server])?;
        ip(&["netns", "add", &n.client])?;
        ip(&[
            "link",
            "add",
            &n.server_if,
            "type",
            "veth",
            "peer",
            "name",
            &client_if,
        ])?;
        ip(&["link", "set", &n.server_if, "netns", &n.server])?;
        ip(&["link", "set", &client_if, "netns", &n.client])?;
        for (ns, dev, addr) in [
            (&n.server, &n.server_if, SERVER_IP),
            (&n.client, &client_if, CLIENT_IP),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(n)
    }

    fn exec(&self, ns: &str, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in [&self.server, &self.client] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn run_quiet(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().context("starting a command")?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// nginx with one worker serving [`BODY`] on every `/api/` path; stopped on drop.
struct Nginx {
    pid_file: PathBuf,
}

impl Nginx {
    fn start(net: &Netns, dir: &Path) -> Result<Nginx> {
        let conf = dir.join("nginx.conf");
        let pid_file = dir.join("nginx.pid");
        fs::write(
            &conf,
            format!(
                "worker_processes 1;\npid {pid};\nerror_log {dir}/nginx-error.log;\ndaemon on;\n\
                 events {{ worker_connections 4096; }}\n\
                 http {{\n  access_log off;\n  keepalive_requests 10000000;\n  \
                 client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n  \
                 fastcgi_temp_path {dir}/fastcgi;\n  uwsgi_temp_path {dir}/uwsgi;\n  \
                 scgi_temp_path {dir}/scgi;\n  \
                 server {{\n    listen {SERVER_IP}:{PORT};\n    \
                 location /api/ {{ default_type application/json; return 200 '{BODY}'; }}\n  }}\n}}\n",
                pid = pid_file.display(),
                dir = dir.display(),
            ),
        )?;
        let nginx = crate::util::which("nginx").context("nginx is not installed")?;
        run_quiet(
            net.exec(&net.server, &nginx)
                .args(["-c".as_ref(), conf.as_os_str()]),
        )?;
        // Wait for the pid file: nginx is listening once it is written.
        let started = Instant::now();
        while !pid_file.exists() {
            ensure!(
                started.elapsed() < Duration::from_secs(10),
                "nginx did not start"
            );
            sleep(Duration::from_millis(50));
        }
        Ok(Nginx { pid_file })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Ok(pid) = fs::read_to_string(&self.pid_file) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

fn wrk(net: &Netns, wrk: &Path, threads: u32, connections: u32, seconds: u64) -> Result<WrkResult> {
    let out = net
        .exec(&net.client, wrk)
        .args([
            format!("-t{threads}"),
            format!("-c{connections}"),
            format!("-d{seconds}s"),
            format!("http://{SERVER_IP}:{PORT}/api/items/1"),
        ])
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "wrk failed: {text}");
    parse_wrk(&text).with_context(|| format!("reading wrk's output:\n{text}"))
}

/// CPU seconds (user + system) a process has used, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at `) `.
    let rest = stat
        .rsplit_once(") ")
        .map(|(_, r)| r)
        .context("/proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after `) `.
    let ticks: u64 = fields
        .get(11..13)
        .context("/proc/PID/stat fields")?
        .iter()
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .sum();
    Ok(ticks as f64 / clock_ticks()?)
}

fn clock_ticks() -> Result<f64> {
    let out = Command::new("getconf").arg("CLK_TCK").output()?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("getconf CLK_TCK")
}

fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// One sensor run: started before wrk, stopped (SIGINT) after it.
struct SensorRun {
    completed: u64,
    recorded: u64,
    cpu_pct: f64,
    rss_mib: Option<f64>,
    wrk: WrkResult,
    stats: Value,
}

fn with_sensor(
    net: &Netns,
    sensor: &Path,
    source: Source,
    dir: &Path,
    round: usize,
    run: impl FnOnce() -> Result<WrkResult>,
) -> Result<SensorRun> {
    let records = dir.join(format!("records-{round}.jsonl"));
    let stats = dir.join(format!("stats-{round}.json"));
    let log = fs::File::create(dir.join(format!("sensor-{round}.stderr")))?;
    let mut cmd = net.exec(&net.server, sensor);
    if source == Source::Ebpf {
        cmd.arg("--ebpf");
    }
    cmd.args(["-i", &net.server_if, "-w"])
        .arg(&records)
        .arg("--stats-json")
        .arg(&stats)
        .stdout(Stdio::null())
        .stderr(log);
    let mut child = cmd.spawn().context("starting the sensor")?;
    let pid = child.id();
    // Attaching takes a moment; the sensor must still be running after it.
    sleep(Duration::from_secs(2));
    if let Some(status) = child.try_wait()? {
        bail!(
            "the sensor exited at start-up ({status}): see {}",
            dir.join(format!("sensor-{round}.stderr")).display()
        );
    }
    let cpu_before = cpu_seconds(pid)?;
    let started = Instant::now();
    let result = run();
    let cpu = cpu_seconds(pid)? - cpu_before;
    let wall = started.elapsed().as_secs_f64();
    let rss_mib = peak_rss_mib(pid);
    stop(&mut child)?;
    let wrk = result?;
    let text = fs::read_to_string(&records)?;
    let recorded = text
        .lines()
        .filter(|l| l.contains("\"path\":\"/api/items/1\"") && l.contains("\"status\":200"))
        .count() as u64;
    let stats: Value = fs::read_to_string(&stats)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    Ok(SensorRun {
        completed: wrk.requests,
        recorded,
        cpu_pct: 100.0 * cpu / wall,
        rss_mib,
        wrk,
        stats,
    })
}

/// SIGINT, then wait (at most 30 s) for the sensor to flush and exit.
fn stop(child: &mut Child) -> Result<()> {
    run_quiet(Command::new("kill").args(["-INT", &child.id().to_string()]))?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            ensure!(status.success(), "the sensor exited with {status}");
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            bail!("the sensor did not stop within 30 s of SIGINT");
        }
        sleep(Duration::from_millis(50));
    }
}

/// Counters of the sensor's stats whose name says they count a loss.
fn loss_counters(stats: &Value) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut walk = vec![(String::new(), stats)];
    while let Some((prefix, v)) = walk.pop() {
        if let Value::Object(map) = v {
            for (k, v) in map {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                let lossy = ["drop", "lost", "fail", "trunc", "gap"]
                    .iter()
                    .any(|w| name.contains(w));
                match v.as_u64() {
                    Some(n) if n > 0 && lossy => out.push((name, n)),
                    _ => walk.push((name, v)),
                }
            }
        }
    }
    out.sort();
    out
}

fn build_sensor(source: Source) -> Result<PathBuf> {
    banner("load-test: build the release sensor");
    let mut cmd = cargo();
    cmd.args(["build", "--release", "-p", "shadowtap-sensor"]);
    if source == Source::Pcap {
        cmd.args(["--features", "libpcap"]);
    }
    run_checked(&mut cmd)?;
    Ok(target_dir().join("release/shadowtap-sensor"))
}

pub(crate) fn run(args: &LoadTestArgs) -> Result<ExitCode> {
    ensure!(
        is_root(),
        "cargo xtask load-test needs root (network namespaces, packet capture)"
    );
    let missing = ensure_tools(&[Tool::Nginx, Tool::Wrk], true);
    ensure!(missing.is_empty(), "nginx and wrk are needed");
    let wrk_bin = crate::util::which("wrk").context("wrk")?;
    let sensor = match &args.sensor {
        Some(p) => p.clone(),
        None => build_sensor(args.source)?,
    };
    let dir = target_dir().join("load-test");
    fs::create_dir_all(&dir)?;

    banner("load-test: network namespaces, nginx");
    let net = Netns::create()?;
    let _nginx = Nginx::start(&net, &dir)?;
    // Warm-up: connections, caches, CPU frequency.
    wrk(&net, &wrk_bin, args.threads, args.connections, 3)?;

    let mut alone = Vec::new();
    let mut alone_latency = Vec::new();
    let mut with = Vec::new();
    let mut with_latency = Vec::new();
    for round in 1..=args.rounds {
        banner(&format!("load-test: round {round}/{}", args.rounds));
        let a = wrk(&net, &wrk_bin, args.threads, args.connections, args.seconds)?;
        let al = wrk(&net, &wrk_bin, 1, 1, args.latency_seconds)?;
        eprintln!(
            "    alone:  {:.0} req/s, one-connection latency {:.1} µs",
            a.rps(),
            al.latency_us
        );
        let s = with_sensor(&net, &sensor, args.source, &dir, round, || {
            wrk(&net, &wrk_bin, args.threads, args.connections, args.seconds)
        })?;
        let sl = with_sensor(&net, &sensor, args.source, &dir, round + 1000, || {
            wrk(&net, &wrk_bin, 1, 1, args.latency_seconds)
        })?;
        eprintln!(
            "    sensor: {:.0} req/s, {} completed, {} recorded, CPU {:.0} %, one-connection latency {:.1} µs",
            s.wrk.rps(),
            s.completed,
            s.recorded,
            s.cpu_pct,
            sl.wrk.latency_us
        );
        alone.push(a);
        alone_latency.push(al);
        with_latency.push(sl);
        with.push(s);
    }

    let med = |v: Vec<f64>| summarize(&v).map_or(f64::NAN, |s| s.median);
    let alone_rps = med(alone.iter().map(WrkResult::rps).collect());
    let with_rps = med(with.iter().map(|s| s.wrk.rps()).collect());
    let cost_pct = 100.0 * (alone_rps - with_rps) / alone_rps;
    let alone_lat = med(alone_latency.iter().map(|r| r.latency_us).collect());
    let with_lat = med(with_latency.iter().map(|r| r.wrk.latency_us).collect());
    let added_ns = (with_lat - alone_lat) * 1000.0;
    let completed: u64 = with.iter().map(|s| s.completed).sum();
    let recorded: u64 = with.iter().map(|s| s.recorded).sum();
    let lost = completed.saturating_sub(recorded);
    let loss_pct = 100.0 * lost as f64 / completed.max(1) as f64;
    let cpu = med(with.iter().map(|s| s.cpu_pct).collect());
    let rss = with
        .iter()
        .filter_map(|s| s.rss_mib)
        .fold(0.0_f64, f64::max);
    let counters: Vec<(String, u64)> = with.iter().flat_map(|s| loss_counters(&s.stats)).collect();

    let source = match args.source {
        Source::Ebpf => "ebpf",
        Source::Pcap => "libpcap",
    };
    println!(
        "load test: source {source}, {} rounds of {} s, wrk -t{} -c{}, nginx 1 worker",
        args.rounds, args.seconds, args.threads, args.connections
    );
    println!(
        "server alone          {alone_rps:>10.0} req/s   latency (1 conn) {alone_lat:>8.1} µs"
    );
    println!("server + sensor       {with_rps:>10.0} req/s   latency (1 conn) {with_lat:>8.1} µs");
    println!("throughput cost       {cost_pct:>10.2} %       (target < 5 %)");
    println!("added latency         {added_ns:>10.0} ns      (target < 500 ns)");
    println!("exchanges             {recorded} recorded of {completed} completed: {lost} lost ({loss_pct:.4} %)");
    println!("sensor CPU            {cpu:>10.0} %   (of one core, median)");
    println!("sensor peak RSS       {rss:>10.1} MiB");
    for (name, n) in &counters {
        println!("loss counter          {name} = {n}");
    }
    let result = json!({
        "source": source,
        "rounds": args.rounds,
        "seconds": args.seconds,
        "alone_rps": alone_rps,
        "with_sensor_rps": with_rps,
        "throughput_cost_pct": cost_pct,
        "latency_alone_us": alone_lat,
        "latency_with_sensor_us": with_lat,
        "added_latency_ns": added_ns,
        "completed": completed,
        "recorded": recorded,
        "lost": lost,
        "loss_pct": loss_pct,
        "sensor_cpu_pct": cpu,
        "sensor_peak_rss_mib": rss,
    });
    fs::write(
        dir.join("result.json"),
        serde_json::to_string_pretty(&result)?,
    )?;

    let mut failed = Vec::new();
    if with_rps < args.min_rps {
        failed.push(format!(
            "{with_rps:.0} req/s with the sensor is below {:.0}",
            args.min_rps
        ));
    }
    if loss_pct > args.max_loss_pct {
        failed.push(format!(
            "loss {loss_pct:.4} % is above {} %",
            args.max_loss_pct
        ));
    }
    for f in &failed {
        println!("FAIL: {f}");
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read() {
        let text = "Running 10s test @ http://10.201.0.1:8080/api/items/1\n\
  1 threads and 32 connections\n\
  Thread Stats   Avg      Stdev     Max   +/- Stdev\n\
    Latency     2.30ms    2.90ms  20.69ms   85.42%\n\
    Req/Sec    13.50k     5.78k   34.58k    72.73%\n\
  Latency Distribution\n\
     50%  705.00us\n\
  134451 requests in 10.04s, 26.54MB read\n\
Requests/sec:  13384.93\n";
        let r = parse_wrk(text).expect("parsed");
        assert_eq!(r.requests, 134_451);
        assert!((r.seconds - 10.04).abs() < 1e-9);
        assert!((r.latency_us - 2300.0).abs() < 1e-6);
        assert!((r.rps() - 13_391.4).abs() < 1.0);
        assert!(parse_wrk("garbage").is_err());
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration_s("705.00us"), Some(705e-6));
        assert_eq!(parse_duration_s("1.50m"), Some(90.0));
        assert_eq!(parse_duration_s("3s"), Some(3.0));
        assert_eq!(parse_duration_s("3h"), None);
        assert_eq!(parse_duration_s("ms"), None);
    }

    #[test]
    fn loss_counters_are_found_at_any_depth() {
        let stats = json!({"packets": 10, "kernel_drops": 0, "drops": {"ring_full": 3, "x": 1},
                           "ebpf": {"reserve_failed": 2}, "gaps": 1});
        let found = loss_counters(&stats);
        let expected = [
            ("drops.ring_full", 3),
            ("drops.x", 1),
            ("ebpf.reserve_failed", 2),
            ("gaps", 1),
        ]
        .map(|(k, n)| (k.to_owned(), n));
        assert_eq!(found, expected);
    }
}
