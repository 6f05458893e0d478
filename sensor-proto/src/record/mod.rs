//! The privacy-safe exchange record: what leaves the sensor.
//!
//! An [`ExchangeRecord`] is built from an [`crate::http::Exchange`] by
//! [`build`]. It carries names, types, sizes and timings, never values: no
//! header value, cookie value, token, query value or body value can be
//! represented in it. The only value-derived fields are
//!
//! - `auth.jwt` claims that describe the *issuer*, not the caller (`alg`,
//!   `iss`, `aud`, presence of `exp`, token lifetime), and
//! - `principal`, a keyed hash (HMAC-SHA-256 with a per-deployment key) of
//!   the caller's credential identity, so later stages can count distinct
//!   callers without ever holding an identity.
//!
//! The JSON form of this struct is documented in `docs/exchange-record.md`;
//! [`RECORD_SCHEMA_VERSION`] changes whenever that document does.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::http::{Framing, HttpVersion, Tunnel};
use crate::time::Timestamp;

mod auth;
mod build;
mod decode;
mod fingerprint;
mod flat;
mod json;
mod keys;
pub mod segment;
mod shape;
mod skeleton;
mod url;
mod values;

// The public interface is:
pub use auth::{
    API_KEY_HEADERS, API_KEY_PARAMS, MAX_COOKIES, MAX_COOKIE_NAME_BYTES, MAX_JWT_ALG_BYTES,
    MAX_JWT_AUD, MAX_JWT_CLAIM_BYTES,
};
pub use build::{
    build, FlowContext, RecordBuilder, ShapeStats, MAX_CONTENT_ENCODING_BYTES,
    MAX_CONTENT_TYPE_BYTES, MAX_HEADER_NAMES, MAX_HEADER_NAME_BYTES, MAX_METHOD_BYTES,
};
pub use decode::MAX_DECODED_BYTES;
pub use fingerprint::{FingerprintKey, MIN_KEY_BYTES, PRINCIPAL_BYTES};
pub use flat::{FlatEntry, FlatIter, FlatKind, FlatShape};
pub use keys::{KEY_CACHE_MAX_BYTES, KEY_CACHE_MAX_KEYS};
pub use shape::Fields;
pub use shape::{MAX_ARRAY_ITEMS, MAX_DEPTH, MAX_FIELDS, MAX_KEY_BYTES};
pub(crate) use skeleton::{flat_shape, fuzz_shape};
pub use skeleton::{SKELETON_MAX_FIELD_ENTRIES, SKELETON_MAX_NODES};
pub use url::{
    MAX_HOST_BYTES, MAX_PARAM_NAMES, MAX_PARAM_NAME_BYTES, MAX_PATH_BYTES, REDACTED_NAME,
};

/// Version of the record's JSON schema, written in every record as `schema`.
pub const RECORD_SCHEMA_VERSION: u32 = 1;

/// A path segment exported as its placeholder: where it was, what it looked
/// like, and a keyed fingerprint of its value, so that distinct values can
/// still be counted (callers enumerating email addresses, say) without the
/// values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathParam {
    /// Index of the segment: 0 is the one after the leading `/`.
    pub index: u16,
    pub kind: segment::ParamKind,
    /// `hex(HMAC(key, "path segment" NUL value))[..32]` with the
    /// deployment's fingerprint key: equal values, equal fingerprints.
    pub fingerprint: String,
}

/// One request/response pair, reduced to what is safe to export.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExchangeRecord {
    /// Always [`RECORD_SCHEMA_VERSION`].
    pub schema: u32,
    /// Time of the first byte of the request (RFC 3339, UTC, nanoseconds).
    pub ts: Timestamp,
    /// From the last request byte to the first response byte, microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// From the first request byte to the last response byte, microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<u64>,
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// `Host` header (lower-cased, port kept), else the server address.
    pub host: String,
    pub method: String,
    /// Percent-decoded path without the query string. Segments that look
    /// like secrets (tokens, email addresses: [`segment::ParamKind::is_secret`])
    /// are replaced by their placeholder (`{token}`, `{email}`), and
    /// described in [`Self::path_params`].
    pub path: String,
    /// The segments of `path` that were replaced, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_params: Vec<PathParam>,
    /// Names of the query parameters, percent-decoded, in first-seen order,
    /// without duplicates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_params: Vec<String>,
    pub version: HttpVersion,
    /// Final response status; `None` for an unanswered request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub request: MessageInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<MessageInfo>,
    /// Interim (1xx) statuses before the final one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interim: Vec<u16>,
    pub auth: AuthInfo,
    /// Keyed hash of the caller's credential identity (32 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Set when this exchange switched the connection away from HTTP/1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<Tunnel>,
    pub flags: Flags,
    /// Names of the protocol anomalies seen in this exchange.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<String>,
}

