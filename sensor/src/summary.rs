//! The end-of-run summary printed on standard error.

use std::fmt::Write as _;
use std::time::Duration;

use shadowtap_proto::engine::Counters;

use crate::runtime::Outcome;

/// The periodic counter line of a live capture (one line, no newline):
/// run time, packets, bytes, flows tracked now, exchanges completed and
/// written, records the output queue had no room for, and the source's own
/// loss counters.
///
/// ```text
/// shadowtap-sensor: 10.0 s: 1532 packets, 2.1 MB, 3 flows, 85 exchanges, 85 written; capture drops: ps_drop=0 ps_ifdrop=0
/// ```
pub fn live_line(
    elapsed: Duration,
    c: &Counters,
    flows: usize,
    written: u64,
    output_queue_full: u64,
    drops: &[(&'static str, u64)],
) -> String {
    let mut s = format!(
        "shadowtap-sensor: {:.1} s: {} packets, {:.1} MB, {} flows, {} exchanges, {} written",
        elapsed.as_secs_f64(),
        c.packets,
        c.bytes as f64 / 1e6,
        flows,
        c.http.exchanges,
        written
    );
    if output_queue_full > 0 {
        let _ = write!(s, ", {output_queue_full} dropped (output queue full)");
    }
    if !drops.is_empty() {
        s.push_str("; capture drops:");
        for (name, v) in drops {
            let _ = write!(s, " {name}={v}");
        }
        // Every source's drops count packets the sensor never saw.
        let lost: u64 = drops.iter().map(|(_, v)| v).sum();
        if lost > 0 {
            let share = lost as f64 / (lost + c.packets) as f64;
            let _ = write!(s, " (loss {:.2} %)", share * 100.0);
        }
    }
    // The engine's own memory caps, once one has been hit.
    let caps = [
        ("out_of_order", c.reassembly.memcap_skips),
        ("http_state", c.flows.handler_memcap_sheds),
        ("fragments", c.defrag.dropped_memcap),
        ("flow_table_full", c.flows.table_full),
    ];
    if caps.iter().any(|&(_, v)| v > 0) {
        s.push_str("; memcaps hit:");
        for (name, v) in caps.iter().filter(|&&(_, v)| v > 0) {
            let _ = write!(s, " {name}={v}");
        }
    }
    s
}

/// A few lines a person reads after a run: volume, flows, exchanges, loss,
/// drops by reason and anomalies by kind.
pub fn render(o: &Outcome) -> String {
    let c = &o.counters;
    let mut s = String::new();
    let mb = c.bytes as f64 / 1e6;
    let rate = if o.elapsed_s > 0.0 {
        mb / o.elapsed_s
    } else {
        0.0
    };
    let _ = writeln!(
        s,
        "shadowtap-sensor: {} packets, {:.1} MB in {:.2} s ({:.0} MB/s)",
        c.packets, mb, o.elapsed_s, rate
    );
    let _ = writeln!(
        s,
        "  flows: {} ({} mid-stream, {} reset, {} timed out, {} evicted; table full {} times; {} shed at the HTTP memcap)",
        c.flows.flows_created,
        c.flows.flows_mid_stream,
        c.flows.flows_reset,
        c.flows.flows_timed_out,
        c.flows.flows_evicted,
        c.flows.table_full,
        c.flows.handler_memcap_sheds
    );
    let h = &c.http;
    let _ = writeln!(
        s,
        "  exchanges: {} ({} answered, {} unanswered, {} with gaps, {} truncated, {} tunnels)",
        h.exchanges, h.responses, h.unanswered, h.with_gap, h.truncated, h.tunnels
    );
    let r = &c.reassembly;
    let _ = writeln!(
        s,
        "  reassembly: {} gaps ({} bytes), {} retransmissions ({} with different data), {} out of order, {} overflow skips",
        r.gaps,
        r.gap_bytes,
        r.retransmitted_segments,
        r.retransmit_different_data,
        r.out_of_order_segments,
        r.ooo_overflow + r.memcap_skips
    );
    let mut drops: Vec<String> = c.dropped.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if c.not_tcp > 0 {
        drops.insert(0, format!("not_tcp={}", c.not_tcp));
    }
    let d = &c.defrag;
    for (name, v) in [
        ("defrag_too_many_trackers", d.dropped_too_many_trackers),
        ("defrag_memcap", d.dropped_memcap),
        ("defrag_too_many_fragments", d.dropped_too_many_fragments),
        ("defrag_oversized", d.dropped_oversized),
        ("defrag_inconsistent_length", d.dropped_inconsistent_length),
        ("defrag_expired", d.trackers_expired),
    ] {
        if v > 0 {
            drops.push(format!("{name}={v}"));
        }
    }
    if !drops.is_empty() {
        let _ = writeln!(s, "  dropped: {}", drops.join(" "));
    }
    if c.shapes.sampled > 0 {
        let _ = writeln!(
            s,
            "  shapes: {} bodies described from their sample only (longer than it; flagged `sampled`)",
            c.shapes.sampled
        );
    }
    if c.shapes.arena_full > 0 {
        let _ = writeln!(
            s,
            "  shapes: {} bodies described in part (shape arena full)",
            c.shapes.arena_full
        );
    }
    if !h.anomalies.is_empty() {
        let list: Vec<String> = h
            .anomalies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(s, "  anomalies: {}", list.join(" "));
    }
    if let Some(live) = &o.live {
        let drops: Vec<String> = live
            .capture_drops
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut output = String::new();
        if live.output_queue_full > 0 {
            let _ = write!(
                output,
                ", {} dropped (output queue full)",
                live.output_queue_full
            );
        }
        if live.output_unflushed > 0 {
            let _ = write!(
                output,
                ", {} not written (the output did not take them in time)",
                live.output_unflushed
            );
        }
        let _ = writeln!(
            s,
            "  live: stopped by {}, {} records written{output}; capture drops: {}",
            match live.stopped_by {
                crate::runtime::live::StopReason::Signal => "signal",
                crate::runtime::live::StopReason::Duration => "--duration",
                crate::runtime::live::StopReason::Count => "--count",
                crate::runtime::live::StopReason::CaptureError => "a capture error",
            },
            live.records_written,
            if drops.is_empty() {
                "none counted".to_owned()
            } else {
                drops.join(" ")
            }
        );
    }
    if let Some(rss) = o.peak_rss_bytes {
        let _ = writeln!(
            s,
            "  peak memory: {:.1} MiB",
            rss as f64 / (1024.0 * 1024.0)
        );
    }
    if !o.fingerprint_key_persistent {
        let _ = writeln!(s, "  note: no --fingerprint-key-file; principal fingerprints compare within this run only");
    }
    for e in &o.input_errors {
        let _ = writeln!(s, "  input error: {e}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_line_gives_the_loss_share_and_the_caps_hit() {
        let mut c = Counters {
            packets: 9_900,
            ..Counters::default()
        };
        let t = Duration::from_secs(10);
        let quiet = live_line(t, &c, 3, 7, 0, &[("ps_drop", 0)]);
        assert!(quiet.ends_with("capture drops: ps_drop=0"), "{quiet}");
        let lossy = live_line(t, &c, 3, 7, 0, &[("ps_drop", 60), ("ps_ifdrop", 40)]);
        assert!(
            lossy.ends_with("ps_drop=60 ps_ifdrop=40 (loss 1.00 %)"),
            "{lossy}"
        );
        c.flows.handler_memcap_sheds = 2;
        c.reassembly.memcap_skips = 5;
        let behind = live_line(t, &c, 3, 7, 12, &[]);
        assert!(
            behind.contains(" 7 written, 12 dropped (output queue full); memcaps hit:"),
            "{behind}"
        );
        let capped = live_line(t, &c, 3, 7, 0, &[]);
        assert!(
            capped.ends_with("; memcaps hit: out_of_order=5 http_state=2"),
            "{capped}"
        );
    }
}
