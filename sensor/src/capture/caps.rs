//! Linux capabilities a live capture needs, checked before opening anything.
//!
//! A capture that lacks a capability fails deep inside libpcap or the kernel
//! with `Operation not permitted`; checking the effective set first turns
//! that into one error that names what is missing. The set is read from
//! `/proc/self/status` (`CapEff`), so no system call wrapper is needed.

use std::fmt;

/// A Linux capability, by its number in `linux/capability.h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability {
    /// Bit number in the capability sets.
    pub bit: u32,
    /// The name tools use (`CAP_NET_RAW`).
    pub name: &'static str,
}

impl Capability {
    /// Configure interfaces (promiscuous mode on some drivers, tc, XDP).
    pub const NET_ADMIN: Capability = Capability {
        bit: 12,
        name: "CAP_NET_ADMIN",
    };
    /// Open packet sockets: every libpcap capture on Linux needs it.
    pub const NET_RAW: Capability = Capability {
        bit: 13,
        name: "CAP_NET_RAW",
    };
    /// Load and attach BPF programs and maps.
    pub const BPF: Capability = Capability {
        bit: 39,
        name: "CAP_BPF",
    };
    /// Attach perf-event and kprobe programs.
    pub const PERFMON: Capability = Capability {
        bit: 38,
        name: "CAP_PERFMON",
    };
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// The process's effective capability set as a bit mask, or `None` where
/// the OS does not tell (not Linux, no `/proc`).
pub fn effective() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_cap_eff(&status)
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
}

/// The capabilities of `needed` that are not in the effective set. Empty
/// when all are there, or when the set cannot be read (the open then fails
/// with the OS's own error, if at all).
pub fn missing(needed: &[Capability]) -> Vec<Capability> {
    let Some(set) = effective() else {
        return Vec::new();
    };
    needed
        .iter()
        .copied()
        .filter(|c| set & (1u64 << c.bit) == 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_eff_is_read_from_status() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t0000000000002000\n";
        let set = parse_cap_eff(status).expect("parsed");
        assert_eq!(set, 1 << Capability::NET_RAW.bit);
        assert_eq!(parse_cap_eff("Name:\tx\n"), None);
        assert_eq!(parse_cap_eff("CapEff:\tzz\n"), None);
    }
}
