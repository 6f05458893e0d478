//! Request/response pairing: a bounded FIFO of transactions.
//!
//! Every parsed request head pushes a [`Tx`]; responses complete them in
//! order (pipelining). A transaction is emitted as an [`Exchange`] once both
//! halves are done, strictly in FIFO order. When the request side loses a
//! message it could not parse (gap in a head, invalid head), a *placeholder*
//! takes its slot so that the response meant for it is not paired with the
//! next request; that response is reported as `ResponseWithoutRequest`.

use std::collections::VecDeque;

use crate::http::connection::HttpEvent;
use crate::http::events::{AnomalySet, HttpAnomaly};
use crate::http::limits::MAX_PENDING_REQUESTS;
use crate::http::message::{Exchange, Request, Response, Tunnel};

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
}

/// The transaction FIFO of one connection.
#[derive(Debug, Default)]
pub(crate) struct Pairing {
    txs: VecDeque<Tx>,
    next_id: u64,
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
            if let Some(mut old) = self.txs.pop_front() {
                old.anomalies.insert(HttpAnomaly::TooManyPendingRequests);
                emit(old, out);
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.txs.push_back(Tx {
            id,
            req,
            req_done,
            resp: None,
            resp_done: false,
            interim: Vec::new(),
            tunnel: None,
            gap: false,
            anomalies,
        });
        id
    }

    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut Tx> {
        let front = self.txs.front()?.id;
        let idx = usize::try_from(id.checked_sub(front)?).ok()?;
        self.txs.get_mut(idx)
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
            if let Some(t) = self.txs.pop_front() {
                emit(t, out);
            }
        }
    }

    /// Emits everything, finished or not (end of the connection).
    pub(crate) fn flush_all(&mut self, out: &mut Vec<HttpEvent>) {
        while let Some(t) = self.txs.pop_front() {
            emit(t, out);
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.txs.len()
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
