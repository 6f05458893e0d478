//! TCP edge cases (DEVELOPERS.md item 3): each test builds a capture, runs
//! the real reader + engine over it, and asserts the exact exchanges.

use shadowtap_proto::engine::EngineConfig;
use shadowtap_proto::flow::FlowLimits;

use crate::support::pcap::{pcap_of, Conn, Link, Seg, ACK, FIN, PSH, RST, SYN};
use crate::support::{run_capture, run_capture_with, summarize, test_key};

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: api.test\r\nAccept: */*\r\n\r\n").into_bytes()
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Handshake, two keep-alive exchanges, close.
fn conversation(conn: &mut Conn) -> Vec<Seg> {
    let mut v = conn.handshake();
    v.extend(conn.send(true, &get("/users/1")));
    v.extend(conn.send(
        false,
        &ok(&format!("{{\"id\":1,\"pad\":\"{}\"}}", "x".repeat(3000))),
    ));
    v.extend(conn.send(true, &get("/users/2")));
    v.extend(conn.send(false, &ok("{\"id\":2}")));
    v.extend(conn.close());
    v
}

const TWO: [&str; 2] = ["GET /users/1 -> 200", "GET /users/2 -> 200"];

#[test]
fn in_order_conversation() {
    let mut c = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    let (recs, counters) = run_capture(pcap_of(Link::Ethernet, &conversation(&mut c)));
    assert_eq!(summarize(&recs), TWO);
    assert_eq!(counters.flows.flows_created, 1);
    assert_eq!(counters.flows.flows_closed, 1);
    assert_eq!(counters.reassembly.gaps, 0);
    assert_eq!(recs[0].client.to_string(), "10.0.0.1:40000");
    assert_eq!(recs[0].server.to_string(), "10.0.0.2:80");
    assert_eq!(recs[0].host, "api.test");
    assert!(recs[0].latency_us.is_some());
}

#[test]
fn out_of_order_segments_are_reordered() {
    let mut c = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    c.mss = 500;
    let mut segs = conversation(&mut c);
    // Swap data segments of the first (multi-segment) response pairwise.
    let resp: Vec<usize> = (0..segs.len())
        .filter(|&i| !segs[i].from_client && segs[i].ip.len() > 400)
        .collect();
    assert!(resp.len() >= 4);
    for pair in resp.chunks(2) {
        if let [a, b] = *pair {
            segs.swap(a, b);
        }
    }
    let (recs, counters) = run_capture(pcap_of(Link::Ethernet, &segs));
    assert_eq!(summarize(&recs), TWO);
    assert!(counters.reassembly.out_of_order_segments >= 2);
    assert_eq!(counters.reassembly.gaps, 0);
}

#[test]
fn duplicate_retransmissions_add_no_bytes() {
    let mut c = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    let segs = conversation(&mut c);
    let mut doubled = Vec::new();
    for s in segs {
        doubled.push(s.clone());
        doubled.push(s);
    }
    let (recs, counters) = run_capture(pcap_of(Link::Ethernet, &doubled));
    assert_eq!(summarize(&recs), TWO);
    assert!(counters.reassembly.retransmitted_segments >= 6);
    assert_eq!(counters.reassembly.retransmit_different_data, 0);
    assert_eq!(recs[0].response.as_ref().map(|r| r.body.bytes), Some(3017));
}

#[test]
fn retransmission_with_different_data_keeps_the_first() {
    let mut c = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    let mut segs = c.handshake();
    let first = c.send(true, &get("/users/1"));
    // The same bytes positions, different path: first wins.
    let mut evil = c.clone_at(first[0].clone(), &get("/admin/1"));
    segs.extend(first);
    segs.push(evil.remove(0));
    segs.extend(c.send(false, &ok("{}")));
    segs.extend(c.close());
    let (recs, counters) = run_capture(pcap_of(Link::Ethernet, &segs));
    assert_eq!(summarize(&recs), ["GET /users/1 -> 200"]);
    assert_eq!(counters.reassembly.retransmit_different_data, 1);
}

#[test]
fn sequence_numbers_wrap_around() {
    for (cisn, sisn) in [(0xFFFF_FFF0, 0xFFFF_FF00), (u32::MAX, u32::MAX - 1)] {
        let mut c = Conn::new("10.0.0.1:40000", "10.0.0.2:80", cisn, sisn);
        c.mss = 100;
        let (recs, counters) = run_capture(pcap_of(Link::Ethernet, &conversation(&mut c)));
        assert_eq!(summarize(&recs), TWO);
        assert_eq!(counters.reassembly.gaps, 0);
    }
}

#[test]
fn data_before_the_handshake_completes() {
    let mut c = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    let syn = c.raw(true, SYN, b"");
    let sisn = c.sseq;
    let req = c.raw(true, PSH, &get("/early"));
    c.sseq = sisn;
    let synack = c.raw(false, SYN | ACK, b"");
    let mut segs = vec![syn, req, synack];
    segs.extend(c.send(false, &ok("{}")));
    segs.extend(c.close());
    let (recs, _) = run_capture(pcap_of(Link::Ethernet, &segs));
    assert_eq!(summarize(&recs), ["GET /early -> 200"]);
}

#[test]
fn data_on_syn_fast_open() {
    let mut c = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    let mut segs = vec![c.raw(true, SYN, &get("/tfo"))];
    segs.push(c.raw(false, SYN | ACK, b""));
    segs.extend(c.send(false, &ok("{}")));
    segs.extend(c.close());
    let (recs, _) = run_capture(pcap_of(Link::Ethernet, &segs));
    assert_eq!(summarize(&recs), ["GET /tfo -> 200"]);
}

#[test]
fn mid_stream_pickup_decides_roles_by_the_request_line() {
    // No handshake, and the client uses the lower port: only the payload can tell.
    let mut c = Conn::new("10.0.0.1:80", "10.0.0.2:9999", 1000, 5000);
    let mut segs = c.send(true, &get("/mid"));
    segs.extend(c.send(false, &ok("{}")));
    let (recs, counters) = run_capture(pcap_of(Link::Ethernet, &segs));
    assert_eq!(summarize(&recs), ["GET /mid -> 200 +mid_stream"]);
    assert_eq!(recs[0].client.to_string(), "10.0.0.1:80");
    assert_eq!(counters.flows.flows_mid_stream, 1);
    assert_eq!(counters.flows.roles_by_payload, 1);
}

#[test]
fn mid_stream_pickup_starting_with_a_response() {
    let mut c = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    let mut segs = c.send(false, &ok("{\"tail\":true}"));
    segs.extend(c.send(true, &get("/next")));
    segs.extend(c.send(false, &ok("{}")));
    let (recs, counters) = run_capture(pcap_of(Link::Ethernet, &segs));
    assert_eq!(summarize(&recs), ["GET /next -> 200 +mid_stream"]);
    assert_eq!(recs[0].client.to_string(), "10.0.0.1:40000");
    assert_eq!(
        counters.http.anomalies.get("response_without_request"),
        Some(&1)
    );
}

#[test]
fn roles_fall_back_to_the_port() {
    let mut c = Conn::new("10.0.0.1:51000", "10.0.0.2:8080", 1000, 5000);
    // Starts with the tail of a request body: no start line to go by.
    let mut segs = c.send(true, b"\"tail of a body\"}");
    segs.extend(c.send(true, &get("/after")));
    segs.extend(c.send(false, &ok("{}")));
    let (recs, counters) = run_capture(pcap_of(Link::Ethernet, &segs));
    assert_eq!(counters.flows.roles_by_port, 1);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].server.to_string(), "10.0.0.2:8080");
    assert_eq!(recs[0].path, "/after");
}

#[test]
fn a_lost_segment_in_a_body_is_a_gap_and_parsing_continues() {
    let mut c = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    c.mss = 1000;
    let mut segs = c.handshake();
    segs.extend(c.send(true, &get("/big")));
    let mut resp = c.send(false, &ok(&"y".repeat(5000)));
    resp.remove(2); // a middle body segment never reaches the capture
    segs.extend(resp);
    segs.extend(c.send(true, &get("/after")));
    segs.extend(c.send(false, &ok("{}")));
    segs.extend(c.close());
    let (recs, counters) = run_capture(pcap_of(Link::Ethernet, &segs));
    assert_eq!(
        summarize(&recs),
        ["GET /big -> 200 +gap !gap_in_response", "GET /after -> 200"]
    );
    assert_eq!(counters.reassembly.gaps, 1);
    assert_eq!(counters.reassembly.gap_bytes, 1000);
}

#[test]
fn a_lost_segment_in_request_headers_keeps_the_request_line_and_resyncs() {
    let mut c = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    c.mss = 20;
    let mut segs = c.handshake();
    let mut req = c.send(true, &get("/lost"));
    req.remove(1); // "Host: api.test\r\nAcce" never reaches the capture
    segs.extend(req);
    segs.extend(c.send(false, &ok("{}")));
    c.mss = 1400;
    segs.extend(c.send(true, &get("/found")));
    segs.extend(c.send(false, &ok("{}")));
    segs.extend(c.close());
    let (recs, counters) = run_capture(pcap_of(Link::Ethernet, &segs));
    // The cut request is still recorded from its request line (flagged), it
    // keeps its response, and the next request parses normally.
    assert_eq!(
        summarize(&recs),
        ["GET /lost -> 200 +gap !gap_in_request", "GET /found -> 200"]
    );
    assert_eq!(recs[0].host, "10.0.0.2:80", "the Host line was lost");
    assert!(counters.reassembly.gaps >= 1);
}

#[test]
fn fin_then_rst_and_reset_mid_response() {
    let mut c = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    let mut segs = c.handshake();
    segs.extend(c.send(true, &get("/reset")));
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial";
    segs.push(c.raw(false, PSH | ACK, head));
    segs.push(c.raw(false, RST | ACK, b"connection reset diagnostic"));
    segs.push(c.raw(true, ACK, b"")); // after the reset: ignored
    let (recs, counters) = run_capture(pcap_of(Link::Ethernet, &segs));
    assert_eq!(
        summarize(&recs),
        ["GET /reset -> 200 +truncated !truncated_message"]
    );
    assert_eq!(counters.flows.flows_reset, 1);
    assert_eq!(counters.flows.rst_with_data, 1);
}

/// A split handshake (reliability target S8): the server answers the SYN
/// with a SYN of its own, the client acknowledges it with a SYN-ACK. The
/// sender of the first SYN stays the client.
#[test]
fn split_handshake_keeps_the_first_syn_sender_as_client() {
    let mut c = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    let cisn = c.cseq;
    let mut segs = vec![c.raw(true, SYN, b""), c.raw(false, SYN, b"")];
    c.cseq = cisn;
    segs.push(c.raw(true, SYN | ACK, b""));
    segs.push(c.raw(false, ACK, b""));
    segs.extend(c.send(true, &get("/split")));
    segs.extend(c.send(false, &ok("{}")));
    segs.extend(c.close());
    let (recs, counters) = run_capture(pcap_of(Link::Ethernet, &segs));
    assert_eq!(summarize(&recs), ["GET /split -> 200"]);
    assert_eq!(recs[0].client.to_string(), "10.0.0.1:40000");
    assert_eq!(counters.flows.roles_by_syn, 1);
    assert_eq!(counters.reassembly.gaps, 0);
}

/// A reset instead of a SYN-ACK (port closed), and a reset before the
/// request was acknowledged (S8): the first is no exchange, the second an
/// unanswered request.
#[test]
fn resets_before_the_handshake_or_the_request_are_acknowledged() {
    let mut refused = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    let mut segs = vec![refused.raw(true, SYN, b"")];
    segs.push(refused.raw(false, RST | ACK, b""));
    let mut dropped = Conn::new("10.0.0.1:40001", "10.0.0.2:80", 7000, 9000);
    dropped.now_us = refused.now_us;
    segs.extend(dropped.handshake());
    segs.push(dropped.raw(true, PSH | ACK, &get("/dropped")));
    segs.push(dropped.raw(false, RST, b""));
    let (recs, counters) = run_capture(pcap_of(Link::Ethernet, &segs));
    assert_eq!(summarize(&recs), ["GET /dropped -> - +unanswered"]);
    assert_eq!(counters.flows.flows_created, 2);
    assert_eq!(counters.flows.flows_reset, 2);
}

#[test]
fn unanswered_request_at_end_of_capture() {
    let mut c = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    let mut segs = c.handshake();
    segs.extend(c.send(true, &get("/waiting")));
    let (recs, _) = run_capture(pcap_of(Link::Ethernet, &segs));
    assert_eq!(summarize(&recs), ["GET /waiting -> - +unanswered"]);
}

#[test]
fn idle_timeout_runs_on_packet_time() {
    let mut a = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    let mut segs = a.handshake();
    segs.extend(a.send(true, &get("/idle")));
    // A second connection 301 s later (packet time) expires the first.
    let mut b = Conn::new("10.0.0.3:40000", "10.0.0.2:80", 1, 2);
    b.now_us = a.now_us + 301_000_000;
    segs.extend(b.handshake());
    segs.extend(b.send(true, &get("/later")));
    segs.extend(b.send(false, &ok("{}")));
    let later = b.now_us + 2_000_000;
    b.now_us = later;
    segs.extend(b.close());
    let (recs, counters) = run_capture(pcap_of(Link::Ethernet, &segs));
    assert_eq!(
        summarize(&recs),
        ["GET /idle -> - +unanswered", "GET /later -> 200"]
    );
    assert_eq!(counters.flows.flows_timed_out, 1);
}

#[test]
fn flow_table_cap_evicts_the_oldest() {
    let mut segs = Vec::new();
    let mut t = 1_700_000_000_000_000u64;
    for i in 0..100u32 {
        let mut c = Conn::new(
            &format!("10.0.{}.{}:40000", i / 250, i % 250 + 1),
            "10.0.0.2:80",
            i,
            7,
        );
        c.now_us = t;
        segs.extend(c.handshake());
        segs.extend(c.send(true, &get(&format!("/n/{i}"))));
        t = c.now_us;
    }
    let mut config = EngineConfig::new(test_key());
    config.flows = FlowLimits {
        max_flows: 32,
        ..FlowLimits::default()
    };
    let (recs, counters) = run_capture_with(pcap_of(Link::Ethernet, &segs), config);
    assert_eq!(recs.len(), 100, "every request is still reported");
    assert!(recs.iter().all(|r| r.flags.unanswered));
    assert!(counters.flows.flows_evicted >= 68);
    assert!(counters.flows.peak_flows <= 32);
    // Evicted first are the oldest.
    assert_eq!(recs[0].path, "/n/0");
}

/// A SYN flood of 200 000 sources at the default cap (65 536 flows), all
/// within the emergency embryonic timeout: the table stays at its cap, each
/// pass over the full table evicts a batch of the oldest, and the run ends.
#[test]
fn a_syn_flood_stays_within_the_default_flow_cap() {
    const SYNS: u32 = 200_000;
    let cap = FlowLimits::default().max_flows as u64;
    let segs: Vec<Seg> = (0..SYNS)
        .map(|i| {
            let [_, a, b, c] = i.to_be_bytes();
            let mut conn = Conn::new(&format!("10.{a}.{b}.{c}:40000"), "10.255.0.1:80", i, 0);
            // 20 µs apart: 4 s in all, inside the 5 s emergency timeout.
            conn.now_us += u64::from(i) * 20;
            conn.raw(true, SYN, b"")
        })
        .collect();
    let (recs, counters) = run_capture(pcap_of(Link::Ethernet, &segs));
    assert!(recs.is_empty(), "a SYN alone is no exchange");
    let f = &counters.flows;
    assert_eq!(f.flows_created, u64::from(SYNS));
    assert_eq!(f.peak_flows, cap);
    assert_eq!(f.flows_timed_out, 0);
    let batch = cap / 16;
    let passes = (u64::from(SYNS) - cap).div_ceil(batch);
    assert_eq!(f.table_full, passes, "one pass per batch of new flows");
    assert_eq!(f.flows_evicted, passes * batch);
}

/// Clients that pipeline requests with large heads and are never answered
/// hold HTTP state; past the handlers' memcap the least recently seen flows
/// drop theirs. Every request is still reported once, the dropped ones
/// flagged `http_memcap`, and the state held never passes the cap by more
/// than what one segment adds.
#[test]
fn http_state_past_its_memcap_is_shed_and_every_request_still_reported() {
    const FLOWS: u32 = 40;
    const REQUESTS: usize = 20;
    const CAP: usize = 256 * 1024;
    let cookie = format!("Cookie: session={}\r\n", "c".repeat(2000));
    let mut segs = Vec::new();
    let mut conns: Vec<Conn> = (0..FLOWS)
        .map(|i| {
            let mut c = Conn::new(&format!("10.0.1.{}:40000", i + 1), "10.0.0.2:80", i, 7);
            // Each request in one segment: no head is half read when a flow
            // sheds, so no request is lost (a half-read one would be, with
            // only its connection's `http_memcap` anomaly to count it).
            c.mss = 4000;
            c
        })
        .collect();
    for c in &mut conns {
        segs.extend(c.handshake());
    }
    // Round-robin, one request per flow at a time, so that every flow
    // grows and the earliest flows are the least recently seen.
    for n in 0..REQUESTS {
        for c in &mut conns {
            let req = format!("GET /r/{n} HTTP/1.1\r\nHost: api.test\r\n{cookie}\r\n");
            segs.extend(c.send(true, req.as_bytes()));
        }
    }
    segs.sort_by_key(|s| s.ts_us);
    let mut config = EngineConfig::new(test_key());
    config.flows = FlowLimits {
        handler_memcap_bytes: CAP,
        ..FlowLimits::default()
    };
    let (recs, counters) = run_capture_with(pcap_of(Link::Ethernet, &segs), config);
    assert_eq!(recs.len(), FLOWS as usize * REQUESTS, "every request once");
    assert!(recs
        .iter()
        .all(|r| r.status.is_none() && r.flags.unanswered));
    let shed = recs
        .iter()
        .filter(|r| r.anomalies.iter().any(|a| a == "http_memcap"))
        .count();
    let f = &counters.flows;
    assert!(f.handler_memcap_sheds > 0 && shed > 0);
    assert_eq!(
        counters.http.anomalies.get("http_memcap").copied(),
        Some(shed as u64 + 2 * f.handler_memcap_sheds),
        "each shed exchange, and each shed flow once per direction"
    );
    // One segment adds one request of a few KiB.
    assert!(
        f.peak_handler_bytes as usize <= CAP + 8 * 1024,
        "{}",
        f.peak_handler_bytes
    );
    // Without the cap, the same flows hold several times as much.
    let (recs, counters) = run_capture(pcap_of(Link::Ethernet, &segs));
    assert_eq!(recs.len(), FLOWS as usize * REQUESTS);
    assert_eq!(counters.flows.handler_memcap_sheds, 0);
    assert!(counters.flows.peak_handler_bytes as usize > 4 * CAP);
}

/// Checksum offload (reliability target S13): a capture on the sending
/// host sees its own packets before the NIC fills in the checksums, and
/// TSO/GSO hands the capture super-packets whose IPv4 total length is 0.
/// Neither is dropped: the conversation gives the same exchanges.
#[test]
fn offloaded_checksums_and_zero_total_length_are_parsed() {
    let mut c = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    let clean = conversation(&mut c);
    let mut offloaded = clean.clone();
    for (i, seg) in offloaded.iter_mut().enumerate() {
        let ihl = usize::from(seg.ip[0] & 0x0f) * 4;
        // IPv4 header checksum and TCP checksum: zero on odd packets
        // (not filled in yet), garbage on even ones.
        let junk = if i % 2 == 1 { [0, 0] } else { [0xde, 0xad] };
        seg.ip[10..12].copy_from_slice(&junk);
        seg.ip[ihl + 16..ihl + 18].copy_from_slice(&junk);
        if seg.ip.len() > ihl + 20 {
            // Segments with payload: total length 0, as GSO leaves it.
            seg.ip[2..4].copy_from_slice(&[0, 0]);
        }
    }
    let (want, want_counters) = run_capture(pcap_of(Link::Ethernet, &clean));
    let (got, counters) = run_capture(pcap_of(Link::Ethernet, &offloaded));
    assert_eq!(summarize(&got), TWO);
    assert_eq!(got, want);
    assert_eq!(counters.dropped, want_counters.dropped);
    assert_eq!(counters.packets, want_counters.packets);
    assert_eq!(counters.reassembly.gaps, 0);
}

#[test]
fn a_new_syn_on_a_closed_tuple_is_a_new_connection() {
    let mut c = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    let mut segs = conversation(&mut c);
    let mut again = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 777_777, 888_888);
    again.now_us = c.now_us;
    segs.extend(again.handshake());
    segs.extend(again.send(true, &get("/again")));
    segs.extend(again.send(false, &ok("{}")));
    segs.extend(again.close());
    let (recs, counters) = run_capture(pcap_of(Link::Ethernet, &segs));
    assert_eq!(summarize(&recs)[2], "GET /again -> 200");
    assert_eq!(counters.flows.flows_created, 2);
    assert_eq!(counters.flows.flows_reused, 1);
}

#[test]
fn fin_retransmitted_and_syn_retransmitted() {
    let mut c = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    let mut segs = c.handshake();
    segs.insert(1, segs[0].clone()); // SYN retransmitted
    segs.extend(c.send(true, &get("/x")));
    segs.extend(c.send(false, &ok("{}")));
    let close = c.close();
    segs.push(close[0].clone());
    segs.push(close[0].clone()); // FIN retransmitted
    segs.extend(close[1..].iter().cloned());
    let (recs, counters) = run_capture(pcap_of(Link::Ethernet, &segs));
    assert_eq!(summarize(&recs), ["GET /x -> 200"]);
    assert_eq!(counters.flows.flows_created, 1);
    assert_eq!(counters.flows.flows_reused, 0);
}

#[test]
fn every_link_type_and_vlan_stack() {
    for link in [
        Link::Ethernet,
        Link::Vlan(vec![100]),
        Link::Vlan(vec![10, 20]),
        Link::Sll,
        Link::Sll2,
        Link::Null,
        Link::Loop,
        Link::Raw,
    ] {
        let mut c = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
        let (recs, _) = run_capture(pcap_of(link.clone(), &conversation(&mut c)));
        assert_eq!(summarize(&recs), TWO, "{link:?}");
        let mut c6 = Conn::new("[2001:db8::1]:40000", "[2001:db8::2]:80", 1000, 5000);
        let (recs, _) = run_capture(pcap_of(link.clone(), &conversation(&mut c6)));
        assert_eq!(summarize(&recs), TWO, "{link:?} over IPv6");
        assert_eq!(recs[0].server.to_string(), "[2001:db8::2]:80");
    }
}

#[test]
fn ipv6_extension_headers_are_skipped() {
    use crate::support::pcap::{ip_packet, Pcap};
    let mut c = Conn::new("[2001:db8::1]:40000", "[2001:db8::2]:80", 1000, 5000);
    let segs = conversation(&mut c);
    let mut p = Pcap::new(Link::Ethernet);
    let hop = (0u8, vec![0, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop, PadN
    let dst = (60u8, vec![0, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // dest options, 16 bytes
    for s in &segs {
        // Re-wrap the TCP segment with extension headers.
        let tcp = &s.ip[40..];
        let (src, dstip) = if s.from_client {
            (c.client.ip(), c.server.ip())
        } else {
            (c.server.ip(), c.client.ip())
        };
        p.push_ip(
            s.ts_us,
            &ip_packet(src, dstip, 6, tcp, &[hop.clone(), dst.clone()]),
        );
    }
    let (recs, _) = run_capture(p.to_bytes());
    assert_eq!(summarize(&recs), TWO);
}

#[test]
fn ipv4_fragments_are_reassembled() {
    use crate::support::pcap::{fragment_v4, Pcap};
    let mut c = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    let segs = conversation(&mut c);
    let mut p = Pcap::new(Link::Ethernet);
    for (i, s) in segs.iter().enumerate() {
        if s.ip.len() > 100 {
            let mut frags = fragment_v4(&s.ip, 64, i as u16);
            frags.reverse(); // and out of order
            for f in frags {
                p.push_ip(s.ts_us, &f);
            }
        } else {
            p.push_ip(s.ts_us, &s.ip);
        }
    }
    let (recs, counters) = run_capture(p.to_bytes());
    assert_eq!(summarize(&recs), TWO);
    assert!(counters.defrag.datagrams_reassembled >= 4);
}

#[test]
fn out_of_order_overflow_is_counted_and_bounded() {
    let mut c = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    c.mss = 1000;
    let mut segs = c.handshake();
    segs.extend(c.send(true, &get("/huge")));
    let body = "z".repeat(600_000);
    let mut resp = c.send(false, &ok(&body));
    let ack = resp.pop();
    resp.remove(0); // the head segment is lost: everything after is out of order
    segs.extend(resp);
    segs.extend(ack);
    segs.extend(c.close());
    let (recs, counters) = run_capture(pcap_of(Link::Ethernet, &segs));
    assert!(counters.reassembly.ooo_overflow > 0);
    assert!(counters.reassembly_peak_buffered_bytes <= 256 * 1024);
    // The request is reported; its response head was lost.
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].path, "/huge");
    assert!(recs[0].flags.unanswered || recs[0].flags.gap);
}

#[test]
fn stray_packets_create_no_flows() {
    let mut c = Conn::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    let segs = vec![
        c.raw(true, ACK, b""),
        c.raw(false, RST, b""),
        c.raw(true, FIN | ACK, b""),
    ];
    let (recs, counters) = run_capture(pcap_of(Link::Ethernet, &segs));
    assert!(recs.is_empty());
    assert_eq!(counters.flows.flows_created, 0);
    assert_eq!(counters.flows.segments_without_flow, 3);
}

/// `EngineConfig::max_records_per_call`: a burst (here the end of input,
/// which flushes 3 flows × 40 pending requests) comes out in batches of at
/// most the bound, and `drain_more` gives the rest: the same records, in
/// the same order, as an unbounded engine gives at once.
#[test]
fn a_burst_of_records_comes_out_in_bounded_batches() {
    use shadowtap_proto::engine::Engine;
    use shadowtap_sensor::capture::{CaptureSource, FileSource};
    let mut segs = Vec::new();
    for i in 0..3 {
        let mut c = Conn::new(
            &format!("10.0.0.{}:40000", i + 1),
            "10.0.0.9:80",
            1000,
            5000,
        );
        segs.extend(c.handshake());
        let pipelined: Vec<u8> = (0..40)
            .flat_map(|n| format!("GET /r/{n} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes())
            .collect();
        segs.extend(c.send(true, &pipelined));
    }
    let bytes = pcap_of(Link::Ethernet, &segs);
    let (unbounded, _) = run_capture(bytes.clone());
    assert_eq!(unbounded.len(), 120);

    let mut config = EngineConfig::new(test_key());
    config.max_records_per_call = 16;
    let mut engine = Engine::new(config);
    let mut source =
        FileSource::from_reader("test.pcap", Box::new(std::io::Cursor::new(bytes)), None)
            .expect("capture");
    let mut out = Vec::new();
    let mut batches = Vec::new();
    while let Some(p) = source.next_packet().expect("capture") {
        engine.on_packet(p.ts, p.link_type, p.data, &mut out);
        assert!(out.is_empty(), "no request is answered");
    }
    engine.finish(&mut out);
    loop {
        assert!(out.len() <= 16, "a batch of {}", out.len());
        batches.push(std::mem::take(&mut out));
        if engine.backlog() == 0 {
            break;
        }
        engine.drain_more(&mut out);
    }
    assert_eq!(batches.len(), 120 / 16 + 1);
    let bounded: Vec<_> = batches.into_iter().flatten().collect();
    assert_eq!(summarize(&bounded), summarize(&unbounded));
    assert_eq!(bounded, unbounded);
    assert_eq!(engine.counters().http.exchanges, 120);
}
