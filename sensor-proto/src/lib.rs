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

pub mod flow;
pub mod http;
pub mod reassembly;
pub mod record;
pub mod time;
pub mod wire;

// The public interface is:
pub use flow::Direction;
pub use record::ExchangeRecord;
pub use time::Timestamp;

/// Hooks for fuzz targets and benches; not a stable API.
#[doc(hidden)]
pub mod internal {
    use crate::flow::Direction;
    use crate::http::HttpConnection;
    use crate::time::Timestamp;

    /// Feeds `data` to an [`HttpConnection`] as a deterministic script: each
    /// control byte picks a direction (bit 0) and an operation (bits 1-2:
    /// data twice as often as gaps; bits 3-7 = 31 means close), followed by a
    /// length byte; data operations take that many following bytes.
    pub fn fuzz_http(data: &[u8]) {
        let mut conn = HttpConnection::new();
        let mut out = Vec::new();
        let mut i = 0;
        let mut ts = 0u64;
        while i + 1 < data.len() {
            let (ctl, len) = (data[i], usize::from(data[i + 1]) + 1);
            i += 2;
            ts += 1;
            let dir = if ctl & 1 == 0 {
                Direction::ToServer
            } else {
                Direction::ToClient
            };
            if ctl >> 3 == 31 {
                conn.on_close(dir, Timestamp(ts), &mut out);
            } else if (ctl >> 1) & 3 == 3 {
                conn.on_gap(dir, Timestamp(ts), len as u64, &mut out);
            } else {
                let end = (i + len).min(data.len());
                conn.on_data(dir, Timestamp(ts), &data[i..end], &mut out);
                i = end;
            }
            out.clear();
        }
        conn.finish(Timestamp(ts + 1), &mut out);
    }
}
