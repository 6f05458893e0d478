//! `cargo xtask load-test`: the live sensor under load, against the server alone.
//!
//! ```text
//!  netns st-lt-cli-PID                 netns st-lt-srv-PID
//!  wrk, load client ── veth stlc<PID> ═══ veth stls<PID> ── nginx (1 worker, keep-alive)
//!                                  TC programs or packet socket ┘└─ shadowtap-sensor -w records
//!  CPUs (`--cpus pinned`, the default): nginx on CPU 0; wrk, the load client, the sensor on CPU 1
//! ```
//!
//! Each round measures nginx alone and nginx with the sensor capturing on
//! the server's veth, in alternating order from round to round, so drift of
//! a noisy machine hits both sides alike:
//! - **throughput**: `wrk -t T -c C -d D`, requests/s, and how busy each CPU
//!   was. Pinned, the server has CPU 0 to itself, so a lower rate with the
//!   sensor is what the probes (and the kernel's copy to the sensor) cost
//!   the server, not the sensor's user-space work competing with nginx for
//!   a core, as it does unpinned (`--cpus shared`) on two cores;
//! - **latency**: `cargo xtask load-client` (`latency.rs`): one keep-alive
//!   connection at a fixed rate well below capacity, median and p99 round
//!   trip over many requests; medians of those across rounds;
//! - **probe time** (eBPF): with `kernel.bpf_stats_enabled = 1` (restored
//!   afterwards) the kernel times every run of the sensor's TC programs
//!   (`probe.rs`); their run time divided by the requests served is the
//!   time they add to each request's packet path.
//!
//! With the sensor, every request the client completed must be an exchange
//! record with a status (loss = completed − recorded, never negative), and
//! the sensor's CPU share, peak RSS and loss counters are read from `/proc`
//! and its `--stats-json`. Needs root (namespaces, capture, the sysctl),
//! `nginx`, `wrk` (installed with apt when missing) and `taskset`.

mod latency;
mod probe;
mod wrk;

pub(crate) use latency::{run as load_client, LoadClientArgs};
use wrk::{parse_wrk, WrkResult};

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
/// Requests the latency client sends before it measures.
const LATENCY_WARMUP: u64 = 200;
/// The response nginx gives: a small JSON object, like an API's item.
const BODY: &str = r#"{"id":1,"name":"widget","price":9.5,"tags":["a","b"],"stock":{"warehouse":"w1","count":12}}"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Source {
    /// `--ebpf -i IFACE` (TC classifier, ring buffer).
    Ebpf,
    /// `-i IFACE` through libpcap.
    Pcap,
}

/// Where the processes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CpuLayout {
    /// nginx on CPU 0; wrk, the load client and the sensor on CPU 1.
    Pinned,
    /// Wherever the scheduler puts them (all compete for every CPU).
    Shared,
}

impl CpuLayout {
    fn server_cpu(self) -> Option<u32> {
        (self == CpuLayout::Pinned).then_some(0)
    }

    /// The client's and the sensor's CPU.
    fn client_cpu(self) -> Option<u32> {
        (self == CpuLayout::Pinned).then_some(1)
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct LoadTestArgs {
    /// Capture source the sensor uses.
    #[arg(long, value_enum, default_value = "ebpf")]
    source: Source,
    /// Seconds of each throughput phase.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Requests per second of the latency phase's client.
    #[arg(long, default_value_t = 1000)]
    latency_rate: u32,
    /// Requests measured in each latency phase.
    #[arg(long, default_value_t = 10_000)]
    latency_requests: u64,
    /// wrk connections for the throughput phase.
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// wrk threads.
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// Rounds (alone, with sensor) to take medians over.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// CPU placement of server, client and sensor.
    #[arg(long, value_enum, default_value = "pinned")]
    cpus: CpuLayout,
    /// Extra argument for the sensor, repeatable (e.g. `--sensor-arg=--ports
    /// --sensor-arg=9999` attaches the programs but selects no packet: the
    /// cost of the hook and the parse alone; every exchange then counts as
    /// lost).
    #[arg(long = "sensor-arg", value_name = "ARG", allow_hyphen_values = true)]
    sensor_args: Vec<String>,
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

    /// `program` in namespace `ns`, on `cpu` if given (`taskset`).
    fn exec(&self, ns: &str, program: &Path, cpu: Option<u32>) -> Command {
        let mut c = match cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &cpu.to_string(), "ip"]);
                c
            }
            None => Command::new("ip"),
        };
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
    fn start(net: &Netns, dir: &Path, cpu: Option<u32>) -> Result<Nginx> {
        let conf = dir.join("nginx.conf");
        let pid_file = dir.join("nginx.pid");
        let _ = fs::remove_file(&pid_file);
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
            net.exec(&net.server, &nginx, cpu)
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

/// What the load test runs against nginx, with or without the sensor.
struct Bench<'a> {
    net: &'a Netns,
    args: &'a LoadTestArgs,
    wrk: PathBuf,
    dir: PathBuf,
    sensor: PathBuf,
}

