//! HTTP/1.1 messages of the simulation: request and response bytes, JSON
//! bodies of a chosen size, JWTs, UUIDs.

use std::fmt::Write as _;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;

use crate::rng::{hash, Rng};

/// What a request authenticates with, in its headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AuthHeader {
    None,
    /// `Authorization: <value>`.
    Authorization(String),
    /// `X-API-Key: <value>`.
    ApiKey(String),
}

/// A request to render.
pub(crate) struct Request<'a> {
    pub(crate) method: &'a str,
    /// Path and query, already encoded.
    pub(crate) target: &'a str,
    pub(crate) host: &'a str,
    pub(crate) user_agent: &'a str,
    pub(crate) auth: &'a AuthHeader,
    pub(crate) body: Option<&'a [u8]>,
    /// Sends `Connection: close`.
    pub(crate) close: bool,
}

/// Appends the request's bytes to `out`.
pub(crate) fn render_request(out: &mut Vec<u8>, r: &Request<'_>) {
    let _ = write!(
        Buf(out),
        "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nAccept: application/json\r\n",
        r.method,
        r.target,
        r.host,
        r.user_agent
    );
    match r.auth {
        AuthHeader::None => {}
        AuthHeader::Authorization(v) => {
            let _ = write!(Buf(out), "Authorization: {v}\r\n");
        }
        AuthHeader::ApiKey(v) => {
            let _ = write!(Buf(out), "X-API-Key: {v}\r\n");
        }
    }
    if let Some(body) = r.body {
        let _ = write!(
            Buf(out),
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
    }
    if r.close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if let Some(body) = r.body {
        out.extend_from_slice(body);
    }
}

/// Appends a response head for `status` with a `body_len`-byte JSON body
/// (no `Content-Type` when empty).
pub(crate) fn render_response_head(
    out: &mut Vec<u8>,
    status: u16,
    body_len: usize,
    close: bool,
    request_id: u64,
) {
    let _ = write!(
        Buf(out),
        "HTTP/1.1 {status} {}\r\nServer: nginx\r\n",
        reason(status)
    );
    if body_len > 0 {
        out.extend_from_slice(b"Content-Type: application/json\r\n");
    }
    let _ = write!(
        Buf(out),
        "Content-Length: {body_len}\r\nX-Request-Id: {request_id:016x}\r\n"
    );
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Filler text for string fields that pad a body to its size.
const FILLER: &[u8] =
    b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor ";

fn push_filler(out: &mut Vec<u8>, mut n: usize) {
    while n > 0 {
        let take = n.min(FILLER.len());
        out.extend_from_slice(&FILLER[..take]);
        n -= take;
    }
}

/// A JSON object `{fields,"note":"…"}` of exactly `target` bytes, or the
/// smallest such object when `target` is smaller.
pub(crate) fn object_body(out: &mut Vec<u8>, fields: &str, target: usize) {
    let fixed = fields.len() + r#"{,"note":""}"#.len();
    out.push(b'{');
    out.extend_from_slice(fields.as_bytes());
    out.extend_from_slice(br#","note":""#);
    push_filler(out, target.saturating_sub(fixed));
    out.extend_from_slice(br#""}"#);
}

/// A JSON page `{"data":[objects…],"page":1,"has_more":true}` of exactly
/// `target` bytes (or the smallest page with one object).
pub(crate) fn list_body(out: &mut Vec<u8>, fields: &str, target: usize) {
    const HEAD: &[u8] = br#"{"data":["#;
    const TAIL: &[u8] = br#"],"page":1,"has_more":true}"#;
    // Each object carries a short note; the last one takes the remainder.
    let item = fields.len() + r#"{,"note":""}"#.len() + 16;
    let room = target.saturating_sub(HEAD.len() + TAIL.len());
    let items = (room / (item + 1)).max(1);
    out.extend_from_slice(HEAD);
    for i in 0..items {
        if i > 0 {
            out.push(b',');
        }
        let used = items * item + (items - 1);
        let extra = if i + 1 == items {
            room.saturating_sub(used)
        } else {
            0
        };
        object_body(out, fields, item + extra);
    }
    out.extend_from_slice(TAIL);
}

/// An error body of exactly `target` bytes (at least its fixed part).
pub(crate) fn error_body(out: &mut Vec<u8>, status: u16, target: usize) {
    let code = match status {
        400 | 422 => "invalid_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        429 => "rate_limited",
        _ => "internal_error",
    };
    let start = out.len();
    let _ = write!(
        Buf(out),
        r#"{{"error":"{code}","status":{status},"message":""#
    );
    let fixed = out.len() - start + 2;
    push_filler(out, target.saturating_sub(fixed));
    out.extend_from_slice(br#""}"#);
}

/// A UUID (version 4 layout) for value `index` of a parameter.
pub(crate) fn uuid(param_seed: u64, index: u64) -> String {
    let a = hash(&[param_seed, index, 1]);
    let b = hash(&[param_seed, index, 2]);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// A compact JWS: header `{"alg","typ","kid"}`, claims `iss`, `sub`, `aud`,
/// `iat`, `scope` and (when `exp` is `Some`) `exp`. The signature is random
/// bytes of the algorithm's length (none for `alg: none`).
pub(crate) fn jwt(
    alg: &str,
    iss: &str,
    aud: &str,
    sub: u64,
    iat: u64,
    exp: Option<u64>,
    rng: &mut Rng,
) -> String {
    let header = format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"key-2024-01"}}"#);
    let mut claims =
        format!(r#"{{"iss":"{iss}","sub":"{sub}","aud":"{aud}","iat":{iat},"scope":"read write""#);
    if let Some(exp) = exp {
        let _ = write!(claims, r#","exp":{exp}"#);
    }
    claims.push('}');
    let sig_len = match alg {
        "none" => 0,
        "HS256" => 32,
        _ => 256,
    };
    let sig: Vec<u8> = (0..sig_len).map(|_| rng.next_u64() as u8).collect();
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims),
        URL_SAFE_NO_PAD.encode(sig)
    )
}

/// `Basic base64(user:password)`.
pub(crate) fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// `fmt::Write` over a byte vector.
struct Buf<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_requested_size_and_parse() {
        let fields = r#""id":4812,"status":"active""#;
        for target in [10, 60, 61, 500, 4_000, 123_457] {
            let mut obj = Vec::new();
            object_body(&mut obj, fields, target);
            let min_obj = fields.len() + 12;
            assert_eq!(obj.len(), target.max(min_obj));
            serde_json::from_slice::<serde_json::Value>(&obj).expect("object JSON");

            let mut list = Vec::new();
            list_body(&mut list, fields, target);
            let min_list = 9 + 27 + min_obj + 16;
            assert_eq!(list.len(), target.max(min_list), "target {target}");
            let v: serde_json::Value = serde_json::from_slice(&list).expect("list JSON");
            assert!(v["data"].as_array().is_some_and(|a| !a.is_empty()));

            let mut smallest = Vec::new();
            error_body(&mut smallest, 404, 0);
            let mut err = Vec::new();
            error_body(&mut err, 404, target);
            assert_eq!(err.len(), target.max(smallest.len()));
            serde_json::from_slice::<serde_json::Value>(&err).expect("error JSON");
        }
    }

    #[test]
    fn jwt_segments_decode() {
        let mut rng = Rng::new(1, 1);
        let t = jwt("none", "https://i/", "a", 42, 1000, None, &mut rng);
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert!(parts[2].is_empty());
        let claims = URL_SAFE_NO_PAD.decode(parts[1]).expect("base64url");
        let claims: serde_json::Value = serde_json::from_slice(&claims).expect("claims JSON");
        assert_eq!(claims["sub"], "42");
        assert!(claims.get("exp").is_none());
        let t = jwt("RS256", "https://i/", "a", 42, 1000, Some(4600), &mut rng);
        let header = URL_SAFE_NO_PAD
            .decode(t.split('.').next().unwrap_or_default())
            .expect("base64url");
        assert!(String::from_utf8_lossy(&header).contains(r#""alg":"RS256""#));
    }

    #[test]
    fn uuids_are_well_formed_and_stable() {
        let u = uuid(5, 77);
        assert_eq!(u, uuid(5, 77));
        assert_ne!(u, uuid(5, 78));
        let groups: Vec<usize> = u.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(u.as_bytes()[14], b'4');
    }

    #[test]
    fn request_and_response_heads() {
        let mut out = Vec::new();
        render_request(
            &mut out,
            &Request {
                method: "POST",
                target: "/v1/orders",
                host: "shop.example.com",
                user_agent: "ua",
                auth: &AuthHeader::ApiKey("k".into()),
                body: Some(b"{}"),
                close: true,
            },
        );
        let text = String::from_utf8(out).expect("ascii");
        assert!(text.starts_with("POST /v1/orders HTTP/1.1\r\nHost: shop.example.com\r\n"));
        assert!(text.contains("X-API-Key: k\r\n"));
        assert!(text.contains("Content-Length: 2\r\nConnection: close\r\n\r\n{}"));
        let mut head = Vec::new();
        render_response_head(&mut head, 204, 0, false, 1);
        let head = String::from_utf8(head).expect("ascii");
        assert!(head.starts_with("HTTP/1.1 204 No Content\r\n"));
        assert!(!head.contains("Content-Type"));
        assert_eq!(basic("a", "b"), "Basic YTpi");
    }
}
