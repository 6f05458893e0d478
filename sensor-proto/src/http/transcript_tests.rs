//! Conversation transcript tests (`testdata/*.t`).
//!
//! # Format
//!
//! A transcript is a text file read line by line:
//!
//! - `>>>` starts a client→server section, `<<<` a server→client section.
//!   Each section gets the next timestamp (1, 2, 3, … nanoseconds); every
//!   byte of a section is fed with that timestamp.
//! - Inside a section every line is sent followed by CRLF, except a line
//!   ending in a single `\`, which is sent without a line ending. Escapes:
//!   `\r`, `\n`, `\t`, `\\` and `\xHH`. An empty line is a bare CRLF.
//! - `@@@ repeat N TEXT` appends TEXT (escapes allowed, no CRLF) N times.
//! - `><> N` inside a section: N bytes of that section's direction are
//!   missing at this point (`on_gap`); the section goes on after it.
//! - `!!! close-client` / `!!! close-server`: FIN from the client (the
//!   `ToServer` direction) / the server (`ToClient`), with the next timestamp.
//! - `#` starts a comment line (use `\x23` for a literal leading `#`).
//! - `=== expect` ends the conversation; `finish` is then called. Each
//!   following non-empty line is one expected event, in order:
//!   - an exchange: `METHOD TARGET -> STATUS` (`-` when unanswered), then
//!     optional words, each present only when not default:
//!     `req_body=F:LEN[/WIRE][!]` and `resp_body=…` (F is `none`, `cl`,
//!     `chunked` or `close`; `/WIRE` when the wire length differs; `!` when
//!     incomplete; shown when framing is not `none` or the body is
//!     incomplete), `interim=100,…`, `tunnel=websocket|h2c|other_upgrade|connect`,
//!     `anomalies=name,…` (declaration order), and `gap`;
//!   - a connection-level anomaly: `! to_server|to_client anomaly_name`.
//!
//! Besides the exact events, every run checks body-sample invariants, and
//! every transcript is re-fed split at every byte boundary (small ones),
//! byte by byte, and at random split points: output must be identical (S11).

use std::fmt::Write as _;

use crate::flow::Direction;
use crate::http::limits::BODY_SAMPLE_MAX;
use crate::http::{Body, Framing, HttpConnection, HttpEvent, Tunnel};
use crate::time::Timestamp;

#[derive(Clone, Debug)]
enum Op {
    Data(Direction, Timestamp, Vec<u8>),
    Gap(Direction, Timestamp, u64),
    Close(Direction, Timestamp),
}

struct Transcript {
    name: String,
    ops: Vec<Op>,
    expect: Vec<String>,
}

/// Decodes escapes; the flag says the line ended in `\` (no CRLF).
fn unescape(line: &str) -> (Vec<u8>, bool) {
    let b = line.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            None => return (out, true),
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let hex = line.get(i + 2..i + 4).expect("\\x needs two hex digits");
                out.push(u8::from_str_radix(hex, 16).expect("bad \\x escape"));
                i += 2;
            }
            Some(c) => panic!("unknown escape \\{}", *c as char),
        }
        i += 2;
    }
    (out, false)
}

fn parse(name: &str, text: &str) -> Transcript {
    let mut ops = Vec::new();
    let mut expect = Vec::new();
    let mut cur: Option<(Direction, Timestamp)> = None;
    let mut pending: Vec<u8> = Vec::new();
    let mut clock = 0u64;
    let mut in_expect = false;
    let flush = |cur: Option<(Direction, Timestamp)>, pending: &mut Vec<u8>, ops: &mut Vec<Op>| {
        if let Some((dir, ts)) = cur {
            if !pending.is_empty() {
                ops.push(Op::Data(dir, ts, std::mem::take(pending)));
            }
        }
    };
    for line in text.lines() {
        if in_expect {
            let l = line.trim();
            if !l.is_empty() && !l.starts_with('#') {
                expect.push(l.to_string());
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let section = match line {
            ">>>" => Some(Direction::ToServer),
            "<<<" => Some(Direction::ToClient),
            _ => None,
        };
        if let Some(dir) = section {
            flush(cur, &mut pending, &mut ops);
            clock += 1;
            cur = Some((dir, Timestamp(clock)));
        } else if let Some(n) = line.strip_prefix("><> ") {
            flush(cur, &mut pending, &mut ops);
            let (dir, ts) = cur.expect("gap outside a section");
            ops.push(Op::Gap(dir, ts, n.trim().parse().expect("gap length")));
        } else if let Some(what) = line.strip_prefix("!!! ") {
            flush(cur, &mut pending, &mut ops);
            cur = None;
            clock += 1;
            let dir = match what.trim() {
                "close-client" => Direction::ToServer,
                "close-server" => Direction::ToClient,
                other => panic!("{name}: unknown directive {other}"),
            };
            ops.push(Op::Close(dir, Timestamp(clock)));
        } else if let Some(rest) = line.strip_prefix("@@@ repeat ") {
            let (n, text) = rest.split_once(' ').expect("@@@ repeat N TEXT");
            let (bytes, _) = unescape(text);
            for _ in 0..n.parse::<usize>().expect("repeat count") {
                pending.extend_from_slice(&bytes);
            }
        } else if line == "=== expect" {
            flush(cur, &mut pending, &mut ops);
            in_expect = true;
        } else {
            assert!(cur.is_some(), "{name}: data outside a section: {line}");
            let (bytes, raw) = unescape(line);
            pending.extend_from_slice(&bytes);
            if !raw {
                pending.extend_from_slice(b"\r\n");
            }
        }
    }
    assert!(in_expect, "{name}: missing `=== expect`");
    Transcript {
        name: name.to_string(),
        ops,
        expect,
    }
}

fn load_all() -> Vec<Transcript> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/testdata");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("testdata dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "t"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("read transcript");
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("?");
            parse(name, &text)
        })
        .collect()
}

