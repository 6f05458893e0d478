//! Network interfaces: name → index and link type (from `/sys/class/net`),
//! and the `--follow` patterns.

use std::fs;
use std::io;
use std::path::Path;

use super::EbpfError;

const SYS_CLASS_NET: &str = "/sys/class/net";

/// `ARPHRD_ETHER`: Ethernet, veth, bridges, VLAN devices.
const ARPHRD_ETHER: u32 = 1;
/// `ARPHRD_LOOPBACK`: `lo`, which carries an all-zero Ethernet header.
const ARPHRD_LOOPBACK: u32 = 772;
/// `ARPHRD_NONE`: tun, WireGuard; packets start at the IP header.
const ARPHRD_NONE: u32 = 65534;
/// `ARPHRD_RAWIP`: raw-IP devices (some modems, `ip link add type ipvlan` in L3 mode uses Ethernet).
const ARPHRD_RAWIP: u32 = 519;

/// How packets on an interface begin, which selects the classifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// An Ethernet header (possibly one 802.1Q tag) precedes IP.
    Ethernet,
    /// `lo`: Ethernet framing, and every packet passes egress then ingress,
    /// so only ingress is attached (else each packet would be seen twice).
    Loopback,
    /// Packets start at the IP header.
    RawIp,
}

/// One network interface as `/sys/class/net` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Interface {
    pub(crate) name: String,
    pub(crate) index: u32,
    pub(crate) framing: Framing,
}

impl Interface {
    /// Looks `name` up.
    pub(crate) fn by_name(name: &str) -> Result<Interface, EbpfError> {
        Self::read(Path::new(SYS_CLASS_NET), name)
    }

    fn read(root: &Path, name: &str) -> Result<Interface, EbpfError> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(EbpfError::NoSuchInterface(name.to_owned()));
        }
        let dir = root.join(name);
        let number = |file: &str| -> Result<u32, EbpfError> {
            let text = fs::read_to_string(dir.join(file)).map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    EbpfError::NoSuchInterface(name.to_owned())
                } else {
                    EbpfError::Io {
                        what: format!("reading {}", dir.join(file).display()),
                        source: e,
                    }
                }
            })?;
            text.trim().parse().map_err(|_| EbpfError::Io {
                what: format!("reading {}", dir.join(file).display()),
                source: io::Error::new(io::ErrorKind::InvalidData, "not a number"),
            })
        };
        let index = number("ifindex")?;
        let arphrd = number("type")?;
        let framing = match arphrd {
            ARPHRD_ETHER => Framing::Ethernet,
            ARPHRD_LOOPBACK => Framing::Loopback,
            ARPHRD_NONE | ARPHRD_RAWIP => Framing::RawIp,
            _ => {
                return Err(EbpfError::UnsupportedLinkType {
                    interface: name.to_owned(),
                    arphrd,
                })
            }
        };
        Ok(Interface {
            name: name.to_owned(),
            index,
            framing,
        })
    }
}

/// Names of the interfaces that exist now, in no particular order.
pub(crate) fn list_names() -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(SYS_CLASS_NET)? {
        if let Some(name) = entry?.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Shell-style match of an interface name: `*` any run of characters, `?`
/// one character, everything else literal (`veth*`, `cali*`, `eth?`).
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    // Iterative matcher with one backtrack point for the last `*`: linear
    // in practice, never recursive.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Longest wait between two attempts to attach a followed interface that
/// keeps failing, in scans ([`super::FOLLOW_SCAN_INTERVAL`] each).
pub(crate) const MAX_FOLLOW_RETRY_SCANS: u64 = 64;

/// Followed interfaces that could not be attached, retried after 1, 2, 4
/// ... up to [`MAX_FOLLOW_RETRY_SCANS`] scans, so that one that keeps
/// failing costs neither an attempt nor a log line every scan. Holds at
/// most one entry per interface that exists (see [`Self::retain`]).
#[derive(Debug, Default)]
pub(crate) struct FollowRetries {
    /// Interface index → (first scan of the next attempt, failures so far).
    failed: std::collections::HashMap<u32, (u64, u32)>,
}

impl FollowRetries {
    /// Whether interface `index` may be tried at scan number `scan`.
    pub(crate) fn due(&self, index: u32, scan: u64) -> bool {
        self.failed
            .get(&index)
            .is_none_or(|&(next, _)| scan >= next)
    }

    /// Notes a failed attempt at `scan`; returns how many there have been.
    pub(crate) fn failed(&mut self, index: u32, scan: u64) -> u32 {
        let entry = self.failed.entry(index).or_insert((scan, 0));
        entry.1 = entry.1.saturating_add(1);
        let wait = 1u64
            .checked_shl(entry.1 - 1)
            .unwrap_or(u64::MAX)
            .min(MAX_FOLLOW_RETRY_SCANS);
        entry.0 = scan.saturating_add(wait);
        entry.1
    }

    /// Forgets `index` (attached at last); returns its failures.
    pub(crate) fn forget(&mut self, index: u32) -> u32 {
        self.failed.remove(&index).map_or(0, |(_, n)| n)
    }

    /// Keeps only the interfaces for which `exists` holds.
    pub(crate) fn retain(&mut self, mut exists: impl FnMut(u32) -> bool) {
        self.failed.retain(|&index, _| exists(index));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.failed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_interfaces_are_retried_with_a_growing_wait() {
        let mut r = FollowRetries::default();
        let mut attempts = Vec::new();
        for scan in 0..300u64 {
            if r.due(7, scan) {
                attempts.push(scan);
                r.failed(7, scan);
            }
        }
        // Waits of 1, 2, 4 ... scans, then every 64.
        assert_eq!(attempts[..9], [0, 1, 3, 7, 15, 31, 63, 127, 191]);
        assert_eq!(attempts.len(), 9 + (299 - 191) / 64);
        assert!(r.due(8, 5), "other interfaces are not held back");
        assert_eq!(r.forget(7), attempts.len() as u32);
        assert!(r.due(7, 300));
        r.failed(1, 0);
        r.failed(2, 0);
        r.retain(|i| i == 2);
        assert_eq!(r.len(), 1);
        assert!(r.due(1, 0), "a vanished interface is forgotten");
    }

    #[test]
    fn globs() {
        for (p, n, m) in [
            ("veth*", "veth1a2b", true),
            ("veth*", "veth", true),
            ("veth*", "eth0", false),
            ("*", "lo", true),
            ("eth?", "eth0", true),
            ("eth?", "eth10", false),
            ("c*i*", "calico", true),
            ("lo", "lo", true),
            ("lo", "lo0", false),
            ("*x", "abc", false),
            ("", "", true),
            ("", "a", false),
        ] {
            assert_eq!(glob_match(p, n), m, "{p} vs {n}");
        }
    }

    #[test]
    fn loopback_is_found_and_bad_names_are_errors() {
        let lo = Interface::by_name("lo").expect("every Linux host has lo");
        assert_eq!(lo.framing, Framing::Loopback);
        assert_eq!(lo.index, 1);
        for bad in ["", "..", "a/b", "no-such-interface-xyz"] {
            assert!(matches!(
                Interface::by_name(bad),
                Err(EbpfError::NoSuchInterface(_))
            ));
        }
    }
}
