//! Live capture with eBPF: TC classifiers copy HTTP traffic into a ring
//! buffer, [`EbpfSource`] reads it.
//!
//! ```text
//!  sensor-ebpf (kernel)                          EbpfSource (this module)
//!  TC ingress/egress on each interface ──┐
//!    PORTS / HTTP_FLOWS decide           ├─► EVENTS ring ─poll─► [EventHeader | IP packet]
//!    COUNTERS count losses               ┘                       └─► CapturedPacket (LinkType::RAW,
//!                                                                     boot clock → wall clock)
//! ```
//!
//! * **The object** is embedded at build time: `sensor/build.rs` copies
//!   `target/ebpf/shadowtap-sensor-ebpf.o` (written by `cargo xtask
//!   build-ebpf`) into the binary when it exists. A sensor built without it
//!   still builds and runs everything else; `--ebpf` then fails with
//!   [`EbpfError::NotBuilt`], which names the commands that build it. One
//!   self-contained binary is what a DaemonSet wants, and the programs always
//!   match the sensor that reads their events.
//! * **Attaching** uses TCX links on kernels ≥ 6.6 (aya's default) and
//!   falls back to a `clsact` qdisc with `cls_bpf` filters on older ones.
//!   Both directions are attached, except on `lo`, where every packet passes
//!   egress and then ingress and only ingress is used. Nothing is pinned.
//! * **Detaching**: dropping the source detaches every program (the runtime
//!   drops it on SIGINT/SIGTERM too). A TCX link belongs to its file
//!   descriptor, so when the process dies — even by SIGKILL — the kernel
//!   closes it and the classifier is gone (`sensor/tests/live_ebpf.rs`
//!   checks this with `bpftool net show` and `tc filter show`). Only the
//!   legacy netlink fallback can leave a filter behind after SIGKILL; the next
//!   start removes filters of our programs' names before attaching.
//! * **Following** (`--follow 'veth*'`): `/sys/class/net` is scanned every
//!   [`FOLLOW_SCAN_INTERVAL`] and matching new interfaces are attached;
//!   vanished ones are forgotten (the kernel removed their links with them).
//!
//! Limits: [`shadowtap_sensor_common::MAX_PACKET_BYTES`] per packet,
//! [`shadowtap_sensor_common::RING_BUFFER_BYTES`] of ring,
//! [`MAX_ATTACHED_INTERFACES`] interfaces; losses are reported by
//! [`CaptureSource::drops`].

mod error;
mod interfaces;

use std::io;
use std::time::{Duration, Instant};

use aya::maps::{Array as BpfArray, MapData, PerCpuArray, RingBuf};
use aya::programs::tc::{self, SchedClassifierLinkId, TcAttachType};
use aya::programs::SchedClassifier;
use aya::util::KernelVersion;
use aya::{Ebpf, EbpfLoader};
use rustix::event::{poll, PollFd, PollFlags};
use rustix::time::{clock_gettime, ClockId, Timespec};

use shadowtap_proto::time::Timestamp;
use shadowtap_proto::wire::LinkType;
use shadowtap_sensor_common::{
    cpu_wakeup_shift, EventHeader, COUNTERS_MAP, COUNTER_EVENTS, COUNTER_FLOWS_DETECTED,
    COUNTER_FLOW_INSERT_FAILED, COUNTER_IPV4_FRAGMENTS, COUNTER_IPV6_EXTENSION_HEADERS,
    COUNTER_LOAD_FAILED, COUNTER_RINGBUF_FULL, COUNTER_TRUNCATED, EVENTS_MAP, EVENT_HEADER_BYTES,
    MAX_PACKET_BYTES, MAX_PORTS, MODE_ALL_PORTS_HTTP, MODE_GLOBAL, MODE_PORTS, PORTS_MAP,
    PROG_EGRESS_ETH, PROG_EGRESS_L3, PROG_INGRESS_ETH, PROG_INGRESS_L3, WAKEUP_SHIFT_GLOBAL,
};

