//! One HTTP/1.x connection: two directions of reassembled bytes in,
//! [`HttpEvent`]s out. Sans-IO: no clock, no I/O, no logging.
//!
//! Each direction runs this state machine:
//!
//! ```text
//!            ┌──────────── message done ◄───────────────┐
//!            ▼                                          │
//!   Idle ──(non-CRLF byte)──► Head ──(head parsed)──► Body
//!    ▲  ╲                      │  (probe says no, invalid head,      │ (invalid chunk,
//!    │   ╲ gap                 │   too large, gap)                   │  gap on framing)
//!    │    ╲                    ▼                                     ▼
//!    └────── start line ◄── Resync ◄─────────────────────────────────┘
//! ```
//!
//! `Resync` scans for a start line at a line start (an upper-case method
//! token + SP + target for requests, `HTTP/1.` for responses), skipping
//! everything else without buffering it (`GarbageSkipped`, once per
//! episode). A successful `Upgrade` (101) or `CONNECT` (2xx), or an HTTP/2
//! prior-knowledge preface, stops parsing of both directions for good.
//!
//! Heads are parsed straight from the caller's slice when they are complete
//! in it; only partial heads are copied, up to [`MAX_HEADER_BYTES`], and
//! httparse only runs once the end of the head (`\n\n` or `\n\r\n`) has been
//! seen, so byte-by-byte input stays linear.
//!
//! # Loss and pairing policy
//!
//! - A gap inside a region of known length (a `Content-Length` body, chunk
//!   data, a close-delimited body) is counted as skipped: framing stays in
//!   sync and the exchange gets `gap` plus `GapInRequest`/`GapInResponse`.
//! - Any other request-side loss (gap between messages or in a head, an
//!   invalid or oversized head) is assumed to have swallowed exactly one
//!   request: a placeholder takes its FIFO slot, so the response meant for
//!   it is reported as `ResponseWithoutRequest` instead of being paired
//!   with the next request. Garbage before the first request and a gap in
//!   chunk framing (the request itself is kept, truncated) add no
//!   placeholder.
//! - Any other response-side loss ends the response in progress (kept,
//!   incomplete) and declares every request still waiting unanswered (with
//!   `gap`/`GapInResponse` when caused by a gap): after the resync, only
//!   requests parsed later are paired, so a response is never paired with
//!   the wrong request.
//! - After a `CONNECT` request, client bytes are ignored until its response
//!   decides: 2xx makes a tunnel, anything else resumes HTTP parsing.
//! - Junk skipped while resyncing is not buffered beyond the tail of the
//!   current line ([`MAX_RESYNC_LINE`]), searched once the line ends for a
//!   start line in its middle (a lost body's tail is often followed directly
//!   by the next message).
//! - A head cut short by a gap or a close is still recorded when its start
//!   line is complete: from its complete lines, body unknown, flagged; the
//!   request line is what an inventory needs most.

use std::fmt;
use std::mem;

use crate::flow::Direction;
use crate::http::body::{BodyDecoder, BodyKind, Feed, GapFit};
use crate::http::detect::{
    find_start_in_line, probe_request_loose, probe_request_strict, probe_response_loose,
    probe_response_strict, window, Probe, PROBE_MAX,
};
use crate::http::events::{AnomalySet, HttpAnomaly};
use crate::http::limits::MAX_HEADER_BYTES;
use crate::http::message::{Body, Exchange, Request, Response, ResponseHead, Tunnel};
use crate::http::pairing::{headers_bytes, Pairing};
use crate::http::request::{list_values, parse_request_head, upgrade_kind, BodyPlan, RequestParse};
use crate::http::response::{parse_response_head, ResponseParse};
use crate::time::Timestamp;

/// Capacity of a head buffer kept for reuse between messages.
const KEEP_BUF_CAPACITY: usize = 4096;

/// What the parser reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpEvent {
    /// A request with its response (or `None` if it was never answered).
    Exchange(Box<Exchange>),
    /// Connection-level anomaly not tied to an exchange (e.g. garbage
    /// skipped, response without request).
    Anomaly {
        ts: Timestamp,
        dir: Direction,
        anomaly: HttpAnomaly,
    },
}

/// The HTTP/1.0 and 1.1 parser of one TCP connection. See the module docs.
pub struct HttpConnection {
    sides: [Side; 2],
    pairing: Pairing,
    /// Switched to a tunnel (or HTTP/2): nothing is parsed any more.
    tunnel: bool,
    /// `finish` was called.
    finished: bool,
}

#[derive(Default)]
struct Side {
    phase: Phase,
    /// Partial head (or resync probe tail); never more than `MAX_HEADER_BYTES`.
    buf: Vec<u8>,
    /// Time of the first byte of the head being read.
    head_ts: Timestamp,
    /// A start line was parsed in this direction (else we may have picked
    /// the flow up mid-stream, and probe strictly).
    seen_message: bool,
    /// The last response announced `Connection: close`: more data from the
    /// server is `UnexpectedData`.
    closing: bool,
    /// While resynchronising: the unfinished line seen so far (its last
    /// [`MAX_RESYNC_LINE`] bytes), searched for a start line once it ends.
    line_tail: LineTail,
    /// While `buf` holds bytes a probe could not yet decide on: where the
    /// bytes of each arrival begin in it, with its time (as [`LineTail`]'s
    /// marks), so that they keep their times if they join the line tail.
    probe_marks: Vec<(usize, Timestamp)>,
}

