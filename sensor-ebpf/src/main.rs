//! # shadowtap-sensor-ebpf
//!
//! TC classifiers that copy the TCP segments of HTTP traffic, from the IP
//! header on, into this CPU's `EVENTS_<cpu % EVENT_RINGS>` ring buffer for
//! the sensor's `capture::EbpfSource`, which merges the rings by time. They never change or drop a packet: every path
//! returns `TC_ACT_UNSPEC` (TCX's `TCX_NEXT`): no verdict, so the programs
//! attached after them on the hook still run and decide; with none, the
//! packet passes. (`TC_ACT_OK` would end the TCX chain and skip them.)
//!
//! ```text
//!  skb ─► L2 (Ethernet / 802.1Q, or none) ─► IPv4 | IPv6 ─► TCP ports
//!           │ (headers read in place from the linear data; helper only if not there)
//!           │ MODE_PORTS: sport or dport in PORTS
//!           │ MODE_ALL_PORTS_HTTP: flow in CPU_STATE's cache, else in HTTP_FLOWS
//!           │                      (then cached), else this payload starts a
//!           │                      request/status line (then remembered in both)
//!           │ MODE_SERVER_SIDE_HTTP: the same, but only a request going out
//!           │                      (egress) or a status line coming in (ingress)
//!           │                      starts a flow: its server is on the far side
//!           ▼
//!  bpf_ringbuf_reserve(EVENTS_<cpu % EVENT_RINGS>,
//!                      EventHeader + smallest RECORD_CLASSES size ≥ packet)
//!           │ full? ─► COUNTERS[COUNTER_RINGBUF_FULL] += 1
//!           ▼
//!  header written in place, skb bytes [l3 .. l3 + min(len, MAX_PACKET_BYTES)]
//!  loaded straight into the record (bpf_skb_load_bytes), submitted
//!    (wakes the sensor when the bytes this CPU wrote cross a multiple of
//!     1 << WAKEUP_SHIFT, its share of WAKEUP_BYTES; it polls every 100 ms)
//! ```
//!
//! A reservation's size must be a constant the verifier knows, so a packet
//! goes into the smallest of the fixed `RECORD_CLASSES` that holds it: one
//! copy from the skb into the ring, where assembling the event in a scratch
//! slot and `bpf_ringbuf_output` copied it twice.
//!
//! Names, layouts and limits come from `shadowtap-sensor-common`. Build
//! with `cargo xtask build-ebpf`; the layout of the repository's eBPF
//! support is in `docs/ebpf.md`.
#![no_std]
#![no_main]
// eBPF programs work on raw pointers into the skb, map values and helper
// calls, all of which are `unsafe`; this crate is outside the workspace
// and its `unsafe_code = "forbid"` lint, which covers all user-space code.

use aya_ebpf::{
    bindings::{BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, TC_ACT_UNSPEC},
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_boot_ns, bpf_skb_load_bytes},
    macros::{classifier, map},
    maps::{ring_buf::RingBufBytes, Array, LruHashMap, PerCpuArray, RingBuf},
    programs::TcContext,
};
use shadowtap_sensor_common::{
    flow_cache_set, http_start, is_ipv6_extension_header, server_side, CpuState, EventHeader,
    FlowKey, COUNTER_CLIENT_SIDE, COUNTER_EVENTS, COUNTER_FLOWS_DETECTED,
    COUNTER_FLOW_INSERT_FAILED, COUNTER_IPV4_FRAGMENTS, COUNTER_IPV6_EXTENSION_HEADERS,
    COUNTER_LOAD_FAILED, COUNTER_RINGBUF_FULL, COUNTER_SLOTS, COUNTER_TRUNCATED, DETECT_BYTES,
    DIRECTION_EGRESS, DIRECTION_INGRESS, EVENT_HEADER_BYTES, EVENT_RINGS, FLAG_TRUNCATED,
    FLOW_CACHE_WAYS, HTTP_START_NONE, MAX_HTTP_FLOWS, MAX_PACKET_BYTES, MODE_PORTS,
    MODE_SERVER_SIDE_HTTP, PORT_SLOTS, RECORD_CLASSES, RING_BUFFER_BYTES, WAKEUP_BYTES,
};

