//! Flows: bidirectional TCP connections keyed by their canonical 5-tuple.

mod table;

use std::net::SocketAddr;

pub use table::{
    FlowHandler, FlowLimits, FlowStats, FlowTable, EVICTION_BATCH_DIVISOR, HANDLER_MEMCAP_BYTES,
    SWEEP_INTERVAL_NS,
};

/// Which way a segment travels, once client and server are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server: requests.
    ToServer,
    /// Server to client: responses.
    ToClient,
}

impl Direction {
    /// The opposite direction.
    pub const fn reverse(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }

    /// 0 for `ToServer`, 1 for `ToClient`, for per-direction arrays.
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Endpoints of a flow with roles decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Endpoints {
    pub client: SocketAddr,
    pub server: SocketAddr,
}
