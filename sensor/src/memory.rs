//! The memory the sensor may use, and the engine's caps fitted to it.
//!
//! In a container the kernel kills a process that passes its cgroup's
//! `memory.max`. The engine's buffers are all capped
//! (`docs/sensor-core.md`, "Named limits"), but the defaults add up to about
//! 430 MiB at their caps, more than a small DaemonSet limit. So unless told
//! otherwise (`--memory-limit`), the sensor reads its cgroup's limit at
//! start and lowers the caps until, all full at once, they fit in
//! [`ENGINE_MEMORY_PERCENT`] of what is left after [`PROCESS_BASE_BYTES`]
//! ([`shadowtap_proto::engine::EngineConfig::fit_memory`], [`engine_budget`]).
//! The rest is for what the caps count less than it takes (the allocator's
//! size classes and free pages: measured, the HTTP state at its cap takes
//! about 1.6 times what it is charged), the capture buffers (`-B`, the eBPF
//! rings) and the output (a live capture's output queue holds at most
//! [`crate::runtime::output::OUTPUT_QUEUE_BYTES`]). `hostile_traffic_stays_below_80_percent_of_the_memory_limit`
//! (`sensor/tests/cli.rs`) checks the result against reliability target S17.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;
use shadowtap_proto::engine::EngineConfig;

/// Share, in percent, of the memory limit less [`PROCESS_BASE_BYTES`] that
/// the engine's capped buffers may fill together.
pub const ENGINE_MEMORY_PERCENT: u64 = 50;

/// What the process takes whatever its caps: the binary's pages, the
/// allocator's arenas, the read and output buffers, the record builder's
/// tables and a batch of records on its way out. Measured on the command
/// line: 14 MiB for the shipped sample, 28 MiB peak for the 300 MB bench
/// capture; 32 MiB leaves room for the end-of-input burst.
pub const PROCESS_BASE_BYTES: u64 = 32 << 20;

/// The budget the engine's caps are fitted to under a limit of
/// `limit_bytes`: [`ENGINE_MEMORY_PERCENT`] of what [`PROCESS_BASE_BYTES`]
/// leaves (the caps' own floors apply below that).
pub fn engine_budget(limit_bytes: u64) -> u64 {
    limit_bytes.saturating_sub(PROCESS_BASE_BYTES) / 100 * ENGINE_MEMORY_PERCENT
}

/// `--memory-limit`: where the limit comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MemoryLimit {
    /// The cgroup's `memory.max` (the lowest on the way to the root), if
    /// one is set; otherwise none.
    #[default]
    Auto,
    /// No limit: the default caps.
    None,
    /// This many bytes.
    Bytes(u64),
}

impl FromStr for MemoryLimit {
    type Err = String;

    /// `auto`, `none`, or a size as Kubernetes writes them: `536870912`,
    /// `512Mi`, `1Gi`, `500M`, `2G`, `64Ki`, `100k`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => return Ok(MemoryLimit::Auto),
            "none" => return Ok(MemoryLimit::None),
            _ => {}
        }
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let scale: u64 = match unit {
            "" => 1,
            "k" | "K" => 1_000,
            "M" => 1_000_000,
            "G" => 1_000_000_000,
            "Ki" => 1 << 10,
            "Mi" => 1 << 20,
            "Gi" => 1 << 30,
            "Ti" => 1 << 40,
            _ => {
                return Err(format!(
                    "`{s}`: unknown unit `{unit}` (use auto, none, or bytes with k, M, G, Ki, Mi, Gi, Ti)"
                ))
            }
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("`{s}` is not a size (e.g. 512Mi, 1Gi, auto, none)"))?;
        n.checked_mul(scale)
            .filter(|&b| b > 0)
            .map(MemoryLimit::Bytes)
            .ok_or_else(|| format!("`{s}` is not a usable size"))
    }
}

/// The limit a run works with, and the caps it gave the engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemoryFit {
    pub limit_bytes: u64,
    /// `--memory-limit`, or the cgroup file it was read from.
    pub source: String,
    pub max_flows: usize,
    pub http_state_memcap_bytes: usize,
    pub out_of_order_memcap_bytes: usize,
    pub fragments_memcap_bytes: usize,
}

impl fmt::Display for MemoryFit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
        write!(
            f,
            "memory limit {:.0} MiB ({}): caps fitted to {ENGINE_MEMORY_PERCENT} % of it less {} MiB: \
             {} flows, {:.0} MiB of HTTP state, {:.0} MiB out of order, {:.0} MiB of fragments",
            self.limit_bytes as f64 / (1024.0 * 1024.0),
            self.source,
            PROCESS_BASE_BYTES >> 20,
            self.max_flows,
            mib(self.http_state_memcap_bytes),
            mib(self.out_of_order_memcap_bytes),
            mib(self.fragments_memcap_bytes),
        )
    }
}

/// Fits `config`'s caps to `limit` (see the module docs); `None` when there
/// is no limit and the caps stay as they are.
pub fn fit(config: &mut EngineConfig, limit: MemoryLimit) -> Option<MemoryFit> {
    let (limit_bytes, source) = match limit {
        MemoryLimit::None => return None,
        MemoryLimit::Bytes(b) => (b, "--memory-limit".to_owned()),
        MemoryLimit::Auto => {
            let (b, file) = cgroup_memory_limit()?;
            (b, file.display().to_string())
        }
    };
    config.fit_memory(engine_budget(limit_bytes));
    Some(MemoryFit {
        limit_bytes,
        source,
        max_flows: config.flows.max_flows,
        http_state_memcap_bytes: config.flows.handler_memcap_bytes,
        out_of_order_memcap_bytes: config.flows.ooo_memcap_bytes,
        fragments_memcap_bytes: config.defrag.max_bytes,
    })
}

