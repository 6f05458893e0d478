//! The bounded flow table: connection state, roles, timeouts and eviction.
//!
//! A flow is created by a SYN or by the first segment carrying payload
//! (mid-stream pickup); stray ACKs, FINs and RSTs of unknown connections
//! create nothing. Client and server are decided, in order of trust, by the
//! SYN (its sender is the client; a SYN-ACK's sender is the server), by the
//! first payload ([`FlowHandler::classify`]: a request line marks the
//! client, a status line the server), and last by port (the side on a
//! well-known or lower port is the server).
//!
//! Timeouts run on packet time. The table never holds more than
//! [`FlowLimits::max_flows`]: a new flow that finds it full starts one
//! pass over the table that expires flows with the shorter emergency
//! timeouts and, if that frees less than an [`EVICTION_BATCH_DIVISOR`]th of
//! the table, evicts the least recently seen flows until that much is
//! free. Each such pass, which costs a walk over every flow, so leaves room
//! for at least that many new flows: however flows come and go, the
//! walks cost a bounded amount per new flow (not one walk per new flow when
//! old flows expire one at a time).
//!
//! The map is keyed by wire-controlled tuples, so it hashes them with a
//! keyed hasher ([`KeyedState`], seeded by the caller). Its iteration order
//! therefore varies with the seed, and nothing that reaches the output may
//! follow it: flows that leave the table together (end of input, a timeout
//! sweep, an eviction batch) leave in [`leave_order`].

use std::net::{IpAddr, SocketAddr};

use std::hash::{BuildHasher as _, Hash, Hasher};

use hashbrown::hash_table::HashTable;

use super::{Direction, Endpoints};
use crate::hash::{HashSeed, KeyedState};
use crate::reassembly::{
    limits::OOO_MEMCAP_BYTES, Budget, Ctx, HalfStream, ReassemblyStats, StreamSink,
};
use crate::time::{secs, Timestamp};
use crate::wire::TcpSegment;

/// Consumes the reassembled streams of one flow (the HTTP layer, in the sensor).
pub trait FlowHandler {
    /// What the handler emits (exchanges, anomalies).
    type Event;

    /// Created once client and server are known.
    fn new(endpoints: Endpoints, mid_stream: bool) -> Self;
    /// `Some(true)` if a stream starting with `first` is sent by a client,
    /// `Some(false)` if by a server, `None` if it can't tell.
    fn classify(first: &[u8]) -> Option<bool>;
    fn data(&mut self, dir: Direction, ts: Timestamp, bytes: &[u8], out: &mut Vec<Self::Event>);
    fn gap(&mut self, dir: Direction, ts: Timestamp, len: u64, out: &mut Vec<Self::Event>);
    fn close(&mut self, dir: Direction, ts: Timestamp, out: &mut Vec<Self::Event>);
    /// The flow ended (both sides closed, reset, timeout, eviction, end of input).
    fn finish(&mut self, ts: Timestamp, out: &mut Vec<Self::Event>);
    /// Heap bytes the handler holds, for [`FlowLimits::handler_memcap_bytes`].
    /// Called after every segment that gave the handler something, so it
    /// must be cheap.
    fn held_bytes(&self) -> usize {
        0
    }
    /// Drops what the handler holds because the handlers of all flows
    /// together passed their memcap. It may emit what it flushes.
    fn shed(&mut self, _ts: Timestamp, _out: &mut Vec<Self::Event>) {}
}

/// Caps and timeouts of the flow table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowLimits {
    pub max_flows: usize,
    /// A flow that has carried no payload yet (handshake only).
    pub embryonic_timeout_ns: u64,
    pub established_timeout_ns: u64,
    /// Kept after FIN/RST to absorb retransmissions and final ACKs.
    pub closed_timeout_ns: u64,
    /// Used instead of the above while the table is full.
    pub emergency_embryonic_timeout_ns: u64,
    pub emergency_established_timeout_ns: u64,
    /// Out-of-order bytes across all flows.
    pub ooo_memcap_bytes: usize,
    /// Bytes the flows' handlers (the HTTP parsers: partial heads, messages
    /// being read, requests waiting for responses) may hold across all
    /// flows; see [`FlowTable::on_segment`].
    pub handler_memcap_bytes: usize,
}

impl Default for FlowLimits {
    fn default() -> Self {
        FlowLimits {
            max_flows: 65_536,
            embryonic_timeout_ns: secs(30),
            established_timeout_ns: secs(300),
            closed_timeout_ns: secs(10),
            emergency_embryonic_timeout_ns: secs(5),
            emergency_established_timeout_ns: secs(100),
            ooo_memcap_bytes: OOO_MEMCAP_BYTES,
            handler_memcap_bytes: HANDLER_MEMCAP_BYTES,
        }
    }
}

/// Default of [`FlowLimits::handler_memcap_bytes`]. A connection's HTTP
/// state is a few KiB in normal traffic, but up to about 7 MiB when it
/// pipelines [`crate::http::limits::MAX_PENDING_REQUESTS`] requests with
/// large heads and bodies that are never answered; this bounds what
/// 65 536 such flows could hold.
pub const HANDLER_MEMCAP_BYTES: usize = 256 * 1024 * 1024;

/// At the cap, at least this fraction (1/N) of the table is made free at
/// once: by emergency timeouts, then by evicting the least recently seen.
pub const EVICTION_BATCH_DIVISOR: usize = 16;
/// How often (packet time) idle flows are swept.
pub const SWEEP_INTERVAL_NS: u64 = secs(1);

/// Flow table counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FlowStats {
    pub flows_created: u64,
    pub flows_mid_stream: u64,
    pub flows_closed: u64,
    pub flows_reset: u64,
    pub flows_timed_out: u64,
    pub flows_evicted: u64,
    /// Times a new flow found the table full (each one pass over the
    /// table: emergency timeouts, then evictions).
    pub table_full: u64,
    /// Flows whose handler state was dropped because the handlers together
    /// passed [`FlowLimits::handler_memcap_bytes`].
    pub handler_memcap_sheds: u64,
    /// Most bytes the handlers held at once (as they count them).
    pub peak_handler_bytes: u64,
    pub flows_reused: u64,
    pub peak_flows: u64,
    pub segments_without_flow: u64,
    pub roles_by_syn: u64,
    pub roles_by_payload: u64,
    pub roles_by_port: u64,
    pub rst_with_data: u64,
}

/// Canonical (order-independent) key of a TCP connection: the two
/// endpoints as (IPv6 or IPv4-mapped address, port), lower one first.
/// Plain integers hash and compare faster than `SocketAddr`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct FlowKey {
    lo: (u128, u16),
    hi: (u128, u16),
}