use super::{CaptureError, CaptureSource, CapturedPacket};

pub use error::EbpfError;
use interfaces::{Framing, Interface};

/// The eBPF object, or no bytes when the sensor was built without it.
static OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/shadowtap-sensor-ebpf.o"));

/// Where the build looked for the object (for [`EbpfError::NotBuilt`]).
const OBJECT_SOURCE: &str = env!("SHADOWTAP_EBPF_OBJECT_PATH");

/// How long [`EbpfSource::next_packet`] waits for an event before it
/// returns `Ok(None)`.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How often `/sys/class/net` is scanned for new interfaces to follow.
pub const FOLLOW_SCAN_INTERVAL: Duration = Duration::from_secs(1);

/// Most interfaces attached at once (given and followed). Followed
/// interfaces past it are counted in `ebpf_interfaces_not_followed`.
pub const MAX_ATTACHED_INTERFACES: usize = 4096;

/// How often the boot-clock → wall-clock offset is re-read (it moves when
/// the wall clock is stepped or slewed).
pub const CLOCK_RESYNC_INTERVAL: Duration = Duration::from_secs(1);

/// What to capture.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EbpfConfig {
    /// Interfaces to attach to now (`-i`); each must exist.
    pub interfaces: Vec<String>,
    /// Patterns of interfaces to attach to as they appear (`--follow`):
    /// `*` and `?` wildcards. Ones that exist at start are attached too.
    pub follow: Vec<String>,
    /// TCP ports to capture. Empty: every port, keeping the flows whose
    /// first payload bytes look like HTTP/1.x.
    pub ports: Vec<u16>,
}

/// Whether this binary carries the eBPF object.
pub fn object_embedded() -> bool {
    !OBJECT.is_empty()
}

