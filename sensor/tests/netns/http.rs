//! A real HTTP server (Python's `http.server`, HTTP/1.1 keep-alive), a
//! client that records exactly what it sent and received, and the check
//! that exchange records say the same.
//!
//! The client speaks HTTP/1.1 over `std::net::TcpStream` by hand so that it
//! controls pipelining and chunked request bodies, and it parses every
//! response itself (status line, header names, `Content-Length` or chunked
//! body): the expectations come from the bytes on the wire, not from the
//! server's code.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::{Daemon, Netns};

/// The server: keep-alive, pipelining (requests are read in order from one
/// buffered stream), chunked and `Content-Length` bodies both ways.
///
/// * `GET /small` → 200 `application/json`, small body
/// * `GET /large?bytes=N` → 200 `application/octet-stream`, N bytes
/// * `GET /chunked` → 200 `text/plain`, 10 000 bytes in 1 000-byte chunks
/// * `GET /slow?secs=S` → waits S seconds, then 200 `text/plain`
/// * `POST /items` (JSON object) → 201 `application/json`
/// * `POST /upload` (any body, chunked or not) → 200 `application/json`
/// * anything else → 404 `application/json`
pub const SERVER_PY: &str = r#"
import json, socket, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status, ctype, payload, chunked=False):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(payload), 1000):
                part = payload[i:i + 1000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        arg = query.partition("=")[2]
        if path == "/small":
            self.reply(200, "application/json", json.dumps({"ok": True, "n": 1}).encode())
        elif path == "/large":
            self.reply(200, "application/octet-stream", b"x" * int(arg))
        elif path == "/chunked":
            self.reply(200, "text/plain", b"line\n" * 2000, chunked=True)
        elif path == "/slow":
            time.sleep(float(arg))
            self.reply(200, "text/plain", b"late")
        else:
            self.reply(404, "application/json", b'{"error": "not found"}')

    def do_POST(self):
        data = self.read_body()
        if self.path == "/items":
            fields = sorted(json.loads(data))
            self.reply(201, "application/json", json.dumps({"id": 42, "fields": fields}).encode())
        else:
            self.reply(200, "application/json", json.dumps({"received": len(data)}).encode())

class Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET

server = Server((sys.argv[1], int(sys.argv[2])), Handler)
server.daemon_threads = True
print("server ready", file=sys.stderr, flush=True)
server.serve_forever()
"#;

/// Starts the server in `ns` on `addr`; returns once it listens.
pub fn start_server(ns: &Netns, dir: &Path, addr: SocketAddr) -> Daemon {
    let script = dir.join("server.py");
    std::fs::write(&script, SERVER_PY).expect("write server script");
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let mut cmd: Command = ns.command(python);
    cmd.arg(&script)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string());
    let mut server = Daemon::spawn("http server", cmd);
    server.wait_for_stderr("server ready", Duration::from_secs(20));
    server
}

/// One request the client sends.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: &'static str,
    pub target: String,
    /// Extra headers after `Host` and `User-Agent`.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Send the body chunked rather than with `Content-Length`.
    pub chunked: bool,
}

impl Request {
    pub fn get(target: &str) -> Request {
        Request {
            method: "GET",
            target: target.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            chunked: false,
        }
    }

    pub fn post_json(target: &str, json: &Value) -> Request {
        Request {
            method: "POST",
            target: target.to_owned(),
            headers: vec![("Content-Type", "application/json".to_owned())],
            body: serde_json::to_vec(json).expect("json"),
            chunked: false,
        }
    }

