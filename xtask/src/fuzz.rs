//! `cargo xtask fuzz`: seed the fuzz corpora and run the cargo-fuzz targets.
//!
//! Seeds come from the repository's own captures and HTTP transcripts (a
//! user's clone has everything needed). Each target runs for `--seconds`
//! (libFuzzer `-max_total_time`) on the nightly toolchain, which this
//! command installs with cargo-fuzz when they are missing.
//!
//! `--save-regressions` then merges each target's corpus into
//! `fuzz/regressions/<target>/` (libFuzzer `-merge=1` on edge coverage,
//! inputs of at most [`REGRESSION_MAX_INPUT_BYTES`]): the small committed
//! corpus that `cargo test` replays on stable (`tests/fuzz_regressions.rs`),
//! so every CI run goes through every input that once reached new code.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use clap::Args;

use crate::util::{banner, display_cmd, run_checked};

/// The targets in `fuzz/Cargo.toml`.
pub(crate) const TARGETS: &[&str] = &[
    "file_reader",
    "packet_decoder",
    "reassembly",
    "http",
    "shape",
    "records",
    "openapi",
];

/// Largest capture copied into a corpus as a seed.
const MAX_SEED_BYTES: u64 = 64 * 1024;
/// Frames taken from each capture as `packet_decoder` seeds.
const FRAMES_PER_CAPTURE: usize = 40;
/// Largest corpus input kept in `fuzz/regressions/`: the committed corpus
/// stays a few MB, and replaying it in `cargo test` takes seconds.
const REGRESSION_MAX_INPUT_BYTES: u64 = 16 * 1024;
/// Where the committed regression corpora live, one directory per target.
pub(crate) const REGRESSIONS_DIR: &str = "fuzz/regressions";

#[derive(Debug, Args)]
pub(crate) struct FuzzArgs {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Only these targets (default: all).
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(TARGETS))]
    targets: Vec<String>,
    /// Write the seed corpora and stop.
    #[arg(long)]
    seeds_only: bool,
    /// Pin the fuzzer to this CPU (taskset), to leave the others free.
    #[arg(long, conflicts_with = "jobs")]
    cpu: Option<u32>,
    /// Run this many targets at once, the i-th of each batch pinned to
    /// CPU i; their output goes to `fuzz/target/logs/<target>.log`.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// After the runs, merge each target's corpus into the committed
    /// regression corpus `fuzz/regressions/<target>/` (with `--seconds 0`:
    /// merge only).
    #[arg(long)]
    save_regressions: bool,
}

/// Seconds each target runs in `cargo xtask test` (reliability target S1:
/// at least 60 s per target in every CI run).
pub(crate) const SUITE_SECONDS: u64 = 60;

pub(crate) fn run(args: &FuzzArgs) -> Result<()> {
    let corpus = Path::new("fuzz/corpus");
    let written = write_seeds(corpus)?;
    eprintln!(
        "xtask fuzz: {written} seed files under {}",
        corpus.display()
    );
    if args.seeds_only {
        return Ok(());
    }
    ensure_cargo_fuzz(true)?;
    let targets: Vec<&str> = if args.targets.is_empty() {
        TARGETS.to_vec()
    } else {
        args.targets.iter().map(String::as_str).collect()
    };
    if args.seconds > 0 {
        run_targets(&targets, args.seconds, args.jobs, args.cpu)?;
    }
    if args.save_regressions {
        for &target in &targets {
            save_regressions(target, args.cpu)?;
        }
    }
    Ok(())
}

/// The `cargo xtask test` step: every target for [`SUITE_SECONDS`], as many
/// at once as there are CPUs, starting from the seeds and the committed
/// regression corpus. Installs nightly and cargo-fuzz when allowed.
pub(crate) fn suite_step(allow_install: bool) -> Result<()> {
    write_seeds(Path::new("fuzz/corpus"))?;
    ensure_cargo_fuzz(allow_install)?;
    let jobs = std::thread::available_parallelism().map_or(1, usize::from);
    run_targets(TARGETS, SUITE_SECONDS, jobs, None)
}

