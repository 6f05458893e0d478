//! `shadowtap-sensor --ebpf`: live capture through [`EbpfSource`] until
//! SIGINT, SIGTERM or `--duration`, then the usual summary.
//!
//! A loop of its own for now; the live runtime shared with libpcap capture
//! (periodic summaries, `--count`) takes `Box<dyn CaptureSource>` and will
//! replace it.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

use shadowtap_proto::engine::{Engine, EngineConfig};
use shadowtap_proto::time::Timestamp;

use crate::capture::ebpf::{EbpfConfig, EbpfSource};
use crate::capture::CaptureSource;
use crate::runtime::{load_key, peak_rss_bytes, Outcome, RecordWriter};
use crate::summary;

/// What `--ebpf` asked for.
#[derive(Clone, Debug)]
pub struct EbpfOptions {
    pub capture: EbpfConfig,
    /// Stop after this long (else at SIGINT/SIGTERM).
    pub duration: Option<Duration>,
    pub output: PathBuf,
    pub stats_json: Option<PathBuf>,
    pub fingerprint_key_file: Option<PathBuf>,
    pub quiet: bool,
}

/// Captures until stopped; returns the outcome and the source's counters.
pub fn run(options: &EbpfOptions) -> anyhow::Result<(Outcome, Vec<(&'static str, u64)>)> {
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing the SIGINT/SIGTERM handlers")?;
    }
    let (key, persistent) = load_key(options.fingerprint_key_file.as_deref())?;
    let mut engine = Engine::new(EngineConfig::new(key));
    let mut writer = RecordWriter::open(&options.output)?;
    let mut source = EbpfSource::open(&options.capture)?;
    if !options.quiet {
        let mut on = source.interfaces();
        on.extend(
            options
                .capture
                .follow
                .iter()
                .map(|p| format!("{p} (followed)")),
        );
        eprintln!(
            "shadowtap-sensor: capturing with eBPF on {} ({})",
            on.join(", "),
            if options.capture.ports.is_empty() {
                "all ports, HTTP detection".to_owned()
            } else {
                format!("ports {:?}", options.capture.ports)
            }
        );
    }
    let deadline = options.duration.map(|d| started + d);
    let mut records = Vec::new();
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        match source.next_packet() {
            Ok(Some(p)) => engine.on_packet(p.ts, p.link_type, p.data, &mut records),
            Ok(None) => {
                // Idle: let timeouts fire and get the records out.
                engine.advance(now(), &mut records);
                writer.write_all(&records)?;
                records.clear();
                writer.flush()?;
                continue;
            }
            Err(error) => return Err(error).context("reading the eBPF ring buffer"),
        }
        if !records.is_empty() {
            writer.write_all(&records)?;
            records.clear();
        }
    }
    // Detach, then drain what the ring still holds (up to one poll
    // interval of quiet), so a stop loses nothing already captured.
    source.detach_all();
    let mut drained = Vec::new();
    while let Ok(Some(p)) = source.next_packet() {
        engine.on_packet(p.ts, p.link_type, p.data, &mut drained);
    }
    records.append(&mut drained);
    let counters = source.counters();
    let drops = source.drops();
    drop(source);
    engine.finish(&mut records);
    writer.write_all(&records)?;
    writer.finish()?;

    let outcome = Outcome {
        unreadable_inputs: 0,
        damaged_inputs: 0,
        input_errors: Vec::new(),
        elapsed_s: started.elapsed().as_secs_f64(),
        peak_rss_bytes: peak_rss_bytes(),
        fingerprint_key_persistent: persistent,
        counters: engine.counters(),
    };
    if let Some(path) = &options.stats_json {
        let mut json = serde_json::to_value(&outcome).context("serialising the counters")?;
        if let Some(map) = json.as_object_mut() {
            for (name, value) in &counters {
                map.insert((*name).to_owned(), (*value).into());
            }
        }
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        serde_json::to_writer_pretty(BufWriter::new(file), &json)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !options.quiet {
        eprint!("{}", summary::render(&outcome));
        let lost: Vec<String> = drops.iter().map(|(n, v)| format!("{n} {v}")).collect();
        eprintln!("  eBPF losses: {}", lost.join(", "));
    }
    Ok((outcome, counters))
}

fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
