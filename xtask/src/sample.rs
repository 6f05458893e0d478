//! `cargo xtask sample`: record `samples/demo-api.pcap` from real loopback traffic.
//!
//! ```text
//! python3 samples/demo_server.py --port P     (wait for its "listening" line)
//! tcpdump -i lo -U -s 0 -w samples/demo-api.pcap 'tcp port P'   (wait for "listening on")
//! python3 samples/demo_client.py --port P --expected samples/demo-api.expected.txt
//! SIGINT tcpdump, wait; stop the server
//! python3 samples/demo_server.py --print-secrets > samples/demo-api.secrets.txt
//! check: size < 200 KiB, every line of samples/demo-api.secrets.txt occurs in the pcap bytes
//! ```
//!
//! Needs root (capturing on `lo`) and installs tcpdump with apt if it is missing.

use std::fs;
use std::io::{BufRead, BufReader, Read};

use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

use crate::provision::{ensure_tools, Tool};
use crate::util::{banner, is_root, run_checked, which};

pub(crate) const PCAP: &str = "samples/demo-api.pcap";
pub(crate) const EXPECTED: &str = "samples/demo-api.expected.txt";
pub(crate) const SECRETS: &str = "samples/demo-api.secrets.txt";
const MAX_PCAP_BYTES: u64 = 200 * 1024;

#[derive(Debug, clap::Args)]
pub(crate) struct SampleArgs {
    /// TCP port for the demo server. 8080 is one of tshark's default HTTP ports.
    #[arg(long, default_value_t = 8080)]
    port: u16,
}

/// Kills (SIGKILL) and reaps a child when dropped, so no helper outlives a failed run.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads `reader` line by line on a thread; returns once a line contains `needle`.
fn wait_for_line(
    reader: impl Read + Send + 'static,
    needle: &'static str,
    what: &'static str,
) -> Result<()> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            eprintln!("    [{what}] {line}");
            if line.contains(needle) {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(15))
        .with_context(|| format!("{what} did not report {needle:?} within 15s"))
}

fn signal(pid: u32, sig: &str) -> Result<()> {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill {sig} {pid} failed");
    Ok(())
}

pub(crate) fn run(args: &SampleArgs) -> Result<ExitCode> {
    if !is_root() {
        bail!("capturing on lo needs root; run `sudo -E cargo xtask sample`");
    }
    banner("sample: tools");
    if !ensure_tools(&[Tool::Tcpdump], true).is_empty() {
        bail!("tcpdump is required");
    }
    ensure!(which("python3").is_some(), "python3 is required");
    let port = args.port.to_string();

    banner(&format!("sample: start demo server on 127.0.0.1:{port}"));
    let mut server = Command::new("python3")
        .args(["samples/demo_server.py", "--port", &port])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting demo_server.py")?;
    let server_out = server.stdout.take().context("server stdout")?;
    let mut server = Guard(Some(server));
    wait_for_line(server_out, "listening", "demo server")?;

    banner("sample: start tcpdump");
    let tmp = format!("{PCAP}.partial");
    let mut tcpdump = Command::new("tcpdump")
        .args(["-i", "lo", "-U", "-s", "0", "-w", &tmp])
        .arg(format!("tcp port {port}"))
        .stderr(Stdio::piped())
        .spawn()
        .context("starting tcpdump")?;
    let tcpdump_err = tcpdump.stderr.take().context("tcpdump stderr")?;
    let tcpdump_pid = tcpdump.id();
    let mut tcpdump = Guard(Some(tcpdump));
    wait_for_line(tcpdump_err, "listening on", "tcpdump")?;

    banner("sample: run demo client");
    run_checked(Command::new("python3").args([
        "samples/demo_client.py",
        "--port",
        &port,
        "--expected",
        EXPECTED,
    ]))?;
    // Stop the server first (its last segments and FINs go out), give the
    // capture time to see them, then stop tcpdump.
    banner("sample: stop server and tcpdump");
    if let Some(mut child) = server.0.take() {
        signal(child.id(), "-TERM")?;
        let _ = child.wait();
    }
    thread::sleep(Duration::from_millis(1500));
    signal(tcpdump_pid, "-INT")?;
    if let Some(mut child) = tcpdump.0.take() {
        let status = child.wait()?;
        ensure!(status.success(), "tcpdump exited with {status}");
    }
    fs::rename(&tmp, PCAP)?;

    banner("sample: write secrets list and verify");
    let secrets = Command::new("python3")
        .args(["samples/demo_server.py", "--print-secrets"])
        .output()
        .context("demo_server.py --print-secrets")?;
    ensure!(
        secrets.status.success(),
        "demo_server.py --print-secrets failed"
    );
    fs::write(SECRETS, &secrets.stdout)?;
    let pcap = fs::read(PCAP)?;
    let size = pcap.len() as u64;
    ensure!(
        size <= MAX_PCAP_BYTES,
        "{PCAP} is {size} bytes, over {MAX_PCAP_BYTES}"
    );
    let missing = missing_secrets(&pcap, &fs::read_to_string(SECRETS)?);
    ensure!(
        missing.is_empty(),
        "secrets listed in {SECRETS} but absent from the pcap: {missing:?}"
    );
    let exchanges = fs::read_to_string(EXPECTED)?.lines().count();
    eprintln!("    {PCAP}: {size} bytes, {exchanges} exchanges; all secrets present");
    Ok(ExitCode::SUCCESS)
}