/// The event rings, `EVENTS_MAPS` in order: CPU `c` writes into ring
/// `c % EVENT_RINGS`. The loader sizes each (`ring_bytes`); the size here is
/// only the object's default.
macro_rules! event_rings {
    ($($ring:ident)*) => {
        $(
            #[map]
            static $ring: RingBuf = RingBuf::with_byte_size(RING_BUFFER_BYTES / EVENT_RINGS, 0);
        )*
    };
}
// `reserve` picks among exactly these sixteen.
const _: () = assert!(EVENT_RINGS == 16);
event_rings!(
    EVENTS_0 EVENTS_1 EVENTS_2 EVENTS_3 EVENTS_4 EVENTS_5 EVENTS_6 EVENTS_7
    EVENTS_8 EVENTS_9 EVENTS_10 EVENTS_11 EVENTS_12 EVENTS_13 EVENTS_14 EVENTS_15
);

#[map]
static PORTS: Array<u8> = Array::with_max_entries(PORT_SLOTS, 0);

#[map]
static HTTP_FLOWS: LruHashMap<FlowKey, u8> = LruHashMap::with_max_entries(MAX_HTTP_FLOWS, 0);

/// This CPU's ring bytes and flow cache (`CpuState`). One entry: the
/// inlined lookup reads the map's pointer slot for entry 0, the same cache
/// line for every packet, where an entry per cache slot spread those
/// pointers over 8 KiB and made a hit two dependent cache misses.
#[map]
static CPU_STATE: PerCpuArray<CpuState> = PerCpuArray::with_max_entries(1, 0);

#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_SLOTS, 0);

/// `MODE_PORTS`, `MODE_ALL_PORTS_HTTP` or `MODE_SERVER_SIDE_HTTP`; the
/// loader sets it (read-only global, so the verifier prunes the other
/// branches).
#[no_mangle]
static MODE: u32 = MODE_PORTS;

/// `cpu_wakeup_shift(possible CPUs)`; the loader sets it (read-only
/// global). The default is WAKEUP_BYTES, as for one CPU.
#[no_mangle]
static WAKEUP_SHIFT: u32 = WAKEUP_BYTES.trailing_zeros();

#[link_section = "license"]
#[no_mangle]
static LICENSE: [u8; 11] = *b"Apache-2.0\0";

const ETH_HEADER_BYTES: u32 = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_TCP: u8 = 6;
const IPV6_HEADER_BYTES: u32 = 40;
const TCP_MIN_HEADER_BYTES: u32 = 20;
const IP_MIN_BYTES: u32 = 20;
/// The kernel's header before each ring-buffer record (`BPF_RINGBUF_HDR_SZ`).
const RING_RECORD_HEADER_BYTES: usize = 8;

#[classifier]
pub fn shadowtap_ingress_eth(ctx: TcContext) -> i32 {
    capture(&ctx, DIRECTION_INGRESS, true);
    TC_ACT_UNSPEC
}

#[classifier]
pub fn shadowtap_egress_eth(ctx: TcContext) -> i32 {
    capture(&ctx, DIRECTION_EGRESS, true);
    TC_ACT_UNSPEC
}

#[classifier]
pub fn shadowtap_ingress_l3(ctx: TcContext) -> i32 {
    capture(&ctx, DIRECTION_INGRESS, false);
    TC_ACT_UNSPEC
}

#[classifier]
pub fn shadowtap_egress_l3(ctx: TcContext) -> i32 {
    capture(&ctx, DIRECTION_EGRESS, false);
    TC_ACT_UNSPEC
}

/// Where the parts of a TCP/IP packet are, as skb offsets.
struct Segment {
    /// Offset of the IP header.
    l3: u32,
    /// Length of the IP packet (IP header to end of TCP payload).
    ip_len: u32,
    ip_version: u8,
    /// Offset and length of the TCP payload.
    payload: u32,
    payload_len: u32,
    key: FlowKey,
}

