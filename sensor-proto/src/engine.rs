//! The whole sans-IO pipeline: frames in, exchange records out.
//!
//! [`Engine`] owns the defragmenter and the flow table, runs the HTTP parser
//! on every flow and turns finished exchanges into [`ExchangeRecord`]s. It
//! is driven by whichever capture backend the caller has:
//!
//! ```text
//! loop { engine.on_packet(ts, link, frame, &mut records); write(records.drain(..)) }
//! engine.finish(&mut records);
//! ```

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use crate::flow::{Direction, Endpoints, FlowHandler, FlowLimits, FlowStats, FlowTable};
use crate::hash::HashSeed;
use crate::http::{self, HttpAnomaly, HttpConnection, HttpEvent};
use crate::reassembly::ReassemblyStats;
use crate::record::{ExchangeRecord, FingerprintKey, FlowContext, RecordBuilder, ShapeStats};
use crate::time::Timestamp;
use crate::wire::{
    self, Decoded, DefragLimits, DefragOutcome, DefragStats, Defragmenter, LinkType, WireErrorKind,
};

/// Everything the engine needs to start.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub flows: FlowLimits,
    pub defrag: DefragLimits,
    /// Key of the principal fingerprints.
    pub fingerprint_key: FingerprintKey,
    /// Key of the hashers of the flow table and the fragment tracker, which
    /// hash wire-controlled tuples (see [`crate::hash`]). Never changes the
    /// records. [`EngineConfig::new`] derives it from the fingerprint key; the
    /// sensor sets a random one per process.
    pub hash_seed: HashSeed,
    /// Records hold body shapes in their flat form
    /// ([`RecordBuilder::with_flat_shapes`]), for a consumer in the same
    /// process; off, they hold the shapes' JSON, which is what writing
    /// records needs.
    pub flat_shapes: bool,
    /// Records one call of [`Engine::on_packet`], [`Engine::advance`] or
    /// [`Engine::finish`] gives at most; the exchanges past it wait in the
    /// engine's backlog for [`Engine::drain_more`]. [`EngineConfig::new`]
    /// sets no bound. A consumer that writes records out sets one (the
    /// sensor: [`RECORD_BATCH`]) so that a burst, such as the end of input
    /// flushing every pending request of every flow at once, never exists as
    /// records all at once: a record takes several times the memory of the
    /// request it comes from.
    pub max_records_per_call: usize,
}

/// A bound for [`EngineConfig::max_records_per_call`]: 4 096 records are a
/// few MiB.
pub const RECORD_BATCH: usize = 4096;

/// Shares of a memory budget, in percent, that [`EngineConfig::fit_memory`]
/// gives the flows' HTTP state, the flow table, out-of-order segments and
/// IP fragments. The remaining tenth is for what has no cap of its own to
/// lower: the record builder's arenas and key table (a few MiB) and the
/// exchanges on their way out.
pub const MEMORY_SHARES: MemoryShares = MemoryShares {
    http_state: 50,
    flows: 20,
    out_of_order: 15,
    fragments: 5,
};

/// See [`MEMORY_SHARES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryShares {
    pub http_state: u64,
    pub flows: u64,
    pub out_of_order: u64,
    pub fragments: u64,
}

/// Least that [`EngineConfig::fit_memory`] leaves each byte cap, however
/// small the budget: below this the sensor would drop most traffic.
pub const MIN_MEMCAP_BYTES: usize = 1024 * 1024;
/// Least flows [`EngineConfig::fit_memory`] leaves the table.
pub const MIN_FLOWS: usize = 1024;

impl EngineConfig {
    /// Lowers the caps, never raises them, so that the engine's buffers,
    /// all at their caps at once, fit in `budget` bytes (by
    /// [`MEMORY_SHARES`]; see [`Self::memory_at_caps`]), but never below
    /// [`MIN_MEMCAP_BYTES`] or [`MIN_FLOWS`].
    pub fn fit_memory(&mut self, budget: u64) {
        let share = |percent: u64, least: usize| {
            usize::try_from(budget / 100 * percent)
                .unwrap_or(usize::MAX)
                .max(least)
        };
        let s = MEMORY_SHARES;
        let flows = &mut self.flows;
        flows.handler_memcap_bytes = flows
            .handler_memcap_bytes
            .min(share(s.http_state, MIN_MEMCAP_BYTES));
        flows.ooo_memcap_bytes = flows
            .ooo_memcap_bytes
            .min(share(s.out_of_order, MIN_MEMCAP_BYTES));
        flows.max_flows = flows
            .max_flows
            .min((share(s.flows, 0) / FLOW_BYTES).max(MIN_FLOWS));
        self.defrag.max_bytes = self
            .defrag
            .max_bytes
            .min(share(s.fragments, MIN_MEMCAP_BYTES));
    }

