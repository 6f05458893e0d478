//! Recognising values by their look: string formats for JSON shapes, and
//! names (keys, parameters, cookies) that are really identifiers.
//!
//! Both only *classify*: the inspected text is never kept.

use super::StringFormat;

/// Longest string value examined for a format; longer ones get none.
pub(crate) const MAX_FORMAT_BYTES: usize = 256;

/// True for names that are really values: all digits, UUIDs, emails, long
/// hex strings, base64 JSON (`eyJ…`), anything with a recognised string
/// format (date, IP, URI, JWT), and high-entropy strings of 20 characters
/// or more.
pub(crate) fn key_looks_like_value(k: &str) -> bool {
    bytes_look_like_value(k.as_bytes())
}

/// [`key_looks_like_value`] for a key given as (UTF-8) bytes.
pub(crate) fn bytes_look_like_value(b: &[u8]) -> bool {
    classified_looks_like_value(b, classify(b))
}

/// [`bytes_look_like_value`] for `b` whose byte classes are `class`
/// (from [`classify`]).
pub(crate) fn classified_looks_like_value(b: &[u8], class: u16) -> bool {
    if b.is_empty() {
        return false;
    }
    if class == DIGIT || is_uuid(b) || (class & AT != 0 && looks_like_email(b)) {
        return true;
    }
    if b.len() >= 16 && class & !(DIGIT | HEX_LETTER) == 0 {
        return true;
    }
    // Base64(url) of a JSON object (a JWT part, an encoded cursor or token).
    if b.len() >= 8 && b.starts_with(b"eyJ") && b.iter().all(is_base64_char) {
        return true;
    }
    // Dates, IPs, URIs and JWTs as keys are data, too. Each of them starts
    // with a digit or `e`, or has an `@` or a `:` (UUIDs were checked above).
    if b.len() <= MAX_FORMAT_BYTES
        && (b[0].is_ascii_digit() || b[0] == b'e' || class & (AT | COLON) != 0)
        && classified_format(b, class).is_some()
    {
        return true;
    }
    b.len() >= 20 && high_entropy(b)
}

// Byte classes, one bit each: `classify` ORs them over a string so that one
// pass tells which format checks can possibly succeed.
const DIGIT: u16 = 1;
const HEX_LETTER: u16 = 1 << 1;
const OTHER_LETTER: u16 = 1 << 2;
const DOT: u16 = 1 << 3;
const COLON: u16 = 1 << 4;
const AT: u16 = 1 << 5;
const WHITESPACE: u16 = 1 << 6;
const OTHER_ASCII: u16 = 1 << 7;
const NON_ASCII: u16 = 1 << 8;
/// Set with one of the others for ASCII control characters (and DEL).
pub(crate) const CONTROL: u16 = 1 << 9;
/// Bytes that are not printable ASCII.
pub(crate) const NOT_PRINTABLE: u16 = CONTROL | NON_ASCII;

const CLASSES: [u16; 256] = {
    let mut t = [NON_ASCII; 256];
    let mut c = 0;
    while c < 128 {
        let b = c as u8;
        t[c] = if b.is_ascii_digit() {
            DIGIT
        } else if b.is_ascii_hexdigit() {
            HEX_LETTER
        } else if b.is_ascii_alphabetic() {
            OTHER_LETTER
        } else if b == b'.' {
            DOT
        } else if b == b':' {
            COLON
        } else if b == b'@' {
            AT
        } else if b.is_ascii_whitespace() {
            WHITESPACE
        } else {
            OTHER_ASCII
        };
        if b < 0x20 || b == 0x7f {
            t[c] |= CONTROL;
        }
        c += 1;
    }
    t
};

/// The union of the byte classes in `b`.
pub(crate) fn classify(b: &[u8]) -> u16 {
    b.iter().fold(0, |acc, &c| acc | CLASSES[usize::from(c)])
}

fn is_base64_char(c: &u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'+' | b'/' | b'=')
}

