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

#[cfg(test)]
mod tests {
    use super::*;

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