    pub fn post_bytes(target: &str, len: usize, chunked: bool) -> Request {
        Request {
            method: "POST",
            target: target.to_owned(),
            headers: vec![("Content-Type", "application/octet-stream".to_owned())],
            body: (0..len).map(|i| b'a' + (i % 26) as u8).collect(),
            chunked,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Request {
        self.headers.push((name, value.to_owned()));
        self
    }

    fn encode(&self, host: &str) -> (Vec<u8>, Vec<String>) {
        let mut headers: Vec<(&str, String)> = vec![
            ("Host", host.to_owned()),
            ("User-Agent", "shadowtap-live-test".to_owned()),
        ];
        headers.extend(self.headers.iter().cloned());
        if self.chunked {
            headers.push(("Transfer-Encoding", "chunked".to_owned()));
        } else if !self.body.is_empty() {
            headers.push(("Content-Length", self.body.len().to_string()));
        }
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        for (name, value) in &headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if self.chunked {
            for chunk in self.body.chunks(4096) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            out.extend_from_slice(&self.body);
        }
        let names = headers
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        (out, names)
    }
}

/// One request/response pair as the client saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub method: String,
    pub target: String,
    pub request_headers: Vec<String>,
    pub request_framing: &'static str,
    pub request_body_len: usize,
    /// Top-level keys of a JSON object body, sorted.
    pub request_json_keys: Option<Vec<String>>,
    pub status: u16,
    pub response_headers: Vec<String>,
    pub response_content_type: Option<String>,
    pub response_framing: &'static str,
    pub response_body_len: usize,
}

/// A parsed response.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    framing: &'static str,
    body_len: usize,
}

fn read_line(r: &mut impl BufRead) -> String {
    let mut line = String::new();
    r.read_line(&mut line).expect("read response line");
    assert!(line.ends_with("\r\n"), "bad line from server: {line:?}");
    line.truncate(line.len() - 2);
    line
}

fn read_response(r: &mut impl BufRead) -> Response {
    let status_line = read_line(r);
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let line = read_line(r);
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("header line");
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let header = |n: &str| {
        headers
            .iter()
            .find(|(name, _)| name == n)
            .map(|(_, v)| v.clone())
    };
    let (framing, body_len) = if header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        let mut total = 0;
        loop {
            let size_line = read_line(r);
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .expect("chunk size");
            if size == 0 {
                while !read_line(r).is_empty() {}
                break;
            }
            let mut chunk = vec![0; size];
            r.read_exact(&mut chunk).expect("chunk");
            assert!(read_line(r).is_empty(), "chunk not followed by CRLF");
            total += size;
        }
        ("chunked", total)
    } else if let Some(len) = header("content-length") {
        let len: usize = len.parse().expect("content-length");
        let mut body = vec![0; len];
        r.read_exact(&mut body).expect("body");
        ("content_length", len)
    } else {
        ("none", 0)
    };
    Response {
        status,
        headers,
        framing,
        body_len,
    }
}

/// Opens one connection to `server` and sends each batch in one write (a
/// batch of several requests is pipelined), reading that batch's
/// responses before the next. Runs on the calling thread (move it into the
/// client namespace first). The connection is closed at the end.
pub fn converse(server: SocketAddr, batches: &[Vec<Request>]) -> Vec<Seen> {
    converse_open(server, batches).0
}

/// As [`converse`], but leaves the connection open and returns it.
pub fn converse_open(server: SocketAddr, batches: &[Vec<Request>]) -> (Vec<Seen>, TcpStream) {
    let stream = TcpStream::connect_timeout(&server, Duration::from_secs(10)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let client = stream.local_addr().expect("local addr");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let host = server.to_string();
    let mut seen = Vec::new();
    for batch in batches {
        let mut wire = Vec::new();
        let mut sent = Vec::new();
        for req in batch {
            let (bytes, names) = req.encode(&host);
            wire.extend_from_slice(&bytes);
            sent.push((req, names));
        }
        writer.write_all(&wire).expect("send");
        for (req, request_headers) in sent {
            let resp = read_response(&mut reader);
            let json_keys = serde_json::from_slice::<Value>(&req.body)
                .ok()
                .and_then(|v| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()))
                .map(|mut k| {
                    k.sort();
                    k
                });
            seen.push(Seen {
                client,
                server,
                method: req.method.to_owned(),
                target: req.target.clone(),
                request_headers,
                request_framing: if req.chunked {
                    "chunked"
                } else if req.body.is_empty() {
                    "none"
                } else {
                    "content_length"
                },
                request_body_len: req.body.len(),
                request_json_keys: json_keys,
                status: resp.status,
                response_content_type: resp.headers.iter().find(|(n, _)| n == "content-type").map(
                    |(_, v)| {
                        v.split(';')
                            .next()
                            .unwrap_or("")
                            .trim()
                            .to_ascii_lowercase()
                    },
                ),
                response_headers: resp.headers.into_iter().map(|(n, _)| n).collect(),
                response_framing: resp.framing,
                response_body_len: resp.body_len,
            });
        }
    }
    (seen, writer)
}