/// The parts of a request or response that are safe to export.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageInfo {
    /// Header names, lower-cased, in wire order (repeats kept once).
    pub headers: Vec<String>,
    /// Media type of `Content-Type`, lower-cased, without parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `Content-Encoding` codings, lower-cased (e.g. `gzip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    pub body: BodyInfo,
}

/// Sizes and shape of a message body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BodyInfo {
    pub framing: Framing,
    /// Body bytes on the wire, chunk framing included.
    pub wire_bytes: u64,
    /// Body bytes after removing chunk framing (still content-encoded).
    pub bytes: u64,
    /// Body bytes after content decoding; present when the whole body was
    /// seen and either not content-encoded or decoded within the caps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoded_bytes: Option<u64>,
    /// Shape (keys and value types) of a JSON body, from the bounded sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<BodyShape>,
    /// Field names of an `application/x-www-form-urlencoded` body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form_keys: Option<Vec<String>>,
    /// The shape was inferred from a prefix of the body only.
    #[serde(default, skip_serializing_if = "is_false")]
    pub sampled: bool,
}

impl Default for BodyInfo {
    fn default() -> Self {
        BodyInfo {
            framing: Framing::None,
            wire_bytes: 0,
            bytes: 0,
            decoded_bytes: Some(0),
            shape: None,
            form_keys: None,
            sampled: false,
        }
    }
}

/// The shape of a JSON body as a record holds it: a [`Shape`] tree (what
/// deserializing a record or `From<Shape>` gives), the shape's JSON as
/// the record's JSON carries it (what the record builder gives: the sensor
/// writes records and never needs the tree, so it never builds one), or a
/// [`FlatShape`] (what a builder with
/// [`RecordBuilder::with_flat_shapes`] gives: for the analyzer, which walks
/// each shape once).
///
/// Readers call [`BodyShape::tree`] or [`BodyShape::flat`] (converted on
/// demand from another form). Every form serializes as the [`Shape`], and
/// two `BodyShape`s are equal when their trees are.
#[derive(Clone)]
pub struct BodyShape(ShapeRepr);

#[derive(Clone)]
enum ShapeRepr {
    Tree(Shape),
    /// Written by the shape scanner exactly as `write_json` writes the
    /// equivalent tree: canonical (fields sorted, without duplicates), so
    /// equal JSON means equal trees.
    Json(Box<str>),
    /// Written by the shape scanner from its arenas (canonical too).
    Flat(FlatShape),
}

impl BodyShape {
    /// A shape given as its JSON, as `write_json` writes it.
    pub(crate) fn from_json(json: Box<str>) -> Self {
        BodyShape(ShapeRepr::Json(json))
    }

    /// The shape as a tree (parsed, for a shape held as JSON).
    pub fn tree(&self) -> std::borrow::Cow<'_, Shape> {
        match &self.0 {
            ShapeRepr::Tree(s) => std::borrow::Cow::Borrowed(s),
            ShapeRepr::Json(j) => std::borrow::Cow::Owned(parse_shape(j)),
            ShapeRepr::Flat(f) => std::borrow::Cow::Owned(f.to_tree()),
        }
    }

    /// The shape as a tree.
    pub fn into_tree(self) -> Shape {
        match self.0 {
            ShapeRepr::Tree(s) => s,
            ShapeRepr::Json(j) => parse_shape(&j),
            ShapeRepr::Flat(f) => f.to_tree(),
        }
    }

    /// The shape in its flat form (converted from the tree, for a shape
    /// held in another form).
    pub fn flat(&self) -> std::borrow::Cow<'_, FlatShape> {
        match &self.0 {
            ShapeRepr::Flat(f) => std::borrow::Cow::Borrowed(f),
            ShapeRepr::Tree(s) => std::borrow::Cow::Owned(FlatShape::from_tree(s)),
            ShapeRepr::Json(j) => std::borrow::Cow::Owned(FlatShape::from_tree(&parse_shape(j))),
        }
    }

    /// The shape's JSON, if it is held as JSON (`write_json` copies it).
    pub(crate) fn json(&self) -> Option<&str> {
        match &self.0 {
            ShapeRepr::Tree(_) | ShapeRepr::Flat(_) => None,
            ShapeRepr::Json(j) => Some(j),
        }
    }
}

/// Parses JSON that the skeleton scanner wrote; it is always a valid shape,
/// so the fallback (`any`) is a safeguard that never panics.
fn parse_shape(json: &str) -> Shape {
    let shape = serde_json::from_str(json);
    debug_assert!(shape.is_ok(), "rendered shape does not parse: {json}");
    shape.unwrap_or(Shape::Any)
}

impl From<Shape> for BodyShape {
    fn from(s: Shape) -> Self {
        BodyShape(ShapeRepr::Tree(s))
    }
}

impl From<FlatShape> for BodyShape {
    fn from(f: FlatShape) -> Self {
        BodyShape(ShapeRepr::Flat(f))
    }
}