/// Random-looking: near-maximal character entropy and either digits or a
/// large share of upper-case letters (camelCase words have few).
fn high_entropy(b: &[u8]) -> bool {
    let mut counts = [0u16; 256];
    for &c in b {
        counts[c as usize] += 1;
    }
    let n = b.len() as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let upper = b.iter().filter(|c| c.is_ascii_uppercase()).count();
    let letters = b.iter().filter(|c| c.is_ascii_alphabetic()).count();
    let mixed = digits >= 2 || upper * 4 >= letters.max(1);
    entropy / n.log2() >= 0.85 && mixed
}

/// `is_ascii_hexdigit` as a table.
const HEX: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = (c as u8).is_ascii_hexdigit();
        c += 1;
    }
    t
};

fn is_uuid(b: &[u8]) -> bool {
    if b.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return false;
    }
    // No early exit: each group is a short branch-free loop.
    let hex = |s: &[u8]| s.iter().fold(true, |ok, &c| ok & HEX[usize::from(c)]);
    hex(&b[..8]) & hex(&b[9..13]) & hex(&b[14..18]) & hex(&b[19..23]) & hex(&b[24..])
}

fn looks_like_email(b: &[u8]) -> bool {
    match memchr::memchr(b'@', b) {
        Some(at) => at > 0 && b[at + 1..].contains(&b'.'),
        None => false,
    }
}

/// A recognised format for a string value, from its raw (unescaped) bytes.
pub(crate) fn string_format(b: &[u8]) -> Option<StringFormat> {
    let first = *b.first()?;
    // Every format needs one of: 36 bytes (uuid), a leading digit (date,
    // ipv4), a leading `e` (jwt), an `@` (email) or a `:` (ipv6, uri).
    if b.len() != 36 && !first.is_ascii_digit() && first != b'e' && !has_at_or_colon(b) {
        return None;
    }
    // The most common format, found without classifying the bytes first.
    if is_uuid(b) {
        return Some(StringFormat::Uuid);
    }
    classified_format(b, classify(b))
}

/// Whether `b` holds an `@` or a `:`, eight bytes at a time (most strings
/// are shorter than a vector, so this beats a vectorised loop).
#[inline]
fn has_at_or_colon(b: &[u8]) -> bool {
    super::url::word_marks(b, |w| {
        super::url::byte_marks(w, b'@') | super::url::byte_marks(w, b':')
    }) != 0
}

/// [`string_format`] for `b` whose byte classes are `class`: each check is
/// guarded by a cheap length / first-byte / class test, and the std address
/// parsers only see ASCII candidates that can possibly match.
fn classified_format(b: &[u8], class: u16) -> Option<StringFormat> {
    let first = *b.first()?;
    if is_uuid(b) {
        return Some(StringFormat::Uuid);
    }
    if first.is_ascii_digit() && is_date(b) {
        if b.len() == 10 {
            return Some(StringFormat::Date);
        }
        if b.len() >= 19
            && matches!(b[10], b'T' | b't' | b' ')
            && b[11..13].iter().all(u8::is_ascii_digit)
            && b[13] == b':'
            && b[14..16].iter().all(u8::is_ascii_digit)
        {
            return Some(StringFormat::DateTime);
        }
        return None;
    }
    if first == b'e' && is_jwt(b) {
        return Some(StringFormat::Jwt);
    }
    // `Ipv4Addr` text is 7..=15 bytes of digits and dots.
    if (7..=15).contains(&b.len())
        && first.is_ascii_digit()
        && class & !(DIGIT | DOT) == 0
        && parses::<std::net::Ipv4Addr>(b)
    {
        return Some(StringFormat::Ipv4);
    }
    // `Ipv6Addr` text is at most 45 bytes of hex digits, colons and dots.
    if b.len() <= 45
        && class & COLON != 0
        && class & !(DIGIT | HEX_LETTER | COLON | DOT) == 0
        && parses::<std::net::Ipv6Addr>(b)
    {
        return Some(StringFormat::Ipv6);
    }
    let format = if class & AT != 0 && is_email(b) {
        StringFormat::Email
    } else if class & COLON != 0 && class & WHITESPACE == 0 && is_uri(b) {
        StringFormat::Uri
    } else {
        return None;
    };
    // Text that is not UTF-8 has no format.
    (class & NON_ASCII == 0 || std::str::from_utf8(b).is_ok()).then_some(format)
}

