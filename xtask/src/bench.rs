//! `cargo xtask bench`: release-sensor throughput on a large pcap, compared with tshark.
//!
//! ```text
//! generate/reuse target/bench-data/http-300mb.pcap  (../shared/bench/gen_http_pcap.py)
//!   -> cargo xtask dist: release build with profile-guided optimisation (--no-pgo: without)
//!   -> warm the page cache (read the file once)
//!   -> N x  taskset -c 0 shadowtap-sensor -r FILE -w /dev/null --stats-json OUT
//!   -> N x  taskset -c 0 shadowtap analyze -q FILE  (and with --no-anomalies)
//!   -> N x  shadowtap analyze -q FILE, not pinned (every CPU: two threads)
//!   -> M x  taskset -c 0 tshark -r FILE -Y http.request -T fields -e frame.number
//!   -> table on stdout + target/bench-data/bench-result.json, PASS/FAIL per floor
//! ```
//!
//! MB are 10^6 bytes, MiB are 2^20 bytes.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use crate::util::{banner, cargo, display_cmd, repo_root, run_checked, target_dir, which};

const DEFAULT_PCAP: &str = "target/bench-data/http-300mb.pcap";
const BENCH_DIR: &str = "target/bench-data";
const GENERATOR: &str = "../shared/bench/gen_http_pcap.py";

#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Capture to benchmark (default: generate target/bench-data/http-300mb.pcap).
    #[arg(long, value_name = "PCAP")]
    file: Option<PathBuf>,
    /// Timed sensor runs (after one warm-up read of the file).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Timed tshark runs.
    #[arg(long, default_value_t = 3)]
    tshark_runs: usize,
    /// Skip the tshark comparison.
    #[arg(long)]
    no_tshark: bool,
    /// Throughput floor, MB/s (10^6 bytes) of file read.
    #[arg(long, default_value_t = 1000.0)]
    floor_mbps: f64,
    /// Floor for tshark wall time / sensor wall time.
    #[arg(long, default_value_t = 200.0)]
    floor_ratio: f64,
    /// Ceiling for the sensor's peak RSS, MiB.
    #[arg(long, default_value_t = 128.0)]
    max_rss_mib: f64,
    /// Exit 1 when a floor fails (default: report only).
    #[arg(long)]
    enforce: bool,
    /// Use this sensor binary instead of building `target/dist/shadowtap-sensor`.
    #[arg(long, value_name = "PATH")]
    sensor: Option<PathBuf>,
    /// Benchmark a plain release build (`cargo xtask dist --no-pgo`) instead of the
    /// profile-guided one.
    #[arg(long)]
    no_pgo: bool,
    /// Skip the `shadowtap analyze` runs (timed after each sensor run).
    #[arg(long)]
    no_analyze: bool,
    /// Ceiling for analyze wall time / sensor wall time.
    #[arg(long, default_value_t = 1.5)]
    max_analyze_ratio: f64,
    /// Ceiling for the anomaly stage's cost: analyze against analyze
    /// --no-anomalies, in percent of the latter.
    #[arg(long, default_value_t = 10.0)]
    max_anomaly_cost_pct: f64,
}

/// Median, min and max of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

/// Summarizes samples; `None` when empty or when a sample is NaN.
/// One row of the timing table: label, median, min and max seconds.
fn timing_row(label: &str, t: &Summary) {
    println!(
        "{label:<22} {:>9.3}s {:>9.3}s {:>9.3}s",
        t.median, t.min, t.max
    );
}

pub(crate) fn summarize(samples: &[f64]) -> Option<Summary> {
    if samples.is_empty() || samples.iter().any(|s| s.is_nan()) {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Some(Summary {
        median,
        min: sorted[0],
        max: sorted[n - 1],
    })
}

/// The keys of the sensor's `--stats-json` file that the bench uses (others are ignored).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SensorStats {
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
    pub(crate) exchanges: u64,
    pub(crate) elapsed_s: f64,
    pub(crate) peak_rss_bytes: u64,
}

