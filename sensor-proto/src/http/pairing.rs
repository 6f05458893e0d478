//! Request/response pairing: a bounded FIFO of transactions.
//!
//! Every parsed request head pushes a [`Tx`]; responses complete them in
//! order (pipelining). A transaction is emitted as an [`Exchange`] once both
//! halves are done, strictly in FIFO order. When the request side loses a
//! message it could not parse (gap in a head, invalid head), a *placeholder*
//! takes its slot so that the response meant for it is not paired with the
//! next request; that response is reported as `ResponseWithoutRequest`.

use std::collections::VecDeque;
use std::mem::size_of;

use crate::http::connection::HttpEvent;
use crate::http::events::{AnomalySet, HttpAnomaly};
use crate::http::limits::{ALLOCATION_OVERHEAD_BYTES, MAX_PENDING_REQUESTS};
use crate::http::message::{Body, Exchange, Header, Request, Response, Tunnel};

/// One request (or placeholder) waiting for its response.
#[derive(Debug)]
pub(crate) struct Tx {
    pub(crate) id: u64,
    /// `None` for a placeholder standing in for a lost request.
    pub(crate) req: Option<Request>,
    pub(crate) req_done: bool,
    pub(crate) resp: Option<Response>,
    /// A response was attached, or the request was declared unanswered.
    pub(crate) resp_done: bool,
    pub(crate) interim: Vec<u16>,
    pub(crate) tunnel: Option<Tunnel>,
    pub(crate) gap: bool,
    pub(crate) anomalies: AnomalySet,
    /// What this transaction holds outside the queue's own buffer, as last
    /// counted ([`tx_bytes`]).
    bytes: usize,
    /// What the request's head holds, counted once: it never changes.
    req_head_bytes: usize,
}

/// The transaction FIFO of one connection.
#[derive(Debug, Default)]
pub(crate) struct Pairing {
    txs: VecDeque<Tx>,
    next_id: u64,
    /// Sum of the queued transactions' `bytes` (their heap allocations; the
    /// queue's buffer is counted by its capacity in [`Pairing::bytes`]).
    bytes: usize,
}

/// Heap bytes of header fields (names, values, and one allocation each).
pub(crate) fn headers_bytes(headers: &Vec<Header>) -> usize {
    headers.capacity() * size_of::<Header>()
        + headers
            .iter()
            .map(|h| h.name.len() + h.value.len() + 2 * ALLOCATION_OVERHEAD_BYTES)
            .sum::<usize>()
}

fn body_bytes(body: &Body) -> usize {
    body.sample.capacity()
}

/// Heap bytes a request's head holds.
fn request_head_bytes(r: &Request) -> usize {
    r.head.method.len()
        + r.head.target.len()
        + 2 * ALLOCATION_OVERHEAD_BYTES
        + headers_bytes(&r.head.headers)
}

/// Heap bytes a response holds.
fn response_bytes(r: &Response) -> usize {
    headers_bytes(&r.head.headers) + body_bytes(&r.body)
}

/// Heap bytes a queued transaction holds: its request and response (its
/// slot in the queue is the queue's).
fn tx_bytes(t: &Tx) -> usize {
    t.req_head_bytes
        + t.req.as_ref().map_or(0, |r| body_bytes(&r.body))
        + t.resp.as_ref().map_or(0, response_bytes)
        + t.interim.capacity() * size_of::<u16>()
}

