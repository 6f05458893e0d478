//! Request-target, `Host` and `name=value` list handling: everything that
//! turns URL-ish bytes into exportable names.
//!
//! Only *names* leave this module (path, host, query parameter and form field
//! names); values are looked at only to find an API key for the principal
//! fingerprint and never stored.

use std::net::SocketAddr;

use super::segment;
use super::values::key_looks_like_value;
use super::{FingerprintKey, PathParam};

/// Longest exported path, in bytes (truncated on a character boundary).
pub const MAX_PATH_BYTES: usize = 2048;
/// Longest exported host, in bytes; a longer `Host` is not plausible.
pub const MAX_HOST_BYTES: usize = 255;
/// Most query parameter (or form field) names kept per message.
pub const MAX_PARAM_NAMES: usize = 64;
/// Longest query parameter (or form field) name, in bytes.
pub const MAX_PARAM_NAME_BYTES: usize = 128;
/// Placeholder for a name that looks like a value (id, email, token).
pub const REDACTED_NAME: &str = "{key}";

/// The parts of a request target the record needs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Target<'a> {
    /// Raw (still percent-encoded) path, or `*`; empty for authority form.
    pub(crate) path: &'a [u8],
    /// Raw query string without the `?`, if any.
    pub(crate) query: Option<&'a [u8]>,
    /// Authority of an absolute-form or authority-form target, userinfo removed.
    pub(crate) authority: Option<&'a [u8]>,
    /// The target was in authority form (`CONNECT host:port`).
    pub(crate) authority_form: bool,
}

/// Splits a raw request target into path, query and authority.
pub(crate) fn split_target<'a>(target: &'a [u8], method: &str) -> Target<'a> {
    // The fragment is never sent by conforming clients; drop it if present.
    let target = match memchr::memchr(b'#', target) {
        Some(i) => &target[..i],
        None => target,
    };
    if target == b"*" {
        return Target {
            path: target,
            query: None,
            authority: None,
            authority_form: false,
        };
    }
    if let Some(rest) = strip_scheme(target) {
        let end = rest
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .unwrap_or(rest.len());
        let authority = strip_userinfo(&rest[..end]);
        let (path, query) = split_query(&rest[end..]);
        let path: &[u8] = if path.is_empty() { b"/" } else { path };
        return Target {
            path,
            query,
            authority: Some(authority),
            authority_form: false,
        };
    }
    if method.eq_ignore_ascii_case("CONNECT") && target.first() != Some(&b'/') {
        return Target {
            path: b"",
            query: None,
            authority: Some(strip_userinfo(target)),
            authority_form: true,
        };
    }
    let (path, query) = split_query(target);
    Target {
        path,
        query,
        authority: None,
        authority_form: false,
    }
}

fn split_query(b: &[u8]) -> (&[u8], Option<&[u8]>) {
    match memchr::memchr(b'?', b) {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    }
}

/// `scheme://rest` → `rest`, for an RFC 3986 scheme.
fn strip_scheme(b: &[u8]) -> Option<&[u8]> {
    let colon = b.iter().take(32).position(|&c| c == b':')?;
    let scheme = &b[..colon];
    let ok = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
    if ok {
        b[colon + 1..].strip_prefix(b"//")
    } else {
        None
    }
}

/// Removes `user:password@` from an authority: it is a credential.
fn strip_userinfo(a: &[u8]) -> &[u8] {
    match memchr::memrchr(b'@', a) {
        Some(i) => &a[i + 1..],
        None => a,
    }
}

/// Normalises a `Host` value or an authority: trimmed, lower-cased, trailing
/// dot of the name removed, port kept. `None` if it is not a plausible
/// `hostname`, `IPv4` or `[IPv6]`, with an optional port.
pub(crate) fn normalize_host(raw: &[u8]) -> Option<String> {
    let raw = raw.trim_ascii();
    if raw.is_empty() || raw.len() > MAX_HOST_BYTES {
        return None;
    }
    let plausible = raw
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'[' | b']'));
    if !plausible {
        return None;
    }
    // Plausible bytes are ASCII: this cannot fail, and the text is copied
    // and lower-cased in bulk rather than character by character.
    let raw = std::str::from_utf8(raw).ok()?;
    // Split off a port unless this is a bare IPv6 literal.
    let (name, port) = match memchr::memrchr(b':', raw.as_bytes()) {
        Some(i) if !raw[..i].contains(':') || raw[..i].ends_with(']') => (&raw[..i], &raw[i..]),
        _ => (raw, ""),
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return None;
    }
    let mut host = String::with_capacity(name.len() + port.len());
    host.push_str(name);
    host.push_str(port);
    host.make_ascii_lowercase();
    Some(host)
}