fn parses<T: std::str::FromStr>(b: &[u8]) -> bool {
    std::str::from_utf8(b).is_ok_and(|s| s.parse::<T>().is_ok())
}

fn is_date(b: &[u8]) -> bool {
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
}

fn is_email(b: &[u8]) -> bool {
    let Some(at) = memchr::memchr(b'@', b) else {
        return false;
    };
    let (local, domain) = (&b[..at], &b[at + 1..]);
    !local.is_empty()
        && !local.iter().any(|c| c.is_ascii_whitespace() || *c == b'@')
        && domain.len() >= 3
        && domain.contains(&b'.')
        && !domain.starts_with(b".")
        && !domain.ends_with(b".")
        && domain
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-'))
}

fn is_uri(b: &[u8]) -> bool {
    let Some(colon) = memchr::memchr(b':', b) else {
        return false;
    };
    let scheme = &b[..colon];
    !scheme.is_empty()
        && scheme.len() <= 32
        && scheme[0].is_ascii_alphabetic()
        && scheme
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        && b[colon + 1..].starts_with(b"//")
        && b.len() > colon + 3
        && !b.iter().any(|c| c.is_ascii_whitespace())
}

/// Three base64url segments, the first one a JSON object (`eyJ`).
pub(crate) fn is_jwt(b: &[u8]) -> bool {
    let mut parts = 0;
    for seg in b.split(|&c| c == b'.') {
        parts += 1;
        let ok = seg
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'='));
        if !ok || (parts < 3 && seg.is_empty()) {
            return false;
        }
    }
    parts == 3 && b.starts_with(b"eyJ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_or_colon_anywhere() {
        for n in 0..40 {
            let clean = vec![b'a'; n];
            assert!(!has_at_or_colon(&clean));
            for pos in 0..n {
                for c in [b'@', b':'] {
                    let mut b = clean.clone();
                    b[pos] = c;
                    assert!(has_at_or_colon(&b), "{n} {pos}");
                }
            }
        }
        // Bytes one off from `@` (0x40) and `:` (0x3a), and high bytes.
        assert!(!has_at_or_colon(b"?A;9\xff\x80 ABCDEFGHIJKLM"));
    }

    #[test]
    fn formats() {
        let cases: &[(&str, Option<&str>)] = &[
            ("123e4567-e89b-12d3-a456-426614174000", Some("uuid")),
            ("2024-01-02", Some("date")),
            ("2024-01-02T03:04:05Z", Some("date-time")),
            ("2024-01-02T03:04:05.123+01:00", Some("date-time")),
            ("a.b@example.com", Some("email")),
            ("https://example.com/x", Some("uri")),
            ("10.1.2.3", Some("ipv4")),
            ("2001:db8::1", Some("ipv6")),
            ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", Some("jwt")),
            ("hello world", None),
            ("12:30", None),
            ("2024-01-0", None),
            ("@x.y", None),
        ];
        for (s, want) in cases {
            assert_eq!(
                string_format(s.as_bytes()).map(StringFormat::as_str),
                *want,
                "{s}"
            );
        }
    }

    #[test]
    fn value_like_keys() {
        for k in [
            "12345",
            "123e4567-e89b-12d3-a456-426614174000",
            "bob@example.com",
            "deadbeefcafebabe0123",
            "aZ3kQ9xLm2Pq7RtY8wVn",
            "sk_live_51HxY2KLm9aBcDeFgHiJ",
            "eyJraWQiOiJ0ZXN0In0",
            "2024-01-02",
            "10.0.0.1",
            "https://example.com/a",
        ] {
            assert!(key_looks_like_value(k), "{k}");
        }
        for k in [
            "id",
            "name",
            "preferredContactMethod",
            "created_at",
            "shipping_address_line_2",
            "X-Request-Id",
            "userId",
            "",
        ] {
            assert!(!key_looks_like_value(k), "{k}");
        }
    }
}