impl Side {
    /// Buffers `bytes`, which arrived at `ts`, for a probe that needs more.
    fn buffer_probe(&mut self, bytes: &[u8], ts: Timestamp) {
        if self.buf.is_empty() {
            self.head_ts = ts;
            self.probe_marks.clear();
        }
        if self.probe_marks.last().is_none_or(|&(_, t)| t != ts) {
            self.probe_marks.push((self.buf.len(), ts));
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Moves what a probe rejected from `buf` to the line tail, each
    /// arrival with its own time.
    fn tail_from_probe(&mut self) {
        if self.probe_marks.first().is_some_and(|&(o, _)| o == 0) {
            for (k, &(from, t)) in self.probe_marks.iter().enumerate() {
                let to = self
                    .probe_marks
                    .get(k + 1)
                    .map_or(self.buf.len(), |&(o, _)| o);
                if let Some(part) = self.buf.get(from..to) {
                    self.line_tail.push(part, t);
                }
            }
        } else {
            self.line_tail.push(&self.buf, self.head_ts);
        }
        self.buf.clear();
        self.probe_marks.clear();
    }
}

/// The unfinished line a resync has seen so far (its last
/// [`MAX_RESYNC_LINE`] bytes), with the time each part of it arrived, so
/// that a start line found inside it gets the time of its own first byte
/// however the line was split into packets.
#[derive(Default)]
struct LineTail {
    bytes: Vec<u8>,
    /// `(offset in bytes, time)` where bytes of a new time begin, in order;
    /// the first is at offset 0 while there are bytes. At most one per
    /// byte, so bounded by [`MAX_RESYNC_LINE`] + 1.
    marks: Vec<(usize, Timestamp)>,
}

impl LineTail {
    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn len(&self) -> usize {
        self.bytes.len()
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.marks.clear();
    }

    /// Heap bytes held.
    fn capacity_bytes(&self) -> usize {
        self.bytes.capacity() + self.marks.capacity() * mem::size_of::<(usize, Timestamp)>()
    }

    /// Appends `more`, which arrived at `ts`, keeping the last
    /// [`MAX_RESYNC_LINE`] bytes.
    fn push(&mut self, more: &[u8], ts: Timestamp) {
        if more.is_empty() {
            return;
        }
        if self.marks.last().is_none_or(|&(_, t)| t != ts) {
            self.marks.push((self.bytes.len(), ts));
        }
        self.bytes.extend_from_slice(more);
        if self.bytes.len() > MAX_RESYNC_LINE {
            let excess = self.bytes.len() - MAX_RESYNC_LINE;
            self.bytes.drain(..excess);
            // Marks now before the start: the last of them moves to 0.
            let gone = self.marks.partition_point(|&(o, _)| o <= excess);
            self.marks.drain(..gone.saturating_sub(1));
            for m in &mut self.marks {
                m.0 = m.0.saturating_sub(excess);
            }
        }
    }

    /// When the byte at `pos` arrived, by the `marks` of [`Self::take`].
    fn ts_at(marks: &[(usize, Timestamp)], pos: usize) -> Option<Timestamp> {
        let i = marks.partition_point(|&(o, _)| o <= pos);
        marks.get(i.checked_sub(1)?).map(|&(_, t)| t)
    }

    /// Takes the bytes and their marks out, leaving the tail empty.
    fn take(&mut self) -> (Vec<u8>, Vec<(usize, Timestamp)>) {
        (mem::take(&mut self.bytes), mem::take(&mut self.marks))
    }
}

/// Longest tail of an unfinished line kept while resynchronising.
const MAX_RESYNC_LINE: usize = 8 * 1024;

#[derive(Debug, Default)]
enum Phase {
    /// Expecting a start line; blank lines are skipped.
    #[default]
    Idle,
    /// Reading a head; `probed` once the start looked like a start line,
    /// `scan_from` is where to resume looking for the end of the head in `buf`.
    Head {
        probed: bool,
        scan_from: usize,
    },
    Body(Box<InBody>),
    Resync {
        at_line_start: bool,
        reported: bool,
    },
    /// Request side after a CONNECT, until its response says tunnel or not.
    ConnectWait,
    /// FIN/RST seen (or parsing stopped): data is ignored.
    Closed,
}

#[derive(Debug)]
struct InBody {
    dec: BodyDecoder,
    msg: InMsg,
    start: Timestamp,
    last_ts: Timestamp,
    gap: bool,
    anomalies: AnomalySet,
}

#[derive(Debug)]
enum InMsg {
    Request {
        tx: u64,
    },
    Response {
        head: ResponseHead,
        /// [`headers_bytes`] of `head`, counted once.
        head_bytes: usize,
        claim: Option<u64>,
    },
}

enum Next {
    Idle,
    ConnectWait,
    Body(BodyKind),
    Resync,
}

impl Default for HttpConnection {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for HttpConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConnection")
            .field("to_server", &self.sides[0].phase)
            .field("to_client", &self.sides[1].phase)
            .field("tunnel", &self.tunnel)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

const fn gap_anomaly(dir: Direction) -> HttpAnomaly {
    match dir {
        Direction::ToServer => HttpAnomaly::GapInRequest,
        Direction::ToClient => HttpAnomaly::GapInResponse,
    }
}

fn has_non_ws(b: &[u8]) -> bool {
    b.iter()
        .any(|&c| !matches!(c, b'\r' | b'\n' | b' ' | b'\t'))
}

/// Finds the end of a head (just past `\n\n` or `\n\r\n`) in `a ++ b`,
/// looking only at the first `limit` bytes and at `\n`s from `a_from` on.
fn find_head_end(a: &[u8], a_from: usize, b: &[u8], limit: usize) -> Option<usize> {
    let total = (a.len() + b.len()).min(limit);
    let at = |i: usize| -> Option<u8> {
        if i >= total {
            None
        } else if i < a.len() {
            a.get(i).copied()
        } else {
            b.get(i - a.len()).copied()
        }
    };
    let end_after = |nl: usize| -> Option<usize> {
        match at(nl + 1)? {
            b'\n' => Some(nl + 2),
            b'\r' if at(nl + 2)? == b'\n' => Some(nl + 3),
            _ => None,
        }
    };
    let a_end = a.len().min(total);
    if let Some(tail) = a.get(a_from.min(a_end)..a_end) {
        for k in memchr::memchr_iter(b'\n', tail) {
            if let Some(e) = end_after(a_from + k) {
                return Some(e);
            }
        }
    }
    let b_end = total.saturating_sub(a.len()).min(b.len());
    memchr::memchr_iter(b'\n', &b[..b_end]).find_map(|k| end_after(a.len() + k))
}

impl HttpConnection {
    pub fn new() -> Self {
        HttpConnection {
            sides: [Side::default(), Side::default()],
            pairing: Pairing::default(),
            tunnel: false,
            finished: false,
        }
    }

    /// True once the connection switched to a tunnel (`101` after an
    /// `Upgrade`, `2xx` to a `CONNECT`) or to HTTP/2 prior knowledge: the
    /// caller may stop feeding.
    pub fn is_tunnel(&self) -> bool {
        self.tunnel
    }

    fn halted(&self) -> bool {
        self.tunnel || self.finished
    }

    /// Reassembled in-order bytes of one direction. `ToServer` carries requests.
    pub fn on_data(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
        out: &mut Vec<HttpEvent>,
    ) {
        let mut pos = 0;
        while pos < data.len() && !self.halted() {
            pos = self.step(dir, ts, data, pos, out);
        }
    }

    /// `len` bytes are missing in `dir` (capture loss) at this point of the stream.
    pub fn on_gap(&mut self, dir: Direction, ts: Timestamp, len: u64, out: &mut Vec<HttpEvent>) {
        if self.halted() || len == 0 {
            return;
        }
        let i = dir.index();
        let ga = gap_anomaly(dir);
        let side = &mut self.sides[i];
        let fit = match &mut side.phase {
            Phase::Closed | Phase::ConnectWait => return,
            Phase::Resync { at_line_start, .. } => {
                *at_line_start = true;
                side.buf.clear();
                side.line_tail.clear();
                out.push(HttpEvent::Anomaly {
                    ts,
                    dir,
                    anomaly: ga,
                });
                if dir == Direction::ToClient {
                    // Responses to requests parsed since the last loss may
                    // have been in the gap too.
                    self.pairing.flush_waiting(true);
                    self.pairing.drain_ready(out);
                }
                return;
            }
            Phase::Idle | Phase::Head { .. } => None,
            Phase::Body(inb) => {
                inb.gap = true;
                inb.anomalies.insert(ga);
                Some(inb.dec.gap(len))
            }
        };
        match fit {
            Some(GapFit::Absorbed) => {}
            Some(GapFit::Done) => self.end_body(dir, true, None, out),
            Some(GapFit::Lost) => {
                self.end_body(dir, false, None, out);
                self.sync_lost(dir, false, true, true, out);
            }
            None if self.salvage_head(dir, ts, ga, out) => {
                // The cut head was recorded (flagged); its response still pairs.
                self.sync_lost(dir, false, true, true, out);
            }
            Some(GapFit::Overflow) | None => {
                if fit.is_some() {
                    self.end_body(dir, true, None, out);
                }
                out.push(HttpEvent::Anomaly {
                    ts,
                    dir,
                    anomaly: ga,
                });
                self.sync_lost(dir, true, true, true, out);
            }
        }
    }

    /// Heap bytes this connection holds: partial heads, resync tails, the
    /// messages being read and the requests waiting for responses. Counted
    /// from the buffers' sizes (see [`crate::http::limits::ALLOCATION_OVERHEAD_BYTES`]).
    pub fn held_bytes(&self) -> usize {
        let sides: usize = self
            .sides
            .iter()
            .map(|s| {
                s.buf.capacity()
                    + s.line_tail.capacity_bytes()
                    + s.probe_marks.capacity() * mem::size_of::<(usize, Timestamp)>()
                    + match &s.phase {
                        Phase::Body(b) => {
                            mem::size_of::<InBody>()
                                + b.dec.held_bytes()
                                + match &b.msg {
                                    InMsg::Request { .. } => 0,
                                    InMsg::Response { head_bytes, .. } => *head_bytes,
                                }
                        }
                        _ => 0,
                    }
            })
            .sum();
        sides + self.pairing.bytes()
    }

    /// Drops everything this connection holds, for the flow table's memcap:
    /// the pending requests come out unanswered (flagged
    /// [`HttpAnomaly::HttpMemcap`], as is the connection), a message being
    /// read is lost, and each direction resumes at its next start line.
    pub fn shed(&mut self, ts: Timestamp, out: &mut Vec<HttpEvent>) {
        if self.halted() {
            return;
        }
        self.pairing.flush_all_with(HttpAnomaly::HttpMemcap, out);
        for dir in [Direction::ToServer, Direction::ToClient] {
            let side = &mut self.sides[dir.index()];
            side.buf = Vec::new();
            side.line_tail = LineTail::default();
            side.probe_marks = Vec::new();
            match side.phase {
                Phase::Closed => continue,
                // Between messages: the next byte starts one.
                Phase::Idle => {}
                // Inside a message (or a line): skip to the next start line.
                // A CONNECT's answer will find no request waiting.
                Phase::ConnectWait | Phase::Head { .. } | Phase::Body(_) | Phase::Resync { .. } => {
                    side.closing = false;
                    side.phase = Phase::Resync {
                        at_line_start: false,
                        reported: true,
                    };
                }
            }
            out.push(HttpEvent::Anomaly {
                ts,
                dir,
                anomaly: HttpAnomaly::HttpMemcap,
            });
        }
    }

    /// FIN or RST seen in `dir`: ends a close-delimited body, truncates a
    /// partial message; a server close leaves waiting requests unanswered.
    pub fn on_close(&mut self, dir: Direction, ts: Timestamp, out: &mut Vec<HttpEvent>) {
        if self.halted() {
            return;
        }
        self.end_side(dir, ts, true, out);
        let side = &mut self.sides[dir.index()];
        side.phase = Phase::Closed;
        side.buf = Vec::new();
        if dir == Direction::ToClient {
            self.pairing.flush_waiting(false);
        }
        self.pairing.drain_ready(out);
    }

    /// The flow is gone: flushes everything pending, including requests
    /// never answered (`response: None`). A close-delimited body still open
    /// is reported incomplete. Later calls are ignored.
    pub fn finish(&mut self, ts: Timestamp, out: &mut Vec<HttpEvent>) {
        if self.finished {
            return;
        }
        if !self.tunnel {
            self.end_side(Direction::ToServer, ts, false, out);
            self.end_side(Direction::ToClient, ts, false, out);
        }
        self.pairing.flush_all(out);
        self.finished = true;
        self.sides = [Side::default(), Side::default()];
    }

    fn step(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
        pos: usize,
        out: &mut Vec<HttpEvent>,
    ) -> usize {
        let side = &mut self.sides[dir.index()];
        match side.phase {
            Phase::Idle => {
                let skip = data[pos..]
                    .iter()
                    .take_while(|&&b| b == b'\r' || b == b'\n')
                    .count();
                if pos + skip < data.len() {
                    if mem::take(&mut side.closing) {
                        out.push(HttpEvent::Anomaly {
                            ts,
                            dir,
                            anomaly: HttpAnomaly::UnexpectedData,
                        });
                    }
                    side.head_ts = ts;
                    side.phase = Phase::Head {
                        probed: false,
                        scan_from: 0,
                    };
                }
                pos + skip
            }
            Phase::Head { probed, scan_from } => {
                self.step_head(dir, ts, data, pos, (probed, scan_from), out)
            }
            Phase::Body(_) => self.step_body(dir, ts, data, pos, out),
            Phase::Resync {
                at_line_start,
                reported,
            } => self.step_resync(dir, ts, data, pos, (at_line_start, reported), out),
            Phase::ConnectWait | Phase::Closed => data.len(),
        }
    }

    fn step_head(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
        pos: usize,
        (mut probed, scan_from): (bool, usize),
        out: &mut Vec<HttpEvent>,
    ) -> usize {
        let i = dir.index();
        let avail = &data[pos..];
        let side = &mut self.sides[i];
        if !probed {
            let mut win = [0u8; PROBE_MAX];
            let n = window(&side.buf, avail, &mut win);
            let probe = match (dir, side.seen_message) {
                (Direction::ToServer, true) => probe_request_loose,
                (Direction::ToServer, false) => probe_request_strict,
                (Direction::ToClient, true) => probe_response_loose,
                (Direction::ToClient, false) => probe_response_strict,
            };
            match probe(&win[..n]) {
                Probe::Yes => probed = true,
                Probe::NeedMore => {
                    side.buffer_probe(avail, ts);
                    return data.len();
                }
                Probe::No => {
                    let reported = has_non_ws(&side.buf);
                    // What was buffered is the start of the line resync searches.
                    side.line_tail.clear();
                    side.tail_from_probe();
                    side.phase = Phase::Resync {
                        at_line_start: false,
                        reported,
                    };
                    if reported {
                        out.push(HttpEvent::Anomaly {
                            ts,
                            dir,
                            anomaly: HttpAnomaly::GarbageSkipped,
                        });
                    }
                    return pos;
                }
            }
        }
        let blen = side.buf.len();
        match find_head_end(&side.buf, scan_from, avail, MAX_HEADER_BYTES) {
            Some(end) => {
                let take = end.saturating_sub(blen).min(avail.len());
                side.phase = Phase::Idle;
                if blen == 0 {
                    self.on_head(dir, ts, &avail[..take], out);
                } else {
                    side.buf.extend_from_slice(&avail[..take]);
                    let mut buf = mem::take(&mut side.buf);
                    self.on_head(dir, ts, &buf, out);
                    buf.clear();
                    let side = &mut self.sides[i];
                    if side.buf.is_empty() && buf.capacity() <= KEEP_BUF_CAPACITY {
                        side.buf = buf;
                    }
                }
                pos + take
            }
            None if blen + avail.len() >= MAX_HEADER_BYTES => {
                side.buf = Vec::new();
                self.head_lost(dir, ts, HttpAnomaly::HeaderSectionTooLarge, false, out);
                pos + (MAX_HEADER_BYTES - blen.min(MAX_HEADER_BYTES))
            }
            None => {
                side.buf.extend_from_slice(avail);
                side.phase = Phase::Head {
                    probed,
                    scan_from: side.buf.len().saturating_sub(2),
                };
                data.len()
            }
        }
    }

    fn step_body(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
        pos: usize,
        out: &mut Vec<HttpEvent>,
    ) -> usize {
        let Phase::Body(inb) = &mut self.sides[dir.index()].phase else {
            return data.len();
        };
        let (n, feed) = inb.dec.feed(&data[pos..]);
        if n > 0 {
            inb.last_ts = ts;
        }
        match feed {
            Feed::More if n == 0 => data.len(),
            Feed::More => pos + n,
            Feed::Done => {
                self.end_body(dir, true, None, out);
                pos + n
            }
            Feed::Invalid(a) => {
                self.end_body(dir, false, Some(a), out);
                self.sync_lost(dir, false, false, false, out);
                pos + n
            }
        }
    }

    fn step_resync(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        data: &[u8],
        pos: usize,
        (mut at_line_start, mut reported): (bool, bool),
        out: &mut Vec<HttpEvent>,
    ) -> usize {
        let probe = match dir {
            Direction::ToServer => probe_request_strict,
            Direction::ToClient => probe_response_strict,
        };
        let side = &mut self.sides[dir.index()];
        let mut garbage = false;
        let mut found = None;
        let mut ts_override = None;
        let mut at = pos;
        if !side.buf.is_empty() {
            let mut win = [0u8; PROBE_MAX];
            let n = window(&side.buf, &data[pos..], &mut win);
            match probe(&win[..n]) {
                Probe::Yes => {
                    side.phase = Phase::Head {
                        probed: true,
                        scan_from: 0,
                    };
                    return pos;
                }
                Probe::NeedMore => {
                    side.buffer_probe(&data[pos..], ts);
                    return data.len();
                }
                Probe::No => {
                    garbage = has_non_ws(&side.buf);
                    // Not a start at the line start; the line is still
                    // searched for one in its middle once it ends.
                    side.tail_from_probe();
                    at_line_start = false;
                }
            }
        }
        loop {
            if at_line_start && at < data.len() {
                match probe(&data[at..]) {
                    Probe::Yes => {
                        found = Some(at);
                        break;
                    }
                    Probe::NeedMore => {
                        side.buffer_probe(&data[at..], ts);
                        at = data.len();
                        break;
                    }
                    Probe::No => {}
                }
            }
            if at >= data.len() {
                break;
            }
            let rest = &data[at..];
            let (n, eol) = match memchr::memchr(b'\n', rest) {
                Some(k) => (k + 1, true),
                None => (rest.len(), false),
            };
            // A start line may also begin mid-line (right after the tail of a
            // lost body). Lines are searched once complete, so the result does
            // not depend on how the stream was split into packets.
            if !eol {
                side.line_tail.push(&rest[..n], ts);
            } else if side.line_tail.is_empty() {
                if let Some(start) = find_start_in_line(&rest[..n], dir == Direction::ToServer) {
                    garbage = true;
                    found = Some(at + start);
                    break;
                }
            } else {
                let tail_len = side.line_tail.len();
                let (mut line, marks) = side.line_tail.take();
                line.extend_from_slice(&rest[..n]);
                let hit = find_start_in_line(&line, dir == Direction::ToServer);
                if let Some(start) = hit {
                    garbage = true;
                    if start < tail_len {
                        // The start line began in an earlier packet: it
                        // starts at the time its first byte came.
                        ts_override = LineTail::ts_at(&marks, start);
                        side.buf.clear();
                        side.buf.extend_from_slice(&line[start..tail_len]);
                        found = Some(at);
                    } else {
                        found = Some(at + (start - tail_len));
                    }
                    break;
                }
            }
            if !reported && !garbage {
                garbage = has_non_ws(&rest[..n]);
            }
            at += n;
            at_line_start = eol;
        }
        if garbage && !reported {
            reported = true;
            out.push(HttpEvent::Anomaly {
                ts,
                dir,
                anomaly: HttpAnomaly::GarbageSkipped,
            });
        }
        match found {
            Some(start) => {
                side.line_tail.clear();
                side.head_ts = ts_override.unwrap_or(ts);
                side.phase = Phase::Head {
                    probed: true,
                    scan_from: 0,
                };
                start
            }
            None => {
                side.phase = Phase::Resync {
                    at_line_start,
                    reported,
                };
                at
            }
        }
    }

    fn on_head(&mut self, dir: Direction, ts: Timestamp, head: &[u8], out: &mut Vec<HttpEvent>) {
        match dir {
            Direction::ToServer => self.on_request_head(ts, head, out),
            Direction::ToClient => self.on_response_head(ts, head, out),
        }
    }

    fn on_request_head(&mut self, ts: Timestamp, head: &[u8], out: &mut Vec<HttpEvent>) {
        let dir = Direction::ToServer;
        let p = match parse_request_head(head) {
            RequestParse::Ok(p) => p,
            RequestParse::Invalid(a) => return self.head_lost(dir, ts, a, true, out),
            RequestParse::H2Preface => {
                out.push(HttpEvent::Anomaly {
                    ts,
                    dir,
                    anomaly: HttpAnomaly::UnsupportedVersion,
                });
                return self.stop(ts, out);
            }
        };
        let side = &mut self.sides[dir.index()];
        side.seen_message = true;
        let start = side.head_ts;
        let is_connect = &*p.head.method == "CONNECT";
        let mut request = Request {
            start,
            end: ts,
            head: p.head,
            body: Body::empty(),
        };
        let next = match p.plan {
            BodyPlan::None | BodyPlan::Close if is_connect => Next::ConnectWait,
            BodyPlan::None | BodyPlan::Close => Next::Idle,
            BodyPlan::Length(0) => {
                request.body = BodyDecoder::new(BodyKind::Length(0)).finish(true);
                Next::Idle
            }
            BodyPlan::Length(n) => Next::Body(BodyKind::Length(n)),
            BodyPlan::Chunked => Next::Body(BodyKind::Chunked),
            BodyPlan::Unframeable => {
                request.body.complete = false;
                Next::Resync
            }
        };
        let req_done = !matches!(next, Next::Body(_));
        let tx = self.pairing.push(Some(request), req_done, p.anomalies, out);
        self.sides[dir.index()].phase = match next {
            Next::Idle => Phase::Idle,
            Next::ConnectWait => Phase::ConnectWait,
            Next::Resync => Phase::Resync {
                at_line_start: true,
                reported: false,
            },
            Next::Body(kind) => Phase::Body(Box::new(InBody {
                dec: BodyDecoder::new(kind),
                msg: InMsg::Request { tx },
                start,
                last_ts: ts,
                gap: false,
                anomalies: AnomalySet::EMPTY,
            })),
        };
        self.pairing.drain_ready(out);
    }

    fn on_response_head(&mut self, ts: Timestamp, head: &[u8], out: &mut Vec<HttpEvent>) {
        let dir = Direction::ToClient;
        let mut p = match parse_response_head(head) {
            ResponseParse::Ok(p) => p,
            ResponseParse::Invalid(a) => return self.head_lost(dir, ts, a, true, out),
        };
        let side = &mut self.sides[dir.index()];
        side.seen_message = true;
        let start = side.head_ts;
        let status = p.head.status;
        let closing =
            list_values(&p.head.headers, "connection").any(|v| v.eq_ignore_ascii_case(b"close"));
        let (claim, is_head, is_connect, req_upgrade) = match self.pairing.waiting() {
            Some(t) => match &t.req {
                Some(r) => (
                    Some(t.id),
                    &*r.head.method == "HEAD",
                    &*r.head.method == "CONNECT",
                    upgrade_kind(&r.head.headers),
                ),
                None => {
                    // The placeholder of a lost request takes this response.
                    t.resp_done = true;
                    (None, false, false, None)
                }
            },
            None => (None, false, false, None),
        };
        if claim.is_none() {
            out.push(HttpEvent::Anomaly {
                ts,
                dir,
                anomaly: HttpAnomaly::ResponseWithoutRequest,
            });
            self.pairing.drain_ready(out);
        }
        let tunnel = if status == 101 && (req_upgrade.is_some() || claim.is_none()) {
            upgrade_kind(&p.head.headers).or(req_upgrade)
        } else if is_connect && (200..300).contains(&status) {
            Some(Tunnel::Connect)
        } else {
            None
        };
        if let Some(kind) = tunnel {
            if let Some(id) = claim {
                self.pairing.with_tx(id, |t| {
                    t.tunnel = Some(kind);
                    t.anomalies = t.anomalies.union(p.anomalies);
                    t.resp = Some(Response {
                        start,
                        end: ts,
                        head: p.head,
                        body: Body::empty(),
                    });
                    t.resp_done = true;
                });
            }
            return self.stop(ts, out);
        }
        if (100..200).contains(&status) {
            if let Some(id) = claim {
                self.pairing.with_tx(id, |t| {
                    t.interim.push(status);
                    t.anomalies = t.anomalies.union(p.anomalies);
                });
            }
            return;
        }
        self.sides[dir.index()].closing = closing;
        if is_connect {
            let req_side = &mut self.sides[Direction::ToServer.index()];
            if matches!(req_side.phase, Phase::ConnectWait) {
                req_side.phase = Phase::Idle;
            }
        }
        let kind = match p.plan(is_head) {
            BodyPlan::None => None,
            BodyPlan::Length(n) => Some(BodyKind::Length(n)),
            BodyPlan::Chunked => Some(BodyKind::Chunked),
            BodyPlan::Close => Some(BodyKind::Close),
            BodyPlan::Unframeable => {
                let mut body = Body::empty();
                body.complete = false;
                let resp = Response {
                    start,
                    end: ts,
                    head: p.head,
                    body,
                };
                self.attach_response(claim, resp, p.anomalies, false, out);
                self.sync_lost(dir, false, false, true, out);
                return;
            }
        };
        match kind {
            None | Some(BodyKind::Length(0)) => {
                let body = match kind {
                    Some(k) => BodyDecoder::new(k).finish(true),
                    None => Body::empty(),
                };
                let resp = Response {
                    start,
                    end: ts,
                    head: p.head,
                    body,
                };
                self.attach_response(claim, resp, p.anomalies, false, out);
            }
            Some(kind) => {
                self.sides[dir.index()].phase = Phase::Body(Box::new(InBody {
                    dec: BodyDecoder::new(kind),
                    msg: InMsg::Response {
                        head_bytes: headers_bytes(&p.head.headers),
                        head: p.head,
                        claim,
                    },
                    start,
                    last_ts: ts,
                    gap: false,
                    anomalies: p.anomalies,
                }));
            }
        }
    }

    fn attach_response(
        &mut self,
        claim: Option<u64>,
        resp: Response,
        anomalies: AnomalySet,
        gap: bool,
        out: &mut Vec<HttpEvent>,
    ) {
        if let Some(id) = claim {
            self.pairing.with_tx(id, |t| {
                t.resp = Some(resp);
                t.resp_done = true;
                t.gap |= gap;
                t.anomalies = t.anomalies.union(anomalies);
            });
        }
        self.pairing.drain_ready(out);
    }

    /// Ends the body in progress in `dir` (if any) and hands the message to
    /// its transaction. The direction goes back to `Idle`.
    fn end_body(
        &mut self,
        dir: Direction,
        complete: bool,
        extra: Option<HttpAnomaly>,
        out: &mut Vec<HttpEvent>,
    ) {
        let side = &mut self.sides[dir.index()];
        if !matches!(side.phase, Phase::Body(_)) {
            return;
        }
        let Phase::Body(inb) = mem::take(&mut side.phase) else {
            return;
        };
        let InBody {
            dec,
            msg,
            start,
            last_ts,
            gap,
            mut anomalies,
        } = *inb;
        if let Some(a) = extra {
            anomalies.insert(a);
        }
        let body = dec.finish(complete);
        match msg {
            InMsg::Request { tx } => {
                self.pairing.with_tx(tx, |t| {
                    if let Some(r) = t.req.as_mut() {
                        r.body = body;
                        r.end = last_ts;
                    }
                    t.req_done = true;
                    t.gap |= gap;
                    t.anomalies = t.anomalies.union(anomalies);
                });
                self.pairing.drain_ready(out);
            }
            InMsg::Response { head, claim, .. } => {
                let resp = Response {
                    start,
                    end: last_ts,
                    head,
                    body,
                };
                self.attach_response(claim, resp, anomalies, gap, out);
            }
        }
    }

    /// Ends whatever `dir` was in the middle of, because of a close
    /// (`by_close`) or the end of the flow.
    fn end_side(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        by_close: bool,
        out: &mut Vec<HttpEvent>,
    ) {
        let side = &mut self.sides[dir.index()];
        match &side.phase {
            Phase::Head { .. } => {
                if !self.salvage_head(dir, ts, HttpAnomaly::TruncatedMessage, out) {
                    out.push(HttpEvent::Anomaly {
                        ts,
                        dir,
                        anomaly: HttpAnomaly::TruncatedMessage,
                    });
                }
                let side = &mut self.sides[dir.index()];
                side.buf.clear();
                side.phase = Phase::Idle;
            }
            Phase::Body(inb) if inb.dec.is_close_delimited() => {
                self.end_body(dir, by_close, None, out)
            }
            Phase::Body(inb) if inb.dec.is_done() => self.end_body(dir, true, None, out),
            Phase::Body(_) => self.end_body(dir, false, Some(HttpAnomaly::TruncatedMessage), out),
            Phase::Idle | Phase::Resync { .. } | Phase::ConnectWait | Phase::Closed => {}
        }
    }

    /// A gap or a close cut the head being read in `dir` short. When its
    /// start line and at least that much of the header section are buffered,
    /// the message is recorded from the complete lines (body unknown, so
    /// incomplete), carrying `anomaly`: losing a request's continuation
    /// should not lose the request line, which is what an inventory needs
    /// most. Returns false (nothing recorded) when no start line is complete.
    fn salvage_head(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        anomaly: HttpAnomaly,
        out: &mut Vec<HttpEvent>,
    ) -> bool {
        let side = &mut self.sides[dir.index()];
        if !matches!(side.phase, Phase::Head { probed: true, .. }) {
            return false;
        }
        let Some(nl) = memchr::memrchr(b'\n', &side.buf) else {
            return false;
        };
        let mut head = Vec::with_capacity(nl + 3);
        head.extend_from_slice(&side.buf[..=nl]);
        head.extend_from_slice(b"\r\n");
        let start = side.head_ts;
        let gap = anomaly != HttpAnomaly::TruncatedMessage;
        match dir {
            Direction::ToServer => {
                let RequestParse::Ok(p) = parse_request_head(&head) else {
                    return false;
                };
                side.seen_message = true;
                side.buf.clear();
                let mut anomalies = p.anomalies;
                // The header section is incomplete: a missing Host proves nothing.
                anomalies.remove(HttpAnomaly::InvalidHost);
                anomalies.insert(anomaly);
                let mut body = Body::empty();
                body.complete = false;
                let request = Request {
                    start,
                    end: ts,
                    head: p.head,
                    body,
                };
                let tx = self.pairing.push(Some(request), true, anomalies, out);
                self.pairing.with_tx(tx, |t| t.gap = gap);
                self.pairing.drain_ready(out);
                true
            }
            Direction::ToClient => {
                if !matches!(parse_response_head(&head), ResponseParse::Ok(_)) {
                    return false;
                }
                side.buf.clear();
                self.on_response_head(ts, &head, out);
                let side = &mut self.sides[dir.index()];
                if let Phase::Body(inb) = &mut side.phase {
                    inb.gap |= gap;
                    inb.anomalies.insert(anomaly);
                    self.end_body(dir, false, None, out);
                } else {
                    out.push(HttpEvent::Anomaly { ts, dir, anomaly });
                }
                true
            }
        }
    }

    /// A head in `dir` could not be used: report it and resync. A request
    /// head that passed the start-line probe was a real request: its
    /// placeholder keeps its slot.
    fn head_lost(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        anomaly: HttpAnomaly,
        at_line_start: bool,
        out: &mut Vec<HttpEvent>,
    ) {
        out.push(HttpEvent::Anomaly { ts, dir, anomaly });
        self.sync_lost(dir, true, false, at_line_start, out);
    }

    /// `dir` lost its framing: apply the pairing policy and resync.
    fn sync_lost(
        &mut self,
        dir: Direction,
        placeholder: bool,
        gap: bool,
        at_line_start: bool,
        out: &mut Vec<HttpEvent>,
    ) {
        match dir {
            Direction::ToServer => {
                if placeholder {
                    self.pairing.push(None, true, AnomalySet::EMPTY, out);
                }
            }
            Direction::ToClient => {
                self.pairing.flush_waiting(gap);
                self.pairing.drain_ready(out);
            }
        }
        let side = &mut self.sides[dir.index()];
        side.buf.clear();
        side.closing = false;
        side.phase = Phase::Resync {
            at_line_start,
            reported: false,
        };
    }

    /// The connection is no longer HTTP/1: flush everything and stop.
    fn stop(&mut self, ts: Timestamp, out: &mut Vec<HttpEvent>) {
        self.end_side(Direction::ToServer, ts, false, out);
        self.end_side(Direction::ToClient, ts, false, out);
        self.pairing.flush_all(out);
        self.tunnel = true;
        self.sides = [Side::default(), Side::default()];
        for side in &mut self.sides {
            side.phase = Phase::Closed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::limits::{BODY_SAMPLE_MAX, MAX_PENDING_REQUESTS};

    const C2S: Direction = Direction::ToServer;
    const S2C: Direction = Direction::ToClient;

    fn exchanges(events: &[HttpEvent]) -> Vec<&Exchange> {
        events
            .iter()
            .filter_map(|e| match e {
                HttpEvent::Exchange(x) => Some(&**x),
                HttpEvent::Anomaly { .. } => None,
            })
            .collect()
    }

    #[test]
    fn timestamps_follow_first_and_last_bytes() {
        let mut c = HttpConnection::new();
        let mut out = Vec::new();
        c.on_data(
            C2S,
            Timestamp(10),
            b"\r\nPOST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n",
            &mut out,
        );
        c.on_data(C2S, Timestamp(11), b"\r\nab", &mut out);
        c.on_data(C2S, Timestamp(12), b"c", &mut out);
        c.on_data(
            S2C,
            Timestamp(20),
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\no",
            &mut out,
        );
        c.on_data(S2C, Timestamp(21), b"k", &mut out);
        let x = exchanges(&out);
        assert_eq!(x.len(), 1);
        assert_eq!(
            (x[0].request.start, x[0].request.end),
            (Timestamp(10), Timestamp(12))
        );
        let r = x[0].response.as_ref().expect("response");
        assert_eq!((r.start, r.end), (Timestamp(20), Timestamp(21)));
        assert_eq!(&x[0].request.body.sample[..], b"abc");
        assert_eq!(&r.body.sample[..], b"ok");
        assert_eq!(r.head.headers[0].name.as_ref(), "content-length");
    }

    #[test]
    fn megabyte_body_byte_by_byte_is_linear() {
        const N: usize = 1 << 20;
        let mut c = HttpConnection::new();
        let mut out = Vec::new();
        let head = format!("POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: {N}\r\n\r\n");
        for b in head.as_bytes() {
            c.on_data(C2S, Timestamp(1), std::slice::from_ref(b), &mut out);
        }
        let body = vec![b'x'; N];
        for b in &body {
            c.on_data(C2S, Timestamp(2), std::slice::from_ref(b), &mut out);
        }
        c.on_data(
            S2C,
            Timestamp(3),
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            &mut out,
        );
        let x = exchanges(&out);
        assert_eq!(x.len(), 1);
        assert_eq!(x[0].request.body.len, N as u64);
        assert_eq!(x[0].request.body.sample.len(), BODY_SAMPLE_MAX);
        assert!(x[0].request.body.complete);
    }

    #[test]
    fn megabyte_of_junk_byte_by_byte_is_linear() {
        let mut c = HttpConnection::new();
        let mut out = Vec::new();
        let junk: Vec<u8> = (0..1u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        for b in &junk {
            c.on_data(S2C, Timestamp(1), std::slice::from_ref(b), &mut out);
        }
        c.on_data(
            S2C,
            Timestamp(1),
            b"\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            &mut out,
        );
        let kinds: Vec<_> = out
            .iter()
            .filter_map(|e| match e {
                HttpEvent::Anomaly { anomaly, .. } => Some(*anomaly),
                HttpEvent::Exchange(_) => None,
            })
            .collect();
        assert_eq!(
            kinds,
            [
                HttpAnomaly::GarbageSkipped,
                HttpAnomaly::ResponseWithoutRequest
            ]
        );
    }

    #[test]
    fn large_head_byte_by_byte_stays_bounded() {
        let mut c = HttpConnection::new();
        let mut out = Vec::new();
        let mut head = b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: ".to_vec();
        head.resize(MAX_HEADER_BYTES + 100, b'a');
        for b in &head {
            c.on_data(C2S, Timestamp(1), std::slice::from_ref(b), &mut out);
            assert!(c.sides[0].buf.len() < MAX_HEADER_BYTES);
        }
        assert!(out.iter().any(|e| matches!(
            e,
            HttpEvent::Anomaly {
                anomaly: HttpAnomaly::HeaderSectionTooLarge,
                ..
            }
        )));
    }

    #[test]
    fn too_many_pending_requests_flushes_the_oldest() {
        let mut c = HttpConnection::new();
        let mut out = Vec::new();
        for _ in 0..=MAX_PENDING_REQUESTS {
            c.on_data(
                C2S,
                Timestamp(1),
                b"GET /p HTTP/1.1\r\nHost: h\r\n\r\n",
                &mut out,
            );
        }
        assert_eq!(c.pairing.len(), MAX_PENDING_REQUESTS);
        let x = exchanges(&out);
        assert_eq!(x.len(), 1);
        assert!(x[0].response.is_none());
        assert!(x[0].anomalies.contains(HttpAnomaly::TooManyPendingRequests));
        c.on_data(
            S2C,
            Timestamp(2),
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            &mut out,
        );
        assert_eq!(exchanges(&out).len(), 2);
        c.finish(Timestamp(3), &mut out);
        c.finish(Timestamp(4), &mut out);
        assert_eq!(exchanges(&out).len(), MAX_PENDING_REQUESTS + 1);
    }

    #[test]
    fn held_bytes_follow_pending_requests_and_partial_messages() {
        let mut c = HttpConnection::new();
        let mut out = Vec::new();
        assert_eq!(c.held_bytes(), 0);
        let request = b"GET /p HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer abcdef\r\n\r\n";
        c.on_data(C2S, Timestamp(1), request, &mut out);
        // The queue's buffer, and what the request holds on the heap.
        let one = c.pairing.bytes() - c.pairing.buffer_bytes();
        assert!(
            one > request.len(),
            "the request and its bookkeeping: {one}"
        );
        assert!(c.pairing.buffer_bytes() > 0);
        assert_eq!(
            c.held_bytes(),
            c.pairing.bytes(),
            "a whole head is parsed without a copy"
        );
        for _ in 0..9 {
            c.on_data(C2S, Timestamp(1), request, &mut out);
        }
        let queue = c.pairing.buffer_bytes();
        assert!(queue >= 10 * size_of::<crate::http::pairing::Tx>());
        assert_eq!(
            c.held_bytes(),
            queue + 10 * one,
            "each pending request counts the same"
        );
        // A response head being read, then its body in progress.
        c.on_data(S2C, Timestamp(2), b"HTTP/1.1 200 OK\r\nContent-", &mut out);
        let partial_head = c.held_bytes() - queue - 10 * one;
        assert!(partial_head >= 25, "the partial head: {partial_head}");
        c.on_data(S2C, Timestamp(2), b"Length: 10\r\n\r\n01234", &mut out);
        assert!(
            c.held_bytes() > queue + 10 * one + partial_head,
            "the head's fields and the sample"
        );
        c.on_data(S2C, Timestamp(2), b"56789", &mut out);
        assert_eq!(exchanges(&out).len(), 1);
        assert_eq!(
            c.pairing.bytes(),
            queue + 9 * one,
            "the answered request is gone, the queue's buffer stays"
        );
        // What else is held is the head buffer, kept for reuse.
        let buffers = c.held_bytes() - queue - 9 * one;
        assert!(buffers >= partial_head && buffers <= MAX_HEADER_BYTES);
        // Answering the rest leaves nothing held but the buffers' capacity.
        for _ in 0..9 {
            c.on_data(
                S2C,
                Timestamp(3),
                b"HTTP/1.1 204 No Content\r\n\r\n",
                &mut out,
            );
        }
        assert_eq!(exchanges(&out).len(), 10);
        assert_eq!(c.pairing.bytes(), queue);
        assert!(c.held_bytes() <= queue + 2 * MAX_HEADER_BYTES);
        // Shedding gives the queue's buffer back.
        c.shed(Timestamp(4), &mut out);
        assert_eq!(c.pairing.bytes(), 0);
    }

    /// Found by the `http` fuzz target's split check (session 15): bytes a
    /// probe buffered over several arrivals (`_…_PO` could still begin a
    /// method) all took the first arrival's time when the probe gave up
    /// and moved them to the resync's line tail, so a start line found
    /// there began at the wrong time when its first bytes came apart from
    /// the rest.
    #[test]
    fn probe_bytes_keep_their_arrival_times_in_the_line_tail() {
        let run = |parts: &[(u64, &[u8])]| {
            let mut c = HttpConnection::new();
            let mut out = Vec::new();
            for &(ts, bytes) in parts {
                c.on_data(C2S, Timestamp(ts), bytes, &mut out);
            }
            c.finish(Timestamp(9), &mut out);
            exchanges(&out)
                .iter()
                .map(|e| e.request.start)
                .collect::<Vec<_>>()
        };
        let junk: &[u8] = b"z HTTP/1.1\r\nxx\n__________________";
        let whole = run(&[(2, junk), (3, b"POST /z HTTP/1.1\r\nHost: h\r\n\r\n")]);
        assert_eq!(whole, [Timestamp(3)]);
        let cut = run(&[
            (2, junk),
            (3, b"PO"),
            (3, b"ST /z HTTP/1.1\r\nHost: h\r\n\r\n"),
        ]);
        assert_eq!(cut, whole);
    }

    /// Found by the `http` fuzz target's split check: a start line found
    /// inside a resync's unfinished line took the time of the line's first
    /// byte, so its time depended on where packets cut the line.
    #[test]
    fn a_start_line_found_mid_line_keeps_the_time_of_its_first_byte() {
        let run = |parts: &[(u64, &[u8])]| {
            let mut c = HttpConnection::new();
            let mut out = Vec::new();
            c.on_data(
                C2S,
                Timestamp(1),
                b"\x01\x02 not http\r\njunk without an end",
                &mut out,
            );
            for &(ts, bytes) in parts {
                c.on_data(C2S, Timestamp(ts), bytes, &mut out);
            }
            c.finish(Timestamp(99), &mut out);
            let x = exchanges(&out);
            assert_eq!(x.len(), 1);
            x[0].request.start
        };
        let req: &[u8] = b"GET /n HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(run(&[(25, req)]), Timestamp(25));
        assert_eq!(run(&[(25, &req[..15]), (25, &req[15..])]), Timestamp(25));
        assert_eq!(run(&[(25, &req[..3]), (26, &req[3..])]), Timestamp(25));
        // Part of the line before it came earlier still.
        assert_eq!(
            run(&[(24, b" more junk "), (25, &req[..3]), (26, &req[3..])]),
            Timestamp(25)
        );
    }

    #[test]
    fn shedding_flushes_pending_requests_and_resumes_at_the_next_message() {
        let mut c = HttpConnection::new();
        let mut out = Vec::new();
        c.on_data(
            C2S,
            Timestamp(1),
            b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n",
            &mut out,
        );
        c.on_data(
            C2S,
            Timestamp(1),
            b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc",
            &mut out,
        );
        c.on_data(
            S2C,
            Timestamp(2),
            b"HTTP/1.1 200 OK\r\nContent-Len",
            &mut out,
        );
        assert!(c.held_bytes() > 0);
        c.shed(Timestamp(3), &mut out);
        let x = exchanges(&out);
        assert_eq!(x.len(), 2, "both requests come out");
        for e in &x {
            assert!(e.response.is_none());
            assert!(e.anomalies.contains(HttpAnomaly::HttpMemcap));
        }
        let connection_level = out
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    HttpEvent::Anomaly {
                        anomaly: HttpAnomaly::HttpMemcap,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(connection_level, 2, "one per direction");
        assert!(
            c.held_bytes() <= 2 * MAX_RESYNC_LINE,
            "only resync tails may remain"
        );
        // The rest of the lost messages is skipped; the next exchange parses.
        c.on_data(
            C2S,
            Timestamp(4),
            b"xyz more body\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n",
            &mut out,
        );
        c.on_data(
            S2C,
            Timestamp(5),
            b"gth: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            &mut out,
        );
        let x = exchanges(&out);
        assert_eq!(x.len(), 3);
        assert_eq!(&*x[2].request.head.target, b"/c");
        assert_eq!(x[2].response.as_ref().map(|r| r.head.status), Some(200));
    }

    #[test]
    fn server_close_flushes_unanswered_and_ignores_later_data() {
        let mut c = HttpConnection::new();
        let mut out = Vec::new();
        c.on_data(
            C2S,
            Timestamp(1),
            b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
            &mut out,
        );
        c.on_data(
            S2C,
            Timestamp(2),
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            &mut out,
        );
        c.on_close(S2C, Timestamp(3), &mut out);
        let x = exchanges(&out);
        assert_eq!(x.len(), 2);
        assert!(x[1].response.is_none());
        c.on_data(S2C, Timestamp(4), b"HTTP/1.1 200 OK\r\n\r\n", &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn partial_head_at_close_is_recorded_truncated() {
        let mut c = HttpConnection::new();
        let mut out = Vec::new();
        c.on_data(C2S, Timestamp(1), b"GET /cut HTTP/1.1\r\nHo", &mut out);
        c.on_close(C2S, Timestamp(2), &mut out);
        c.finish(Timestamp(3), &mut out);
        let [HttpEvent::Exchange(x)] = out.as_slice() else {
            panic!("one exchange expected: {out:?}");
        };
        assert_eq!(&*x.request.head.target, b"/cut");
        assert!(!x.request.body.complete && x.response.is_none() && !x.gap);
        assert_eq!(
            x.anomalies.iter().collect::<Vec<_>>(),
            [HttpAnomaly::TruncatedMessage]
        );
    }

    #[test]
    fn partial_start_line_at_close_is_only_counted() {
        let mut c = HttpConnection::new();
        let mut out = Vec::new();
        c.on_data(C2S, Timestamp(1), b"GET /cu", &mut out);
        c.on_close(C2S, Timestamp(2), &mut out);
        assert_eq!(
            out,
            [HttpEvent::Anomaly {
                ts: Timestamp(2),
                dir: C2S,
                anomaly: HttpAnomaly::TruncatedMessage
            }]
        );
    }

    #[test]
    fn finish_ends_close_delimited_body_incomplete() {
        let mut c = HttpConnection::new();
        let mut out = Vec::new();
        c.on_data(C2S, Timestamp(1), b"GET / HTTP/1.0\r\n\r\n", &mut out);
        c.on_data(S2C, Timestamp(2), b"HTTP/1.0 200 OK\r\n\r\nabc", &mut out);
        assert!(out.is_empty());
        c.finish(Timestamp(3), &mut out);
        let x = exchanges(&out);
        let body = &x[0].response.as_ref().expect("response").body;
        assert_eq!(
            (body.framing, body.len, body.complete),
            (Framing::CloseDelimited, 3, false)
        );
    }

    #[test]
    fn tunnel_stops_parsing() {
        let mut c = HttpConnection::new();
        let mut out = Vec::new();
        c.on_data(
            C2S,
            Timestamp(1),
            b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n\x16\x03\x01",
            &mut out,
        );
        assert!(!c.is_tunnel());
        c.on_data(
            S2C,
            Timestamp(2),
            b"HTTP/1.1 200 OK\r\n\r\n\x16\x03\x03",
            &mut out,
        );
        assert!(c.is_tunnel());
        c.on_gap(C2S, Timestamp(3), 10, &mut out);
        c.on_data(C2S, Timestamp(3), b"GET / HTTP/1.1\r\n\r\n", &mut out);
        c.finish(Timestamp(4), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(exchanges(&out)[0].tunnel, Some(Tunnel::Connect));
    }

    #[test]
    fn fuzz_hook_survives_odd_input() {
        for seed in 0..200u32 {
            let data: Vec<u8> = (0..512u32)
                .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect();
            crate::internal::fuzz_http(&data);
        }
        crate::internal::fuzz_http(b"");
        crate::internal::fuzz_http(b"\x00GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab");
    }

    use crate::http::message::Framing;
}