/// The server address as a host, `ip:port` (`[v6]:port`).
pub(crate) fn socket_host(addr: SocketAddr) -> String {
    addr.to_string()
}

/// Percent-decodes `raw` (and `+` as space when `plus` is set). Invalid
/// escapes are kept literally.
pub(crate) fn percent_decode(raw: &[u8], plus: bool) -> std::borrow::Cow<'_, [u8]> {
    if !raw.iter().any(|&c| c == b'%' || (plus && c == b'+')) {
        return std::borrow::Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c == b'%' {
            if let (Some(h), Some(l)) = (
                raw.get(i + 1).and_then(hex_val),
                raw.get(i + 2).and_then(hex_val),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(if plus && c == b'+' { b' ' } else { c });
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

fn hex_val(c: &u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Lossy UTF-8 with control characters (NUL included) replaced by U+FFFD,
/// truncated to at most `cap` bytes on a character boundary.
pub(crate) fn clean_text(bytes: &[u8], cap: usize) -> String {
    // Printable ASCII is kept as is and every byte is a char boundary, so
    // the result is the first `cap` bytes whatever follows them.
    if let Some(plain) = plain_ascii(&bytes[..bytes.len().min(cap)]) {
        return plain.to_owned();
    }
    clean_text_slow(bytes, cap)
}

/// `bytes` as text if it is printable ASCII (no control characters), the
/// common case that [`clean_text`] returns unchanged.
pub(crate) fn plain_ascii(bytes: &[u8]) -> Option<&str> {
    if word_marks(bytes, unprintable_marks) == 0 {
        std::str::from_utf8(bytes).ok()
    } else {
        None
    }
}

/// [`clean_text`] of text that is already a `str`: printable ASCII within
/// `cap` is copied without validating it as UTF-8 again.
pub(crate) fn clean_str(text: &str, cap: usize) -> String {
    if text.len() <= cap && word_marks(text.as_bytes(), unprintable_marks) == 0 {
        return text.to_owned();
    }
    clean_text(text.as_bytes(), cap)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = ONES * 0x80;

/// The OR of `marks` over `bytes` read as little-endian words: eight bytes
/// at a time, the last word overlapping the one before; input shorter than
/// a word is read as one word of its bytes ([`short_word`]). Bytes may be
/// read twice, so this answers "is any byte marked", not where.
#[inline]
pub(crate) fn word_marks(bytes: &[u8], marks: impl Fn(u64) -> u64) -> u64 {
    let word = |b: &[u8]| <[u8; 8]>::try_from(b).map_or(0, u64::from_le_bytes);
    if bytes.len() < 8 {
        return marks(short_word(bytes));
    }
    let mut words = bytes.chunks_exact(8);
    let mut acc = 0;
    for w in &mut words {
        acc |= marks(word(w));
    }
    if !words.remainder().is_empty() {
        acc |= marks(word(bytes.get(bytes.len() - 8..).unwrap_or(bytes)));
    }
    acc
}

/// A word holding every byte of `b` (shorter than eight bytes), built in
/// registers: from four bytes up, the first four and the last four
/// (overlapping); below four, the first, middle and last byte, the rest
/// `a` (printable, lower-case: never marked). A byte-wise copy into a
/// padded buffer cost a `memcpy` call and a stalled reload of the word.
#[inline]
fn short_word(b: &[u8]) -> u64 {
    let n = b.len();
    let half = |at: usize| {
        b.get(at..at + 4)
            .and_then(|w| <[u8; 4]>::try_from(w).ok())
            .map_or(0, |w| u64::from(u32::from_le_bytes(w)))
    };
    let byte = |at: usize| b.get(at).map_or(u64::from(b'a'), |&c| u64::from(c));
    match n {
        0 => ONES * u64::from(b'a'),
        1..=3 => byte(0) | byte(n / 2) << 8 | byte(n - 1) << 16 | (ONES * u64::from(b'a')) << 24,
        _ => half(0) | half(n - 4) << 32,
    }
}

/// The high bit of each byte of `w` that is not printable ASCII (not in
/// `0x20..0x7f`). Exact per byte: the sums are on 7-bit values and never
/// carry into the next byte.
#[inline]
pub(crate) fn unprintable_marks(w: u64) -> u64 {
    let low7 = w & !HIGH;
    (w | !(low7 + ONES * 0x60) | (low7 + ONES)) & HIGH
}

/// The high bit of each byte of `w` that equals `c`. Exact for the lowest
/// marked byte (so for "is any byte `c`" and for where the first one is);
/// a byte above a marked one may be marked falsely (the borrow runs on).
#[inline]
pub(crate) fn byte_marks(w: u64, c: u8) -> u64 {
    let x = w ^ (ONES * u64::from(c));
    x.wrapping_sub(ONES) & !x & HIGH
}

/// The high bit of each byte of `w` whose low seven bits are `A`–`Z`
/// (bytes from 0x80 up are marked by [`unprintable_marks`] anyway).
#[inline]
pub(crate) fn uppercase_marks(w: u64) -> u64 {
    let low7 = w & !HIGH;
    (low7 + ONES * 0x3f) & !(low7 + ONES * 0x25) & HIGH
}

fn clean_text_slow(bytes: &[u8], cap: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len().min(cap));
    for ch in text.chars() {
        let ch = if ch.is_control() {
            char::REPLACEMENT_CHARACTER
        } else {
            ch
        };
        if out.len() + ch.len_utf8() > cap {
            break;
        }
        out.push(ch);
    }
    out
}

/// The exported path for a split target.
pub(crate) fn export_path(t: &Target<'_>) -> String {
    clean_text(&percent_decode(t.path, false), MAX_PATH_BYTES)
}

/// Replaces the segments of `path` that look like secrets (tokens, email
/// addresses: [`segment::ParamKind::is_secret`], by the same test the analyzer
/// templates with) by their placeholder, and describes each with a keyed
/// fingerprint of its value. A path without such segments is returned as
/// it is.
pub(crate) fn redact_path(path: String, key: &FingerprintKey) -> (String, Vec<PathParam>) {
    let b = path.as_bytes();
    let first = usize::from(b.first() == Some(&b'/'));
    let mut params = Vec::new();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut previous = None;
    let (mut seg_start, mut index) = (first, 0usize);
    // One pass over the bytes: a segment can only be of a secret kind if
    // it has an `@` (an email address), starts with `eyJ` (a JWT), or is 8
    // bytes or longer with at least two digits (any other token: a run of
    // 8 or more letters and digits with two of each; see
    // `segment::classify`). Of those, segments of hex digits only are
    // integers or hex ids, and UUIDs are UUIDs: `classify` tells those
    // apart first. Most segments (words, ids) are ruled out here.
    let (mut digits, mut at, mut hex_digits) = (0u32, false, 0usize);
    for i in first..=b.len() {
        let c = b.get(i).copied().unwrap_or(b'/');
        if c != b'/' {
            digits += u32::from(c.is_ascii_digit());
            at |= c == b'@';
            hex_digits += usize::from(c.is_ascii_hexdigit());
            continue;
        }
        let seg = &path[seg_start..i];
        let an_id = hex_digits == seg.len() || is_uuid_shaped(seg.as_bytes(), hex_digits);
        let may_be_secret =
            at || (seg.len() >= 8 && ((digits >= 2 && !an_id) || seg.starts_with("eyJ")));
        let kind = may_be_secret
            .then(|| segment::classify(seg, previous))
            .flatten()
            .filter(|k| k.is_secret());
        if let Some(kind) = kind {
            let o = out.get_or_insert_with(|| String::with_capacity(path.len()));
            o.push_str(&path[copied..seg_start]);
            o.push_str(kind.placeholder());
            copied = i;
            params.push(PathParam {
                index: u16::try_from(index).unwrap_or(u16::MAX),
                kind,
                fingerprint: key.principal(&[PATH_SEGMENT_DOMAIN, seg.as_bytes()]),
            });
        }
        previous = Some(seg);
        (seg_start, index, digits, at, hex_digits) = (i + 1, index + 1, 0, false, 0);
    }
    match out {
        None => (path, params),
        Some(mut o) => {
            o.push_str(&path[copied..]);
            (o, params)
        }
    }
}

/// 8-4-4-4-12 hex digits (`hex_digits` of them in `seg`): what
/// `segment::classify` takes for a UUID before it looks for tokens.
fn is_uuid_shaped(seg: &[u8], hex_digits: usize) -> bool {
    seg.len() == 36 && hex_digits == 32 && [8, 13, 18, 23].iter().all(|&i| seg[i] == b'-')
}

/// First part of a path segment's fingerprint input: no auth scheme has
/// this name, so a segment's fingerprint never equals a principal's.
const PATH_SEGMENT_DOMAIN: &[u8] = b"path segment";

/// Adds the decoded names of a `name=value&…` list to `out` (deduplicated,
/// capped). With `drop_partial_tail`, a last pair without `=` is ignored:
/// the sample ended inside its name.
pub(crate) fn collect_names(list: &[u8], out: &mut Vec<String>, drop_partial_tail: bool) {
    let mut pairs = list.split(|&c| c == b'&').peekable();
    while let Some(pair) = pairs.next() {
        if out.len() >= MAX_PARAM_NAMES {
            return;
        }
        let has_eq = memchr::memchr(b'=', pair);
        if drop_partial_tail && has_eq.is_none() && pairs.peek().is_none() {
            return;
        }
        let name = &pair[..has_eq.unwrap_or(pair.len())];
        if name.is_empty() {
            continue;
        }
        push_name(out, &percent_decode(name, true), MAX_PARAM_NAME_BYTES);
    }
}

/// Pushes one cleaned name unless already present; a name that looks like a
/// value is replaced by [`REDACTED_NAME`].
pub(crate) fn push_name(out: &mut Vec<String>, raw: &[u8], cap: usize) {
    let name = clean_text(raw, MAX_HOST_BYTES.max(cap));
    let name = if key_looks_like_value(&name) {
        REDACTED_NAME.to_owned()
    } else {
        let mut name = name;
        truncate_on_char(&mut name, cap);
        name
    };
    if !out.contains(&name) {
        out.push(name);
    }
}

pub(crate) fn truncate_on_char(s: &mut String, cap: usize) {
    if s.len() > cap {
        let mut end = cap;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// The decoded value of the first `name` parameter whose (decoded,
/// case-insensitive) name is in `names`: `(name, value)`.
pub(crate) fn find_param<'a>(
    query: &'a [u8],
    names: &[&'static str],
) -> Option<(&'static str, std::borrow::Cow<'a, [u8]>)> {
    for pair in query.split(|&c| c == b'&') {
        let eq = memchr::memchr(b'=', pair).unwrap_or(pair.len());
        let name = percent_decode(&pair[..eq], true);
        if let Some(known) = names
            .iter()
            .find(|n| n.as_bytes().eq_ignore_ascii_case(&name))
        {
            let value = pair.get(eq + 1..).unwrap_or(b"");
            return Some((known, percent_decode(value, true)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass filter in `redact_path` never skips a segment that
    /// `segment::classify` takes for a secret kind: on random segments
    /// built from the characters the forms are made of, the result equals
    /// classifying every segment.
    #[test]
    fn the_prefilter_never_hides_a_secret_segment() {
        let key = FingerprintKey::new([3; 32]);
        let mut next = crate::record::xorshift(0x5EED_0F5E_C2E7);
        let alphabet = b"0123456789abcdefABCDEFxyzXYZ-_.@~:eJy";
        let mut secrets = 0;
        for _ in 0..20_000 {
            let mut path = String::new();
            for _ in 0..1 + next() % 4 {
                path.push('/');
                let len = next() % 40;
                if next() % 8 == 0 {
                    path.push_str("eyJ");
                }
                for _ in 0..len {
                    path.push(char::from(
                        alphabet[(next() % alphabet.len() as u64) as usize],
                    ));
                }
            }
            let (redacted, params) = redact_path(path.clone(), &key);
            // Classify every segment, with no filter.
            let mut want = Vec::new();
            let mut previous = None;
            for (i, seg) in path[1..].split('/').enumerate() {
                if let Some(k) = segment::classify(seg, previous).filter(|k| k.is_secret()) {
                    want.push((i as u16, k));
                }
                previous = Some(seg);
            }
            let got: Vec<(u16, segment::ParamKind)> =
                params.iter().map(|p| (p.index, p.kind)).collect();
            assert_eq!(got, want, "{path} -> {redacted}");
            secrets += want.len();
        }
        assert!(secrets > 1000, "the test reaches secret forms: {secrets}");
    }

    fn path_of(target: &str, method: &str) -> String {
        export_path(&split_target(target.as_bytes(), method))
    }

    #[test]
    fn paths() {
        let cases: &[(&[u8], &str, &str)] = &[
            (b"/a/b?x=1", "GET", "/a/b"),
            (b"/a%20b/%C3%A9", "GET", "/a b/\u{e9}"),
            (b"/bad%zz%4", "GET", "/bad%zz%4"),
            (b"/nul%00x%0a", "GET", "/nul\u{fffd}x\u{fffd}"),
            (b"/x#frag?no", "GET", "/x"),
            (b"/\xff\xfe", "GET", "/\u{fffd}\u{fffd}"),
            (b"/%ff", "GET", "/\u{fffd}"),
            (b"http://h.example/p?q=1", "GET", "/p"),
            (b"http://user:pw@h.example", "GET", "/"),
            (b"example.com:443", "CONNECT", ""),
            (b"*", "OPTIONS", "*"),
            (b"/a+b", "GET", "/a+b"),
        ];
        for (t, m, want) in cases {
            let got = export_path(&split_target(t, m));
            assert_eq!(got, *want, "{:?}", String::from_utf8_lossy(t));
        }
        let long = format!("/{}", "\u{e9}".repeat(2000));
        let p = path_of(&long, "GET");
        assert!(p.len() <= MAX_PATH_BYTES && p.len() >= MAX_PATH_BYTES - 1);
    }

    #[test]
    fn authority_and_userinfo() {
        let t = split_target(b"https://user:s3cret@API.example.com:8443/v1?a=b", "GET");
        assert_eq!(t.authority, Some(&b"API.example.com:8443"[..]));
        assert_eq!(t.query, Some(&b"a=b"[..]));
        let t = split_target(b"db.internal:5432", "CONNECT");
        assert!(t.authority_form);
        assert_eq!(t.authority, Some(&b"db.internal:5432"[..]));
    }

    #[test]
    fn hosts() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"Example.COM", Some("example.com")),
            (b"example.com.", Some("example.com")),
            (b"example.com.:8080", Some("example.com:8080")),
            (b" api.example.com:443 ", Some("api.example.com:443")),
            (b"10.0.0.1:80", Some("10.0.0.1:80")),
            (b"[::1]:8080", Some("[::1]:8080")),
            (b"[::1]", Some("[::1]")),
            (b"evil/host", None),
            (b"user@host", None),
            (b"", None),
            (b"h\x00st", None),
        ];
        for (raw, want) in cases {
            assert_eq!(
                normalize_host(raw).as_deref(),
                *want,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        assert_eq!(normalize_host(&[b'a'; 256]), None);
    }

    #[test]
    fn query_names() {
        let mut out = Vec::new();
        collect_names(
            b"a=1&b=2&a=3&c%5B%5D=x&d+e=&&=v&flag&user%40example.com=1",
            &mut out,
            false,
        );
        assert_eq!(out, ["a", "b", "c[]", "d e", "flag", REDACTED_NAME]);
        let mut out = Vec::new();
        collect_names(b"name=x&pass", &mut out, true);
        assert_eq!(out, ["name"]);
        let mut out = Vec::new();
        let many: Vec<String> = (0..200).map(|i| format!("p{i}x=1")).collect();
        collect_names(many.join("&").as_bytes(), &mut out, false);
        assert_eq!(out.len(), MAX_PARAM_NAMES);
        let mut out = Vec::new();
        collect_names(format!("{}=1", "n".repeat(500)).as_bytes(), &mut out, false);
        assert_eq!(out[0].len(), MAX_PARAM_NAME_BYTES);
    }

    #[test]
    fn finds_params_case_insensitively() {
        let (n, v) = find_param(b"x=1&API_KEY=a%2Bb+c", &["api_key"]).unwrap();
        assert_eq!((n, &*v), ("api_key", &b"a+b c"[..]));
        assert!(find_param(b"x=1", &["api_key"]).is_none());
    }

    fn plain_ascii_byte(c: u8) -> bool {
        (0x20..0x7f).contains(&c)
    }

    #[test]
    fn word_marks_agree_with_the_byte_tests() {
        let plain = |b: &[u8]| word_marks(b, unprintable_marks) == 0;
        let lower_plain =
            |b: &[u8]| word_marks(b, |w| unprintable_marks(w) | uppercase_marks(w)) == 0;
        for len in 0..20usize {
            let base: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(plain(&base) && lower_plain(&base));
            for at in 0..len {
                for c in 0..=255u8 {
                    let mut b = base.clone();
                    b[at] = c;
                    assert_eq!(
                        plain(&b),
                        plain_ascii_byte(c),
                        "len {len} at {at} byte {c:#x}"
                    );
                    assert_eq!(
                        lower_plain(&b),
                        plain_ascii_byte(c) && !c.is_ascii_uppercase(),
                        "len {len} at {at} byte {c:#x}"
                    );
                }
            }
        }
    }
}