/// Builds the targets once, then runs each for `seconds` on its corpus and
/// its regression corpus, `jobs` at a time. A target that fails (a crash,
/// a leak, a timeout) fails the run after the others of its batch end; the
/// error names it and its log.
fn run_targets(targets: &[&str], seconds: u64, jobs: usize, cpu: Option<u32>) -> Result<()> {
    banner("build the fuzz targets (nightly, sanitizers)");
    run_checked(
        fuzz_cargo(cpu)
            .current_dir("fuzz")
            .args(["+nightly", "fuzz", "build", "-O"]),
    )
    .context("building the fuzz targets failed")?;
    let command = |target: &str, cpu: Option<u32>| {
        libfuzzer(
            target,
            cpu,
            [format!("corpus/{target}"), format!("regressions/{target}")],
            &[
                &format!("-max_total_time={seconds}"),
                "-print_final_stats=1",
            ],
        )
    };
    if jobs <= 1 {
        for &target in targets {
            banner(&format!("fuzz {target} for {seconds} s"));
            let mut cmd = command(target, cpu);
            run_checked(&mut cmd)
                .with_context(|| format!("fuzz target {target} failed: {}", display_cmd(&cmd)))?;
        }
        return Ok(());
    }
    let logs = Path::new("fuzz/target/logs");
    fs::create_dir_all(logs)?;
    let mut failed = Vec::new();
    for batch in targets.chunks(jobs) {
        banner(&format!("fuzz {} for {seconds} s each", batch.join(", ")));
        let mut running = Vec::new();
        for (i, &target) in batch.iter().enumerate() {
            let log_path = logs.join(format!("{target}.log"));
            let log = fs::File::create(&log_path)?;
            let mut cmd = command(target, u32::try_from(i).ok());
            cmd.stdout(log.try_clone()?).stderr(log);
            eprintln!("    $ {}  > {}", display_cmd(&cmd), log_path.display());
            let child = cmd
                .spawn()
                .with_context(|| format!("cannot start {}", display_cmd(&cmd)))?;
            running.push((target, log_path, child));
        }
        for (target, log_path, mut child) in running {
            let status = child.wait()?;
            let text = fs::read_to_string(&log_path).unwrap_or_default();
            if status.success() {
                eprintln!("    {target}: {}", final_stats(&text));
            } else {
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                eprintln!("--- last lines of {}:", log_path.display());
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
                failed.push(format!("{target} ({status}, log {})", log_path.display()));
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("fuzz targets failed: {}", failed.join("; "));
    }
    Ok(())
}

/// libFuzzer's closing line ("Done N runs in S second(s)") and figures
/// (`-print_final_stats=1`).
fn final_stats(log: &str) -> String {
    let stat = |name: &str| {
        log.lines()
            .find_map(|l| l.strip_prefix(name))
            .map_or("?", str::trim)
            .to_owned()
    };
    let done = log
        .lines()
        .rev()
        .find(|l| l.starts_with("Done "))
        .unwrap_or("no closing line");
    format!(
        "{done}; {} new inputs, peak RSS {} MB",
        stat("stat::new_units_added:"),
        stat("stat::peak_rss_mb:")
    )
}

/// `cargo fuzz run` of `target` on two corpus directories (relative to
/// `fuzz/`; new inputs go to the first), with libFuzzer's memory and time
/// limits and `flags`.
fn libfuzzer(target: &str, cpu: Option<u32>, corpora: [String; 2], flags: &[&str]) -> Command {
    let mut cmd = fuzz_cargo(cpu);
    cmd.current_dir("fuzz")
        .args(["+nightly", "fuzz", "run", "-O", target])
        .args(corpora)
        .args(["--", "-rss_limit_mb=2048", "-timeout=10"])
        .args(flags);
    cmd
}

/// `cargo`, under `taskset -c CPU` when a CPU is given.
fn fuzz_cargo(cpu: Option<u32>) -> Command {
    match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu.to_string(), "cargo"]);
            c
        }
        None => Command::new("cargo"),
    }
}

