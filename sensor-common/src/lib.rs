//! # shadowtap-sensor-common
//!
//! What the eBPF programs (`sensor-ebpf/`, built for `bpfel-unknown-none`)
//! and the sensor that loads them (`sensor/src/capture/ebpf/`) must agree on:
//! map and program names, the layout of a ring-buffer event, counter slots
//! and every named limit. `no_std`, no dependencies, no `unsafe`: the kernel
//! side writes [`EventHeader`] through a pointer, user space reads it back
//! with [`EventHeader::parse`].
//!
//! ```text
//!  TC ingress/egress ──► EVENTS_<cpu % EVENT_RINGS> ring buffer:            ──► sensor (merges
//!        │               [EventHeader | IP packet bytes … | unused]              the rings by time)
//!        │               (cap_len ≤ class ≤ MAX_PACKET_BYTES)
//!        ├─ PORTS (array: port → 1)      which TCP ports are captured
//!        ├─ CPU_STATE (per-CPU, 1 entry) ring bytes this CPU wrote (wakeups) and its
//!        │                               cache of flows recently seen in HTTP_FLOWS
//!        ├─ HTTP_FLOWS (LRU: FlowKey)    flows recognised as HTTP (all-ports mode)
//!        └─ COUNTERS (per-CPU u64)       COUNTER_* slots, summed by the sensor
//! ```
#![no_std]

/// Number of ring buffers (`BPF_MAP_TYPE_RINGBUF`) that carry events: CPU
/// `c` writes into ring `c % EVENT_RINGS` ([`EVENTS_MAPS`]), so that on
/// machines with up to this many CPUs no two CPUs share a ring's lock,
/// positions and cache lines. aya-ebpf 0.2.1 has no array of ring buffers
/// the loader could size per CPU, hence a fixed number of static maps.
pub const EVENT_RINGS: u32 = 16;

/// Names of the event ring buffers, ring `i` at index `i`.
pub const EVENTS_MAPS: [&str; EVENT_RINGS as usize] = [
    "EVENTS_0",
    "EVENTS_1",
    "EVENTS_2",
    "EVENTS_3",
    "EVENTS_4",
    "EVENTS_5",
    "EVENTS_6",
    "EVENTS_7",
    "EVENTS_8",
    "EVENTS_9",
    "EVENTS_10",
    "EVENTS_11",
    "EVENTS_12",
    "EVENTS_13",
    "EVENTS_14",
    "EVENTS_15",
];
/// Name of the array of captured TCP ports: [`PORT_SLOTS`] `u8` entries,
/// indexed by port, 1 where the port is captured. An array rather than a
/// hash map because the verifier inlines an array lookup into a bounds
/// check and an address computation, and every packet does two.
pub const PORTS_MAP: &str = "PORTS";
/// Name of the LRU hash map of flows recognised as HTTP (all-ports mode).
pub const HTTP_FLOWS_MAP: &str = "HTTP_FLOWS";
/// Name of the per-CPU array of `u64` counters, indexed by `COUNTER_*`.
pub const COUNTERS_MAP: &str = "COUNTERS";
/// Name of the per-CPU array of one [`CpuState`]: what a CPU's programs
/// keep between packets (the ring-buffer bytes it wrote, its flow cache).
/// One entry, so that every packet finds its state through the same
/// (hot) pointer slot of the map.
pub const CPU_STATE_MAP: &str = "CPU_STATE";
/// Name of the read-only global (`u32`) that selects the capture mode:
/// [`MODE_PORTS`] or [`MODE_ALL_PORTS_HTTP`]. Set by the loader.
pub const MODE_GLOBAL: &str = "MODE";
/// Name of the read-only global (`u32`): log2 of the ring-buffer bytes a
/// CPU writes between two wakeups of the sensor ([`cpu_wakeup_shift`]).
/// Set by the loader.
pub const WAKEUP_SHIFT_GLOBAL: &str = "WAKEUP_SHIFT";