struct Attached {
    iface: Interface,
    links: Vec<(&'static str, SchedClassifierLinkId)>,
}

/// Kernel ring buffer → [`CapturedPacket`]s. See the module documentation.
pub struct EbpfSource {
    // Field order is drop order: the maps and links go before the object.
    ring: RingBuf<MapData>,
    counters: PerCpuArray<MapData, u64>,
    ebpf: Ebpf,
    attached: Vec<Attached>,
    follow: Vec<String>,
    last_scan: Instant,
    clock: WallClock,
    /// The current event, copied out of the ring so that the ring slot can
    /// be released before the packet is handed out.
    event: Vec<u8>,
    bytes: u64,
    malformed_events: u64,
    follow_failures: u64,
    not_followed: u64,
}

impl EbpfSource {
    /// Loads the programs and attaches them to the configured interfaces.
    pub fn open(config: &EbpfConfig) -> Result<EbpfSource, EbpfError> {
        if !object_embedded() {
            return Err(EbpfError::NotBuilt {
                path: OBJECT_SOURCE,
            });
        }
        if config.interfaces.is_empty() && config.follow.is_empty() {
            return Err(EbpfError::NoInterfaces);
        }
        if config.ports.len() > MAX_PORTS as usize {
            return Err(EbpfError::TooManyPorts {
                given: config.ports.len(),
                max: MAX_PORTS,
            });
        }
        check_capabilities()?;
        // Resolve the named interfaces before loading anything.
        let named = config
            .interfaces
            .iter()
            .map(|n| Interface::by_name(n))
            .collect::<Result<Vec<_>, _>>()?;

        let mode = if config.ports.is_empty() {
            MODE_ALL_PORTS_HTTP
        } else {
            MODE_PORTS
        };
        // Each CPU wakes the sensor once per its share of WAKEUP_BYTES written;
        // one CPU's share when the count is unknown (wakeups then come later).
        let cpus = aya::util::nr_cpus().map_or(1, |n| u32::try_from(n).unwrap_or(u32::MAX));
        let wakeup_shift = cpu_wakeup_shift(cpus);
        let mut ebpf = EbpfLoader::new()
            .override_global(MODE_GLOBAL, &mode, true)
            .override_global(WAKEUP_SHIFT_GLOBAL, &wakeup_shift, true)
            .load(OBJECT)
            .map_err(|e| {
                tracing::debug!(error = ?e, "Loading the eBPF object failed.");
                if error::is_permission_denied(&e) && check_capabilities().is_err() {
                    EbpfError::MissingCapability {
                        capability: "CAP_BPF",
                        why: "loading eBPF programs",
                    }
                } else {
                    EbpfError::Load(e)
                }
            })?;

        if !config.ports.is_empty() {
            let map = ebpf.map_mut(PORTS_MAP).ok_or(EbpfError::Missing {
                what: "map",
                name: PORTS_MAP,
            })?;
            let mut ports: BpfArray<_, u8> =
                BpfArray::try_from(map).map_err(|source| EbpfError::Map {
                    map: PORTS_MAP,
                    source,
                })?;
            for &port in &config.ports {
                ports
                    .set(u32::from(port), 1, 0)
                    .map_err(|source| EbpfError::Map {
                        map: PORTS_MAP,
                        source,
                    })?;
            }
        }
        for name in [
            PROG_INGRESS_ETH,
            PROG_EGRESS_ETH,
            PROG_INGRESS_L3,
            PROG_EGRESS_L3,
        ] {
            let prog = classifier(&mut ebpf, name)?;
            prog.load().map_err(|source| {
                if error::is_permission_denied(&source) && check_capabilities().is_err() {
                    EbpfError::MissingCapability {
                        capability: "CAP_BPF",
                        why: "loading eBPF programs",
                    }
                } else {
                    EbpfError::Program {
                        program: name,
                        source,
                    }
                }
            })?;
        }
        let ring = take_map(&mut ebpf, EVENTS_MAP)
            .and_then(|m| RingBuf::try_from(m).map_err(|source| map_err(EVENTS_MAP, source)))?;
        let counters = take_map(&mut ebpf, COUNTERS_MAP).and_then(|m| {
            PerCpuArray::try_from(m).map_err(|source| map_err(COUNTERS_MAP, source))
        })?;

        let mut source = EbpfSource {
            ring,
            counters,
            ebpf,
            attached: Vec::new(),
            follow: config.follow.clone(),
            last_scan: Instant::now(),
            clock: WallClock::new()?,
            event: Vec::with_capacity(EVENT_HEADER_BYTES + MAX_PACKET_BYTES as usize),
            bytes: 0,
            malformed_events: 0,
            follow_failures: 0,
            not_followed: 0,
        };
        for iface in named {
            if !source.is_attached(iface.index) {
                source.attach(iface)?;
            }
        }
        source.scan_followed();
        tracing::info!(
            interfaces = source.attached.len(),
            mode = if mode == MODE_PORTS {
                "ports"
            } else {
                "all ports, HTTP detection"
            },
            "Attached eBPF capture."
        );
        Ok(source)
    }

    /// Detaches every program and stops following: nothing more enters the
    /// ring, and what is in it can still be read (until `next_packet`
    /// returns `Ok(None)`). Dropping the source also detaches.
    pub fn detach_all(&mut self) {
        self.follow.clear();
        for attached in std::mem::take(&mut self.attached) {
            self.detach_links(attached.links);
        }
    }

    /// Names of the interfaces currently attached.
    pub fn interfaces(&self) -> Vec<String> {
        self.attached.iter().map(|a| a.iface.name.clone()).collect()
    }

    fn kernel_counter(&self, slot: u32) -> u64 {
        self.counters
            .get(&slot, 0)
            .map(|per_cpu| per_cpu.iter().copied().fold(0u64, u64::wrapping_add))
            .unwrap_or(0)
    }

    fn is_attached(&self, index: u32) -> bool {
        self.attached.iter().any(|a| a.iface.index == index)
    }

