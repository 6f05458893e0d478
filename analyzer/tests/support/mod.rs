//! Helpers shared by the analyzer's integration tests that run the
//! `shadowtap` binary and external tools.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Set by `cargo xtask test`: a missing external tool fails the test there.
const UNDER_XTASK_VAR: &str = "SHADOWTAP_UNDER_XTASK";

/// The demo capture and the contract it is judged against.
pub(crate) const DEMO_ARGS: [&str; 3] = [
    "samples/demo-api.pcap",
    "--spec",
    "127.0.0.1:8080=analyzer/testdata/specs/oai-v3.0-petstore-expanded.yaml",
];

pub(crate) fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// A fresh scratch path under cargo's per-target temporary directory,
/// unique per process and call.
pub(crate) fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("analyzer-formats");
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{}-{n}-{name}", std::process::id()))
}

/// `shadowtap analyze DEMO --format FORMAT`, from the repository root;
/// returns stdout.
pub(crate) fn analyze_demo(format: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_shadowtap"))
        .current_dir(repo_root())
        .arg("analyze")
        .args(DEMO_ARGS)
        .args(["--quiet", "--format", format])
        .output()
        .expect("shadowtap runs");
    // Exit status 0: no --fail-on kinds given.
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// An external tool: `None` (after a loud message) when it is missing
/// outside `cargo xtask test`; a missing tool under xtask fails the test.
pub(crate) fn external_tool(test: &str, what: &str, found: Option<PathBuf>) -> Option<PathBuf> {
    match found {
        Some(path) => Some(path),
        None if std::env::var_os(UNDER_XTASK_VAR).is_some() => {
            panic!("{what} is missing although `{test}` runs under cargo xtask test, which provisions it")
        }
        None => {
            eprintln!(
                "\n!!! SKIPPING `{test}`: {what} is missing. `cargo xtask test` provisions it.\n"
            );
            None
        }
    }
}

/// Runs `cmd` to completion, killing it after `limit`. Output goes to
/// scratch files (not pipes, which a chatty child fills while we wait).
pub(crate) fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let (out_path, err_path) = (scratch("child.stdout"), scratch("child.stderr"));
    let file = |p: &Path| std::fs::File::create(p).expect("output file");
    let mut child: Child = cmd
        .stdin(Stdio::null())
        .stdout(file(&out_path))
        .stderr(file(&err_path))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{cmd:?} took more than {limit:?}; stderr:\n{}",
                    String::from_utf8_lossy(&std::fs::read(&err_path).unwrap_or_default())
                );
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("waiting for {cmd:?}: {e}"),
        }
    };
    let read = |p: &Path| {
        let bytes = std::fs::read(p).expect("child output");
        let _ = std::fs::remove_file(p);
        bytes
    };
    Output {
        status,
        stdout: read(&out_path),
        stderr: read(&err_path),
    }
}
