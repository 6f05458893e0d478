//! What the HTTP/1.x parser hands to the record builder.
//!
//! These types still hold raw header values, the raw request target and a
//! body sample: they never leave the sensor. [`crate::record`] turns an
//! [`Exchange`] into a privacy-safe [`crate::record::ExchangeRecord`] and drops
//! them. Their `Debug` impls print names and sizes only, so a stray `{:?}` in
//! a log line cannot leak a secret.

use std::fmt;

use crate::http::events::AnomalySet;
use crate::time::Timestamp;

/// HTTP protocol version of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HttpVersion {
    #[serde(rename = "1.0")]
    Http10,
    #[serde(rename = "1.1")]
    Http11,
}

/// One header field. `name` is lower-cased ASCII; `value` is secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    pub name: Box<str>,
    pub value: Box<[u8]>,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: <{} bytes>", self.name, self.value.len())
    }
}

/// How a message body was delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// The message has no body by definition (HEAD response, 1xx, 204, 304,
    /// a request without Content-Length or Transfer-Encoding).
    None,
    ContentLength,
    Chunked,
    /// Response body that runs until the server closes the connection.
    CloseDelimited,
}

/// A message body: its lengths and a bounded sample of its first bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Body {
    pub framing: Framing,
    /// Body bytes on the wire, chunk framing included.
    pub wire_len: u64,
    /// Payload bytes after removing chunk framing (still content-encoded).
    pub len: u64,
    /// The first payload bytes (after de-chunking, before content decoding),
    /// at most [`crate::http::limits::BODY_SAMPLE_MAX`].
    pub sample: Vec<u8>,
    /// False when the body was cut short (gap, close or reset mid-body).
    pub complete: bool,
}

impl Body {
    /// A body-less message.
    pub const fn empty() -> Self {
        Body {
            framing: Framing::None,
            wire_len: 0,
            len: 0,
            sample: Vec::new(),
            complete: true,
        }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body")
            .field("framing", &self.framing)
            .field("wire_len", &self.wire_len)
            .field("len", &self.len)
            .field("sample_len", &self.sample.len())
            .field("complete", &self.complete)
            .finish()
    }
}

/// A request line plus header section.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Box<str>,
    /// Raw request-target bytes (origin, absolute, authority or asterisk
    /// form). Secret: the query string lives here.
    pub target: Box<[u8]>,
    pub version: HttpVersion,
    pub headers: Vec<Header>,
}

impl fmt::Debug for RequestHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestHead")
            .field("method", &self.method)
            .field("target_len", &self.target.len())
            .field("version", &self.version)
            .field("headers", &self.headers)
            .finish()
    }
}

/// A status line plus header section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub version: HttpVersion,
    pub headers: Vec<Header>,
}

/// One request or response with its timing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<H> {
    /// Time of the packet carrying the first byte of the start line.
    pub start: Timestamp,
    /// Time of the packet carrying the last byte of the message.
    pub end: Timestamp,
    pub head: H,
    pub body: Body,
}

pub type Request = Message<RequestHead>;
pub type Response = Message<ResponseHead>;

/// What the connection became after a successful `Upgrade` or `CONNECT`:
/// from then on the stream is no longer parsed as HTTP/1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tunnel {
    WebSocket,
    H2c,
    /// Another `Upgrade` protocol token.
    OtherUpgrade,
    Connect,
}

/// A request paired with its response (if one arrived).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    pub request: Request,
    /// `None` when the connection ended (or the flow expired) before a
    /// response arrived.
    pub response: Option<Response>,
    /// Interim (1xx) status codes seen before the final response, in order.
    pub interim: Vec<u16>,
    /// Set when this exchange switched the connection to another protocol.
    pub tunnel: Option<Tunnel>,
    /// A gap (missing bytes) fell inside this request or its response.
    pub gap: bool,
    /// Protocol violations observed while parsing this exchange.
    pub anomalies: AnomalySet,
}