    fn attach(&mut self, iface: Interface) -> Result<(), EbpfError> {
        let (ingress, egress) = match iface.framing {
            Framing::Ethernet => (PROG_INGRESS_ETH, Some(PROG_EGRESS_ETH)),
            Framing::Loopback => (PROG_INGRESS_ETH, None),
            Framing::RawIp => (PROG_INGRESS_L3, Some(PROG_EGRESS_L3)),
        };
        let tcx = tcx_supported();
        let mut links = Vec::with_capacity(2);
        let plan = [
            (ingress, TcAttachType::Ingress, "ingress"),
            (egress.unwrap_or(""), TcAttachType::Egress, "egress"),
        ];
        for (prog_name, attach_type, direction) in plan {
            if prog_name.is_empty() {
                continue;
            }
            if !tcx {
                // Legacy TC: needs the clsact qdisc (an existing one is
                // fine), and a filter a killed sensor left behind goes first.
                let _ = tc::qdisc_add_clsact(&iface.name);
                let _ = tc::qdisc_detach_program(&iface.name, attach_type, prog_name);
            }
            let result = classifier(&mut self.ebpf, prog_name).and_then(|prog| {
                prog.attach(&iface.name, attach_type)
                    .map_err(|source| EbpfError::Attach {
                        interface: iface.name.clone(),
                        direction,
                        source,
                    })
            });
            match result {
                Ok(id) => links.push((prog_name, id)),
                Err(e) => {
                    self.detach_links(links);
                    return Err(match e {
                        EbpfError::Attach { ref source, .. }
                            if error::is_permission_denied(source) =>
                        {
                            EbpfError::MissingCapability {
                                capability: "CAP_NET_ADMIN",
                                why: "attaching traffic-control programs",
                            }
                        }
                        e => e,
                    });
                }
            }
        }
        tracing::debug!(interface = %iface.name, index = iface.index, "Attached classifiers.");
        self.attached.push(Attached { iface, links });
        Ok(())
    }

    fn detach_links(&mut self, links: Vec<(&'static str, SchedClassifierLinkId)>) {
        for (prog_name, id) in links {
            if let Ok(prog) = classifier(&mut self.ebpf, prog_name) {
                // The kernel already removed the link when the interface
                // went away; detaching then only fails, harmlessly.
                let _ = prog.detach(id);
            }
        }
    }

    /// Attaches to followed interfaces that appeared, forgets vanished ones.
    fn scan_followed(&mut self) {
        self.last_scan = Instant::now();
        if self.follow.is_empty() {
            return;
        }
        let names = match interfaces::list_names() {
            Ok(names) => names,
            Err(error) => {
                tracing::warn!(%error, "Cannot list /sys/class/net.");
                return;
            }
        };
        // Forget interfaces that are gone (or were replaced: same name,
        // new index).
        let mut i = 0;
        while i < self.attached.len() {
            let a = &self.attached[i].iface;
            let current = Interface::by_name(&a.name).ok().map(|n| n.index);
            if current == Some(a.index) {
                i += 1;
            } else {
                let gone = self.attached.swap_remove(i);
                tracing::info!(interface = %gone.iface.name, "Interface went away.");
                self.detach_links(gone.links);
            }
        }
        for name in names {
            if !self.follow.iter().any(|p| interfaces::glob_match(p, &name)) {
                continue;
            }
            let Ok(iface) = Interface::by_name(&name) else {
                continue; // gone already, or a link type we do not capture
            };
            if self.is_attached(iface.index) {
                continue;
            }
            if self.attached.len() >= MAX_ATTACHED_INTERFACES {
                self.not_followed += 1;
                continue;
            }
            match self.attach(iface) {
                Ok(()) => tracing::info!(interface = %name, "Following new interface."),
                Err(error) => {
                    self.follow_failures += 1;
                    tracing::warn!(%error, interface = %name, "Cannot attach to followed interface.");
                }
            }
        }
    }

    /// Copies the next well-formed event (its header and `cap_len` bytes;
    /// the rest of its size class is unused) into `self.event`; false when
    /// the ring is empty.
    fn take_event(&mut self) -> bool {
        while let Some(item) = self.ring.next() {
            let len = EventHeader::parse(&item)
                .filter(|h| h.cap_len <= MAX_PACKET_BYTES)
                .map(|h| EVENT_HEADER_BYTES + h.cap_len as usize)
                .filter(|&len| item.len() >= len);
            if let Some(len) = len {
                self.event.clear();
                self.event.extend_from_slice(&item[..len]);
                return true;
            }
            self.malformed_events += 1;
        }
        false
    }
}

impl CaptureSource for EbpfSource {
    fn next_packet(&mut self) -> Result<Option<CapturedPacket<'_>>, CaptureError> {
        if self.last_scan.elapsed() >= FOLLOW_SCAN_INTERVAL {
            self.scan_followed();
        }
        if !self.take_event() {
            let timeout = Timespec {
                tv_sec: 0,
                tv_nsec: POLL_INTERVAL.as_nanos() as _,
            };
            let mut fds = [PollFd::new(&self.ring, PollFlags::IN)];
            match poll(&mut fds, Some(&timeout)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    return Err(CaptureError::io("eBPF ring buffer", 0, io::Error::from(e)));
                }
            }
            if !self.take_event() {
                return Ok(None);
            }
        }
        let Some(header) = EventHeader::parse(&self.event) else {
            return Ok(None); // take_event checked it
        };
        let data = &self.event[EVENT_HEADER_BYTES..EVENT_HEADER_BYTES + header.cap_len as usize];
        self.bytes += data.len() as u64;
        Ok(Some(CapturedPacket {
            ts: self.clock.wall(header.ts_boot_ns),
            link_type: LinkType::RAW,
            data,
            orig_len: header.orig_len,
            interface: header.ifindex,
        }))
    }

