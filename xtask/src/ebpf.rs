//! `cargo xtask ebpf-toolchain` and `cargo xtask build-ebpf`: the eBPF programs in
//! `sensor-ebpf/` and what building them needs.
//!
//! ```text
//! ebpf-toolchain  apt (root, only what is missing): llvm-22-dev libpolly-22-dev libzstd-dev
//!                 zlib1g-dev bpftool iproute2; rustup: rust-src for nightly;
//!                 cargo install bpf-linker 0.13.0 (LLVM 22), skipped when it answers
//! build-ebpf      rustup run nightly cargo build --release (sensor-ebpf/.cargo/config.toml:
//!                 bpfel-unknown-none, -Z build-std=core, BTF) and copy the object to
//!                 <target>/ebpf/shadowtap-sensor-ebpf.o, where the sensor's build.rs embeds it
//! ```
//!
//! bpf-linker's LLVM major must equal the nightly rustc's (22 on the project's machines);
//! [`ensure_toolchain`] checks it and says so when they differ.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::util::{is_root, repo_root, run_checked, target_dir, which};

/// The toolchain that builds `sensor-ebpf` (also named in `sensor-ebpf/rust-toolchain.toml`).
const NIGHTLY: &str = "nightly";
/// LLVM major that bpf-linker is built against; the nightly rustc must use the same.
const LLVM_MAJOR: &str = "22";
const LLVM_BIN: &str = "/usr/lib/llvm-22/bin";
const BPF_LINKER_VERSION: &str = "0.13.0";
const APT_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
    "bpftool",
    "iproute2",
];

/// Where `build-ebpf` puts the object, relative to cargo's target directory. The sensor's
/// `build.rs` looks for it at the same place (keep `sensor/build.rs` in step).
pub(crate) const OBJECT_PATH: &str = "ebpf/shadowtap-sensor-ebpf.o";

/// Installs what building the eBPF programs needs, idempotently.
pub(crate) fn ensure_toolchain(allow_install: bool) -> Result<()> {
    ensure_apt_packages(allow_install)?;
    if !nightly_installed() {
        bail!(
            "the `{NIGHTLY}` toolchain is not installed. Install the nightly whose LLVM major is \
             {LLVM_MAJOR} (rustc 1.97.0-nightly of 2026-05-19) as `{NIGHTLY}`; newer nightlies \
             use LLVM 23, which bpf-linker {BPF_LINKER_VERSION} built for LLVM {LLVM_MAJOR} \
             cannot read"
        );
    }
    let llvm = nightly_llvm_major()?;
    if llvm != LLVM_MAJOR {
        bail!(
            "`{NIGHTLY}` uses LLVM {llvm}, bpf-linker is built for LLVM {LLVM_MAJOR}: install the \
             nightly of 2026-05-19 as `{NIGHTLY}`"
        );
    }
    if allow_install {
        run_checked(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            NIGHTLY,
        ]))?;
    }
    if bpf_linker_works() {
        eprintln!("    bpf-linker present, not reinstalling");
        return Ok(());
    }
    if !allow_install {
        bail!("bpf-linker is missing (install disabled)");
    }
    let mut install = crate::util::cargo();
    install
        .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION])
        .args(["--no-default-features", "--features", "llvm-22"])
        .env("PATH", path_with(LLVM_BIN))
        // Our own target dir is for the workspace; cargo install uses a temporary one.
        .env_remove("CARGO_TARGET_DIR");
    run_checked(&mut install)?;
    if !bpf_linker_works() {
        bail!("bpf-linker was installed but `bpf-linker --version` does not run; is ~/.cargo/bin on PATH?");
    }
    Ok(())
}

/// Builds `sensor-ebpf` and copies the object to [`OBJECT_PATH`] (under the target directory); returns that path.
pub(crate) fn build() -> Result<PathBuf> {
    if !bpf_linker_works() {
        bail!("bpf-linker is not on PATH: run `cargo xtask ebpf-toolchain` first");
    }
    let target = target_dir();
    let crate_dir = repo_root().join("sensor-ebpf");
    let mut cmd = Command::new("rustup");
    cmd.args([
        "run",
        NIGHTLY,
        "cargo",
        "build",
        "--release",
        "--target-dir",
    ])
    .arg(&target)
    .current_dir(&crate_dir);
    // Variables that `cargo run` of xtask (stable) set and that would steer the nested
    // nightly build; RUSTFLAGS would also replace sensor-ebpf/.cargo/config.toml's flags.
    for var in [
        "CARGO",
        "RUSTC",
        "RUSTDOC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTUP_TOOLCHAIN",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    run_checked(&mut cmd)?;
    let built = target.join("bpfel-unknown-none/release/shadowtap-sensor-ebpf");
    let dest = target.join(OBJECT_PATH);
    install_file(&built, &dest)?;
    eprintln!("    eBPF object: {}", dest.display());
    Ok(dest)
}

/// Copies `from` to `to` through a temporary name and a rename, so a reader (the sensor's
/// build script) never sees half a file.
fn install_file(from: &Path, to: &Path) -> Result<()> {
    let dir = to.parent().context("object path has no parent")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = to.with_extension("o.tmp");
    fs::copy(from, &tmp).with_context(|| format!("copying {}", from.display()))?;
    fs::rename(&tmp, to).with_context(|| format!("renaming to {}", to.display()))?;
    Ok(())
}

fn ensure_apt_packages(allow_install: bool) -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names = missing.join(" ");
    if !allow_install || !is_root() || which("apt-get").is_none() {
        bail!(
            "missing Debian packages: {names}. As root: apt-get install -y {names} \
             (or run `cargo xtask ebpf-toolchain` as root)"
        );
    }
    let apt = || {
        let mut c = Command::new("apt-get");
        c.env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    run_checked(apt().args(["update", "-q"]))?;
    run_checked(
        apt()
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing),
    )?;
    Ok(())
}

fn dpkg_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.ends_with(b"install ok installed"))
}

fn nightly_installed() -> bool {
    Command::new("rustup")
        .args(["run", NIGHTLY, "rustc", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The LLVM major version of the nightly rustc (`rustc -vV`'s `LLVM version: 22.1.2`).
fn nightly_llvm_major() -> Result<String> {
    let out = Command::new("rustup")
        .args(["run", NIGHTLY, "rustc", "-vV"])
        .output()
        .context("running rustc -vV of the nightly toolchain")?;
    let text = String::from_utf8_lossy(&out.stdout);
    llvm_major(&text).context("`rustc -vV` printed no LLVM version")
}

pub(crate) fn llvm_major(rustc_vv: &str) -> Option<String> {
    let version = rustc_vv
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))?;
    Some(version.split('.').next()?.trim().to_owned())
}

fn bpf_linker_works() -> bool {
    Command::new("bpf-linker")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn path_with(dir: &str) -> std::ffi::OsString {
    let mut paths = vec![PathBuf::from(dir)];
    if let Some(path) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(paths).unwrap_or_else(|_| dir.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llvm_major_from_rustc_vv() {
        let vv = "rustc 1.97.0-nightly\nbinary: rustc\nhost: x86_64-unknown-linux-gnu\n\
                  LLVM version: 22.1.2\n";
        assert_eq!(llvm_major(vv).as_deref(), Some("22"));
        assert_eq!(llvm_major("rustc 1.0\n"), None);
    }

    #[test]
    fn object_path_matches_the_sensor_build_script() {
        let build_rs = std::fs::read_to_string(repo_root().join("sensor/build.rs")).unwrap();
        assert!(build_rs.contains(&format!("\"{OBJECT_PATH}\"")));
    }
}