#[inline(always)]
fn capture(ctx: &TcContext, direction: u8, ethernet: bool) {
    let Some(seg) = parse(ctx, ethernet) else {
        return;
    };
    let Some(state) = CPU_STATE.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: MODE is a plain `u32` global; the volatile read keeps the
    // compiler from folding its initial value in.
    let mode = unsafe { core::ptr::read_volatile(&MODE) };
    let selected = if mode == MODE_PORTS {
        port_selected(seg.key.port_lo) || port_selected(seg.key.port_hi)
    } else {
        select_http_flow(ctx, &seg, state, mode == MODE_SERVER_SIDE_HTTP, direction)
    };
    if selected {
        emit(ctx, direction, &seg, state);
    }
}

#[inline(always)]
fn port_selected(port: u16) -> bool {
    PORTS.get(u32::from(port)).is_some_and(|v| *v != 0)
}

/// The `T` at skb offset `off`: read in place when the skb's linear data
/// holds it (direct packet access, no helper call; on veth and `lo` the
/// headers always are), else copied out with `bpf_skb_load_bytes`.
#[inline(always)]
fn read<T: Copy>(ctx: &TcContext, off: u32) -> Option<T> {
    let at = ctx.data() + off as usize;
    if at + core::mem::size_of::<T>() <= ctx.data_end() {
        // SAFETY: `[at, at + size_of::<T>())` lies within the packet's
        // linear data, checked just above (the verifier checks it too);
        // the read is unaligned and `T` is plain bytes.
        Some(unsafe { (at as *const T).read_unaligned() })
    } else {
        ctx.load::<T>(off as usize).ok()
    }
}

#[inline(always)]
fn parse(ctx: &TcContext, ethernet: bool) -> Option<Segment> {
    let skb_len = ctx.len();
    let (l3, ethertype) = if ethernet {
        let eth: [u8; 2] = read(ctx, 12)?;
        let ethertype = u16::from_be_bytes(eth);
        if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
            // One tag in the packet (an offloaded tag is not in the data).
            let inner: [u8; 2] = read(ctx, 16)?;
            (ETH_HEADER_BYTES + 4, u16::from_be_bytes(inner))
        } else {
            (ETH_HEADER_BYTES, ethertype)
        }
    } else {
        // `skb->protocol` holds the big-endian EtherType in its low 16 bits.
        (0, u16::from_be(ctx.skb.protocol() as u16))
    };
    if skb_len < l3 + IP_MIN_BYTES {
        return None;
    }
    let avail = skb_len - l3;
    let mut key = FlowKey::default();
    let (ip_version, ip_header, ip_len) = match ethertype {
        ETH_P_IP => {
            let h: [u8; 20] = read(ctx, l3)?;
            let ihl = u32::from(h[0] & 0x0f) * 4;
            let frag = u16::from_be_bytes([h[6], h[7]]);
            if h[0] >> 4 != 4 || ihl < 20 || h[9] != IPPROTO_TCP {
                return None;
            }
            // A fragment (more-fragments bit or an offset): a later one has
            // no ports to select it by. Counted, not captured.
            if frag & 0x3fff != 0 {
                count(COUNTER_IPV4_FRAGMENTS);
                return None;
            }
            let total = u32::from(u16::from_be_bytes([h[2], h[3]]));
            // Total length 0 is TSO: the packet is what the skb holds.
            let ip_len = if total == 0 || total > avail {
                avail
            } else {
                total
            };
            set_addrs(&mut key, &h[12..16], &h[16..20]);
            (4, ihl, ip_len)
        }
        ETH_P_IPV6 => {
            let h: [u8; 40] = read(ctx, l3)?;
            if h[0] >> 4 != 6 {
                return None;
            }
            if h[6] != IPPROTO_TCP {
                // TCP behind extension headers is not looked for: counted.
                if is_ipv6_extension_header(h[6]) {
                    count(COUNTER_IPV6_EXTENSION_HEADERS);
                }
                return None;
            }
            let payload = u32::from(u16::from_be_bytes([h[4], h[5]]));
            let ip_len = if payload == 0 || payload + IPV6_HEADER_BYTES > avail {
                avail
            } else {
                payload + IPV6_HEADER_BYTES
            };
            set_addrs(&mut key, &h[8..24], &h[24..40]);
            (6, IPV6_HEADER_BYTES, ip_len)
        }
        _ => return None,
    };
    let l4 = l3 + ip_header;
    if ip_len < ip_header + TCP_MIN_HEADER_BYTES {
        return None;
    }
    let t: [u8; 14] = read(ctx, l4)?;
    let sport = u16::from_be_bytes([t[0], t[1]]);
    let dport = u16::from_be_bytes([t[2], t[3]]);
    let doff = u32::from(t[12] >> 4) * 4;
    if doff < TCP_MIN_HEADER_BYTES || ip_header + doff > ip_len {
        return None;
    }
    key.ip_version = ip_version;
    order(&mut key, sport, dport);
    Some(Segment {
        l3,
        ip_len,
        ip_version,
        payload: l4 + doff,
        payload_len: ip_len - ip_header - doff,
        key,
    })
}

