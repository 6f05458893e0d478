//! HAR (HTTP Archive 1.2) input. Each entry is turned back into HTTP/1.1
//! bytes and run through the sensor's own parser and record builder, so a
//! HAR file gets exactly the same privacy treatment as a capture: header
//! values, cookies, tokens and body values are used to derive the record
//! and then dropped.

use std::fs::File;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use base64::Engine as _;
use serde::Deserialize;

use shadowtap_proto::http::{HttpConnection, HttpEvent};
use shadowtap_proto::record::{self, FingerprintKey, FlowContext};
use shadowtap_proto::{Direction, ExchangeRecord, Timestamp};

/// Largest HAR file read (HAR files hold whole bodies; this bounds memory).
pub const MAX_HAR_BYTES: u64 = 1 << 30;

#[derive(Deserialize)]
struct Har {
    log: Log,
}

#[derive(Deserialize)]
struct Log {
    #[serde(default)]
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    started_date_time: String,
    request: Request,
    response: Response,
    #[serde(default, rename = "serverIPAddress")]
    server_ip_address: Option<String>,
    #[serde(default)]
    timings: Option<Timings>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    method: String,
    url: String,
    #[serde(default)]
    headers: Vec<Header>,
    #[serde(default)]
    post_data: Option<PostData>,
}

#[derive(Deserialize)]
struct Header {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostData {
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct Response {
    status: i64,
    #[serde(default, rename = "statusText")]
    status_text: String,
    #[serde(default)]
    headers: Vec<Header>,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Content {
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
}

#[derive(Deserialize)]
struct Timings {
    #[serde(default)]
    wait: Option<f64>,
}

/// Outcome of reading a HAR file.
#[derive(Clone, Debug, Default)]
pub struct HarReport {
    pub records: u64,
    /// Entries that could not be turned into a record (bad URL, time or
    /// status), counted and skipped.
    pub bad_entries: u64,
}

/// Reads a HAR file and calls `sink` with one record per entry.
pub fn read_har(
    path: &Path,
    key: &FingerprintKey,
    sink: &mut dyn FnMut(ExchangeRecord),
) -> io::Result<HarReport> {
    let file = File::open(path)?;
    if file.metadata()?.len() > MAX_HAR_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("HAR file larger than {MAX_HAR_BYTES} bytes"),
        ));
    }
    let mut text = Vec::new();
    file.take(MAX_HAR_BYTES).read_to_end(&mut text)?;
    let har = parse(&text)?;
    // The text is not needed while the records are built.
    drop(text);
    Ok(records_of(&har, key, sink))
}

/// [`read_har`] on the bytes of a HAR file (at most [`MAX_HAR_BYTES`] of
/// them are the caller's to enforce).
pub fn har_records(
    text: &[u8],
    key: &FingerprintKey,
    sink: &mut dyn FnMut(ExchangeRecord),
) -> io::Result<HarReport> {
    Ok(records_of(&parse(text)?, key, sink))
}

fn parse(text: &[u8]) -> io::Result<Har> {
    serde_json::from_slice(text).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a valid HAR file: {e}"),
        )
    })
}

fn records_of(har: &Har, key: &FingerprintKey, sink: &mut dyn FnMut(ExchangeRecord)) -> HarReport {
    let mut report = HarReport::default();
    for entry in &har.log.entries {
        match entry_record(entry, key) {
            Some(r) => {
                report.records += 1;
                sink(r);
            }
            None => report.bad_entries += 1,
        }
    }
    report
}

fn entry_record(e: &Entry, key: &FingerprintKey) -> Option<ExchangeRecord> {
    let start = parse_time(&e.started_date_time)?;
    let (scheme, authority, target) = split_url(&e.request.url)?;
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        80
    };
    let port = authority
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .unwrap_or(default_port);
    let server_ip = e
        .server_ip_address
        .as_deref()
        .map(|s| s.trim_matches(['[', ']']))
        .and_then(|s| s.parse::<IpAddr>().ok())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let flow = FlowContext {
        client: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        server: SocketAddr::new(server_ip, port),
        mid_stream: false,
    };

    let req_body = e
        .request
        .post_data
        .as_ref()
        .and_then(|p| p.text.as_deref())
        .unwrap_or("")
        .as_bytes()
        .to_vec();
    let req_ct = e
        .request
        .post_data
        .as_ref()
        .and_then(|p| p.mime_type.as_deref());
    let mut request = format!("{} {} HTTP/1.1\r\n", e.request.method, target).into_bytes();
    let has_host = e
        .request
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("host"));
    if !has_host {
        push_header(&mut request, "Host", authority);
    }
    push_headers(&mut request, &e.request.headers, req_ct, req_body.len());
    request.extend_from_slice(&req_body);

    if !(100..=999).contains(&e.response.status) {
        return None;
    }
    let content = e.response.content.as_ref();
    let resp_body = match content.and_then(|c| c.text.as_deref()) {
        Some(t) if content.and_then(|c| c.encoding.as_deref()) == Some("base64") => {
            base64::engine::general_purpose::STANDARD.decode(t).ok()?
        }
        Some(t) => t.as_bytes().to_vec(),
        None => Vec::new(),
    };
    let resp_ct = content.and_then(|c| c.mime_type.as_deref());
    let reason: String = e
        .response
        .status_text
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let mut response = format!("HTTP/1.1 {} {}\r\n", e.response.status, reason).into_bytes();
    push_headers(&mut response, &e.response.headers, resp_ct, resp_body.len());
    response.extend_from_slice(&resp_body);

    let wait_ns = e
        .timings
        .as_ref()
        .and_then(|t| t.wait)
        .filter(|w| w.is_finite() && *w >= 0.0)
        .map_or(0, |w| (w * 1e6) as u64);
    let mut conn = HttpConnection::new();
    let mut events = Vec::new();
    conn.on_data(Direction::ToServer, start, &request, &mut events);
    let answered = start.add_nanos(wait_ns);
    conn.on_data(Direction::ToClient, answered, &response, &mut events);
    conn.on_close(Direction::ToClient, answered, &mut events);
    conn.finish(answered, &mut events);
    events.into_iter().find_map(|ev| match ev {
        HttpEvent::Exchange(x) => Some(record::build(&x, &flow, key)),
        HttpEvent::Anomaly { .. } => None,
    })
}

