//! TCP stream reassembly for one direction of a flow, sans-IO.
//!
//! ```text
//!   stream offset 0                delivered            ooo buffer (bounded)
//!        │──── handed to the sink ────│ hole │ seg │ hole │ seg │
//!                                      ▲
//!                                      next expected byte = base + delivered
//! ```
//!
//! A [`HalfStream`] turns segments (in any order, with retransmissions and
//! overlaps) into an in-order sequence of [`StreamSink`] calls: `data`,
//! `gap` for bytes that will never arrive, and `close`. Policies:
//!
//! - **First wins.** Bytes already delivered or buffered are never replaced.
//!   A retransmission whose bytes differ from what was delivered is counted
//!   (`retransmit_different_data`) when it repeats a recently delivered
//!   segment's boundaries (the last [`limits::RETRANSMIT_HISTORY`], compared
//!   by a checksum);
//!   overlaps with buffered out-of-order data are compared byte by byte.
//! - **Gaps.** Missing bytes become a `gap` when the peer acknowledges past
//!   them (they were sent and will not be resent: the capture lost them),
//!   when the out-of-order buffer hits a cap (skip ahead to buffered data),
//!   or when the flow ends.
//! - **Bounded.** Per direction at most [`limits::OOO_MAX_SEGMENTS`]
//!   segments charged at most [`limits::OOO_MAX_BYTES`], and all flows
//!   together at most the [`Budget`] cap ([`limits::OOO_MEMCAP_BYTES`] by
//!   default). A segment is charged its payload plus
//!   [`limits::SEGMENT_OVERHEAD_BYTES`] (its entry and allocation), so
//!   many tiny segments cannot hold far more memory than the caps say.

pub mod limits;
mod seq;

use std::collections::BTreeMap;

pub use seq::SeqNumber;

use crate::flow::Direction;
use crate::time::Timestamp;
use limits::{
    MAX_SEQ_JUMP, OOO_MAX_BYTES, OOO_MAX_SEGMENTS, RETRANSMIT_HISTORY, SEGMENT_OVERHEAD_BYTES,
};

/// Receives the reassembled stream of one flow.
pub trait StreamSink {
    /// In-order bytes of `dir`, carried by a packet captured at `ts`.
    fn data(&mut self, dir: Direction, ts: Timestamp, bytes: &[u8]);
    /// `len` bytes of `dir` are missing and will not arrive.
    fn gap(&mut self, dir: Direction, ts: Timestamp, len: u64);
    /// `dir` is finished (FIN reached, RST, or the flow ended).
    fn close(&mut self, dir: Direction, ts: Timestamp);
}

/// Reassembly counters, summed over all flows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReassemblyStats {
    pub payload_segments: u64,
    pub payload_bytes: u64,
    pub out_of_order_segments: u64,
    pub retransmitted_segments: u64,
    pub retransmitted_bytes: u64,
    pub retransmit_different_data: u64,
    pub overlapping_bytes: u64,
    pub overlapping_bytes_differing: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub ooo_overflow: u64,
    pub memcap_skips: u64,
    pub bogus_sequence: u64,
    pub data_after_close: u64,
}

/// Memory charged for out-of-order segments across all flows, against a
/// cap: each buffered segment's payload plus
/// [`limits::SEGMENT_OVERHEAD_BYTES`], given back in full when the segment
/// leaves the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    used: usize,
    cap: usize,
    peak: usize,
}

impl Budget {
    pub const fn new(cap: usize) -> Self {
        Budget {
            used: 0,
            cap,
            peak: 0,
        }
    }

    /// Bytes charged now.
    pub const fn used(&self) -> usize {
        self.used
    }

    /// Highest `used` ever reached.
    pub const fn peak(&self) -> usize {
        self.peak
    }

    fn take(&mut self, n: usize) -> bool {
        if self.used + n > self.cap {
            return false;
        }
        self.used += n;
        self.peak = self.peak.max(self.used);
        true
    }

    fn give(&mut self, n: usize) {
        self.used -= n;
    }
}

/// What a [`HalfStream`] call needs besides its own state.
pub struct Ctx<'a, S: StreamSink> {
    pub dir: Direction,
    pub budget: &'a mut Budget,
    pub stats: &'a mut ReassemblyStats,
    pub sink: &'a mut S,
}

#[derive(Clone, Copy, Default)]
struct Delivered {
    offset: u64,
    len: u32,
    hash: u64,
}