impl Hash for FlowKey {
    /// Whole words only, so that SipHash takes them without buffering
    /// partial words: two for IPv4 (both addresses in one, the ports in the
    /// other), five otherwise. The lengths differ, so the two never meet.
    #[inline]
    fn hash<S: Hasher>(&self, state: &mut S) {
        let ports = u64::from(self.lo.1) << 16 | u64::from(self.hi.1);
        let v4 = |ip: u128| (ip >> 32 == 0xffff).then_some(ip as u32);
        if let (Some(lo), Some(hi)) = (v4(self.lo.0), v4(self.hi.0)) {
            state.write_u64(u64::from(lo) << 32 | u64::from(hi));
            state.write_u64(ports);
        } else {
            state.write_u64(self.lo.0 as u64);
            state.write_u64((self.lo.0 >> 64) as u64);
            state.write_u64(self.hi.0 as u64);
            state.write_u64((self.hi.0 >> 64) as u64);
            state.write_u64(ports);
        }
    }
}

/// An endpoint as plain integers: IPv6 (or IPv4-mapped) address and port.
type FlatEndpoint = (u128, u16);

fn flat(ip: IpAddr, port: u16) -> FlatEndpoint {
    let ip = match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    };
    (ip, port)
}

impl FlowKey {
    fn new(a: FlatEndpoint, b: FlatEndpoint) -> Self {
        if a <= b {
            FlowKey { lo: a, hi: b }
        } else {
            FlowKey { lo: b, hi: a }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No payload seen yet.
    Embryonic,
    Established,
    /// Both directions finished or reset; kept for a short while.
    Closed,
}

struct Flow<H> {
    /// Endpoint of side 0 (side 1 is the other), also as integers: a
    /// segment's side is found by comparing those, not socket addresses.
    side0: SocketAddr,
    side0_flat: FlatEndpoint,
    side1: SocketAddr,
    half: [HalfStream; 2],
    /// Which side is the client, once known.
    client: Option<usize>,
    handler: Option<H>,
    /// What `handler` held after this flow's last segment.
    held: usize,
    state: State,
    last_seen: Timestamp,
    mid_stream: bool,
}

/// The flows by key, in a table hashed with [`KeyedState`]. The table maps
/// a key to a slot of `slots`, where the flow lives; `last` remembers the
/// slot of the last key found or inserted. Most packets belong to the same
/// flow as the packet before (60 % on the benchmark capture), and those skip
/// SipHash and the probe. Removing a flow forgets `last` if it pointed
/// there, so a slot reused by another flow is never found under the old key.
struct FlowMap<H> {
    table: HashTable<(FlowKey, usize)>,
    /// `None` where a flow was removed; those slots are listed in `free`.
    /// Never longer than the most flows the table held at once.
    slots: Vec<Option<Box<Flow<H>>>>,
    free: Vec<usize>,
    hasher: KeyedState,
    last: Option<(FlowKey, usize)>,
}

impl<H> FlowMap<H> {
    fn new(hasher: KeyedState) -> Self {
        FlowMap {
            table: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            hasher,
            last: None,
        }
    }

    /// The slot of `key`'s flow.
    #[inline]
    fn slot_of(&mut self, key: &FlowKey) -> Option<usize> {
        if let Some((k, slot)) = self.last {
            if k == *key {
                return Some(slot);
            }
        }
        let hash = self.hasher.hash_one(key);
        let &(_, slot) = self.table.find(hash, |(k, _)| k == key)?;
        self.last = Some((*key, slot));
        Some(slot)
    }

    #[inline]
    fn get_mut(&mut self, key: &FlowKey) -> Option<&mut Flow<H>> {
        let slot = self.slot_of(key)?;
        self.slots.get_mut(slot)?.as_deref_mut()
    }

    fn get(&mut self, key: &FlowKey) -> Option<&Flow<H>> {
        self.get_mut(key).map(|f| &*f)
    }

    /// The flow in `slot`, if one lives there.
    #[inline]
    fn at_slot(&mut self, slot: usize) -> Option<&mut Flow<H>> {
        self.slots.get_mut(slot)?.as_deref_mut()
    }

    /// The slot of the last key found or inserted.
    #[inline]
    fn last_slot(&self) -> Option<usize> {
        self.last.map(|(_, slot)| slot)
    }

    fn contains_key(&mut self, key: &FlowKey) -> bool {
        self.slot_of(key).is_some()
    }

    /// Adds a flow for a key that is not in the map.
    fn insert(&mut self, key: FlowKey, flow: Box<Flow<H>>) -> &mut Flow<H> {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let hasher = self.hasher;
        let hash = hasher.hash_one(key);
        self.table
            .insert_unique(hash, (key, slot), move |(k, _)| hasher.hash_one(k));
        self.last = Some((key, slot));
        let entry = self.slots.get_mut(slot).expect("slot was just allocated");
        entry.insert(flow)
    }

    fn remove(&mut self, key: &FlowKey) -> Option<Box<Flow<H>>> {
        let hash = self.hasher.hash_one(key);
        let entry = self.table.find_entry(hash, |(k, _)| k == key).ok()?;
        let ((_, slot), _) = entry.remove();
        if self.last.is_some_and(|(_, s)| s == slot) {
            self.last = None;
        }
        let flow = self.slots.get_mut(slot)?.take();
        self.free.push(slot);
        flow
    }

    /// In an order that follows the seed: never let it reach the output.
    fn iter(&self) -> impl Iterator<Item = (&FlowKey, &Flow<H>)> + '_ {
        self.table.iter().filter_map(|(k, slot)| {
            let flow = self.slots.get(*slot)?.as_deref()?;
            Some((k, flow))
        })
    }

    fn len(&self) -> usize {
        self.table.len()
    }

    fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

/// Adapts a flow's handler to the reassembler's sink.
struct Sink<'a, H: FlowHandler> {
    handler: Option<&'a mut H>,
    out: &'a mut Vec<H::Event>,
    /// The handler was given something: what it holds may have changed.
    touched: bool,
}

impl<'a, H: FlowHandler> Sink<'a, H> {
    fn new(handler: Option<&'a mut H>, out: &'a mut Vec<H::Event>) -> Self {
        Sink {
            handler,
            out,
            touched: false,
        }
    }
}

impl<H: FlowHandler> StreamSink for Sink<'_, H> {
    fn data(&mut self, dir: Direction, ts: Timestamp, bytes: &[u8]) {
        if let Some(h) = self.handler.as_deref_mut() {
            self.touched = true;
            h.data(dir, ts, bytes, self.out);
        }
    }
    fn gap(&mut self, dir: Direction, ts: Timestamp, len: u64) {
        if let Some(h) = self.handler.as_deref_mut() {
            self.touched = true;
            h.gap(dir, ts, len, self.out);
        }
    }
    fn close(&mut self, dir: Direction, ts: Timestamp) {
        if let Some(h) = self.handler.as_deref_mut() {
            self.touched = true;
            h.close(dir, ts, self.out);
        }
    }
}

