//! `cargo xtask dist`: the binaries to deploy, built with profile-guided optimisation.
//!
//! ```text
//! llvm-profdata of rustc's LLVM major      (apt `llvm-N` when root and missing)
//!   -> cargo build --release, -Cprofile-generate     target/pgo/instrumented
//!   -> training: a generated scenario capture (`shadowtap-scenario`, seed 1, 72 s at
//!      500 req/s, ~130 MB, every anomaly kind) and samples/, through the sensor and
//!      `shadowtap analyze` (JSON and table reports, a SQLite store)
//!   -> llvm-profdata merge                           target/pgo/merged-HASH.profdata
//!   -> cargo build --release, -Cprofile-use          target/pgo/optimized
//!   -> target/dist/shadowtap-sensor, target/dist/shadowtap, target/dist/BUILD.txt
//! ```
//!
//! The training traffic is the project's own traffic model, not the benchmark's capture: the
//! profile teaches the compiler which branches real API traffic takes, and the benchmark then
//! measures a binary that never saw its input. `--no-pgo` builds the same binaries without
//! the profile (plain `cargo build --release`, copied to the same place).
//!
//! Both builds live in their own target directories under `target/pgo/`, so they do not
//! invalidate the ordinary release build's cache. The sensor embeds the eBPF object when
//! `cargo xtask build-ebpf` has built it (`target/ebpf/`), as an ordinary build does.

use std::collections::hash_map::DefaultHasher;
use std::ffi::OsString;
use std::fs::{self, File};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use shadowtap_scenario::{generate, AnomalyPlan, Config};

use crate::ebpf::llvm_major;
use crate::util::{banner, cargo, is_root, run_checked, secs, target_dir, which};

/// Packages the dist build ships (their binaries: `BINARIES`).
const PACKAGES: [&str; 2] = ["shadowtap-sensor", "shadowtap-analyzer"];
const BINARIES: [&str; 2] = ["shadowtap-sensor", "shadowtap"];

/// The training scenario: seed, hours of packet time, requests per second.
const TRAINING_SEED: u64 = 1;
const TRAINING_HOURS: f64 = 0.02;
const TRAINING_RATE: f64 = 500.0;
/// Minutes before the training scenario's first anomaly.
const TRAINING_WARMUP_MINUTES: f64 = 0.2;

/// A fixed key for the training runs (fingerprints are discarded).
const TRAINING_KEY: &[u8] = b"shadowtap-pgo-training-key-0001";

#[derive(Debug, clap::Args)]
pub(crate) struct DistArgs {
    /// Build without profile-guided optimisation (plain release build).
    #[arg(long)]
    no_pgo: bool,
    /// Cargo features of the sensor to enable (e.g. `libpcap`).
    #[arg(long, value_name = "LIST")]
    features: Option<String>,
}

impl DistArgs {
    /// Default features, with or without PGO (for `cargo xtask bench`).
    pub(crate) fn plain(no_pgo: bool) -> Self {
        Self {
            no_pgo,
            features: None,
        }
    }
}

/// Where `cargo xtask dist` puts its binaries.
pub(crate) fn dist_dir() -> PathBuf {
    target_dir().join("dist")
}