#[inline(always)]
fn set_addrs(key: &mut FlowKey, src: &[u8], dst: &[u8]) {
    let n = src.len();
    key.addr_lo[..n].copy_from_slice(src);
    key.addr_hi[..n].copy_from_slice(dst);
}

/// Puts the lower (address, port) endpoint first, so that both directions
/// of a connection have the same key.
#[inline(always)]
fn order(key: &mut FlowKey, sport: u16, dport: u16) {
    let (lo, hi) = (words(&key.addr_lo), words(&key.addr_hi));
    let swap = lo > hi || (lo == hi && sport > dport);
    if swap {
        core::mem::swap(&mut key.addr_lo, &mut key.addr_hi);
        key.port_lo = dport;
        key.port_hi = sport;
    } else {
        key.port_lo = sport;
        key.port_hi = dport;
    }
}

/// An address as two big-endian words, for ordering without `memcmp`.
#[inline(always)]
fn words(a: &[u8; 16]) -> (u64, u64) {
    let mut hi = [0u8; 8];
    let mut lo = [0u8; 8];
    hi.copy_from_slice(&a[..8]);
    lo.copy_from_slice(&a[8..]);
    (u64::from_be_bytes(hi), u64::from_be_bytes(lo))
}

/// All-ports mode: a flow is captured once one of its segments' payload
/// starts like HTTP/1.x, and from then on every segment of it (ACKs, FIN
/// and RST included) until the LRU map forgets it. Only positive verdicts
/// are stored, so a connection picked up mid-stream (the sensor started
/// after it) is recognised at its next request.
///
/// This CPU's flow cache (`CpuState::flow_cache`) is asked first (five
/// compares for each of the two entries of the flow's set); `HTTP_FLOWS`
/// (a helper call that hashes the key) only when the flow is not in its
/// set. A flow that stays in the cache is not refreshed in the LRU map;
/// should the map forget it, the cache still selects it while it stays in
/// its set, and after that the flow is recognised again at its next
/// request.
///
/// With `server_only` (`MODE_SERVER_SIDE_HTTP`) a start line only selects
/// the flow when it says the server is on the interface's far side
/// (`server_side`); a flow it does not select may still be selected by
/// another interface it crosses, and is then captured on both.
#[inline(always)]
fn select_http_flow(
    ctx: &TcContext,
    seg: &Segment,
    state: *mut CpuState,
    server_only: bool,
    direction: u8,
) -> bool {
    let words = seg.key.words();
    // `flow_cache_set` is below FLOW_CACHE_SETS (its top bits), so both
    // indexes are in bounds; the verifier sees the shift's range too.
    let first = (flow_cache_set(&words) * FLOW_CACHE_WAYS) as usize;
    // SAFETY: `state` is this CPU's `CpuState` (a per-CPU map value,
    // aligned to 8), and TC programs do not nest on a CPU.
    let cache = unsafe { &mut (*state).flow_cache };
    if same_flow(&cache[first], &words) || same_flow(&cache[first + 1], &words) {
        return true;
    }
    // The newest flow goes first in its set, the older one second.
    let mut remember = || {
        cache[first + 1] = cache[first];
        cache[first] = words;
    };
    if HTTP_FLOWS.get_ptr(seg.key).is_some() {
        remember();
        return true;
    }
    if seg.payload_len == 0 {
        return false;
    }
    let mut head = [0u8; DETECT_BYTES];
    let n = if seg.payload_len < DETECT_BYTES as u32 {
        seg.payload_len
    } else {
        DETECT_BYTES as u32
    };
    let n = opaque(n);
    if n == 0 || n > DETECT_BYTES as u32 {
        return false;
    }
    // SAFETY: `head` has DETECT_BYTES bytes and 1 <= n <= DETECT_BYTES.
    let ret =
        unsafe { bpf_skb_load_bytes(ctx.skb.skb.cast(), seg.payload, head.as_mut_ptr().cast(), n) };
    if ret != 0 {
        return false;
    }
    let start = http_start(&head, n as usize);
    if start == HTTP_START_NONE {
        return false;
    }
    if server_only && !server_side(start, direction) {
        count(COUNTER_CLIENT_SIDE);
        return false;
    }
    if HTTP_FLOWS.insert(seg.key, 1u8, 0).is_ok() {
        count(COUNTER_FLOWS_DETECTED);
    } else {
        count(COUNTER_FLOW_INSERT_FAILED);
    }
    remember();
    true
}

