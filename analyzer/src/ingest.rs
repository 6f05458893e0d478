//! Reads inputs into observations: captures through the sensor engine (in
//! process), record files and HAR files through [`crate::input`]; on two
//! threads when there are two CPUs ([`Pipeline`], [`aggregate`]).

use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::sync::mpsc;

use shadowtap_proto::engine::{Counters, Engine, EngineConfig};
use shadowtap_proto::record::{ExchangeRecord, FingerprintKey};
use shadowtap_sensor::runtime::{read_captures, InputReport, ReadOptions};

use crate::anomaly::Detectors;
use crate::input::{self, InputIdentity, InputKind};
use crate::observe::Observations;

/// What happened to one input.
#[derive(Clone, Debug)]
pub struct InputOutcome {
    pub path: PathBuf,
    /// `None` when the file could not be read or recognised, and for a
    /// stream on stdin (`-`).
    pub identity: Option<InputIdentity>,
    /// For `-`: what the stream's first bytes say it is.
    pub stream_kind: Option<InputKind>,
    /// The store already holds this input: it was not read again.
    pub already_ingested: bool,
    /// Problems, one line each (unreadable, damaged, bad lines).
    pub problems: Vec<String>,
    /// The input could not be read at all.
    pub unreadable: bool,
    /// The input was read up to damage, or had bad lines or entries.
    pub damaged: bool,
}

/// Everything read in one run.
#[derive(Debug, Default)]
pub struct Ingested {
    pub observations: Observations,
    pub inputs: Vec<InputOutcome>,
    /// Sensor counters over all captures read (zero when none).
    pub sensor: Option<Counters>,
}

/// Reads `paths`. `known` says whether the store already holds an input
/// (then it is skipped). Captures are read in the order given through one
/// engine, so a flow split across consecutive files stays one flow.
pub fn ingest(
    paths: &[PathBuf],
    key: &FingerprintKey,
    known: &dyn Fn(&InputIdentity) -> bool,
    progress: bool,
    mut detectors: Option<&mut Detectors>,
) -> Ingested {
    let mut out = Ingested::default();
    let mut captures = Vec::new();
    let pipeline = Pipeline::for_this_machine();
    for path in paths {
        let mut outcome = InputOutcome {
            path: path.clone(),
            identity: None,
            stream_kind: None,
            already_ingested: false,
            problems: Vec::new(),
            unreadable: false,
            damaged: false,
        };
        // `-`: a capture, records or a HAR file streamed on stdin. A stream
        // has no identity, so it is read on every run and never recognised
        // as already stored.
        let stream = path.as_os_str() == "-";
        let kind = if stream {
            let kind = stdin_kind();
            outcome.stream_kind = Some(kind);
            Some(kind)
        } else {
            match input::identify(path) {
                Err(e) => {
                    outcome.unreadable = e.kind() != std::io::ErrorKind::InvalidData;
                    outcome.damaged = !outcome.unreadable;
                    outcome.problems.push(format!("{}: {e}", path.display()));
                    None
                }
                Ok(id) => {
                    outcome.already_ingested = known(&id);
                    let kind = id.kind;
                    outcome.identity = Some(id);
                    (!outcome.already_ingested).then_some(kind)
                }
            }
        };
        match kind {
            None => {}
            Some(InputKind::Capture) => captures.push(out.inputs.len()),
            Some(InputKind::Records) => read_records(
                &mut out.observations,
                detectors.as_deref_mut(),
                pipeline,
                &mut outcome,
                |push| {
                    if stream {
                        input::records_from(std::io::stdin().lock(), push)
                    } else {
                        input::read_records(path, push)
                    }
                },
            ),
            Some(InputKind::Har) => read_har(
                &mut out.observations,
                detectors.as_deref_mut(),
                pipeline,
                &mut outcome,
                |push| {
                    if stream {
                        stdin_har(key, push)
                    } else {
                        input::read_har(path, key, push)
                    }
                },
            ),
        }
        out.inputs.push(outcome);
    }
    if !captures.is_empty() {
        let files: Vec<PathBuf> = captures
            .iter()
            .map(|&i| out.inputs[i].path.clone())
            .collect();
        let mut engine = Engine::new({
            // Shapes in their flat form, which the schema statistics walk.
            let mut config = EngineConfig::new(key.clone());
            config.flat_shapes = true;
            // Bursts (the end of input) come out in batches.
            config.max_records_per_call = shadowtap_proto::engine::RECORD_BATCH;
            config
        });
        let options = ReadOptions {
            program: "shadowtap",
            progress,
        };
        let read = read_captures_into(
            &files,
            &mut engine,
            &options,
            &mut out.observations,
            detectors,
            pipeline,
        );
        match read {
            Ok(report) => {
                // Errors name their file; attach each to its input.
                for line in report.errors {
                    let owner = captures
                        .iter()
                        .copied()
                        .find(|&i| line.contains(&out.inputs[i].path.display().to_string()));
                    if let Some(i) = owner {
                        out.inputs[i].damaged = true;
                        out.inputs[i].problems.push(line);
                    } else if let Some(&i) = captures.first() {
                        out.inputs[i].damaged = true;
                        out.inputs[i].problems.push(line);
                    }
                }
            }
            Err(e) => {
                for &i in &captures {
                    out.inputs[i].unreadable = true;
                    out.inputs[i].problems.push(format!("{e:#}"));
                }
            }
        }
        out.sensor = Some(engine.counters());
    }
    out
}