/// Capture every TCP segment whose source or destination port is in
/// [`PORTS_MAP`].
pub const MODE_PORTS: u32 = 0;
/// Capture every TCP segment of flows recognised as HTTP by their first
/// payload bytes (see [`looks_like_http`]), whatever the ports.
pub const MODE_ALL_PORTS_HTTP: u32 = 1;
/// As [`MODE_ALL_PORTS_HTTP`], keeping only the flows whose server is on
/// the far side of the interface ([`server_side`]): on a pod's host-side
/// veth, the pod's own servers, so that in a cluster each exchange is
/// captured once, at its server's node.
pub const MODE_SERVER_SIDE_HTTP: u32 = 2;

/// Classifier for devices with an Ethernet header (Ethernet, veth, `lo`),
/// ingress side.
pub const PROG_INGRESS_ETH: &str = "shadowtap_ingress_eth";
/// As [`PROG_INGRESS_ETH`], egress side.
pub const PROG_EGRESS_ETH: &str = "shadowtap_egress_eth";
/// Classifier for devices without a link-layer header (tun, WireGuard,
/// `ARPHRD_NONE`): packets start at the IP header. Ingress side.
pub const PROG_INGRESS_L3: &str = "shadowtap_ingress_l3";
/// As [`PROG_INGRESS_L3`], egress side.
pub const PROG_EGRESS_L3: &str = "shadowtap_egress_l3";

/// Most bytes of one packet, from the IP header on, copied into an event.
/// TC sees pre-segmentation (GSO/GRO) packets on veth and `lo`, up to the
/// 64 KiB IP limit, so this covers any packet whose IP length field is
/// valid; longer ones (BIG TCP) are cut here and counted in
/// [`COUNTER_TRUNCATED`].
pub const MAX_PACKET_BYTES: u32 = 65_536;

/// Ring-buffer bytes of all the event rings together, shared out among the
/// CPUs by [`ring_bytes`]. At 20 000 exchanges/s of a few KB each this
/// holds well over a second of traffic, so the sensor may fall behind
/// briefly without loss.
pub const RING_BUFFER_BYTES: u32 = 32 << 20;

/// Smallest size of a ring that some CPU writes into: room for two records
/// of [`MAX_PACKET_BYTES`] (a power of two).
pub const MIN_RING_BYTES: u32 = 256 << 10;

/// Size in bytes of event ring `ring` on a machine with `cpus` possible
/// CPUs and pages of `page` bytes (a power of two): the ring's share of
/// [`RING_BUFFER_BYTES`] (the CPUs `c` with `c % EVENT_RINGS == ring`, out
/// of `cpus`), rounded down to a power of two and at least
/// [`MIN_RING_BYTES`]; `page` (the kernel's smallest ring) for a ring no
/// CPU writes into. The rings together take at most `RING_BUFFER_BYTES`
/// plus a page per unused ring, as long as `cpus × MIN_RING_BYTES` fits in
/// it (128 CPUs); beyond, `EVENT_RINGS × MIN_RING_BYTES` (4 MiB) at most.
pub const fn ring_bytes(ring: u32, cpus: u32, page: u32) -> u32 {
    let cpus = if cpus == 0 { 1 } else { cpus };
    let sharing = cpus / EVENT_RINGS + if ring < cpus % EVENT_RINGS { 1 } else { 0 };
    if sharing == 0 {
        return page;
    }
    let share = (RING_BUFFER_BYTES as u64 * sharing as u64 / cpus as u64) as u32;
    let size = 1u32 << (31 - share.leading_zeros());
    let size = if size < MIN_RING_BYTES {
        MIN_RING_BYTES
    } else {
        size
    };
    if size < page {
        page
    } else {
        size
    }
}

/// Ring-buffer bytes written, all CPUs (all rings) together, per wakeup of
/// the sensor:
/// each CPU wakes it when the bytes it has written cross a multiple of its
/// share of this mark ([`cpu_wakeup_shift`]), once per crossing (each
/// wakeup is an inter-processor interrupt). Other events are written
/// without a wakeup and the sensor finds them at its next poll timeout (the
/// sensor's `POLL_INTERVAL`, 100 ms). The kernel's default, a wakeup
/// whenever an event lands in an empty ring, costs the packet path a
/// cross-CPU wakeup for every packet of a lightly loaded server (measured:
/// 15 µs per packet instead of 1 µs on the project's VM); batching them
/// costs only record delay, and the rest of the ring still holds tens of
/// milliseconds of a saturated link while the woken sensor gets scheduled.
///
/// Counted per CPU rather than as the ring's unread bytes, because asking
/// the ring (`bpf_ringbuf_query`) reads its producer and consumer
/// positions, cache lines that the other CPUs and the sensor keep writing:
/// a helper call and a cache miss on every packet.
pub const WAKEUP_BYTES: u64 = (RING_BUFFER_BYTES / 8) as u64;

