//! `cargo xtask test`: the one command that runs the whole test suite.
//!
//! 1. Provision: system tools (apt, only as root, only when missing) and rustfmt/clippy.
//! 2. Run [`STEPS`] in order, failing fast, with a banner and the elapsed time for each.
//!
//! The last step is `cargo test`, so cargo's own `test result:` lines end the output
//! (CI reads them); after it xtask prints only its closing timing lines.
//!
//! # Adding a step
//!
//! Append a [`Step`] to [`STEPS`]: a plain cargo invocation is [`Action::Cargo`], anything else
//! (start postgres, run privileged netns tests through `sudo -E`, ...) is an
//! [`Action::Custom`] function. List the system tools it needs in `needs`; when one is missing
//! the step is skipped with a printed reason instead of failing. Keep `cargo test` last.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::pip_tools;
use crate::postgres;
use crate::provision::{ensure_rust_components, ensure_tools, Tool};

/// Set for the test processes: tests that would skip without an external
/// tool (a browser, a database) fail instead when this is set.
pub(crate) const UNDER_XTASK_VAR: &str = "SHADOWTAP_UNDER_XTASK";
use crate::util::{banner, cargo, is_root, run_checked, secs};

#[derive(Debug, clap::Args)]
pub(crate) struct TestArgs {
    /// Never install anything; only report what is missing.
    #[arg(long)]
    no_install: bool,
    /// List the steps and exit.
    #[arg(long)]
    list: bool,
}

/// What a step does.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Action {
    /// `cargo <args>`, run from the repository root.
    Cargo(&'static [&'static str]),
    /// Any other work, given whether it may install what it needs; an
    /// error fails the run.
    Custom(fn(bool) -> Result<()>),
}

/// One step of the test suite.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step {
    pub(crate) name: &'static str,
    /// System tools the step cannot run without; if one is missing the step is skipped.
    pub(crate) needs: &'static [Tool],
    pub(crate) action: Action,
}

/// The test suite, in order. Extension point: add steps here (see the module docs).
pub(crate) const STEPS: &[Step] = &[
    Step {
        name: "format check",
        needs: &[],
        action: Action::Cargo(&["fmt", "--all", "--", "--check"]),
    },
    Step {
        name: "clippy",
        needs: &[],
        action: Action::Cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--features",
            SENSOR_FEATURES,
            "--",
            "-D",
            "warnings",
        ]),
    },
    // The offline path must build without libpcap: the sensor's CLI tests
    // without the feature (they check that `-i` says how to get it).
    Step {
        name: "sensor without libpcap",
        needs: &[],
        action: Action::Cargo(&["test", "-p", "shadowtap-sensor", "--test", "cli"]),
    },
    // Every fuzz target for a minute (reliability target S1), from the seeds
    // and the committed regression corpus, one per CPU at a time. Builds
    // the targets with nightly and installs cargo-fuzz when missing.
    Step {
        name: "fuzz",
        needs: &[],
        action: Action::Custom(crate::fuzz::suite_step),
    },
    // Every test, the privileged live capture tests included (they create
    // network namespaces: root, which CI is; without root they skip, but
    // fail under xtask).
    Step {
        name: "cargo test",
        needs: &[],
        action: Action::Cargo(&["test", "--workspace", "--features", SENSOR_FEATURES]),
    },
];

/// Optional features built, linted and tested: live capture with libpcap.
const SENSOR_FEATURES: &str = "shadowtap-sensor/libpcap";

/// System tools installed up front: tests that replay captures through tshark need it,
/// `cargo xtask sample` and the live capture tests need tcpdump, the sensor's `libpcap`
/// feature needs libpcap-dev, the live capture tests `ip` and python3. Tests skip themselves
/// (with a reason) if one is absent, except under xtask.
const PROVISIONED_TOOLS: &[Tool] = &[
    Tool::Tshark,
    Tool::Tcpdump,
    Tool::Chromium,
    Tool::LibpcapDev,
    Tool::Ip,
    Tool::Python3,
];