/// Reassembly state of one direction.
#[derive(Default)]
pub struct HalfStream {
    started: bool,
    /// Sequence number of stream offset 0.
    base: u32,
    /// Stream offset of the next byte expected (everything before it was
    /// delivered or reported as a gap).
    delivered: u64,
    /// Stream offset of the FIN, once seen.
    fin: Option<u64>,
    closed: bool,
    /// Buffered segments by stream offset; they never overlap.
    ooo: BTreeMap<u64, (Timestamp, Vec<u8>)>,
    /// Payload bytes in `ooo`.
    ooo_bytes: usize,
    history: [Delivered; RETRANSMIT_HISTORY],
    history_at: usize,
}

impl HalfStream {
    /// True once the stream's starting sequence number is known.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// True once the stream is finished.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The sequence number of the next expected byte.
    pub fn next_seq(&self) -> SeqNumber {
        SeqNumber(self.base).add(self.delivered)
    }

    /// Payload bytes held in the out-of-order buffer.
    pub fn buffered(&self) -> usize {
        self.ooo_bytes
    }

    /// What the out-of-order buffer is charged against the caps: payload
    /// plus [`SEGMENT_OVERHEAD_BYTES`] per segment. Every segment is
    /// charged the same way when it enters and leaves, so this is exactly
    /// this direction's share of the [`Budget`].
    fn charged(&self) -> usize {
        self.ooo_bytes + self.ooo.len() * SEGMENT_OVERHEAD_BYTES
    }

    /// Starts the stream at a SYN's initial sequence number (data begins at `isn + 1`).
    pub fn start_at_syn(&mut self, isn: u32) {
        if !self.started {
            self.started = true;
            self.base = isn.wrapping_add(1);
        }
    }

    /// The initial sequence number implied by the stream start (`base - 1`).
    pub fn isn(&self) -> Option<u32> {
        self.started.then(|| self.base.wrapping_sub(1))
    }

    /// One segment of this direction: its sequence number, payload and FIN flag.
    pub fn segment<S: StreamSink>(
        &mut self,
        ts: Timestamp,
        seq: u32,
        payload: &[u8],
        fin: bool,
        cx: &mut Ctx<'_, S>,
    ) {
        if !self.started {
            if payload.is_empty() && !fin {
                return;
            }
            // Mid-stream pickup: the first byte we see is offset 0.
            self.started = true;
            self.base = seq;
        }
        let rel = SeqNumber(seq).diff(self.next_seq());
        if rel.unsigned_abs() > u64::from(MAX_SEQ_JUMP) {
            cx.stats.bogus_sequence += 1;
            return;
        }
        let Some(off) = self.delivered.checked_add_signed(rel) else {
            // Before the stream start (e.g. a stale segment of an older
            // incarnation): nothing to deliver.
            cx.stats.bogus_sequence += 1;
            return;
        };
        let end = off + payload.len() as u64;
        if self.closed {
            if !payload.is_empty() && end > self.delivered {
                cx.stats.data_after_close += 1;
            }
            return;
        }
        if fin && self.fin.is_none() {
            self.fin = Some(end);
        }
        if !payload.is_empty() {
            cx.stats.payload_segments += 1;
            cx.stats.payload_bytes += payload.len() as u64;
            if end <= self.delivered {
                self.retransmission(off, payload, cx);
            } else if off <= self.delivered {
                let skip = (self.delivered - off) as usize;
                if skip > 0 {
                    cx.stats.overlapping_bytes += skip as u64;
                }
                self.deliver(ts, off + skip as u64, &payload[skip..], cx);
                self.drain(cx);
            } else {
                cx.stats.out_of_order_segments += 1;
                self.buffer(ts, off, payload, cx);
            }
        }
        self.maybe_close(ts, cx);
    }

    /// The peer acknowledged everything before `ack`: bytes of ours it
    /// acknowledged that we never saw were lost by the capture.
    pub fn acked<S: StreamSink>(&mut self, ts: Timestamp, ack: u32, cx: &mut Ctx<'_, S>) {
        if !self.started || self.closed {
            return;
        }
        let rel = SeqNumber(ack).diff(self.next_seq());
        if rel <= 0 || rel > i64::from(MAX_SEQ_JUMP) {
            return;
        }
        let mut target = self.delivered + rel as u64;
        if let Some(fin) = self.fin {
            // The FIN occupies one sequence number of its own.
            target = target.min(fin);
        }
        self.skip_to(ts, target, cx);
        self.maybe_close(ts, cx);
    }

