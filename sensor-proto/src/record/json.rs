//! [`ExchangeRecord::write_json`]: the record's JSON text written directly
//! into a byte buffer.
//!
//! The output is byte for byte what `serde_json::to_writer` makes of the
//! derived `Serialize` impls (the tests check it on every kind of record);
//! writing it by hand skips serde's per-token calls, which cost more than
//! the record itself takes to build once body shapes are involved. Field
//! order, skipped fields and names follow the attributes in `mod.rs`.

use std::fmt::Display;
use std::io::Write as _;
use std::net::SocketAddr;

use super::{
    AuthInfo, BodyInfo, ExchangeRecord, Fields, Flags, JwtInfo, KeyLocation, MessageInfo, Shape,
};
use crate::http::{Framing, HttpVersion, Tunnel};

impl ExchangeRecord {
    /// Appends the record as one line of compact JSON (without the newline),
    /// exactly as `serde_json::to_writer` would write it.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"schema\":");
        int(out, self.schema);
        out.extend_from_slice(b",\"ts\":\"");
        self.ts.write_rfc3339(out);
        out.push(b'"');
        if let Some(v) = self.latency_us {
            out.extend_from_slice(b",\"latency_us\":");
            int(out, v);
        }
        if let Some(v) = self.duration_us {
            out.extend_from_slice(b",\"duration_us\":");
            int(out, v);
        }
        out.extend_from_slice(b",\"client\":");
        socket_addr(out, &self.client);
        out.extend_from_slice(b",\"server\":");
        socket_addr(out, &self.server);
        out.extend_from_slice(b",\"host\":");
        string(out, &self.host);
        out.extend_from_slice(b",\"method\":");
        string(out, &self.method);
        out.extend_from_slice(b",\"path\":");
        string(out, &self.path);
        if !self.path_params.is_empty() {
            out.extend_from_slice(b",\"path_params\":[");
            for (i, p) in self.path_params.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"index\":");
                int(out, p.index);
                out.extend_from_slice(b",\"kind\":");
                quoted(out, p.kind.as_str());
                out.extend_from_slice(b",\"fingerprint\":");
                string(out, &p.fingerprint);
                out.push(b'}');
            }
            out.push(b']');
        }
        if !self.query_params.is_empty() {
            out.extend_from_slice(b",\"query_params\":");
            strings(out, &self.query_params);
        }
        out.extend_from_slice(b",\"version\":");
        quoted(out, version_name(self.version));
        if let Some(v) = self.status {
            out.extend_from_slice(b",\"status\":");
            int(out, v);
        }
        out.extend_from_slice(b",\"request\":");
        message(out, &self.request);
        if let Some(m) = &self.response {
            out.extend_from_slice(b",\"response\":");
            message(out, m);
        }
        if !self.interim.is_empty() {
            out.extend_from_slice(b",\"interim\":");
            list(out, &self.interim, |out, &s| int(out, s));
        }
        out.extend_from_slice(b",\"auth\":");
        auth(out, &self.auth);
        if let Some(p) = &self.principal {
            out.extend_from_slice(b",\"principal\":");
            string(out, p);
        }
        if let Some(t) = self.tunnel {
            out.extend_from_slice(b",\"tunnel\":");
            quoted(out, tunnel_name(t));
        }
        out.extend_from_slice(b",\"flags\":");
        flags(out, &self.flags);
        if !self.anomalies.is_empty() {
            out.extend_from_slice(b",\"anomalies\":");
            strings(out, &self.anomalies);
        }
        out.push(b'}');
    }
}

fn message(out: &mut Vec<u8>, m: &MessageInfo) {
    out.extend_from_slice(b"{\"headers\":");
    strings(out, &m.headers);
    if let Some(ct) = &m.content_type {
        out.extend_from_slice(b",\"content_type\":");
        string(out, ct);
    }
    if let Some(ce) = &m.content_encoding {
        out.extend_from_slice(b",\"content_encoding\":");
        string(out, ce);
    }
    out.extend_from_slice(b",\"body\":");
    body(out, &m.body);
    out.push(b'}');
}

fn body(out: &mut Vec<u8>, b: &BodyInfo) {
    out.extend_from_slice(b"{\"framing\":");
    quoted(out, framing_name(b.framing));
    out.extend_from_slice(b",\"wire_bytes\":");
    int(out, b.wire_bytes);
    out.extend_from_slice(b",\"bytes\":");
    int(out, b.bytes);
    if let Some(n) = b.decoded_bytes {
        out.extend_from_slice(b",\"decoded_bytes\":");
        int(out, n);
    }
    if let Some(s) = &b.shape {
        out.extend_from_slice(b",\"shape\":");
        match s.json() {
            Some(json) => out.extend_from_slice(json.as_bytes()),
            None => shape(out, &s.tree()),
        }
    }
    if let Some(keys) = &b.form_keys {
        out.extend_from_slice(b",\"form_keys\":");
        strings(out, keys);
    }
    if b.sampled {
        out.extend_from_slice(b",\"sampled\":true");
    }
    out.push(b'}');
}

