//! [`build`]: one [`Exchange`] in, one privacy-safe [`ExchangeRecord`] out.
//!
//! Runs once per exchange on the capture path, so it allocates only what
//! the record itself holds (plus a decode buffer for encoded bodies) and
//! never looks past a body's sample.

use std::net::SocketAddr;

use serde::Serialize;

use super::auth::{self, is_tchar};
use super::decode::{self, Coding};
use super::fingerprint::FingerprintKey;
use super::shape;
use super::skeleton::SkeletonScanner;
use super::url::{self, clean_text, collect_names};
use super::{BodyInfo, ExchangeRecord, Flags, MessageInfo, RECORD_SCHEMA_VERSION};
use crate::http::{Body, Exchange, Header, HttpAnomaly};

/// Most header names listed per message.
pub const MAX_HEADER_NAMES: usize = 100;
/// Longest header name listed, in bytes.
pub const MAX_HEADER_NAME_BYTES: usize = 128;
/// Longest exported `Content-Type` media type, in bytes.
pub const MAX_CONTENT_TYPE_BYTES: usize = 100;
/// Longest exported `Content-Encoding` list, in bytes.
pub const MAX_CONTENT_ENCODING_BYTES: usize = 100;
/// Longest exported method, in bytes.
pub const MAX_METHOD_BYTES: usize = 32;

/// Where an exchange was seen: the flow it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowContext {
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// The flow was picked up without its handshake.
    pub mid_stream: bool,
}

/// Reduces an exchange to its exportable record. Never fails: anything that
/// cannot be described safely is left out. [`RecordBuilder::build`] does the
/// same faster for a stream of exchanges.
pub fn build(exchange: &Exchange, flow: &FlowContext, key: &FingerprintKey) -> ExchangeRecord {
    RecordBuilder::new().build(exchange, flow, key)
}

/// Builds records one exchange after another, keeping what can be reused:
/// the JSON keys already exported (see `record::keys`; bounded by
/// [`super::KEY_CACHE_MAX_KEYS`] and [`super::KEY_CACHE_MAX_BYTES`]) and the
/// shape scanner's arenas (bounded by [`super::SKELETON_MAX_NODES`] and
/// [`super::SKELETON_MAX_FIELD_ENTRIES`]). The records are exactly those of
/// [`build`].
#[derive(Default)]
pub struct RecordBuilder {
    shapes: SkeletonScanner,
}

impl std::fmt::Debug for RecordBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key table holds JSON keys seen on the wire: never printed.
        f.debug_struct("RecordBuilder").finish_non_exhaustive()
    }
}

impl RecordBuilder {
    pub fn new() -> Self {
        RecordBuilder::default()
    }

    /// A builder whose records hold body shapes in their flat form
    /// ([`super::FlatShape`]) rather than as their JSON: for a reader in the
    /// same process (the analyzer), which would otherwise parse every shape
    /// back. The records are equal to [`Self::new`]'s and serialize to the
    /// same bytes.
    pub fn with_flat_shapes() -> Self {
        let mut b = RecordBuilder::default();
        b.shapes.flat_shapes = true;
        b
    }

    /// [`build`] with this builder's caches.
    pub fn build(
        &mut self,
        exchange: &Exchange,
        flow: &FlowContext,
        key: &FingerprintKey,
    ) -> ExchangeRecord {
        build_with(&mut self.shapes, exchange, None, flow, key)
    }

    /// [`Self::build`] for an exchange the caller no longer needs: header
    /// names that are exported as they are move into the record instead of
    /// being copied (one allocation, copy and free less per name). The
    /// record is the same; of `exchange`, only `response.is_some()`, `gap`
    /// and `anomalies` are left as they were.
    pub fn build_consuming(
        &mut self,
        exchange: &mut Exchange,
        flow: &FlowContext,
        key: &FingerprintKey,
    ) -> ExchangeRecord {
        let mut req_headers = std::mem::take(&mut exchange.request.head.headers);
        let mut resp_headers = exchange
            .response
            .as_mut()
            .map(|r| std::mem::take(&mut r.head.headers));
        let taken = Taken {
            request: &mut req_headers,
            response: resp_headers.as_deref_mut(),
            interim: std::mem::take(&mut exchange.interim),
        };
        build_with(&mut self.shapes, exchange, Some(taken), flow, key)
    }

    /// This builder's counters so far.
    pub fn stats(&self) -> ShapeStats {
        ShapeStats {
            arena_full: self.shapes.arena_full,
            sampled: self.shapes.sampled,
        }
    }
}

/// Counters of the JSON body shape scanner.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ShapeStats {
    /// Bodies whose shape filled an arena ([`super::SKELETON_MAX_NODES`] or
    /// [`super::SKELETON_MAX_FIELD_ENTRIES`]): described in part, the rest
    /// `any` and `truncated`.
    pub arena_full: u64,
    /// Bodies longer than their sample ([`crate::http::limits::BODY_SAMPLE_MAX`]
    /// on the wire, [`super::MAX_DECODED_BYTES`] decoded) whose shape or form
    /// keys describe only the sample, flagged `sampled` in their record: how
    /// often the sample's depth was reached (reliability target S7).
    pub sampled: u64,
}