    /// The flow is over: report holes as gaps, deliver what is buffered, close.
    pub fn finish<S: StreamSink>(&mut self, ts: Timestamp, cx: &mut Ctx<'_, S>) {
        if self.closed {
            return;
        }
        if self.started {
            let last = self
                .ooo
                .last_key_value()
                .map(|(off, (_, d))| off + d.len() as u64);
            if let Some(end) = last {
                self.skip_to(ts, end, cx);
            }
            if let Some(fin) = self.fin {
                self.skip_to(ts, fin, cx);
            }
        }
        self.closed = true;
        cx.sink.close(cx.dir, ts);
    }

    fn maybe_close<S: StreamSink>(&mut self, ts: Timestamp, cx: &mut Ctx<'_, S>) {
        if self.fin.is_some_and(|fin| self.delivered >= fin) && !self.closed {
            self.closed = true;
            self.release_all(cx);
            cx.sink.close(cx.dir, ts);
        }
    }

    /// Moves `delivered` up to `target`, reporting holes as gaps and
    /// delivering buffered data on the way.
    fn skip_to<S: StreamSink>(&mut self, ts: Timestamp, target: u64, cx: &mut Ctx<'_, S>) {
        while self.delivered < target {
            match self.ooo.first_key_value().map(|(off, _)| *off) {
                Some(off) if off <= target => {
                    if off > self.delivered {
                        self.gap(ts, off - self.delivered, cx);
                    }
                    self.drain(cx);
                }
                _ => {
                    self.gap(ts, target - self.delivered, cx);
                }
            }
        }
    }

    fn gap<S: StreamSink>(&mut self, ts: Timestamp, len: u64, cx: &mut Ctx<'_, S>) {
        cx.stats.gaps += 1;
        cx.stats.gap_bytes += len;
        self.delivered += len;
        cx.sink.gap(cx.dir, ts, len);
    }

    fn deliver<S: StreamSink>(
        &mut self,
        ts: Timestamp,
        off: u64,
        bytes: &[u8],
        cx: &mut Ctx<'_, S>,
    ) {
        debug_assert_eq!(off, self.delivered);
        self.history[self.history_at] = Delivered {
            offset: off,
            len: bytes.len() as u32,
            hash: checksum(bytes),
        };
        self.history_at = (self.history_at + 1) % RETRANSMIT_HISTORY;
        self.delivered += bytes.len() as u64;
        cx.sink.data(cx.dir, ts, bytes);
    }

    fn retransmission<S: StreamSink>(&mut self, off: u64, payload: &[u8], cx: &mut Ctx<'_, S>) {
        cx.stats.retransmitted_segments += 1;
        cx.stats.retransmitted_bytes += payload.len() as u64;
        let len = payload.len() as u32;
        if let Some(h) = self
            .history
            .iter()
            .find(|h| h.offset == off && h.len == len && len > 0)
        {
            if h.hash != checksum(payload) {
                cx.stats.retransmit_different_data += 1;
            }
        }
    }

    /// Delivers buffered segments that have become contiguous.
    fn drain<S: StreamSink>(&mut self, cx: &mut Ctx<'_, S>) {
        while let Some(entry) = self.ooo.first_entry() {
            let off = *entry.key();
            if off > self.delivered {
                break;
            }
            let (ts, data) = entry.remove();
            self.ooo_bytes -= data.len();
            cx.budget.give(data.len() + SEGMENT_OVERHEAD_BYTES);
            let end = off + data.len() as u64;
            if end <= self.delivered {
                continue;
            }
            let skip = (self.delivered - off) as usize;
            self.deliver(ts, self.delivered, &data[skip..], cx);
        }
    }

    /// Buffers an out-of-order segment (first wins against buffered bytes),
    /// skipping ahead when a cap would be exceeded.
    fn buffer<S: StreamSink>(
        &mut self,
        ts: Timestamp,
        off: u64,
        payload: &[u8],
        cx: &mut Ctx<'_, S>,
    ) {
        let overlap = self.overlap(off, payload);
        cx.stats.overlapping_bytes += overlap.overlapping;
        cx.stats.overlapping_bytes_differing += overlap.differing;
        for (s, e) in overlap.pieces {
            let len = (e - s) as usize;
            let bytes = &payload[(s - off) as usize..(e - off) as usize];
            loop {
                if s <= self.delivered {
                    // Skipping ahead made this piece contiguous (or old).
                    if e > self.delivered {
                        let skip = (self.delivered - s) as usize;
                        self.deliver(ts, self.delivered, &bytes[skip..], cx);
                        self.drain(cx);
                    }
                    break;
                }
                let charge = len + SEGMENT_OVERHEAD_BYTES;
                let fits_here =
                    self.ooo.len() < OOO_MAX_SEGMENTS && self.charged() + charge <= OOO_MAX_BYTES;
                if fits_here && cx.budget.take(charge) {
                    let replaced = self.ooo.insert(s, (ts, bytes.to_vec()));
                    debug_assert!(
                        replaced.is_none(),
                        "pieces never start at a buffered offset"
                    );
                    self.ooo_bytes += len;
                    break;
                }
                if fits_here {
                    cx.stats.memcap_skips += 1;
                } else {
                    cx.stats.ooo_overflow += 1;
                }
                // Skip to the first buffered segment (or to this piece) and retry.
                let target = self.ooo.first_key_value().map_or(s, |(o, _)| (*o).min(s));
                self.skip_to(ts, target, cx);
            }
        }
    }