    /// What the capped buffers can hold together: the flows' HTTP state,
    /// out-of-order segments and fragments at their memcaps, and a full
    /// flow table ([`FlowTable::FLOW_BYTES`] per flow).
    pub fn memory_at_caps(&self) -> u64 {
        (self.flows.handler_memcap_bytes
            + self.flows.ooo_memcap_bytes
            + self.defrag.max_bytes
            + self.flows.max_flows * FLOW_BYTES) as u64
    }

    pub fn new(fingerprint_key: FingerprintKey) -> Self {
        EngineConfig {
            flows: FlowLimits::default(),
            defrag: DefragLimits::default(),
            hash_seed: fingerprint_key.derive_hash_seed(),
            fingerprint_key,
            flat_shapes: false,
            max_records_per_call: usize::MAX,
        }
    }
}

/// [`FlowTable::FLOW_BYTES`] of the engine's flows.
pub const FLOW_BYTES: usize = FlowTable::<HttpFlow>::FLOW_BYTES;

/// A flow's HTTP parser plus what the record builder needs to know of the flow.
struct HttpFlow {
    ctx: FlowContext,
    conn: HttpConnection,
    scratch: Vec<HttpEvent>,
}

/// An HTTP event and the flow it came from.
struct FlowEvent {
    ctx: FlowContext,
    event: HttpEvent,
}

impl HttpFlow {
    fn emit(&mut self, out: &mut Vec<FlowEvent>) {
        // Most segments finish no exchange: skip the drain and extend.
        if self.scratch.is_empty() {
            return;
        }
        out.extend(self.scratch.drain(..).map(|event| FlowEvent {
            ctx: self.ctx,
            event,
        }));
    }
}

impl FlowHandler for HttpFlow {
    type Event = FlowEvent;

    fn new(endpoints: Endpoints, mid_stream: bool) -> Self {
        HttpFlow {
            ctx: FlowContext {
                client: endpoints.client,
                server: endpoints.server,
                mid_stream,
            },
            conn: HttpConnection::new(),
            scratch: Vec::new(),
        }
    }

    fn classify(first: &[u8]) -> Option<bool> {
        if http::looks_like_request(first) {
            Some(true)
        } else if http::looks_like_response(first) {
            Some(false)
        } else {
            None
        }
    }

    fn data(&mut self, dir: Direction, ts: Timestamp, bytes: &[u8], out: &mut Vec<FlowEvent>) {
        if self.conn.is_tunnel() {
            return;
        }
        self.conn.on_data(dir, ts, bytes, &mut self.scratch);
        self.emit(out);
    }

    fn gap(&mut self, dir: Direction, ts: Timestamp, len: u64, out: &mut Vec<FlowEvent>) {
        if self.conn.is_tunnel() {
            return;
        }
        self.conn.on_gap(dir, ts, len, &mut self.scratch);
        self.emit(out);
    }

    fn close(&mut self, dir: Direction, ts: Timestamp, out: &mut Vec<FlowEvent>) {
        self.conn.on_close(dir, ts, &mut self.scratch);
        self.emit(out);
    }

    fn finish(&mut self, ts: Timestamp, out: &mut Vec<FlowEvent>) {
        self.conn.finish(ts, &mut self.scratch);
        self.emit(out);
    }

    #[inline]
    fn held_bytes(&self) -> usize {
        self.conn.held_bytes() + self.scratch.capacity() * size_of::<HttpEvent>()
    }

    fn shed(&mut self, ts: Timestamp, out: &mut Vec<FlowEvent>) {
        self.conn.shed(ts, &mut self.scratch);
        self.emit(out);
        // Shedding a long queue grew it: give its buffer back.
        self.scratch = Vec::new();
    }
}

/// HTTP-level counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HttpStats {
    /// Exchanges reported: one per request, answered or not.
    pub exchanges: u64,
    pub responses: u64,
    pub unanswered: u64,
    pub with_gap: u64,
    pub truncated: u64,
    pub tunnels: u64,
    /// Anomalies by kind, in exchanges and on connections.
    pub anomalies: BTreeMap<&'static str, u64>,
}