/// Headers that describe the HAR's stored body, not the wire: the body is
/// re-framed with a fresh `Content-Length`.
fn push_headers(out: &mut Vec<u8>, headers: &[Header], content_type: Option<&str>, len: usize) {
    let mut has_ct = false;
    for h in headers {
        let n = h.name.as_str();
        if n.starts_with(':')
            || n.eq_ignore_ascii_case("content-length")
            || n.eq_ignore_ascii_case("transfer-encoding")
            || n.eq_ignore_ascii_case("content-encoding")
        {
            continue;
        }
        has_ct |= n.eq_ignore_ascii_case("content-type");
        push_header(out, n, &h.value);
    }
    if let (false, Some(ct)) = (has_ct, content_type.filter(|c| !c.is_empty())) {
        push_header(out, "Content-Type", ct);
    }
    push_header(out, "Content-Length", &len.to_string());
    out.extend_from_slice(b"\r\n");
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    // A header line must stay one line.
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    out.extend_from_slice(clean(name).as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(clean(value).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `https://host:8443/a/b?c` → (`https`, `host:8443`, `/a/b?c`).
fn split_url(url: &str) -> Option<(&str, &str, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority = authority.rsplit('@').next()?;
    if authority.is_empty() {
        return None;
    }
    let path = path.split('#').next().unwrap_or("/");
    let target = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    Some((scheme, authority, target.replace(' ', "%20")))
}

/// RFC 3339 with `Z` or a numeric offset (HAR writers use both).
fn parse_time(s: &str) -> Option<Timestamp> {
    if s.ends_with(['Z', 'z']) {
        return Timestamp::parse_rfc3339(&s.replace('z', "Z"));
    }
    if s.len() < 6 {
        return None;
    }
    let (local, offset) = s.split_at(s.len() - 6);
    let sign = match offset.as_bytes()[0] {
        b'+' => 1i64,
        b'-' => -1,
        _ => return None,
    };
    let hours: i64 = offset.get(1..3)?.parse().ok()?;
    let minutes: i64 = offset.get(4..6)?.parse().ok()?;
    let utc = Timestamp::parse_rfc3339(&format!("{local}Z"))?;
    let shift = sign * (hours * 3600 + minutes * 60) * 1_000_000_000;
    let ns = i128::from(utc.as_nanos()) - i128::from(shift);
    Some(Timestamp(u64::try_from(ns).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_with_offsets() {
        let z = parse_time("2024-01-01T10:00:00.5Z").unwrap();
        assert_eq!(parse_time("2024-01-01T11:00:00.5+01:00"), Some(z));
        assert_eq!(parse_time("2024-01-01T05:30:00.5-04:30"), Some(z));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn urls() {
        let (s, a, t) = split_url("https://u:p@api.example.com:8443/a/b?c=1#frag").unwrap();
        assert_eq!(
            (s, a, t.as_str()),
            ("https", "api.example.com:8443", "/a/b?c=1")
        );
        assert_eq!(split_url("http://x.org").unwrap().2, "/");
        assert_eq!(split_url("http://x.org?q").unwrap().2, "/?q");
        assert!(split_url("nourl").is_none());
    }

    #[test]
    fn an_entry_becomes_a_private_record() {
        let har = r#"{"log":{"version":"1.2","entries":[{
          "startedDateTime":"2024-05-01T12:00:00.000Z","time":12,
          "request":{"method":"POST","url":"https://api.example.com/v1/users/42?token=SECRET1",
            "httpVersion":"HTTP/2","headers":[{"name":":authority","value":"api.example.com"},
            {"name":"authorization","value":"Bearer SECRET2"},{"name":"cookie","value":"sid=SECRET3"}],
            "postData":{"mimeType":"application/json","text":"{\"password\":\"SECRET4\",\"n\":1}"}},
          "response":{"status":201,"statusText":"Created","headers":[{"name":"content-encoding","value":"gzip"}],
            "content":{"size":20,"mimeType":"application/json","text":"{\"id\":\"SECRET5\",\"ok\":true}"}},
          "serverIPAddress":"10.0.0.5","timings":{"wait":7.5}}]}}"#;
        let dir = std::env::temp_dir().join(format!("shadowtap-har-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.har");
        std::fs::write(&path, har).unwrap();
        let mut records = Vec::new();
        let report = read_har(&path, &FingerprintKey::new([7; 32]), &mut |r| {
            records.push(r)
        })
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((report.records, report.bad_entries), (1, 0));
        let r = &records[0];
        assert_eq!(r.host, "api.example.com");
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/v1/users/42");
        assert_eq!(r.query_params, ["token"]);
        assert_eq!(r.status, Some(201));
        assert_eq!(r.server.to_string(), "10.0.0.5:443");
        assert_eq!(r.latency_us, Some(7500));
        assert!(r.request.body.shape.is_some());
        assert!(r.response.as_ref().unwrap().body.shape.is_some());
        let json = serde_json::to_string(r).unwrap();
        for secret in ["SECRET1", "SECRET2", "SECRET3", "SECRET4", "SECRET5"] {
            assert!(!json.contains(secret), "{secret} leaked: {json}");
        }
    }
}