/// A shape; recursion is bounded by the shape's depth (at most
/// [`super::MAX_DEPTH`] levels for scanned shapes).
pub(super) fn shape(out: &mut Vec<u8>, s: &Shape) {
    match s {
        Shape::Null => out.extend_from_slice(b"{\"type\":\"null\"}"),
        Shape::Boolean => out.extend_from_slice(b"{\"type\":\"boolean\"}"),
        Shape::Integer => out.extend_from_slice(b"{\"type\":\"integer\"}"),
        Shape::Number => out.extend_from_slice(b"{\"type\":\"number\"}"),
        Shape::Any => out.extend_from_slice(b"{\"type\":\"any\"}"),
        Shape::String { format: None } => out.extend_from_slice(b"{\"type\":\"string\"}"),
        Shape::String { format: Some(f) } => {
            out.extend_from_slice(b"{\"type\":\"string\",\"format\":");
            quoted(out, f.as_str());
            out.push(b'}');
        }
        Shape::Array { items: None } => out.extend_from_slice(b"{\"type\":\"array\"}"),
        Shape::Array { items: Some(items) } => {
            out.extend_from_slice(b"{\"type\":\"array\",\"items\":");
            shape(out, items);
            out.push(b'}');
        }
        Shape::Object { fields, truncated } => {
            out.extend_from_slice(b"{\"type\":\"object\",\"fields\":");
            write_fields(out, fields);
            if *truncated {
                out.extend_from_slice(b",\"truncated\":true");
            }
            out.push(b'}');
        }
    }
}

fn write_fields(out: &mut Vec<u8>, fields: &Fields) {
    out.push(b'{');
    // One escape check over all the keys; usually none needs escapes.
    let plain = needs_no_escape(fields.names().as_bytes());
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if plain {
            out.push(b'"');
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"\":");
        } else {
            string(out, key);
            out.push(b':');
        }
        shape(out, value);
    }
    out.push(b'}');
}

fn auth(out: &mut Vec<u8>, a: &AuthInfo) {
    out.extend_from_slice(b"{\"scheme\":");
    quoted(out, a.scheme.as_str());
    if let Some(k) = &a.key_name {
        out.extend_from_slice(b",\"key_name\":");
        string(out, k);
    }
    if let Some(l) = a.key_in {
        out.extend_from_slice(b",\"key_in\":");
        quoted(out, location_name(l));
    }
    if !a.cookies.is_empty() {
        out.extend_from_slice(b",\"cookies\":");
        strings(out, &a.cookies);
    }
    if let Some(j) = &a.jwt {
        out.extend_from_slice(b",\"jwt\":");
        jwt(out, j);
    }
    out.push(b'}');
}

fn jwt(out: &mut Vec<u8>, j: &JwtInfo) {
    // `has_exp` is never skipped, so it may come first after the optional
    // `alg` and `iss`: track whether a comma is due.
    out.push(b'{');
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, name: &[u8]| {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(name);
    };
    if let Some(alg) = &j.alg {
        key(out, b"\"alg\":");
        string(out, alg);
    }
    if let Some(iss) = &j.iss {
        key(out, b"\"iss\":");
        string(out, iss);
    }
    if !j.aud.is_empty() {
        key(out, b"\"aud\":");
        strings(out, &j.aud);
    }
    key(out, b"\"has_exp\":");
    out.extend_from_slice(if j.has_exp { b"true" } else { b"false" });
    if let Some(l) = j.lifetime_s {
        key(out, b"\"lifetime_s\":");
        int(out, l);
    }
    out.push(b'}');
}

fn flags(out: &mut Vec<u8>, f: &Flags) {
    out.push(b'{');
    let set = [
        (f.gap, &b"\"gap\":true"[..]),
        (f.truncated, b"\"truncated\":true"),
        (f.mid_stream, b"\"mid_stream\":true"),
        (f.unanswered, b"\"unanswered\":true"),
    ];
    for (i, (_, text)) in set.iter().filter(|(on, _)| *on).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(text);
    }
    out.push(b'}');
}

fn version_name(v: HttpVersion) -> &'static str {
    match v {
        HttpVersion::Http10 => "1.0",
        HttpVersion::Http11 => "1.1",
    }
}

fn framing_name(f: Framing) -> &'static str {
    match f {
        Framing::None => "none",
        Framing::ContentLength => "content_length",
        Framing::Chunked => "chunked",
        Framing::CloseDelimited => "close_delimited",
    }
}