/// A snapshot of every counter, for the end-of-run summary and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
    pub not_tcp: u64,
    /// Frames that could not be decoded, by reason.
    pub dropped: BTreeMap<&'static str, u64>,
    pub defrag: DefragStats,
    pub flows: FlowStats,
    pub reassembly: ReassemblyStats,
    /// Peak out-of-order memory charged across all flows (payload plus
    /// `reassembly::limits::SEGMENT_OVERHEAD_BYTES` per segment).
    pub reassembly_peak_buffered_bytes: u64,
    pub http: HttpStats,
    /// JSON body shapes.
    pub shapes: ShapeStats,
}

/// The sensor core. See the module docs.
pub struct Engine {
    flows: FlowTable<HttpFlow>,
    defrag: Defragmenter,
    key: FingerprintKey,
    records: RecordBuilder,
    events: Vec<FlowEvent>,
    /// Exchanges past [`EngineConfig::max_records_per_call`], oldest first.
    backlog: VecDeque<FlowEvent>,
    max_records: usize,
    packets: u64,
    bytes: u64,
    not_tcp: u64,
    dropped: [u64; WireErrorKind::ALL.len()],
    http: HttpStats,
    anomalies: [u64; HttpAnomaly::ALL.len()],
    last_expiry: Timestamp,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Self {
        Engine {
            flows: FlowTable::new(config.flows, config.hash_seed),
            defrag: Defragmenter::new(config.defrag, config.hash_seed),
            key: config.fingerprint_key,
            records: if config.flat_shapes {
                RecordBuilder::with_flat_shapes()
            } else {
                RecordBuilder::new()
            },
            events: Vec::new(),
            backlog: VecDeque::new(),
            max_records: config.max_records_per_call.max(1),
            packets: 0,
            bytes: 0,
            not_tcp: 0,
            dropped: [0; WireErrorKind::ALL.len()],
            http: HttpStats::default(),
            anomalies: [0; HttpAnomaly::ALL.len()],
            last_expiry: Timestamp(0),
        }
    }

    /// One captured frame. Finished exchanges are appended to `out`.
    pub fn on_packet(
        &mut self,
        ts: Timestamp,
        link: LinkType,
        frame: &[u8],
        out: &mut Vec<ExchangeRecord>,
    ) {
        self.packets += 1;
        self.bytes += frame.len() as u64;
        match wire::decode(link, frame) {
            Ok(Decoded::Tcp(seg)) => self.flows.on_segment(ts, &seg, &mut self.events),
            Ok(Decoded::NotTcp) => self.not_tcp += 1,
            Ok(Decoded::Fragment(frag)) => {
                if let DefragOutcome::Complete {
                    src,
                    dst,
                    protocol,
                    payload,
                } = self.defrag.push(ts, &frag)
                {
                    match wire::decode_transport(src, dst, protocol, &payload) {
                        Ok(Decoded::Tcp(seg)) => self.flows.on_segment(ts, &seg, &mut self.events),
                        Ok(_) => self.not_tcp += 1,
                        Err(e) => self.dropped[e.kind as usize] += 1,
                    }
                }
            }
            Err(e) => self.dropped[e.kind as usize] += 1,
        }
        if ts.nanos_since(self.last_expiry) >= crate::flow::SWEEP_INTERVAL_NS {
            self.last_expiry = ts;
            self.defrag.expire(ts);
        }
        if !self.events.is_empty() {
            self.drain(out);
        }
    }

    /// Expires idle state as of `now` (packet or arrival time) without a packet.
    pub fn advance(&mut self, now: Timestamp, out: &mut Vec<ExchangeRecord>) {
        self.flows.advance(now, &mut self.events);
        self.defrag.expire(now);
        self.drain(out);
    }

    /// End of input: flushes every flow (pending requests come out unanswered).
    pub fn finish(&mut self, out: &mut Vec<ExchangeRecord>) {
        self.flows.finish(&mut self.events);
        self.drain(out);
    }