    /// Compares `[off, off + payload.len())` with the buffered segments.
    ///
    /// Buffered segments never overlap one another, so every segment that
    /// starts before the last one starting at or before `off` also ends by
    /// then, before `off`: the scan starts at that one (or at `off`) and
    /// visits only the segments the new one can touch, instead of every
    /// buffered segment from the lowest offset up.
    fn overlap(&self, off: u64, payload: &[u8]) -> Overlap {
        let from = self.ooo.range(..=off).next_back().map_or(off, |(&s, _)| s);
        self.overlap_from(from, off, payload)
    }

    /// [`Self::overlap`], visiting the buffered segments from offset `from`
    /// up (0: all of them).
    fn overlap_from(&self, from: u64, off: u64, payload: &[u8]) -> Overlap {
        let end = off + payload.len() as u64;
        let mut overlap = Overlap::default();
        let mut cursor = off;
        for (&s, (_, d)) in self.ooo.range(from..end) {
            let e = s + d.len() as u64;
            if e <= off {
                continue;
            }
            if cursor < s {
                overlap.pieces.push((cursor, s));
            }
            let (os, oe) = (s.max(off), e.min(end));
            overlap.overlapping += oe - os;
            let kept = &d[(os - s) as usize..(oe - s) as usize];
            let new = &payload[(os - off) as usize..(oe - off) as usize];
            if kept != new {
                let differing = kept.iter().zip(new).filter(|(a, b)| a != b).count();
                overlap.differing += differing as u64;
            }
            cursor = cursor.max(oe);
        }
        if cursor < end {
            overlap.pieces.push((cursor, end));
        }
        overlap
    }

    fn release_all<S: StreamSink>(&mut self, cx: &mut Ctx<'_, S>) {
        self.discard(cx.budget);
    }

    /// Releases buffers without delivering (the flow is being dropped).
    pub fn discard(&mut self, budget: &mut Budget) {
        budget.give(self.charged());
        self.ooo_bytes = 0;
        self.ooo.clear();
    }
}

/// How a new segment meets the buffered ones.
#[derive(Debug, Default, PartialEq, Eq)]
struct Overlap {
    /// The parts of the segment not buffered yet, as `[start, end)` stream
    /// offsets in increasing order.
    pieces: Vec<(u64, u64)>,
    /// Bytes of the segment already buffered.
    overlapping: u64,
    /// Of those, the ones whose buffered value differs.
    differing: u64,
}

/// A cheap checksum of a segment, to tell a faithful retransmission from
/// one with different bytes: four lanes of wrapping 64-bit sums over
/// 32-byte blocks (vectorises to memory speed), mixed with the length. Any
/// single changed 8-byte word changes it; only changes that cancel exactly
/// within a lane go unseen.
fn checksum(bytes: &[u8]) -> u64 {
    let word = |b: &[u8]| <[u8; 8]>::try_from(b).map_or(0, u64::from_le_bytes);
    let mut lanes = [0u64; 4];
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        for (lane, w) in lanes.iter_mut().zip(block.chunks_exact(8)) {
            *lane = lane.wrapping_add(word(w));
        }
    }
    let mut tail = [0u8; 32];
    tail[..blocks.remainder().len()].copy_from_slice(blocks.remainder());
    for (lane, w) in lanes.iter_mut().zip(tail.chunks_exact(8)) {
        *lane = lane.wrapping_add(word(w));
    }
    let mixed =
        lanes[0] ^ lanes[1].rotate_left(16) ^ lanes[2].rotate_left(32) ^ lanes[3].rotate_left(48);
    (mixed ^ bytes.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests;
