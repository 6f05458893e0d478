//! Request heads: httparse wrapper, header capture and request framing
//! (RFC 9112 §6.3), plus the header analysis shared with responses.

use std::mem::MaybeUninit;

use crate::http::events::{AnomalySet, HttpAnomaly};
use crate::http::limits::{MAX_HEADERS, MAX_HEADER_LINE_BYTES, MAX_START_LINE_BYTES};
use crate::http::message::{Header, HttpVersion, RequestHead, Tunnel};

/// How the body after a head is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyPlan {
    /// No body.
    None,
    /// `Content-Length` bytes.
    Length(u64),
    Chunked,
    /// Until the connection closes (responses only).
    Close,
    /// Framing cannot be decided (invalid or conflicting lengths, unknown
    /// request transfer coding): the direction must resync.
    Unframeable,
}

/// `Transfer-Encoding` as far as framing cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Te {
    Absent,
    /// The final coding is `chunked`.
    Chunked,
    /// Present but the final coding is not `chunked`.
    Other,
}

/// `Content-Length` as far as framing cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cl {
    Absent,
    Valid(u64),
    Invalid,
}

/// Codings a `Transfer-Encoding` may legitimately list.
const KNOWN_CODINGS: &[&str] = &[
    "chunked", "gzip", "x-gzip", "deflate", "compress", "identity",
];

/// Methods that raise no `UnknownMethod` anomaly (RFC 9110 + PATCH + WebDAV).
const KNOWN_METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "REPORT",
    "SEARCH",
    "MKCALENDAR",
    "PURGE",
];

/// Converts httparse headers, lower-casing names.
pub(crate) fn capture_headers(raw: &[httparse::Header<'_>]) -> Vec<Header> {
    raw.iter()
        .map(|h| Header {
            name: h.name.to_ascii_lowercase().into_boxed_str(),
            value: h.value.into(),
        })
        .collect()
}

/// Whether a parsed head has a start line longer than
/// [`MAX_START_LINE_BYTES`] or a header field line longer than
/// [`MAX_HEADER_LINE_BYTES`] (`LineTooLong`). Heads shorter than the start
/// line cap cannot have either and are not looked at.
pub(crate) fn has_long_line(head: &[u8], headers: &[Header]) -> bool {
    if head.len() <= MAX_START_LINE_BYTES {
        return false;
    }
    let start_line = memchr::memchr(b'\n', head).unwrap_or(head.len());
    start_line > MAX_START_LINE_BYTES
        || (head.len() > MAX_HEADER_LINE_BYTES
            && headers
                .iter()
                .any(|h| h.name.len() + 1 + h.value.len() > MAX_HEADER_LINE_BYTES))
}

/// Iterates the comma-separated, OWS-trimmed list elements of every header
/// named `name`.
pub(crate) fn list_values<'a>(
    headers: &'a [Header],
    name: &'a str,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .iter()
        .filter(move |h| &*h.name == name)
        .flat_map(|h| h.value.split(|&b| b == b','))
        .map(|v| v.trim_ascii())
        .filter(|v| !v.is_empty())
}

/// Parses the decimal `Content-Length` headers; flags invalid and
/// conflicting values (identical repeats are accepted, RFC 9110 §8.6).
pub(crate) fn content_length(headers: &[Header], anomalies: &mut AnomalySet) -> Cl {
    let mut seen: Option<u64> = None;
    let mut present = false;
    for h in headers.iter().filter(|h| &*h.name == "content-length") {
        present = true;
        for v in h.value.split(|&b| b == b',').map(|v| v.trim_ascii()) {
            let Some(n) = parse_decimal(v) else {
                anomalies.insert(HttpAnomaly::InvalidContentLength);
                return Cl::Invalid;
            };
            match seen {
                Some(prev) if prev != n => {
                    anomalies.insert(HttpAnomaly::ConflictingContentLength);
                    return Cl::Invalid;
                }
                _ => seen = Some(n),
            }
        }
    }
    match seen {
        Some(n) => Cl::Valid(n),
        None if present => {
            anomalies.insert(HttpAnomaly::InvalidContentLength);
            Cl::Invalid
        }
        None => Cl::Absent,
    }
}

fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// Reads `Transfer-Encoding`; flags unknown codings and a misplaced `chunked`.
pub(crate) fn transfer_encoding(headers: &[Header], anomalies: &mut AnomalySet) -> Te {
    if !headers.iter().any(|h| &*h.name == "transfer-encoding") {
        return Te::Absent;
    }
    let mut last_chunked = false;
    let mut chunked_count = 0usize;
    for v in list_values(headers, "transfer-encoding") {
        let coding = v.split(|&b| b == b';').next().unwrap_or(v).trim_ascii();
        let chunked = coding.eq_ignore_ascii_case(b"chunked");
        chunked_count += usize::from(chunked);
        last_chunked = chunked;
        if !KNOWN_CODINGS
            .iter()
            .any(|k| coding.eq_ignore_ascii_case(k.as_bytes()))
        {
            anomalies.insert(HttpAnomaly::InvalidTransferEncoding);
        }
    }
    if last_chunked {
        if chunked_count > 1 {
            anomalies.insert(HttpAnomaly::InvalidTransferEncoding);
        }
        Te::Chunked
    } else {
        anomalies.insert(HttpAnomaly::InvalidTransferEncoding);
        Te::Other
    }
}

