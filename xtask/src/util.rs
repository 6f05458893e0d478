//! Small helpers shared by the subcommands: paths, tools on PATH, running children.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The workspace root (the parent of this crate's manifest directory).
pub(crate) fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The cargo that launched us (set by `cargo run`), or `cargo` from PATH.
pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Cargo's target directory, honouring `CARGO_TARGET_DIR` (relative to the repo root).
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => repo_root().join(dir),
        _ => repo_root().join("target"),
    }
}

/// Full path of an executable found on PATH.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether this process runs with effective uid 0 (read from `/proc/self/status`).
pub(crate) fn is_root() -> bool {
    let Ok(status) = fs::read_to_string("/proc/self/status") else {
        return false;
    };
    effective_uid(&status) == Some(0)
}

/// Parses the effective uid (second field of the `Uid:` line) of a `/proc/<pid>/status` text.
pub(crate) fn effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Prints a step banner to stderr.
pub(crate) fn banner(text: &str) {
    eprintln!();
    eprintln!("==> {text}");
}

/// Renders a command line for messages.
pub(crate) fn display_cmd(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(quote));
    parts.join(" ")
}

fn quote(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    if s.is_empty() || s.contains(|c: char| c.is_whitespace() || "'\"$*?".contains(c)) {
        format!("'{}'", s.replace('\'', r"'\''"))
    } else {
        s.into_owned()
    }
}

/// Runs a command with inherited stdio; an unsuccessful exit is an error.
pub(crate) fn run_checked(cmd: &mut Command) -> Result<Duration> {
    let shown = display_cmd(cmd);
    eprintln!("    $ {shown}");
    let start = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(start.elapsed())
}

/// Bytes available to this user on the filesystem holding `dir` (or its nearest existing
/// ancestor), read with POSIX `df -Pk`; `None` when df is missing or prints something else.
pub(crate) fn available_bytes(dir: &Path) -> Option<u64> {
    let existing = dir.ancestors().find(|d| d.exists())?;
    let output = Command::new("df").arg("-Pk").arg(existing).output().ok()?;
    if !output.status.success() {
        return None;
    }
    parse_df_available(&String::from_utf8_lossy(&output.stdout))
}

/// The "Available" column (1024-byte blocks) of the one data line of `df -Pk`, in bytes.
pub(crate) fn parse_df_available(text: &str) -> Option<u64> {
    let line = text.lines().nth(1)?;
    let kib: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Formats a duration as seconds with one decimal.
pub(crate) fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_uid_is_second_field() {
        let status = "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
        assert_eq!(effective_uid(status), Some(0));
        assert_eq!(effective_uid("Name:\tx\n"), None);
    }

    #[test]
    fn display_cmd_quotes_awkward_args() {
        let mut cmd = Command::new("tshark");
        cmd.args(["-Y", "http.request", "a b", ""]);
        assert_eq!(display_cmd(&cmd), "tshark -Y http.request 'a b' ''");
    }

    #[test]
    fn df_available_is_the_fourth_column() {
        let text = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n\
                    /dev/vda         263174212 30294228 222863600      12% /\n";
        assert_eq!(parse_df_available(text), Some(222_863_600 * 1024));
        assert_eq!(parse_df_available("Filesystem 1024-blocks\n"), None);
        assert_eq!(parse_df_available(""), None);
        assert!(available_bytes(Path::new("/")).is_some_and(|b| b > 0));
    }

    #[test]
    fn which_finds_sh_but_not_nonsense() {
        assert!(which("sh").is_some());
        assert!(which("definitely-not-a-real-tool-xyz").is_none());
    }
}