/// Sends `req` on `stream` without waiting for the response.
pub fn send_only(stream: &mut TcpStream, req: &Request) {
    let host = stream.peer_addr().expect("peer").to_string();
    stream.write_all(&req.encode(&host).0).expect("send");
}

/// Size of the large response body of [`standard_mix`].
pub const LARGE_RESPONSE_BYTES: usize = 1_500_000;
/// Size of the large request body of [`standard_mix`].
pub const LARGE_REQUEST_BYTES: usize = 1 << 20;

/// The known mix: a keep-alive conversation (JSON POST, chunked response,
/// 404, a 1.5 MB response, query parameters), a pipelined one (four
/// requests in one write) and one with large request bodies (1 MiB with
/// `Content-Length`, 300 kB chunked) that ends with `Connection: close`.
pub fn standard_mix() -> Vec<Vec<Vec<Request>>> {
    let item = serde_json::json!({"name": "widget", "qty": 3, "tags": ["a", "b"]});
    vec![
        vec![
            vec![Request::get("/small")],
            vec![Request::post_json("/items", &item)],
            vec![Request::get("/chunked")],
            vec![Request::get("/missing")],
            vec![Request::get(&format!(
                "/large?bytes={LARGE_RESPONSE_BYTES}"
            ))],
            vec![Request::get("/small?id=7&verbose=1")],
        ],
        vec![vec![
            Request::get("/small"),
            Request::get("/chunked"),
            Request::post_json("/items", &item),
            Request::get("/missing"),
        ]],
        vec![
            vec![Request::post_bytes("/upload", LARGE_REQUEST_BYTES, false)],
            vec![Request::post_bytes("/upload", 300_000, true)],
            vec![Request::get("/small").with_header("Connection", "close")],
        ],
    ]
}

/// Runs every conversation of `mix` one after the other from a thread in
/// `client_ns`; returns what the client saw.
pub fn drive(client_ns: &Netns, server: SocketAddr, mix: Vec<Vec<Vec<Request>>>) -> Vec<Seen> {
    client_ns
        .spawn(move || mix.iter().flat_map(|c| converse(server, c)).collect())
        .join()
        .expect("client thread")
}

/// Parses JSON Lines output.
pub fn parse_records(jsonl: &[u8]) -> Vec<Value> {
    std::str::from_utf8(jsonl)
        .expect("utf-8 records")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a record ({e}): {l}")))
        .collect()
}

/// Asserts that `records` describe exactly the exchanges in `seen`: the
/// same number, and per connection, in order, the same method, path, query
/// parameter names, status, header names, body framings and sizes, content
/// type and JSON keys, with no flags or anomalies.
pub fn assert_records_match(records: &[Value], seen: &[Seen]) {
    assert_eq!(
        records.len(),
        seen.len(),
        "one record per exchange the client made: {records:#?}"
    );
    let mut clients: Vec<SocketAddr> = seen.iter().map(|s| s.client).collect();
    clients.dedup();
    for client in clients {
        let want: Vec<&Seen> = seen.iter().filter(|s| s.client == client).collect();
        let got: Vec<&Value> = records
            .iter()
            .filter(|r| r["client"] == client.to_string())
            .collect();
        assert_eq!(got.len(), want.len(), "records of connection {client}");
        for (r, s) in got.iter().zip(&want) {
            let ctx = format!("{} {} on {client}: {r}", s.method, s.target);
            let (path, query) = s.target.split_once('?').unwrap_or((&s.target, ""));
            assert_eq!(r["server"], s.server.to_string(), "{ctx}");
            assert_eq!(r["host"], s.server.to_string(), "{ctx}");
            assert_eq!(r["method"], s.method, "{ctx}");
            assert_eq!(r["path"], path, "{ctx}");
            let params: Vec<&str> = query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| p.split('=').next().unwrap_or(""))
                .collect();
            if params.is_empty() {
                assert!(r.get("query_params").is_none(), "{ctx}");
            } else {
                assert_eq!(r["query_params"], serde_json::json!(params), "{ctx}");
            }
            assert_eq!(r["version"], "1.1", "{ctx}");
            assert_eq!(r["status"], s.status, "{ctx}");
            assert_eq!(
                r["request"]["headers"],
                serde_json::json!(s.request_headers),
                "{ctx}"
            );
            assert_eq!(r["request"]["body"]["framing"], s.request_framing, "{ctx}");
            assert_eq!(r["request"]["body"]["bytes"], s.request_body_len, "{ctx}");
            if let Some(keys) = &s.request_json_keys {
                let fields: Vec<&String> = r["request"]["body"]["shape"]["fields"]
                    .as_object()
                    .unwrap_or_else(|| panic!("request shape: {ctx}"))
                    .keys()
                    .collect();
                assert_eq!(fields, keys.iter().collect::<Vec<_>>(), "{ctx}");
            }
            assert_eq!(
                r["response"]["headers"],
                serde_json::json!(s.response_headers),
                "{ctx}"
            );
            assert_eq!(
                r["response"].get("content_type").and_then(Value::as_str),
                s.response_content_type.as_deref(),
                "{ctx}"
            );
            assert_eq!(
                r["response"]["body"]["framing"], s.response_framing,
                "{ctx}"
            );
            assert_eq!(r["response"]["body"]["bytes"], s.response_body_len, "{ctx}");
            assert_eq!(r["flags"], serde_json::json!({}), "{ctx}");
            assert!(r.get("anomalies").is_none(), "{ctx}");
            assert!(
                r["latency_us"].is_u64() && r["duration_us"].is_u64(),
                "{ctx}"
            );
        }
    }
}

