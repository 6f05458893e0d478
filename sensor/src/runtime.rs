//! The runtimes: capture files → engine → JSON Lines ([`run`]), and live
//! sources until a stop condition ([`live::run_live`]).

pub mod live;
pub mod output;

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use shadowtap_proto::engine::{Counters, Engine, EngineConfig, RECORD_BATCH};
use shadowtap_proto::hash::HashSeed;
use shadowtap_proto::record::FingerprintKey;
use shadowtap_proto::ExchangeRecord;

use crate::capture::{CaptureSource, ErrorKind, FileSource};
use crate::memory::{self, MemoryFit, MemoryLimit};
use crate::summary;

/// What the command line asked for.
#[derive(Clone, Debug)]
pub struct Options {
    pub inputs: Vec<PathBuf>,
    pub output: PathBuf,
    pub stats_json: Option<PathBuf>,
    pub fingerprint_key_file: Option<PathBuf>,
    pub quiet: bool,
    /// What the engine's caps are fitted to (see [`crate::memory`]).
    pub memory_limit: MemoryLimit,
}

/// How a run ended.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// Inputs that could not be opened or read at all.
    pub unreadable_inputs: usize,
    /// Inputs that were truncated or corrupt (read up to the damage).
    pub damaged_inputs: usize,
    /// One line per damaged or unreadable input.
    pub input_errors: Vec<String>,
    pub elapsed_s: f64,
    pub peak_rss_bytes: Option<u64>,
    /// False when no key was given and fingerprints use a per-run key.
    pub fingerprint_key_persistent: bool,
    /// The memory limit the caps were fitted to, if there was one.
    pub memory: Option<MemoryFit>,
    /// Live captures only: why it stopped, records written, kernel drops.
    #[serde(flatten)]
    pub live: Option<live::LiveReport>,
    #[serde(flatten)]
    pub counters: Counters,
}

/// Reads every input in order through one engine and writes the records.
pub fn run(options: &Options) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let (key, persistent) = load_key(options.fingerprint_key_file.as_deref())?;
    let (config, memory) = engine_config(key, options.memory_limit, options.quiet)?;
    let mut engine = Engine::new(config);
    let mut writer = RecordWriter::open(&options.output)?;
    let inputs = read_captures(
        &options.inputs,
        &mut engine,
        &ReadOptions {
            program: "shadowtap-sensor",
            progress: !options.quiet,
        },
        &mut |records| {
            writer.write_all(records)?;
            records.clear();
            Ok(())
        },
    )?;
    writer.finish()?;

    let outcome = Outcome {
        unreadable_inputs: inputs.unreadable,
        damaged_inputs: inputs.damaged,
        input_errors: inputs.errors,
        elapsed_s: started.elapsed().as_secs_f64(),
        peak_rss_bytes: peak_rss_bytes(),
        fingerprint_key_persistent: persistent,
        memory,
        live: None,
        counters: engine.counters(),
    };
    report(&outcome, options.stats_json.as_deref(), options.quiet)?;
    Ok(outcome)
}

/// Writes `--stats-json` (when asked) and the summary on standard error
/// (unless quiet): the end of every run, file or live.
pub(crate) fn report(
    outcome: &Outcome,
    stats_json: Option<&Path>,
    quiet: bool,
) -> anyhow::Result<()> {
    if let Some(path) = stats_json {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        serde_json::to_writer_pretty(BufWriter::new(file), outcome)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !quiet {
        eprint!("{}", summary::render(outcome));
    }
    Ok(())
}

/// Logs go to standard error, at the level `SHADOWTAP_LOG` names (an
/// `EnvFilter` directive, default `warn`). Records never do.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SHADOWTAP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
}

/// How [`read_captures`] reports on the terminal.
#[derive(Clone, Copy, Debug)]
pub struct ReadOptions<'a> {
    /// Prefix of the error lines printed on standard error.
    pub program: &'a str,
    /// Show a progress bar when standard error is a terminal.
    pub progress: bool,
}

/// Which inputs could not be read to their end.
#[derive(Clone, Debug, Default)]
pub struct InputReport {
    /// Inputs that could not be opened or read at all.
    pub unreadable: usize,
    /// Inputs that were not captures, or truncated or corrupt.
    pub damaged: usize,
    /// One line per damaged or unreadable input, also printed on stderr.
    pub errors: Vec<String>,
}