/// The protocol named by the first `Upgrade` token.
pub(crate) fn upgrade_kind(headers: &[Header]) -> Option<Tunnel> {
    let token = list_values(headers, "upgrade").next()?;
    let name = token.split(|&b| b == b'/').next().unwrap_or(token);
    Some(if name.eq_ignore_ascii_case(b"websocket") {
        Tunnel::WebSocket
    } else if name.eq_ignore_ascii_case(b"h2c") {
        Tunnel::H2c
    } else {
        Tunnel::OtherUpgrade
    })
}

/// A parsed request head and what follows it.
#[derive(Debug)]
pub(crate) struct ParsedRequest {
    pub(crate) head: RequestHead,
    pub(crate) plan: BodyPlan,
    pub(crate) anomalies: AnomalySet,
}

/// Outcome of parsing one complete request head.
#[derive(Debug)]
pub(crate) enum RequestParse {
    Ok(ParsedRequest),
    Invalid(HttpAnomaly),
    /// `PRI * HTTP/2.0`: HTTP/2 with prior knowledge.
    H2Preface,
}

fn config() -> httparse::ParserConfig {
    let mut c = httparse::ParserConfig::default();
    c.allow_multiple_spaces_in_request_line_delimiters(true);
    c
}

/// Parses a complete head (`head` ends with the empty line).
pub(crate) fn parse_request_head(head: &[u8]) -> RequestParse {
    let mut raw = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    match config().parse_request_with_uninit_headers(&mut req, head, &mut raw) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return RequestParse::Invalid(HttpAnomaly::InvalidHeader),
        Err(e) => {
            return match e {
                httparse::Error::Version if head.starts_with(b"PRI * HTTP/2") => {
                    RequestParse::H2Preface
                }
                httparse::Error::Version => RequestParse::Invalid(HttpAnomaly::UnsupportedVersion),
                httparse::Error::TooManyHeaders => {
                    RequestParse::Invalid(HttpAnomaly::TooManyHeaders)
                }
                httparse::Error::Token | httparse::Error::Status => {
                    RequestParse::Invalid(HttpAnomaly::InvalidRequestLine)
                }
                httparse::Error::HeaderName
                | httparse::Error::HeaderValue
                | httparse::Error::NewLine => RequestParse::Invalid(HttpAnomaly::InvalidHeader),
            }
        }
    }
    let (Some(method), Some(target), Some(v)) = (req.method, req.path, req.version) else {
        return RequestParse::Invalid(HttpAnomaly::InvalidRequestLine);
    };
    let version = if v == 0 {
        HttpVersion::Http10
    } else {
        HttpVersion::Http11
    };
    let headers = capture_headers(req.headers);
    let mut anomalies = AnomalySet::EMPTY;
    if has_long_line(head, &headers) {
        anomalies.insert(HttpAnomaly::LineTooLong);
    }
    if !KNOWN_METHODS.contains(&method) {
        anomalies.insert(HttpAnomaly::UnknownMethod);
    }
    if version == HttpVersion::Http11 && headers.iter().filter(|h| &*h.name == "host").count() != 1
    {
        anomalies.insert(HttpAnomaly::InvalidHost);
    }
    let te = transfer_encoding(&headers, &mut anomalies);
    let cl = content_length(&headers, &mut anomalies);
    let plan = match (te, cl) {
        (Te::Absent, Cl::Absent) => BodyPlan::None,
        (Te::Absent, Cl::Valid(n)) => BodyPlan::Length(n),
        (Te::Absent, Cl::Invalid) => BodyPlan::Unframeable,
        (te, cl) => {
            if cl != Cl::Absent {
                anomalies.insert(HttpAnomaly::ContentLengthWithTransferEncoding);
            }
            if te == Te::Chunked {
                BodyPlan::Chunked
            } else {
                BodyPlan::Unframeable
            }
        }
    };
    let head = RequestHead {
        method: method.into(),
        target: target.as_bytes().into(),
        version,
        headers,
    };
    RequestParse::Ok(ParsedRequest {
        head,
        plan,
        anomalies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(head: &[u8]) -> ParsedRequest {
        match parse_request_head(head) {
            RequestParse::Ok(p) => p,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn simple_get() {
        let p = ok(b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-Y: z\r\n\r\n");
        assert_eq!(&*p.head.method, "GET");
        assert_eq!(&*p.head.target, b"/a?b=c");
        assert_eq!(p.head.headers[1].name.as_ref(), "x-y");
        assert_eq!(p.plan, BodyPlan::None);
        assert!(p.anomalies.is_empty());
    }

    #[test]
    fn framing_rules() {
        let p = ok(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(p.plan, BodyPlan::Length(5));
        let p =
            ok(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(p.plan, BodyPlan::Length(5));
        assert!(p.anomalies.is_empty());
        let p = ok(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
        assert_eq!(p.plan, BodyPlan::Unframeable);
        assert!(p.anomalies.contains(HttpAnomaly::ConflictingContentLength));
        let p = ok(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n");
        assert!(p.anomalies.contains(HttpAnomaly::InvalidContentLength));
        let p = ok(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n");
        assert_eq!(p.plan, BodyPlan::Unframeable);
        let p = ok(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(p.plan, BodyPlan::Chunked);
        assert!(p
            .anomalies
            .contains(HttpAnomaly::ContentLengthWithTransferEncoding));
        let p = ok(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
        assert_eq!(p.plan, BodyPlan::Unframeable);
        assert!(p.anomalies.contains(HttpAnomaly::InvalidTransferEncoding));
        let p = ok(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n");
        assert_eq!(p.plan, BodyPlan::Chunked);
        assert!(p.anomalies.is_empty());
    }

    /// Reliability target S10: a request line past 8 KiB or a header
    /// line past 16 KiB is flagged, and the message still parsed.
    #[test]
    fn long_lines_are_flagged_and_still_parsed() {
        let with_target = |len: usize| {
            let target = format!("/{}", "a".repeat(len - 1));
            format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
        };
        // "GET " + target + " HTTP/1.1\r" is the line before its `\n`.
        let at_cap = with_target(MAX_START_LINE_BYTES - 4 - 10);
        assert!(ok(&at_cap).anomalies.is_empty());
        let past = ok(&with_target(MAX_START_LINE_BYTES - 4 - 9));
        assert!(past.anomalies.contains(HttpAnomaly::LineTooLong));
        assert_eq!(past.head.target.len(), MAX_START_LINE_BYTES - 13);

        let with_header = |len: usize| {
            let value = "v".repeat(len - 2);
            format!("GET / HTTP/1.1\r\nHost: x\r\nX:{value}\r\n\r\n").into_bytes()
        };
        assert!(ok(&with_header(MAX_HEADER_LINE_BYTES)).anomalies.is_empty());
        let p = ok(&with_header(MAX_HEADER_LINE_BYTES + 1));
        assert!(p.anomalies.contains(HttpAnomaly::LineTooLong));
        assert_eq!(p.head.headers.len(), 2);
        // Many lines each within the caps, a long head: nothing to flag.
        let many: String = (0..90)
            .map(|i| format!("X-{i}: {}\r\n", "v".repeat(400)))
            .collect();
        let head = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
        assert!(head.len() > MAX_HEADER_LINE_BYTES);
        assert!(ok(head.as_bytes()).anomalies.is_empty());
    }

    #[test]
    fn host_and_method_checks() {
        let p = ok(b"get / HTTP/1.1\r\n\r\n");
        assert!(p.anomalies.contains(HttpAnomaly::UnknownMethod));
        assert!(p.anomalies.contains(HttpAnomaly::InvalidHost));
        let p = ok(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
        assert!(p.anomalies.contains(HttpAnomaly::InvalidHost));
        let p = ok(b"GET / HTTP/1.0\r\n\r\n");
        assert!(p.anomalies.is_empty());
    }

    #[test]
    fn invalid_heads() {
        assert!(matches!(
            parse_request_head(b"PRI * HTTP/2.0\r\n\r\n"),
            RequestParse::H2Preface
        ));
        assert!(matches!(
            parse_request_head(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"),
            RequestParse::Invalid(HttpAnomaly::InvalidHeader)
        ));
        assert!(matches!(
            parse_request_head(b"GET / HTTP/3.0\r\n\r\n"),
            RequestParse::Invalid(HttpAnomaly::UnsupportedVersion)
        ));
    }

    #[test]
    fn upgrade_tokens() {
        let h = |v: &str| {
            vec![Header {
                name: "upgrade".into(),
                value: v.as_bytes().into(),
            }]
        };
        assert_eq!(upgrade_kind(&h("WebSocket")), Some(Tunnel::WebSocket));
        assert_eq!(upgrade_kind(&h("h2c")), Some(Tunnel::H2c));
        assert_eq!(upgrade_kind(&h("TLS/1.2")), Some(Tunnel::OtherUpgrade));
        assert_eq!(upgrade_kind(&[]), None);
    }
}
