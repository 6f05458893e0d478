//! Byte-exact TCP reassembly against PcapPlusPlus's published outputs.
//!
//! The flow table runs with a recording handler (no HTTP), and the stream
//! bytes it delivers are compared with the files PcapPlusPlus's own tests
//! expect for the same captures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use shadowtap_proto::flow::{Direction, Endpoints, FlowHandler, FlowLimits, FlowTable};
use shadowtap_proto::hash::HashSeed;
use shadowtap_proto::time::Timestamp;
use shadowtap_proto::wire::{self, Decoded};
use shadowtap_sensor::capture::{CaptureSource, FileSource};

/// Stream bytes of one flow: each direction alone and both in delivery
/// order, with PcapPlusPlus's `[N bytes missing]` marker for each gap.
#[derive(Default)]
struct Recorder {
    endpoints: Option<Endpoints>,
    to_server: Vec<u8>,
    to_client: Vec<u8>,
    both: Vec<u8>,
    gaps: u64,
}

enum Ev {
    Done(Box<Recorder>),
}

impl FlowHandler for Recorder {
    type Event = Ev;

    fn new(endpoints: Endpoints, _mid_stream: bool) -> Self {
        Recorder {
            endpoints: Some(endpoints),
            ..Default::default()
        }
    }
    fn classify(first: &[u8]) -> Option<bool> {
        if first.starts_with(b"HTTP/") {
            Some(false)
        } else if first.iter().take_while(|b| b.is_ascii_uppercase()).count() >= 3 {
            Some(true)
        } else {
            None
        }
    }
    fn data(&mut self, dir: Direction, _: Timestamp, bytes: &[u8], _: &mut Vec<Ev>) {
        match dir {
            Direction::ToServer => self.to_server.extend_from_slice(bytes),
            Direction::ToClient => self.to_client.extend_from_slice(bytes),
        }
        self.both.extend_from_slice(bytes);
    }
    fn gap(&mut self, dir: Direction, _: Timestamp, len: u64, _: &mut Vec<Ev>) {
        // PcapPlusPlus writes this marker where bytes are missing.
        let marker = format!("[{len} bytes missing]");
        match dir {
            Direction::ToServer => self.to_server.extend_from_slice(marker.as_bytes()),
            Direction::ToClient => self.to_client.extend_from_slice(marker.as_bytes()),
        }
        self.both.extend_from_slice(marker.as_bytes());
        self.gaps += len;
    }
    fn close(&mut self, _: Direction, _: Timestamp, _: &mut Vec<Ev>) {}
    fn finish(&mut self, _: Timestamp, out: &mut Vec<Ev>) {
        out.push(Ev::Done(Box::new(std::mem::take(self))));
    }
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/pcapplusplus")
        .join(rel)
}

/// Reassembles every flow of a capture, keyed by `client-server` as
/// PcapPlusPlus names its files (`a.b.c.d.port-e.f.g.h.port`).
fn reassemble(rel: &str) -> BTreeMap<String, Box<Recorder>> {
    let mut source = FileSource::open(&fixture(rel)).expect("fixture opens");
    let mut table: FlowTable<Recorder> =
        FlowTable::new(FlowLimits::default(), HashSeed::from_bytes([3; 16]));
    let mut events = Vec::new();
    while let Some(p) = source.next_packet().expect("fixture reads") {
        if let Ok(Decoded::Tcp(seg)) = wire::decode(p.link_type, p.data) {
            table.on_segment(p.ts, &seg, &mut events);
        }
    }
    table.finish(&mut events);
    let name = |a: std::net::SocketAddr| format!("{}.{}", a.ip(), a.port());
    events
        .into_iter()
        .map(|Ev::Done(r)| {
            let e = r.endpoints.expect("roles decided");
            (format!("{}-{}", name(e.client), name(e.server)), r)
        })
        .collect()
}