/// Largest difference in `ts`, `latency_us` and `duration_us` accepted
/// between two captures of the same frames. Each packet socket stamps a
/// frame itself when the kernel delivers it (the stamps are not shared
/// between sockets), so two captures of one interface differ by the
/// microseconds between deliveries.
pub const TIMING_TOLERANCE_US: u64 = 5_000;

/// A record without its timing fields, and those fields (µs).
fn split_timing(line: &str) -> (String, String, u64, u64, u64) {
    let mut v: Value = serde_json::from_str(line).expect("record");
    let o = v.as_object_mut().expect("object");
    let ts = o
        .remove("ts")
        .and_then(|t| t.as_str().map(str::to_owned))
        .expect("ts");
    let latency = o.remove("latency_us").and_then(|t| t.as_u64()).unwrap_or(0);
    let duration = o
        .remove("duration_us")
        .and_then(|t| t.as_u64())
        .unwrap_or(0);
    let client = o["client"].as_str().unwrap_or("").to_owned();
    // RFC 3339 with 9 fraction digits: seconds of the day are enough here.
    let clock = &ts[11..ts.len() - 1];
    let (hms, frac) = clock.split_once('.').expect("fraction");
    let secs: Vec<u64> = hms.split(':').map(|p| p.parse().expect("digits")).collect();
    let ts_us = (secs[0] * 3600 + secs[1] * 60 + secs[2]) * 1_000_000
        + frac.parse::<u64>().expect("digits") / 1000;
    (client, v.to_string(), ts_us, latency, duration)
}

/// Asserts that two JSON Lines outputs hold the same records: every field
/// identical except the timings, which agree within
/// [`TIMING_TOLERANCE_US`]. Records are matched per connection in time
/// order (two sources may complete idle flows at different moments, so
/// the output order may differ).
pub fn assert_same_records(a: &[u8], b: &[u8], what: &str) {
    let prepare = |jsonl: &[u8]| {
        let mut v: Vec<_> = std::str::from_utf8(jsonl)
            .expect("utf-8")
            .lines()
            .map(split_timing)
            .collect();
        v.sort_by(|x, y| (&x.0, x.2, &x.1).cmp(&(&y.0, y.2, &y.1)));
        v
    };
    let (a, b) = (prepare(a), prepare(b));
    assert_eq!(a.len(), b.len(), "{what}: record counts differ");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.1, y.1, "{what}: records differ");
        for (name, p, q) in [
            ("ts", x.2, y.2),
            ("latency_us", x.3, y.3),
            ("duration_us", x.4, y.4),
        ] {
            assert!(
                p.abs_diff(q) <= TIMING_TOLERANCE_US,
                "{what}: {name} differs by {} µs: {}",
                p.abs_diff(q),
                x.1
            );
        }
    }
}