pub(crate) fn run(args: &DistArgs) -> Result<()> {
    let started = Instant::now();
    let out = dist_dir();
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let built = if args.no_pgo {
        banner("dist: release build (no PGO)");
        let dir = plain_target(args);
        release_build(&dir, None, args)?;
        dir.join("release")
    } else {
        pgo_build(args)?
    };
    for binary in BINARIES {
        let from = built.join(binary);
        let to = out.join(binary);
        // Remove first: copying over a running binary fails with ETXTBSY.
        let _ = fs::remove_file(&to);
        fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    let note = format!(
        "profile-guided optimisation: {}\nfeatures: {}\nrustc: {}\n",
        if args.no_pgo {
            "no (--no-pgo)"
        } else {
            "yes (trained on scenario seed 1 and samples/)"
        },
        args.features.as_deref().unwrap_or("default"),
        rustc_version()
            .ok()
            .and_then(|v| v.lines().next().map(str::to_owned))
            .unwrap_or_else(|| "unknown".to_owned()),
    );
    fs::write(out.join("BUILD.txt"), note)?;
    eprintln!(
        "\ndist: {} and {} in {} ({})",
        BINARIES[0],
        BINARIES[1],
        out.display(),
        secs(started.elapsed())
    );
    Ok(())
}

/// The target directory of a `--no-pgo` build: the ordinary one (its release build is the
/// same), or one of its own when features are asked for, so that they do not change what a
/// later plain `cargo build --release` finds there.
fn plain_target(args: &DistArgs) -> PathBuf {
    match &args.features {
        None => target_dir(),
        Some(_) => target_dir().join("pgo").join("plain"),
    }
}

/// The three PGO steps; returns the directory holding the optimised binaries.
fn pgo_build(args: &DistArgs) -> Result<PathBuf> {
    let profdata = llvm_profdata()?;
    let pgo = target_dir().join("pgo");
    let raw = pgo.join("profraw");
    let merged = pgo.join("merged.profdata");
    // Profiles of an earlier run would be merged into this one's.
    if raw.exists() {
        fs::remove_dir_all(&raw).with_context(|| format!("removing {}", raw.display()))?;
    }
    fs::create_dir_all(&raw)?;

    banner("dist: instrumented build");
    let instrumented = pgo.join("instrumented");
    let mut generate_flag = OsString::from("-Cprofile-generate=");
    generate_flag.push(&raw);
    release_build(&instrumented, Some(generate_flag), args)?;

    banner("dist: training runs");
    train(&instrumented.join("release"), &pgo, &raw)?;
    let mut merge = Command::new(&profdata);
    merge.arg("merge").arg("-o").arg(&merged).arg(&raw);
    run_checked(&mut merge)?;

    // Cargo rebuilds when the flags change, not when the file they name does: the profile
    // goes to a path named by its contents, so a new profile means a new build.
    let bytes = fs::read(&merged).with_context(|| format!("reading {}", merged.display()))?;
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    let profile = pgo.join(format!("merged-{:016x}.profdata", hasher.finish()));
    for entry in fs::read_dir(&pgo)?.filter_map(Result::ok) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("merged-") && name.ends_with(".profdata") {
            let _ = fs::remove_file(entry.path());
        }
    }
    fs::rename(&merged, &profile)?;

    banner("dist: optimised build");
    let optimized = pgo.join("optimized");
    let mut use_flag = OsString::from("-Cprofile-use=");
    use_flag.push(&profile);
    release_build(&optimized, Some(use_flag), args)?;
    Ok(optimized.join("release"))
}

/// `cargo build --release` of the shipped packages into `target`, with one more rustc flag.
fn release_build(target: &Path, flag: Option<OsString>, args: &DistArgs) -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--target-dir"]).arg(target);
    for package in PACKAGES {
        cmd.args(["-p", package]);
    }
    if let Some(features) = &args.features {
        cmd.args(["--features", &format!("shadowtap-sensor/{features}")]);
    }
    if let Some(flag) = flag {
        // Appended to the caller's flags; the encoded form would override them.
        let mut flags = std::env::var_os("RUSTFLAGS").unwrap_or_default();
        if !flags.is_empty() {
            flags.push(" ");
        }
        flags.push(flag);
        cmd.env("RUSTFLAGS", flags)
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
    }
    // A separate target directory would not find the eBPF object under its own path.
    let object = target_dir().join("ebpf/shadowtap-sensor-ebpf.o");
    if object.is_file() && std::env::var_os("SHADOWTAP_EBPF_OBJECT").is_none() {
        cmd.env("SHADOWTAP_EBPF_OBJECT", &object);
    }
    run_checked(&mut cmd)?;
    Ok(())
}

