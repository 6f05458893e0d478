//! How a request authenticated: the scheme, key and cookie *names*, JWT
//! issuer facts, and the identity fed to the principal fingerprint.
//!
//! Precedence: `Authorization` (any scheme) → a known API-key header → a
//! known API-key query parameter → `Cookie`. Cookie names are reported
//! whatever the scheme.

use std::borrow::Cow;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine as _};

use super::fingerprint::FingerprintKey;
use super::url::{clean_text, find_param, push_name};
use super::{AuthInfo, AuthScheme, JwtInfo, KeyLocation};
use crate::http::Header;

/// Header names (case-insensitive) that carry an API key.
pub const API_KEY_HEADERS: &[&str] = &[
    "x-api-key",
    "api-key",
    "apikey",
    "x-apikey",
    "x-api-token",
    "x-auth-token",
    "x-access-token",
    "x-token",
    "authorization-token",
    "ocp-apim-subscription-key",
    "x-goog-api-key",
    "x-functions-key",
    "x-rapidapi-key",
    "private-token",
    "x-auth-key",
];
/// Query parameter names (case-insensitive) that carry an API key.
pub const API_KEY_PARAMS: &[&str] = &[
    "api_key",
    "apikey",
    "api-key",
    "x-api-key",
    "api_token",
    "apitoken",
    "key",
    "access_token",
    "auth_token",
    "token",
    "auth",
    "subscription-key",
];
/// Most cookie names reported per request.
pub const MAX_COOKIES: usize = 32;
/// Longest cookie name reported, in bytes.
pub const MAX_COOKIE_NAME_BYTES: usize = 64;
/// Longest JWT `iss` / `aud` entry exported, in bytes.
pub const MAX_JWT_CLAIM_BYTES: usize = 256;
/// Most JWT `aud` entries exported.
pub const MAX_JWT_AUD: usize = 8;
/// Longest JWT `alg` exported (token characters only).
pub const MAX_JWT_ALG_BYTES: usize = 32;
/// Largest JWT segment decoded; longer tokens are treated as opaque.
const MAX_JWT_SEGMENT_BYTES: usize = 8 * 1024;

/// base64 / base64url decoding that accepts padded and unpadded input.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const B64STD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Auth facts of a request plus its principal fingerprint.
pub(crate) fn analyze(
    headers: &[Header],
    query: Option<&[u8]>,
    key: &FingerprintKey,
) -> (AuthInfo, Option<String>) {
    let mut info = AuthInfo::default();
    let mut session_cookie: Option<&[u8]> = None;
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("cookie"))
    {
        collect_cookies(&h.value, &mut info.cookies, &mut session_cookie);
    }

    let principal = if let Some(h) = find_header(headers, "authorization") {
        authorization(&h.value, &mut info, key)
    } else if let Some((name, h)) = API_KEY_HEADERS
        .iter()
        .find_map(|n| find_header(headers, n).map(|h| (*n, h)))
    {
        info.scheme = AuthScheme::ApiKey;
        info.key_name = Some(name.to_owned());
        info.key_in = Some(KeyLocation::Header);
        nonempty(h.value.trim_ascii()).map(|v| key.principal(&[b"apikey", name.as_bytes(), v]))
    } else if let Some((name, value)) = query.and_then(|q| find_param(q, API_KEY_PARAMS)) {
        info.scheme = AuthScheme::ApiKey;
        info.key_name = Some(name.to_owned());
        info.key_in = Some(KeyLocation::Query);
        nonempty(&value).map(|v| key.principal(&[b"apikey", name.as_bytes(), v]))
    } else if !info.cookies.is_empty() {
        info.scheme = AuthScheme::Cookie;
        session_cookie
            .and_then(nonempty)
            .map(|v| key.principal(&[b"cookie", v]))
    } else {
        None
    };
    (info, principal)
}

fn find_header<'a>(headers: &'a [Header], name: &str) -> Option<&'a Header> {
    headers.iter().find(|h| h.name.eq_ignore_ascii_case(name))
}