/// A throughput run: wrk's result and each CPU's busy share meanwhile.
#[derive(Debug, Clone)]
struct Throughput {
    wrk: WrkResult,
    cpu_busy: Vec<f64>,
}

impl Bench<'_> {
    fn wrk(&self, seconds: u64) -> Result<Throughput> {
        let before = probe::cpu_times()?;
        let out = self
            .net
            .exec(&self.net.client, &self.wrk, self.args.cpus.client_cpu())
            .args([
                format!("-t{}", self.args.threads),
                format!("-c{}", self.args.connections),
                format!("-d{seconds}s"),
                format!("http://{SERVER_IP}:{PORT}/api/items/1"),
            ])
            .output()
            .context("running wrk")?;
        let cpu_busy = probe::busy_pct(&before, &probe::cpu_times()?);
        let text = String::from_utf8_lossy(&out.stdout);
        ensure!(out.status.success(), "wrk failed: {text}");
        let wrk = parse_wrk(&text).with_context(|| format!("reading wrk's output:\n{text}"))?;
        Ok(Throughput { wrk, cpu_busy })
    }

    /// The fixed-rate one-connection client (this binary's `load-client`).
    fn latency(&self) -> Result<latency::LatencySummary> {
        let me = std::env::current_exe().context("the xtask binary")?;
        let out = self
            .net
            .exec(&self.net.client, &me, self.args.cpus.client_cpu())
            .args([
                "load-client".to_owned(),
                format!("--addr={SERVER_IP}:{PORT}"),
                "--path=/api/items/1".to_owned(),
                format!("--rate={}", self.args.latency_rate),
                format!("--requests={}", self.args.latency_requests),
                format!("--warmup={LATENCY_WARMUP}"),
            ])
            .stderr(Stdio::inherit())
            .output()
            .context("running the load client")?;
        let text = String::from_utf8_lossy(&out.stdout);
        ensure!(out.status.success(), "the load client failed: {text}");
        let v: Value = serde_json::from_str(text.trim()).context("load client output")?;
        latency::LatencySummary::from_json(&v)
    }

    /// Requests the latency client sends in one run, warm-up included.
    fn latency_sent(&self) -> u64 {
        self.args.latency_requests + LATENCY_WARMUP
    }
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

/// The sensor's side of a run: started before the client, stopped
/// (SIGINT) after it.
struct SensorRun {
    recorded: u64,
    cpu_pct: f64,
    rss_mib: Option<f64>,
    stats: Value,
    /// The TC programs' runs while the client ran (eBPF).
    probe: Option<probe::ProgRuns>,
}

impl Bench<'_> {
    fn with_sensor<T>(&self, tag: &str, run: impl FnOnce() -> Result<T>) -> Result<(T, SensorRun)> {
        let dir = &self.dir;
        let records = dir.join(format!("records-{tag}.jsonl"));
        let stats = dir.join(format!("stats-{tag}.json"));
        let log_path = dir.join(format!("sensor-{tag}.stderr"));
        let log = fs::File::create(&log_path)?;
        let ebpf = self.args.source == Source::Ebpf;
        let mut cmd = self
            .net
            .exec(&self.net.server, &self.sensor, self.args.cpus.client_cpu());
        if ebpf {
            cmd.arg("--ebpf");
        }
        cmd.args(["-i", &self.net.server_if, "-w"])
            .arg(&records)
            .arg("--stats-json")
            .arg(&stats)
            .args(&self.args.sensor_args)
            .stdout(Stdio::null())
            .stderr(log);
        let mut child = cmd.spawn().context("starting the sensor")?;
        let pid = child.id();
        // Attaching takes a moment; the sensor must still be running after it.
        sleep(Duration::from_secs(2));
        if let Some(status) = child.try_wait()? {
            bail!(
                "the sensor exited at start-up ({status}): see {}",
                log_path.display()
            );
        }
        let runs = || ebpf.then(|| probe::prog_runs(pid)).transpose();
        let probe_before = runs()?;
        let cpu_before = cpu_seconds(pid)?;
        let started = Instant::now();
        let result = run();
        let cpu = cpu_seconds(pid)? - cpu_before;
        let wall = started.elapsed().as_secs_f64();
        let probe = runs()?.zip(probe_before).map(|(a, b)| a.since(b));
        let rss_mib = peak_rss_mib(pid);
        stop(&mut child)?;
        let result = result?;
        let text = fs::read_to_string(&records)?;
        let recorded = text
            .lines()
            .filter(|l| l.contains("\"path\":\"/api/items/1\"") && l.contains("\"status\":200"))
            .count() as u64;
        let stats: Value = fs::read_to_string(&stats)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        Ok((
            result,
            SensorRun {
                recorded,
                cpu_pct: 100.0 * cpu / wall,
                rss_mib,
                stats,
                probe,
            },
        ))
    }
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