/// Whether a flow-cache entry holds `words`: XORs, not a chain of
/// compares, which LLVM could merge into `bcmp`.
#[inline(always)]
fn same_flow(e: &[u64; 5], words: &[u64; 5]) -> bool {
    let diff = (e[0] ^ words[0])
        | (e[1] ^ words[1])
        | (e[2] ^ words[2])
        | (e[3] ^ words[3])
        | (e[4] ^ words[4]);
    diff == 0
}

#[inline(always)]
fn emit(ctx: &TcContext, direction: u8, seg: &Segment, state: *mut CpuState) {
    let mut cap = seg.ip_len;
    let mut flags = 0;
    if cap > MAX_PACKET_BYTES {
        cap = MAX_PACKET_BYTES;
        flags |= FLAG_TRUNCATED;
        count(COUNTER_TRUNCATED);
    }
    let header = EventHeader {
        // SAFETY: a helper without arguments.
        ts_boot_ns: unsafe { bpf_ktime_get_boot_ns() },
        // SAFETY: `skb` is the context pointer the kernel passed in.
        ifindex: unsafe { (*ctx.skb.skb).ifindex },
        orig_len: seg.ip_len,
        cap_len: cap,
        direction,
        ip_version: seg.ip_version,
        flags,
        reserved: 0,
    };
    let Some((mut record, room)) = reserve(cap) else {
        count(COUNTER_RINGBUF_FULL);
        return;
    };
    // Wake the sensor when this record takes the bytes this CPU has written
    // across a multiple of its share of WAKEUP_BYTES (see there), once per
    // crossing: a forced wakeup is an inter-processor interrupt, a VM exit
    // on a virtual machine, and costs microseconds (measured: 2.4 µs per
    // packet while the sensor lagged). Counted here rather than asked of
    // the ring, whose positions other CPUs and the sensor keep writing.
    // SAFETY: this CPU's state, as in `select_http_flow`.
    let before = unsafe { (*state).ring_bytes };
    let after = before + (RING_RECORD_HEADER_BYTES + EVENT_HEADER_BYTES) as u64 + u64::from(room);
    // SAFETY: as above.
    unsafe { (*state).ring_bytes = after };
    // SAFETY: WAKEUP_SHIFT is a plain `u32` global, read as MODE is.
    let shift = unsafe { core::ptr::read_volatile(&WAKEUP_SHIFT) } & 63;
    let wakeup = if after >> shift != before >> shift {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    let wakeup = u64::from(wakeup);
    // The helper below needs `cap` proven within [1, room]: two checks, each
    // on an opaque value, so that LLVM cannot fuse them into one range
    // compare on a shifted value, which the verifier does not follow.
    let cap = opaque(cap);
    if cap > room {
        record.discard(u64::from(BPF_RB_NO_WAKEUP));
        return;
    }
    let cap = opaque(cap);
    if cap < IP_MIN_BYTES {
        record.discard(u64::from(BPF_RB_NO_WAKEUP));
        return;
    }
    let r = record.as_mut_ptr();
    // SAFETY: `r` is a reserved record of EVENT_HEADER_BYTES + room bytes,
    // aligned to 8; the header goes at its start and the packet after it,
    // IP_MIN_BYTES <= cap <= room.
    let ok = unsafe {
        r.cast::<EventHeader>().write(header);
        bpf_skb_load_bytes(
            ctx.skb.skb.cast(),
            seg.l3,
            r.add(EVENT_HEADER_BYTES).cast(),
            cap,
        ) == 0
    };
    if ok {
        record.submit(wakeup);
        count(COUNTER_EVENTS);
    } else {
        record.discard(u64::from(BPF_RB_NO_WAKEUP));
        count(COUNTER_LOAD_FAILED);
    }
}

/// A record in this CPU's event ring for a packet of `cap` bytes: the
/// header and the smallest of `RECORD_CLASSES` that holds it (returned as
/// `room`); `None` when the ring is full. A ring of its own per CPU keeps
/// the ring's spinlock and producer position out of the other CPUs' caches
/// (the load test's requests are classified on one CPU, its responses on
/// another). Each class is its own reservation with a constant size, as
/// the verifier asks; each branch only reserves and the writing code after
/// it is shared, which keeps the hot path short.
#[inline(always)]
fn reserve(cap: u32) -> Option<(RingBufBytes<'static>, u32)> {
    // SAFETY: a helper without arguments.
    let cpu = unsafe { bpf_get_smp_processor_id() } % EVENT_RINGS;
    let ring: &'static RingBuf = match cpu {
        0 => &EVENTS_0,
        1 => &EVENTS_1,
        2 => &EVENTS_2,
        3 => &EVENTS_3,
        4 => &EVENTS_4,
        5 => &EVENTS_5,
        6 => &EVENTS_6,
        7 => &EVENTS_7,
        8 => &EVENTS_8,
        9 => &EVENTS_9,
        10 => &EVENTS_10,
        11 => &EVENTS_11,
        12 => &EVENTS_12,
        13 => &EVENTS_13,
        14 => &EVENTS_14,
        _ => &EVENTS_15,
    };
    macro_rules! classes {
        ($($i:literal)*) => {
            $(
                if cap <= RECORD_CLASSES[$i] {
                    let size = EVENT_HEADER_BYTES + RECORD_CLASSES[$i] as usize;
                    return ring.reserve_bytes(size, 0).map(|r| (r, RECORD_CLASSES[$i]));
                }
            )*
        };
    }
    classes!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14);
    // Not reached: cap <= MAX_PACKET_BYTES, the last class.
    None
}

/// `v`, hidden from the optimiser. A helper's length argument must be
/// proven non-zero and bounded by a check the verifier sees; when the
/// compiler already knows the bound it drops such checks, so lengths pass
/// through here right before they are checked.
#[inline(always)]
fn opaque(v: u32) -> u32 {
    // SAFETY: a volatile read of a local.
    unsafe { core::ptr::read_volatile(&v) }
}

#[inline(always)]
fn count(slot: u32) {
    if let Some(c) = COUNTERS.get_ptr_mut(slot) {
        // SAFETY: a per-CPU value, and TC programs do not nest on a CPU.
        unsafe { *c += 1 };
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