fn nonempty(b: &[u8]) -> Option<&[u8]> {
    (!b.is_empty()).then_some(b)
}

/// Scheme, JWT facts and principal from an `Authorization` value.
fn authorization(value: &[u8], info: &mut AuthInfo, key: &FingerprintKey) -> Option<String> {
    let value = value.trim_ascii();
    let (scheme, cred) = match memchr::memchr(b' ', value) {
        Some(i) => (&value[..i], value[i + 1..].trim_ascii()),
        None => (value, &b""[..]),
    };
    if scheme.eq_ignore_ascii_case(b"basic") {
        info.scheme = AuthScheme::Basic;
        let decoded = B64STD.decode(cred).ok()?;
        let user = decoded.split(|&c| c == b':').next().unwrap_or(&[]);
        nonempty(user).map(|u| key.principal(&[b"basic", u]))
    } else if scheme.eq_ignore_ascii_case(b"bearer") {
        if let Some(jwt) = parse_jwt(cred) {
            info.scheme = AuthScheme::BearerJwt;
            let p = match (&jwt.iss, &jwt.sub) {
                (iss, Some(sub)) => {
                    key.principal(&[b"jwt", iss.as_deref().unwrap_or("").as_bytes(), sub])
                }
                (iss, None) => {
                    key.principal(&[b"jwt", iss.as_deref().unwrap_or("").as_bytes(), cred])
                }
            };
            info.jwt = Some(jwt.info);
            Some(p)
        } else {
            info.scheme = AuthScheme::BearerOpaque;
            nonempty(cred).map(|t| key.principal(&[b"bearer", t]))
        }
    } else if scheme.eq_ignore_ascii_case(b"digest") {
        info.scheme = AuthScheme::Digest;
        None
    } else {
        info.scheme = AuthScheme::Other;
        None
    }
}

/// A parsed JWT: exportable facts plus the identity parts (never exported).
struct Jwt {
    info: JwtInfo,
    /// Raw `iss` (uncapped) for the identity.
    iss: Option<String>,
    sub: Option<Vec<u8>>,
}

#[derive(serde::Deserialize)]
struct JwtHeader {
    #[serde(default)]
    alg: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct JwtClaims {
    #[serde(default)]
    iss: Option<serde_json::Value>,
    #[serde(default)]
    sub: Option<serde_json::Value>,
    #[serde(default)]
    aud: Option<serde_json::Value>,
    #[serde(default)]
    exp: Option<serde_json::Value>,
    #[serde(default)]
    iat: Option<serde_json::Value>,
}

/// A JWS compact token: three base64url segments whose first decodes to a
/// JSON object with `alg`.
fn parse_jwt(tok: &[u8]) -> Option<Jwt> {
    let mut segs = tok.split(|&c| c == b'.');
    let (h, p, s) = (segs.next()?, segs.next()?, segs.next()?);
    if segs.next().is_some() || h.is_empty() || p.is_empty() {
        return None;
    }
    let b64url = |seg: &[u8]| {
        seg.len() <= MAX_JWT_SEGMENT_BYTES
            && seg
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'='))
    };
    if !(b64url(h) && b64url(p) && b64url(s)) {
        return None;
    }
    let header: JwtHeader = json_object(&B64URL.decode(h).ok()?)?;
    let alg = header.alg?;
    let mut info = JwtInfo {
        alg: alg
            .as_str()
            .filter(|a| !a.is_empty() && a.len() <= MAX_JWT_ALG_BYTES && a.bytes().all(is_tchar))
            .map(str::to_owned),
        ..JwtInfo::default()
    };
    let claims: Option<JwtClaims> = B64URL.decode(p).ok().and_then(|b| json_object(&b));
    let Some(claims) = claims else {
        return Some(Jwt {
            info,
            iss: None,
            sub: None,
        });
    };
    let iss = claims
        .iss
        .as_ref()
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    info.iss = iss
        .as_deref()
        .map(|s| clean_text(s.as_bytes(), MAX_JWT_CLAIM_BYTES));
    info.aud = match &claims.aud {
        Some(serde_json::Value::String(a)) => vec![clean_text(a.as_bytes(), MAX_JWT_CLAIM_BYTES)],
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .filter_map(|v| v.as_str())
            .take(MAX_JWT_AUD)
            .map(|a| clean_text(a.as_bytes(), MAX_JWT_CLAIM_BYTES))
            .collect(),
        _ => Vec::new(),
    };
    let exp = claims.exp.as_ref().filter(|v| v.is_number());
    info.has_exp = exp.is_some();
    info.lifetime_s = match (
        exp.and_then(|v| v.as_i64()),
        claims.iat.and_then(|v| v.as_i64()),
    ) {
        (Some(e), Some(i)) => e.checked_sub(i),
        _ => None,
    };
    let sub = match claims.sub {
        Some(serde_json::Value::String(s)) => Some(s.into_bytes()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string().into_bytes()),
        _ => None,
    };
    Some(Jwt { info, iss, sub })
}

