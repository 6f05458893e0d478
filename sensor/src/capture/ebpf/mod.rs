//! Live capture with eBPF: TC classifiers copy HTTP traffic into a ring
//! buffer per CPU, [`EbpfSource`] reads them and merges them by time.
//!
//! ```text
//!  sensor-ebpf (kernel)                          EbpfSource (this module)
//!  TC ingress/egress on each interface ──┐       EVENTS_0 ──┐
//!    PORTS / HTTP_FLOWS decide           ├─► CPU c:  …      ├─poll─► one head per ring
//!    COUNTERS count losses               ┘       EVENTS_15 ─┘        └─► oldest first (merge)
//!                                                                     └─► CapturedPacket
//!                                                     (LinkType::RAW, boot clock → wall clock)
//! ```
//!
//! * **Rings**: CPU `c` writes into ring `c % EVENT_RINGS`, so two CPUs
//!   never share a ring's lock and positions (with more CPUs than rings,
//!   some rings are shared). The loader sizes each ring by
//!   [`shadowtap_sensor_common::ring_bytes`]: the rings of the CPUs
//!   share [`shadowtap_sensor_common::RING_BUFFER_BYTES`], a ring no CPU
//!   writes into gets a page and is not read.
//! * **Order**: each ring is in time order (a CPU's programs do not nest),
//!   but a flow's request and response come from different CPUs. The
//!   source copies out the oldest record of each ring (its head) and hands
//!   out the oldest head. When some ring has no record, a head is handed
//!   out only once it is [`REORDER_WINDOW`] older than a clock read taken
//!   before that ring was found empty: a record the empty ring gets later
//!   was stamped less than the window before it was submitted, so it is
//!   younger. A record older than one already handed out (a program
//!   delayed longer than the window between its clock read and its submit,
//!   or CPUs sharing a ring) is handed out anyway and counted in
//!   `ebpf_events_out_of_order`.
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
//! [`shadowtap_sensor_common::RING_BUFFER_BYTES`] of rings,
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
    cpu_wakeup_shift, ring_bytes, EventHeader, COUNTERS_MAP, COUNTER_CLIENT_SIDE, COUNTER_EVENTS,
    COUNTER_FLOWS_DETECTED, COUNTER_FLOW_INSERT_FAILED, COUNTER_IPV4_FRAGMENTS,
    COUNTER_IPV6_EXTENSION_HEADERS, COUNTER_LOAD_FAILED, COUNTER_RINGBUF_FULL, COUNTER_TRUNCATED,
    EVENTS_MAPS, EVENT_HEADER_BYTES, EVENT_RINGS, MAX_PACKET_BYTES, MAX_PORTS, MODE_ALL_PORTS_HTTP,
    MODE_GLOBAL, MODE_PORTS, MODE_SERVER_SIDE_HTTP, PORTS_MAP, PROG_EGRESS_ETH, PROG_EGRESS_L3,
    PROG_INGRESS_ETH, PROG_INGRESS_L3, WAKEUP_SHIFT_GLOBAL,
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

/// How long the oldest record of one ring waits for the rings that have
/// none before it is handed out (see the module documentation, "Order"):
/// longer than a program takes from its clock read to its submit (a few
/// µs; more only when the CPU is taken away in between, by an interrupt
/// or, on a VM, by the host), short next to the wakeup batching (records
/// wait up to [`POLL_INTERVAL`] in the rings at low rates anyway).
pub const REORDER_WINDOW: Duration = Duration::from_millis(5);

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
    /// Every port (`ports` empty), keeping only the flows whose server is
    /// on the far side of the interface (`--server-side`): a request seen
    /// going out through it, or a response coming in.
    pub server_side: bool,
}

/// Whether this binary carries the eBPF object.
pub fn object_embedded() -> bool {
    !OBJECT.is_empty()
}

struct Attached {
    iface: Interface,
    links: Vec<(&'static str, SchedClassifierLinkId)>,
}

/// The oldest record of a ring not yet handed out, copied out of the ring
/// so that its slot is released and the other rings' heads can be compared
/// with it.
struct Head {
    /// Whether `event` holds a record.
    full: bool,
    /// Its `ts_boot_ns`.
    ts: u64,
    /// The record: its header and `cap_len` bytes.
    event: Vec<u8>,
}

/// Kernel ring buffers → [`CapturedPacket`]s. See the module documentation.
pub struct EbpfSource {
    // Field order is drop order: the maps and links go before the object.
    /// The rings some CPU writes into, ring `i` at `i`.
    rings: Vec<RingBuf<MapData>>,
    /// `heads[i]`: ring `i`'s oldest record not yet handed out.
    heads: Vec<Head>,
    counters: PerCpuArray<MapData, u64>,
    ebpf: Ebpf,
    attached: Vec<Attached>,
    follow: Vec<String>,
    last_scan: Instant,
    clock: WallClock,
    /// `ts_boot_ns` of the newest record handed out.
    last_ts: u64,
    bytes: u64,
    malformed_events: u64,
    out_of_order: u64,
    follow_failures: u64,
    not_followed: u64,
    /// Scans of `/sys/class/net` so far, and the followed interfaces that
    /// failed to attach, waiting to be tried again.
    scans: u64,
    retries: interfaces::FollowRetries,
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

