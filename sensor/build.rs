//! Embeds the eBPF object when `cargo xtask build-ebpf` has built it.
//!
//! The object is looked for at `<target dir>/ebpf/shadowtap-sensor-ebpf.o` (or at the path
//! in `SHADOWTAP_EBPF_OBJECT`) and copied to `$OUT_DIR/shadowtap-sensor-ebpf.o`, which
//! `capture::ebpf` includes. Without it an empty file is written instead: the sensor still
//! builds (no nightly, no bpf-linker needed) and `--ebpf` says how to build the object.
//! The `ebpf/` directory is watched, so building the object re-runs this script.

use std::path::{Path, PathBuf};
use std::{env, fs};

/// Keep in step with `xtask/src/ebpf.rs` (`OBJECT_PATH`).
const OBJECT_PATH: &str = "ebpf/shadowtap-sensor-ebpf.o";
const OVERRIDE_VAR: &str = "SHADOWTAP_EBPF_OBJECT";

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo::rerun-if-env-changed={OVERRIDE_VAR}");
    println!("cargo::rerun-if-changed=build.rs");
    let source = match env::var_os(OVERRIDE_VAR) {
        Some(path) => {
            let path = PathBuf::from(path);
            println!("cargo::rerun-if-changed={}", path.display());
            Some(path)
        }
        None => target_dir(&out_dir).map(|target| {
            let object = target.join(OBJECT_PATH);
            if let Some(dir) = object.parent() {
                // Watch the directory (it exists from now on) rather than a file that may
                // not: a missing file would re-run this script on every build.
                let _ = fs::create_dir_all(dir);
                println!("cargo::rerun-if-changed={}", dir.display());
            }
            object
        }),
    };
    let dest = out_dir.join("shadowtap-sensor-ebpf.o");
    let bytes = source
        .as_deref()
        .and_then(|p| fs::read(p).ok())
        .unwrap_or_default();
    fs::write(&dest, &bytes).expect("writing the eBPF object to OUT_DIR");
    let shown = source
        .as_deref()
        .map_or_else(|| OBJECT_PATH.to_owned(), |p| p.display().to_string());
    println!("cargo::rustc-env=SHADOWTAP_EBPF_OBJECT_PATH={shown}");
}

/// Cargo's target directory, from the layout of `OUT_DIR`:
/// `<target dir>[/<triple>]/<profile>/build/<package>-<hash>/out`.
fn target_dir(out_dir: &Path) -> Option<PathBuf> {
    let profile_dir = out_dir.ancestors().nth(3)?;
    let parent = profile_dir.parent()?;
    let triple = env::var("TARGET").ok();
    match parent.file_name().and_then(|n| n.to_str()) {
        Some(name) if Some(name) == triple.as_deref() => parent.parent().map(Path::to_path_buf),
        _ => Some(parent.to_path_buf()),
    }
}