/// One round's figures.
struct Round {
    alone: Throughput,
    with: Throughput,
    with_sensor: SensorRun,
    latency_alone: latency::LatencySummary,
    latency_with: latency::LatencySummary,
    latency_sensor: SensorRun,
}

fn round(bench: &Bench<'_>, n: usize) -> Result<Round> {
    let args = bench.args;
    // Odd rounds measure the server alone first, even rounds with the sensor.
    let alone_first = n % 2 == 1;
    let mut alone = None;
    let mut with = None;
    for alone_turn in [alone_first, !alone_first] {
        if alone_turn {
            alone = Some(bench.wrk(args.seconds)?);
        } else {
            with = Some(bench.with_sensor(&format!("{n}-throughput"), || bench.wrk(args.seconds))?);
        }
    }
    let mut latency_alone = None;
    let mut latency_with = None;
    for alone_turn in [alone_first, !alone_first] {
        if alone_turn {
            latency_alone = Some(bench.latency()?);
        } else {
            latency_with = Some(bench.with_sensor(&format!("{n}-latency"), || bench.latency())?);
        }
    }
    let (with, with_sensor) = with.context("throughput with the sensor")?;
    let (latency_with, latency_sensor) = latency_with.context("latency with the sensor")?;
    Ok(Round {
        alone: alone.context("throughput alone")?,
        with,
        with_sensor,
        latency_alone: latency_alone.context("latency alone")?,
        latency_with,
        latency_sensor,
    })
}

