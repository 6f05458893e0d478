//! Micro-benchmark of `record::build` + `write_json` (as the sensor runs them) on capture-like
//! exchanges (JSON bodies of 100 B – 50 KB, 4 KiB samples).
//!
//! `cargo run --release -p shadowtap-proto --example record_bench [N]`

use std::hint::black_box;
use std::time::Instant;

use shadowtap_proto::http::limits::BODY_SAMPLE_MAX;
use shadowtap_proto::http::{
    AnomalySet, Body, Exchange, Framing, Header, HttpVersion, Message, RequestHead, ResponseHead,
};
use shadowtap_proto::record::{build, FingerprintKey, FlowContext};
use shadowtap_proto::Timestamp;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "alpha", "beta", "gamma", "delta", "red", "green", "blue", "gold", "silver", "north", "south",
    "east", "west", "paid", "open", "closed", "pending", "premium", "basic",
];

fn body_json(rng: &mut Rng, target: usize) -> Vec<u8> {
    let mut s = String::from("{");
    let mut i = 0;
    while s.len() < target {
        if i > 0 {
            s.push(',');
        }
        let w = |r: &mut Rng| WORDS[r.below(WORDS.len() as u64) as usize];
        match rng.below(6) {
            0 => s.push_str(&format!("\"id\":{}", rng.below(1_000_000_000))),
            1 => s.push_str(&format!(
                "\"uuid\":\"{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}\"",
                rng.below(1 << 32),
                rng.below(1 << 16),
                rng.below(1 << 12),
                rng.below(1 << 12),
                rng.below(1 << 48)
            )),
            2 => s.push_str(&format!("\"name_{i}\":\"{} {}\"", w(rng), w(rng))),
            3 => s.push_str(&format!(
                "\"amount_{i}\":{}.{:02}",
                rng.below(10_000),
                rng.below(100)
            )),
            4 => s.push_str(&format!("\"active_{i}\":{}", rng.below(2) == 0)),
            _ => s.push_str(&format!(
                "\"item_{i}\":{{\"sku\":\"SKU-{:06}\",\"qty\":{},\"tags\":[\"{}\",\"{}\"]}}",
                rng.below(1_000_000),
                rng.below(50),
                w(rng),
                w(rng)
            )),
        }
        i += 1;
    }
    s.push('}');
    s.into_bytes()
}

fn body(full: Vec<u8>) -> Body {
    let len = full.len() as u64;
    let mut sample = full;
    sample.truncate(BODY_SAMPLE_MAX);
    Body {
        framing: Framing::ContentLength,
        wire_len: len,
        len,
        sample,
        complete: true,
    }
}

fn hdr(name: &str, value: &str) -> Header {
    Header {
        name: name.into(),
        value: value.as_bytes().into(),
    }
}

/// `RECORD_BENCH_NO_SHAPE=1` labels response bodies as text (no shape).
fn content_type() -> &'static str {
    if std::env::var_os("RECORD_BENCH_NO_SHAPE").is_some() {
        "text/plain"
    } else {
        "application/json; charset=utf-8"
    }
}

fn exchange(rng: &mut Rng) -> Exchange {
    let size = 100 + rng.below(50_000) as usize;
    let with_req_body = rng.below(3) == 0;
    let req_body = if with_req_body {
        body(body_json(rng, size / 4 + 100))
    } else {
        Body::empty()
    };
    let mut req_headers = vec![
        hdr("Host", "api3.internal.example.com"),
        hdr("User-Agent", "bench/1.0"),
        hdr("Accept", "application/json"),
        hdr("Accept-Encoding", "gzip"),
        hdr("Connection", "keep-alive"),
        hdr("Authorization", "Bearer 0123456789abcdef0123456789abcdef"),
        hdr("X-Request-Id", "d9a1e25f-ca7c-48d4-83db-9009935bab90"),
    ];
    if with_req_body {
        req_headers.push(hdr("Content-Type", "application/json"));
        req_headers.push(hdr("Content-Length", "1234"));
    }
    Exchange {
        request: Message {
            start: Timestamp::from_parts(1_700_000_000, 1_000),
            end: Timestamp::from_parts(1_700_000_000, 2_000),
            head: RequestHead {
                method: if with_req_body { "POST" } else { "GET" }.into(),
                target: format!(
                    "/api/v1/payments/{:08x}-ca7c-48d4-83db-9009935bab90?limit=10&page=2",
                    rng.below(1 << 32)
                )
                .into_bytes()
                .into(),
                version: HttpVersion::Http11,
                headers: req_headers,
            },
            body: req_body,
        },
        response: Some(Message {
            start: Timestamp::from_parts(1_700_000_000, 40_000),
            end: Timestamp::from_parts(1_700_000_000, 90_000),
            head: ResponseHead {
                status: 200,
                version: HttpVersion::Http11,
                headers: vec![
                    hdr("Date", "Tue, 14 Nov 2023 22:13:20 GMT"),
                    hdr("Server", "bench"),
                    hdr("Connection", "keep-alive"),
                    hdr("X-Request-Id", "d9a1e25f-ca7c-48d4-83db-9009935bab90"),
                    hdr("Content-Type", content_type()),
                    hdr("Content-Length", "1234"),
                ],
            },
            body: body(body_json(rng, size)),
        }),
        interim: Vec::new(),
        tunnel: None,
        gap: false,
        anomalies: AnomalySet::EMPTY,
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let exchanges: Vec<Exchange> = (0..n).map(|_| exchange(&mut rng)).collect();
    let flow = FlowContext {
        client: "10.1.129.146:47824".parse().expect("addr"),
        server: "10.0.0.13:80".parse().expect("addr"),
        mid_stream: false,
    };
    let key = FingerprintKey::new([7; 32]);
    let mut out = Vec::with_capacity(1 << 16);
    let mut out_bytes = 0usize;
    let mut best_build = f64::MAX;
    let mut best_total = f64::MAX;
    for _ in 0..10 {
        // Like the sensor: each record is built, written and dropped.
        let t = Instant::now();
        for x in &exchanges {
            black_box(build(x, &flow, &key));
        }
        best_build = best_build.min(t.elapsed().as_secs_f64());
        out_bytes = 0;
        let t = Instant::now();
        for x in &exchanges {
            let r = build(x, &flow, &key);
            out.clear();
            r.write_json(&mut out);
            out.push(b'\n');
            out_bytes += black_box(&out).len();
        }
        best_total = best_total.min(t.elapsed().as_secs_f64());
    }
    let best_ser = best_total - best_build;
    let out = vec![0u8; out_bytes];
    let us = |s: f64| s * 1e6 / n as f64;
    eprintln!(
        "{n} exchanges, {:.0} output bytes/record: build {:.2} us, serialize {:.2} us, total {:.2} us per exchange",
        out.len() as f64 / n as f64,
        us(best_build),
        us(best_ser),
        us(best_build + best_ser)
    );
}