pub(crate) fn parse_stats(text: &str) -> Result<SensorStats> {
    let v: Value = serde_json::from_str(text).context("stats file is not JSON")?;
    let u = |key: &str| {
        v.get(key)
            .and_then(Value::as_u64)
            .with_context(|| format!("stats: `{key}` missing or not u64"))
    };
    let elapsed_s = v
        .get("elapsed_s")
        .and_then(Value::as_f64)
        .context("stats: `elapsed_s` missing or not a number")?;
    Ok(SensorStats {
        packets: u("packets")?,
        bytes: u("bytes")?,
        // The sensor nests it under `http`; older stats had it at the top.
        exchanges: match v.pointer("/http/exchanges").and_then(Value::as_u64) {
            Some(n) => n,
            None => u("exchanges")?,
        },
        elapsed_s,
        peak_rss_bytes: u("peak_rss_bytes")?,
    })
}

/// Counts newline-terminated lines (and a final unterminated one) from a reader, streaming.
pub(crate) fn count_lines(mut reader: impl Read) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut lines = 0u64;
    let mut last = b'\n';
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buf[..n];
        lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        last = chunk[n - 1];
    }
    if last != b'\n' {
        lines += 1;
    }
    Ok(lines)
}

/// One timed `shadowtap analyze` of `file` (table to /dev/null, the default
/// output), returning the wall time. `one_cpu`: pinned to CPU 0 as the
/// sensor is, else free to use every CPU (captures are then read on one
/// thread and aggregated on another).
fn time_analyze(
    analyzer: &Path,
    file: &Path,
    run: usize,
    extra: &[&str],
    one_cpu: bool,
) -> Result<f64> {
    let err = PathBuf::from(format!("{BENCH_DIR}/analyze-{run}.stderr"));
    let mut cmd = if one_cpu {
        pinned(analyzer).0
    } else {
        Command::new(analyzer)
    };
    cmd.args(["analyze", "-q"]).args(extra).arg(file);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&err)?);
    let shown = display_cmd(&cmd);
    let start = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{shown}`"))?;
    let wall = start.elapsed().as_secs_f64();
    if !status.success() {
        let text = fs::read_to_string(&err).unwrap_or_default();
        bail!("`{shown}` failed ({status}): {}", text.trim());
    }
    Ok(wall)
}

/// Outcome of one floor check.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Check {
    pub(crate) name: &'static str,
    pub(crate) wanted: String,
    pub(crate) measured: Option<f64>,
    pub(crate) pass: Option<bool>,
}

pub(crate) fn check_floors(
    mbps: f64,
    ratio: Option<f64>,
    peak_rss_mib: f64,
    args: (f64, f64, f64),
) -> Vec<Check> {
    let (floor_mbps, floor_ratio, max_rss_mib) = args;
    vec![
        Check {
            name: "throughput",
            wanted: format!(">= {floor_mbps} MB/s"),
            measured: Some(mbps),
            pass: Some(mbps >= floor_mbps),
        },
        Check {
            name: "tshark ratio",
            wanted: format!(">= {floor_ratio}x"),
            measured: ratio,
            pass: ratio.map(|r| r >= floor_ratio),
        },
        Check {
            name: "peak RSS",
            wanted: format!("<= {max_rss_mib} MiB"),
            measured: Some(peak_rss_mib),
            pass: Some(peak_rss_mib <= max_rss_mib),
        },
    ]
}

/// Wraps `program` in `taskset -c 0` when taskset exists (pins to one core).
fn pinned(program: &Path) -> (Command, bool) {
    match which("taskset") {
        Some(taskset) => {
            let mut cmd = Command::new(taskset);
            cmd.args(["-c", "0"]).arg(program);
            (cmd, true)
        }
        None => (Command::new(program), false),
    }
}

/// Runs tshark once on `file`, returning (wall seconds, number of http.request lines).
pub(crate) fn tshark_count(tshark: &Path, file: &Path, stderr_to: &Path) -> Result<(f64, u64)> {
    let (mut cmd, _) = pinned(tshark);
    cmd.arg("-r")
        .arg(file)
        .args(["-Y", "http.request", "-T", "fields", "-e", "frame.number"]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(stderr_to)?);
    let shown = display_cmd(&cmd);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{shown}`"))?;
    let stdout = child.stdout.take().context("tshark stdout")?;
    let lines = count_lines(stdout).context("reading tshark output")?;
    let status = child.wait()?;
    let wall = start.elapsed().as_secs_f64();
    if !status.success() {
        let err = fs::read_to_string(stderr_to).unwrap_or_default();
        bail!("`{shown}` failed ({status}): {}", err.trim());
    }
    Ok((wall, lines))
}