/// Records handed from the reading thread to the aggregating one at a time
/// (see [`Pipeline::Threads`]).
pub const PIPELINE_BATCH_RECORDS: usize = 256;
/// Batches in flight between the two threads: with the batch size, what
/// bounds the records held while the aggregation lags behind the reader.
pub const PIPELINE_BATCHES: usize = 4;

/// How inputs are read into observations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pipeline {
    /// One thread: each record is added before the next is made.
    Inline,
    /// Two threads: this one reads the input (for a capture: decoding,
    /// reassembly, HTTP, records and their shapes, through the engine), a
    /// second one adds the records to the observations and detectors, in the order
    /// they were made, so the result is the same as `Inline`'s. The records
    /// go across in batches of this many ([`PIPELINE_BATCH_RECORDS`]).
    Threads(usize),
}

impl Pipeline {
    /// `Threads` when the process may run on more than one CPU (its
    /// affinity mask counts: under `taskset -c 1` it is `Inline`).
    pub fn for_this_machine() -> Self {
        match std::thread::available_parallelism() {
            Ok(n) if n.get() > 1 => Pipeline::Threads(PIPELINE_BATCH_RECORDS),
            _ => Pipeline::Inline,
        }
    }
}

/// Reads capture `files` through `engine` into `observations` (and the
/// detectors), as `pipeline` says.
pub fn read_captures_into(
    files: &[PathBuf],
    engine: &mut Engine,
    options: &ReadOptions<'_>,
    observations: &mut Observations,
    detectors: Option<&mut Detectors>,
    pipeline: Pipeline,
) -> anyhow::Result<InputReport> {
    aggregate(observations, detectors, pipeline, |push| {
        read_captures(files, engine, options, &mut |records| {
            records.drain(..).for_each(&mut *push);
            Ok(())
        })
    })
}

/// Adds the records `produce` hands to its sink to `observations` (and the
/// detectors), in the order it hands them, as `pipeline` says; returns what
/// `produce` returns. With [`Pipeline::Threads`] the records are added on
/// a second thread while `produce` goes on; if that thread cannot be
/// started, they are added on this one.
pub fn aggregate<T>(
    observations: &mut Observations,
    mut detectors: Option<&mut Detectors>,
    pipeline: Pipeline,
    produce: impl FnOnce(&mut dyn FnMut(ExchangeRecord)) -> T,
) -> T {
    let batch_records = match pipeline {
        Pipeline::Threads(n) => n.max(1),
        Pipeline::Inline => {
            return produce(&mut |r| observations.add(&r, detectors.as_deref_mut()));
        }
    };
    let threaded = std::thread::scope(|scope| {
        let (full_tx, full_rx) = mpsc::sync_channel::<Vec<ExchangeRecord>>(PIPELINE_BATCHES);
        // Emptied batches go back to the reader, so their buffers are reused.
        let (empty_tx, empty_rx) = mpsc::channel::<Vec<ExchangeRecord>>();
        let (obs, mut det) = (&mut *observations, detectors.as_deref_mut());
        let spawned = std::thread::Builder::new()
            .name("shadowtap-aggregate".into())
            .spawn_scoped(scope, move || {
                for mut batch in full_rx {
                    for r in batch.drain(..) {
                        obs.add(&r, det.as_deref_mut());
                    }
                    // The reader may have finished: then the buffer just goes.
                    let _ = empty_tx.send(batch);
                }
            });
        let aggregator = match spawned {
            Ok(handle) => handle,
            Err(e) => return Err((e, produce)),
        };
        let mut pending = Vec::with_capacity(batch_records);
        let result = produce(&mut |r| {
            pending.push(r);
            if pending.len() >= batch_records {
                let next = empty_rx
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(batch_records));
                // A send fails only when the aggregating thread has
                // panicked; joining it below passes the panic on.
                let _ = full_tx.send(std::mem::replace(&mut pending, next));
            }
        });
        if !pending.is_empty() {
            let _ = full_tx.send(pending);
        }
        // The aggregating thread ends once it has every batch.
        drop(full_tx);
        if let Err(panic) = aggregator.join() {
            std::panic::resume_unwind(panic);
        }
        Ok(result)
    });
    match threaded {
        Ok(result) => result,
        Err((e, produce)) => {
            eprintln!("shadowtap: cannot start a second thread ({e}); aggregating on one");
            produce(&mut |r| observations.add(&r, detectors.as_deref_mut()))
        }
    }
}