/// Smallest share of [`WAKEUP_BYTES`] a CPU writes between two wakeups.
pub const MIN_CPU_WAKEUP_BYTES: u64 = 64 << 10;

/// log2 of the bytes one of `cpus` CPUs writes into the ring buffer between
/// two wakeups of the sensor: [`WAKEUP_BYTES`] shared out among the CPUs
/// (rounded down to a power of two, at least [`MIN_CPU_WAKEUP_BYTES`]), so
/// that however the traffic spreads over the CPUs, the sensor is woken at
/// least once per [`WAKEUP_BYTES`] written (or per
/// `cpus × MIN_CPU_WAKEUP_BYTES` on machines with very many CPUs).
pub const fn cpu_wakeup_shift(cpus: u32) -> u32 {
    let cpus = if cpus == 0 { 1 } else { cpus as u64 };
    let share = WAKEUP_BYTES / cpus;
    let share = if share < MIN_CPU_WAKEUP_BYTES {
        MIN_CPU_WAKEUP_BYTES
    } else {
        share
    };
    63 - share.leading_zeros()
}

/// Entries of [`PORTS_MAP`]: one per TCP port.
pub const PORT_SLOTS: u32 = 1 << 16;

/// Most TCP ports in [`PORTS_MAP`].
pub const MAX_PORTS: u32 = 1024;

/// Most flows remembered as HTTP in [`HTTP_FLOWS_MAP`]; the least recently
/// used is forgotten first (its next segments are captured again as soon as
/// one of them starts with a request or status line).
pub const MAX_HTTP_FLOWS: u32 = 65_536;

/// log2 of [`FLOW_CACHE_SETS`].
pub const FLOW_CACHE_BITS: u32 = 8;

/// Sets of the flow cache, each of [`FLOW_CACHE_WAYS`] entries.
pub const FLOW_CACHE_SETS: u32 = 1 << FLOW_CACHE_BITS;

/// Entries per set of the flow cache: a flow is looked for in both entries
/// of its set (the second is usually on the same cache line), the newest
/// goes first and pushes the older one to the second. With one way and
/// 512 sets, about one flow in nine of the load test's 64 connections
/// shared its slot with another and went to [`HTTP_FLOWS_MAP`] on most
/// packets (10 % of the programs' samples).
pub const FLOW_CACHE_WAYS: u32 = 2;

/// Entries per CPU of the flow cache ([`CpuState::flow_cache`]): a
/// two-way set-associative cache, sets chosen by [`flow_cache_set`], of
/// flows found in
/// [`HTTP_FLOWS_MAP`]. The verifier inlines a per-CPU array lookup, so a
/// hit costs a few instructions where the LRU hash map costs a helper call
/// that hashes the 40-byte key. It holds positive verdicts only, like
/// [`HTTP_FLOWS_MAP`]; a flow whose slot is taken by another is looked up
/// in [`HTTP_FLOWS_MAP`] again. 512 entries of 40 bytes keep
/// [`CpuState`] within the kernel's 32 KiB limit on a per-CPU value.
pub const FLOW_CACHE_SLOTS: u32 = FLOW_CACHE_SETS * FLOW_CACHE_WAYS;

/// The one value of [`CPU_STATE_MAP`], per CPU. TC programs do not nest on
/// a CPU, so a CPU's state is never written by two programs at once.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CpuState {
    /// Bytes of ring-buffer records this CPU reserved (headers included);
    /// it wakes the sensor when this crosses a multiple of
    /// `1 << cpu_wakeup_shift(cpus)`.
    pub ring_bytes: u64,
    /// Flows found in [`HTTP_FLOWS_MAP`], as [`FlowKey::words`]: set `s`
    /// ([`flow_cache_set`]) is entries `s * FLOW_CACHE_WAYS ..`, newest
    /// first; an all-zero entry is empty (a real key has `ip_version` 4 or
    /// 6).
    pub flow_cache: [[u64; 5]; FLOW_CACHE_SLOTS as usize],
}