    fn progress(&self) -> (u64, Option<u64>) {
        (self.bytes, None)
    }

    fn is_live(&self) -> bool {
        true
    }

    /// Events the ring buffer had no room for, packets cut at
    /// `MAX_PACKET_BYTES`, and packets whose bytes could not be read.
    fn drops(&self) -> Vec<(&'static str, u64)> {
        vec![
            (
                "ebpf_ringbuf_full",
                self.kernel_counter(COUNTER_RINGBUF_FULL),
            ),
            ("ebpf_truncated", self.kernel_counter(COUNTER_TRUNCATED)),
            ("ebpf_load_failed", self.kernel_counter(COUNTER_LOAD_FAILED)),
        ]
    }

    /// Every in-kernel counter and this source's own, by name (totals since
    /// the source was opened).
    fn counters(&self) -> Vec<(&'static str, u64)> {
        let k = |slot| self.kernel_counter(slot);
        vec![
            ("ebpf_events", k(COUNTER_EVENTS)),
            ("ebpf_ringbuf_full", k(COUNTER_RINGBUF_FULL)),
            ("ebpf_truncated", k(COUNTER_TRUNCATED)),
            ("ebpf_load_failed", k(COUNTER_LOAD_FAILED)),
            ("ebpf_http_flows_detected", k(COUNTER_FLOWS_DETECTED)),
            (
                "ebpf_http_flow_insert_failed",
                k(COUNTER_FLOW_INSERT_FAILED),
            ),
            ("ebpf_ipv4_fragments_skipped", k(COUNTER_IPV4_FRAGMENTS)),
            (
                "ebpf_ipv6_extension_headers_skipped",
                k(COUNTER_IPV6_EXTENSION_HEADERS),
            ),
            ("ebpf_malformed_events", self.malformed_events),
            ("ebpf_follow_attach_failed", self.follow_failures),
            ("ebpf_interfaces_not_followed", self.not_followed),
        ]
    }

    fn stop(&mut self) {
        self.detach_all();
    }
}

/// Converts `CLOCK_BOOTTIME` ns (what `bpf_ktime_get_boot_ns` returns) to
/// ns since the Unix epoch.
struct WallClock {
    /// `CLOCK_REALTIME − CLOCK_BOOTTIME`, in ns.
    offset: i128,
    read_at: Instant,
}

impl WallClock {
    fn new() -> Result<WallClock, EbpfError> {
        Ok(WallClock {
            offset: Self::offset(),
            read_at: Instant::now(),
        })
    }