/// `requests` from the generator's `FILE.truth.json` sidecar, when there is one.
pub(crate) fn read_truth_requests(pcap: &Path) -> Option<u64> {
    let text = fs::read_to_string(format!("{}.truth.json", pcap.display())).ok()?;
    serde_json::from_str::<Value>(&text)
        .ok()?
        .get("requests")?
        .as_u64()
}

fn prepare_input(args: &BenchArgs) -> Result<PathBuf> {
    if let Some(file) = &args.file {
        ensure!(file.is_file(), "--file {} does not exist", file.display());
        return Ok(file.clone());
    }
    let pcap = PathBuf::from(DEFAULT_PCAP);
    if pcap.is_file() {
        eprintln!("    reusing {DEFAULT_PCAP}");
        return Ok(pcap);
    }
    let generator = repo_root().join(GENERATOR);
    if !generator.is_file() {
        eprintln!(
            "shared generator not found at {}; pass --file",
            generator.display()
        );
        std::process::exit(2);
    }
    fs::create_dir_all(BENCH_DIR)?;
    let generated = run_checked(Command::new("python3").arg(GENERATOR).args([
        "-o",
        DEFAULT_PCAP,
        "--target-mb",
        "300",
        "--seed",
        "1",
    ]));
    if let Err(error) = generated {
        // Never leave a truncated capture behind to be "reused" next time.
        let _ = fs::remove_file(&pcap);
        let _ = fs::remove_file(format!("{DEFAULT_PCAP}.truth.json"));
        return Err(error);
    }
    Ok(pcap)
}

