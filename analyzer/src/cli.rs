//! The command-line verbs, as functions (so tests run them in process).

use std::cell::RefCell;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use shadowtap_sensor::runtime::load_key;

use crate::analysis;
use crate::anomaly::{DetectorConfig, Detectors};
use crate::contracts::ContractSet;
use crate::findings::FailOn;
use crate::ingest;
use crate::input::InputIdentity;
use crate::observe::{ObservationKey, Stats};
use crate::report::{self, Format, InputInfo, Report};
use crate::spec;
use crate::store::Store;

/// Exit status: success, no `--fail-on` finding.
pub const EXIT_OK: u8 = 0;
/// Exit status: an input, a contract or the database could not be used.
pub const EXIT_ERROR: u8 = 1;
/// Exit status: an input was damaged (read up to the damage) or had bad
/// lines or entries.
pub const EXIT_DAMAGED: u8 = 3;
/// Exit status: findings of a `--fail-on` kind exist.
pub const EXIT_FINDINGS: u8 = 4;

/// Builds the API inventory from captures (pcap, pcapng), HAR files or
/// JSON Lines of exchange records, and diffs it against OpenAPI contracts.
///
/// Exit status: 0 success; 1 an input, contract or database could not be
/// used; 2 usage error; 3 an input was damaged (everything before the
/// damage was analysed); 4 findings of a `--fail-on` kind exist.
#[derive(Debug, Args)]
#[command(long_about)]
pub struct AnalyzeArgs {
    /// Captures (pcap, pcapng), HAR files or JSON Lines of exchange records
    /// (`shadowtap-sensor -w` output); the kind is detected from the content.
    /// `-` reads a capture from stdin (`tcpdump -w - | shadowtap analyze -`);
    /// a stream has no identity, so `--db` cannot recognise it a second time.
    #[arg(value_name = "INPUT", required = true)]
    pub inputs: Vec<PathBuf>,

    /// OpenAPI 3.0/3.1 or Swagger 2.0 contract (YAML or JSON), or a
    /// directory of them. `HOST=FILE` maps the contract to that service
    /// explicitly; otherwise its `servers` (2.0: `host`) decide. Repeat for
    /// several.
    #[arg(long = "spec", value_name = "[HOST=]FILE")]
    pub specs: Vec<String>,

    /// Output format: table (terminal), json (the versioned report),
    /// markdown, html (one self-contained page with filters and charts),
    /// openapi (an OpenAPI 3.1 JSON document of the observed API) or sarif
    /// (SARIF 2.1.0 for code scanning).
    #[arg(long, default_value = "table", value_name = "FORMAT")]
    pub format: Format,

    /// Database to store the inventory in and to merge with: a SQLite file
    /// path (created when missing), `sqlite:…` or `postgres://…`. Inputs
    /// already in it are not counted again; templates are recomputed over
    /// everything it holds. Without it nothing is stored (the analysis runs
    /// in memory and is discarded at exit).
    #[arg(long, value_name = "URL", env = "SHADOWTAP_DB")]
    pub db: Option<String>,

    /// Exit with status 4 when findings of these kinds exist
    /// (comma-separated: shadow, undocumented, zombie, unused, drift;
    /// `anomaly` for any anomaly, or an anomaly kind such as
    /// error_spike_5xx).
    #[arg(long, value_name = "KIND,...", value_delimiter = ',')]
    pub fail_on: Vec<FailOn>,

    /// Key for caller fingerprints (a file of at least 16 bytes), the same
    /// one the sensors use. Without it the database's own key is used (made
    /// on first use), or a random per-run key without `--db`.
    #[arg(long, value_name = "PATH", env = "SHADOWTAP_FINGERPRINT_KEY_FILE")]
    pub fingerprint_key_file: Option<PathBuf>,

    /// Don't run the anomaly detectors.
    #[arg(long)]
    pub no_anomalies: bool,

    /// Detector settings (YAML or JSON; any subset of the fields in
    /// docs/anomalies.md, the rest keep their defaults).
    #[arg(long, value_name = "FILE")]
    pub anomaly_config: Option<PathBuf>,

    /// No progress bar.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// What a verb produced: the report and how to exit.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    pub format: Format,
    pub fail_on: Vec<FailOn>,
    pub damaged_inputs: usize,
    pub unreadable_inputs: usize,
}

impl Outcome {
    pub fn render(&self, colour: bool) -> String {
        report::render(&self.report, self.format, colour)
    }

