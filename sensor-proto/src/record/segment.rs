//! What a single path segment looks like.
//!
//! A segment whose *form* is an identifier (an integer, a UUID, a hex
//! digest, a date, an email address, a JWT or another high-entropy token)
//! is a parameter wherever it appears. Version segments (`v1`, `v2.0`) and
//! dated API versions (`2024-01-01` right after `api` or a version) are
//! constants, as is everything that looks like words (`hello.world`,
//! `by-slug`, `gold-annual-42`): words become parameters only on statistical
//! evidence (the analyzer's templating).
//!
//! The sensor uses the same test to keep secrets out of exported paths:
//! segments of the [`ParamKind::is_secret`] kinds (tokens, email addresses)
//! leave it as their placeholder and a keyed fingerprint (see
//! `super::build`), the analyzer to template paths.

use serde::{Deserialize, Serialize};

/// The kind of an identifier-like segment; also the parameter's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamKind {
    Integer,
    Uuid,
    /// Hexadecimal digest or object id (8+ hex digits mixing digits and letters).
    Hex,
    Date,
    Email,
    /// JWT-like or otherwise high-entropy token.
    Token,
    /// A word-like value made a parameter by statistics or by a contract.
    String,
}

impl ParamKind {
    /// The placeholder written in observation keys, e.g. `{uuid}`.
    pub fn placeholder(self) -> &'static str {
        match self {
            ParamKind::Integer => "{integer}",
            ParamKind::Uuid => "{uuid}",
            ParamKind::Hex => "{hex}",
            ParamKind::Date => "{date}",
            ParamKind::Email => "{email}",
            ParamKind::Token => "{token}",
            ParamKind::String => "{string}",
        }
    }

    pub fn from_placeholder(segment: &str) -> Option<ParamKind> {
        Some(match segment {
            "{integer}" => ParamKind::Integer,
            "{uuid}" => ParamKind::Uuid,
            "{hex}" => ParamKind::Hex,
            "{date}" => ParamKind::Date,
            "{email}" => ParamKind::Email,
            "{token}" => ParamKind::Token,
            "{string}" => ParamKind::String,
            _ => return None,
        })
    }

    /// Kinds whose values are exported only as a placeholder and a keyed
    /// fingerprint: tokens (API keys, reset links, JWTs) and email
    /// addresses. Integers, UUIDs, hex ids and dates stay as sent: they
    /// identify resources, and the analyzer reads their values (sequential
    /// ids, enumeration).
    pub fn is_secret(self) -> bool {
        matches!(self, ParamKind::Token | ParamKind::Email)
    }

    pub fn as_str(self) -> &'static str {
        let p = self.placeholder();
        &p[1..p.len() - 1]
    }

    /// OpenAPI `type` and `format` of a parameter of this kind.
    pub fn openapi_type(self) -> (&'static str, Option<&'static str>) {
        match self {
            ParamKind::Integer => ("integer", None),
            ParamKind::Uuid => ("string", Some("uuid")),
            ParamKind::Date => ("string", Some("date")),
            ParamKind::Email => ("string", Some("email")),
            ParamKind::Hex | ParamKind::Token | ParamKind::String => ("string", None),
        }
    }
}

/// Longest segment classified; longer ones are tokens if they have no
/// separators, else constants.
pub const MAX_CLASSIFIED_SEGMENT_BYTES: usize = 512;

/// Classifies `segment` (percent-decoded), given the segment before it.
/// `None` means the form alone does not make it a parameter.
pub fn classify(segment: &str, previous: Option<&str>) -> Option<ParamKind> {
    let s = segment;
    if s.is_empty() || s.len() > MAX_CLASSIFIED_SEGMENT_BYTES {
        return None;
    }
    if is_version(s) {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return Some(ParamKind::Integer);
    }
    if is_uuid(s) {
        return Some(ParamKind::Uuid);
    }
    if is_date(s) {
        let after_api = previous.is_some_and(|p| p.eq_ignore_ascii_case("api") || is_version(p));
        return if after_api {
            None
        } else {
            Some(ParamKind::Date)
        };
    }
    if is_hex_id(s) {
        return Some(ParamKind::Hex);
    }
    if is_email(s) {
        return Some(ParamKind::Email);
    }
    if is_jwt_like(s) || s.split(['-', '_', '.', '~', ':']).any(is_token_chunk) {
        return Some(ParamKind::Token);
    }
    None
}

/// `v1`, `V2`, `v2.0`, `v1beta1`, `1.0`, `2.1.3`.
pub fn is_version(s: &str) -> bool {
    let b = s.as_bytes();
    if let Some(rest) = s.strip_prefix(['v', 'V']) {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 4 {
            return false;
        }
        let tail = &rest[digits..];
        // v2.0, v1.2.3
        if tail.bytes().all(|c| c.is_ascii_digit() || c == b'.') && !tail.ends_with('.') {
            return true;
        }
        // v1beta1, v2alpha
        for stage in ["alpha", "beta", "rc"] {
            if let Some(n) = tail.strip_prefix(stage) {
                return n.len() <= 3 && n.bytes().all(|c| c.is_ascii_digit());
            }
        }
        return false;
    }
    // 1.0, 2.1.3: digits with at least one dot, short.
    b.len() <= 12
        && b.contains(&b'.')
        && !b.starts_with(b".")
        && !b.ends_with(b".")
        && !s.contains("..")
        && b.iter().all(|c| c.is_ascii_digit() || *c == b'.')
}

