//! Protocol violations and oddities seen in HTTP/1.x traffic.
//!
//! These are *anomalies* (facts about the traffic), not errors of ours: they
//! travel with the exchange they belong to, are counted by kind, and never
//! stop parsing.

use std::fmt;

macro_rules! anomalies {
    ($( $(#[$doc:meta])* $variant:ident = $bit:expr, $name:literal; )*) => {
        /// A named HTTP protocol violation. Closed set; see each variant.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum HttpAnomaly {
            $( $(#[$doc])* $variant = $bit, )*
        }

        impl HttpAnomaly {
            /// Every anomaly kind, in declaration order.
            pub const ALL: &'static [HttpAnomaly] = &[$(HttpAnomaly::$variant),*];

            /// Stable snake_case name used in records and counters.
            pub const fn name(self) -> &'static str {
                match self { $(HttpAnomaly::$variant => $name,)* }
            }
        }
    };
}

anomalies! {
    /// Both `Content-Length` and `Transfer-Encoding` present (RFC 9112 §6.3:
    /// Transfer-Encoding wins, but the message is a smuggling signal).
    ContentLengthWithTransferEncoding = 0, "content_length_with_transfer_encoding";
    /// Several `Content-Length` values that disagree.
    ConflictingContentLength = 1, "conflicting_content_length";
    /// A `Content-Length` that is not a decimal number (or overflows).
    InvalidContentLength = 2, "invalid_content_length";
    /// `Transfer-Encoding` whose final coding is not `chunked`, or unknown codings.
    InvalidTransferEncoding = 3, "invalid_transfer_encoding";
    /// A chunk-size line that is not hex, overflows, or is too long.
    InvalidChunk = 4, "invalid_chunk";
    /// Chunk extensions longer than the cap.
    ChunkExtensionTooLong = 5, "chunk_extension_too_long";
    /// Header section larger than the cap.
    HeaderSectionTooLarge = 6, "header_section_too_large";
    /// More header fields than the cap.
    TooManyHeaders = 7, "too_many_headers";
    /// The request line could not be parsed.
    InvalidRequestLine = 8, "invalid_request_line";
    /// The status line could not be parsed.
    InvalidStatusLine = 9, "invalid_status_line";
    /// A malformed header field (bad name, bad value bytes).
    InvalidHeader = 10, "invalid_header";
    /// Obsolete line folding in a header value.
    ObsoleteLineFolding = 11, "obsolete_line_folding";
    /// More pipelined requests waiting for responses than the cap; the oldest
    /// were flushed unanswered.
    TooManyPendingRequests = 12, "too_many_pending_requests";
    /// A response arrived with no request waiting for it.
    ResponseWithoutRequest = 13, "response_without_request";
    /// Bytes missing (capture loss) inside the request.
    GapInRequest = 14, "gap_in_request";
    /// Bytes missing (capture loss) inside the response.
    GapInResponse = 15, "gap_in_response";
    /// Bytes that were not HTTP were skipped to find the next message start.
    GarbageSkipped = 16, "garbage_skipped";
    /// The connection ended before the message was complete.
    TruncatedMessage = 17, "truncated_message";
    /// Data in the server direction after a `Connection: close` response, or
    /// a body on a message that must not have one.
    UnexpectedData = 18, "unexpected_data";
    /// A request line with an unknown or lower-case method token.
    UnknownMethod = 19, "unknown_method";
    /// An HTTP version other than 1.0 or 1.1 in a start line.
    UnsupportedVersion = 20, "unsupported_version";
    /// The `Host` header is missing in an HTTP/1.1 request, or repeated.
    InvalidHost = 21, "invalid_host";
    /// Not the traffic's fault: the HTTP state of all flows passed its
    /// memcap ([`crate::flow::FlowLimits::handler_memcap_bytes`]), and this
    /// connection's state was dropped. Its pending requests came out
    /// unanswered, a message being read was lost, and parsing resumed at
    /// the next start line.
    HttpMemcap = 22, "http_memcap";
    /// A start line longer than [`crate::http::limits::MAX_START_LINE_BYTES`]
    /// or a header field line longer than
    /// [`crate::http::limits::MAX_HEADER_LINE_BYTES`]: a probe for parser
    /// overflows or evasion. The message is still parsed.
    LineTooLong = 23, "line_too_long";
}

impl fmt::Display for HttpAnomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A small set of [`HttpAnomaly`] kinds (a bit set; `Copy`).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AnomalySet(u32);

impl AnomalySet {
    pub const EMPTY: AnomalySet = AnomalySet(0);

    pub fn insert(&mut self, a: HttpAnomaly) {
        self.0 |= 1 << (a as u8);
    }

    pub fn remove(&mut self, a: HttpAnomaly) {
        self.0 &= !(1 << (a as u8));
    }

    pub const fn contains(self, a: HttpAnomaly) -> bool {
        self.0 & (1 << (a as u8)) != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn union(self, other: AnomalySet) -> AnomalySet {
        AnomalySet(self.0 | other.0)
    }

    /// The kinds in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = HttpAnomaly> {
        HttpAnomaly::ALL
            .iter()
            .copied()
            .filter(move |a| self.contains(*a))
    }
}

impl fmt::Debug for AnomalySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<HttpAnomaly> for AnomalySet {
    fn from_iter<I: IntoIterator<Item = HttpAnomaly>>(iter: I) -> Self {
        let mut s = AnomalySet::EMPTY;
        for a in iter {
            s.insert(a);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_round_trips_every_kind() {
        let all: AnomalySet = HttpAnomaly::ALL.iter().copied().collect();
        assert_eq!(all.iter().collect::<Vec<_>>(), HttpAnomaly::ALL);
        let mut s = AnomalySet::EMPTY;
        assert!(s.is_empty());
        s.insert(HttpAnomaly::GapInResponse);
        assert!(s.contains(HttpAnomaly::GapInResponse));
        assert!(!s.contains(HttpAnomaly::GapInRequest));
    }
}
