//! `cargo xtask scenario`: write a generated capture and its expected anomalies.
//!
//! ```text
//! cargo xtask scenario --seed 7 --rate 50 --hours 2 [--diurnal] [--clean]
//!     [--per-kind N] [--warmup-minutes M] [--body-scale F] --out DIR
//!   -> DIR/scenario-7.pcap, DIR/scenario-7.expected.json; a summary on stderr
//! ```
//!
//! The generator is `shadowtap-scenario`; `docs/scenarios.md` describes the
//! traffic model, the anomaly kinds and the expected-file format.

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use shadowtap_scenario::{generate, AnomalyPlan, Config, Diurnal};

/// Nanoseconds in an hour.
const HOUR_NS: f64 = 3_600e9;

#[derive(Debug, clap::Args)]
pub(crate) struct ScenarioArgs {
    /// Seed: the same arguments give the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Base load, requests per second (the peak when --diurnal is on).
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Packet time to simulate, hours (fractions allowed).
    #[arg(long, default_value_t = 2.0)]
    hours: f64,
    /// Modulate the load between ×0.2 and ×1.0: one 24 h cycle, or one
    /// cycle over the whole scenario when it is shorter than a day.
    #[arg(long)]
    diurnal: bool,
    /// Inject nothing (for measuring false alarms).
    #[arg(long)]
    clean: bool,
    /// Instances of each anomaly kind.
    #[arg(long, default_value_t = 2)]
    per_kind: u32,
    /// Warm-up before the first anomaly, minutes (default: 20 % of the
    /// scenario or 30 minutes, whichever is longer).
    #[arg(long)]
    warmup_minutes: Option<f64>,
    /// Multiply every endpoint's median response body size (compact
    /// captures: 0.1 makes bodies a tenth of the default).
    #[arg(long, default_value_t = 1.0)]
    body_scale: f64,
    /// Directory for the outputs (created if missing).
    #[arg(long)]
    out: PathBuf,
}

pub(crate) fn run(args: &ScenarioArgs) -> Result<ExitCode> {
    let mut config = Config::new(args.seed, args.hours, args.rate);
    config.body_scale = args.body_scale;
    if args.diurnal {
        let period = (args.hours.min(24.0) * HOUR_NS) as u64;
        config.diurnal = Some(Diurnal::compressed(period));
    }
    config.anomalies = if args.clean {
        AnomalyPlan::clean()
    } else {
        AnomalyPlan::all(args.per_kind)
    };
    config.anomalies.warmup_ns = args.warmup_minutes.map(|m| (m * 60e9) as u64);

    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let pcap = args.out.join(format!("scenario-{}.pcap", args.seed));
    let json = args
        .out
        .join(format!("scenario-{}.expected.json", args.seed));
    let file = File::create(&pcap).with_context(|| format!("creating {}", pcap.display()))?;
    let started = Instant::now();
    let report = generate(&config, file).with_context(|| format!("writing {}", pcap.display()))?;
    let elapsed = started.elapsed();
    fs::write(&json, report.expected.to_json())
        .with_context(|| format!("writing {}", json.display()))?;

    let s = &report.summary;
    eprintln!(
        "scenario {}: {} h at {} req/s{}{}",
        args.seed,
        args.hours,
        args.rate,
        if args.diurnal { ", diurnal" } else { "" },
        if args.clean { ", clean" } else { "" }
    );
    eprintln!(
        "  {} requests ({} anomalous), {} connections, {} packets, {:.1} MB in {:.1} s",
        s.requests,
        s.anomalous_requests,
        s.connections,
        s.packets,
        s.bytes as f64 / 1e6,
        elapsed.as_secs_f64()
    );
    eprintln!(
        "  status: 2xx {}, 3xx {}, 4xx {}, 5xx {}",
        s.status_classes[2], s.status_classes[3], s.status_classes[4], s.status_classes[5]
    );
    for (kind, n) in &s.anomalies {
        eprintln!("  {kind}: {n}");
    }
    for kind in &report.expected.skipped {
        eprintln!("  warning: no room for {kind} (scenario too short after the warm-up)");
    }
    eprintln!("  wrote {} and {}", pcap.display(), json.display());
    Ok(ExitCode::SUCCESS)
}