/// Feeds every packet of every capture file in `inputs`, in order, through
/// `engine`, then finishes it. Whenever records are complete, `sink` gets
/// them and must drain the vector. A damaged or unreadable input is reported
/// and skipped (packets before the damage are processed); only an error from
/// `sink` ends the run early.
pub fn read_captures(
    inputs: &[PathBuf],
    engine: &mut Engine,
    options: &ReadOptions<'_>,
    sink: &mut dyn FnMut(&mut Vec<ExchangeRecord>) -> anyhow::Result<()>,
) -> anyhow::Result<InputReport> {
    let program = options.program;
    let mut report = InputReport::default();
    let mut records = Vec::new();
    for input in inputs {
        let mut source = match FileSource::open(input) {
            Ok(s) => s,
            Err(error) => {
                // A file that can't be opened or isn't a capture: report it, go on.
                eprintln!("{program}: {error}");
                report.errors.push(error.to_string());
                match error.kind() {
                    ErrorKind::Io => report.unreadable += 1,
                    _ => report.damaged += 1,
                }
                continue;
            }
        };
        let bar = progress_bar(!options.progress, source.progress().1);
        let mut since_tick = 0u32;
        loop {
            match source.next_packet() {
                Ok(Some(pkt)) => {
                    engine.on_packet(pkt.ts, pkt.link_type, pkt.data, &mut records);
                    if !records.is_empty() || engine.backlog() > 0 {
                        deliver(engine, &mut records, sink)?;
                    }
                    since_tick += 1;
                    if since_tick == 4096 {
                        since_tick = 0;
                        if let Some(bar) = &bar {
                            bar.set_position(source.progress().0);
                        }
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    // Everything before the damage has been processed.
                    eprintln!("{program}: {error}");
                    report.errors.push(error.to_string());
                    report.damaged += 1;
                    break;
                }
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    }
    engine.finish(&mut records);
    deliver(engine, &mut records, sink)?;
    Ok(report)
}

/// Hands `records` to `sink`, then the engine's backlog batch by batch (see
/// [`shadowtap_proto::engine::EngineConfig::max_records_per_call`]), so that
/// a burst of exchanges is never held as records all at once.
pub(crate) fn deliver(
    engine: &mut Engine,
    records: &mut Vec<ExchangeRecord>,
    sink: &mut dyn FnMut(&mut Vec<ExchangeRecord>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    loop {
        if !records.is_empty() {
            sink(records)?;
        }
        if engine.backlog() == 0 {
            return Ok(());
        }
        engine.drain_more(records);
    }
}

fn progress_bar(quiet: bool, total: Option<u64>) -> Option<ProgressBar> {
    if quiet || !io::stderr().is_terminal() {
        return None;
    }
    let bar = match total {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner(),
    };
    Some(bar)
}

/// Loads the fingerprint key, or makes a random one for this run; the flag
/// says whether the key is persistent (read from `path`).
pub fn load_key(path: Option<&Path>) -> anyhow::Result<(FingerprintKey, bool)> {
    if let Some(path) = path {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading fingerprint key {}", path.display()))?;
        let key = FingerprintKey::from_slice(&bytes).with_context(|| {
            format!(
                "fingerprint key {} is shorter than 16 bytes",
                path.display()
            )
        })?;
        return Ok((key, true));
    }
    let bytes = random_bytes().context("reading a random fingerprint key from /dev/urandom")?;
    Ok((FingerprintKey::new(bytes), false))
}

/// `N` bytes from `/dev/urandom`.
fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes))?;
    Ok(bytes)
}

/// The engine's configuration: `key` for fingerprints and a random seed, new
/// for each process, for the hash tables keyed by wire-controlled tuples
/// (flows, fragments), so that nobody can craft tuples that collide. The
/// seed never changes the records, only their cost. The caps are fitted to
/// `limit` (see [`crate::memory`]), which is said on standard error unless
/// `quiet`.
pub fn engine_config(
    key: FingerprintKey,
    limit: MemoryLimit,
    quiet: bool,
) -> anyhow::Result<(EngineConfig, Option<MemoryFit>)> {
    let seed = random_bytes().context("reading a random hash-table seed from /dev/urandom")?;
    let mut config = EngineConfig::new(key);
    config.hash_seed = HashSeed::from_bytes(seed);
    config.max_records_per_call = RECORD_BATCH;
    let fit = memory::fit(&mut config, limit);
    if let (Some(fit), false) = (&fit, quiet) {
        eprintln!("shadowtap-sensor: {fit}");
    }
    Ok((config, fit))
}

/// Peak resident set size of this process (`VmHWM`), where the OS tells it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Bytes of output collected before they are written out.
pub const OUTPUT_BUFFER_BYTES: usize = 1 << 20;
/// Room allocated past [`OUTPUT_BUFFER_BYTES`] for the record that crosses it.
const OUTPUT_HEADROOM_BYTES: usize = 64 << 10;

/// The output `-w` names (`-` is standard output) and its name for errors,
/// writable from any thread.
pub(crate) fn open_output(path: &Path) -> anyhow::Result<(Box<dyn Write + Send>, String)> {
    if path == Path::new("-") {
        return Ok((Box::new(io::stdout()), "standard output".into()));
    }
    let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    Ok((Box::new(f), path.display().to_string()))
}

/// JSON Lines output of capture files: one record per line, nothing else in
/// the stream. Written on the reading thread, so a slow output slows the
/// reading and nothing is lost (a live capture queues instead:
/// [`output`]).
pub(crate) struct RecordWriter {
    sink: Box<dyn Write>,
    /// Records not yet written: at most [`OUTPUT_BUFFER_BYTES`] plus one record.
    pending: Vec<u8>,
    name: String,
}

impl RecordWriter {
    pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
        let (sink, name): (Box<dyn Write>, String) = if path == Path::new("-") {
            (Box::new(io::stdout().lock()), "standard output".into())
        } else {
            let (sink, name) = open_output(path)?;
            (sink, name)
        };
        Ok(RecordWriter {
            sink,
            pending: Vec::with_capacity(OUTPUT_BUFFER_BYTES + OUTPUT_HEADROOM_BYTES),
            name,
        })
    }

    pub(crate) fn write_all(&mut self, records: &[ExchangeRecord]) -> anyhow::Result<()> {
        for r in records {
            r.write_json(&mut self.pending);
            self.pending.push(b'\n');
            if self.pending.len() >= OUTPUT_BUFFER_BYTES {
                self.write_pending()?;
            }
        }
        Ok(())
    }

    fn write_pending(&mut self) -> anyhow::Result<()> {
        self.sink
            .write_all(&self.pending)
            .with_context(|| format!("writing {}", self.name))?;
        self.pending.clear();
        Ok(())
    }

    /// Writes what is pending and flushes, so a live capture's records
    /// reach the output while it waits for traffic.
    pub(crate) fn flush(&mut self) -> anyhow::Result<()> {
        self.write_pending()?;
        self.sink
            .flush()
            .with_context(|| format!("writing {}", self.name))
    }

    pub(crate) fn finish(mut self) -> anyhow::Result<()> {
        self.flush()
    }
}