pub(crate) fn run(args: &BenchArgs) -> Result<ExitCode> {
    ensure!(args.runs > 0, "--runs must be at least 1");
    banner("bench: input");
    let file = prepare_input(args)?;
    let file_bytes = fs::metadata(&file)?.len();
    eprintln!("    {} ({:.1} MB)", file.display(), file_bytes as f64 / 1e6);

    // The binaries `cargo xtask dist` ships, unless a sensor is given.
    let build = if args.no_pgo {
        "release"
    } else {
        "release + PGO"
    };
    let (sensor, build) = match &args.sensor {
        Some(path) => (path.clone(), "given (--sensor)"),
        None => {
            banner(&format!("bench: build ({build}) with cargo xtask dist"));
            crate::dist::run(&crate::dist::DistArgs::plain(args.no_pgo))?;
            (crate::dist::dist_dir().join("shadowtap-sensor"), build)
        }
    };
    let analyzer = if args.no_analyze {
        None
    } else if args.sensor.is_none() {
        Some(crate::dist::dist_dir().join("shadowtap"))
    } else {
        banner("bench: build release analyzer");
        run_checked(cargo().args(["build", "--release", "-p", "shadowtap-analyzer"]))?;
        Some(target_dir().join("release/shadowtap"))
    };
    ensure!(
        sensor.is_file(),
        "sensor binary not found at {}",
        sensor.display()
    );

    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    banner("bench: warm page cache");
    io::copy(&mut File::open(&file)?, &mut io::sink())?;

    fs::create_dir_all(BENCH_DIR)?;
    banner(&format!("bench: sensor x{}", args.runs));
    let mut walls = Vec::new();
    let mut analyze_walls = Vec::new();
    let mut plain_walls = Vec::new();
    let mut free_walls = Vec::new();
    let mut stats = Vec::new();
    let mut was_pinned = false;
    for i in 1..=args.runs {
        let out = PathBuf::from(format!("{BENCH_DIR}/sensor-stats-{i}.json"));
        let err = PathBuf::from(format!("{BENCH_DIR}/sensor-{i}.stderr"));
        let (mut cmd, p) = pinned(&sensor);
        was_pinned = p;
        cmd.arg("-r")
            .arg(&file)
            .args(["-w", "/dev/null", "--stats-json"])
            .arg(&out);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&err)?);
        let shown = display_cmd(&cmd);
        let start = Instant::now();
        let status = cmd
            .status()
            .with_context(|| format!("cannot start `{shown}`"))?;
        let wall = start.elapsed().as_secs_f64();
        if !status.success() {
            let text = fs::read_to_string(&err).unwrap_or_default();
            bail!("`{shown}` failed ({status}): {}", text.trim());
        }
        let s = parse_stats(&fs::read_to_string(&out)?)
            .with_context(|| format!("in {}", out.display()))?;
        eprintln!("    run {i}: {wall:.3}s wall, {} exchanges", s.exchanges);
        walls.push(wall);
        stats.push(s);
        if let Some(analyzer) = &analyzer {
            // Interleaved with the sensor runs, so both see the same noise,
            // and in alternating order, so neither always runs first.
            let (t, plain) = if i % 2 == 0 {
                let t = time_analyze(analyzer, &file, i, &[], true)?;
                (
                    t,
                    time_analyze(analyzer, &file, i, &["--no-anomalies"], true)?,
                )
            } else {
                let plain = time_analyze(analyzer, &file, i, &["--no-anomalies"], true)?;
                (time_analyze(analyzer, &file, i, &[], true)?, plain)
            };
            let free = time_analyze(analyzer, &file, i, &[], false)?;
            eprintln!(
                "    run {i}: analyze {t:.3}s wall, {plain:.3}s with --no-anomalies, \
                 {free:.3}s on {cpus} CPUs"
            );
            analyze_walls.push(t);
            plain_walls.push(plain);
            free_walls.push(free);
        }
    }
    let analyze_wall = summarize(&analyze_walls);
    let plain_wall = summarize(&plain_walls);
    let free_wall = summarize(&free_walls);
    let wall = summarize(&walls).context("no sensor timings")?;
    let sensor_elapsed =
        summarize(&stats.iter().map(|s| s.elapsed_s).collect::<Vec<_>>()).context("elapsed_s")?;
    let last = stats.last().copied().context("no sensor stats")?;
    if stats.iter().any(|s| s.exchanges != last.exchanges) {
        eprintln!("    warning: exchange counts differ between runs");
    }
    let peak_rss = stats.iter().map(|s| s.peak_rss_bytes).max().unwrap_or(0);
    let peak_rss_mib = peak_rss as f64 / (1024.0 * 1024.0);
    let mbps = file_bytes as f64 / 1e6 / wall.median;
    let exchanges_per_s = last.exchanges as f64 / wall.median;

    let mut tshark_result = None;
    if args.no_tshark || args.tshark_runs == 0 {
        eprintln!("    tshark comparison skipped");
    } else if let Some(tshark) = which("tshark") {
        banner(&format!("bench: tshark x{}", args.tshark_runs));
        let mut t_walls = Vec::new();
        let mut requests = 0;
        for i in 1..=args.tshark_runs {
            let err = PathBuf::from(format!("{BENCH_DIR}/tshark-{i}.stderr"));
            let (t, n) = tshark_count(&tshark, &file, &err)?;
            eprintln!("    run {i}: {t:.3}s wall, {n} requests");
            t_walls.push(t);
            requests = n;
        }
        let t = summarize(&t_walls).context("no tshark timings")?;
        tshark_result = Some((t, requests));
    } else {
        eprintln!("    tshark not installed; comparison skipped (apt-get install tshark)");
    }
    let truth_requests = read_truth_requests(&file);
    let accuracy = match crate::accuracy::truth_counts(&file) {
        Ok(truth) => {
            banner("bench: accuracy against the generator's ground truth");
            let records = PathBuf::from(format!("{BENCH_DIR}/records.jsonl"));
            let status = Command::new(&sensor)
                .arg("-q")
                .arg("-r")
                .arg(&file)
                .arg("-w")
                .arg(&records)
                .status()
                .context("running the sensor for the accuracy check")?;
            ensure!(status.success(), "sensor failed on {}", file.display());
            let report = crate::accuracy::compare(&fs::read_to_string(&records)?, &truth)?;
            for (t, want, got) in report.mismatches.iter().take(20) {
                eprintln!("    mismatch {t}: truth {want}, sensor {got}");
            }
            Some(report)
        }
        Err(error) => {
            eprintln!("    no ground truth for this file ({error:#}); accuracy not checked");
            None
        }
    };
    let inventory = match (&analyzer, crate::accuracy::truth_counts(&file)) {
        (Some(analyzer), Ok(truth)) => {
            banner("bench: inventory templates against the ground truth");
            let report = PathBuf::from(format!("{BENCH_DIR}/analyze-report.json"));
            let status = Command::new(analyzer)
                .args(["analyze", "-q", "--format", "json"])
                .arg(&file)
                .stdout(File::create(&report)?)
                .status()
                .context("running the analyzer for the inventory check")?;
            ensure!(status.success(), "analyze failed on {}", file.display());
            let a = crate::accuracy::compare_inventory(&fs::read_to_string(&report)?, &truth)?;
            for (t, want, got) in a.mismatches.iter().take(20) {
                eprintln!("    inventory mismatch {t}: truth {want}, inventory {got}");
            }
            Some(a)
        }
        _ => None,
    };
    let ratio = tshark_result.map(|(t, _)| t.median / wall.median);
    let mut checks = check_floors(
        mbps,
        ratio,
        peak_rss_mib,
        (args.floor_mbps, args.floor_ratio, args.max_rss_mib),
    );
    if let Some(a) = analyze_wall {
        let r = a.median / wall.median;
        checks.push(Check {
            name: "analyze/sensor (1 CPU)",
            measured: Some(r),
            wanted: format!("<= {}x", args.max_analyze_ratio),
            pass: Some(r <= args.max_analyze_ratio),
        });
    }
    // The stage's cost: the median of each run's own pair (analyze against
    // the --no-anomalies run beside it), which drift between runs cannot move.
    let paired_costs: Vec<f64> = analyze_walls
        .iter()
        .zip(&plain_walls)
        .map(|(a, p)| (a / p - 1.0) * 100.0)
        .collect();
    let paired = summarize(&paired_costs);
    if let Some(c) = paired {
        let cost = c.median;
        checks.push(Check {
            name: "anomaly cost %",
            measured: Some(cost),
            wanted: format!("<= {}%", args.max_anomaly_cost_pct),
            pass: Some(cost <= args.max_anomaly_cost_pct),
        });
    }

    let pin = if was_pinned {
        "taskset -c 0"
    } else {
        "not pinned (no taskset)"
    };
    println!();
    println!(
        "shadowtap bench: {} ({:.1} MB, {} packets), {pin}, build: {build}",
        file.display(),
        file_bytes as f64 / 1e6,
        last.packets
    );
    println!("{:<22} {:>10} {:>10} {:>10}", "", "median", "min", "max");
    timing_row(&format!("sensor wall (x{})", args.runs), &wall);
    timing_row("sensor elapsed_s", &sensor_elapsed);
    println!("{:<22} {:>10.1} MB/s", "throughput", mbps);
    println!(
        "{:<22} {:>10.0} /s ({} exchanges)",
        "exchanges", exchanges_per_s, last.exchanges
    );
    println!("{:<22} {:>10.1} MiB", "peak RSS (max)", peak_rss_mib);
    if let Some((t, requests)) = tshark_result {
        timing_row(&format!("tshark wall (x{})", args.tshark_runs), &t);
        println!(
            "{:<22} {:>10.1}x",
            "tshark / sensor",
            t.median / wall.median
        );
        println!(
            "{:<22} {:>10} tshark http.request vs {} sensor exchanges",
            "requests", requests, last.exchanges
        );
    }
    if let Some(n) = truth_requests {
        println!(
            "{:<22} {:>10} (generator ground truth)",
            "truth requests", n
        );
    }
    if let Some(a) = analyze_wall {
        timing_row(&format!("analyze wall (x{})", analyze_walls.len()), &a);
        println!(
            "{:<22} {:>10.2}x",
            "analyze / sensor",
            a.median / wall.median
        );
    }
    if let Some(p) = plain_wall {
        timing_row(&format!("--no-anomalies (x{})", plain_walls.len()), &p);
    }
    if let Some(f) = free_wall {
        timing_row(&format!("analyze, {cpus} CPUs (x{})", free_walls.len()), &f);
        println!(
            "{:<22} {:>10.2}x  (two threads; not a floor: the sensor has one CPU)",
            "  / sensor",
            f.median / wall.median
        );
    }
    if let Some(c) = paired {
        println!(
            "{:<22} {:>9.1}% {:>9.1}% {:>9.1}%  (median, min, max of each run's pair)",
            "anomaly stage cost", c.median, c.min, c.max
        );
    }
    if let Some(a) = &inventory {
        println!(
            "{:<22} {:>10} of {} truth templates with exact counts; {} differ, {} extra inventory templates",
            "inventory", a.exact, a.truth_templates, a.mismatches.len(), a.extra
        );
    }
    if let Some(a) = &accuracy {
        println!(
            "{:<22} {:>10} of {} truth requests matched per method+template; {} templates differ, {} unmatched, {} ambiguous records",
            "accuracy", a.found_total, a.truth_total, a.mismatches.len(), a.unmatched, a.ambiguous
        );
    }
    let mut failed = accuracy
        .as_ref()
        .is_some_and(|a| !a.mismatches.is_empty() || a.unmatched > 0)
        || inventory
            .as_ref()
            .is_some_and(|a| !a.mismatches.is_empty() || a.extra > 0);
    for c in &checks {
        let verdict = match c.pass {
            Some(true) => "PASS",
            Some(false) => {
                failed = true;
                "FAIL"
            }
            None => "SKIP",
        };
        let measured = c
            .measured
            .map_or_else(|| "-".to_owned(), |m| format!("{m:.1}"));
        println!(
            "{verdict:<5} {:<14} {measured:>10} (want {})",
            c.name, c.wanted
        );
    }

    let result = json!({
        "file": file.display().to_string(),
        "file_bytes": file_bytes,
        "pinned_cpu0": was_pinned,
        "build": build,
        "sensor": {
            "runs": args.runs,
            "wall_s": {"median": wall.median, "min": wall.min, "max": wall.max, "all": walls},
            "elapsed_s_median": sensor_elapsed.median,
            "throughput_mb_s": mbps,
            "exchanges": last.exchanges,
            "exchanges_per_s": exchanges_per_s,
            "packets": last.packets,
            "bytes": last.bytes,
            "peak_rss_bytes": peak_rss,
        },
        "tshark": tshark_result.map(|(t, requests)| json!({
            "runs": args.tshark_runs,
            "wall_s": {"median": t.median, "min": t.min, "max": t.max},
            "requests": requests,
            "ratio_tshark_over_sensor": t.median / wall.median,
        })),
        "truth_requests": truth_requests,
        "accuracy": accuracy.as_ref().map(|a| json!({
            "truth_requests": a.truth_total,
            "matched": a.found_total,
            "templates_differing": a.mismatches.len(),
            "unmatched_records": a.unmatched,
            "ambiguous_records": a.ambiguous,
        })),
        "analyze": analyze_wall.map(|a| json!({
            "runs": analyze_walls.len(),
            "wall_s": {"median": a.median, "min": a.min, "max": a.max, "all": analyze_walls},
            "ratio_analyze_over_sensor": a.median / wall.median,
        })),
        "analyze_all_cpus": free_wall.map(|f| json!({
            "cpus": cpus,
            "wall_s": {"median": f.median, "min": f.min, "max": f.max, "all": free_walls},
            "ratio_analyze_over_sensor": f.median / wall.median,
        })),
        "analyze_no_anomalies": plain_wall.map(|p| json!({
            "wall_s": {"median": p.median, "min": p.min, "max": p.max, "all": plain_walls},
            "anomaly_cost_pct_of_medians": analyze_wall.map(|a| (a.median / p.median - 1.0) * 100.0),
            "anomaly_cost_pct_paired": {"median": paired.map(|c| c.median), "all": paired_costs},
        })),
        "inventory": inventory.as_ref().map(|a| json!({
            "truth_templates": a.truth_templates,
            "exact": a.exact,
            "differing": a.mismatches.len(),
            "extra": a.extra,
        })),
        "floors": checks.iter().map(|c| json!({
            "name": c.name, "want": c.wanted, "measured": c.measured, "pass": c.pass,
        })).collect::<Vec<_>>(),
    });
    let out = format!("{BENCH_DIR}/bench-result.json");
    fs::write(&out, serde_json::to_string_pretty(&result)? + "\n")?;
    println!("wrote {out}");
    Ok(if failed && args.enforce {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarize_odd_even_and_empty() {
        let s = summarize(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!(
            s,
            Summary {
                median: 2.0,
                min: 1.0,
                max: 3.0
            }
        );
        let s = summarize(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(
            s,
            Summary {
                median: 2.5,
                min: 1.0,
                max: 4.0
            }
        );
        assert_eq!(summarize(&[7.5]).unwrap().median, 7.5);
        assert!(summarize(&[]).is_none());
        assert!(summarize(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn parse_stats_reads_required_keys_and_ignores_others() {
        let text = r#"{"packets":10,"bytes":2048,"exchanges":3,"elapsed_s":0.25,
                       "peak_rss_bytes":1048576,"flows":2,"anomalies":{"x":1}}"#;
        let s = parse_stats(text).unwrap();
        assert_eq!(
            s,
            SensorStats {
                packets: 10,
                bytes: 2048,
                exchanges: 3,
                elapsed_s: 0.25,
                peak_rss_bytes: 1 << 20
            }
        );
        // elapsed_s may be written as an integer.
        let s = parse_stats(
            r#"{"packets":0,"bytes":0,"exchanges":0,"elapsed_s":1,"peak_rss_bytes":0}"#,
        );
        assert_eq!(s.unwrap().elapsed_s, 1.0);
    }

    #[test]
    fn parse_stats_rejects_missing_or_mistyped_keys() {
        let err = parse_stats(r#"{"packets":1,"bytes":1,"elapsed_s":1.0,"peak_rss_bytes":1}"#);
        assert!(format!("{:#}", err.unwrap_err()).contains("exchanges"));
        assert!(parse_stats(
            r#"{"packets":-1,"bytes":1,"exchanges":1,"elapsed_s":1.0,"peak_rss_bytes":1}"#
        )
        .is_err());
        assert!(parse_stats("not json").is_err());
    }

    #[test]
    fn count_lines_handles_terminated_and_unterminated() {
        assert_eq!(count_lines(&b""[..]).unwrap(), 0);
        assert_eq!(count_lines(&b"1\n2\n3\n"[..]).unwrap(), 3);
        assert_eq!(count_lines(&b"1\n2"[..]).unwrap(), 2);
        let big = "12345\n".repeat(50_000);
        assert_eq!(count_lines(big.as_bytes()).unwrap(), 50_000);
    }

    #[test]
    fn floors_pass_fail_and_skip() {
        let c = check_floors(1200.0, Some(150.0), 64.0, (1000.0, 200.0, 128.0));
        let verdicts: Vec<_> = c.iter().map(|c| (c.name, c.pass)).collect();
        assert_eq!(
            verdicts,
            [
                ("throughput", Some(true)),
                ("tshark ratio", Some(false)),
                ("peak RSS", Some(true))
            ]
        );
        let c = check_floors(900.0, None, 200.0, (1000.0, 200.0, 128.0));
        assert_eq!(
            c.iter().map(|c| c.pass).collect::<Vec<_>>(),
            [Some(false), None, Some(false)]
        );
    }

    /// The tshark half of the bench, on the shipped sample capture.
    #[test]
    fn tshark_counts_requests_in_demo_sample() {
        let Some(tshark) = which("tshark") else {
            eprintln!("SKIP tshark_counts_requests_in_demo_sample: tshark is not installed");
            return;
        };
        let root = repo_root();
        let pcap = root.join("samples/demo-api.pcap");
        let expected = fs::read_to_string(root.join("samples/demo-api.expected.txt")).unwrap();
        let exchanges = expected.lines().filter(|l| !l.trim().is_empty()).count() as u64;
        let err = std::env::temp_dir().join(format!("xtask-tshark-{}.stderr", std::process::id()));
        let (wall, requests) = tshark_count(&tshark, &pcap, &err).unwrap();
        let _ = fs::remove_file(&err);
        assert!(wall > 0.0);
        // tshark prints one line per frame; the sample's pipelined pair shares one frame.
        assert_eq!(
            requests,
            exchanges - 1,
            "tshark http.request frames vs the client's log"
        );
        let out = Command::new(&tshark)
            .arg("-r")
            .arg(&pcap)
            .args([
                "-Y",
                "http.request",
                "-T",
                "fields",
                "-e",
                "http.request.method",
            ])
            .stderr(Stdio::null())
            .output()
            .unwrap();
        let methods = String::from_utf8_lossy(&out.stdout);
        let count = methods
            .lines()
            .map(|l| l.split(',').count() as u64)
            .sum::<u64>();
        assert_eq!(
            count, exchanges,
            "tshark request count vs the client's own log"
        );
    }
}
