//! Reads inputs into observations: captures through the sensor engine (in
//! process), record files and HAR files through [`crate::input`].

use std::path::PathBuf;

use shadowtap_proto::engine::{Counters, Engine, EngineConfig};
use shadowtap_proto::record::FingerprintKey;
use shadowtap_sensor::runtime::{read_captures, ReadOptions};

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
        // Records go straight into the observations: shapes in their flat
        // form, which the schema statistics walk.
        let mut config = EngineConfig::new(key.clone());
        config.flat_shapes = true;
        let mut engine = Engine::new(config);
        let observations = &mut out.observations;
        let read = read_captures(
            &files,
            &mut engine,
            &ReadOptions {
                program: "shadowtap",
                progress,
            },
            &mut |records| {
                for r in records.drain(..) {
                    observations.add(&r, detectors.as_deref_mut());
                }
                Ok(())
            },
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
