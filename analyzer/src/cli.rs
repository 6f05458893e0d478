//! The command-line verbs, as functions (so tests run them in process).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use shadowtap_sensor::runtime::load_key;

use crate::analysis;
use crate::contracts::ContractSet;
use crate::findings::FindingKind;
use crate::ingest;
use crate::report::{self, Format, InputInfo, Report};
use crate::spec;

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
    #[arg(value_name = "INPUT", required = true)]
    pub inputs: Vec<PathBuf>,

    /// OpenAPI 3.0/3.1 or Swagger 2.0 contract (YAML or JSON), or a
    /// directory of them. `HOST=FILE` maps the contract to that service
    /// explicitly; otherwise its `servers` (2.0: `host`) decide. Repeat for
    /// several.
    #[arg(long = "spec", value_name = "[HOST=]FILE")]
    pub specs: Vec<String>,

    /// Output format: table, json.
    #[arg(long, default_value = "table", value_name = "FORMAT")]
    pub format: Format,

    /// Exit with status 4 when findings of these kinds exist
    /// (comma-separated: shadow, undocumented, zombie, unused, drift).
    #[arg(long, value_name = "KIND,...", value_delimiter = ',')]
    pub fail_on: Vec<FindingKind>,

    /// Key for caller fingerprints (a file of at least 16 bytes), the same
    /// one the sensors use. Without it a random per-run key is used.
    #[arg(long, value_name = "PATH", env = "SHADOWTAP_FINGERPRINT_KEY_FILE")]
    pub fingerprint_key_file: Option<PathBuf>,

    /// No progress bar.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// What a verb produced: the report and how to exit.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    pub format: Format,
    pub fail_on: Vec<FindingKind>,
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
            .any(|f| self.fail_on.contains(&f.kind))
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

/// `shadowtap analyze`.
pub fn analyze(args: &AnalyzeArgs) -> anyhow::Result<Outcome> {
    let set = load_contracts(&args.specs)?;
    let (key, _) = load_key(args.fingerprint_key_file.as_deref())?;
    let ingested = ingest::ingest(&args.inputs, &key, &|_| false, !args.quiet);
    for input in &ingested.inputs {
        for p in &input.problems {
            eprintln!("shadowtap: {p}");
        }
    }
    let (observations, names) = ingested.observations.into_sorted();
    let analysis = analysis::analyze(&observations, names, &set);
    let inputs = ingested
        .inputs
        .iter()
        .map(|i| InputInfo {
            path: i.path.display().to_string(),
            kind: i.identity.as_ref().map(|id| id.kind.as_str().to_owned()),
            bytes: i.identity.as_ref().map(|id| id.bytes),
            already_ingested: i.already_ingested,
            problems: i.problems.clone(),
        })
        .collect();
    let report = analysis::report(&analysis, &set, inputs);
    Ok(Outcome {
        report,
        format: args.format,
        fail_on: args.fail_on.clone(),
        damaged_inputs: ingested.inputs.iter().filter(|i| i.damaged).count(),
        unreadable_inputs: ingested.inputs.iter().filter(|i| i.unreadable).count(),
    })
}
