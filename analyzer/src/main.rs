//! `shadowtap`: the API inventory from captures, HAR files or exchange
//! records, diffed against OpenAPI contracts.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use shadowtap_analyzer::cli::{self, AnalyzeArgs, ReportArgs};

/// Many small allocations per record and per observation: mimalloc serves
/// them faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "shadowtap", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Analyze(AnalyzeArgs),
    Report(ReportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    shadowtap_sensor::runtime::init_logging();
    let result = match cli.command {
        Command::Analyze(args) => cli::analyze(&args),
        Command::Report(args) => cli::report(&args),
    };
    match result {
        Ok(outcome) => {
            let mut stdout = std::io::stdout().lock();
            let colour = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
            let text = outcome.render(colour);
            if let Err(e) = stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    eprintln!("shadowtap: writing the report: {e}");
                    return ExitCode::from(cli::EXIT_ERROR);
                }
            }
            ExitCode::from(outcome.exit_code())
        }
        Err(e) => {
            eprintln!("shadowtap: {e:#}");
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}
