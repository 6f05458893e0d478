//! Entry points for fuzz targets and benchmarks. Not a stable API.

use crate::engine::{Engine, EngineConfig};
use crate::flow::Direction;
use crate::http::HttpConnection;
use crate::record::FingerprintKey;
use crate::time::Timestamp;
use crate::wire::{self, LinkType};

/// Decodes `data` as a frame of every supported link type.
pub fn fuzz_decode(data: &[u8]) {
    for link in [
        LinkType::ETHERNET,
        LinkType::LINUX_SLL,
        LinkType::LINUX_SLL2,
        LinkType::NULL,
        LinkType::LOOP,
        LinkType::RAW,
        LinkType(0xdead),
    ] {
        let _ = wire::decode(link, data);
    }
}

/// Infers the shape of `data` as a JSON body sample and checks it (see
/// `record::skeleton::fuzz_shape`): same with a fresh and a reused scanner,
/// canonical JSON, arenas within their caps.
pub fn fuzz_shape(data: &[u8]) {
    crate::record::fuzz_shape(data);
}

/// The flat shape the analyzer's record builder gives a JSON body sample
/// `data` (`None` if it does not start with a JSON value): for tests of
/// readers of [`crate::record::FlatShape`].
pub fn flat_shape(data: &[u8]) -> Option<crate::record::FlatShape> {
    crate::record::flat_shape(data)
}

/// An engine with small caps and short timeouts, so that fuzzing reaches
/// eviction, expiry and overflow paths quickly.
pub fn fuzz_engine() -> Engine {
    let mut config = EngineConfig::new(FingerprintKey::new([1; 32]));
    config.flows.max_flows = 8;
    config.flows.ooo_memcap_bytes = 64 * 1024;
    config.flows.handler_memcap_bytes = 64 * 1024;
    config.defrag.max_trackers = 8;
    Engine::new(config)
}

/// Feeds `data` to an [`HttpConnection`] as a deterministic script: each
/// control byte picks a direction (bit 0) and an operation (bits 1-2:
/// data twice as often as gaps; bits 3-7 = 31 means close), followed by a
/// length byte; data operations take that many following bytes.
///
/// The script runs twice: with each data operation fed whole, and with
/// each cut in two at a point taken from the script's own bytes. What the
/// parser reports must not depend on how the stream was cut into segments
/// (reliability target S11); a difference panics.
pub fn fuzz_http(data: &[u8]) {
    let whole = run_http_script(data, |_| None);
    let cut = run_http_script(data, |bytes| {
        let at = usize::from(*bytes.first()?) % bytes.len().max(1);
        (at > 0).then_some(at)
    });
    assert_eq!(whole, cut, "the events depend on where the data was cut");
}

/// Runs a [`fuzz_http`] script, feeding each data operation in two calls
/// when `cut` names a point inside it. Returns every event.
fn run_http_script(
    data: &[u8],
    cut: impl Fn(&[u8]) -> Option<usize>,
) -> Vec<crate::http::HttpEvent> {
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
            let bytes = &data[i..end];
            match cut(bytes) {
                Some(at) => {
                    conn.on_data(dir, Timestamp(ts), &bytes[..at], &mut out);
                    conn.on_data(dir, Timestamp(ts), &bytes[at..], &mut out);
                }
                None => conn.on_data(dir, Timestamp(ts), bytes, &mut out),
            }
            i = end;
        }
    }
    conn.finish(Timestamp(ts + 1), &mut out);
    out
}