/// Packet sizes (bytes from the IP header on) of the ring-buffer records
/// the programs reserve: a packet goes into the smallest class that holds
/// it, straight from the skb (`bpf_skb_load_bytes` into the reserved
/// record: one copy). A reservation's size must be a constant the verifier
/// knows, hence classes. The first holds a pure ACK with TCP options
/// (IPv4 52 bytes, IPv6 72); 1 536 holds a 1 500-byte MTU packet; the
/// last is [`MAX_PACKET_BYTES`]. Up to 1 536 bytes, where most HTTP
/// packets of small exchanges fall, a record wastes at most 3/8 of its
/// packet room, so the ring (larger than the caches) advances by fewer bytes,
/// cache lines and pages per packet; above, less than half.
pub const RECORD_CLASSES: [u32; 15] = [
    80, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 4096, 8192, 16_384, 32_768, 65_536,
];

/// How many leading payload bytes the in-kernel HTTP detection reads.
pub const DETECT_BYTES: usize = 8;

/// Counter slot: events the ring buffer had no room for (the packet was
/// not captured; it still went through).
pub const COUNTER_RINGBUF_FULL: u32 = 0;
/// Counter slot: events cut at [`MAX_PACKET_BYTES`].
pub const COUNTER_TRUNCATED: u32 = 1;
/// Counter slot: events written to the ring buffer.
pub const COUNTER_EVENTS: u32 = 2;
/// Counter slot: packets selected for capture whose bytes could not be read
/// (`bpf_skb_load_bytes` failed); not captured.
pub const COUNTER_LOAD_FAILED: u32 = 3;
/// Counter slot: flows newly recognised as HTTP (all-ports mode).
pub const COUNTER_FLOWS_DETECTED: u32 = 4;
/// Counter slot: [`HTTP_FLOWS_MAP`] insertions that failed.
pub const COUNTER_FLOW_INSERT_FAILED: u32 = 5;
/// Counter slot: IPv4 TCP fragments, not captured (a later fragment has
/// no TCP header to select it by; the sensor does not reassemble IP).
pub const COUNTER_IPV4_FRAGMENTS: u32 = 6;
/// Counter slot: IPv6 packets whose next header is an extension header
/// (hop-by-hop, routing, fragment, destination options, AH, mobility,
/// HIP, shim6), whatever they carry; not captured.
pub const COUNTER_IPV6_EXTENSION_HEADERS: u32 = 7;
/// Counter slot: payloads that start an HTTP/1.x message on the client's
/// side of the interface, not captured ([`MODE_SERVER_SIDE_HTTP`]).
pub const COUNTER_CLIENT_SIDE: u32 = 8;
/// Number of counter slots in [`COUNTERS_MAP`].
pub const COUNTER_SLOTS: u32 = 9;

/// IPv6 next-header values of extension headers (RFC 8200 and the IANA
/// registry): hop-by-hop 0, routing 43, fragment 44, AH 51, destination
/// options 60, mobility 135, HIP 139, shim6 140.
pub const fn is_ipv6_extension_header(next_header: u8) -> bool {
    matches!(next_header, 0 | 43 | 44 | 51 | 60 | 135 | 139 | 140)
}

/// Packet direction as seen by the classifier.
pub const DIRECTION_INGRESS: u8 = 0;
/// See [`DIRECTION_INGRESS`].
pub const DIRECTION_EGRESS: u8 = 1;

/// [`EventHeader::flags`] bit: the packet was longer than
/// [`MAX_PACKET_BYTES`] and only that much was copied.
pub const FLAG_TRUNCATED: u8 = 1;

