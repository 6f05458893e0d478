//! The live runtime: a live [`CaptureSource`] → engine → JSON Lines, until
//! a stop condition.
//!
//! ```text
//!  loop ─┬─ next_packet ─ Some(p) ─► engine.on_packet(p.ts, ...)      (engine time = arrival time)
//!        │              └ None ───► engine.advance(wall clock − lag)   (idle flows expire)
//!        ├─ records ─► output queue ─► writer thread (handed over when idle and at
//!        │             least every FLUSH_INTERVAL; dropped and counted when full)
//!        ├─ every --stats-interval: one counter line on stderr
//!        └─ stop: SIGINT/SIGTERM, --duration, --count, a capture error
//!  engine.finish ─► last records ─► summary
//! ```
//!
//! Any backend works: the loop only sees `Box<dyn CaptureSource>` whose
//! [`CaptureSource::is_live`] contract is that `next_packet` returns
//! `Ok(None)` after a short poll interval without packets.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde::Serialize;

use shadowtap_proto::engine::Engine;
use shadowtap_proto::time::Timestamp;
use shadowtap_proto::ExchangeRecord;

use super::output::{OutputLimits, OutputQueue, OutputReport};
use super::{deliver, engine_config, load_key, open_output, peak_rss_bytes, Outcome};
use crate::capture::CaptureSource;
use crate::summary;

/// How far behind the wall clock the engine is advanced when idle. A live
/// source hands a packet over up to a poll interval after the kernel
/// stamped it; advancing to "now" minus this lag never moves the engine's
/// clock past a packet still on its way.
pub const ADVANCE_LAG: Duration = Duration::from_secs(1);

/// Longest time a completed record waits in the output buffer while
/// packets keep coming (when idle, records are written at once).
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// Longest time spent reading what is left in the source after a stop
/// signal or `--duration` (see [`STOP_DRAIN_IDLE_POLLS`]).
pub const STOP_DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// After a stop, reading ends once the source was idle for this many poll
/// intervals in a row (or after [`STOP_DRAIN_LIMIT`]).
pub const STOP_DRAIN_IDLE_POLLS: u32 = 2;

/// Default `--stats-interval`.
pub const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(10);

/// Exit status after a second SIGINT/SIGTERM (the first stops cleanly).
pub const FORCED_EXIT_STATUS: i32 = 130;

/// What the command line asked of a live capture.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    pub output: PathBuf,
    pub stats_json: Option<PathBuf>,
    pub fingerprint_key_file: Option<PathBuf>,
    /// No periodic counter lines, no start line and no summary.
    pub quiet: bool,
    /// Stop after this much wall-clock time.
    pub duration: Option<Duration>,
    /// Stop once this many exchange records have been written; exactly this
    /// many are written unless another stop condition comes first.
    pub count: Option<u64>,
    /// Period of the counter line on stderr; `None` for none.
    pub stats_interval: Option<Duration>,
    /// What the engine's caps are fitted to (see [`crate::memory`]).
    pub memory_limit: crate::memory::MemoryLimit,
    /// The output queue's bounds (see [`super::output`]).
    pub output_limits: OutputLimits,
}

/// Why a live capture stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// SIGINT or SIGTERM.
    Signal,
    /// `--duration` elapsed.
    Duration,
    /// `--count` records were written.
    Count,
    /// The source failed (the interface went away); see `input_errors`.
    CaptureError,
}

/// The live part of an [`Outcome`].
#[derive(Clone, Debug, Serialize)]
pub struct LiveReport {
    pub stopped_by: StopReason,
    /// Exchange records written to the output (`--count` caps it).
    pub records_written: u64,
    /// Records dropped because the output queue was full: the output did
    /// not take them as fast as they came (see [`super::output`]).
    pub output_queue_full: u64,
    /// Records still queued when the output had not taken them within
    /// [`OutputLimits::drain`] of the end.
    pub output_unflushed: u64,
    /// Most records the output queue held at once.
    pub output_queue_peak: usize,
    /// The source's losses outside this process (libpcap: `ps_drop`,
    /// `ps_ifdrop`), totals since it was opened.
    pub capture_drops: BTreeMap<&'static str, u64>,
    /// Every counter of the source (eBPF: events, ring-buffer failures,
    /// HTTP flows detected, …), totals since it was opened.
    pub capture_counters: BTreeMap<&'static str, u64>,
}