/// Runs the instrumented binaries over the training traffic; their profiles land in `raw`.
fn train(bin: &Path, pgo: &Path, raw: &Path) -> Result<()> {
    let capture = pgo.join(format!("training-{TRAINING_SEED}.pcap"));
    if !capture.is_file() {
        let mut config = Config::new(TRAINING_SEED, TRAINING_HOURS, TRAINING_RATE);
        config.anomalies = AnomalyPlan::all(1);
        config.anomalies.warmup_ns = Some((TRAINING_WARMUP_MINUTES * 60e9) as u64);
        let partial = capture.with_extension("pcap.partial");
        let file =
            File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
        let report = generate(&config, file)
            .with_context(|| format!("writing the training capture {}", partial.display()))?;
        fs::rename(&partial, &capture)?;
        eprintln!(
            "    training capture {}: {} requests, {:.1} MB",
            capture.display(),
            report.summary.requests,
            report.summary.bytes as f64 / 1e6
        );
    }
    let key = pgo.join("training.key");
    fs::write(&key, TRAINING_KEY)?;
    let db = pgo.join("training.db");
    let _ = fs::remove_file(&db);
    let mut profile = raw.as_os_str().to_owned();
    profile.push("/%p-%m.profraw");

    let sensor = bin.join(BINARIES[0]);
    let analyzer = bin.join(BINARIES[1]);
    let demo = Path::new("samples/demo-api.pcap");
    let anomalies = Path::new("samples/anomalies.pcap.gz");
    let spec = "samples/demo-api.openapi.yaml";
    let mut runs = vec![
        {
            let mut c = Command::new(&sensor);
            c.arg("-q");
            for input in [capture.as_path(), demo, anomalies] {
                c.arg("-r").arg(input);
            }
            c.args(["-w", "/dev/null", "--fingerprint-key-file"])
                .arg(&key);
            c
        },
        {
            let mut c = Command::new(&analyzer);
            c.args([
                "analyze",
                "-q",
                "--format",
                "json",
                "--fingerprint-key-file",
            ])
            .arg(&key)
            .arg(&capture)
            .arg(anomalies);
            c
        },
        {
            let mut c = Command::new(&analyzer);
            c.args(["analyze", "-q", "--spec", spec, "--db"])
                .arg(&db)
                .arg(demo);
            c
        },
    ];
    for cmd in &mut runs {
        cmd.env("LLVM_PROFILE_FILE", &profile).stdout(Stdio::null());
        run_checked(cmd)?;
    }
    let profiles = fs::read_dir(raw)?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "profraw"))
        .count();
    ensure!(
        profiles > 0,
        "the training runs wrote no profile into {}",
        raw.display()
    );
    Ok(())
}

/// `llvm-profdata` of the LLVM that the stable rustc uses; installed with apt (`llvm-N`) when
/// missing and root.
fn llvm_profdata() -> Result<PathBuf> {
    let version = rustc_version()?;
    let major = llvm_major(&version).context("`rustc -vV` printed no LLVM version")?;
    if let Some(found) = find_profdata(&major) {
        return Ok(found);
    }
    let package = format!("llvm-{major}");
    if is_root() && which("apt-get").is_some() {
        banner(&format!("dist: install {package} (llvm-profdata)"));
        let mut apt = Command::new("apt-get");
        apt.args(["install", "-y", "-q", "--no-install-recommends", &package])
            .env("DEBIAN_FRONTEND", "noninteractive");
        if run_checked(&mut apt).is_err() {
            run_checked(Command::new("apt-get").args(["update", "-q"]))?;
            run_checked(&mut apt)?;
        }
        if let Some(found) = find_profdata(&major) {
            return Ok(found);
        }
    }
    bail!(
        "llvm-profdata for LLVM {major} (rustc's) not found: install `{package}` (apt) or \
         `rustup component add llvm-tools`, or build without PGO: `cargo xtask dist --no-pgo`"
    )
}

/// `llvm-profdata` for LLVM `major`: Debian's versioned paths first, then rustup's llvm-tools.
fn find_profdata(major: &str) -> Option<PathBuf> {
    let debian = PathBuf::from(format!("/usr/lib/llvm-{major}/bin/llvm-profdata"));
    if debian.is_file() {
        return Some(debian);
    }
    if let Some(found) = which(&format!("llvm-profdata-{major}")) {
        return Some(found);
    }
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let sysroot = String::from_utf8(sysroot.stdout).ok()?;
    let tools = Path::new(sysroot.trim()).join("lib/rustlib");
    fs::read_dir(tools)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin/llvm-profdata"))
        .find(|p| p.is_file())
}

/// `rustc -vV` of the toolchain cargo builds with.
fn rustc_version() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("running `rustc -vV`")?;
    ensure!(out.status.success(), "`rustc -vV` failed ({})", out.status);
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_build_with_features_keeps_out_of_the_release_directory() {
        let plain = DistArgs::plain(true);
        assert_eq!(plain_target(&plain), target_dir());
        let with_pcap = DistArgs {
            no_pgo: true,
            features: Some("libpcap".to_owned()),
        };
        let dir = plain_target(&with_pcap);
        assert_ne!(dir, target_dir());
        assert!(dir.starts_with(target_dir()));
    }
}
