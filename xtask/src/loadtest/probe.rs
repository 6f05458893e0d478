//! What the TC programs themselves cost, from the kernel's own accounting,
//! and how busy each CPU was.
//!
//! With `kernel.bpf_stats_enabled = 1` the kernel times every run of every
//! BPF program (`run_time_ns`, `run_cnt`, shown in the `fdinfo` of a
//! program's file descriptor). The sensor's programs run on the packet
//! path — in the sender's context on egress, in the receive softirq on
//! ingress — so `run_time_ns / requests` is the time they add to each
//! request's path through the kernel, measured directly rather than
//! inferred from a difference of two noisy latencies. The accounting itself
//! adds two clock reads per run (tens of ns), which this figure includes.

use std::fs;

use anyhow::{Context, Result};

const BPF_STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// `kernel.bpf_stats_enabled` set to 1 while alive, restored on drop.
pub(crate) struct BpfStats {
    previous: String,
}

impl BpfStats {
    pub(crate) fn enable() -> Result<BpfStats> {
        let previous = fs::read_to_string(BPF_STATS_SYSCTL)
            .with_context(|| format!("reading {BPF_STATS_SYSCTL}"))?;
        fs::write(BPF_STATS_SYSCTL, "1").with_context(|| format!("writing {BPF_STATS_SYSCTL}"))?;
        Ok(BpfStats {
            previous: previous.trim().to_owned(),
        })
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        if let Err(error) = fs::write(BPF_STATS_SYSCTL, &self.previous) {
            eprintln!(
                "load-test: could not restore {BPF_STATS_SYSCTL} to {}: {error}",
                self.previous
            );
        }
    }
}

/// Runs of BPF programs and the time spent in them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProgRuns {
    pub(crate) run_time_ns: u64,
    pub(crate) run_cnt: u64,
}

impl ProgRuns {
    pub(crate) fn since(self, before: ProgRuns) -> ProgRuns {
        ProgRuns {
            run_time_ns: self.run_time_ns.saturating_sub(before.run_time_ns),
            run_cnt: self.run_cnt.saturating_sub(before.run_cnt),
        }
    }

    pub(crate) fn ns_per_run(self) -> f64 {
        self.run_time_ns as f64 / self.run_cnt.max(1) as f64
    }
}

/// The sum over every BPF program the process `pid` holds a descriptor of.
pub(crate) fn prog_runs(pid: u32) -> Result<ProgRuns> {
    let dir = format!("/proc/{pid}/fdinfo");
    let mut total = ProgRuns::default();
    for entry in fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let text = fs::read_to_string(entry?.path()).unwrap_or_default();
        total = add_fdinfo(total, &text);
    }
    Ok(total)
}

/// Adds one `fdinfo` text's counters to `total` if it is a BPF program's.
fn add_fdinfo(total: ProgRuns, fdinfo: &str) -> ProgRuns {
    let field = |name: &str| {
        fdinfo
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if field("prog_type:").is_none() {
        return total;
    }
    ProgRuns {
        run_time_ns: total.run_time_ns + field("run_time_ns:").unwrap_or(0),
        run_cnt: total.run_cnt + field("run_cnt:").unwrap_or(0),
    }
}

/// Busy and total jiffies of each CPU, from `/proc/stat`.
pub(crate) fn cpu_times() -> Result<Vec<(u64, u64)>> {
    let stat = fs::read_to_string("/proc/stat")?;
    Ok(parse_cpu_times(&stat))
}

fn parse_cpu_times(stat: &str) -> Vec<(u64, u64)> {
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let n: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .map(|f| f.parse().unwrap_or(0))
                .collect();
            let total: u64 = n.iter().take(8).sum();
            // idle and iowait
            let idle = n.get(3).copied().unwrap_or(0) + n.get(4).copied().unwrap_or(0);
            (total - idle, total)
        })
        .collect()
}

/// Percent busy of each CPU between two [`cpu_times`] readings.
pub(crate) fn busy_pct(before: &[(u64, u64)], after: &[(u64, u64)]) -> Vec<f64> {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| 100.0 * (a.0 - b.0) as f64 / (a.1 - b.1).max(1) as f64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_fdinfo_is_summed_and_others_ignored() {
        let prog = "pos:\t0\nflags:\t02000002\nprog_type:\t3\nprog_jited:\t1\n\
                    run_time_ns:\t1500\nrun_cnt:\t10\n";
        let map = "pos:\t0\nmap_type:\t27\nmax_entries:\t33554432\n";
        let total = add_fdinfo(add_fdinfo(add_fdinfo(ProgRuns::default(), prog), map), prog);
        assert_eq!(
            total,
            ProgRuns {
                run_time_ns: 3000,
                run_cnt: 20
            }
        );
        assert_eq!(total.ns_per_run(), 150.0);
        let later = ProgRuns {
            run_time_ns: 4000,
            run_cnt: 30,
        };
        assert_eq!(later.since(total).ns_per_run(), 100.0);
    }

    #[test]
    fn per_cpu_busy_share() {
        let before = parse_cpu_times(
            "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 10 0 10 100 0 0 0 0 0 0\ncpu1 0 0 0 100 0 0 0 0 0 0\nintr 5\n",
        );
        let after = parse_cpu_times(
            "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 60 0 10 150 0 0 0 0 0 0\ncpu1 0 0 0 200 0 0 0 0 0 0\n",
        );
        assert_eq!(before, vec![(20, 120), (0, 100)]);
        assert_eq!(busy_pct(&before, &after), vec![50.0, 0.0]);
    }
}