/// Parts of an exchange that [`RecordBuilder::build_consuming`] took out of
/// it: the header fields (exported names are moved out of them) and the
/// interim statuses.
struct Taken<'a> {
    request: &'a mut [Header],
    response: Option<&'a mut [Header]>,
    interim: Vec<u16>,
}

fn build_with(
    shapes: &mut SkeletonScanner,
    exchange: &Exchange,
    taken: Option<Taken<'_>>,
    flow: &FlowContext,
    key: &FingerprintKey,
) -> ExchangeRecord {
    let req = &exchange.request;
    let (mut req_headers, resp_headers, interim) = match taken {
        Some(t) => (
            Headers::Owned(t.request),
            t.response.map(Headers::Owned),
            t.interim,
        ),
        None => (
            Headers::Shared(&req.head.headers),
            exchange
                .response
                .as_ref()
                .map(|r| Headers::Shared(&r.head.headers)),
            exchange.interim.clone(),
        ),
    };
    let method = url::clean_str(&req.head.method, MAX_METHOD_BYTES);
    let target = url::split_target(&req.head.target, &method);

    let host_header = req_headers
        .get()
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"));
    let host_header = host_header.and_then(|h| url::normalize_host(&h.value));
    let authority = target.authority.and_then(url::normalize_host);
    let host = if target.authority_form {
        authority.or(host_header)
    } else {
        host_header.or(authority)
    }
    .unwrap_or_else(|| url::socket_host(flow.server));

    let (path, path_params) = url::redact_path(url::export_path(&target), key);
    let mut query_params = Vec::new();
    if let Some(q) = target.query {
        collect_names(q, &mut query_params, false);
    }
    let (auth, principal) = auth::analyze(req_headers.get(), target.query, key);

    let resp = exchange.response.as_ref();
    // A body with a gap is incomplete but not cut short: `gap` says so.
    let truncated = exchange.anomalies.contains(HttpAnomaly::TruncatedMessage)
        || (!exchange.gap && (!req.body.complete || resp.is_some_and(|r| !r.body.complete)));

    ExchangeRecord {
        schema: RECORD_SCHEMA_VERSION,
        ts: req.start,
        latency_us: resp.map(|r| r.start.nanos_since(req.end) / 1_000),
        duration_us: resp.map(|r| r.end.nanos_since(req.start) / 1_000),
        client: flow.client,
        server: flow.server,
        host,
        method,
        path,
        path_params,
        query_params,
        version: req.head.version,
        status: resp.map(|r| r.head.status),
        request: message_info(shapes, &mut req_headers, &req.body),
        response: resp
            .zip(resp_headers)
            .map(|(r, mut headers)| message_info(shapes, &mut headers, &r.body)),
        interim,
        auth,
        principal,
        tunnel: exchange.tunnel,
        flags: Flags {
            gap: exchange.gap,
            truncated,
            mid_stream: flow.mid_stream,
            unanswered: resp.is_none(),
        },
        anomalies: exchange
            .anomalies
            .iter()
            .map(|a| a.name().to_owned())
            .collect(),
    }
}

/// A message's header fields, borrowed, or handed over so that exported
/// names can be moved out of them.
enum Headers<'a> {
    Shared(&'a [Header]),
    Owned(&'a mut [Header]),
}

impl Headers<'_> {
    fn get(&self) -> &[Header] {
        match self {
            Headers::Shared(h) => h,
            Headers::Owned(h) => h,
        }
    }
}

fn message_info(
    shapes: &mut SkeletonScanner,
    headers: &mut Headers<'_>,
    body: &Body,
) -> MessageInfo {
    let count = headers.get().len();
    let mut names: Vec<String> = Vec::with_capacity(count.min(MAX_HEADER_NAMES));
    let mut content_type = None;
    let mut encodings: Option<String> = None;
    let mut encoding_ok = true;
    for i in 0..count {
        let Some(h) = headers.get().get(i) else {
            break;
        };
        if content_type.is_none() && h.name.eq_ignore_ascii_case("content-type") {
            content_type = Some(media_type(&h.value));
        } else if h.name.eq_ignore_ascii_case("content-encoding") {
            encoding_ok &= append_codings(&h.value, &mut encodings);
        }
        if names.len() >= MAX_HEADER_NAMES || names.iter().any(|n| n.eq_ignore_ascii_case(&h.name))
        {
            continue;
        }
        if !listed_as_is(&h.name) {
            names.push(export_header_name(&h.name));
            continue;
        }
        let name = match headers {
            // Listed as it is: moved into the record, not copied.
            Headers::Owned(hs) => hs
                .get_mut(i)
                .map(|h| std::mem::take(&mut h.name).into_string())
                .unwrap_or_default(),
            Headers::Shared(hs) => hs.get(i).map(|h| h.name.to_string()).unwrap_or_default(),
        };
        names.push(name);
    }
    let content_type = content_type.flatten();
    let content_encoding = encodings.filter(|_| encoding_ok);
    let body = body_info(
        shapes,
        body,
        content_type.as_deref(),
        content_encoding.as_deref(),
        encoding_ok,
    );
    MessageInfo {
        headers: names,
        content_type,
        content_encoding,
        body,
    }
}