/// What stdin holds, from the first bytes in its buffer. Nothing is
/// consumed: a capture's reader then takes stdin from its first byte.
/// Anything not recognised (or too short to tell) is read as a capture,
/// whose reader says what is wrong with it.
fn stdin_kind() -> InputKind {
    let stdin = std::io::stdin();
    let mut lock = stdin.lock();
    match lock.fill_buf() {
        Ok(head) => input::detect(head).unwrap_or(InputKind::Capture),
        Err(_) => InputKind::Capture,
    }
}

/// A HAR document on stdin, read whole (at most [`input::MAX_HAR_BYTES`]).
fn stdin_har(
    key: &FingerprintKey,
    sink: &mut dyn FnMut(ExchangeRecord),
) -> std::io::Result<input::HarReport> {
    let mut text = Vec::new();
    std::io::stdin()
        .lock()
        .take(input::MAX_HAR_BYTES + 1)
        .read_to_end(&mut text)?;
    if text.len() as u64 > input::MAX_HAR_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a HAR file larger than {} bytes", input::MAX_HAR_BYTES),
        ));
    }
    input::har_records(&text, key, sink)
}

fn read_records(
    observations: &mut Observations,
    detectors: Option<&mut Detectors>,
    pipeline: Pipeline,
    outcome: &mut InputOutcome,
    read: impl FnOnce(&mut dyn FnMut(ExchangeRecord)) -> std::io::Result<input::RecordsReport>,
) {
    let read = aggregate(observations, detectors, pipeline, read);
    match read {
        Ok(report) => {
            if let Some((line, error)) = report.first_error {
                outcome.damaged = true;
                outcome.problems.push(format!(
                    "{}: {} line(s) are not exchange records (first: line {line}: {error})",
                    outcome.path.display(),
                    report.bad_lines
                ));
            }
        }
        Err(e) => {
            outcome.unreadable = true;
            outcome
                .problems
                .push(format!("{}: {e}", outcome.path.display()));
        }
    }
}