    /// Flows currently tracked.
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// All counters as of now.
    pub fn counters(&self) -> Counters {
        let named = |names: &mut dyn Iterator<Item = &'static str>, values: &[u64]| {
            names
                .zip(values.iter().copied())
                .filter(|(_, v)| *v > 0)
                .collect::<BTreeMap<_, _>>()
        };
        let mut http = self.http.clone();
        http.anomalies = named(
            &mut HttpAnomaly::ALL.iter().map(|a| a.name()),
            &self.anomalies,
        );
        Counters {
            packets: self.packets,
            bytes: self.bytes,
            not_tcp: self.not_tcp,
            dropped: named(
                &mut WireErrorKind::ALL.iter().map(|k| k.name()),
                &self.dropped,
            ),
            defrag: self.defrag.stats(),
            flows: self.flows.stats(),
            reassembly: self.flows.reassembly_stats(),
            reassembly_peak_buffered_bytes: self.flows.buffered_bytes().1 as u64,
            http,
            shapes: self.records.stats(),
        }
    }

    /// Exchanges waiting in the backlog (see
    /// [`EngineConfig::max_records_per_call`]).
    pub fn backlog(&self) -> usize {
        self.backlog.len()
    }

    /// Turns the next batch of the backlog into records; returns whether
    /// any are left for another call.
    pub fn drain_more(&mut self, out: &mut Vec<ExchangeRecord>) -> bool {
        let n = self.backlog.len().min(self.max_records);
        for _ in 0..n {
            if let Some(event) = self.backlog.pop_front() {
                self.record(event, out);
            }
        }
        !self.backlog.is_empty()
    }

    fn drain(&mut self, out: &mut Vec<ExchangeRecord>) {
        if self.backlog.is_empty() && self.events.len() <= self.max_records {
            let mut events = std::mem::take(&mut self.events);
            for event in events.drain(..) {
                self.record(event, out);
            }
            self.events = events;
            return;
        }
        if self.backlog.is_empty() {
            // Takes the vector's buffer as it is.
            self.backlog = VecDeque::from(std::mem::take(&mut self.events));
        } else {
            self.backlog.extend(self.events.drain(..));
        }
        self.drain_more(out);
    }

    fn record(&mut self, FlowEvent { ctx, event }: FlowEvent, out: &mut Vec<ExchangeRecord>) {
        match event {
            HttpEvent::Exchange(mut ex) => {
                let rec = self.records.build_consuming(&mut ex, &ctx, &self.key);
                let h = &mut self.http;
                h.exchanges += 1;
                h.responses += u64::from(ex.response.is_some());
                h.unanswered += u64::from(rec.flags.unanswered);
                h.with_gap += u64::from(rec.flags.gap);
                h.truncated += u64::from(rec.flags.truncated);
                h.tunnels += u64::from(rec.tunnel.is_some());
                for a in ex.anomalies.iter() {
                    self.anomalies[a as usize] += 1;
                }
                out.push(rec);
            }
            HttpEvent::Anomaly { anomaly, .. } => self.anomalies[anomaly as usize] += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn config() -> EngineConfig {
        EngineConfig::new(FingerprintKey::new([7; 32]))
    }

    #[test]
    fn a_large_budget_leaves_the_defaults() {
        let mut c = config();
        c.fit_memory(u64::MAX);
        assert_eq!(c.flows, FlowLimits::default());
        assert_eq!(c.defrag, DefragLimits::default());
        assert_eq!(
            c.memory_at_caps(),
            (256 + 64 + 32) * MIB + 65_536 * FLOW_BYTES as u64
        );
        // A flow's box holds two half streams and the HTTP parser inline.
        assert!((512..4096).contains(&FLOW_BYTES), "{FLOW_BYTES}");
    }

    #[test]
    fn the_caps_fit_a_smaller_budget_by_their_shares() {
        for budget in [64 * MIB, 300 * MIB, 307 * MIB + 12_345] {
            let mut c = config();
            c.fit_memory(budget);
            let s = MEMORY_SHARES;
            assert!(
                c.memory_at_caps()
                    <= budget / 100 * (s.http_state + s.flows + s.out_of_order + s.fragments)
            );
            assert_eq!(
                c.flows.handler_memcap_bytes as u64,
                budget / 100 * s.http_state
            );
            assert_eq!(
                c.flows.ooo_memcap_bytes as u64,
                budget / 100 * s.out_of_order
            );
            assert_eq!(c.defrag.max_bytes as u64, budget / 100 * s.fragments);
            assert_eq!(
                c.flows.max_flows as u64,
                budget / 100 * s.flows / FLOW_BYTES as u64
            );
            // Only the byte and flow caps change.
            assert_eq!(
                c.flows.established_timeout_ns,
                FlowLimits::default().established_timeout_ns
            );
        }
    }

    #[test]
    fn a_tiny_budget_keeps_the_least_caps() {
        let mut c = config();
        c.fit_memory(MIB);
        assert_eq!(c.flows.handler_memcap_bytes, MIN_MEMCAP_BYTES);
        assert_eq!(c.flows.ooo_memcap_bytes, MIN_MEMCAP_BYTES);
        assert_eq!(c.defrag.max_bytes, MIN_MEMCAP_BYTES);
        assert_eq!(c.flows.max_flows, MIN_FLOWS);
    }
}