/// Any version of UUID, canonical 8-4-4-4-12 form, optionally braced.
fn is_uuid(s: &str) -> bool {
    let s = s
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(s);
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `YYYY-MM-DD`, optionally followed by `T…` (an RFC 3339 date-time).
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 10 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10)) {
        return false;
    }
    let month = (b[5] - b'0') * 10 + (b[6] - b'0');
    let day = (b[8] - b'0') * 10 + (b[9] - b'0');
    (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (b.len() == 10 || b[10] == b'T' || b[10] == b't')
}

/// 8+ hex digits with both a digit and a letter (`5f2b7c1e`, SHA-1, ObjectId).
fn is_hex_id(s: &str) -> bool {
    s.len() >= 8
        && s.bytes().all(|c| c.is_ascii_hexdigit())
        && s.bytes().any(|c| c.is_ascii_digit())
        && s.bytes().any(|c| c.is_ascii_alphabetic())
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(char::is_whitespace)
}

/// Three base64url parts separated by dots, the first a JSON object (`eyJ`).
fn is_jwt_like(s: &str) -> bool {
    let mut parts = s.split('.');
    let (Some(h), Some(p), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    h.starts_with("eyJ") && p.len() >= 4
}

/// A chunk between separators that reads as random: letters and digits
/// interleaved (`a8f3k2m9`, `ord_8xk2M1pQ`-style ids, base64 keys).
fn is_token_chunk(chunk: &str) -> bool {
    let b = chunk.as_bytes();
    if b.len() < 8
        || !b
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
    {
        return false;
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let letters = b.iter().filter(|c| c.is_ascii_alphabetic()).count();
    if digits < 2 || letters < 2 {
        return false;
    }
    // Class changes between letter and digit: `abc123` has one, a random
    // id of the same length several. Trailing digits after a word
    // (`release2024`, `oauth2callback`) stay below the bar.
    let changes = b
        .windows(2)
        .filter(|w| w[0].is_ascii_digit() != w[1].is_ascii_digit())
        .count();
    let upper_lower = b
        .windows(2)
        .filter(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase())
        .count();
    changes >= 3 || (b.len() >= 16 && changes + upper_lower >= 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> Option<ParamKind> {
        classify(s, Some("things"))
    }

    #[test]
    fn identifiers_are_parameters() {
        assert_eq!(kind("123"), Some(ParamKind::Integer));
        assert_eq!(kind("0"), Some(ParamKind::Integer));
        for u in [
            "d9a1e25f-ca7c-48d4-83db-9009935bab90",
            "6ba7b810-9dad-11d1-80b4-00c04fd430c8", // v1
            "017f22e2-79b0-7cc3-98c4-dc0c0c07398f", // v7
            "{6ba7b810-9dad-11d1-80b4-00c04fd430c8}",
        ] {
            assert_eq!(kind(u), Some(ParamKind::Uuid), "{u}");
        }
        assert_eq!(kind("5f2b7c1e9d3a4b6c8e0f1a2b"), Some(ParamKind::Hex));
        assert_eq!(
            kind("da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            Some(ParamKind::Hex)
        );
        assert_eq!(kind("2024-03-01"), Some(ParamKind::Date));
        assert_eq!(kind("2024-03-01T10:00:00Z"), Some(ParamKind::Date));
        assert_eq!(kind("ann@example.com"), Some(ParamKind::Email));
        assert_eq!(
            kind("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"),
            Some(ParamKind::Token)
        );
        assert_eq!(kind("a8f3k2m9x7"), Some(ParamKind::Token));
        assert_eq!(kind("cus_9s8K2jLm4Qx1"), Some(ParamKind::Token));
    }

    #[test]
    fn versions_and_words_are_constants() {
        for s in [
            "v1",
            "v2",
            "V3",
            "v2.0",
            "v1beta1",
            "v2alpha",
            "1.0",
            "2.1.3",
            "api",
            "users",
            "me",
            "by-slug",
            "hello.world",
            "gold-annual-42",
            "oauth2",
            "x86_64",
            "release2024",
            "utf8",
            "deadbeef",
            "facade",
            "2fa",
            "_ping",
            "v1.41",
        ] {
            assert_eq!(kind(s), None, "{s}");
        }
    }

    #[test]
    fn dated_api_versions_are_constants_after_api() {
        assert_eq!(classify("2024-01-01", Some("api")), None);
        assert_eq!(classify("2024-01-01", Some("v2")), None);
        assert_eq!(
            classify("2024-01-01", Some("reports")),
            Some(ParamKind::Date)
        );
        assert_eq!(classify("2024-13-01", Some("reports")), None);
    }

    #[test]
    fn placeholders_round_trip() {
        for k in [
            ParamKind::Integer,
            ParamKind::Uuid,
            ParamKind::Hex,
            ParamKind::Date,
            ParamKind::Email,
            ParamKind::Token,
            ParamKind::String,
        ] {
            assert_eq!(ParamKind::from_placeholder(k.placeholder()), Some(k));
        }
        assert_eq!(ParamKind::from_placeholder("{id}"), None);
    }
}