/// All tracked connections.
pub struct FlowTable<H: FlowHandler> {
    limits: FlowLimits,
    flows: FlowMap<H>,
    budget: Budget,
    stats: FlowStats,
    reassembly: ReassemblyStats,
    now: Timestamp,
    last_sweep: Timestamp,
    /// Sum of the flows' `held`.
    handler_bytes: usize,
}

impl<H: FlowHandler> FlowTable<H> {
    /// Memory one tracked flow takes besides its buffers (whose own caps
    /// count them): its box with the handler inline, and its share of the
    /// map, counted twice over for the table's and the slot vector's spare
    /// room as they grow by doubling. An estimate for sizing
    /// [`FlowLimits::max_flows`] to a memory budget.
    pub const FLOW_BYTES: usize = std::mem::size_of::<Flow<H>>()
        + 2 * (std::mem::size_of::<(FlowKey, usize)>() + 1)
        + 2 * std::mem::size_of::<Option<Box<Flow<H>>>>()
        + crate::http::limits::ALLOCATION_OVERHEAD_BYTES;

    /// An empty table whose hasher is keyed by `seed`: a secret, random one
    /// wherever packets come from untrusted senders (see [`crate::hash`]).
    /// The seed never changes what the table emits, only how fast.
    pub fn new(limits: FlowLimits, seed: HashSeed) -> Self {
        FlowTable {
            limits,
            flows: FlowMap::new(KeyedState::new(seed)),
            budget: Budget::new(limits.ooo_memcap_bytes),
            stats: FlowStats::default(),
            reassembly: ReassemblyStats::default(),
            now: Timestamp(0),
            last_sweep: Timestamp(0),
            handler_bytes: 0,
        }
    }

    pub fn stats(&self) -> FlowStats {
        self.stats
    }

    pub fn reassembly_stats(&self) -> ReassemblyStats {
        self.reassembly
    }

    /// Out-of-order memory charged across all flows (payload plus
    /// [`crate::reassembly::limits::SEGMENT_OVERHEAD_BYTES`] per segment),
    /// now and at its peak.
    pub fn buffered_bytes(&self) -> (usize, usize) {
        (self.budget.used(), self.budget.peak())
    }

    /// Flows currently tracked.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// What the flows' handlers hold, as they count it.
    pub fn handler_bytes(&self) -> usize {
        self.handler_bytes
    }

    /// Feeds one TCP segment captured at `ts`.
    ///
    /// Afterwards, if the segment gave its flow's handler anything, the
    /// handler tells what it holds now. When
    /// the handlers together pass [`FlowLimits::handler_memcap_bytes`], the
    /// least recently seen flows holding anything are told to
    /// [`FlowHandler::shed`] it, in one pass over the table, until a
    /// sixteenth of the memcap is free again (so the passes cost a bounded
    /// amount per byte held).
    pub fn on_segment(&mut self, ts: Timestamp, seg: &TcpSegment<'_>, out: &mut Vec<H::Event>) {
        if let Some(slot) = self.segment(ts, seg, out) {
            self.account(slot, ts, out);
        }
    }

    /// Updates the handlers' total with what `key`'s flow holds now.
    #[inline]
    fn account(&mut self, slot: usize, ts: Timestamp, out: &mut Vec<H::Event>) {
        let Some(flow) = self.flows.at_slot(slot) else {
            return;
        };
        let held = flow.handler.as_ref().map_or(0, H::held_bytes);
        if held == flow.held {
            return;
        }
        self.handler_bytes = self.handler_bytes - flow.held + held;
        flow.held = held;
        self.stats.peak_handler_bytes =
            self.stats.peak_handler_bytes.max(self.handler_bytes as u64);
        if self.handler_bytes > self.limits.handler_memcap_bytes {
            self.shed(ts, out);
        }
    }

    /// Sheds the least recently seen flows' handler state until a sixteenth
    /// of the memcap is free (see [`Self::on_segment`]).
    #[cold]
    fn shed(&mut self, ts: Timestamp, out: &mut Vec<H::Event>) {
        let cap = self.limits.handler_memcap_bytes;
        let target = cap - cap / EVICTION_BATCH_DIVISOR;
        let mut holders: Vec<(Timestamp, FlowKey)> = self
            .flows
            .iter()
            .filter(|(_, f)| f.held > 0)
            .map(|(k, f)| (f.last_seen, *k))
            .collect();
        leave_order(&mut holders);
        for (_, key) in holders {
            if self.handler_bytes <= target {
                break;
            }
            let Some(flow) = self.flows.get_mut(&key) else {
                continue;
            };
            let Some(h) = flow.handler.as_mut() else {
                continue;
            };
            h.shed(ts, out);
            let held = h.held_bytes();
            self.handler_bytes = self.handler_bytes - flow.held + held;
            flow.held = held;
            self.stats.handler_memcap_sheds += 1;
        }
    }