/// Feeds `ops`, cutting data op `i` at the offsets `cuts(i, len)` returns.
fn run(ops: &[Op], cuts: &mut dyn FnMut(usize, usize) -> Vec<usize>) -> Vec<HttpEvent> {
    let mut conn = HttpConnection::new();
    let mut out = Vec::new();
    let mut last = Timestamp(0);
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Data(dir, ts, bytes) => {
                let mut start = 0;
                let mut points = cuts(i, bytes.len());
                points.push(bytes.len());
                for p in points {
                    if p > start && p <= bytes.len() {
                        conn.on_data(*dir, *ts, &bytes[start..p], &mut out);
                        start = p;
                    }
                }
                last = *ts;
            }
            Op::Gap(dir, ts, n) => conn.on_gap(*dir, *ts, *n, &mut out),
            Op::Close(dir, ts) => {
                conn.on_close(*dir, *ts, &mut out);
                last = *ts;
            }
        }
    }
    conn.finish(last.add_nanos(1), &mut out);
    out
}

fn body_str(b: &Body) -> Option<String> {
    if b.framing == Framing::None && b.complete {
        return None;
    }
    let f = match b.framing {
        Framing::None => "none",
        Framing::ContentLength => "cl",
        Framing::Chunked => "chunked",
        Framing::CloseDelimited => "close",
    };
    let mut s = format!("{f}:{}", b.len);
    if b.wire_len != b.len {
        let _ = write!(s, "/{}", b.wire_len);
    }
    if !b.complete {
        s.push('!');
    }
    Some(s)
}

fn dir_str(d: Direction) -> &'static str {
    match d {
        Direction::ToServer => "to_server",
        Direction::ToClient => "to_client",
    }
}

fn render(ev: &HttpEvent) -> String {
    let x = match ev {
        HttpEvent::Anomaly { dir, anomaly, .. } => {
            return format!("! {} {}", dir_str(*dir), anomaly)
        }
        HttpEvent::Exchange(x) => x,
    };
    let status = x
        .response
        .as_ref()
        .map_or("-".to_string(), |r| r.head.status.to_string());
    let mut s = format!(
        "{} {} -> {status}",
        x.request.head.method,
        String::from_utf8_lossy(&x.request.head.target)
    );
    if let Some(b) = body_str(&x.request.body) {
        let _ = write!(s, " req_body={b}");
    }
    if let Some(b) = x.response.as_ref().and_then(|r| body_str(&r.body)) {
        let _ = write!(s, " resp_body={b}");
    }
    if !x.interim.is_empty() {
        let v: Vec<_> = x.interim.iter().map(u16::to_string).collect();
        let _ = write!(s, " interim={}", v.join(","));
    }
    if let Some(t) = x.tunnel {
        let t = match t {
            Tunnel::WebSocket => "websocket",
            Tunnel::H2c => "h2c",
            Tunnel::OtherUpgrade => "other_upgrade",
            Tunnel::Connect => "connect",
        };
        let _ = write!(s, " tunnel={t}");
    }
    if !x.anomalies.is_empty() {
        let v: Vec<_> = x.anomalies.iter().map(|a| a.name()).collect();
        let _ = write!(s, " anomalies={}", v.join(","));
    }
    if x.gap {
        s.push_str(" gap");
    }
    s
}