fn tunnel_name(t: Tunnel) -> &'static str {
    match t {
        Tunnel::WebSocket => "web_socket",
        Tunnel::H2c => "h2c",
        Tunnel::OtherUpgrade => "other_upgrade",
        Tunnel::Connect => "connect",
    }
}

fn location_name(l: KeyLocation) -> &'static str {
    match l {
        KeyLocation::Header => "header",
        KeyLocation::Query => "query",
    }
}

fn int(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// A name known to need no escaping, in quotes.
fn quoted(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// A socket address as a JSON string, as `Display` writes it (IPv4 digit by
/// digit into a stack buffer and appended at once, the common case; IPv6
/// through `Display`).
fn socket_addr(out: &mut Vec<u8>, addr: &SocketAddr) {
    match addr {
        SocketAddr::V4(v4) => {
            // `"255.255.255.255:65535"` is 23 bytes.
            let mut text = [0u8; 23];
            let mut n = 0;
            let mut put = |b: u8| {
                if let Some(slot) = text.get_mut(n) {
                    *slot = b;
                    n += 1;
                }
            };
            put(b'"');
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    put(b'.');
                }
                if octet >= 100 {
                    put(b'0' + octet / 100);
                }
                if octet >= 10 {
                    put(b'0' + octet / 10 % 10);
                }
                put(b'0' + octet % 10);
            }
            put(b':');
            for &d in itoa::Buffer::new().format(v4.port()).as_bytes() {
                put(d);
            }
            put(b'"');
            out.extend_from_slice(text.get(..n).unwrap_or(&text));
        }
        SocketAddr::V6(_) => display(out, addr),
    }
}

/// A value written with `Display`, as a JSON string (serde's `collect_str`).
/// Only for text that never needs escaping: timestamps and socket addresses
/// are digits, letters and `.:-[]%`.
fn display(out: &mut Vec<u8>, v: &impl Display) {
    // Writing into a `Vec` cannot fail.
    let _ = write!(out, "\"{v}\"");
}

fn strings(out: &mut Vec<u8>, items: &[String]) {
    // Room for the usual case (no escapes) at once.
    out.reserve(items.iter().map(|s| s.len() + 3).sum::<usize>() + 2);
    list(out, items, |out, s| string(out, s));
}

fn list<T>(out: &mut Vec<u8>, items: &[T], mut item: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, x);
    }
    out.push(b']');
}

/// True if `b` has no byte that a JSON string escapes (`"`, `\`, control
/// characters). Names almost never need escapes: eight bytes at a time
/// ([`super::url::word_marks`]), without a per-byte branch.
#[inline]
pub(super) fn needs_no_escape(b: &[u8]) -> bool {
    super::url::word_marks(b, escape_marks) == 0
}

/// Non-zero iff a byte of `w` is below 0x20, a `"` or a `\` (exact
/// "has a byte less than" and "has a zero byte" tests on whole words).
#[inline]
fn escape_marks(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    below_space | super::url::byte_marks(w, b'"') | super::url::byte_marks(w, b'\\')
}