impl PartialEq for BodyShape {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (ShapeRepr::Json(a), ShapeRepr::Json(b)) => a == b,
            (ShapeRepr::Flat(a), ShapeRepr::Flat(b)) => a == b,
            _ => self.tree() == other.tree(),
        }
    }
}

impl PartialEq<Shape> for BodyShape {
    fn eq(&self, other: &Shape) -> bool {
        *self.tree() == *other
    }
}

impl std::fmt::Debug for BodyShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.tree().fmt(f)
    }
}

impl Serialize for BodyShape {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.tree().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for BodyShape {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Shape::deserialize(deserializer).map(BodyShape::from)
    }
}

/// JSON value shape: types, never values.
///
/// Serialised with its kind under `type`; read back by a hand-written
/// `Deserialize` (`shape.rs`) that takes the keys in any order without
/// buffering the object first, as serde's internally tagged enums do (at
/// every level of nesting).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Shape {
    Null,
    Boolean,
    Integer,
    Number,
    String {
        /// A recognised string format (`uuid`, `date-time`, `date`, `email`,
        /// `uri`, `ipv4`, `ipv6`, `jwt`), derived from the value and then
        /// discarded with it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<StringFormat>,
    },
    Array {
        /// Merged shape of the elements seen; `None` for an empty array.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        items: Option<Box<Shape>>,
    },
    Object {
        fields: Fields,
        /// Some fields were left out (width or depth cap, or sample end).
        #[serde(default, skip_serializing_if = "is_false")]
        truncated: bool,
    },
    /// Elements of different types in one array (or a value cut by a cap).
    Any,
}

/// A recognised string format of a JSON string value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StringFormat {
    #[serde(rename = "uuid")]
    Uuid,
    #[serde(rename = "date-time")]
    DateTime,
    #[serde(rename = "date")]
    Date,
    #[serde(rename = "email")]
    Email,
    #[serde(rename = "uri")]
    Uri,
    #[serde(rename = "ipv4")]
    Ipv4,
    #[serde(rename = "ipv6")]
    Ipv6,
    #[serde(rename = "jwt")]
    Jwt,
}

impl StringFormat {
    /// Every format, in declaration order.
    pub const ALL: [StringFormat; 8] = [
        StringFormat::Uuid,
        StringFormat::DateTime,
        StringFormat::Date,
        StringFormat::Email,
        StringFormat::Uri,
        StringFormat::Ipv4,
        StringFormat::Ipv6,
        StringFormat::Jwt,
    ];

    /// The label written in records (`uuid`, `date-time`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            StringFormat::Uuid => "uuid",
            StringFormat::DateTime => "date-time",
            StringFormat::Date => "date",
            StringFormat::Email => "email",
            StringFormat::Uri => "uri",
            StringFormat::Ipv4 => "ipv4",
            StringFormat::Ipv6 => "ipv6",
            StringFormat::Jwt => "jwt",
        }
    }
}

/// How the request authenticated, without the secret.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthInfo {
    pub scheme: AuthScheme,
    /// For `api_key`: the header or query parameter name carrying the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    /// For `api_key`: where the key was (`header` or `query`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_in: Option<KeyLocation>,
    /// Names of the cookies sent (values never).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cookies: Vec<String>,
    /// For `bearer_jwt`: facts from the token header and claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtInfo>,
}

/// Authentication scheme of a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthScheme {
    #[default]
    None,
    Basic,
    BearerJwt,
    BearerOpaque,
    ApiKey,
    Cookie,
    Digest,
    Other,
}

impl AuthScheme {
    /// The label written in records (`bearer_jwt`, `none`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthScheme::None => "none",
            AuthScheme::Basic => "basic",
            AuthScheme::BearerJwt => "bearer_jwt",
            AuthScheme::BearerOpaque => "bearer_opaque",
            AuthScheme::ApiKey => "api_key",
            AuthScheme::Cookie => "cookie",
            AuthScheme::Digest => "digest",
            AuthScheme::Other => "other",
        }
    }
}

/// Where an API key was carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyLocation {
    Header,
    Query,
}

/// What a JWT says about itself, without its subject or signature.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JwtInfo {
    /// Header `alg`, e.g. `RS256`, `HS256` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// `aud`, a list even when the token has a single string.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aud: Vec<String>,
    pub has_exp: bool,
    /// `exp - iat` in seconds, when both are present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_s: Option<i64>,
}

/// Per-exchange conditions a consumer must know to trust the record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    /// Bytes were missing (capture loss) inside this exchange.
    #[serde(default, skip_serializing_if = "is_false")]
    pub gap: bool,
    /// A message was cut short (connection ended, cap hit).
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
    /// The flow was picked up without its handshake.
    #[serde(default, skip_serializing_if = "is_false")]
    pub mid_stream: bool,
    /// No response was seen for this request.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unanswered: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Deterministic xorshift64 noise for the record tests.
#[cfg(test)]
pub(crate) fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