/// A header name as listed: control characters replaced, cut at
/// [`MAX_HEADER_NAME_BYTES`], lower-cased. Names that are already short,
/// printable and lower-case (what the parser hands over; [`listed_as_is`])
/// are not passed here: they are copied or moved as they are.
fn export_header_name(name: &str) -> String {
    let mut n = clean_text(name.as_bytes(), MAX_HEADER_NAME_BYTES);
    n.make_ascii_lowercase();
    n
}

/// True if a header name is listed exactly as it is.
fn listed_as_is(name: &str) -> bool {
    name.len() <= MAX_HEADER_NAME_BYTES
        && url::word_marks(name.as_bytes(), |w| {
            url::unprintable_marks(w) | url::uppercase_marks(w)
        }) == 0
}

/// `type/subtype` of a `Content-Type`, lower-cased, if well formed.
fn media_type(value: &[u8]) -> Option<String> {
    let end = memchr::memchr(b';', value).unwrap_or(value.len());
    let mt = value[..end].trim_ascii();
    let slash = memchr::memchr(b'/', mt)?;
    let (ty, sub) = (&mt[..slash], &mt[slash + 1..]);
    let token = |t: &[u8]| !t.is_empty() && t.iter().all(|&c| is_tchar(c));
    if mt.len() > MAX_CONTENT_TYPE_BYTES || !token(ty) || !token(sub) {
        return None;
    }
    // Tokens and the slash are ASCII: copied and lower-cased in bulk.
    std::str::from_utf8(mt).ok().map(str::to_ascii_lowercase)
}

/// Appends the codings of one `Content-Encoding` value; false if one is not
/// a token (the whole list is then withheld).
fn append_codings(value: &[u8], out: &mut Option<String>) -> bool {
    for c in value.split(|&c| c == b',') {
        let c = c.trim_ascii();
        if c.is_empty() {
            continue;
        }
        if !c.iter().all(|&b| is_tchar(b)) {
            return false;
        }
        let s = out.get_or_insert_with(String::new);
        if s.len() + c.len() + 2 > MAX_CONTENT_ENCODING_BYTES {
            return false;
        }
        if !s.is_empty() {
            s.push_str(", ");
        }
        s.extend(c.iter().map(|&b| char::from(b.to_ascii_lowercase())));
    }
    true
}

fn is_json_type(ct: &str) -> bool {
    matches!(ct, "application/json" | "text/json")
        || (ct.starts_with("application/") && ct.ends_with("+json"))
}