/// A JSON string with serde_json's escapes: `"`, `\` and control
/// characters only (short forms where JSON has them, else `\u00XX`).
pub(super) fn string(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.push(b'"');
    if needs_no_escape(b) {
        out.extend_from_slice(b);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if c >= 0x20 && c != b'"' && c != b'\\' {
            continue;
        }
        out.extend_from_slice(&b[start..i]);
        start = i + 1;
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 0xf)]);
            }
        }
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::segment::ParamKind;
    use crate::record::{JwtInfo, PathParam, StringFormat};

    fn same_as_serde(r: &ExchangeRecord) {
        let mut ours = Vec::new();
        r.write_json(&mut ours);
        let theirs = serde_json::to_vec(r).expect("serializes");
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
    }

    fn record() -> ExchangeRecord {
        let json = r#"{"schema":1,"ts":"2023-11-14T22:13:20.001965000Z","client":"10.1.129.146:47824","server":"[2001:db8::1]:80","host":"h","method":"GET","path":"/","version":"1.0","request":{"headers":[],"body":{"framing":"none","wire_bytes":0,"bytes":0}},"auth":{"scheme":"none"},"flags":{}}"#;
        serde_json::from_str(json).expect("record")
    }

    #[test]
    fn minimal_record() {
        same_as_serde(&record());
    }

    #[test]
    fn every_optional_field_and_name() {
        let mut r = record();
        r.latency_us = Some(0);
        r.duration_us = Some(u64::MAX);
        r.query_params = vec!["a".into(), "b\"\\\u{1}\u{8}\u{c}\n\r\t\u{1f}é".into()];
        r.path = "/reset/{token}/{email}".into();
        r.path_params = vec![
            PathParam {
                index: 1,
                kind: ParamKind::Token,
                fingerprint: "00ff".into(),
            },
            PathParam {
                index: 2,
                kind: ParamKind::Email,
                fingerprint: "ff00".into(),
            },
        ];
        r.status = Some(101);
        r.interim = vec![100, 103];
        r.principal = Some("00ff".into());
        r.anomalies = vec!["x".into()];
        r.flags = Flags {
            gap: true,
            truncated: true,
            mid_stream: true,
            unanswered: true,
        };
        r.request.content_type = Some("application/json".into());
        r.request.content_encoding = Some("gzip, br".into());
        r.request.body.decoded_bytes = None;
        r.request.body.form_keys = Some(vec![]);
        r.request.body.sampled = true;
        let fields: Fields = [
            ("n", Shape::Null),
            ("b", Shape::Boolean),
            ("i", Shape::Integer),
            ("f", Shape::Number),
            ("any", Shape::Any),
            ("s", Shape::String { format: None }),
            ("a", Shape::Array { items: None }),
            (
                "q\"",
                Shape::Object {
                    fields: Fields::default(),
                    truncated: true,
                },
            ),
        ]
        .into_iter()
        .collect();
        r.request.body.shape = Some(
            Shape::Array {
                items: Some(Box::new(Shape::Object {
                    fields,
                    truncated: false,
                })),
            }
            .into(),
        );
        r.response = Some(r.request.clone());
        r.auth.key_name = Some("x-api-key".into());
        r.auth.key_in = Some(KeyLocation::Query);
        r.auth.cookies = vec!["sid".into()];
        r.auth.jwt = Some(JwtInfo {
            alg: Some("RS256".into()),
            iss: Some("i".into()),
            aud: vec!["a".into(), "b".into()],
            has_exp: true,
            lifetime_s: Some(-5),
        });
        same_as_serde(&r);
        r.auth.jwt = Some(JwtInfo::default());
        r.flags = Flags {
            mid_stream: true,
            ..Flags::default()
        };
        same_as_serde(&r);
        for f in StringFormat::ALL {
            r.request.body.shape = Some(Shape::String { format: Some(f) }.into());
            same_as_serde(&r);
        }
    }

    /// Each value's name is the string serde writes for it.
    fn names_match<T: serde::Serialize + Copy>(values: &[T], name: fn(T) -> &'static str) {
        for &v in values {
            assert_eq!(serde_json::json!(v).as_str(), Some(name(v)));
        }
    }

    #[test]
    fn enum_names_match_serde() {
        use crate::record::AuthScheme as A;
        use Framing as F;
        use Tunnel as T;
        names_match(&[HttpVersion::Http10, HttpVersion::Http11], version_name);
        let framings = [F::None, F::ContentLength, F::Chunked, F::CloseDelimited];
        names_match(&framings, framing_name);
        names_match(
            &[T::WebSocket, T::H2c, T::OtherUpgrade, T::Connect],
            tunnel_name,
        );
        let schemes = [A::None, A::Basic, A::BearerJwt, A::BearerOpaque];
        names_match(&schemes, A::as_str);
        names_match(&[A::ApiKey, A::Cookie, A::Digest, A::Other], A::as_str);
        names_match(&[KeyLocation::Header, KeyLocation::Query], location_name);
    }

    #[test]
    fn escape_check_is_exact_at_every_position_and_length() {
        for len in 0..40 {
            let plain: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(needs_no_escape(&plain), "len {len}");
            for at in 0..len {
                for bad in [0u8, 0x1f, b'"', b'\\'] {
                    let mut b = plain.clone();
                    b[at] = bad;
                    assert!(!needs_no_escape(&b), "len {len} at {at} byte {bad:#x}");
                }
                for fine in [b' ', b'!', b'#', b'[', b']', 0x7f, 0x80, 0xc3, 0xff] {
                    let mut b = plain.clone();
                    b[at] = fine;
                    assert!(needs_no_escape(&b), "len {len} at {at} byte {fine:#x}");
                }
            }
        }
    }

    #[test]
    fn ipv4_addresses_are_written_as_display_writes_them() {
        for (ip, port) in [
            ([0, 0, 0, 0], 0),
            ([255, 255, 255, 255], 65535),
            ([10, 1, 129, 146], 47824),
            ([1, 20, 100, 9], 80),
            ([99, 100, 101, 10], 9),
        ] {
            let addr = SocketAddr::from((ip, port));
            let mut out = Vec::new();
            socket_addr(&mut out, &addr);
            assert_eq!(
                String::from_utf8(out).expect("utf-8"),
                format!("\"{addr}\"")
            );
        }
    }
}