    /// [`Self::on_segment`] but the handler accounting; returns the slot of
    /// the flow the segment went to when its handler may hold something
    /// else now.
    fn segment(
        &mut self,
        ts: Timestamp,
        seg: &TcpSegment<'_>,
        out: &mut Vec<H::Event>,
    ) -> Option<usize> {
        // Packet time never runs backwards for timeouts.
        self.now = self.now.max(ts);
        if self.now.nanos_since(self.last_sweep) >= SWEEP_INTERVAL_NS {
            self.last_sweep = self.now;
            self.sweep(false, out);
        }
        let src = flat(seg.src, seg.sport);
        let key = FlowKey::new(src, flat(seg.dst, seg.dport));
        let flags = seg.flags;

        if flags.syn() && !flags.ack() {
            let reuse = self.flows.get(&key).is_some_and(|f| {
                let side = usize::from(f.side0_flat != src);
                // A SYN with a new ISN starts a new connection on the same tuple.
                f.half[side].isn().is_some_and(|isn| isn != seg.seq) || f.state == State::Closed
            });
            if reuse {
                self.stats.flows_reused += 1;
                if let Some(mut flow) = self.flows.remove(&key) {
                    self.end_flow(&mut flow, out);
                }
            }
        }
        // Only a SYN or a segment with payload starts tracking a connection.
        let creates = !flags.rst() && (flags.syn() || !seg.payload.is_empty());
        if creates && self.flows.len() >= self.limits.max_flows && !self.flows.contains_key(&key) {
            self.make_room(out);
        }
        let tracked = self.flows.len() as u64;
        let flow = match self.flows.get_mut(&key) {
            Some(flow) => flow,
            None if !creates => {
                self.stats.segments_without_flow += 1;
                return None;
            }
            None => {
                self.stats.flows_created += 1;
                self.stats.peak_flows = self.stats.peak_flows.max(tracked + 1);
                let flow = Box::new(Flow {
                    side0: SocketAddr::new(seg.src, seg.sport),
                    side0_flat: src,
                    side1: SocketAddr::new(seg.dst, seg.dport),
                    half: [HalfStream::default(), HalfStream::default()],
                    client: None,
                    handler: None,
                    held: 0,
                    state: State::Embryonic,
                    last_seen: ts,
                    mid_stream: false,
                });
                self.flows.insert(key, flow)
            }
        };
        flow.last_seen = self.now;
        if flow.state == State::Closed {
            return None;
        }
        let side = usize::from(flow.side0_flat != src);
        let other = 1 - side;

        if flags.syn() {
            flow.half[side].start_at_syn(seg.seq);
            if flow.client.is_none() {
                flow.client = Some(if flags.ack() { other } else { side });
                self.stats.roles_by_syn += 1;
            }
        }
        if flow.client.is_none() && !seg.payload.is_empty() {
            flow.client = Some(match H::classify(seg.payload) {
                Some(is_client) => {
                    self.stats.roles_by_payload += 1;
                    if is_client {
                        side
                    } else {
                        other
                    }
                }
                None => {
                    self.stats.roles_by_port += 1;
                    if server_port_rank(seg.dport) <= server_port_rank(seg.sport) {
                        side
                    } else {
                        other
                    }
                }
            });
        }
        if flow.handler.is_none() {
            if let Some(client) = flow.client {
                let (c, s) = if client == 0 {
                    (flow.side0, flow.side1)
                } else {
                    (flow.side1, flow.side0)
                };
                // Mid-stream: neither direction began with a SYN we saw.
                flow.mid_stream = !flags.syn() && !flow.half[other].is_started();
                if flow.mid_stream {
                    self.stats.flows_mid_stream += 1;
                }
                flow.handler = Some(H::new(
                    Endpoints {
                        client: c,
                        server: s,
                    },
                    flow.mid_stream,
                ));
            }
        }
        if !seg.payload.is_empty() && flow.state == State::Embryonic {
            flow.state = State::Established;
        }
        let dir_of = |s: usize| {
            if Some(s) == flow.client {
                Direction::ToServer
            } else {
                Direction::ToClient
            }
        };
        let (dir, other_dir) = (dir_of(side), dir_of(other));
        let Flow { half, handler, .. } = &mut *flow;
        let mut sink = Sink::new(handler.as_mut(), out);

        if flags.rst() {
            if !seg.payload.is_empty() {
                // RST payload is a diagnostic, never stream data (RFC 9293 §3.5.3).
                self.stats.rst_with_data += 1;
            }
            self.stats.flows_reset += 1;
            let mut cx = Ctx {
                dir,
                budget: &mut self.budget,
                stats: &mut self.reassembly,
                sink: &mut sink,
            };
            half[side].finish(ts, &mut cx);
            cx.dir = other_dir;
            half[other].finish(ts, &mut cx);
            if let Some(h) = handler.as_mut() {
                h.finish(ts, out);
            }
            release(half, handler, &mut self.budget);
            flow.state = State::Closed;
            return self.flows.last_slot();
        }
        let seq = if flags.syn() {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        let mut cx = Ctx {
            dir,
            budget: &mut self.budget,
            stats: &mut self.reassembly,
            sink: &mut sink,
        };
        // The acknowledgement first: the sender had the peer's bytes before it
        // sent this payload, so the peer's stream (and any loss in it) comes
        // first. This keeps a response ahead of the next pipelined request.
        if flags.ack() {
            cx.dir = other_dir;
            half[other].acked(ts, seg.ack, &mut cx);
            cx.dir = dir;
        }
        half[side].segment(ts, seq, seg.payload, flags.fin(), &mut cx);
        // Segments that gave the handler nothing (pure ACKs, bytes held
        // out of order) cannot have changed what it holds.
        let mut touched = sink.touched;
        if half[0].is_closed() && half[1].is_closed() {
            if let Some(h) = handler.as_mut() {
                h.finish(ts, out);
            }
            self.stats.flows_closed += 1;
            release(half, handler, &mut self.budget);
            flow.state = State::Closed;
            touched = true;
        }
        if touched {
            self.flows.last_slot()
        } else {
            None
        }
    }

    /// Expires idle flows as of `now` (packet time), e.g. between files or
    /// when a live capture is quiet.
    pub fn advance(&mut self, now: Timestamp, out: &mut Vec<H::Event>) {
        self.now = self.now.max(now);
        self.sweep(false, out);
    }

    /// Ends every flow (end of input): least recently seen first, ties by
    /// key, whatever the seed.
    pub fn finish(&mut self, out: &mut Vec<H::Event>) {
        let all = self.flows.iter().map(|(k, f)| (f.last_seen, *k)).collect();
        self.remove_in_order(all, usize::MAX, Leave::End, out);
    }

    fn timeout(&self, state: State, emergency: bool) -> u64 {
        match (state, emergency) {
            (State::Embryonic, false) => self.limits.embryonic_timeout_ns,
            (State::Embryonic, true) => self.limits.emergency_embryonic_timeout_ns,
            (State::Established, false) => self.limits.established_timeout_ns,
            (State::Established, true) => self.limits.emergency_established_timeout_ns,
            (State::Closed, false) => self.limits.closed_timeout_ns,
            (State::Closed, true) => 0,
        }
    }

    fn sweep(&mut self, emergency: bool, out: &mut Vec<H::Event>) {
        let now = self.now;
        let expired = self
            .flows
            .iter()
            .filter(|(_, f)| now.nanos_since(f.last_seen) >= self.timeout(f.state, emergency))
            .map(|(k, f)| (f.last_seen, *k))
            .collect();
        self.remove_in_order(expired, usize::MAX, Leave::Timeout, out);
    }

    /// Frees at least a batch of slots in a full table (see the module
    /// docs): flows past their emergency timeouts first, then the least
    /// recently seen.
    fn make_room(&mut self, out: &mut Vec<H::Event>) {
        self.stats.table_full += 1;
        self.sweep(true, out);
        let batch = (self.limits.max_flows / EVICTION_BATCH_DIVISOR).max(1);
        let room = self.limits.max_flows.saturating_sub(self.flows.len());
        if room >= batch || self.flows.is_empty() {
            return;
        }
        let n = (batch - room).min(self.flows.len());
        let mut ages: Vec<Timestamp> = self.flows.iter().map(|(_, f)| f.last_seen).collect();
        let (_, cutoff, _) = ages.select_nth_unstable(n - 1);
        let cutoff = *cutoff;
        let victims = self
            .flows
            .iter()
            .filter(|(_, f)| f.last_seen <= cutoff)
            .map(|(k, f)| (f.last_seen, *k))
            .collect();
        self.remove_in_order(victims, n, Leave::Evicted, out);
    }

    /// Ends the first `limit` of `flows` (last seen, key) in [`leave_order`].
    fn remove_in_order(
        &mut self,
        mut flows: Vec<(Timestamp, FlowKey)>,
        limit: usize,
        why: Leave,
        out: &mut Vec<H::Event>,
    ) {
        leave_order(&mut flows);
        flows.truncate(limit);
        for (_, key) in flows {
            if let Some(mut flow) = self.flows.remove(&key) {
                match why {
                    Leave::End => {}
                    Leave::Timeout if flow.state == State::Closed => {}
                    Leave::Timeout => self.stats.flows_timed_out += 1,
                    Leave::Evicted => self.stats.flows_evicted += 1,
                }
                self.end_flow(&mut flow, out);
            }
        }
    }

    /// Flushes a flow that leaves the table: holes become gaps, pending
    /// messages are flushed, buffers are released.
    fn end_flow(&mut self, flow: &mut Flow<H>, out: &mut Vec<H::Event>) {
        self.handler_bytes -= flow.held;
        flow.held = 0;
        if flow.state != State::Closed {
            let now = self.now;
            let client = flow.client;
            let Flow { half, handler, .. } = &mut *flow;
            let mut sink = Sink::new(handler.as_mut(), out);
            for (side, h) in half.iter_mut().enumerate() {
                let dir = if Some(side) == client {
                    Direction::ToServer
                } else {
                    Direction::ToClient
                };
                let mut cx = Ctx {
                    dir,
                    budget: &mut self.budget,
                    stats: &mut self.reassembly,
                    sink: &mut sink,
                };
                h.finish(now, &mut cx);
            }
            if let Some(h) = handler.as_mut() {
                h.finish(now, out);
            }
        }
        for h in flow.half.iter_mut() {
            h.discard(&mut self.budget);
        }
    }
}

/// Frees what a closed flow no longer needs: its handler (the HTTP parser's
/// buffers and body samples) and any out-of-order bytes. A closed flow
/// stays in the table for [`FlowLimits::closed_timeout_ns`] only to absorb
/// retransmissions and final ACKs, which never reach either again; without
/// this, a busy link kept the buffers of every connection closed in the
/// last ten seconds (all 2 690 of the benchmark capture's, most of the
/// sensor's heap).
fn release<H>(half: &mut [HalfStream; 2], handler: &mut Option<H>, budget: &mut Budget) {
    *handler = None;
    for h in half.iter_mut() {
        h.discard(budget);
    }
}

/// Why flows leave the table together, for the counters.
#[derive(Clone, Copy)]
enum Leave {
    End,
    Timeout,
    Evicted,
}

/// The one order in which flows that leave the table together are ended,
/// and so flush their pending exchanges: least recently seen first (what
/// they flush comes out in time order), ties broken by the canonical key.
/// It depends on the packets only, never on the hasher's seed.
fn leave_order(flows: &mut [(Timestamp, FlowKey)]) {
    flows.sort_unstable();
}

/// Lower is more likely a server port.
fn server_port_rank(port: u16) -> u32 {
    match port {
        80 | 443 | 8080 | 8000 | 8008 | 8443 | 8888 | 3000 | 5000 | 9000 | 9090 => 0,
        p if p < 1024 => 1,
        p if p < 32768 => 2 + u32::from(p),
        p => 100_000 + u32::from(p),
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;
    use std::net::{Ipv4Addr, Ipv6Addr};

    use rustc_hash::FxBuildHasher;

    use super::*;
    use crate::wire::TcpFlags;

    /// Reports which flow finished, and when.
    struct Probe(Endpoints);

    impl FlowHandler for Probe {
        type Event = (SocketAddr, Timestamp);

        fn new(endpoints: Endpoints, _mid_stream: bool) -> Self {
            Probe(endpoints)
        }
        fn classify(first: &[u8]) -> Option<bool> {
            Some(first.starts_with(b"GET"))
        }
        fn data(&mut self, _: Direction, _: Timestamp, _: &[u8], _: &mut Vec<Self::Event>) {}
        fn gap(&mut self, _: Direction, _: Timestamp, _: u64, _: &mut Vec<Self::Event>) {}
        fn close(&mut self, _: Direction, _: Timestamp, _: &mut Vec<Self::Event>) {}
        fn finish(&mut self, ts: Timestamp, out: &mut Vec<Self::Event>) {
            out.push((self.0.client, ts));
        }
    }

    fn request(client: SocketAddr, server: SocketAddr) -> TcpSegment<'static> {
        TcpSegment {
            src: client.ip(),
            dst: server.ip(),
            sport: client.port(),
            dport: server.port(),
            seq: 1000,
            ack: 0,
            flags: TcpFlags(TcpFlags::PSH),
            payload: b"GET / HTTP/1.1\r\n",
        }
    }

    /// A FIN (with an ACK) from `from` to `to`.
    fn fin(from: SocketAddr, to: SocketAddr, seq: u32, ack: u32) -> TcpSegment<'static> {
        TcpSegment {
            src: from.ip(),
            dst: to.ip(),
            sport: from.port(),
            dport: to.port(),
            seq,
            ack,
            flags: TcpFlags(TcpFlags::FIN | TcpFlags::ACK),
            payload: b"",
        }
    }

