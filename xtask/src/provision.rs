//! Installing what the test suite and the sample recorder need, idempotently.
//!
//! System packages come from apt (Debian 12) and are installed only when root and only when
//! missing; `apt-get update` runs at most once per invocation. Rust components come from rustup.
//! When something cannot be installed, the caller is told and decides whether to go on.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::util::{is_root, run_checked, which};

/// A system tool that some step needs, with the Debian package that provides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    Tshark,
    Tcpdump,
    /// The headless browser the analyzer's HTML report test drives.
    Chromium,
    /// libpcap's headers and library: the sensor's `libpcap` feature links it.
    LibpcapDev,
    /// `ip` (iproute2): the live capture tests create network namespaces.
    Ip,
    /// The live capture tests run Python's `http.server`.
    Python3,
    /// The HTTP server of `cargo xtask load-test`.
    Nginx,
    /// The load generator of `cargo xtask load-test`.
    Wrk,
}

impl Tool {
    /// The program that shows the tool is there (for a library: its name).
    pub(crate) const fn binary(self) -> &'static str {
        match self {
            Self::Tshark => "tshark",
            Self::Tcpdump => "tcpdump",
            Self::Chromium => "chromium",
            Self::LibpcapDev => "libpcap-dev",
            Self::Ip => "ip",
            Self::Python3 => "python3",
            Self::Nginx => "nginx",
            Self::Wrk => "wrk",
        }
    }

    const fn apt_package(self) -> &'static str {
        match self {
            Self::Tshark => "tshark",
            Self::Tcpdump => "tcpdump",
            Self::Chromium => "chromium",
            Self::LibpcapDev => "libpcap-dev",
            Self::Ip => "iproute2",
            Self::Python3 => "python3",
            Self::Nginx => "nginx-light",
            Self::Wrk => "wrk",
        }
    }

    /// Whether the tool is installed: a program on PATH, or for libpcap
    /// the header its Rust binding compiles against.
    pub(crate) fn is_present(self) -> bool {
        match self {
            Self::LibpcapDev => {
                std::path::Path::new("/usr/include/pcap/pcap.h").exists()
                    || Command::new("pkg-config")
                        .args(["--exists", "libpcap"])
                        .status()
                        .is_ok_and(|s| s.success())
            }
            _ => which(self.binary()).is_some(),
        }
    }
}

/// Answer for wireshark-common's "should non-superusers be able to capture packets?" question,
/// so the install never stops for a prompt.
const WIRESHARK_DEBCONF: &str = "wireshark-common wireshark-common/install-setuid boolean false\n";

/// Makes sure every tool in `tools` is on PATH, installing the missing ones with apt when root.
/// Returns the tools that are still missing afterwards (with a message already printed).
pub(crate) fn ensure_tools(tools: &[Tool], allow_install: bool) -> Vec<Tool> {
    let missing: Vec<Tool> = tools.iter().copied().filter(|t| !t.is_present()).collect();
    if missing.is_empty() {
        return missing;
    }
    let names = missing
        .iter()
        .map(|t| t.binary())
        .collect::<Vec<_>>()
        .join(" ");
    if !allow_install {
        eprintln!("    missing: {names} (install disabled by --no-install)");
        return missing;
    }
    if !is_root() {
        eprintln!(
            "    missing: {names}. Not root, so not installing them; tests that need them will \
             skip themselves. To install: sudo apt-get install -y --no-install-recommends {names}"
        );
        return missing;
    }
    if which("apt-get").is_none() {
        eprintln!("    missing: {names}, and apt-get is not available; install them by hand.");
        return missing;
    }
    if let Err(error) = apt_install(&missing) {
        eprintln!("    apt install of {names} failed: {error:#}");
    }
    missing.into_iter().filter(|t| !t.is_present()).collect()
}

fn apt_install(tools: &[Tool]) -> Result<()> {
    let mut preseed = Command::new("debconf-set-selections");
    preseed.stdin(Stdio::piped());
    if let Ok(mut child) = preseed.spawn() {
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(WIRESHARK_DEBCONF.as_bytes())
                .context("debconf-set-selections")?;
        }
        let status = child.wait().context("debconf-set-selections")?;
        if !status.success() {
            eprintln!("    warning: debconf-set-selections failed ({status}); continuing");
        }
    }
    run_checked(apt_get().args(["update", "-q"]))?;
    let mut install = apt_get();
    install.args(["install", "-y", "-q", "--no-install-recommends"]);
    install.args(tools.iter().map(|t| t.apt_package()));
    run_checked(&mut install)?;
    Ok(())
}

fn apt_get() -> Command {
    let mut cmd = Command::new("apt-get");
    cmd.env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}

/// rustup components the steps need, with the cargo subcommand that proves each is present.
const RUST_COMPONENTS: &[(&str, &str)] = &[("rustfmt", "fmt"), ("clippy", "clippy")];

/// Adds rustfmt and clippy with rustup if `cargo fmt` / `cargo clippy` do not run.
pub(crate) fn ensure_rust_components(allow_install: bool) -> Result<()> {
    let missing: Vec<&str> = RUST_COMPONENTS
        .iter()
        .filter(|(_, sub)| !cargo_subcommand_works(sub))
        .map(|(component, _)| *component)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !allow_install {
        bail!(
            "rust components missing: {} (install disabled)",
            missing.join(" ")
        );
    }
    if which("rustup").is_none() {
        bail!(
            "rust components missing: {}, and rustup is not on PATH",
            missing.join(" ")
        );
    }
    run_checked(
        Command::new("rustup")
            .args(["component", "add"])
            .args(&missing),
    )?;
    Ok(())
}

fn cargo_subcommand_works(sub: &str) -> bool {
    crate::util::cargo()
        .args([sub, "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