/// The fixed part of every ring-buffer event; `cap_len` bytes of the packet
/// (from its IP header) follow it directly.
///
/// Native byte order (the eBPF target is little-endian, as is the host).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// `bpf_ktime_get_boot_ns()`: ns since boot, including suspend
    /// (`CLOCK_BOOTTIME`).
    pub ts_boot_ns: u64,
    /// Interface index the packet was seen on.
    pub ifindex: u32,
    /// Length of the packet from its IP header on (`skb->len` minus the
    /// link-layer header).
    pub orig_len: u32,
    /// Bytes that follow this header (≤ `orig_len`, ≤ [`MAX_PACKET_BYTES`]).
    pub cap_len: u32,
    /// [`DIRECTION_INGRESS`] or [`DIRECTION_EGRESS`].
    pub direction: u8,
    /// 4 or 6.
    pub ip_version: u8,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Zero.
    pub reserved: u8,
}

/// Size of [`EventHeader`] in bytes.
pub const EVENT_HEADER_BYTES: usize = core::mem::size_of::<EventHeader>();

impl EventHeader {
    /// Reads a header from the start of an event; `None` when `event` is
    /// shorter than [`EVENT_HEADER_BYTES`].
    pub fn parse(event: &[u8]) -> Option<EventHeader> {
        let h: &[u8; EVENT_HEADER_BYTES] = event.first_chunk()?;
        let u32_at = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        Some(EventHeader {
            ts_boot_ns: u64::from_ne_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]),
            ifindex: u32_at(8),
            orig_len: u32_at(12),
            cap_len: u32_at(16),
            direction: h[20],
            ip_version: h[21],
            flags: h[22],
            reserved: h[23],
        })
    }

    /// The header's bytes, as [`EventHeader::parse`] reads them.
    pub fn to_bytes(&self) -> [u8; EVENT_HEADER_BYTES] {
        let mut b = [0u8; EVENT_HEADER_BYTES];
        b[0..8].copy_from_slice(&self.ts_boot_ns.to_ne_bytes());
        b[8..12].copy_from_slice(&self.ifindex.to_ne_bytes());
        b[12..16].copy_from_slice(&self.orig_len.to_ne_bytes());
        b[16..20].copy_from_slice(&self.cap_len.to_ne_bytes());
        b[20] = self.direction;
        b[21] = self.ip_version;
        b[22] = self.flags;
        b[23] = self.reserved;
        b
    }
}

/// A TCP connection, both directions alike: the (address, port) pair that
/// sorts lower comes first. Key of [`HTTP_FLOWS_MAP`]. IPv4 addresses are
/// stored in the first four bytes, the rest zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Lower endpoint's address.
    pub addr_lo: [u8; 16],
    /// Higher endpoint's address.
    pub addr_hi: [u8; 16],
    /// Lower endpoint's port (host order).
    pub port_lo: u16,
    /// Higher endpoint's port (host order).
    pub port_hi: u16,
    /// 4 or 6.
    pub ip_version: u8,
    /// Zero.
    pub reserved: [u8; 3],
}

impl FlowKey {
    /// The key as five 64-bit words (native order), for comparing and
    /// hashing without `memcmp`, which the eBPF build does not have.
    #[inline(always)]
    pub fn words(&self) -> [u64; 5] {
        let w = |b: &[u8]| u64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        let p = self.port_lo.to_ne_bytes();
        let q = self.port_hi.to_ne_bytes();
        let r = self.reserved;
        [
            w(&self.addr_lo[..8]),
            w(&self.addr_lo[8..]),
            w(&self.addr_hi[..8]),
            w(&self.addr_hi[8..]),
            u64::from_ne_bytes([p[0], p[1], q[0], q[1], self.ip_version, r[0], r[1], r[2]]),
        ]
    }
}

/// The [`CpuState::flow_cache`] set of a flow (its [`FlowKey::words`]): a
/// multiplicative hash of the words folded together, top bits.
#[inline(always)]
pub fn flow_cache_set(words: &[u64; 5]) -> u32 {
    let folded = words[0]
        ^ words[1].rotate_left(16)
        ^ words[2].rotate_left(32)
        ^ words[3].rotate_left(48)
        ^ words[4];
    (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - FLOW_CACHE_BITS)) as u32
}