impl Pairing {
    /// Queues a request (or a placeholder with `req: None`). At the cap the
    /// oldest transaction is flushed unanswered with `TooManyPendingRequests`.
    pub(crate) fn push(
        &mut self,
        req: Option<Request>,
        req_done: bool,
        anomalies: AnomalySet,
        out: &mut Vec<HttpEvent>,
    ) -> u64 {
        if self.txs.len() >= MAX_PENDING_REQUESTS {
            if let Some(mut old) = self.pop_front() {
                old.anomalies.insert(HttpAnomaly::TooManyPendingRequests);
                emit(old, out);
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut tx = Tx {
            id,
            req,
            req_done,
            resp: None,
            resp_done: false,
            interim: Vec::new(),
            tunnel: None,
            gap: false,
            anomalies,
            bytes: 0,
            req_head_bytes: 0,
        };
        tx.req_head_bytes = tx.req.as_ref().map_or(0, request_head_bytes);
        tx.bytes = tx_bytes(&tx);
        self.bytes += tx.bytes;
        self.txs.push_back(tx);
        id
    }

    /// Runs `f` on transaction `id` (if it is still queued) and counts
    /// what it holds again.
    pub(crate) fn with_tx<R>(&mut self, id: u64, f: impl FnOnce(&mut Tx) -> R) -> Option<R> {
        let front = self.txs.front()?.id;
        let idx = usize::try_from(id.checked_sub(front)?).ok()?;
        let t = self.txs.get_mut(idx)?;
        let r = f(t);
        let bytes = tx_bytes(t);
        self.bytes = self.bytes - t.bytes + bytes;
        t.bytes = bytes;
        Some(r)
    }

    /// Bytes the queue holds: its buffer, whose capacity stays at the
    /// largest number of transactions it has held until it is freed
    /// ([`Self::flush_all`], [`Self::flush_all_with`]), and what the queued
    /// transactions hold.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes + self.txs.capacity() * size_of::<Tx>()
    }

    fn pop_front(&mut self) -> Option<Tx> {
        let t = self.txs.pop_front()?;
        self.bytes -= t.bytes;
        Some(t)
    }

    /// The oldest transaction still waiting for a response.
    pub(crate) fn waiting(&mut self) -> Option<&mut Tx> {
        self.txs.iter_mut().find(|t| !t.resp_done)
    }

    /// Declares every waiting transaction unanswered (after a response-side
    /// loss or close). With `gap`, they carry the gap flag and `GapInResponse`.
    pub(crate) fn flush_waiting(&mut self, gap: bool) {
        for t in self.txs.iter_mut().filter(|t| !t.resp_done) {
            t.resp_done = true;
            if gap && t.req.is_some() {
                t.gap = true;
                t.anomalies.insert(HttpAnomaly::GapInResponse);
            }
        }
    }

    /// Emits finished transactions from the front, in order.
    pub(crate) fn drain_ready(&mut self, out: &mut Vec<HttpEvent>) {
        while self.txs.front().is_some_and(|t| t.req_done && t.resp_done) {
            if let Some(t) = self.pop_front() {
                emit(t, out);
            }
        }
    }

    /// Emits everything, finished or not (end of the connection).
    pub(crate) fn flush_all(&mut self, out: &mut Vec<HttpEvent>) {
        while let Some(t) = self.pop_front() {
            emit(t, out);
        }
        self.txs = VecDeque::new();
    }

    /// Emits everything, each exchange flagged with `anomaly`.
    pub(crate) fn flush_all_with(&mut self, anomaly: HttpAnomaly, out: &mut Vec<HttpEvent>) {
        while let Some(mut t) = self.pop_front() {
            t.anomalies.insert(anomaly);
            emit(t, out);
        }
        self.txs = VecDeque::new();
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.txs.len()
    }

    /// Bytes of the queue's buffer (see [`Self::bytes`]).
    #[cfg(test)]
    pub(crate) fn buffer_bytes(&self) -> usize {
        self.txs.capacity() * size_of::<Tx>()
    }
}

/// Turns a transaction into an event; placeholders vanish.
fn emit(t: Tx, out: &mut Vec<HttpEvent>) {
    if let Some(request) = t.req {
        out.push(HttpEvent::Exchange(Box::new(Exchange {
            request,
            response: t.resp,
            interim: t.interim,
            tunnel: t.tunnel,
            gap: t.gap,
            anomalies: t.anomalies,
        })));
    }
}