/// This process's cgroup memory limit and the file it was read from.
pub fn cgroup_memory_limit() -> Option<(u64, PathBuf)> {
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    cgroup_limit_in(&own, Path::new("/sys/fs/cgroup"))
}

/// The lowest memory limit on the way from the cgroup named in `own` (the
/// contents of `/proc/PID/cgroup`) up to `root`: cgroup v2's `memory.max`
/// (`max` is no limit), or v1's `memory.limit_in_bytes` (a value near
/// `i64::MAX` is no limit).
fn cgroup_limit_in(own: &str, root: &Path) -> Option<(u64, PathBuf)> {
    let mut best: Option<(u64, PathBuf)> = None;
    let mut consider = |file: PathBuf| {
        let Ok(text) = fs::read_to_string(&file) else {
            return;
        };
        let Ok(bytes) = text.trim().parse::<u64>() else {
            return; // `max`, or unreadable
        };
        if bytes >= 1 << 62 {
            return; // cgroup v1's "unlimited"
        }
        if best.as_ref().is_none_or(|(b, _)| bytes < *b) {
            best = Some((bytes, file));
        }
    };
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (base, file) = if controllers.is_empty() {
            (root.to_path_buf(), "memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            (root.join("memory"), "memory.limit_in_bytes")
        } else {
            continue;
        };
        if path.split('/').any(|c| c == "..") {
            continue;
        }
        let mut dir = base.join(path.trim_start_matches('/'));
        // Ancestors limit their children too.
        loop {
            consider(dir.join(file));
            if dir == base || !dir.pop() || !dir.starts_with(&base) {
                break;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_kubernetes_writes_them() {
        for (s, want) in [
            ("auto", MemoryLimit::Auto),
            ("none", MemoryLimit::None),
            ("536870912", MemoryLimit::Bytes(512 << 20)),
            ("512Mi", MemoryLimit::Bytes(512 << 20)),
            ("1Gi", MemoryLimit::Bytes(1 << 30)),
            ("500M", MemoryLimit::Bytes(500_000_000)),
            ("64Ki", MemoryLimit::Bytes(64 << 10)),
            ("100k", MemoryLimit::Bytes(100_000)),
        ] {
            assert_eq!(s.parse::<MemoryLimit>(), Ok(want), "{s}");
        }
        for bad in ["", "0", "12MB", "-1", "1.5Gi", "99999999999999Ti", "Mi"] {
            assert!(bad.parse::<MemoryLimit>().is_err(), "{bad}");
        }
    }

    /// A directory under the system's temporary one, removed on drop.
    struct TestDir(PathBuf);

    impl TestDir {
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn cgroup_tree(files: &[(&str, &str)]) -> TestDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let root = TestDir(std::env::temp_dir().join(format!(
            "shadowtap-cgroup-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )));
        for (path, contents) in files {
            let p = root.path().join(path);
            fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
            fs::write(p, contents).expect("write");
        }
        root
    }

    #[test]
    fn the_lowest_limit_on_the_way_to_the_root_counts() {
        let root = cgroup_tree(&[
            ("memory.max", "max\n"),
            ("kubepods/memory.max", "8589934592\n"),
            ("kubepods/pod1/memory.max", "536870912\n"),
            ("kubepods/pod1/sensor/memory.max", "max\n"),
        ]);
        let got = cgroup_limit_in("0::/kubepods/pod1/sensor\n", root.path());
        assert_eq!(
            got,
            Some((512 << 20, root.path().join("kubepods/pod1/memory.max")))
        );
        // No limit anywhere.
        let free = cgroup_tree(&[("a/memory.max", "max\n")]);
        assert_eq!(cgroup_limit_in("0::/a\n", free.path()), None);
        // A path that does not exist, or leads outside the root.
        assert_eq!(cgroup_limit_in("0::/nowhere\n", free.path()), None);
        assert_eq!(cgroup_limit_in("0::/../../etc\n", free.path()), None);
    }

    #[test]
    fn cgroup_v1_memory_controller_is_read_too() {
        let root = cgroup_tree(&[
            ("memory/memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory/docker/abc/memory.limit_in_bytes", "268435456\n"),
        ]);
        let own = "12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n";
        assert_eq!(
            cgroup_limit_in(own, root.path()).map(|(b, _)| b),
            Some(256 << 20)
        );
    }

    #[test]
    fn a_limit_fits_the_caps_and_none_keeps_them() {
        let mut config = EngineConfig::new(shadowtap_proto::record::FingerprintKey::new([1; 32]));
        let defaults = config.clone();
        assert_eq!(fit(&mut config, MemoryLimit::None), None);
        assert_eq!(config.flows, defaults.flows);
        let fitted = fit(&mut config, MemoryLimit::Bytes(512 << 20)).expect("a limit");
        assert!(config.memory_at_caps() <= engine_budget(512 << 20));
        assert_eq!(
            engine_budget(512 << 20),
            (480 << 20) / 100 * ENGINE_MEMORY_PERCENT
        );
        assert_eq!(
            engine_budget(16 << 20),
            0,
            "below the base: the caps' floors"
        );
        assert_eq!(fitted.max_flows, config.flows.max_flows);
        assert!(fitted.max_flows < defaults.flows.max_flows);
        assert_eq!(fitted.source, "--memory-limit");
        assert!(fitted
            .to_string()
            .starts_with("memory limit 512 MiB (--memory-limit)"));
    }
}