/// Whether the first payload bytes of a segment start an HTTP/1.x message:
/// a request method followed by a space, or `HTTP/1.` (a status line).
/// `head` holds the first [`DETECT_BYTES`] payload bytes (fewer at the end
/// of a short payload, padded with zeros: `len` says how many are real).
///
/// Written as masked 64-bit compares, without slices or loops, so that the
/// eBPF build needs no `memcmp` and the verifier sees straight-line code.
#[inline(always)]
pub fn looks_like_http(head: &[u8; DETECT_BYTES], len: usize) -> bool {
    http_start(head, len) != HTTP_START_NONE
}

/// What [`http_start`] found: no HTTP/1.x start line.
pub const HTTP_START_NONE: u8 = 0;
/// A request line (a method and a space).
pub const HTTP_START_REQUEST: u8 = 1;
/// A status line (`HTTP/1.`).
pub const HTTP_START_STATUS: u8 = 2;

/// Which HTTP/1.x start line, if any, the first payload bytes begin (see
/// [`looks_like_http`] for `head` and `len`).
#[inline(always)]
pub fn http_start(head: &[u8; DETECT_BYTES], len: usize) -> u8 {
    let v = u64::from_le_bytes(*head);
    let m = |p: &Prefix| len >= p.len && v & p.mask == p.value;
    if m(&STATUS) {
        HTTP_START_STATUS
    } else if m(&GET)
        || m(&POST)
        || m(&PUT)
        || m(&HEAD)
        || m(&DELETE)
        || m(&PATCH)
        || m(&OPTIONS)
        || m(&CONNECT)
        || m(&TRACE)
    {
        HTTP_START_REQUEST
    } else {
        HTTP_START_NONE
    }
}

/// Whether a start line `start` ([`http_start`]) seen going `direction`
/// through an interface says the flow's server is on the interface's far
/// side: a request going out through it (TC egress: toward the server), or
/// a response coming in (TC ingress: from the server). On a host-side veth
/// the far side is the pod.
#[inline(always)]
pub const fn server_side(start: u8, direction: u8) -> bool {
    (start == HTTP_START_REQUEST && direction == DIRECTION_EGRESS)
        || (start == HTTP_START_STATUS && direction == DIRECTION_INGRESS)
}

/// A byte prefix as a little-endian 64-bit value and mask.
struct Prefix {
    value: u64,
    mask: u64,
    len: usize,
}

const fn prefix(p: &[u8]) -> Prefix {
    let mut value = 0u64;
    let mut mask = 0u64;
    let mut i = 0;
    while i < p.len() {
        value |= (p[i] as u64) << (8 * i);
        mask |= 0xff << (8 * i);
        i += 1;
    }
    Prefix {
        value,
        mask,
        len: p.len(),
    }
}

