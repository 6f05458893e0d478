//! `shadowtap-sensor`: reads captures, writes privacy-safe HTTP exchange records.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use shadowtap_sensor::runtime::{self, Options};

mod ebpf_cli;
use ebpf_cli::{run_ebpf, EbpfArgs};

/// Many small, short-lived allocations per HTTP message (header names and
/// values): mimalloc serves them far faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Reads packet captures and writes one JSON exchange record per HTTP
/// request/response pair (JSON Lines). Header values, cookies, tokens, query
/// values and body values never appear in the output.
///
/// Exit status: 0 when every capture was read to its end; 1 on a usage
/// error or when an input or the output could not be opened, read or
/// written; 3 when a capture was not a capture, or truncated or corrupt
/// (every packet before the damage was still processed and written).
#[derive(Debug, Parser)]
#[command(name = "shadowtap-sensor", version, about, long_about)]
struct Cli {
    /// Read packets from capture FILE (pcap or pcapng; `-` is standard
    /// input). Repeat, or list several, to read files in order.
    #[arg(short = 'r', value_name = "FILE", required_unless_present = "ebpf", num_args = 1.., action = clap::ArgAction::Append)]
    read: Vec<PathBuf>,

    #[command(flatten)]
    live_ebpf: EbpfArgs,

    /// Write exchange records to OUT as JSON Lines (`-` is standard output, the default).
    #[arg(short = 'w', value_name = "OUT", default_value = "-")]
    write: PathBuf,

    /// Also write every counter, the run time and peak memory as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    stats_json: Option<PathBuf>,

    /// Key for principal fingerprints (a file of at least 16 bytes). Use the
    /// same key across sensors of a deployment to count callers across them.
    /// Without it a random key is used and fingerprints only compare within
    /// one run.
    #[arg(long, value_name = "PATH", env = "SHADOWTAP_FINGERPRINT_KEY_FILE")]
    fingerprint_key_file: Option<PathBuf>,

    /// No progress bar and no summary on standard error.
    #[arg(short = 'q', long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    runtime::init_logging();
    cli.live_ebpf.check();
    if cli.live_ebpf.ebpf {
        return run_ebpf(cli);
    }
    let options = Options {
        inputs: cli.read,
        output: cli.write,
        stats_json: cli.stats_json,
        fingerprint_key_file: cli.fingerprint_key_file,
        quiet: cli.quiet,
    };
    match runtime::run(&options) {
        Ok(outcome) if outcome.unreadable_inputs > 0 => ExitCode::from(1),
        Ok(outcome) if outcome.damaged_inputs > 0 => ExitCode::from(3),
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shadowtap-sensor: {error:#}");
            ExitCode::from(1)
        }
    }
}