fn body_info(
    shapes: &mut SkeletonScanner,
    body: &Body,
    content_type: Option<&str>,
    encoding: Option<&str>,
    encoding_ok: bool,
) -> BodyInfo {
    let coding = if encoding_ok {
        Coding::from_list(encoding)
    } else {
        Coding::Unsupported
    };
    // The sample is the whole payload.
    let whole = body.complete && body.sample.len() as u64 == body.len;
    let mut info = BodyInfo {
        framing: body.framing,
        wire_bytes: body.wire_len,
        bytes: body.len,
        decoded_bytes: ((coding == Coding::Identity || body.len == 0) && body.complete)
            .then_some(body.len),
        shape: None,
        form_keys: None,
        sampled: false,
    };
    if body.sample.is_empty() {
        return info;
    }
    let want_json = match content_type {
        Some(ct) => is_json_type(ct),
        None => true, // decided on the decoded bytes below
    };
    let want_form = content_type == Some("application/x-www-form-urlencoded");
    if !want_json && !want_form {
        if coding != Coding::Identity && whole {
            // Decode only to learn the size: output discarded, bounded by the cap.
            info.decoded_bytes = decode::decoded_len(&body.sample, coding);
        }
        return info;
    }
    let Some(decoded) = decode::decode(&body.sample, coding) else {
        return info;
    };
    let full = whole && decoded.finished;
    if coding != Coding::Identity && full {
        info.decoded_bytes = Some(decoded.data.len() as u64);
    }
    if want_form {
        let mut keys = Vec::new();
        collect_names(&decoded.data, &mut keys, !full);
        info.sampled = !full;
        shapes.sampled += u64::from(info.sampled);
        info.form_keys = Some(keys);
    } else if content_type.is_some() || shape::looks_like_json(&decoded.data) {
        info.shape = shapes.infer(&decoded.data);
        info.sampled = info.shape.is_some() && !full;
        shapes.sampled += u64::from(info.sampled);
    }
    info
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use base64::Engine as _;

    use super::*;
    use crate::http::{
        AnomalySet, Framing, HttpVersion, Message, RequestHead, Response, ResponseHead,
    };
    use crate::record::segment::ParamKind;
    use crate::record::{AuthScheme, KeyLocation, Shape};
    use crate::time::Timestamp;

    fn hdr(name: &str, value: &str) -> Header {
        Header {
            name: name.into(),
            value: value.as_bytes().into(),
        }
    }

    fn body(bytes: &[u8]) -> Body {
        Body {
            framing: Framing::ContentLength,
            wire_len: bytes.len() as u64,
            len: bytes.len() as u64,
            sample: bytes.to_vec(),
            complete: true,
        }
    }

    fn request(method: &str, target: &[u8], headers: Vec<Header>, b: Body) -> crate::http::Request {
        Message {
            start: Timestamp::from_parts(1_700_000_000, 0),
            end: Timestamp::from_parts(1_700_000_000, 2_000_000),
            head: RequestHead {
                method: method.into(),
                target: target.into(),
                version: HttpVersion::Http11,
                headers,
            },
            body: b,
        }
    }

    fn response(status: u16, headers: Vec<Header>, b: Body) -> Response {
        Message {
            start: Timestamp::from_parts(1_700_000_000, 12_000_000),
            end: Timestamp::from_parts(1_700_000_000, 15_500_000),
            head: ResponseHead {
                status,
                version: HttpVersion::Http11,
                headers,
            },
            body: b,
        }
    }

    fn exchange(req: crate::http::Request, resp: Option<Response>) -> Exchange {
        Exchange {
            request: req,
            response: resp,
            interim: Vec::new(),
            tunnel: None,
            gap: false,
            anomalies: AnomalySet::EMPTY,
        }
    }

    /// The message info with a scanner of its own.
    fn message_info(headers: &[Header], body: &Body) -> MessageInfo {
        super::message_info(
            &mut SkeletonScanner::default(),
            &mut Headers::Shared(headers),
            body,
        )
    }

    /// A body's shape as a tree.
    fn tree(shape: &Option<crate::record::BodyShape>) -> Option<Shape> {
        shape.as_ref().map(|s| s.tree().into_owned())
    }

    fn flow() -> FlowContext {
        FlowContext {
            client: "10.0.0.7:51514".parse().unwrap(),
            server: "10.0.0.2:8080".parse().unwrap(),
            mid_stream: false,
        }
    }

    fn key() -> FingerprintKey {
        FingerprintKey::new([42; 32])
    }

    fn b64url(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Every secret, in every encoding a careless implementation could leak.
    fn leak_forms(secret: &str) -> Vec<String> {
        let std = base64::engine::general_purpose::STANDARD;
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let pct: String = secret.bytes().map(|b| format!("%{b:02X}")).collect();
        vec![
            secret.to_owned(),
            std.encode(secret),
            url.encode(secret),
            pct.clone(),
            pct.to_lowercase(),
            secret.replace('@', "%40").replace(' ', "+"),
        ]
    }

    const SECRETS: &[&str] = &[
        "alice.secret@example.com",
        "user-7f3a9c2e",
        "hunter2-Passw0rd!",
        "4111111111111111",
        "4111 1111 1111 1111",
        "sk_live_9aBcDeFgHiJkLmNoPq",
        "qk_9f8e7d6c5b4a",
        "sess-0d1e2f3a4b5c6d7e",
        "csrf-44b9e1f0",
        "mallory:OpenSesame",
        "OpenSesame",
        "hidden.account@example.org",
        "000-11-2222",
        "s3cr3t-body-token-XYZ",
        "Jane Q. Public",
        "bare-cookie-Secret",
        "eyJraWQiOiJ0ZXN0In0",
    ];

    fn canary_exchanges() -> Vec<Exchange> {
        let claims = r#"{"iss":"https://idp.example.com","sub":"user-7f3a9c2e","email":"alice.secret@example.com","aud":"orders-api","exp":1700003600,"iat":1700000000}"#;
        let tok = format!(
            "{}.{}.c2lnbmF0dXJlLXNpZw",
            b64url(r#"{"alg":"RS256","kid":"k1"}"#),
            b64url(claims)
        );
        let basic = base64::engine::general_purpose::STANDARD.encode("mallory:OpenSesame");
        let json_body = br#"{"password":"hunter2-Passw0rd!","card":{"number":"4111111111111111","pan_spaced":"4111 1111 1111 1111"},"hidden.account@example.org":{"ssn":"000-11-2222"},"name":"Jane Q. Public","token":"s3cr3t-body-token-XYZ","n":4111111111111111,"eyJraWQiOiJ0ZXN0In0":{"jwt":"eyJraWQiOiJ0ZXN0In0.e30.x"}}"#;
        let form_body = b"username=alice.secret%40example.com&password=hunter2-Passw0rd%21&card=4111+1111+1111+1111";
        let q = b"/v1/orders/42?email=alice.secret%40example.com&password=hunter2-Passw0rd!&cc=4111111111111111&api_key=sk_live_9aBcDeFgHiJkLmNoPq#frag";
        let cookie = "session=sess-0d1e2f3a4b5c6d7e; csrftoken=csrf-44b9e1f0; bare-cookie-Secret";
        vec![
            exchange(
                request(
                    "POST",
                    q,
                    vec![
                        hdr("host", "API.Example.com"),
                        hdr("authorization", &format!("Bearer {tok}")),
                        hdr("cookie", cookie),
                        hdr("content-type", "application/json; charset=utf-8"),
                        hdr("x-forwarded-for", "Jane Q. Public"),
                    ],
                    body(json_body),
                ),
                Some(response(
                    201,
                    vec![
                        hdr("content-type", "application/json"),
                        hdr("content-encoding", "gzip"),
                        hdr("set-cookie", cookie),
                    ],
                    body(&gzip(json_body)),
                )),
            ),
            exchange(
                request(
                    "POST",
                    b"/login?next=%2Fhome",
                    vec![
                        hdr("host", "api.example.com"),
                        hdr("authorization", &format!("Basic {basic}")),
                        hdr("content-type", "application/x-www-form-urlencoded"),
                    ],
                    body(form_body),
                ),
                None,
            ),
            exchange(
                request(
                    "GET",
                    b"/v1/things?key=x",
                    vec![hdr("x-api-key", "qk_9f8e7d6c5b4a"), hdr("cookie", cookie)],
                    Body::empty(),
                ),
                None,
            ),
            exchange(
                request(
                    "GET",
                    b"http://mallory:OpenSesame@api.example.com/x?api_key=sk_live_9aBcDeFgHiJkLmNoPq",
                    vec![hdr("cookie", cookie)],
                    Body::empty(),
                ),
                None,
            ),
            exchange(
                request("GET", b"/account", vec![hdr("cookie", cookie)], Body::empty()),
                None,
            ),
        ]
    }

    #[test]
    fn canary_no_secret_leaves() {
        let records: Vec<ExchangeRecord> = canary_exchanges()
            .iter()
            .map(|e| build(e, &flow(), &key()))
            .collect();
        let json = serde_json::to_string(&records).unwrap();
        for secret in SECRETS {
            for form in leak_forms(secret) {
                assert!(!json.contains(&form), "leaked {form:?} in {json}");
            }
        }
        // Also the Basic credential and JWT as sent on the wire.
        assert!(!json.contains("bWFsbG9yeTpPcGVuU2VzYW1l"));
        assert!(!json.contains("eyJ"));

        let r = &records[0];
        assert_eq!(r.auth.scheme, AuthScheme::BearerJwt);
        let jwt = r.auth.jwt.as_ref().unwrap();
        assert_eq!(jwt.iss.as_deref(), Some("https://idp.example.com"));
        assert_eq!(jwt.aud, ["orders-api"]);
        assert_eq!(r.auth.cookies, ["session", "csrftoken"]);
        assert_eq!(r.query_params, ["email", "password", "cc", "api_key"]);
        assert_eq!(r.path, "/v1/orders/42");
        assert_eq!(r.host, "api.example.com");
        assert!(r.principal.as_ref().is_some_and(|p| p.len() == 32));
        for name in [
            "password", "card", "number", "{key}", "ssn", "name", "token", "n",
        ] {
            assert!(json.contains(&format!("\"{name}\"")), "missing {name}");
        }
        let shape = r.request.body.shape.as_ref().unwrap();
        let resp_shape = r.response.as_ref().unwrap().body.shape.as_ref().unwrap();
        assert_eq!(shape, resp_shape);
        assert_eq!(records[1].auth.scheme, AuthScheme::Basic);
        assert_eq!(
            records[1].request.body.form_keys.as_deref(),
            Some(
                &[
                    "username".to_owned(),
                    "password".to_owned(),
                    "card".to_owned()
                ][..]
            )
        );
        assert_eq!(records[2].auth.scheme, AuthScheme::ApiKey);
        assert_eq!(records[2].auth.key_in, Some(KeyLocation::Header));
        assert_eq!(records[2].auth.key_name.as_deref(), Some("x-api-key"));
        assert_eq!(records[3].auth.scheme, AuthScheme::ApiKey);
        assert_eq!(records[3].auth.key_in, Some(KeyLocation::Query));
        assert_eq!(records[3].host, "api.example.com");
        assert_eq!(records[4].auth.scheme, AuthScheme::Cookie);
        assert_eq!(
            records[4].principal,
            records[4].principal.clone().filter(|p| p.len() == 32)
        );
        assert!(records[4].principal.is_some());
        // A record's Debug form is as clean as its JSON.
        let debug = format!("{records:?}");
        for secret in SECRETS {
            assert!(!debug.contains(secret), "Debug leaked {secret}");
        }
    }

    /// Tokens and email addresses in the path leave as placeholders with a
    /// keyed fingerprint; identifiers (integers, UUIDs, hex ids) and words
    /// stay as sent.
    #[test]
    fn secrets_in_the_path_become_placeholders_with_fingerprints() {
        let path_of = |target: &str| {
            let e = exchange(
                request(
                    "GET",
                    target.as_bytes(),
                    vec![hdr("host", "h")],
                    Body::empty(),
                ),
                None,
            );
            build(&e, &flow(), &key())
        };
        let r = path_of("/v1/users/alice@example.com/reset/Zx8kQ2mP9vL4tR7w?x=1");
        assert_eq!(r.path, "/v1/users/{email}/reset/{token}");
        let kinds: Vec<(u16, ParamKind)> =
            r.path_params.iter().map(|p| (p.index, p.kind)).collect();
        assert_eq!(kinds, [(2, ParamKind::Email), (4, ParamKind::Token)]);
        let json = serde_json::to_string(&r).unwrap();
        for secret in ["alice", "example.com", "Zx8kQ2mP9vL4tR7w"] {
            assert!(!json.contains(secret), "leaked {secret} in {json}");
        }
        // Equal values, equal fingerprints; other values, other ones; and
        // never a principal's.
        let again = path_of("/v2/alice@example.com/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln");
        assert_eq!(again.path, "/v2/{email}/{token}");
        assert_eq!(
            again.path_params[0].fingerprint,
            r.path_params[0].fingerprint
        );
        let other = path_of("/v1/users/bob@example.com/reset/Zx8kQ2mP9vL4tR7x");
        assert_ne!(
            other.path_params[0].fingerprint,
            r.path_params[0].fingerprint
        );
        assert_ne!(
            other.path_params[1].fingerprint,
            r.path_params[1].fingerprint
        );
        assert!(r.path_params.iter().all(|p| p.fingerprint.len() == 32));
        // A percent-encoded address is decoded first, then replaced.
        assert_eq!(path_of("/u/carol%40example.org").path, "/u/{email}");
        // Identifiers and words stay.
        for kept in [
            "/v1/users/123/orders/d9a1e25f-ca7c-48d4-83db-9009935bab90",
            "/objects/5f2b7c1e9d3a4b6c8e0f1a2b/2024-03-01",
            "/plans/by-slug/gold-annual-42/oauth2callback",
            "/",
        ] {
            let r = path_of(kept);
            assert_eq!((r.path.as_str(), r.path_params.len()), (kept, 0));
        }
    }

    #[test]
    fn timing_status_and_flags() {
        let mut e = exchange(
            request("GET", b"/", vec![hdr("host", "h")], Body::empty()),
            Some(response(200, vec![], body(b"ok"))),
        );
        e.interim = vec![100];
        let r = build(&e, &flow(), &key());
        assert_eq!(r.schema, 1);
        assert_eq!(r.latency_us, Some(10_000));
        assert_eq!(r.duration_us, Some(15_500));
        assert_eq!(r.status, Some(200));
        assert_eq!(r.interim, [100]);
        assert_eq!(r.flags, Flags::default());
        assert_eq!(r.principal, None);
        assert_eq!(r.response.as_ref().unwrap().body.decoded_bytes, Some(2));

        let mut e = exchange(request("GET", b"/", vec![], Body::empty()), None);
        e.gap = true;
        e.anomalies.insert(HttpAnomaly::TruncatedMessage);
        e.anomalies.insert(HttpAnomaly::GapInRequest);
        let r = build(
            &e,
            &FlowContext {
                mid_stream: true,
                ..flow()
            },
            &key(),
        );
        assert_eq!(r.host, "10.0.0.2:8080");
        assert_eq!(r.latency_us, None);
        assert_eq!(
            r.flags,
            Flags {
                gap: true,
                truncated: true,
                mid_stream: true,
                unanswered: true
            }
        );
        assert_eq!(r.anomalies, ["gap_in_request", "truncated_message"]);

        // Response earlier than the request end (clock skew): saturates at 0.
        let mut e = exchange(
            request("GET", b"/", vec![], Body::empty()),
            Some(response(204, vec![], Body::empty())),
        );
        e.request.end = Timestamp::from_parts(1_700_000_001, 0);
        assert_eq!(build(&e, &flow(), &key()).latency_us, Some(0));
    }

    #[test]
    fn hosts_and_targets() {
        /// (method, target, Host header, expected host, expected path)
        type Case<'a> = (&'a str, &'a [u8], Option<&'a str>, &'a str, &'a str);
        let cases: &[Case<'_>] = &[
            (
                "GET",
                b"/a",
                Some("Example.com.:8443"),
                "example.com:8443",
                "/a",
            ),
            ("GET", b"/a", Some("bad host!"), "10.0.0.2:8080", "/a"),
            ("GET", b"/a", None, "10.0.0.2:8080", "/a"),
            (
                "GET",
                b"http://Proxy.Example/p?q=1",
                None,
                "proxy.example",
                "/p",
            ),
            (
                "GET",
                b"http://proxy.example/p",
                Some("h.example"),
                "h.example",
                "/p",
            ),
            (
                "CONNECT",
                b"db.example:5432",
                Some("x"),
                "db.example:5432",
                "",
            ),
            ("OPTIONS", b"*", Some("h"), "h", "*"),
            (
                "GET",
                b"/caf\xc3\xa9/%E2%82%AC/\xff",
                Some("h"),
                "h",
                "/caf\u{e9}/\u{20ac}/\u{fffd}",
            ),
        ];
        for (m, t, h, want_host, want_path) in cases {
            let headers = h.map(|h| vec![hdr("host", h)]).unwrap_or_default();
            let r = build(
                &exchange(request(m, t, headers, Body::empty()), None),
                &flow(),
                &key(),
            );
            assert_eq!(
                (r.host.as_str(), r.path.as_str()),
                (*want_host, *want_path),
                "{m} {t:?}"
            );
        }
    }

    #[test]
    fn message_info_fields() {
        let headers = vec![
            hdr("Content-Type", "Application/Problem+JSON ; charset=utf-8"),
            hdr("content-encoding", "GZIP"),
            hdr("x-a", "1"),
            hdr("X-A", "2"),
            hdr("content-type", "text/plain"),
        ];
        let info = message_info(
            &headers,
            &body(&gzip(br#"{"type":"about:blank","status":400}"#)),
        );
        assert_eq!(info.headers, ["content-type", "content-encoding", "x-a"]);
        assert_eq!(
            info.content_type.as_deref(),
            Some("application/problem+json")
        );
        assert_eq!(info.content_encoding.as_deref(), Some("gzip"));
        assert_eq!(info.body.decoded_bytes, Some(35));
        assert!(matches!(tree(&info.body.shape), Some(Shape::Object { .. })));
        assert!(!info.body.sampled);

        let cases: &[(&str, Option<&str>)] = &[
            ("application/json", Some("application/json")),
            ("  text/HTML;q=1", Some("text/html")),
            ("nonsense", None),
            ("a b/c", None),
            ("/json", None),
        ];
        for (v, want) in cases {
            assert_eq!(media_type(v.as_bytes()).as_deref(), *want, "{v}");
        }
        let mut enc = None;
        assert!(append_codings(b"gzip, BR", &mut enc));
        assert_eq!(enc.as_deref(), Some("gzip, br"));
        let info = message_info(&[hdr("content-encoding", "gzip; secret=1")], &Body::empty());
        assert_eq!(info.content_encoding, None);
        let many: Vec<Header> = (0..300).map(|i| hdr(&format!("x-h{i}"), "v")).collect();
        assert_eq!(
            message_info(&many, &Body::empty()).headers.len(),
            MAX_HEADER_NAMES
        );
    }

    /// `ShapeStats::sampled` counts exactly the bodies flagged `sampled`:
    /// JSON and form bodies longer than their sample, not whole ones.
    #[test]
    fn bodies_described_from_their_sample_only_are_counted() {
        let mut scanner = SkeletonScanner::default();
        let mut count = |ct: &str, sample: &[u8], len: u64| {
            let mut b = body(sample);
            b.len = len;
            b.wire_len = len;
            let headers = [hdr("content-type", ct)];
            super::message_info(&mut scanner, &mut Headers::Shared(&headers), &b)
                .body
                .sampled
        };
        assert!(!count("application/json", br#"{"a":1}"#, 7));
        assert!(count("application/json", br#"{"a":1,"b":[tru"#, 10_000));
        assert!(!count("application/x-www-form-urlencoded", b"a=1&b=2", 7));
        assert!(count(
            "application/x-www-form-urlencoded",
            b"a=1&b=2",
            9_000
        ));
        assert!(!count("text/plain", b"hello", 9_000));
        assert_eq!(scanner.sampled, 2);
    }

    #[test]
    fn bodies() {
        // Sniffed JSON without a content type; not sniffed for text/plain.
        let info = message_info(&[], &body(b"  [1,2]"));
        assert!(matches!(tree(&info.body.shape), Some(Shape::Array { .. })));
        let info = message_info(&[hdr("content-type", "text/plain")], &body(b"{\"a\":1}"));
        assert_eq!(info.body.shape, None);
        assert_eq!(message_info(&[], &body(b"hello")).body.shape, None);

        // A prefix sample: sampled, no decoded size.
        let mut b = body(br#"{"a":1,"b":[tru"#);
        b.len = 10_000;
        b.wire_len = 10_000;
        let info = message_info(&[hdr("content-type", "application/json")], &b);
        assert!(info.body.sampled);
        assert_eq!(info.body.decoded_bytes, Some(10_000)); // identity: the payload size
        assert!(matches!(
            tree(&info.body.shape),
            Some(Shape::Object {
                truncated: true,
                ..
            })
        ));

        // Incomplete body.
        let mut b = body(b"{}");
        b.complete = false;
        let info = message_info(&[hdr("content-type", "application/json")], &b);
        assert_eq!(info.body.decoded_bytes, None);
        assert!(info.body.sampled);

        // Brotli: not decoded.
        let info = message_info(
            &[
                hdr("content-type", "application/json"),
                hdr("content-encoding", "br"),
            ],
            &body(b"\x0b\x02\x80{}\x03"),
        );
        assert_eq!((info.body.shape, info.body.decoded_bytes), (None, None));

        // Gzip bomb: capped, no decoded size, shape of the prefix only.
        let mut bomb = b"[".to_vec();
        bomb.extend(std::iter::repeat_n(b' ', 50 * 1024 * 1024));
        let gz = gzip(&bomb);
        assert!(gz.len() < crate::http::limits::BODY_SAMPLE_MAX * 64);
        let info = message_info(
            &[
                hdr("content-type", "application/json"),
                hdr("content-encoding", "gzip"),
            ],
            &body(&gz),
        );
        assert_eq!(info.body.decoded_bytes, None);
        assert_eq!(tree(&info.body.shape), Some(Shape::Array { items: None }));
        assert!(info.body.sampled);

        // Encoded, non-JSON body fully in the sample: decoded size only.
        let info = message_info(
            &[
                hdr("content-type", "text/plain"),
                hdr("content-encoding", "gzip"),
            ],
            &body(&gzip(b"hello world")),
        );
        assert_eq!(info.body.decoded_bytes, Some(11));

        // Form keys from a prefix drop the partial last name.
        let mut b = body(b"a=1&bb=2&pass");
        b.len = 100;
        let info = message_info(
            &[hdr("content-type", "application/x-www-form-urlencoded")],
            &b,
        );
        assert_eq!(
            info.body.form_keys.as_deref(),
            Some(&["a".to_owned(), "bb".to_owned()][..])
        );
        assert!(info.body.sampled);
    }

    /// Deterministic xorshift noise: `build` must never panic, whatever bytes
    /// the parser hands over, and must always produce a JSON-serialisable record
    /// (the same text from serde and from `write_json`).
    #[test]
    fn random_exchanges_never_panic() {
        let mut next = crate::record::xorshift(0x9E37_79B9_7F4A_7C15u64);
        const ALPHABET: &[u8] = b"/?&=%+;:@.,[]{}\"\\ \t\x00\xffaZ09-_eyJ";
        let mut noise = |len: usize| -> Vec<u8> {
            (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect()
        };
        let names = [
            "host",
            "authorization",
            "cookie",
            "content-type",
            "content-encoding",
            "x-api-key",
            // Not listed as they are (upper case, a repeat in another case).
            "X-Upper",
            "HOST",
        ];
        // Flat shapes (the analyzer's builder) must give the same records.
        let mut flat = RecordBuilder::with_flat_shapes();
        // So must a builder that consumes the exchange.
        let mut consuming = RecordBuilder::new();
        for i in 0..2_000usize {
            let headers: Vec<Header> = names
                .iter()
                .enumerate()
                .filter(|(j, _)| (i >> j) & 1 == 1)
                .map(|(_, n)| Header {
                    name: (*n).into(),
                    value: noise(i % 97).into(),
                })
                .collect();
            let mut b = body(&noise(i % 301));
            b.complete = i % 3 != 0;
            let target = noise(i % 211);
            let e = exchange(request("GET", &target, headers, b), None);
            let r = build(&e, &flow(), &key());
            let mut direct = Vec::new();
            r.write_json(&mut direct);
            let mut from_flat = Vec::new();
            let t = flat.build(&e, &flow(), &key());
            t.write_json(&mut from_flat);
            assert_eq!(t, r);
            assert_eq!(from_flat, direct);
            let mut owned = e.clone();
            let c = consuming.build_consuming(&mut owned, &flow(), &key());
            assert_eq!(c, r);
            assert_eq!(owned.response.is_some(), e.response.is_some());
            assert_eq!(owned.anomalies, e.anomalies);
            assert_eq!(
                String::from_utf8(direct).unwrap(),
                serde_json::to_string(&r).unwrap()
            );
        }
    }

    #[test]
    fn round_trips_through_json() {
        for e in canary_exchanges() {
            let r = build(&e, &flow(), &key());
            let json = serde_json::to_string(&r).unwrap();
            let back: ExchangeRecord = serde_json::from_str(&json).unwrap();
            assert_eq!(back, r);
            let mut direct = Vec::new();
            r.write_json(&mut direct);
            assert_eq!(String::from_utf8(direct).unwrap(), json);
            let t = RecordBuilder::with_flat_shapes().build(&e, &flow(), &key());
            assert_eq!(t, r);
            assert_eq!(serde_json::to_string(&t).unwrap(), json);
            let c = RecordBuilder::new().build_consuming(&mut e.clone(), &flow(), &key());
            assert_eq!(c, r);
        }
    }
}