fn expected(rel: &str) -> Vec<u8> {
    std::fs::read(fixture(rel)).expect("expected output exists")
}

#[test]
fn tcp_reassembly_sides_match_byte_for_byte() {
    let flows = reassemble("ExamplesTest/pcap_examples/tcp-reassembly.pcap");
    let f = &flows["172.16.133.54.64370-23.21.118.18.80"];
    assert_eq!(f.to_server.len(), 9997);
    assert_eq!(f.to_client.len(), 29480);
    assert!(f.to_server == expected("ExamplesTest/expected_output/tcpreassembly_sides/172.16.133.54.64370-23.21.118.18.80.txt"));
    assert!(f.to_client == expected("ExamplesTest/expected_output/tcpreassembly_sides/23.21.118.18.80-172.16.133.54.64370.txt"));
    assert!(f.both == expected("ExamplesTest/expected_output/tcpreassembly_sanity/172.16.133.54.64370-23.21.118.18.80.txt"));
    assert_eq!(f.gaps, 0);
}

#[test]
fn twelve_api_streams_match_byte_for_byte() {
    let flows = reassemble("ExamplesTest/pcap_examples/http-packets.pcap");
    let dir = fixture("ExamplesTest/expected_output/tcpreassembly_multiple_streams");
    let mut compared = 0;
    for entry in std::fs::read_dir(dir).expect("expected outputs") {
        let path = entry.expect("dir entry").path();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("file name")
            .to_string();
        let flow = flows.get(&stem).unwrap_or_else(|| panic!("no flow {stem}"));
        let want = std::fs::read(&path).expect("read expected");
        assert_eq!(flow.both.len(), want.len(), "{stem}: length");
        if flow.both != want {
            let at = flow
                .both
                .iter()
                .zip(&want)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            let show = |b: &[u8]| {
                String::from_utf8_lossy(&b[at.saturating_sub(60)..(at + 60).min(b.len())])
                    .into_owned()
            };
            panic!(
                "{stem}: bytes differ at {at}:\nours:     {:?}\nexpected: {:?}",
                show(&flow.both),
                show(&want)
            );
        }
        compared += 1;
    }
    assert_eq!(compared, 12);
}

#[test]
fn single_stream_captures_match_byte_for_byte() {
    for (pcap, out) in [
        (
            "Pcap++Test/PcapExamples/one_tcp_stream.pcap",
            "Pcap++Test/PcapExamples/one_tcp_stream_output.txt",
        ),
        (
            "Pcap++Test/PcapExamples/one_http_stream_fin.pcap",
            "Pcap++Test/PcapExamples/one_http_stream_fin_output.txt",
        ),
        (
            "Pcap++Test/PcapExamples/one_http_stream_fin2.pcap",
            "Pcap++Test/PcapExamples/one_http_stream_fin2_output.txt",
        ),
        (
            "Pcap++Test/PcapExamples/one_http_stream_rst.pcap",
            "Pcap++Test/PcapExamples/one_http_stream_rst_output.txt",
        ),
        (
            "Pcap++Test/PcapExamples/one_ipv6_http_stream.pcap",
            "Pcap++Test/PcapExamples/one_ipv6_http_stream.txt",
        ),
    ] {
        let flows = reassemble(pcap);
        let want = expected(out);
        let found = flows.values().any(|f| f.both == want);
        let lens: Vec<usize> = flows.values().map(|f| f.both.len()).collect();
        assert!(
            found,
            "{pcap}: no flow matches {out} ({} bytes); flows have {lens:?}",
            want.len()
        );
    }
}

#[test]
fn three_streams_each_match() {
    let flows = reassemble("Pcap++Test/PcapExamples/three_http_streams.pcap");
    for n in 1..=3 {
        let want = expected(&format!(
            "Pcap++Test/PcapExamples/three_http_streams_conn_{n}_output.txt"
        ));
        assert!(flows.values().any(|f| f.both == want), "connection {n}");
    }
}