    pub fn exit_code(&self) -> u8 {
        if self.unreadable_inputs > 0 {
            EXIT_ERROR
        } else if self.damaged_inputs > 0 {
            EXIT_DAMAGED
        } else if self
            .report
            .findings
            .iter()
            .any(|f| self.fail_on.contains(&FailOn::Finding(f.kind)))
            || self.report.anomalies.iter().any(|a| {
                self.fail_on.contains(&FailOn::AnyAnomaly)
                    || self.fail_on.contains(&FailOn::Anomaly(a.kind))
            })
        {
            EXIT_FINDINGS
        } else {
            EXIT_OK
        }
    }
}

/// Loads the `--spec` arguments.
pub fn load_contracts(args: &[String]) -> anyhow::Result<ContractSet> {
    let mut contracts = Vec::new();
    let mut explicit = Vec::new();
    for arg in args {
        let (host, file) = match arg.split_once('=') {
            Some((h, f)) if !h.is_empty() && !h.contains('/') => (Some(h), f),
            _ => (None, arg.as_str()),
        };
        let loaded = spec::load_path(std::path::Path::new(file))
            .with_context(|| format!("loading contract {file}"))?;
        for c in loaded {
            if let Some(h) = host {
                explicit.push((h.to_ascii_lowercase(), contracts.len()));
            }
            contracts.push(c);
        }
    }
    Ok(ContractSet::new(contracts, explicit))
}

/// Prints the inventory and findings stored by the latest `analyze --db`,
/// without reading any capture again.
///
/// Exit status: 0 success; 1 the database could not be read; 2 usage
/// error; 4 findings of a `--fail-on` kind exist.
#[derive(Debug, Args)]
#[command(long_about)]
pub struct ReportArgs {
    /// Database written by `shadowtap analyze --db`: a SQLite file path,
    /// `sqlite:…` or `postgres://…`.
    #[arg(long, value_name = "URL", env = "SHADOWTAP_DB", required = true)]
    pub db: String,

    /// Output format: table, json, markdown, html, openapi, sarif.
    #[arg(long, default_value = "table", value_name = "FORMAT")]
    pub format: Format,

    /// Exit with status 4 when findings of these kinds exist
    /// (comma-separated: shadow, undocumented, zombie, unused, drift;
    /// `anomaly` for any anomaly, or an anomaly kind such as
    /// error_spike_5xx).
    #[arg(long, value_name = "KIND,...", value_delimiter = ',')]
    pub fail_on: Vec<FailOn>,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the database runtime")
}

/// `shadowtap report`.
pub fn report(args: &ReportArgs) -> anyhow::Result<Outcome> {
    let rt = runtime()?;
    let report = rt.block_on(async {
        let store = Store::open(&args.db).await?;
        let report = store.load_report().await;
        store.close().await;
        report
    })?;
    Ok(Outcome {
        report,
        format: args.format,
        fail_on: args.fail_on.clone(),
        damaged_inputs: 0,
        unreadable_inputs: 0,
    })
}

