//! # shadowtap-proto: the sensor's sans-IO core
//!
//! Everything between captured bytes and a privacy-safe exchange record,
//! with no clocks, threads, channels or I/O: callers pass `(timestamp,
//! bytes)` in and get events out.
//!
//! ```text
//!  (ts, link type, frame)
//!        │
//!   wire::decode ──► IPv4 defragmentation (wire::defrag)
//!        │
//!   flow::FlowTable ── per connection ──► reassembly (one per direction)
//!        │                                      │ Data / Gap / Fin / Rst
//!        │                                      ▼
//!        │                           http::HttpConnection
//!        │                                      │ Exchange
//!        ▼                                      ▼
//!   counters                           record::build ──► ExchangeRecord
//! ```
#![forbid(unsafe_code)]

pub mod engine;
pub mod flow;
pub mod hash;
pub mod http;
pub mod reassembly;
pub mod record;
pub mod time;
pub mod wire;

// The public interface is:
pub use flow::Direction;
pub use record::ExchangeRecord;
pub use time::Timestamp;

#[doc(hidden)]
pub mod internal;
