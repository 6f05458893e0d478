//! Response heads: httparse wrapper (with the leniency real servers need)
//! and response framing (RFC 9112 §6.3).

use std::mem::MaybeUninit;

use crate::http::events::{AnomalySet, HttpAnomaly};
use crate::http::limits::MAX_HEADERS;
use crate::http::message::{HttpVersion, ResponseHead};
use crate::http::request::{
    capture_headers, content_length, has_long_line, transfer_encoding, BodyPlan, Cl, Te,
};

/// A parsed response head; framing is decided later, with the request.
#[derive(Debug)]
pub(crate) struct ParsedResponse {
    pub(crate) head: ResponseHead,
    pub(crate) anomalies: AnomalySet,
    te: Te,
    cl: Cl,
    /// Anomalies that only count if the header is used for framing.
    framing_anomalies: AnomalySet,
}

/// Outcome of parsing one complete response head.
#[derive(Debug)]
pub(crate) enum ResponseParse {
    Ok(ParsedResponse),
    Invalid(HttpAnomaly),
}

fn config() -> httparse::ParserConfig {
    let mut c = httparse::ParserConfig::default();
    c.allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .ignore_invalid_headers_in_responses(true);
    c
}

/// Parses a complete head (`head` ends with the empty line).
pub(crate) fn parse_response_head(head: &[u8]) -> ResponseParse {
    let mut raw = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    match config().parse_response_with_uninit_headers(&mut resp, head, &mut raw) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return ResponseParse::Invalid(HttpAnomaly::InvalidHeader);
        }
        Err(e) => {
            return ResponseParse::Invalid(match e {
                httparse::Error::Version => HttpAnomaly::UnsupportedVersion,
                httparse::Error::TooManyHeaders => HttpAnomaly::TooManyHeaders,
                httparse::Error::Status | httparse::Error::Token => HttpAnomaly::InvalidStatusLine,
                httparse::Error::HeaderName
                | httparse::Error::HeaderValue
                | httparse::Error::NewLine => HttpAnomaly::InvalidHeader,
            });
        }
    }
    let (Some(code), Some(v)) = (resp.code, resp.version) else {
        return ResponseParse::Invalid(HttpAnomaly::InvalidStatusLine);
    };
    let version = if v == 0 {
        HttpVersion::Http10
    } else {
        HttpVersion::Http11
    };
    let headers = capture_headers(resp.headers);
    let mut anomalies = AnomalySet::EMPTY;
    if has_long_line(head, &headers) {
        anomalies.insert(HttpAnomaly::LineTooLong);
    }
    if may_fold(head, headers.len())
        && headers
            .iter()
            .any(|h| h.value.iter().any(|&b| b == b'\n' || b == b'\r'))
    {
        anomalies.insert(HttpAnomaly::ObsoleteLineFolding);
    }
    let mut framing_anomalies = AnomalySet::EMPTY;
    let te = transfer_encoding(&headers, &mut framing_anomalies);
    let cl = content_length(&headers, &mut framing_anomalies);
    let head = ResponseHead {
        status: code,
        version,
        headers,
    };
    ResponseParse::Ok(ParsedResponse {
        head,
        anomalies,
        te,
        cl,
        framing_anomalies,
    })
}

/// False if no header value of `head` can hold a line break. httparse
/// rejects a CR or LF in a value unless it continues the value over an
/// obsolete line folding (a CR LF or LF followed by SP or HTAB), so a value
/// with a line break holds an LF. Every parsed field ends with its own line
/// end, as do the status line and the empty line that ends the head: a
/// head of `fields` fields has at least `fields + 2` LFs, and exactly that
/// many only if no value holds one. One vectorised count of the head
/// instead of a byte loop over every value (or two substring searches);
/// heads with more LFs (folded, skipped invalid fields, empty lines before
/// the status line) take the exact check.
fn may_fold(head: &[u8], fields: usize) -> bool {
    memchr::memchr_iter(b'\n', head).count() != fields + 2
}