/// Set by SIGINT and SIGTERM; a second one of either exits at once with
/// [`FORCED_EXIT_STATUS`].
#[derive(Clone, Debug)]
pub struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    /// Installs the handlers (signal-hook's flag handlers: async-signal-safe).
    pub fn install() -> anyhow::Result<StopSignal> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let flag = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM] {
            // Order matters: the shutdown handler sees the flag as it was
            // before this signal, so only a second signal exits.
            signal_hook::flag::register_conditional_shutdown(
                signal,
                FORCED_EXIT_STATUS,
                Arc::clone(&flag),
            )
            .context("installing a signal handler")?;
            signal_hook::flag::register(signal, Arc::clone(&flag))
                .context("installing a signal handler")?;
        }
        Ok(StopSignal(flag))
    }

    /// True once a stop signal arrived.
    pub fn raised(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Runs a live capture until a stop condition; `what` names the source on
/// the start line (e.g. `eth0 (EN10MB)`).
pub fn run_live(
    source: Box<dyn CaptureSource>,
    what: &str,
    options: &LiveOptions,
) -> anyhow::Result<Outcome> {
    let (sink, name) = open_output(&options.output)?;
    run_live_to(source, what, options, sink, name)
}

/// [`run_live`] with the records written to `sink` (`name` names it in
/// errors).
pub(crate) fn run_live_to(
    mut source: Box<dyn CaptureSource>,
    what: &str,
    options: &LiveOptions,
    sink: Box<dyn Write + Send>,
    name: String,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let stop = StopSignal::install()?;
    let (key, persistent) = load_key(options.fingerprint_key_file.as_deref())?;
    let (config, memory) = engine_config(key, options.memory_limit, options.quiet)?;
    let mut engine = Engine::new(config);
    let mut out = CountedOutput {
        queue: OutputQueue::start(sink, name, options.output_limits)?,
        limit: options.count,
    };
    if !options.quiet {
        eprintln!("shadowtap-sensor: capturing on {what}; SIGINT or SIGTERM stops and flushes");
    }

    let deadline = options.duration.map(|d| started + d);
    let mut next_stats = options.stats_interval.map(|i| started + i);
    let mut last_flush = started;
    let mut records: Vec<ExchangeRecord> = Vec::new();
    let mut capture_error = None;
    let stopped_by = loop {
        if stop.raised() {
            break StopReason::Signal;
        }
        if out.full() {
            break StopReason::Count;
        }
        if let Some(error) = out.queue.error() {
            anyhow::bail!("{error}");
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break StopReason::Duration;
        }
        let idle = match source.next_packet() {
            Ok(Some(p)) => {
                engine.on_packet(p.ts, p.link_type, p.data, &mut records);
                false
            }
            Ok(None) => {
                engine.advance(wall_clock_minus(ADVANCE_LAG), &mut records);
                true
            }
            Err(error) => {
                capture_error = Some(error);
                break StopReason::CaptureError;
            }
        };
        if !records.is_empty() || engine.backlog() > 0 {
            deliver(&mut engine, &mut records, &mut |r| out.write(r))?;
        }
        if idle || now.duration_since(last_flush) >= FLUSH_INTERVAL {
            out.queue.flush();
            last_flush = now;
        }
        if let (Some(at), Some(interval)) = (next_stats, options.stats_interval) {
            if now >= at {
                next_stats = Some(at + interval);
                if !options.quiet {
                    eprintln!(
                        "{}",
                        summary::live_line(
                            started.elapsed(),
                            &engine.counters(),
                            engine.flow_count(),
                            out.queue.written(),
                            out.queue.queue_full(),
                            &source.drops()
                        )
                    );
                }
            }
        }
    };
    if matches!(stopped_by, StopReason::Signal | StopReason::Duration) {
        source.stop();
        // Packets that arrived before the stop may still sit in the kernel
        // (a live source hands them over up to a poll interval late): read
        // until the source is idle, so every exchange completed before the
        // stop is written.
        let until = Instant::now() + STOP_DRAIN_LIMIT;
        let mut idle_polls = 0;
        while idle_polls < STOP_DRAIN_IDLE_POLLS && Instant::now() < until && !out.full() {
            match source.next_packet() {
                Ok(Some(p)) => {
                    engine.on_packet(p.ts, p.link_type, p.data, &mut records);
                    idle_polls = 0;
                }
                Ok(None) => idle_polls += 1,
                Err(error) => {
                    capture_error = Some(error);
                    break;
                }
            }
            if !records.is_empty() || engine.backlog() > 0 {
                deliver(&mut engine, &mut records, &mut |r| out.write(r))?;
            }
        }
    }
    // Every exchange the engine holds comes out now: completed ones
    // were queued as they completed; pending requests come out unanswered.
    engine.finish(&mut records);
    deliver(&mut engine, &mut records, &mut |r| out.write(r))?;
    let output: OutputReport = match out.queue.finish() {
        Ok(report) => report,
        Err((_, error)) => anyhow::bail!("{error}"),
    };

    let mut input_errors = Vec::new();
    if let Some(error) = &capture_error {
        eprintln!("shadowtap-sensor: {error}");
        input_errors.push(error.to_string());
    }
    let outcome = Outcome {
        unreadable_inputs: usize::from(capture_error.is_some()),
        damaged_inputs: 0,
        input_errors,
        elapsed_s: started.elapsed().as_secs_f64(),
        peak_rss_bytes: peak_rss_bytes(),
        fingerprint_key_persistent: persistent,
        memory,
        live: Some(LiveReport {
            stopped_by,
            records_written: output.written,
            output_queue_full: output.queue_full,
            output_unflushed: output.unflushed,
            output_queue_peak: output.peak_records,
            capture_drops: source.drops().into_iter().collect(),
            capture_counters: source.counters().into_iter().collect(),
        }),
        counters: engine.counters(),
    };
    super::report(&outcome, options.stats_json.as_deref(), options.quiet)?;
    Ok(outcome)
}

/// The output queue with `--count`'s cap applied.
struct CountedOutput {
    queue: OutputQueue,
    limit: Option<u64>,
}

impl CountedOutput {
    /// True once `--count` records were accepted for output.
    fn full(&self) -> bool {
        self.limit.is_some_and(|l| self.queue.accepted() >= l)
    }

    /// Queues `records` (up to the cap; the rest are dropped) and drains it.
    fn write(&mut self, records: &mut Vec<ExchangeRecord>) -> anyhow::Result<()> {
        for r in records.iter() {
            if self.full() {
                break;
            }
            self.queue.push(r);
        }
        records.clear();
        Ok(())
    }
}

/// The wall clock, `lag` ago, as an engine timestamp.
fn wall_clock_minus(lag: Duration) -> Timestamp {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(lag);
    Timestamp(u64::try_from(now.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::capture::{CaptureError, CapturedPacket, FileSource};
    use crate::runtime::output::test_sinks::Gate;

    /// A capture file replayed as a live source: after the file's packets it
    /// idles (`Ok(None)` after a short wait) forever, or fails after
    /// `fail_after` packets.
    struct Replay {
        file: FileSource,
        packets: u64,
        fail_after: Option<u64>,
    }

    impl CaptureSource for Replay {
        fn next_packet(&mut self) -> Result<Option<CapturedPacket<'_>>, CaptureError> {
            if self.fail_after == Some(self.packets) {
                return Err(CaptureError::device(
                    "replay0",
                    std::io::Error::other("interface went away"),
                ));
            }
            self.packets += 1;
            match self.file.next_packet() {
                Ok(None) => {
                    std::thread::sleep(Duration::from_millis(10));
                    Ok(None)
                }
                other => other,
            }
        }

        fn progress(&self) -> (u64, Option<u64>) {
            (0, None)
        }

        fn is_live(&self) -> bool {
            true
        }

        fn drops(&self) -> Vec<(&'static str, u64)> {
            vec![("replay_drop", 7)]
        }
    }

    const HTTP2: &str =
        "../tests/fixtures/pcapplusplus/ExamplesTest/pcap_examples/http-packets2.pcap";

    fn replay(fail_after: Option<u64>) -> Box<dyn CaptureSource> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(HTTP2);
        Box::new(Replay {
            file: FileSource::open(&path).expect("fixture"),
            packets: 0,
            fail_after,
        })
    }

    fn options(name: &str) -> LiveOptions {
        let dir = std::env::temp_dir().join(format!("shadowtap-live-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        LiveOptions {
            output: dir.join(name),
            stats_json: None,
            fingerprint_key_file: None,
            quiet: true,
            duration: None,
            count: None,
            stats_interval: None,
            memory_limit: crate::memory::MemoryLimit::None,
            output_limits: OutputLimits::default(),
        }
    }

    fn lines(path: &Path) -> usize {
        std::fs::read_to_string(path)
            .expect("output")
            .lines()
            .count()
    }

    #[test]
    fn duration_stops_after_every_record_is_written() {
        let mut o = options("duration.jsonl");
        o.duration = Some(Duration::from_millis(300));
        let started = Instant::now();
        let outcome = run_live(replay(None), "replay", &o).expect("runs");
        assert!(started.elapsed() >= Duration::from_millis(300));
        let live = outcome.live.expect("live report");
        assert_eq!(live.stopped_by, StopReason::Duration);
        assert_eq!(live.records_written, 57);
        assert_eq!(live.capture_drops.get("replay_drop"), Some(&7));
        assert_eq!(lines(&o.output), 57);
        assert_eq!(outcome.unreadable_inputs, 0);
    }

    #[test]
    fn count_writes_exactly_n_records() {
        let mut o = options("count.jsonl");
        o.count = Some(5);
        let outcome = run_live(replay(None), "replay", &o).expect("runs");
        let live = outcome.live.expect("live report");
        assert_eq!(live.stopped_by, StopReason::Count);
        assert_eq!(live.records_written, 5);
        assert_eq!(lines(&o.output), 5);
    }

    #[test]
    fn a_capture_error_stops_and_keeps_what_came_before() {
        let o = options("error.jsonl");
        let outcome = run_live(replay(Some(100)), "replay", &o).expect("runs");
        let live = outcome.live.expect("live report");
        assert_eq!(live.stopped_by, StopReason::CaptureError);
        assert_eq!(outcome.unreadable_inputs, 1);
        assert!(outcome.input_errors[0].contains("replay0: live capture failed"));
        assert_eq!(outcome.counters.packets, 100);
        let written = lines(&o.output) as u64;
        assert_eq!(written, live.records_written);
        assert!(written > 0 && written < 57, "{written}");
    }

    /// The `path` of each JSON line.
    fn paths(text: &str) -> Vec<String> {
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
                v["path"].as_str().expect("path").to_owned()
            })
            .collect()
    }

    /// Options for a run of `ms` milliseconds; `small_queue` gives it a queue
    /// of 10 records and a drain limit of 200 ms.
    fn timed(name: &str, ms: u64, small_queue: bool) -> LiveOptions {
        let mut o = options(name);
        o.duration = Some(Duration::from_millis(ms));
        if small_queue {
            o.output_limits = OutputLimits {
                records: 10,
                bytes: 1 << 20,
                drain: Duration::from_millis(200),
            };
        }
        o
    }

    /// A run whose records go to `gate`.
    fn run_gated(o: &LiveOptions, gate: &Gate) -> Outcome {
        run_live_to(
            replay(None),
            "replay",
            o,
            Box::new(gate.clone()),
            "gate".into(),
        )
        .expect("runs")
    }

    #[test]
    fn a_stalled_output_never_stops_the_capture() {
        // Before the output queue, this run never ended: the first write
        // blocked the capture loop for good.
        let gate = Gate::default();
        let started = Instant::now();
        let outcome = run_gated(&timed("stalled.jsonl", 300, true), &gate);
        assert!(started.elapsed() < Duration::from_secs(5));
        let live = outcome.live.expect("live report");
        assert_eq!(live.stopped_by, StopReason::Duration);
        // Every packet was read and every exchange parsed...
        let reference = run_live(
            replay(None),
            "replay",
            &timed("stalled-ref.jsonl", 300, false),
        )
        .expect("runs");
        assert_eq!(outcome.counters.packets, reference.counters.packets);
        assert_eq!(outcome.counters.http.exchanges, 57);
        // ...and what the queue had no room for is counted, whole records.
        assert_eq!(live.records_written, 0);
        assert_eq!(live.output_unflushed, 10);
        assert_eq!(live.output_queue_full, 47);
        assert_eq!(live.output_queue_peak, 10);
        gate.open();
    }

    #[test]
    fn the_output_catches_up_when_its_reader_comes_back() {
        let gate = Gate::default();
        let opener = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                gate.open();
            })
        };
        let outcome = run_gated(&timed("late-reader.jsonl", 600, true), &gate);
        opener.join().expect("opener");
        let live = outcome.live.expect("live report");
        assert_eq!(live.output_unflushed, 0);
        assert!(live.output_queue_full > 0);
        assert_eq!(
            live.records_written + live.output_queue_full,
            outcome.counters.http.exchanges
        );
        // What was written came in the order of a run that kept up, without
        // a record cut or repeated, starting with the first ten (the newest
        // were dropped while the reader was away).
        let written = paths(&String::from_utf8(gate.bytes()).expect("utf-8"));
        assert_eq!(written.len() as u64, live.records_written);
        let r = timed("late-reader-ref.jsonl", 300, false);
        run_live(replay(None), "replay", &r).expect("runs");
        let all = paths(&std::fs::read_to_string(&r.output).expect("output"));
        assert_eq!(all.len(), 57);
        assert_eq!(written[..10], all[..10]);
        let mut rest = all.iter();
        assert!(
            written.iter().all(|p| rest.any(|q| q == p)),
            "not in order: {written:?}"
        );
    }
}