/// Lines of the secrets file (blank lines and `#` comments ignored) not found in `haystack`.
pub(crate) fn missing_secrets(haystack: &[u8], secrets: &str) -> Vec<String> {
    secrets
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|s| !haystack.windows(s.len()).any(|w| w == s.as_bytes()))
        .map(str::to_owned)
        .collect()
}

/// True when the shipped sample files are present (used by tests).
#[cfg(test)]
pub(crate) fn sample_present(root: &std::path::Path) -> bool {
    [PCAP, EXPECTED, SECRETS]
        .iter()
        .all(|f| root.join(f).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::repo_root;

    #[test]
    fn missing_secrets_finds_absent_lines() {
        let hay = b"xx Authorization: Bearer abc.def.ghi yy password=hunter2";
        let missing = missing_secrets(hay, "# comment\nabc.def.ghi\n\nhunter2\nnot-there\n");
        assert_eq!(missing, ["not-there"]);
    }

    /// The committed sample is small and contains every secret its secrets file lists, so a
    /// privacy canary that greps sensor output for those strings is meaningful.
    #[test]
    fn shipped_sample_is_consistent() {
        let root = repo_root();
        assert!(
            sample_present(&root),
            "samples/demo-api.* missing; run `cargo xtask sample`"
        );
        let pcap = fs::read(root.join(PCAP)).unwrap();
        assert!(pcap.len() as u64 <= MAX_PCAP_BYTES);
        assert_eq!(
            &pcap[..4],
            &[0xd4, 0xc3, 0xb2, 0xa1],
            "classic little-endian pcap"
        );
        let secrets = fs::read_to_string(root.join(SECRETS)).unwrap();
        assert!(secrets.lines().count() >= 5);
        assert_eq!(missing_secrets(&pcap, &secrets), Vec::<String>::new());
        let expected = fs::read_to_string(root.join(EXPECTED)).unwrap();
        let n = expected.lines().count();
        assert!((60..=120).contains(&n), "{n} exchanges");
        for line in expected.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 4, "method path status body_len: {line:?}");
            assert!(
                fields[1].starts_with('/') && !fields[1].contains('?'),
                "{line:?}"
            );
            assert!(
                fields[2].parse::<u16>().is_ok() && fields[3].parse::<u64>().is_ok(),
                "{line:?}"
            );
        }
    }
}