impl ParsedResponse {
    /// Decides the body framing; `head_request` if it answers a HEAD.
    /// Statuses that never carry a body and HEAD responses ignore the
    /// framing headers (a `Content-Length` there is legitimate).
    pub(crate) fn plan(&mut self, head_request: bool) -> BodyPlan {
        let status = self.head.status;
        if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
            return BodyPlan::None;
        }
        self.anomalies = self.anomalies.union(self.framing_anomalies);
        match (self.te, self.cl) {
            (Te::Absent, Cl::Absent) => BodyPlan::Close,
            (Te::Absent, Cl::Valid(n)) => BodyPlan::Length(n),
            (Te::Absent, Cl::Invalid) => BodyPlan::Unframeable,
            (te, cl) => {
                if cl != Cl::Absent {
                    self.anomalies
                        .insert(HttpAnomaly::ContentLengthWithTransferEncoding);
                }
                if te == Te::Chunked {
                    BodyPlan::Chunked
                } else {
                    BodyPlan::Close
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(head: &[u8]) -> ParsedResponse {
        match parse_response_head(head) {
            ResponseParse::Ok(p) => p,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_long_status_line_is_flagged_and_still_parsed() {
        let reason = "r".repeat(crate::http::limits::MAX_START_LINE_BYTES);
        let mut p = ok(format!("HTTP/1.1 200 {reason}\r\nContent-Length: 3\r\n\r\n").as_bytes());
        assert!(p.anomalies.contains(HttpAnomaly::LineTooLong));
        assert_eq!(p.plan(false), BodyPlan::Length(3));
    }

    #[test]
    fn framing() {
        assert_eq!(
            ok(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n").plan(false),
            BodyPlan::Length(3)
        );
        assert_eq!(
            ok(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n").plan(true),
            BodyPlan::None
        );
        assert_eq!(
            ok(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\n").plan(false),
            BodyPlan::None
        );
        assert_eq!(ok(b"HTTP/1.0 200 OK\r\n\r\n").plan(false), BodyPlan::Close);
        let mut p = ok(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
        assert_eq!(p.plan(false), BodyPlan::Close);
        assert!(p.anomalies.contains(HttpAnomaly::InvalidTransferEncoding));
        let mut p =
            ok(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(p.plan(false), BodyPlan::Chunked);
        assert!(p
            .anomalies
            .contains(HttpAnomaly::ContentLengthWithTransferEncoding));
    }

    #[test]
    fn lenient_parsing() {
        let p =
            ok(b"HTTP/1.1  200  OK\r\nServer : x\r\nX-Folded: a\r\n b\r\nBad\x01Name: v\r\n\r\n");
        assert_eq!(p.head.status, 200);
        assert!(p.anomalies.contains(HttpAnomaly::ObsoleteLineFolding));
        assert!(matches!(
            parse_response_head(b"HTTP/1.1 2x0 OK\r\n\r\n"),
            ResponseParse::Invalid(HttpAnomaly::InvalidStatusLine)
        ));
        assert!(matches!(
            parse_response_head(b"HTTP/2 200 OK\r\n\r\n"),
            ResponseParse::Invalid(HttpAnomaly::UnsupportedVersion)
        ));
    }

    #[test]
    fn folding_is_found_whatever_the_line_ends() {
        // The anomaly, checked against its definition: a value holds a line break.
        let folded = |head: &[u8]| match parse_response_head(head) {
            ResponseParse::Ok(p) => {
                let flagged = p.anomalies.contains(HttpAnomaly::ObsoleteLineFolding);
                let exact = p
                    .head
                    .headers
                    .iter()
                    .any(|h| h.value.iter().any(|&b| b == b'\n' || b == b'\r'));
                assert_eq!(flagged, exact);
                flagged
            }
            ResponseParse::Invalid(a) => panic!("{a:?}"),
        };
        for (head, want) in [
            (&b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n"[..], false),
            (b"HTTP/1.1 200 OK\nA: 1\nB: 2\n\n", false),
            (b"HTTP/1.1 200 OK\r\n\r\n", false),
            (b"\r\nHTTP/1.1 200 OK\r\nA: 1\r\n\r\n", false),
            (b"HTTP/1.1 200 OK\r\nBad Name\r\nA: 1\r\n\r\n", false),
            (b"HTTP/1.1 200 OK\r\nA: 1\r\n\tx\r\n\r\n", true),
            (b"HTTP/1.1 200 OK\nA: 1\n x\nB: 2\n\n", true),
            // httparse skips the fold before the first value byte.
            (b"HTTP/1.1 200 OK\r\nA:\r\n x\r\n\r\n", false),
            (
                b"HTTP/1.1 200 OK\r\nA: 1\r\n 2\r\n\t3\r\nB: 4\r\n\r\n",
                true,
            ),
        ] {
            assert_eq!(folded(head), want, "{}", String::from_utf8_lossy(head));
        }
    }
}
