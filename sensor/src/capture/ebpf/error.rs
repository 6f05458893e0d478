//! Faults of the eBPF capture source: start-up (object, privileges, load,
//! attach) and reading.

use std::io;

/// Why [`super::EbpfSource`] could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EbpfError {
    /// The sensor was built without the eBPF object.
    #[error(
        "this shadowtap-sensor was built without the eBPF programs: run `cargo xtask \
         ebpf-toolchain` (once, as root) and `cargo xtask build-ebpf`, then rebuild the sensor \
         (the object is embedded from {path})"
    )]
    NotBuilt {
        /// Where the build looked for the object.
        path: &'static str,
    },
    /// The process lacks a capability that loading or attaching needs.
    #[error(
        "--ebpf needs {capability} ({why}); run as root or grant it, e.g. \
         `setcap cap_bpf,cap_perfmon,cap_net_admin+ep shadowtap-sensor`"
    )]
    MissingCapability {
        /// `CAP_BPF` or `CAP_NET_ADMIN`.
        capability: &'static str,
        /// What it is needed for.
        why: &'static str,
    },
    /// The object could not be parsed or its maps created.
    #[error("loading the eBPF object failed: {0}")]
    Load(#[source] aya::EbpfError),
    /// A program was rejected by the verifier or the kernel.
    #[error("loading eBPF program {program} failed: {source}")]
    Program {
        program: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    /// The object lacks a map or program the sensor needs.
    #[error(
        "the eBPF object has no {what} named {name}; rebuild it with `cargo xtask build-ebpf`"
    )]
    Missing {
        what: &'static str,
        name: &'static str,
    },
    /// A map could not be opened or written.
    #[error("eBPF map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    /// No interface has this name.
    #[error("no network interface named {0:?}")]
    NoSuchInterface(String),
    /// The interface's link type has no classifier (not Ethernet-like nor raw IP).
    #[error("interface {interface}: link type {arphrd} is not supported (Ethernet, loopback and raw-IP devices are)")]
    UnsupportedLinkType { interface: String, arphrd: u32 },
    /// Attaching a classifier to an interface failed.
    #[error("attaching to {interface} ({direction}) failed: {source}")]
    Attach {
        interface: String,
        direction: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    /// Nothing to capture on.
    #[error("--ebpf needs at least one interface (-i) or --follow pattern")]
    NoInterfaces,
    /// Too many ports for the in-kernel port map.
    #[error("at most {max} ports can be captured, {given} were given")]
    TooManyPorts { given: usize, max: u32 },
    /// Reading system state (`/sys/class/net`, `/proc/self/status`, clocks) failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

/// Whether `error`, or anything in its source chain, is `EPERM`/`EACCES`.
pub(crate) fn is_permission_denied(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if matches!(io.raw_os_error(), Some(1 | 13)) {
                return true;
            }
        }
        next = e.source();
    }
    false
}