/// Deserialises `b` only if it is a JSON *object*: serde's derived structs
/// would also accept an array, mapping its elements to fields by position.
fn json_object<T: serde::de::DeserializeOwned>(b: &[u8]) -> Option<T> {
    if b.iter().find(|c| !c.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    serde_json::from_slice(b).ok()
}

/// RFC 9110 `tchar`.
pub(crate) fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Cookie names from one `Cookie` value; remembers the first session-like
/// cookie's value for the fingerprint.
fn collect_cookies<'a>(value: &'a [u8], names: &mut Vec<String>, session: &mut Option<&'a [u8]>) {
    for pair in value.split(|&c| c == b';') {
        // A pair without `=` is a nameless cookie whose text is its *value*
        // (RFC 6265bis §5.6): nothing to report.
        let Some(eq) = memchr::memchr(b'=', pair) else {
            continue;
        };
        let name = pair[..eq].trim_ascii();
        if name.is_empty() {
            continue;
        }
        if session.is_none() && is_session_cookie(name) {
            *session = Some(pair[eq + 1..].trim_ascii());
        }
        if names.len() < MAX_COOKIES {
            push_name(names, name, MAX_COOKIE_NAME_BYTES);
        }
    }
}

/// Cookie names that usually carry a session identifier.
fn is_session_cookie(name: &[u8]) -> bool {
    let lower: Cow<'_, [u8]> = if name.iter().any(u8::is_ascii_uppercase) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    };
    let has = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
    has(b"sess") || has(b"token") || has(b"auth") || lower.ends_with(b"sid") || has(b"jwt")
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn b64url(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    fn hdr(name: &str, value: &str) -> Header {
        Header {
            name: name.into(),
            value: value.as_bytes().into(),
        }
    }

    fn run(headers: &[Header], query: Option<&str>) -> (AuthInfo, Option<String>) {
        analyze(
            headers,
            query.map(str::as_bytes),
            &FingerprintKey::new([3; 32]),
        )
    }

    fn jwt(header: &str, claims: &str) -> String {
        format!("{}.{}.c2ln", b64url(header), b64url(claims))
    }

    #[test]
    fn schemes() {
        let tok = jwt(r#"{"alg":"RS256"}"#, r#"{"sub":"u1"}"#);
        let cases: Vec<(Vec<Header>, Option<&str>, AuthScheme)> = vec![
            (vec![], None, AuthScheme::None),
            (
                vec![hdr("authorization", "Basic YWxpY2U6cHc=")],
                None,
                AuthScheme::Basic,
            ),
            (
                vec![hdr("authorization", &format!("Bearer {tok}"))],
                None,
                AuthScheme::BearerJwt,
            ),
            (
                vec![hdr("authorization", "bearer abc.def")],
                None,
                AuthScheme::BearerOpaque,
            ),
            (
                vec![hdr("authorization", "Bearer a.b.c")],
                None,
                AuthScheme::BearerOpaque,
            ),
            (
                vec![hdr("authorization", "Digest username=\"x\"")],
                None,
                AuthScheme::Digest,
            ),
            (
                vec![hdr("authorization", "AWS4-HMAC-SHA256 Credential=x")],
                None,
                AuthScheme::Other,
            ),
            (vec![hdr("x-api-key", "k")], None, AuthScheme::ApiKey),
            (vec![], Some("a=1&api_key=k"), AuthScheme::ApiKey),
            (
                vec![hdr("cookie", "sid=1")],
                Some("a=1"),
                AuthScheme::Cookie,
            ),
            (
                vec![hdr("cookie", "sid=1"), hdr("x-api-key", "k")],
                None,
                AuthScheme::ApiKey,
            ),
        ];
        for (h, q, want) in cases {
            assert_eq!(run(&h, q).0.scheme, want, "{h:?} {q:?}");
        }
    }

    #[test]
    fn jwt_facts() {
        let tok = jwt(
            r#"{"alg":"RS256","typ":"JWT"}"#,
            r#"{"iss":"https://idp.example","sub":"u1","aud":["a","b"],"exp":1700003600,"iat":1700000000}"#,
        );
        let (info, p) = run(&[hdr("authorization", &format!("Bearer {tok}"))], None);
        let j = info.jwt.unwrap();
        assert_eq!(j.alg.as_deref(), Some("RS256"));
        assert_eq!(j.iss.as_deref(), Some("https://idp.example"));
        assert_eq!(j.aud, ["a", "b"]);
        assert!(j.has_exp);
        assert_eq!(j.lifetime_s, Some(3600));
        // Same iss + sub, different token: same principal.
        let tok2 = jwt(
            r#"{"alg":"RS256"}"#,
            r#"{"iss":"https://idp.example","sub":"u1","aud":"a"}"#,
        );
        let (info2, p2) = run(&[hdr("authorization", &format!("Bearer {tok2}"))], None);
        assert_eq!(p, p2);
        assert_eq!(info2.jwt.unwrap().aud, ["a"]);

        // alg none, unsigned.
        let none = format!(
            "{}.{}.",
            b64url(r#"{"alg":"none"}"#),
            b64url(r#"{"sub":"x"}"#)
        );
        let (info, p) = run(&[hdr("authorization", &format!("Bearer {none}"))], None);
        assert_eq!(info.scheme, AuthScheme::BearerJwt);
        assert_eq!(info.jwt.unwrap().alg.as_deref(), Some("none"));
        assert!(p.is_some());

        // No alg: opaque. Hostile alg: dropped.
        let noalg = jwt(r#"{"typ":"JWT"}"#, "{}");
        assert_eq!(
            run(&[hdr("authorization", &format!("Bearer {noalg}"))], None)
                .0
                .scheme,
            AuthScheme::BearerOpaque
        );
        let bad = jwt(r#"{"alg":"RS256 secret value"}"#, "{}");
        let (info, _) = run(&[hdr("authorization", &format!("Bearer {bad}"))], None);
        assert_eq!(info.jwt.unwrap().alg, None);
    }

    #[test]
    fn principals() {
        let basic = |v: &str| run(&[hdr("authorization", v)], None).1;
        // Same user, different passwords: same principal.
        assert_eq!(basic("Basic YWxpY2U6cHc="), basic("Basic YWxpY2U6b3RoZXI="));
        assert_ne!(basic("Basic YWxpY2U6cHc="), basic("Basic Ym9iOnB3"));
        assert_eq!(basic("Basic !!!"), None);
        let q = run(&[], Some("api_key=k1")).1;
        let h = run(&[hdr("x-api-key", "k1")], None).1;
        assert!(q.is_some() && h.is_some() && q != h);
        let (info, c) = run(&[hdr("cookie", "theme=dark; SESSIONID=abc; _ga=1")], None);
        assert_eq!(info.cookies, ["theme", "SESSIONID", "_ga"]);
        assert!(c.is_some());
        assert_eq!(run(&[hdr("cookie", "theme=dark")], None).1, None);
        assert_eq!(run(&[hdr("authorization", "Negotiate abc")], None).1, None);
    }

    #[test]
    fn jwt_edge_cases() {
        let bearer = |t: &str| run(&[hdr("authorization", &format!("Bearer {t}"))], None);
        // No `sub`: the whole token identifies the caller.
        let a = jwt(r#"{"alg":"HS256"}"#, r#"{"iss":"i","n":1}"#);
        let b = jwt(r#"{"alg":"HS256"}"#, r#"{"iss":"i","n":2}"#);
        assert_ne!(bearer(&a).1, bearer(&b).1);
        // Undecodable claims: still a JWT, alg only.
        let c = format!("{}.!!!!.x", b64url(r#"{"alg":"ES256"}"#));
        assert_eq!(bearer(&c).0.scheme, AuthScheme::BearerOpaque); // '!' is not base64url
        let d = format!("{}.{}.x", b64url(r#"{"alg":"ES256"}"#), b64url("not json"));
        let (info, p) = bearer(&d);
        assert_eq!(
            info.jwt.as_ref().and_then(|j| j.alg.as_deref()),
            Some("ES256")
        );
        assert_eq!(info.jwt.map(|j| (j.iss, j.has_exp)), Some((None, false)));
        assert!(p.is_some());
        // Claims as an array must not be read positionally (iss = element 0).
        let arr = jwt(r#"{"alg":"RS256"}"#, r#"["alice@example.com","x"]"#);
        let (info, _) = bearer(&arr);
        assert_eq!(info.jwt.map(|j| j.iss), Some(None));
        // Header that is not an object, four segments, numeric sub, string exp.
        let e = format!("{}.{}.x", b64url("[1]"), b64url("{}"));
        assert_eq!(bearer(&e).0.scheme, AuthScheme::BearerOpaque);
        assert_eq!(
            bearer(&format!("{a}.more")).0.scheme,
            AuthScheme::BearerOpaque
        );
        let f = jwt(r#"{"alg":"RS256"}"#, r#"{"sub":42,"exp":"soon","iat":1}"#);
        let j = bearer(&f).0.jwt.unwrap();
        assert_eq!((j.has_exp, j.lifetime_s), (false, None));
        // Long iss is capped; aud list is capped.
        let long = format!(
            r#"{{"iss":"{}","aud":[{}]}}"#,
            "i".repeat(1000),
            r#""a","#.repeat(20) + r#""z""#
        );
        let j = bearer(&jwt(r#"{"alg":"RS256"}"#, &long)).0.jwt.unwrap();
        assert_eq!(j.iss.map(|i| i.len()), Some(MAX_JWT_CLAIM_BYTES));
        assert_eq!(j.aud.len(), MAX_JWT_AUD);
    }

    #[test]
    fn api_key_query_names_are_decoded() {
        let (info, p) = run(&[], Some("x=1&API%5FKEY=k&api_key=other"));
        assert_eq!(info.key_name.as_deref(), Some("api_key"));
        assert_eq!(p, run(&[], Some("api_key=k")).1);
        let (info, p) = run(&[], Some("api_key="));
        assert_eq!((info.scheme, p), (AuthScheme::ApiKey, None));
    }

    #[test]
    fn cookie_caps() {
        let many: Vec<String> = (0..100).map(|i| format!("c{i}x=v")).collect();
        let (info, _) = run(
            &[hdr("cookie", &many.join("; ")), hdr("cookie", "y=1")],
            None,
        );
        assert_eq!(info.cookies.len(), MAX_COOKIES);
        let long = format!("{}=v", "n".repeat(300));
        let (info, _) = run(&[hdr("cookie", &long)], None);
        assert_eq!(info.cookies[0].len(), MAX_COOKIE_NAME_BYTES);
        let (info, _) = run(&[hdr("cookie", "a=1; a=2; ; =3; bare-secret-value")], None);
        assert_eq!(info.cookies, ["a"]);
        let (info, p) = run(&[hdr("cookie", "bare-secret-value")], None);
        assert_eq!(
            (info.scheme, info.cookies.len(), p),
            (AuthScheme::None, 0, None)
        );
    }
}