fn read_har(
    observations: &mut Observations,
    detectors: Option<&mut Detectors>,
    pipeline: Pipeline,
    outcome: &mut InputOutcome,
    read: impl FnOnce(&mut dyn FnMut(ExchangeRecord)) -> std::io::Result<input::HarReport>,
) {
    let read = aggregate(observations, detectors, pipeline, read);
    match read {
        Ok(report) => {
            if report.bad_entries > 0 {
                outcome.damaged = true;
                outcome.problems.push(format!(
                    "{}: {} HAR entries could not be read (bad URL, time or status)",
                    outcome.path.display(),
                    report.bad_entries
                ));
            }
        }
        Err(e) => {
            let invalid = e.kind() == std::io::ErrorKind::InvalidData;
            outcome.unreadable = !invalid;
            outcome.damaged = invalid;
            outcome
                .problems
                .push(format!("{}: {e}", outcome.path.display()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::DetectorConfig;

    /// Everything `read_captures_into` leaves behind, spelled out: the
    /// observations in key order, the field paths, the anomalies and the
    /// sensor's counters.
    fn outcome(files: &[PathBuf], pipeline: Pipeline) -> String {
        let mut engine = Engine::new({
            let mut config = EngineConfig::new(FingerprintKey::new([7; 32]));
            config.flat_shapes = true;
            config
        });
        let options = ReadOptions {
            program: "shadowtap",
            progress: false,
        };
        let mut observations = Observations::default();
        let mut detectors = Detectors::new(DetectorConfig::default());
        let report = read_captures_into(
            files,
            &mut engine,
            &options,
            &mut observations,
            Some(&mut detectors),
            pipeline,
        )
        .expect("reading the sample");
        let records = observations.records;
        let (sorted, names) = observations.into_sorted();
        let anomalies = detectors.finish();
        format!(
            "{records} {sorted:?}\n{names:?}\n{anomalies:?}\n{:?}\n{:?}",
            engine.counters(),
            report.errors
        )
    }

    fn sample(name: &str) -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../samples")).join(name)
    }

    #[test]
    fn threads_give_what_one_thread_gives() {
        // The anomalies sample has every detector fire; the demo capture
        // after it continues in the same engine.
        let files = [sample("anomalies.pcap.gz"), sample("demo-api.pcap")];
        let inline = outcome(&files, Pipeline::Inline);
        assert!(inline.starts_with(|c: char| c.is_ascii_digit() && c != '0'));
        assert!(
            inline.contains("Anomaly {"),
            "the sample's anomalies are found"
        );
        // Batches of one record, of a size that leaves a partial last
        // batch, and the shipped size.
        for batch in [1, 7, PIPELINE_BATCH_RECORDS] {
            assert_eq!(
                outcome(&files, Pipeline::Threads(batch)),
                inline,
                "batches of {batch}"
            );
        }
    }

    /// Records and HAR files read through [`aggregate`]: observations,
    /// field paths, anomalies and the reader's report.
    fn read_outcome(files: &[PathBuf], pipeline: Pipeline) -> String {
        let mut observations = Observations::default();
        let mut detectors = Detectors::new(DetectorConfig::default());
        let mut reports = Vec::new();
        for file in files {
            let report = aggregate(&mut observations, Some(&mut detectors), pipeline, |push| {
                if file.extension().is_some_and(|e| e == "har") {
                    format!(
                        "{:?}",
                        input::read_har(file, &FingerprintKey::new([7; 32]), push)
                    )
                } else {
                    format!("{:?}", input::read_records(file, push))
                }
            });
            reports.push(report);
        }
        let records = observations.records;
        let (sorted, names) = observations.into_sorted();
        format!(
            "{records} {sorted:?}\n{names:?}\n{:?}\n{reports:?}",
            detectors.finish()
        )
    }

    #[test]
    fn record_and_har_files_read_the_same_on_threads() {
        let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        let files = [
            root.join("tests/fixtures/golden/demo-api/expected.jsonl"),
            root.join("analyzer/testdata/har/two-entries.har"),
            root.join("tests/fixtures/golden/http-packets2/expected.jsonl"),
        ];
        let inline = read_outcome(&files, Pipeline::Inline);
        assert!(inline.starts_with(|c: char| c.is_ascii_digit() && c != '0'));
        for batch in [1, 5, PIPELINE_BATCH_RECORDS] {
            assert_eq!(
                read_outcome(&files, Pipeline::Threads(batch)),
                inline,
                "batches of {batch}"
            );
        }
    }

    #[test]
    fn a_panic_while_reading_reaches_the_caller_without_a_hang() {
        let file = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/golden/demo-api/expected.jsonl"
        ));
        let mut records = Vec::new();
        input::read_records(&file, &mut |r| records.push(r)).expect("reading the records");
        let mut observations = Observations::default();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            aggregate(&mut observations, None, Pipeline::Threads(2), |push| {
                // More than the batches in flight, so the aggregating thread
                // is busy or waiting when the reader fails.
                for r in records.iter().cycle().take(2 * (PIPELINE_BATCHES + 2) + 1) {
                    push(r.clone());
                }
                panic!("the reader fails");
            })
        }));
        let message = caught.expect_err("the panic is passed on");
        assert_eq!(message.downcast_ref::<&str>(), Some(&"the reader fails"));
    }

    #[test]
    fn a_damaged_capture_is_reported_the_same_way_by_threads() {
        // The demo capture cut in the middle of a packet record.
        let bytes = std::fs::read(sample("demo-api.pcap")).expect("reading the sample");
        let dir = std::env::temp_dir().join(format!("shadowtap-ingest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let cut = dir.join("cut.pcap");
        std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3 + 5]).expect("writing the cut capture");
        let files = [cut];
        let inline = outcome(&files, Pipeline::Inline);
        assert!(
            inline.contains("cut.pcap"),
            "the damage is reported: {inline}"
        );
        assert_eq!(outcome(&files, Pipeline::Threads(3)), inline);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