    /// Finish events: the client and the time.
    type Finished = Vec<(SocketAddr, Timestamp)>;

    const FLOWS: u32 = 600;
    /// Flows are last seen in one of this many distinct seconds (ties on purpose).
    const SECONDS: u32 = 30;

    fn client(i: u32) -> SocketAddr {
        let [_, _, a, b] = i.to_be_bytes();
        SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(10, 1, a, b)),
            20_000 + (i % 7) as u16,
        )
    }

    /// Many concurrent flows with pending requests: some end by timeout,
    /// the rest at the end of input. Returns the finish events of each
    /// phase, and the map's iteration order before the sweep.
    fn run(seed: HashSeed) -> (Finished, Finished, Vec<FlowKey>) {
        let limits = FlowLimits {
            established_timeout_ns: secs(40),
            ..FlowLimits::default()
        };
        let server = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);
        let mut table: FlowTable<Probe> = FlowTable::new(limits, seed);
        let mut out = Vec::new();
        for second in 0..SECONDS {
            // Within a second, flows arrive in an order unrelated to their keys.
            for i in (0..FLOWS).rev().filter(|i| (i * 7) % SECONDS == second) {
                let ts = Timestamp(secs(u64::from(second)));
                table.on_segment(ts, &request(client(i), server), &mut out);
            }
        }
        assert!(out.is_empty(), "no flow ended early");
        assert_eq!(table.len(), FLOWS as usize);
        let map_order = table.flows.iter().map(|(k, _)| *k).collect();
        // Flows last seen at second 20 or before time out (40 s).
        table.advance(Timestamp(secs(60)), &mut out);
        let swept = std::mem::take(&mut out);
        table.finish(&mut out);
        (swept, out, map_order)
    }

    fn last_second(client: SocketAddr) -> u32 {
        let IpAddr::V4(v4) = client.ip() else {
            unreachable!("test clients are IPv4")
        };
        let [_, _, a, b] = v4.octets();
        let i = u32::from(a) << 8 | u32::from(b);
        (i * 7) % SECONDS
    }

    /// A full table whose oldest flow passes its emergency timeout just as
    /// each new flow comes: every pass over the table expires exactly one
    /// flow. Each pass must still leave room for a batch, or a steady
    /// stream of new flows costs a walk over the whole table each.
    #[test]
    fn a_full_table_frees_a_batch_per_pass_when_flows_expire_one_at_a_time() {
        const CAP: usize = 64;
        const NEW: u32 = 1000;
        let limits = FlowLimits {
            max_flows: CAP,
            ..FlowLimits::default()
        };
        // The cap's flows spread evenly over the emergency timeout.
        let step = limits.emergency_established_timeout_ns / CAP as u64;
        let server = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);
        let mut table: FlowTable<Probe> = FlowTable::new(limits, HashSeed::from_bytes([5; 16]));
        let mut out = Vec::new();
        for i in 0..CAP as u32 + NEW {
            let ts = Timestamp(secs(1) + u64::from(i) * step);
            table.on_segment(ts, &request(client(i), server), &mut out);
            assert!(table.len() <= CAP);
        }
        let stats = table.stats();
        let batch = (CAP / EVICTION_BATCH_DIVISOR) as u64;
        assert_eq!(stats.flows_created, u64::from(CAP as u32 + NEW));
        assert!(
            stats.table_full <= u64::from(NEW).div_ceil(batch) + 1,
            "{} passes over the full table for {NEW} new flows",
            stats.table_full
        );
        // Each pass freed one flow by timeout and evicted the rest of a batch.
        assert_eq!(
            stats.flows_timed_out + stats.flows_evicted,
            stats.table_full * batch
        );
        assert!(stats.flows_timed_out > 0 && stats.flows_evicted > 0);
        // Flows left least recently seen first, so those still held are
        // the newest.
        let left: Vec<SocketAddr> = out.iter().map(|&(c, _)| c).collect();
        let oldest: Vec<SocketAddr> = (0..left.len() as u32).map(client).collect();
        assert_eq!(left, oldest);
        assert_eq!(
            left.len() as u64,
            stats.flows_timed_out + stats.flows_evicted
        );
    }

    /// Holds every payload byte it is given until told to shed.
    struct Hoarder {
        client: SocketAddr,
        held: usize,
    }

    impl FlowHandler for Hoarder {
        /// (client, bytes shed).
        type Event = (SocketAddr, usize);

        fn new(endpoints: Endpoints, _mid_stream: bool) -> Self {
            Hoarder {
                client: endpoints.client,
                held: 0,
            }
        }
        fn classify(first: &[u8]) -> Option<bool> {
            Some(first.starts_with(b"GET"))
        }
        fn data(&mut self, _: Direction, _: Timestamp, bytes: &[u8], _: &mut Vec<Self::Event>) {
            self.held += bytes.len();
        }
        fn gap(&mut self, _: Direction, _: Timestamp, _: u64, _: &mut Vec<Self::Event>) {}
        fn close(&mut self, _: Direction, _: Timestamp, _: &mut Vec<Self::Event>) {}
        fn finish(&mut self, _: Timestamp, _: &mut Vec<Self::Event>) {}
        fn held_bytes(&self) -> usize {
            self.held
        }
        fn shed(&mut self, _: Timestamp, out: &mut Vec<Self::Event>) {
            out.push((self.client, self.held));
            self.held = 0;
        }
    }

    #[test]
    fn handlers_past_their_memcap_shed_the_least_recently_seen_first() {
        const CAP: usize = 16 * 1024;
        let limits = FlowLimits {
            handler_memcap_bytes: CAP,
            ..FlowLimits::default()
        };
        let server = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);
        let mut table: FlowTable<Hoarder> = FlowTable::new(limits, HashSeed::from_bytes([9; 16]));
        let mut out = Vec::new();
        let payload = [b'x'; 1000];
        // 40 flows send 1 000 bytes each, one after another, one second apart.
        for i in 0..40u32 {
            let mut seg = request(client(i), server);
            let mut data = b"GET / HTTP/1.1\r\n".to_vec();
            data.extend_from_slice(&payload[..1000 - data.len()]);
            seg.payload = &data;
            table.on_segment(Timestamp(secs(u64::from(i))), &seg, &mut out);
            assert!(
                table.handler_bytes() <= CAP,
                "never above the cap after a segment"
            );
        }
        let stats = table.stats();
        // The peak is the first segment that passed the cap, before the shed.
        assert_eq!(stats.peak_handler_bytes as usize, (CAP / 1000 + 1) * 1000);
        // Each pass sheds down to 15/16 of the cap, oldest first.
        let shed: Vec<SocketAddr> = out.iter().map(|&(c, _)| c).collect();
        let oldest: Vec<SocketAddr> = (0..shed.len() as u32).map(client).collect();
        assert_eq!(shed, oldest);
        assert_eq!(stats.handler_memcap_sheds, shed.len() as u64);
        assert!(out.iter().all(|&(_, n)| n == 1000));
        assert_eq!(table.handler_bytes(), (40 - shed.len()) * 1000);
        // Flows leaving the table take their bytes with them: nothing drifts.
        table.finish(&mut out);
        assert_eq!(table.handler_bytes(), 0);
    }

    /// Each state's idle timeout on packet time (reliability target S4),
    /// and a flow that times out takes its out-of-order bytes with it.
    #[test]
    fn embryonic_closed_and_established_flows_time_out_and_free_their_buffers() {
        let limits = FlowLimits::default();
        let server = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);
        let mut table: FlowTable<Probe> = FlowTable::new(limits, HashSeed::from_bytes([4; 16]));
        let mut out = Vec::new();
        let t0 = Timestamp(secs(1));
        let (embryonic, closed, open) = (client(1), client(2), client(3));
        let mut syn = request(embryonic, server);
        syn.flags = TcpFlags(TcpFlags::SYN);
        syn.payload = b"";
        table.on_segment(t0, &syn, &mut out);
        // A request, then a FIN each way.
        table.on_segment(t0, &request(closed, server), &mut out);
        let end = 1000 + request(closed, server).payload.len() as u32;
        table.on_segment(t0, &fin(closed, server, end, 5000), &mut out);
        table.on_segment(t0, &fin(server, closed, 5000, end + 1), &mut out);
        // A request, then bytes beyond a hole: buffered out of order.
        table.on_segment(t0, &request(open, server), &mut out);
        let mut ahead = request(open, server);
        ahead.seq = 1000 + 4000;
        ahead.payload = b"held until the hole is filled";
        table.on_segment(t0, &ahead, &mut out);
        assert!(table.buffered_bytes().0 > 0);
        assert_eq!(table.len(), 3);
        out.clear();

        let at = |s: u64| Timestamp(t0.0 + secs(s));
        let limits = FlowLimits::default();
        table.advance(at(9), &mut out);
        assert_eq!(table.len(), 3, "nothing is idle long enough yet");
        table.advance(Timestamp(t0.0 + limits.closed_timeout_ns), &mut out);
        assert_eq!(table.len(), 2, "the closed flow is gone");
        assert!(out.is_empty(), "it had finished when it closed");
        table.advance(Timestamp(t0.0 + limits.embryonic_timeout_ns), &mut out);
        assert_eq!(table.len(), 1, "the handshake-only flow is gone");
        table.advance(
            Timestamp(t0.0 + limits.established_timeout_ns - 1),
            &mut out,
        );
        assert_eq!(table.len(), 1);
        assert!(table.buffered_bytes().0 > 0);
        table.advance(Timestamp(t0.0 + limits.established_timeout_ns), &mut out);
        assert!(table.is_empty());
        assert_eq!(
            table.buffered_bytes().0,
            0,
            "its out-of-order bytes were freed"
        );
        assert_eq!(table.handler_bytes(), 0);
        // The two that timed out finished then (the SYN already made a handler).
        assert_eq!(
            out.iter().map(|&(c, _)| c).collect::<Vec<_>>(),
            [embryonic, open]
        );
        assert_eq!(
            table.stats().flows_timed_out,
            2,
            "embryonic and established"
        );
    }

    #[test]
    fn flush_order_does_not_follow_the_seed() {
        let (swept_a, finished_a, map_a) = run(HashSeed::from_bytes([1; 16]));
        let (swept_b, finished_b, map_b) = run(HashSeed::from_bytes([2; 16]));
        // The seeds do change the map's order, so the test means something.
        assert_ne!(map_a, map_b);
        assert_eq!(swept_a, swept_b);
        assert_eq!(finished_a, finished_b);
        assert_eq!(swept_a.len() + finished_a.len(), FLOWS as usize);
        assert_eq!(swept_a.len(), (FLOWS / SECONDS * 21) as usize);
        // Least recently seen first; ties by key (here: the client's address).
        for phase in [&swept_a, &finished_a] {
            let order: Vec<(u32, SocketAddr)> =
                phase.iter().map(|&(c, _)| (last_second(c), c)).collect();
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(order, sorted);
        }
    }

    /// Counts its drops, to see when a flow's handler is freed.
    struct Dropped(std::rc::Rc<std::cell::Cell<u32>>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    thread_local! {
        static DROPS: std::rc::Rc<std::cell::Cell<u32>> = std::rc::Rc::default();
    }

    /// A handler that holds a [`Dropped`] and reports its finish.
    struct Holder(#[expect(dead_code, reason = "held for its Drop")] Dropped);

    impl FlowHandler for Holder {
        type Event = ();

        fn new(_: Endpoints, _: bool) -> Self {
            Holder(Dropped(DROPS.with(std::rc::Rc::clone)))
        }
        fn classify(first: &[u8]) -> Option<bool> {
            Some(first.starts_with(b"GET"))
        }
        fn data(&mut self, _: Direction, _: Timestamp, _: &[u8], _: &mut Vec<()>) {}
        fn gap(&mut self, _: Direction, _: Timestamp, _: u64, _: &mut Vec<()>) {}
        fn close(&mut self, _: Direction, _: Timestamp, _: &mut Vec<()>) {}
        fn finish(&mut self, _: Timestamp, out: &mut Vec<()>) {
            out.push(());
        }
    }

    #[test]
    fn a_closed_flow_frees_its_handler_at_once() {
        let drops = DROPS.with(std::rc::Rc::clone);
        let server = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);
        let mut table: FlowTable<Holder> =
            FlowTable::new(FlowLimits::default(), HashSeed::from_bytes([3; 16]));
        let mut out = Vec::new();
        let ts = Timestamp(secs(1));
        // Flow 0 ends with a FIN each way, flow 1 with a reset, flow 2 stays open.
        for i in 0..3 {
            table.on_segment(ts, &request(client(i), server), &mut out);
        }
        let request_end = 1000 + u32::try_from(request(client(0), server).payload.len()).unwrap();
        table.on_segment(ts, &fin(client(0), server, request_end, 5000), &mut out);
        table.on_segment(ts, &fin(server, client(0), 5000, request_end + 1), &mut out);
        let mut rst = request(client(1), server);
        rst.flags = TcpFlags(TcpFlags::RST);
        rst.payload = b"";
        table.on_segment(ts, &rst, &mut out);
        assert_eq!(out.len(), 2, "two flows finished");
        assert_eq!(drops.get(), 2, "and their handlers are gone");
        // Closed flows stay in the table (for late retransmissions)...
        assert_eq!(table.len(), 3);
        // ...and a late segment on one neither revives nor re-finishes it.
        table.on_segment(ts, &request(client(0), server), &mut out);
        assert_eq!((out.len(), drops.get()), (2, 2));
        table.finish(&mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(drops.get(), 3);
    }

    /// IPv6 clients whose flow keys all have the same Fx hash: the low and
    /// high words of the address are fed to Fx as `h = (h + w) * K`, so
    /// raising the low word by one and lowering the high word by `K`
    /// leaves the hash unchanged. The attack this module is defended against.
    fn fx_colliding_client(i: u64) -> SocketAddr {
        const FX_K: u64 = 0xf135_7aea_2e62_a9c5;
        let low = 0x1000 + i;
        let high = 0x2001_0db8_0000_0000u64.wrapping_sub(i.wrapping_mul(FX_K));
        let addr = u128::from(high) << 64 | u128::from(low);
        SocketAddr::new(IpAddr::V6(Ipv6Addr::from(addr)), 40_000)
    }

    #[test]
    fn tuples_colliding_under_fx_spread_under_the_keyed_hasher() {
        const N: u64 = 2048;
        let server = SocketAddr::new(IpAddr::V6(Ipv6Addr::from(u128::MAX)), 80);
        let keys: Vec<FlowKey> = (0..N)
            .map(|i| {
                let c = fx_colliding_client(i);
                FlowKey::new(flat(c.ip(), c.port()), flat(server.ip(), server.port()))
            })
            .collect();
        let fx: Vec<u64> = keys.iter().map(|k| FxBuildHasher.hash_one(k)).collect();
        assert!(fx.iter().all(|&h| h == fx[0]), "all collide under Fx");

        let seed = HashSeed::from_bytes(*b"fixed test seed!");
        let keyed = KeyedState::new(seed);
        let mut hashes: Vec<u64> = keys.iter().map(|k| keyed.hash_one(k)).collect();
        // Buckets of a table of 4096 (index: the low bits) stay near their
        // expected load of 0.5; under Fx all 2048 share one probe sequence.
        let mut load = vec![0u32; 4096];
        for h in &hashes {
            load[(h & 4095) as usize] += 1;
        }
        assert!(
            load.iter().all(|&l| l <= 8),
            "max load {:?}",
            load.iter().max()
        );
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), N as usize);

        // And the table, which hashes with exactly that hasher, keeps them apart.
        let mut table: FlowTable<Probe> = FlowTable::new(FlowLimits::default(), seed);
        assert_eq!(
            table.flows.hasher.hash_one(keys[0]),
            keyed.hash_one(keys[0])
        );
        let mut out = Vec::new();
        for round in 0..2 {
            for i in 0..N {
                let ts = Timestamp(secs(1) + round);
                table.on_segment(ts, &request(fx_colliding_client(i), server), &mut out);
            }
        }
        assert_eq!(table.len(), N as usize);
        assert_eq!(table.stats().flows_created, N);
        table.finish(&mut out);
        assert_eq!(out.len(), N as usize);
    }

    fn lone_flow(side0: SocketAddr) -> Box<Flow<Probe>> {
        Box::new(Flow {
            side0,
            side0_flat: flat(side0.ip(), side0.port()),
            side1: side0,
            half: [HalfStream::default(), HalfStream::default()],
            client: None,
            handler: None,
            held: 0,
            state: State::Embryonic,
            last_seen: Timestamp(0),
            mid_stream: false,
        })
    }

    #[test]
    fn last_flow_is_forgotten_when_its_slot_is_freed_or_reused() {
        let server = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);
        let (a, b) = (client(1), client(2));
        let key =
            |c: SocketAddr| FlowKey::new(flat(c.ip(), c.port()), flat(server.ip(), server.port()));
        let mut map: FlowMap<Probe> = FlowMap::new(KeyedState::new(HashSeed::from_bytes([3; 16])));
        map.insert(key(a), lone_flow(a));
        assert_eq!(map.get(&key(a)).map(|f| f.side0), Some(a));
        assert_eq!(map.last.map(|(k, _)| k), Some(key(a)));
        assert_eq!(map.remove(&key(a)).map(|f| f.side0), Some(a));
        assert!(map.last.is_none());
        assert!(map.get(&key(a)).is_none());
        // B takes A's slot: A must not be found there through a stale cache.
        map.insert(key(b), lone_flow(b));
        assert_eq!(map.slots.len(), 1);
        assert!(!map.contains_key(&key(a)));
        assert_eq!(map.get(&key(b)).map(|f| f.side0), Some(b));
        // Removing another flow keeps the cache of this one.
        map.insert(key(a), lone_flow(a));
        assert!(map.get(&key(b)).is_some());
        map.remove(&key(a));
        assert_eq!(map.last.map(|(k, _)| k), Some(key(b)));
        assert_eq!(map.get(&key(b)).map(|f| f.side0), Some(b));
        assert_eq!(map.iter().count(), 1);
    }

    #[test]
    fn evicted_and_reused_flows_are_not_found_through_the_last_flow() {
        let server = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);
        let limits = FlowLimits {
            max_flows: 2,
            ..FlowLimits::default()
        };
        let mut table: FlowTable<Probe> = FlowTable::new(limits, HashSeed::from_bytes([4; 16]));
        let mut out = Vec::new();
        let (a, b, c) = (client(1), client(2), client(3));
        table.on_segment(Timestamp(1), &request(a, server), &mut out);
        table.on_segment(Timestamp(2), &request(b, server), &mut out);
        // C evicts A (least recently seen) and reuses its slot.
        table.on_segment(Timestamp(3), &request(c, server), &mut out);
        assert_eq!(table.stats().flows_evicted, 1);
        assert_eq!(out, vec![(a, Timestamp(3))]);
        // A bare ACK of A creates nothing and must not land in C's flow.
        let ack = TcpSegment {
            flags: TcpFlags(TcpFlags::ACK),
            payload: b"",
            ..request(a, server)
        };
        table.on_segment(Timestamp(4), &ack, &mut out);
        assert_eq!(table.stats().segments_without_flow, 1);
        assert_eq!(table.len(), 2);
        // A SYN with a new ISN on C's tuple replaces C's flow.
        let syn = TcpSegment {
            flags: TcpFlags(TcpFlags::SYN),
            seq: 777,
            payload: b"",
            ..request(c, server)
        };
        table.on_segment(Timestamp(5), &syn, &mut out);
        assert_eq!(out.last(), Some(&(c, Timestamp(5))));
        assert_eq!(table.stats().flows_reused, 1);
        assert_eq!(table.len(), 2);
        out.clear();
        table.finish(&mut out);
        let mut ended: Vec<SocketAddr> = out.iter().map(|(c, _)| *c).collect();
        ended.sort();
        assert_eq!(ended, vec![b, c]);
    }
}