/// Merges `fuzz/corpus/<target>/` into `fuzz/regressions/<target>/`: the
/// corpus inputs of at most [`REGRESSION_MAX_INPUT_BYTES`] that reach an
/// edge the regression corpus does not reach yet. Inputs already there
/// (crash reproducers among them) are kept.
fn save_regressions(target: &str, cpu: Option<u32>) -> Result<()> {
    let candidates = PathBuf::from(format!("fuzz/target/regression-candidates/{target}"));
    if candidates.exists() {
        fs::remove_dir_all(&candidates)?;
    }
    fs::create_dir_all(&candidates)?;
    let mut offered = 0usize;
    for entry in fs::read_dir(Path::new("fuzz/corpus").join(target))
        .with_context(|| format!("no corpus for {target}: run the target first"))?
    {
        let entry = entry?;
        if entry.metadata()?.len() <= REGRESSION_MAX_INPUT_BYTES {
            fs::copy(entry.path(), candidates.join(entry.file_name()))?;
            offered += 1;
        }
    }
    let kept = Path::new(REGRESSIONS_DIR).join(target);
    fs::create_dir_all(&kept)?;
    let before = fs::read_dir(&kept)?.count();
    banner(&format!(
        "merge {offered} {target} inputs into {}",
        kept.display()
    ));
    let mut cmd = libfuzzer(
        target,
        cpu,
        [
            format!("regressions/{target}"),
            format!("target/regression-candidates/{target}"),
        ],
        &["-merge=1", "-use_counters=0"],
    );
    run_checked(&mut cmd)
        .with_context(|| format!("merging {target} failed: {}", display_cmd(&cmd)))?;
    let (files, bytes) = fs::read_dir(&kept)?.try_fold((0usize, 0u64), |(n, b), e| {
        e.and_then(|e| e.metadata()).map(|m| (n + 1, b + m.len()))
    })?;
    eprintln!(
        "xtask fuzz: {target}: {files} regression inputs ({} new), {bytes} bytes",
        files.saturating_sub(before)
    );
    fs::remove_dir_all(&candidates)?;
    Ok(())
}

