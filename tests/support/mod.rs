//! Test support: capture builders and a runner over the real engine.

pub mod pcap;

use shadowtap_proto::engine::{Counters, Engine, EngineConfig};
use shadowtap_proto::record::FingerprintKey;
use shadowtap_proto::ExchangeRecord;
use shadowtap_sensor::capture::{CaptureSource, FileSource};

/// The fixed key tests use, so fingerprints are reproducible.
pub fn test_key() -> FingerprintKey {
    FingerprintKey::new([7u8; 32])
}

/// Runs capture-file bytes through the file reader and a default engine.
pub fn run_capture(bytes: Vec<u8>) -> (Vec<ExchangeRecord>, Counters) {
    run_capture_with(bytes, EngineConfig::new(test_key()))
}

/// Like [`run_capture`] with a chosen engine configuration.
pub fn run_capture_with(bytes: Vec<u8>, config: EngineConfig) -> (Vec<ExchangeRecord>, Counters) {
    let total = bytes.len() as u64;
    let mut source = FileSource::from_reader(
        "test.pcap",
        Box::new(std::io::Cursor::new(bytes)),
        Some(total),
    )
    .expect("a valid capture header");
    let mut engine = Engine::new(config);
    let mut out = Vec::new();
    while let Some(p) = source.next_packet().expect("a valid capture") {
        engine.on_packet(p.ts, p.link_type, p.data, &mut out);
    }
    engine.finish(&mut out);
    (out, engine.counters())
}

/// One line per exchange: `METHOD path -> status`, with flags and anomalies
/// appended, in output order. Unanswered requests show `-> -`.
pub fn summarize(records: &[ExchangeRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            let mut s = format!(
                "{} {} -> {}",
                r.method,
                r.path,
                r.status.map_or_else(|| "-".to_string(), |s| s.to_string())
            );
            let f = r.flags;
            for (on, name) in [
                (f.gap, "gap"),
                (f.truncated, "truncated"),
                (f.mid_stream, "mid_stream"),
                (f.unanswered, "unanswered"),
            ] {
                if on {
                    s.push_str(" +");
                    s.push_str(name);
                }
            }
            for a in &r.anomalies {
                s.push_str(" !");
                s.push_str(a);
            }
            s
        })
        .collect()
}