fn check_invariants(name: &str, events: &[HttpEvent]) {
    for ev in events {
        let HttpEvent::Exchange(x) = ev else { continue };
        let bodies = std::iter::once(&x.request.body).chain(x.response.as_ref().map(|r| &r.body));
        for b in bodies {
            assert!(b.sample.len() <= BODY_SAMPLE_MAX, "{name}: sample over cap");
            assert!(b.len <= b.wire_len, "{name}: payload longer than wire");
            if b.complete {
                let want = usize::try_from(b.len)
                    .unwrap_or(usize::MAX)
                    .min(BODY_SAMPLE_MAX);
                assert_eq!(b.sample.len(), want, "{name}: sample of a complete body");
            }
        }
        assert!(x.request.start <= x.request.end, "{name}: request times");
        if let Some(r) = &x.response {
            assert!(r.start <= r.end, "{name}: response times");
        }
    }
}

#[test]
fn transcripts_produce_the_expected_events() {
    let all = load_all();
    assert!(all.len() >= 25, "only {} transcripts", all.len());
    let mut failures = String::new();
    for t in &all {
        let events = run(&t.ops, &mut |_, _| Vec::new());
        check_invariants(&t.name, &events);
        let got: Vec<String> = events.iter().map(render).collect();
        if got != t.expect {
            let _ = writeln!(
                failures,
                "--- {}\nexpected:\n  {}\ngot:\n  {}",
                t.name,
                t.expect.join("\n  "),
                got.join("\n  ")
            );
        }
    }
    assert!(failures.is_empty(), "transcript mismatches:\n{failures}");
}

/// Tiny deterministic PRNG for split points (no `rand` dependency).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[test]
fn output_is_independent_of_chunk_splits() {
    for t in load_all() {
        let whole = run(&t.ops, &mut |_, _| Vec::new());
        let bytewise = run(&t.ops, &mut |_, len| (1..len).collect());
        assert_eq!(bytewise, whole, "{}: byte-by-byte differs", t.name);
        for seed in 1..=8u64 {
            let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let split = run(&t.ops, &mut |_, len| {
                let mut v = Vec::new();
                let mut p = 0;
                while p < len {
                    p += 1 + (rng.next() % 23) as usize;
                    v.push(p);
                }
                v
            });
            assert_eq!(
                split, whole,
                "{}: random split (seed {seed}) differs",
                t.name
            );
        }
        if data_len(&t.ops) > 4096 {
            continue;
        }
        for (j, op) in t.ops.iter().enumerate() {
            let Op::Data(_, _, bytes) = op else { continue };
            for k in 1..bytes.len() {
                let got = run(&t.ops, &mut |i, _| {
                    if i == j {
                        vec![k]
                    } else {
                        Vec::new()
                    }
                });
                assert_eq!(got, whole, "{}: split of op {j} at {k} differs", t.name);
            }
        }
    }
}

/// Bytes of stream data in a transcript.
fn data_len(ops: &[Op]) -> usize {
    ops.iter()
        .map(|o| match o {
            Op::Data(_, _, b) => b.len(),
            _ => 0,
        })
        .sum()
}

/// Mutated transcripts (flipped bytes, stray CR/LF, digits) must not panic
/// and must still give split-independent output.
#[test]
fn mutated_transcripts_are_split_invariant() {
    let mut rng = XorShift(0x5EED_1234_ABCD_0001);
    for t in load_all() {
        if data_len(&t.ops) > 4096 {
            continue;
        }
        for _ in 0..12 {
            let mut ops = t.ops.clone();
            for op in &mut ops {
                let Op::Data(_, _, bytes) = op else { continue };
                for _ in 0..1 + rng.next() % 4 {
                    if bytes.is_empty() {
                        break;
                    }
                    let at = (rng.next() % bytes.len() as u64) as usize;
                    bytes[at] = match rng.next() % 5 {
                        0 => b'\r',
                        1 => b'\n',
                        2 => b'0' + (rng.next() % 10) as u8,
                        3 => b' ',
                        _ => rng.next() as u8,
                    };
                }
            }
            let whole = run(&ops, &mut |_, _| Vec::new());
            check_invariants(&t.name, &whole);
            let bytewise = run(&ops, &mut |_, len| (1..len).collect());
            if bytewise != whole {
                for op in &ops {
                    if let Op::Data(_, _, b) = op {
                        eprintln!("DATA {:?}", String::from_utf8_lossy(b));
                    }
                }
            }
            assert_eq!(bytewise, whole, "{}: mutated byte-by-byte differs", t.name);
            let split = run(&ops, &mut |_, len| {
                let mut v = Vec::new();
                let mut p = 0;
                while p < len {
                    p += 1 + (rng.next() % 9) as usize;
                    v.push(p);
                }
                v
            });
            assert_eq!(split, whole, "{}: mutated random split differs", t.name);
        }
    }
}