fn cpus(busy: &[f64]) -> String {
    busy.iter()
        .enumerate()
        .map(|(i, b)| format!("cpu{i} {b:.0} %"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the TC programs cost, from the kernel's run-time accounting.
#[derive(Debug, Clone, Copy)]
struct ProbeCost {
    ns_per_run: f64,
    runs_per_request: f64,
    ns_per_request: f64,
}

impl ProbeCost {
    fn of(runs: Option<probe::ProgRuns>, requests: u64) -> Option<ProbeCost> {
        let runs = runs?;
        let requests = requests.max(1) as f64;
        Some(ProbeCost {
            ns_per_run: runs.ns_per_run(),
            runs_per_request: runs.run_cnt as f64 / requests,
            ns_per_request: runs.run_time_ns as f64 / requests,
        })
    }

    fn to_json(self) -> Value {
        json!({"ns_per_run": self.ns_per_run, "runs_per_request": self.runs_per_request,
               "ns_per_request": self.ns_per_request})
    }
}

pub(crate) fn run(args: &LoadTestArgs) -> Result<ExitCode> {
    ensure!(
        is_root(),
        "cargo xtask load-test needs root (network namespaces, packet capture)"
    );
    let missing = ensure_tools(&[Tool::Nginx, Tool::Wrk], true);
    ensure!(missing.is_empty(), "nginx and wrk are needed");
    if args.cpus == CpuLayout::Pinned {
        ensure!(
            crate::util::which("taskset").is_some(),
            "--cpus pinned needs taskset (util-linux)"
        );
        let online = std::thread::available_parallelism().map_or(1, usize::from);
        ensure!(
            online >= 2,
            "--cpus pinned needs two CPUs ({online} here); use --cpus shared"
        );
    }
    let wrk_bin = crate::util::which("wrk").context("wrk")?;
    let sensor = match &args.sensor {
        Some(p) => p.clone(),
        None => build_sensor(args.source)?,
    };
    let dir = target_dir().join("load-test");
    fs::create_dir_all(&dir)?;
    let _bpf_stats = match args.source {
        Source::Ebpf => Some(probe::BpfStats::enable()?),
        Source::Pcap => None,
    };

    banner("load-test: network namespaces, nginx");
    let net = Netns::create()?;
    let _nginx = Nginx::start(&net, &dir, args.cpus.server_cpu())?;
    let bench = Bench {
        net: &net,
        args,
        wrk: wrk_bin,
        dir: dir.clone(),
        sensor,
    };
    // Warm-up: connections, caches, CPU frequency.
    bench.wrk(3)?;

    let mut rounds = Vec::new();
    for n in 1..=args.rounds {
        banner(&format!("load-test: round {n}/{}", args.rounds));
        let r = round(&bench, n)?;
        eprintln!(
            "    alone:  {:.0} req/s ({}); latency median {:.1} µs, p99 {:.1} µs",
            r.alone.wrk.rps(),
            cpus(&r.alone.cpu_busy),
            r.latency_alone.median_us,
            r.latency_alone.p99_us,
        );
        eprintln!(
            "    sensor: {:.0} req/s ({}), {} completed, {} recorded, sensor CPU {:.0} %; \
             latency median {:.1} µs, p99 {:.1} µs",
            r.with.wrk.rps(),
            cpus(&r.with.cpu_busy),
            r.with.wrk.requests,
            r.with_sensor.recorded,
            r.with_sensor.cpu_pct,
            r.latency_with.median_us,
            r.latency_with.p99_us,
        );
        if let Some(p) = ProbeCost::of(r.with_sensor.probe, r.with.wrk.requests) {
            eprintln!(
                "    probes: {:.0} ns per run, {:.2} runs per request, {:.0} ns per request \
                 (throughput phase)",
                p.ns_per_run, p.runs_per_request, p.ns_per_request
            );
        }
        rounds.push(r);
    }

    let med = |v: Vec<f64>| summarize(&v).map_or(f64::NAN, |s| s.median);
    let alone_rps = med(rounds.iter().map(|r| r.alone.wrk.rps()).collect());
    let with_rps = med(rounds.iter().map(|r| r.with.wrk.rps()).collect());
    let cost_pct = 100.0 * (alone_rps - with_rps) / alone_rps;
    let ncpu = rounds.first().map_or(0, |r| r.alone.cpu_busy.len());
    let busy = |f: &dyn Fn(&Round) -> &Vec<f64>| -> Vec<f64> {
        (0..ncpu)
            .map(|i| med(rounds.iter().map(|r| f(r)[i]).collect()))
            .collect()
    };
    let alone_busy = busy(&|r| &r.alone.cpu_busy);
    let with_busy = busy(&|r| &r.with.cpu_busy);
    let lat = |f: &dyn Fn(&Round) -> f64| med(rounds.iter().map(f).collect());
    let alone_p50 = lat(&|r| r.latency_alone.median_us);
    let with_p50 = lat(&|r| r.latency_with.median_us);
    let alone_p99 = lat(&|r| r.latency_alone.p99_us);
    let with_p99 = lat(&|r| r.latency_with.p99_us);
    let added_p50_ns = (with_p50 - alone_p50) * 1000.0;
    let added_p99_ns = (with_p99 - alone_p99) * 1000.0;
    let late: u64 = rounds
        .iter()
        .map(|r| r.latency_alone.late + r.latency_with.late)
        .sum();

    let sent = bench.latency_sent();
    let completed: u64 = rounds.iter().map(|r| r.with.wrk.requests + sent).sum();
    let recorded: u64 = rounds
        .iter()
        .map(|r| r.with_sensor.recorded + r.latency_sensor.recorded)
        .sum();
    let lost = completed.saturating_sub(recorded);
    let loss_pct = 100.0 * lost as f64 / completed.max(1) as f64;
    let cpu = med(rounds.iter().map(|r| r.with_sensor.cpu_pct).collect());
    let rss = rounds
        .iter()
        .flat_map(|r| [r.with_sensor.rss_mib, r.latency_sensor.rss_mib])
        .flatten()
        .fold(0.0_f64, f64::max);
    let counters: Vec<(String, u64)> = rounds
        .iter()
        .flat_map(|r| [&r.with_sensor.stats, &r.latency_sensor.stats])
        .flat_map(loss_counters)
        .collect();
    let probe_med = |f: &dyn Fn(&Round) -> Option<ProbeCost>| {
        let v: Vec<ProbeCost> = rounds.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| ProbeCost {
            ns_per_run: med(v.iter().map(|p| p.ns_per_run).collect()),
            runs_per_request: med(v.iter().map(|p| p.runs_per_request).collect()),
            ns_per_request: med(v.iter().map(|p| p.ns_per_request).collect()),
        })
    };
    let probe_load = probe_med(&|r| ProbeCost::of(r.with_sensor.probe, r.with.wrk.requests));
    let probe_idle = probe_med(&|r| ProbeCost::of(r.latency_sensor.probe, sent));

    let source = match args.source {
        Source::Ebpf => "ebpf",
        Source::Pcap => "libpcap",
    };
    let layout = match args.cpus {
        CpuLayout::Pinned => "pinned: nginx on CPU 0; wrk, load client and sensor on CPU 1",
        CpuLayout::Shared => "shared: not pinned",
    };
    let loadavg = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = loadavg.split_whitespace().take(3).collect();
    println!(
        "load test: source {source}, {} rounds (medians across rounds), nginx 1 worker, CPUs {layout}",
        args.rounds
    );
    println!("load average at the end (1, 5, 15 min): {}", load.join(" "));
    if !args.sensor_args.is_empty() {
        println!("sensor arguments added: {}", args.sensor_args.join(" "));
    }
    println!(
        "throughput: wrk -t{} -c{}, {} s per run",
        args.threads, args.connections, args.seconds
    );
    println!(
        "  server alone          {alone_rps:>10.0} req/s   CPU busy: {}",
        cpus(&alone_busy)
    );
    println!(
        "  server + sensor       {with_rps:>10.0} req/s   CPU busy: {}",
        cpus(&with_busy)
    );
    println!("  throughput cost       {cost_pct:>10.2} %       (target < 5 %)");
    println!(
        "latency: one connection, {} req/s, {} requests per run ({late} sent late)",
        args.latency_rate, args.latency_requests
    );
    println!("  server alone          median {alone_p50:>8.1} µs   p99 {alone_p99:>8.1} µs");
    println!("  server + sensor       median {with_p50:>8.1} µs   p99 {with_p99:>8.1} µs");
    println!(
        "  added                 median {added_p50_ns:>+8.0} ns   p99 {added_p99_ns:>+8.0} ns   (target < 500 ns)"
    );
    for (phase, p) in [("under load", probe_load), ("latency phase", probe_idle)] {
        if let Some(p) = p {
            println!(
                "probes ({phase}): {:.0} ns per run × {:.2} runs per request = \
                 {:.0} ns per request   (bpf_stats; target < 500 ns)",
                p.ns_per_run, p.runs_per_request, p.ns_per_request
            );
        }
    }
    println!("exchanges             {recorded} recorded of {completed} completed: {lost} lost ({loss_pct:.4} %)");
    println!("sensor CPU            {cpu:>10.0} %   (of one core, median of throughput runs)");
    println!("sensor peak RSS       {rss:>10.1} MiB");
    for (name, n) in &counters {
        println!("loss counter          {name} = {n}");
    }
    let probe_json = |p: Option<ProbeCost>| p.map_or(Value::Null, ProbeCost::to_json);
    let result = json!({
        "source": source,
        "cpus": layout,
        "sensor_args": args.sensor_args,
        "rounds": args.rounds,
        "seconds": args.seconds,
        "alone_rps": alone_rps,
        "with_sensor_rps": with_rps,
        "throughput_cost_pct": cost_pct,
        "cpu_busy_alone_pct": alone_busy,
        "cpu_busy_with_sensor_pct": with_busy,
        "latency_rate": args.latency_rate,
        "latency_requests": args.latency_requests,
        "latency_alone_median_us": alone_p50,
        "latency_with_sensor_median_us": with_p50,
        "latency_alone_p99_us": alone_p99,
        "latency_with_sensor_p99_us": with_p99,
        "added_latency_median_ns": added_p50_ns,
        "added_latency_p99_ns": added_p99_ns,
        "latency_sent_late": late,
        "probe_under_load": probe_json(probe_load),
        "probe_latency_phase": probe_json(probe_idle),
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
    println!("result: {}", dir.join("result.json").display());

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