/// Reads `--anomaly-config`, or the defaults.
fn load_detector_config(path: Option<&std::path::Path>) -> anyhow::Result<DetectorConfig> {
    let Some(path) = path else {
        return Ok(DetectorConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading detector settings {}", path.display()))?;
    serde_yaml_ng::from_str(&text)
        .with_context(|| format!("detector settings {} are not valid", path.display()))
}

/// `shadowtap analyze`.
pub fn analyze(args: &AnalyzeArgs) -> anyhow::Result<Outcome> {
    let set = load_contracts(&args.specs)?;
    let rt = runtime()?;
    let store = match &args.db {
        Some(db) => Some(rt.block_on(Store::open(db))?),
        None => None,
    };
    let key = match (&args.fingerprint_key_file, &store) {
        (Some(file), _) => load_key(Some(file))?.0,
        (None, Some(store)) => rt.block_on(store.fingerprint_key())?,
        (None, None) => load_key(None)?.0,
    };
    let stored_inputs = match &store {
        Some(s) => rt.block_on(s.known_inputs())?,
        None => Default::default(),
    };
    // Inputs already stored, or given twice in this run, are skipped.
    let seen = RefCell::new(stored_inputs);
    // With a store, detection continues from the baselines and windows
    // the previous runs left there.
    let mut detectors = if args.no_anomalies {
        None
    } else {
        let config = load_detector_config(args.anomaly_config.as_deref())?;
        match &store {
            None => Some(Detectors::new(config)),
            Some(store) => {
                let state = rt.block_on(store.load_detector_state())?;
                let (d, note) = Detectors::restore(config, state)
                    .with_context(|| format!("reading {}", store.label()))?;
                if let Some(note) = note {
                    eprintln!("shadowtap: {}: {note}", store.label());
                }
                Some(d)
            }
        }
    };
    let ingested = ingest::ingest(
        &args.inputs,
        &key,
        &|id| !seen.borrow_mut().insert(id.id.clone()),
        !args.quiet,
        detectors.as_mut(),
    );
    // The state as it stands before the open windows are judged: the next
    // run on this database continues those windows.
    let detector_state = match (&store, &detectors) {
        (Some(_), Some(d)) => Some(d.export_state()?),
        _ => None,
    };
    let anomalies = detectors.map(Detectors::finish).unwrap_or_default();
    for input in &ingested.inputs {
        for p in &input.problems {
            eprintln!("shadowtap: {p}");
        }
    }
    let (new, mut names) = ingested.observations.into_sorted();
    let observations = match &store {
        None => new,
        Some(store) => {
            let stored = rt.block_on(store.load_observations(&mut names))?;
            let merged = merge_sorted(stored, new);
            let changed: Vec<(&ObservationKey, &Stats)> = merged
                .iter()
                .filter(|(_, _, changed)| *changed)
                .map(|(k, s, _)| (k, s))
                .collect();
            let inputs: Vec<(InputIdentity, String)> = ingested
                .inputs
                .iter()
                .filter(|i| !i.already_ingested && !i.unreadable)
                .filter_map(|i| Some((i.identity.clone()?, i.path.display().to_string())))
                .collect();
            rt.block_on(store.save_ingest(&inputs, &changed, &names, detector_state.as_ref()))?;
            merged.into_iter().map(|(k, s, _)| (k, s)).collect()
        }
    };
    let analysis = analysis::analyze(observations, names, &set);
    let inputs = ingested
        .inputs
        .iter()
        .map(|i| InputInfo {
            path: i.path.display().to_string(),
            kind: i
                .identity
                .as_ref()
                .map(|id| id.kind)
                .or(i.stream_kind)
                .map(|k| k.as_str().to_owned()),
            bytes: i.identity.as_ref().map(|id| id.bytes),
            already_ingested: i.already_ingested,
            problems: i.problems.clone(),
        })
        .collect();
    // The terminal table shows no body schemas; skip building them unless
    // the report is stored (a later `report` may ask for any format).
    let detail = if args.format.shows_schemas() || store.is_some() {
        analysis::Detail::Full
    } else {
        analysis::Detail::Summary
    };
    let report = analysis::report(&analysis, &set, inputs, anomalies, detail);
    if let Some(store) = store {
        rt.block_on(async {
            let saved = store.save_snapshot(&report).await;
            store.close().await;
            saved
        })?;
    }
    Ok(Outcome {
        report,
        format: args.format,
        fail_on: args.fail_on.clone(),
        damaged_inputs: ingested.inputs.iter().filter(|i| i.damaged).count(),
        unreadable_inputs: ingested.inputs.iter().filter(|i| i.unreadable).count(),
    })
}

/// Merges two key-sorted observation lists; the flag marks entries that
/// `new` added to or created.
fn merge_sorted(
    stored: Vec<(ObservationKey, Stats)>,
    new: Vec<(ObservationKey, Stats)>,
) -> Vec<(ObservationKey, Stats, bool)> {
    let mut out = Vec::with_capacity(stored.len() + new.len());
    let mut a = stored.into_iter().peekable();
    let mut b = new.into_iter().peekable();
    loop {
        let order = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.0.cmp(&y.0),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => break,
        };
        match order {
            std::cmp::Ordering::Less => {
                if let Some((k, s)) = a.next() {
                    out.push((k, s, false));
                }
            }
            std::cmp::Ordering::Greater => {
                if let Some((k, s)) = b.next() {
                    out.push((k, s, true));
                }
            }
            std::cmp::Ordering::Equal => {
                if let (Some((k, mut s)), Some((_, n))) = (a.next(), b.next()) {
                    s.merge(&n);
                    out.push((k, s, true));
                }
            }
        }
    }
    out
}
