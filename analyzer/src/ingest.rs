//! Reads inputs into observations: captures through the sensor engine (in
//! process), record files and HAR files through [`crate::input`].

use std::path::PathBuf;
use std::sync::mpsc;

use anyhow::anyhow;
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
    /// capture streamed on stdin (`-`).
    pub identity: Option<InputIdentity>,
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
    for path in paths {
        let mut outcome = InputOutcome {
            path: path.clone(),
            identity: None,
            already_ingested: false,
            problems: Vec::new(),
            unreadable: false,
            damaged: false,
        };
        // `-`: a capture streamed on stdin. A stream has no identity, so it
        // is read on every run and never recognised as already stored.
        if path.as_os_str() == "-" {
            captures.push(out.inputs.len());
            out.inputs.push(outcome);
            continue;
        }
        match input::identify(path) {
            Err(e) => {
                outcome.unreadable = e.kind() != std::io::ErrorKind::InvalidData;
                outcome.damaged = !outcome.unreadable;
                outcome.problems.push(format!("{}: {e}", path.display()));
            }
            Ok(id) => {
                outcome.already_ingested = known(&id);
                let kind = id.kind;
                outcome.identity = Some(id);
                if !outcome.already_ingested {
                    match kind {
                        InputKind::Capture => captures.push(out.inputs.len()),
                        InputKind::Records => read_records(
                            &mut out.observations,
                            detectors.as_deref_mut(),
                            &mut outcome,
                        ),
                        InputKind::Har => read_har(
                            &mut out.observations,
                            detectors.as_deref_mut(),
                            key,
                            &mut outcome,
                        ),
                    }
                }
            }
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
            Pipeline::for_this_machine(),
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

/// Records handed from the capture reader to the aggregating thread at a
/// time (see [`Pipeline::Threads`]).
pub const PIPELINE_BATCH_RECORDS: usize = 256;
/// Batches in flight between the two threads: with the batch size, what
/// bounds the records held while the aggregation lags behind the reader.
pub const PIPELINE_BATCHES: usize = 4;

/// How captures are read into observations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pipeline {
    /// One thread: each packet's records are added before the next packet
    /// is read.
    Inline,
    /// Two threads: this one reads the captures through the engine
    /// (decoding, reassembly, HTTP, records and their shapes), a second one
    /// adds the records to the observations and detectors, in the order
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
    mut detectors: Option<&mut Detectors>,
    pipeline: Pipeline,
) -> anyhow::Result<InputReport> {
    let batch_records = match pipeline {
        Pipeline::Threads(n) => n.max(1),
        Pipeline::Inline => {
            return read_captures(files, engine, options, &mut |records| {
                for r in records.drain(..) {
                    observations.add(&r, detectors.as_deref_mut());
                }
                Ok(())
            })
        }
    };
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = mpsc::sync_channel::<Vec<ExchangeRecord>>(PIPELINE_BATCHES);
        // Emptied batches go back to the reader, so their buffers are reused.
        let (empty_tx, empty_rx) = mpsc::channel::<Vec<ExchangeRecord>>();
        let aggregate = std::thread::Builder::new()
            .name("shadowtap-aggregate".into())
            .spawn_scoped(scope, move || {
                for mut batch in full_rx {
                    for r in batch.drain(..) {
                        observations.add(&r, detectors.as_deref_mut());
                    }
                    // The reader may have finished: then the buffer just goes.
                    let _ = empty_tx.send(batch);
                }
            })?;
        let mut pending = Vec::with_capacity(batch_records);
        let mut read = read_captures(files, engine, options, &mut |records| {
            pending.append(records);
            if pending.len() >= batch_records {
                let next = empty_rx
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(batch_records));
                full_tx
                    .send(std::mem::replace(&mut pending, next))
                    .map_err(|_| anyhow!("the aggregating thread stopped"))?;
            }
            Ok(())
        });
        if !pending.is_empty() && full_tx.send(pending).is_err() && read.is_ok() {
            read = Err(anyhow!("the aggregating thread stopped"));
        }
        // The aggregating thread ends once it has every batch.
        drop(full_tx);
        if let Err(panic) = aggregate.join() {
            std::panic::resume_unwind(panic);
        }
        read
    })
}

fn read_records(
    observations: &mut Observations,
    mut detectors: Option<&mut Detectors>,
    outcome: &mut InputOutcome,
) {
    match input::read_records(&outcome.path, &mut |r| {
        observations.add(r, detectors.as_deref_mut())
    }) {
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
    mut detectors: Option<&mut Detectors>,
    key: &FingerprintKey,
    outcome: &mut InputOutcome,
) {
    match input::read_har(&outcome.path, key, &mut |r| {
        observations.add(r, detectors.as_deref_mut())
    }) {
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