pub(crate) fn run(args: &TestArgs) -> Result<ExitCode> {
    if args.list {
        for (i, step) in STEPS.iter().enumerate() {
            println!("{}. {} ({})", i + 1, step.name, describe(step.action));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let total = Instant::now();
    let allow_install = !args.no_install;
    check_disk_space();
    // Every build below happens once on a clean clone (CI): incremental caches
    // would only add about 1.8 GB to target/. A developer's own setting wins.
    if std::env::var_os("CARGO_INCREMENTAL").is_none() {
        std::env::set_var("CARGO_INCREMENTAL", "0");
    }

    banner("provision: system tools (tshark, tcpdump, chromium, libpcap-dev, iproute2, python3)");
    let started = Instant::now();
    let missing = ensure_tools(PROVISIONED_TOOLS, allow_install);
    if missing.contains(&Tool::LibpcapDev) {
        anyhow::bail!(
            "libpcap-dev is missing: the suite builds, lints and tests the sensor with its \
             `libpcap` feature. Install it (sudo apt-get install libpcap-dev) or run as root"
        );
    }
    banner("provision: rust components (rustfmt, clippy)");
    ensure_rust_components(allow_install)?;
    eprintln!("--> provision done ({})", secs(started.elapsed()));

    // The analyzer's store tests need a PostgreSQL server; they find it
    // through the environment, and fail (not skip) under xtask without it.
    banner("provision: PostgreSQL test server");
    let postgres = postgres::Server::start(allow_install)?;
    eprintln!("--> PostgreSQL listening: {}", postgres.url);
    std::env::set_var(postgres::URL_VAR, &postgres.url);
    std::env::set_var(UNDER_XTASK_VAR, "1");

    // The privileged eBPF tests (sensor/tests/live_ebpf.rs) need the eBPF object embedded in
    // the sensor; as root, install the toolchain and build it before anything compiles.
    banner("provision: eBPF toolchain and object (root only)");
    if is_root() {
        crate::ebpf::ensure_toolchain(allow_install)?;
        crate::ebpf::build()?;
    } else {
        eprintln!(
            "    not root: not building the eBPF object; the live eBPF tests will fail under xtask"
        );
    }

    banner("provision: validators from PyPI (openapi-spec-validator, kubernetes-validate)");
    for tool in [
        pip_tools::OPENAPI_VALIDATOR,
        pip_tools::KUBERNETES_VALIDATOR,
    ] {
        if let Some(path) = tool.ensure(allow_install) {
            std::env::set_var(tool.path_var, path);
        }
    }

    let mut timings: Vec<(&str, Option<Duration>)> = Vec::new();
    for (i, step) in STEPS.iter().enumerate() {
        banner(&format!("step {}/{}: {}", i + 1, STEPS.len(), step.name));
        if let Some(tool) = step.needs.iter().find(|t| missing.contains(t)) {
            eprintln!(
                "--> SKIPPED {}: needs `{}`, which is not installed",
                step.name,
                tool.binary()
            );
            timings.push((step.name, None));
            continue;
        }
        let started = Instant::now();
        let result = match step.action {
            Action::Cargo(args) => run_checked(cargo().args(args)).map(drop),
            Action::Custom(f) => f(allow_install),
        };
        let elapsed = started.elapsed();
        if let Err(error) = result {
            eprintln!("--> FAILED {} after {}", step.name, secs(elapsed));
            return Err(error).with_context(|| format!("step `{}` failed", step.name));
        }
        eprintln!("--> ok: {} ({})", step.name, secs(elapsed));
        timings.push((step.name, Some(elapsed)));
    }
    let summary: Vec<String> = timings
        .iter()
        .map(|(name, t)| format!("{name} {}", t.map_or_else(|| "skipped".to_owned(), secs)))
        .collect();
    eprintln!(
        "==> all steps passed in {}: {}",
        secs(total.elapsed()),
        summary.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

/// Disk a clean `cargo xtask test` needs beyond what the machine already has: target/
/// (2.5 GB after a clean clone's run on 2026-11-24; over 5 GB with full debug info), the
/// fuzz targets' build (1.8 GB), the nightly toolchain, bpf-linker's build and the apt
/// packages, with some margin.
const DISK_NEEDED: u64 = 8 << 30;

/// Warns, before hours of building, when the target directory's filesystem looks too full
/// for the suite; the builds would otherwise fail late with "No space left on device".
fn check_disk_space() {
    let target = crate::util::target_dir();
    match crate::util::available_bytes(&target) {
        Some(free) if free < DISK_NEEDED => eprintln!(
            "xtask: warning: {:.1} GiB free on the filesystem of {}; a clean run of the suite \
             needs about {} GiB (builds may fail with \"No space left on device\")",
            free as f64 / f64::from(1u32 << 30),
            target.display(),
            DISK_NEEDED >> 30
        ),
        Some(_) => {}
        None => eprintln!("xtask: note: could not read free disk space (df -Pk)"),
    }
}

fn describe(action: Action) -> String {
    match action {
        Action::Cargo(args) => format!("cargo {}", args.join(" ")),
        Action::Custom(_) => "custom".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_test_is_the_last_step() {
        let last = STEPS.last().map(|s| s.action);
        assert!(
            matches!(last, Some(Action::Cargo(["test", ..]))),
            "CI reads `test result:` last"
        );
    }

    /// CI runs `.ci/run`, which must run exactly the README's test command.
    #[test]
    fn ci_script_and_readme_agree() {
        let root = crate::util::repo_root();
        let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
        assert!(ci.starts_with("#!") && ci.contains("set -euo pipefail"));
        let commands: Vec<&str> = ci.lines().filter(|l| l.starts_with("cargo ")).collect();
        assert_eq!(commands, ["cargo xtask test"]);
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        assert!(readme.contains("```sh\ncargo xtask test\n```"));
        // The main job: the analyzer on the shipped sample and its contract
        // (analyzer/tests/golden.rs pins what it finds).
        assert!(readme.contains(
            "```sh\ncargo run --release --bin shadowtap -- analyze samples/demo-api.pcap --spec samples/demo-api.openapi.yaml\n```"
        ));
        // Exactly two set-up commands.
        assert_eq!(readme.matches("```sh\n").count(), 2);
    }

    #[test]
    fn lints_run_before_tests() {
        let names: Vec<&str> = STEPS.iter().map(|s| s.name).collect();
        assert_eq!(names.first(), Some(&"format check"));
        assert!(names.contains(&"clippy"));
    }

    #[test]
    fn every_fuzz_target_runs_in_the_suite() {
        assert!(STEPS.iter().any(|s| s.name == "fuzz"));
    }
}