        let mode = if !config.ports.is_empty() {
            MODE_PORTS
        } else if config.server_side {
            MODE_SERVER_SIDE_HTTP
        } else {
            MODE_ALL_PORTS_HTTP
        };
        // Each CPU wakes the sensor once per its share of WAKEUP_BYTES written;
        // one CPU's share when the count is unknown (wakeups then come later).
        // When the count is unknown, every ring gets an equal share and is
        // read (as for EVENT_RINGS CPUs).
        let cpus =
            aya::util::nr_cpus().map_or(EVENT_RINGS, |n| u32::try_from(n).unwrap_or(u32::MAX));
        let wakeup_shift = cpu_wakeup_shift(cpus);
        let page = u32::try_from(rustix::param::page_size()).unwrap_or(4096);
        let mut loader = EbpfLoader::new();
        loader
            .override_global(MODE_GLOBAL, &mode, true)
            .override_global(WAKEUP_SHIFT_GLOBAL, &wakeup_shift, true);
        for (ring, name) in (0..EVENT_RINGS).zip(EVENTS_MAPS) {
            loader.map_max_entries(name, ring_bytes(ring, cpus, page));
        }
        let mut ebpf = loader.load(OBJECT).map_err(|e| {
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
        // The rings no CPU writes into stay in `ebpf`, unread.
        let rings = EVENTS_MAPS
            .iter()
            .take(cpus.min(EVENT_RINGS) as usize)
            .map(|&name| {
                take_map(&mut ebpf, name)
                    .and_then(|m| RingBuf::try_from(m).map_err(|source| map_err(name, source)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let heads = rings
            .iter()
            .map(|_| Head {
                full: false,
                ts: 0,
                event: Vec::with_capacity(EVENT_HEADER_BYTES + MAX_PACKET_BYTES as usize),
            })
            .collect();
        let counters = take_map(&mut ebpf, COUNTERS_MAP).and_then(|m| {
            PerCpuArray::try_from(m).map_err(|source| map_err(COUNTERS_MAP, source))
        })?;

        let mut source = EbpfSource {
            rings,
            heads,
            counters,
            ebpf,
            attached: Vec::new(),
            follow: config.follow.clone(),
            last_scan: Instant::now(),
            clock: WallClock::new()?,
            last_ts: 0,
            bytes: 0,
            malformed_events: 0,
            out_of_order: 0,
            follow_failures: 0,
            not_followed: 0,
            scans: 0,
            retries: interfaces::FollowRetries::default(),
        };
        for iface in named {
            if !source.is_attached(iface.index) {
                source.attach(iface)?;
            }
        }
        source.scan_followed();
        tracing::info!(
            interfaces = source.attached.len(),
            rings = source.rings.len(),
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
    /// rings, and what is in them can still be read (until `next_packet`
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
        self.scans += 1;
        let scan = self.scans;
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
        let mut present = Vec::new();
        for name in names {
            if !self.follow.iter().any(|p| interfaces::glob_match(p, &name)) {
                continue;
            }
            let Ok(iface) = Interface::by_name(&name) else {
                continue; // gone already, or a link type we do not capture
            };
            present.push(iface.index);
            if self.is_attached(iface.index) || !self.retries.due(iface.index, scan) {
                continue;
            }
            if self.attached.len() >= MAX_ATTACHED_INTERFACES {
                self.not_followed += 1;
                continue;
            }
            let index = iface.index;
            match self.attach(iface) {
                Ok(()) => match self.retries.forget(index) {
                    0 => tracing::info!(interface = %name, "Following new interface."),
                    failures => tracing::info!(
                        interface = %name,
                        failures,
                        "Following new interface after failed attempts."
                    ),
                },
                Err(error) => {
                    self.follow_failures += 1;
                    // The first failure is logged; the retries, which wait
                    // longer and longer, only count.
                    if self.retries.failed(index, scan) == 1 {
                        tracing::warn!(
                            %error,
                            interface = %name,
                            "Cannot attach to followed interface; will retry with backoff."
                        );
                    } else {
                        tracing::debug!(%error, interface = %name, "Retry failed.");
                    }
                }
            }
        }
        self.retries.retain(|index| present.contains(&index));
    }

    /// Fills every empty head with its ring's next well-formed event (its
    /// header and `cap_len` bytes; the rest of its size class is unused);
    /// true when every ring then has a head.
    fn fill_heads(&mut self) -> bool {
        let mut all = true;
        for (ring, head) in self.rings.iter_mut().zip(&mut self.heads) {
            while !head.full {
                let Some(item) = ring.next() else {
                    break;
                };
                let header = EventHeader::parse(&item).filter(|h| {
                    h.cap_len <= MAX_PACKET_BYTES
                        && item.len() >= EVENT_HEADER_BYTES + h.cap_len as usize
                });
                if let Some(h) = header {
                    head.event.clear();
                    head.event
                        .extend_from_slice(&item[..EVENT_HEADER_BYTES + h.cap_len as usize]);
                    head.ts = h.ts_boot_ns;
                    head.full = true;
                } else {
                    self.malformed_events += 1;
                }
            }
            all &= head.full;
        }
        all
    }

    /// The ring whose head goes out next, or how long to wait before one
    /// may (`Err(None)`: no head at all). See the module documentation,
    /// "Order".
    fn next_ring(&mut self) -> Result<usize, Option<Duration>> {
        if self.fill_heads() {
            return choose(&self.heads, 0);
        }
        // Some ring is empty: read the clock, then look at the empty rings
        // again, so that whatever they get later was stamped after
        // `now - REORDER_WINDOW`.
        let now = boot_ns();
        self.fill_heads();
        choose(&self.heads, now)
    }

    /// Waits until a ring without a head gets data or `timeout` passes (a
    /// ring with a head may hold more records and would end the wait at
    /// once).
    fn wait(&self, timeout: Duration) -> Result<(), CaptureError> {
        let timeout = Timespec {
            tv_sec: timeout.as_secs() as _,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        let mut fds: Vec<PollFd<'_>> = self
            .rings
            .iter()
            .zip(&self.heads)
            .filter(|(_, head)| !head.full)
            .map(|(r, _)| PollFd::new(r, PollFlags::IN))
            .collect();
        match poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(CaptureError::io("eBPF ring buffer", 0, io::Error::from(e))),
        }
    }
}

/// The ring whose head goes out next: the oldest head, at once when every
/// ring has one, else once it is [`REORDER_WINDOW`] older than `now` (the
/// boot clock read before the empty rings were last found empty);
/// otherwise how long until it is (`Err(None)`: no head at all).
fn choose(heads: &[Head], now: u64) -> Result<usize, Option<Duration>> {
    let i = (0..heads.len())
        .filter(|&i| heads[i].full)
        .min_by_key(|&i| heads[i].ts)
        .ok_or(None)?;
    if heads.iter().all(|h| h.full) {
        return Ok(i);
    }
    let due = heads[i].ts.saturating_add(REORDER_WINDOW.as_nanos() as u64);
    if due <= now {
        Ok(i)
    } else {
        Err(Some(Duration::from_nanos(due - now)))
    }
}

/// `CLOCK_BOOTTIME` in ns, the clock of `bpf_ktime_get_boot_ns`.
fn boot_ns() -> u64 {
    let t = clock_gettime(ClockId::Boottime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

impl CaptureSource for EbpfSource {
    fn next_packet(&mut self) -> Result<Option<CapturedPacket<'_>>, CaptureError> {
        if self.last_scan.elapsed() >= FOLLOW_SCAN_INTERVAL {
            self.scan_followed();
        }
        // Wait at most POLL_INTERVAL in all, but for a head that becomes
        // due within it, not return `Ok(None)` before it is.
        let started = Instant::now();
        let ring = loop {
            let wait = match self.next_ring() {
                Ok(i) => break i,
                Err(due_in) => due_in.unwrap_or(POLL_INTERVAL),
            };
            let left = POLL_INTERVAL.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Ok(None);
            }
            self.wait(wait.min(left))?;
        };
        let head = &mut self.heads[ring];
        head.full = false;
        if head.ts < self.last_ts {
            self.out_of_order += 1;
        } else {
            self.last_ts = head.ts;
        }
        let Some(header) = EventHeader::parse(&head.event) else {
            return Ok(None); // fill_heads checked it
        };
        let data = &head.event[EVENT_HEADER_BYTES..EVENT_HEADER_BYTES + header.cap_len as usize];
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

    /// Events the ring buffers had no room for (summed over the rings), packets cut at
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
            ("ebpf_client_side_skipped", k(COUNTER_CLIENT_SIDE)),
            ("ebpf_malformed_events", self.malformed_events),
            ("ebpf_events_out_of_order", self.out_of_order),
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
    fn the_oldest_head_goes_first_and_waits_for_empty_rings() {
        let head = |ts: Option<u64>| Head {
            full: ts.is_some(),
            ts: ts.unwrap_or(0),
            event: Vec::new(),
        };
        let window = REORDER_WINDOW.as_nanos() as u64;
        // Every ring has a head: the oldest, whatever the clock.
        let all = [head(Some(300)), head(Some(100)), head(Some(200))];
        assert_eq!(choose(&all, 0), Ok(1));
        // No head: nothing to wait for but data.
        assert_eq!(choose(&[head(None), head(None)], 1_000), Err(None));
        // Ring 1 is empty: ring 0's head waits until it is a window old...
        let one = [head(Some(1_000)), head(None)];
        assert_eq!(
            choose(&one, 1_000 + window - 10),
            Err(Some(Duration::from_nanos(10)))
        );
        // ...and goes then.
        assert_eq!(choose(&one, 1_000 + window), Ok(0));
        // The oldest of the heads there are, not the first ring's.
        let two = [head(Some(2_000)), head(None), head(Some(1_500))];
        assert_eq!(choose(&two, 1_500 + window), Ok(2));
        assert_eq!(
            choose(&two, 0),
            Err(Some(Duration::from_nanos(1_500 + window)))
        );
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