const GET: Prefix = prefix(b"GET ");
const POST: Prefix = prefix(b"POST ");
const PUT: Prefix = prefix(b"PUT ");
const HEAD: Prefix = prefix(b"HEAD ");
const DELETE: Prefix = prefix(b"DELETE ");
const PATCH: Prefix = prefix(b"PATCH ");
const OPTIONS: Prefix = prefix(b"OPTIONS ");
const CONNECT: Prefix = prefix(b"CONNECT ");
const TRACE: Prefix = prefix(b"TRACE ");
const STATUS: Prefix = prefix(b"HTTP/1.");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_extension_headers_are_known() {
        for nh in [0, 43, 44, 51, 60, 135, 139, 140] {
            assert!(is_ipv6_extension_header(nh), "{nh}");
        }
        // TCP, UDP, ICMPv6, no next header, ESP (payload, not a header to skip)
        for nh in [6, 17, 58, 59, 50] {
            assert!(!is_ipv6_extension_header(nh), "{nh}");
        }
    }

    #[test]
    fn rings_share_out_the_ring_bytes() {
        const PAGE: u32 = 4096;
        let total = |cpus: u32| {
            (0..EVENT_RINGS)
                .map(|r| ring_bytes(r, cpus, PAGE) as u64)
                .sum::<u64>()
        };
        // One CPU: its ring gets everything, the others a page.
        assert_eq!(ring_bytes(0, 1, PAGE), RING_BUFFER_BYTES);
        assert_eq!(ring_bytes(1, 1, PAGE), PAGE);
        assert_eq!(ring_bytes(0, 0, PAGE), RING_BUFFER_BYTES);
        // Two CPUs (this project's VM): half each.
        assert_eq!(ring_bytes(0, 2, PAGE), RING_BUFFER_BYTES / 2);
        assert_eq!(ring_bytes(1, 2, PAGE), RING_BUFFER_BYTES / 2);
        assert_eq!(ring_bytes(2, 2, PAGE), PAGE);
        // Three: a third, rounded down to a power of two.
        assert_eq!(ring_bytes(2, 3, PAGE), 8 << 20);
        // 20 CPUs: rings 0..4 are shared by two CPUs.
        assert_eq!(ring_bytes(0, 20, PAGE), 2 * ring_bytes(5, 20, PAGE));
        for cpus in [1, 2, 3, 4, 7, 8, 16, 17, 64, 128] {
            assert!(
                total(cpus) <= u64::from(RING_BUFFER_BYTES) + u64::from(EVENT_RINGS * PAGE),
                "{cpus}"
            );
        }
        for cpus in [1, 2, 3, 16, 100, 1000, 4096] {
            for r in 0..EVENT_RINGS {
                let b = ring_bytes(r, cpus, PAGE);
                assert!(b.is_power_of_two() && b >= PAGE, "{cpus} {r}");
                assert!(b == PAGE || b >= MIN_RING_BYTES, "{cpus} {r}");
            }
        }
        // Pages larger than the minimum ring.
        assert_eq!(ring_bytes(1, 17, PAGE), 1 << 20);
        assert_eq!(ring_bytes(1, 17, 2 << 20), 2 << 20);
        assert_eq!(EVENTS_MAPS.len(), EVENT_RINGS as usize);
    }

    #[test]
    fn header_layout_is_fixed() {
        assert_eq!(EVENT_HEADER_BYTES, 24);
        assert_eq!(core::mem::align_of::<EventHeader>(), 8);
        assert_eq!(core::mem::size_of::<FlowKey>(), 40);
    }

    #[test]
    fn header_round_trips_and_short_input_is_none() {
        let h = EventHeader {
            ts_boot_ns: 0x0102_0304_0506_0708,
            ifindex: 7,
            orig_len: 70_000,
            cap_len: MAX_PACKET_BYTES,
            direction: DIRECTION_EGRESS,
            ip_version: 6,
            flags: FLAG_TRUNCATED,
            reserved: 0,
        };
        assert_eq!(EventHeader::parse(&h.to_bytes()), Some(h));
        assert_eq!(EventHeader::parse(&h.to_bytes()[..23]), None);
    }

    #[test]
    fn record_classes_grow_to_the_largest_packet() {
        assert!(RECORD_CLASSES.windows(2).all(|w| w[0] < w[1]));
        assert!(RECORD_CLASSES.iter().all(|c| c % 8 == 0));
        assert_eq!(RECORD_CLASSES[RECORD_CLASSES.len() - 1], MAX_PACKET_BYTES);
        // A pure ACK with timestamps fits the first class, IPv4 and IPv6.
        assert!(RECORD_CLASSES[0] >= 40 + 32);
        // Up to an MTU-sized packet, a packet fills at least 5/8 of its
        // class (more than the class below it).
        for w in RECORD_CLASSES.windows(2).filter(|w| w[1] <= 1536) {
            assert!(w[0] * 8 >= w[1] * 5, "{w:?}");
        }
    }

    #[test]
    fn cpu_state_fits_a_per_cpu_value() {
        // The kernel's limit on a per-CPU map value (PCPU_MIN_UNIT_SIZE).
        assert!(core::mem::size_of::<CpuState>() <= 32 << 10);
        assert_eq!(core::mem::align_of::<CpuState>(), 8);
    }

    #[test]
    fn wakeup_shares_cover_the_mark() {
        assert_eq!(1u64 << cpu_wakeup_shift(1), WAKEUP_BYTES);
        assert_eq!(1u64 << cpu_wakeup_shift(0), WAKEUP_BYTES);
        assert_eq!(1u64 << cpu_wakeup_shift(2), WAKEUP_BYTES / 2);
        // Rounded down to a power of two: all CPUs together stay within the mark.
        assert!((1u64 << cpu_wakeup_shift(3)) * 3 <= WAKEUP_BYTES);
        assert!((1u64 << cpu_wakeup_shift(3)) * 3 > WAKEUP_BYTES / 2);
        assert_eq!(1u64 << cpu_wakeup_shift(4096), MIN_CPU_WAKEUP_BYTES);
    }

    #[test]
    fn flow_words_cover_every_field_and_slots_spread() {
        let mut k = FlowKey {
            addr_lo: [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            addr_hi: [10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            port_lo: 8080,
            port_hi: 40_000,
            ip_version: 4,
            reserved: [0; 3],
        };
        let w = k.words();
        assert_eq!(w[0], u64::from_ne_bytes([10, 0, 0, 1, 0, 0, 0, 0]));
        assert_eq!(w[2], u64::from_ne_bytes([10, 0, 0, 2, 0, 0, 0, 0]));
        let mut changed = k;
        changed.ip_version = 6;
        assert_ne!(changed.words(), w);
        changed = k;
        changed.addr_hi[15] = 1;
        assert_ne!(changed.words(), w);
        // 1 024 client ports of one client and server land in many sets.
        let mut used = [0u32; FLOW_CACHE_SETS as usize];
        for port in 40_000..41_024 {
            k.port_hi = port;
            let set = flow_cache_set(&k.words());
            assert!(set < FLOW_CACHE_SETS);
            used[set as usize] += 1;
        }
        // 1 024 flows over 256 sets: about 256 × (1 − e⁻⁴) = 251 taken.
        assert!(used.iter().filter(|u| **u > 0).count() > 230);
        // 64 connections (the load test's): few share a set with two others.
        let mut used = [0u32; FLOW_CACHE_SETS as usize];
        for port in 40_000..40_064 {
            k.port_hi = port;
            used[flow_cache_set(&k.words()) as usize] += 1;
        }
        assert!(used.iter().filter(|u| **u > FLOW_CACHE_WAYS).count() <= 2);
    }

    fn detect(s: &[u8]) -> bool {
        let mut head = [0u8; DETECT_BYTES];
        let n = s.len().min(DETECT_BYTES);
        head[..n].copy_from_slice(&s[..n]);
        looks_like_http(&head, n)
    }

    fn start(s: &[u8]) -> u8 {
        let mut head = [0u8; DETECT_BYTES];
        let n = s.len().min(DETECT_BYTES);
        head[..n].copy_from_slice(&s[..n]);
        http_start(&head, n)
    }

    #[test]
    fn start_lines_and_the_server_side() {
        assert_eq!(start(b"GET / HTTP/1.1"), HTTP_START_REQUEST);
        assert_eq!(start(b"PATCH /x"), HTTP_START_REQUEST);
        assert_eq!(start(b"HTTP/1.1 200 OK"), HTTP_START_STATUS);
        assert_eq!(start(b"HTTP/2 200"), HTTP_START_NONE);
        assert_eq!(start(b"\x16\x03\x01"), HTTP_START_NONE);
        // Requests toward the far side, responses from it.
        assert!(server_side(HTTP_START_REQUEST, DIRECTION_EGRESS));
        assert!(server_side(HTTP_START_STATUS, DIRECTION_INGRESS));
        assert!(!server_side(HTTP_START_REQUEST, DIRECTION_INGRESS));
        assert!(!server_side(HTTP_START_STATUS, DIRECTION_EGRESS));
        assert!(!server_side(HTTP_START_NONE, DIRECTION_EGRESS));
        assert!(!server_side(HTTP_START_NONE, DIRECTION_INGRESS));
    }

    #[test]
    fn http_detection() {
        for yes in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"POST /x",
            b"DELETE /a",
            b"OPTIONS *",
            b"HTTP/1.1 200 OK",
            b"HTTP/1.0 404",
        ] {
            assert!(detect(yes), "{:?}", core::str::from_utf8(yes));
        }
        for no in [
            &b"GET"[..],
            b"GETX / ",
            b"get / ",
            b"HTTP/2.0 200",
            b"\x16\x03\x01\x02\x00",
            b"PRI * HTTP/2.0",
            b"",
        ] {
            assert!(!detect(no), "{:?}", core::str::from_utf8(no));
        }
    }
}
