//! `cargo xtask`: the project's operational scaffolding.
//!
//! ```text
//! cargo xtask test     provision tools, then fmt --check -> clippy -D warnings -> cargo test
//! cargo xtask ebpf-toolchain  install what building the eBPF programs needs (root for apt)
//! cargo xtask build-ebpf       build sensor-ebpf into target/ebpf/shadowtap-sensor-ebpf.o
//! cargo xtask dist     the binaries to deploy, built with profile-guided optimisation
//! cargo xtask bench    sensor throughput on a large pcap, compared with tshark
//! cargo xtask fuzz     seed the fuzz corpora, run each cargo-fuzz target (nightly)
//! cargo xtask sample   regenerate samples/demo-api.pcap from a real loopback capture
//! cargo xtask scenario generated API traffic with injected anomalies (docs/scenarios.md)
//! cargo xtask load-test the live sensor under wrk load against nginx in network namespaces
//! ```
//!
//! Every subcommand runs from the repository root, whatever the caller's working directory.
#![expect(
    clippy::print_stdout,
    reason = "xtask is a CLI; its reports go to stdout"
)]

mod accuracy;
mod bench;
mod dist;
mod ebpf;
mod fuzz;
mod loadtest;
mod pip_tools;
mod postgres;
mod provision;
mod sample;
mod scenario;
mod test;
mod util;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "shadowtap developer tasks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole test suite (installs missing tools first when root).
    Test(test::TestArgs),
    /// Install the eBPF toolchain: LLVM 22 packages and bpftool (apt, as root), rust-src for
    /// nightly, bpf-linker 0.13.0 built for LLVM 22. Skips what is already there.
    EbpfToolchain,
    /// Build the eBPF programs (sensor-ebpf/) into target/ebpf/shadowtap-sensor-ebpf.o, which
    /// the sensor embeds when it is next built.
    BuildEbpf,
    /// Build the binaries to deploy into target/dist/, with profile-guided optimisation
    /// trained on a generated scenario capture (`--no-pgo`: a plain release build).
    Dist(dist::DistArgs),
    /// Benchmark the sensor (the `dist` build) against tshark on a large pcap.
    Bench(bench::BenchArgs),
    /// Seed the fuzz corpora and run the cargo-fuzz targets (nightly).
    Fuzz(fuzz::FuzzArgs),
    /// Regenerate samples/demo-api.pcap from a real loopback capture (needs root).
    Sample(sample::SampleArgs),
    /// Write a generated capture with injected anomalies and the expected list.
    Scenario(scenario::ScenarioArgs),
    /// The live sensor under load: nginx alone vs nginx with the sensor
    /// attached, in network namespaces (needs root).
    LoadTest(loadtest::LoadTestArgs),
    /// The load test's fixed-rate latency client (run by `load-test`).
    #[command(hide = true)]
    LoadClient(loadtest::LoadClientArgs),
    /// Run a command with the test PostgreSQL server up, its URL in
    /// SHADOWTAP_TEST_POSTGRES_URL (e.g. `cargo xtask with-postgres -- cargo
    /// test -p shadowtap-analyzer --test store`).
    WithPostgres {
        #[arg(trailing_var_arg = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = util::repo_root();
    if let Err(error) = std::env::set_current_dir(&root) {
        eprintln!(
            "xtask: cannot enter repository root {}: {error}",
            root.display()
        );
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Test(args) => test::run(&args),
        Command::EbpfToolchain => ebpf::ensure_toolchain(true).map(|()| ExitCode::SUCCESS),
        Command::BuildEbpf => ebpf::build().map(|_| ExitCode::SUCCESS),
        Command::Dist(args) => dist::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => bench::run(&args),
        Command::Fuzz(args) => fuzz::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Sample(args) => sample::run(&args),
        Command::Scenario(args) => scenario::run(&args),
        Command::LoadTest(args) => loadtest::run(&args),
        Command::LoadClient(args) => loadtest::load_client(&args),
        Command::WithPostgres { command } => postgres::run_with(&command),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