/// Installs nightly and cargo-fuzz when missing; without `allow_install`
/// their absence is an error that says how to get them.
fn ensure_cargo_fuzz(allow_install: bool) -> Result<()> {
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output();
    let has_nightly = nightly.is_ok_and(|o| o.status.success());
    if !has_nightly && !allow_install {
        anyhow::bail!("the nightly toolchain is missing: rustup toolchain install nightly");
    }
    if !has_nightly {
        run_checked(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    let has_fuzz = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output();
    let has_fuzz = has_fuzz.is_ok_and(|o| o.status.success());
    if !has_fuzz && !allow_install {
        anyhow::bail!("cargo-fuzz is missing: cargo +nightly install cargo-fuzz --locked");
    }
    if !has_fuzz {
        run_checked(Command::new("cargo").args(["+nightly", "install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

/// Writes `seed-*` files into `corpus/<target>/`; returns how many.
pub(crate) fn write_seeds(corpus: &Path) -> Result<usize> {
    let captures = captures(Path::new("tests/fixtures"))?
        .into_iter()
        .chain([PathBuf::from("samples/demo-api.pcap")])
        .collect::<Vec<_>>();
    let mut n = 0;
    for target in TARGETS {
        fs::create_dir_all(corpus.join(target))?;
    }
    for (i, path) in captures.iter().enumerate() {
        let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        if bytes.len() as u64 <= MAX_SEED_BYTES {
            for target in ["file_reader", "reassembly"] {
                fs::write(
                    corpus.join(target).join(format!("seed-capture-{i:03}")),
                    &bytes,
                )?;
                n += 1;
            }
        }
        for (j, frame) in pcap_frames(&bytes)
            .into_iter()
            .take(FRAMES_PER_CAPTURE)
            .enumerate()
        {
            fs::write(
                corpus
                    .join("packet_decoder")
                    .join(format!("seed-frame-{i:03}-{j:03}")),
                frame,
            )?;
            n += 1;
        }
    }
    let transcripts = Path::new("sensor-proto/src/http/testdata");
    let mut entries: Vec<_> = fs::read_dir(transcripts)
        .with_context(|| format!("reading {}", transcripts.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "t"))
        .collect();
    entries.sort();
    for (i, path) in entries.iter().enumerate() {
        let text = fs::read_to_string(path)?;
        fs::write(
            corpus.join("http").join(format!("seed-transcript-{i:03}")),
            http_script(&text),
        )?;
        n += 1;
        // The transcripts' JSON body lines seed the shape scanner.
        for (j, line) in text
            .lines()
            .map(|l| l.trim_end_matches('\\'))
            .filter(|l| l.starts_with(['{', '[']))
            .enumerate()
        {
            fs::write(
                corpus
                    .join("shape")
                    .join(format!("seed-json-{i:03}-{j:02}")),
                line,
            )?;
            n += 1;
        }
    }
    n += analyzer_seeds(corpus)?;
    Ok(n)
}

/// Seeds of the analyzer's targets: the repository's contracts for
/// `openapi`; for `records` (first byte 0: JSON Lines, 1: HAR) the golden
/// record files and the HAR test file. Files above [`MAX_SEED_BYTES`] are
/// cut (records at a line end) or left out (contracts).
fn analyzer_seeds(corpus: &Path) -> Result<usize> {
    let mut n = 0;
    let mut specs = vec![PathBuf::from("samples/demo-api.openapi.yaml")];
    specs.extend(files_with(
        Path::new("analyzer/testdata/specs"),
        &["yaml", "json"],
    )?);
    for (i, path) in specs.iter().enumerate() {
        let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        if bytes.len() as u64 <= MAX_SEED_BYTES {
            fs::write(
                corpus.join("openapi").join(format!("seed-spec-{i:03}")),
                &bytes,
            )?;
            n += 1;
        }
    }
    let jsonl = files_with(Path::new("tests/fixtures/golden"), &["jsonl"])?;
    for (i, path) in jsonl.iter().enumerate() {
        let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let mut seed = vec![0u8];
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            if (seed.len() + line.len()) as u64 > MAX_SEED_BYTES {
                break;
            }
            seed.extend_from_slice(line);
        }
        fs::write(
            corpus.join("records").join(format!("seed-jsonl-{i:03}")),
            &seed,
        )?;
        n += 1;
    }
    let har = Path::new("analyzer/testdata/har/two-entries.har");
    let mut seed = vec![1u8];
    seed.extend(fs::read(har).with_context(|| format!("reading {}", har.display()))?);
    fs::write(corpus.join("records").join("seed-har-000"), &seed)?;
    Ok(n + 1)
}

fn captures(dir: &Path) -> Result<Vec<PathBuf>> {
    files_with(dir, &["pcap", "pcapng"])
}

/// The files under `dir` (recursively) with one of the `extensions`, sorted.
fn files_with(dir: &Path, extensions: &[&str]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .is_some_and(|x| extensions.iter().any(|e| x == *e))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The frames of a classic pcap (either byte order); nothing for other formats.
pub(crate) fn pcap_frames(b: &[u8]) -> Vec<&[u8]> {
    let Some(magic) = b.get(..4) else {
        return Vec::new();
    };
    let le = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => return Vec::new(),
    };
    let u32_at = |at: usize| -> Option<usize> {
        let w: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        } as usize)
    };
    let mut frames = Vec::new();
    let mut at = 24;
    while let Some(caplen) = u32_at(at + 8) {
        let Some(frame) = b.get(at + 16..at + 16 + caplen) else {
            break;
        };
        frames.push(frame);
        at += 16 + caplen;
    }
    frames
}

/// Turns a `.t` transcript into the `fuzz_http` script format: per section,
/// a control byte (bit 0: direction) and a length byte, then the bytes.
pub(crate) fn http_script(transcript: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut dir = 0u8;
    let mut section = Vec::new();
    let flush = |dir: u8, section: &mut Vec<u8>, out: &mut Vec<u8>| {
        for chunk in section.chunks(256) {
            out.push(dir);
            out.push((chunk.len() - 1) as u8);
            out.extend_from_slice(chunk);
        }
        section.clear();
    };
    for line in transcript.lines() {
        if line.starts_with("===") {
            break;
        }
        if line.starts_with(">>>") || line.starts_with("<<<") {
            flush(dir, &mut section, &mut out);
            dir = u8::from(line.starts_with("<<<"));
            continue;
        }
        if line.starts_with('#')
            || line.starts_with("!!!")
            || line.starts_with("><>")
            || line.starts_with("@@@")
        {
            continue;
        }
        section.extend_from_slice(line.as_bytes());
        section.extend_from_slice(b"\r\n");
    }
    flush(dir, &mut section, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_encodes_sections_with_direction_and_length() {
        let s =
            http_script(">>>\nGET / HTTP/1.1\n<<<\nHTTP/1.1 200 OK\n=== expect\nGET / -> 200\n");
        assert_eq!(s[0], 0);
        assert_eq!(usize::from(s[1]) + 1, "GET / HTTP/1.1\r\n".len());
        let second = 2 + usize::from(s[1]) + 1;
        assert_eq!(s[second], 1);
    }

    #[test]
    fn frames_of_a_little_endian_pcap() {
        let mut b = vec![0xd4, 0xc3, 0xb2, 0xa1];
        b.extend_from_slice(&[0; 20]);
        for payload in [&b"abc"[..], b"de"] {
            b.extend_from_slice(&[0; 8]);
            b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            b.extend_from_slice(payload);
        }
        assert_eq!(pcap_frames(&b), vec![&b"abc"[..], b"de"]);
        assert!(pcap_frames(b"junk").is_empty());
    }
}