    fn offset() -> i128 {
        let ns = |t: Timespec| i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec);
        // Read boot time between two wall-clock reads and take the middle.
        let r1 = ns(clock_gettime(ClockId::Realtime));
        let b = ns(clock_gettime(ClockId::Boottime));
        let r2 = ns(clock_gettime(ClockId::Realtime));
        (r1 + r2) / 2 - b
    }

    fn wall(&mut self, boot_ns: u64) -> Timestamp {
        if self.read_at.elapsed() >= CLOCK_RESYNC_INTERVAL {
            self.offset = Self::offset();
            self.read_at = Instant::now();
        }
        let wall = i128::from(boot_ns) + self.offset;
        Timestamp(u64::try_from(wall.max(0)).unwrap_or(u64::MAX))
    }
}

fn classifier<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut SchedClassifier, EbpfError> {
    let program = ebpf.program_mut(name).ok_or(EbpfError::Missing {
        what: "program",
        name,
    })?;
    program.try_into().map_err(|source| EbpfError::Program {
        program: name,
        source,
    })
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, EbpfError> {
    ebpf.take_map(name)
        .ok_or(EbpfError::Missing { what: "map", name })
}

fn map_err(map: &'static str, source: aya::maps::MapError) -> EbpfError {
    EbpfError::Map { map, source }
}

/// TCX links exist from Linux 6.6 on.
fn tcx_supported() -> bool {
    KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0))
}

/// Capability numbers (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// Fails with the missing capability's name before anything is loaded.
fn check_capabilities() -> Result<(), EbpfError> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|source| EbpfError::Io {
        what: "reading /proc/self/status".into(),
        source,
    })?;
    let Some(effective) = effective_capabilities(&status) else {
        return Ok(()); // unknown: let the kernel decide
    };
    let has = |cap: u32| effective & (1u64 << cap) != 0;
    if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
        return Err(EbpfError::MissingCapability {
            capability: "CAP_BPF",
            why: "loading eBPF programs",
        });
    }
    if !has(CAP_NET_ADMIN) {
        return Err(EbpfError::MissingCapability {
            capability: "CAP_NET_ADMIN",
            why: "attaching traffic-control programs",
        });
    }
    Ok(())
}

/// The `CapEff:` bit set of a `/proc/<pid>/status` text.
fn effective_capabilities(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(line.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_bits_are_read_from_status() {
        let status = "Name:\tx\nCapEff:\t000001ffffffffff\n";
        let caps = effective_capabilities(status).unwrap();
        assert_ne!(caps & (1 << CAP_BPF), 0);
        assert_eq!(effective_capabilities("Name:\tx\n"), None);
        assert_eq!(
            effective_capabilities("CapEff:\t0000000000001000\n"),
            Some(1 << CAP_NET_ADMIN)
        );
    }

    #[test]
    fn wall_clock_is_close_to_system_time() {
        let mut clock = WallClock::new().unwrap();
        let boot = clock_gettime(ClockId::Boottime);
        let boot_ns = boot.tv_sec as u64 * 1_000_000_000 + boot.tv_nsec as u64;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let wall = clock.wall(boot_ns).as_nanos();
        assert!(wall.abs_diff(now) < 50_000_000, "{wall} vs {now}");
    }

    #[test]
    fn config_errors_come_before_loading() {
        if !object_embedded() {
            assert!(matches!(
                EbpfSource::open(&EbpfConfig::default()),
                Err(EbpfError::NotBuilt { .. })
            ));
            return;
        }
        assert!(matches!(
            EbpfSource::open(&EbpfConfig::default()),
            Err(EbpfError::NoInterfaces)
        ));
        let many = EbpfConfig {
            interfaces: vec!["lo".into()],
            ports: (0..=MAX_PORTS as u16).collect(),
            ..EbpfConfig::default()
        };
        assert!(matches!(
            EbpfSource::open(&many),
            Err(EbpfError::TooManyPorts { .. })
        ));
    }
}
