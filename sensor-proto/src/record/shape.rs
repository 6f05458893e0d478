//! A bounded, tolerant JSON *shape* scanner.
//!
//! `serde_json` cannot parse the prefix of a document, and a body sample is
//! usually a prefix. This scanner reads whatever bytes it is given and
//! returns the shape of what it saw: keys and value types, never values.
//! Objects cut short (end of sample, syntax error, or a cap) are marked
//! `truncated`.
//!
//! Every dimension is capped by a named constant. Recursion is bounded by
//! [`MAX_DEPTH`]; deeper values are skipped by an iterative bracket counter,
//! so hostile input (`[[[[…`) costs one pass and no stack.
//!
//! A [`ShapeScanner`] is reused from body to body: it keeps its field stack
//! and the table of keys it has already exported ([`super::keys`]), so a
//! key seen before costs one lookup.
//!
//! The record builder now uses the skeleton scanner ([`super::skeleton`]);
//! this tree scanner stays (for now) as the reference the skeleton is
//! tested against, so outside tests most of it is unused.
#![cfg_attr(
    not(test),
    allow(dead_code, reason = "the reference scanner is used by tests only")
)]

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::keys::KeyTable;
use super::url::{clean_text, truncate_on_char, REDACTED_NAME};
use super::values::{
    classified_looks_like_value, classify, key_looks_like_value, string_format, MAX_FORMAT_BYTES,
    NOT_PRINTABLE,
};
use super::Shape;

/// Deepest container level described (top level = 1); deeper values are `any`.
pub const MAX_DEPTH: usize = 8;
/// Most fields kept per object; more set `truncated`.
pub const MAX_FIELDS: usize = 64;
/// Array elements inspected for the `items` shape; the rest are skipped.
pub const MAX_ARRAY_ITEMS: usize = 32;
/// Longest exported object key, in bytes (truncated on a char boundary).
pub const MAX_KEY_BYTES: usize = 64;
/// Bytes of a key examined when deciding whether it looks like a value.
const KEY_SCAN_BYTES: usize = 256;

/// The shape of the JSON text (or prefix) in `b`, or `None` if it does not
/// start with a JSON value (with a scanner of its own).
#[cfg(test)]
pub(crate) fn infer(b: &[u8]) -> Option<Shape> {
    ShapeScanner::default().infer(b)
}

/// True if `b` starts (after whitespace) with `{` or `[`.
pub(crate) fn looks_like_json(b: &[u8]) -> bool {
    matches!(
        b.iter().find(|c| !c.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

/// The shape scanner's state kept between bodies: the exported keys and
/// the (empty between scans) stack of fields.
#[derive(Default)]
pub(crate) struct ShapeScanner {
    keys: KeyTable,
    /// Fields of the objects being scanned, innermost last: (key id, shape).
    fields: Vec<(u32, Shape)>,
}

impl ShapeScanner {
    /// The shape of the JSON text (or prefix) in `b`, or `None` if it does
    /// not start with a JSON value.
    pub(crate) fn infer(&mut self, b: &[u8]) -> Option<Shape> {
        self.keys.trim();
        self.keys.rank_if_due(b.len());
        self.fields.clear();
        let mut s = Scanner {
            b,
            pos: 0,
            stop: false,
            cut: false,
            keys: &mut self.keys,
            fields: &mut self.fields,
        };
        s.skip_ws();
        if s.b[s.pos..].starts_with(b"\xEF\xBB\xBF") {
            s.pos += 3;
            s.skip_ws();
        }
        if s.pos >= s.b.len() {
            return None;
        }
        s.value(1)
    }
}

struct Scanner<'a, 's> {
    b: &'a [u8],
    pos: usize,
    /// Set at end of input or on a syntax error: every open container ends.
    stop: bool,
    /// A container below the current object was skipped by the depth cap.
    cut: bool,
    keys: &'s mut KeyTable,
    fields: &'s mut Vec<(u32, Shape)>,
}

/// Bytes of a string checked a word at a time before searching with
/// `memchr2` (UUIDs and dates fit).
pub(super) const SHORT_STRING: usize = 64;

/// Slots of an object's key index (open addressing, twice [`MAX_FIELDS`]).
pub(super) const INDEX_SLOTS: usize = 2 * MAX_FIELDS;

/// Where a key id starts probing in an object's index.
#[inline]
pub(super) fn index_slot(id: u32) -> usize {
    (id.wrapping_mul(0x9E37_79B9) >> 16) as usize % INDEX_SLOTS
}

/// Number characters: `1` for the characters of an integer, `2` for those
/// that make it a number (`.`, `e`, `E`), `0` for anything that ends it.
pub(super) const NUMBER_CHARS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = b'0';
    while c <= b'9' {
        t[c as usize] = 1;
        c += 1;
    }
    t[b'-' as usize] = 1;
    t[b'+' as usize] = 1;
    t[b'.' as usize] = 2;
    t[b'e' as usize] = 2;
    t[b'E' as usize] = 2;
    t
};

impl<'a> Scanner<'a, '_> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.pos += 1;
        }
    }

    /// One value starting at `pos` (whitespace skipped), at nesting `depth`.
    fn value(&mut self, depth: usize) -> Option<Shape> {
        self.skip_ws();
        let c = match self.peek() {
            Some(c) => c,
            None => {
                self.stop = true;
                return None;
            }
        };
        match c {
            b'{' | b'[' if depth > MAX_DEPTH => {
                self.cut = true;
                self.skip_container();
                Some(Shape::Any)
            }
            b'{' => Some(self.object(depth)),
            b'[' => Some(self.array(depth)),
            b'"' => {
                let (raw, escaped, _complete) = self.string();
                Some(Shape::String {
                    format: format_of(raw, escaped),
                })
            }
            b'-' | b'0'..=b'9' => Some(self.number()),
            b't' | b'f' | b'n' => self.literal(c),
            _ => {
                self.stop = true;
                None
            }
        }
    }

    fn object(&mut self, depth: usize) -> Shape {
        self.pos += 1; // '{'
        let base = self.fields.len();
        // `index[slot]` is 1 + the field's offset from `base`, 0 if free.
        let mut index = [0u8; INDEX_SLOTS];
        let mut truncated = false;
        // Depth cuts are reported by the nearest enclosing object.
        let outer_cut = std::mem::take(&mut self.cut);
        loop {
            self.skip_ws();
            match self.peek() {
                None => {
                    self.stop = true;
                    truncated = true;
                    break;
                }
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                Some(b',') => self.pos += 1,
                Some(b'"') => {
                    let (raw, escaped, complete) = self.string();
                    self.skip_ws();
                    if !complete || self.peek() != Some(b':') {
                        self.stop = true;
                        truncated = true;
                        break;
                    }
                    self.pos += 1;
                    let id = self.keys.intern(raw, escaped);
                    let mut slot = index_slot(id);
                    let mut known = None;
                    while index[slot] != 0 {
                        let i = base + usize::from(index[slot]) - 1;
                        if self.fields[i].0 == id {
                            known = Some(i);
                            break;
                        }
                        slot = (slot + 1) % INDEX_SLOTS;
                    }
                    let len = self.fields.len() - base;
                    if let Some(i) = known {
                        let mut prev = std::mem::replace(&mut self.fields[i].1, Shape::Null);
                        if !self.merge_value(depth + 1, &mut prev) {
                            truncated = true;
                        }
                        self.fields[i].1 = prev;
                    } else if len >= MAX_FIELDS {
                        truncated = true;
                        self.skip_ws();
                        self.skip_value();
                    } else {
                        match self.value(depth + 1) {
                            Some(shape) => {
                                // Nested objects have put back what they took.
                                debug_assert_eq!(self.fields.len() - base, len);
                                index[slot] = u8::try_from(len + 1).unwrap_or(u8::MAX);
                                self.fields.push((id, shape));
                            }
                            None => truncated = true,
                        }
                    }
                }
                Some(_) => {
                    self.stop = true;
                    truncated = true;
                }
            }
            if self.stop {
                truncated = true;
                break;
            }
        }
        truncated |= self.cut;
        self.cut = outer_cut;
        let fields = self.take_fields(base);
        Shape::Object { fields, truncated }
    }

    /// The fields from `base` up, sorted by key, as [`Fields`] (popped).
    fn take_fields(&mut self, base: usize) -> Fields {
        let keys = &*self.keys;
        let stack = &mut self.fields[base..];
        // When every key is ranked, sort (rank, offset) words: the ranks
        // are in key order.
        let mut ranked = [0u32; MAX_FIELDS];
        let ranked = &mut ranked[..stack.len()];
        let all_ranked = ranked
            .iter_mut()
            .zip(stack.iter())
            .enumerate()
            .all(|(i, (o, f))| match keys.rank(f.0) {
                Some(r) => {
                    *o = (r << 8) | u32::try_from(i).unwrap_or(u32::MAX);
                    r < (1 << 24)
                }
                None => false,
            });
        if all_ranked {
            ranked.sort_unstable();
            return self.fields_in_order(base, ranked.iter().map(|&o| (o & 0xff) as u8));
        }
        // Sorted through a small index of (first sixteen bytes, offset): the
        // stack entries themselves are large.
        let mut order = [(0u128, 0u8); MAX_FIELDS];
        let order = &mut order[..stack.len()];
        for (i, (o, f)) in order.iter_mut().zip(stack.iter()).enumerate() {
            *o = (keys.prefix(f.0), u8::try_from(i).unwrap_or(u8::MAX));
        }
        let text = |i: u8| keys.text(stack[usize::from(i)].0).as_bytes();
        order.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| key_cmp(text(a.1), text(b.1))));
        self.fields_in_order(base, order.iter().map(|&(_, i)| i))
    }

    /// The fields from `base` up, taken in `order` (offsets from `base`),
    /// as [`Fields`] (popped).
    #[inline]
    fn fields_in_order(&mut self, base: usize, order: impl ExactSizeIterator<Item = u8>) -> Fields {
        let keys = &*self.keys;
        let stack = &mut self.fields[base..];
        let names_len = stack.iter().map(|f| keys.text(f.0).len()).sum();
        let mut names = String::with_capacity(names_len);
        let mut entries = Vec::with_capacity(order.len());
        for i in order {
            let f = &mut stack[usize::from(i)];
            names.push_str(keys.text(f.0));
            entries.push((end_offset(&names), std::mem::replace(&mut f.1, Shape::Null)));
        }
        self.fields.truncate(base);
        Fields {
            names: names.into_boxed_str(),
            entries: entries.into_boxed_slice(),
        }
    }

    fn array(&mut self, depth: usize) -> Shape {
        self.pos += 1; // '['
        let mut items: Option<Shape> = None;
        let mut seen = 0usize;
        loop {
            self.skip_ws();
            match self.peek() {
                None => {
                    self.stop = true;
                    break;
                }
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                Some(b',') => self.pos += 1,
                Some(_) if seen >= MAX_ARRAY_ITEMS => {
                    self.skip_value();
                }
                Some(_) => {
                    seen += 1;
                    match &mut items {
                        Some(prev) => {
                            self.merge_value(depth + 1, prev);
                        }
                        None => items = self.value(depth + 1),
                    }
                }
            }
            if self.stop {
                break;
            }
        }
        Shape::Array {
            items: items.map(Box::new),
        }
    }

    /// Scans one value and merges it into `prev` as [`merge`] would, without
    /// building a shape for a scalar; false if there was no value.
    fn merge_value(&mut self, depth: usize, prev: &mut Shape) -> bool {
        self.skip_ws();
        match (self.peek(), &mut *prev) {
            (Some(b'"'), Shape::String { format }) => {
                let (raw, escaped, _complete) = self.string();
                // A format survives only if every string has it.
                if format.is_some() && *format != format_of(raw, escaped) {
                    *format = None;
                }
                true
            }
            (Some(b'"'), _) => {
                self.string();
                *prev = Shape::Any;
                true
            }
            (Some(b'-' | b'0'..=b'9'), Shape::Integer | Shape::Number) => {
                if self.number() == Shape::Number {
                    *prev = Shape::Number;
                }
                true
            }
            _ => match self.value(depth) {
                Some(shape) => {
                    let p = std::mem::replace(prev, Shape::Null);
                    *prev = merge(p, shape);
                    true
                }
                None => false,
            },
        }
    }

    /// A string at `pos` (on its opening quote): the raw bytes between the
    /// quotes, whether it contains escapes, whether the closing quote was seen.
    /// Always inlined: a call's register saves cost as much as a short key.
    #[inline(always)]
    fn string(&mut self) -> (&'a [u8], bool, bool) {
        let start = self.pos + 1;
        // Most keys and values are short: look at a few words before
        // paying for a vectorised search.
        let rest = self.b.get(start..).unwrap_or_default();
        let mut clean = 0;
        for word in rest.chunks_exact(8).take(SHORT_STRING / 8) {
            let word = <[u8; 8]>::try_from(word).map_or(0, u64::from_le_bytes);
            let found = quote_or_backslash(word);
            if found != 0 {
                let at = start + clean + (found.trailing_zeros() / 8) as usize;
                if self.b[at] == b'"' {
                    self.pos = at + 1;
                    return (&self.b[start..at], false, true);
                }
                break;
            }
            clean += 8;
        }
        self.string_slow(start, start + clean)
    }

    /// [`Self::string`] from `from` on, the bytes from `start` to `from`
    /// having neither quote nor backslash.
    fn string_slow(&mut self, start: usize, from: usize) -> (&'a [u8], bool, bool) {
        let mut i = from;
        let mut escaped = false;
        while let Some(off) = memchr::memchr2(b'"', b'\\', &self.b[i.min(self.b.len())..]) {
            let at = i + off;
            if self.b[at] == b'"' {
                self.pos = at + 1;
                return (&self.b[start..at], escaped, true);
            }
            escaped = true;
            i = at + 2;
        }
        self.pos = self.b.len();
        self.stop = true;
        (&self.b[start.min(self.b.len())..], escaped, false)
    }

    #[inline]
    fn number(&mut self) -> Shape {
        let mut kinds = 0u8;
        while let Some(c) = self.peek() {
            let k = NUMBER_CHARS[usize::from(c)];
            if k == 0 {
                break;
            }
            kinds |= k;
            self.pos += 1;
        }
        if kinds & 2 == 0 {
            Shape::Integer
        } else {
            Shape::Number
        }
    }

    fn literal(&mut self, first: u8) -> Option<Shape> {
        let word: &[u8] = match first {
            b't' => b"true",
            b'f' => b"false",
            _ => b"null",
        };
        let rest = &self.b[self.pos..];
        let n = rest.len().min(word.len());
        if rest[..n] != word[..n] {
            self.stop = true;
            return None;
        }
        self.pos += n;
        if n < word.len() {
            self.stop = true;
        }
        Some(if first == b'n' {
            Shape::Null
        } else {
            Shape::Boolean
        })
    }

    /// Skips one value of any depth without recursion.
    fn skip_value(&mut self) {
        match self.peek() {
            Some(b'{' | b'[') => self.skip_container(),
            Some(b'"') => {
                self.string();
            }
            Some(_) => {
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace() {
                        break;
                    }
                    self.pos += 1;
                }
            }
            None => self.stop = true,
        }
    }

    /// Skips a container at `pos` by counting brackets (strings skipped whole).
    fn skip_container(&mut self) {
        let mut open: u64 = 0;
        while let Some(c) = self.peek() {
            match c {
                b'"' => {
                    self.string();
                    continue;
                }
                b'{' | b'[' => open += 1,
                b'}' | b']' => {
                    open = open.saturating_sub(1);
                    if open == 0 {
                        self.pos += 1;
                        return;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        self.stop = true;
    }
}

/// The format of a string value given as its raw bytes: none for strings
/// with escapes or longer than [`MAX_FORMAT_BYTES`].
#[inline]
pub(super) fn format_of(raw: &[u8], escaped: bool) -> Option<super::StringFormat> {
    if escaped || raw.len() > MAX_FORMAT_BYTES {
        None
    } else {
        string_format(raw)
    }
}

/// Byte-wise order of two keys (the order of their `String`s), comparing
/// eight bytes at a time.
pub(super) fn key_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let (x, y) = (word(x), word(y));
        if x != y {
            return x.cmp(&y);
        }
    }
    let n = (a.len().min(b.len()) / 8) * 8;
    a[n..].cmp(&b[n..])
}

/// The bytes of `word` (little-endian) that are `"` or `\`, each marked by
/// its high bit; marks above the lowest one may be false.
pub(super) fn quote_or_backslash(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    zero_byte(word ^ (ONES * u64::from(b'"'))) | zero_byte(word ^ (ONES * u64::from(b'\\')))
}

fn word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(b);
    u64::from_be_bytes(w)
}

/// Merges two element shapes: same types merge, objects take the union of
/// their fields, `integer` + `number` is `number`, anything else is `any`.
/// Recursion is bounded by the depth of the shapes (at most [`MAX_DEPTH`]).
pub(crate) fn merge(a: Shape, b: Shape) -> Shape {
    match (a, b) {
        (Shape::Null, Shape::Null) => Shape::Null,
        (Shape::Boolean, Shape::Boolean) => Shape::Boolean,
        (Shape::Integer, Shape::Integer) => Shape::Integer,
        (Shape::Integer | Shape::Number, Shape::Integer | Shape::Number) => Shape::Number,
        (Shape::String { format: fa }, Shape::String { format: fb }) => Shape::String {
            format: if fa == fb { fa } else { None },
        },
        (Shape::Array { items: ia }, Shape::Array { items: ib }) => Shape::Array {
            items: match (ia, ib) {
                (Some(mut x), Some(y)) => {
                    let prev = std::mem::replace(&mut *x, Shape::Null);
                    *x = merge(prev, *y);
                    Some(x)
                }
                (x, y) => x.or(y),
            },
        },
        (
            Shape::Object {
                fields: fa,
                truncated: ta,
            },
            Shape::Object {
                fields: fb,
                truncated: tb,
            },
        ) => {
            let (fields, cut) = fa.union(fb);
            Shape::Object {
                fields,
                truncated: ta || tb || cut,
            }
        }
        _ => Shape::Any,
    }
}

/// The exported form of an object key: cleaned, capped, or [`REDACTED_NAME`]
/// when it looks like a value (map-shaped JSON keyed by ids or emails).
pub(crate) fn export_key(raw: &[u8]) -> Cow<'_, [u8]> {
    let raw = &raw[..raw.len().min(KEY_SCAN_BYTES)];
    let class = classify(raw);
    if class & NOT_PRINTABLE == 0 {
        // Printable ASCII: `clean_text` would return it unchanged.
        if classified_looks_like_value(raw, class) {
            return Cow::Borrowed(REDACTED_NAME.as_bytes());
        }
        return Cow::Borrowed(&raw[..raw.len().min(MAX_KEY_BYTES)]);
    }
    let key = clean_text(raw, KEY_SCAN_BYTES);
    if key_looks_like_value(&key) {
        return Cow::Borrowed(REDACTED_NAME.as_bytes());
    }
    let mut key = key;
    truncate_on_char(&mut key, MAX_KEY_BYTES);
    Cow::Owned(key.into_bytes())
}

/// The length of `names` as a key end offset.
fn end_offset(names: &str) -> u32 {
    u32::try_from(names.len()).unwrap_or(u32::MAX)
}

/// The fields of a [`Shape::Object`]: key → shape, sorted by key (byte-wise,
/// like `String`'s order), without duplicate keys. Serialized as a JSON object.
///
/// All keys of an object share one allocation.
#[derive(Clone, Default, PartialEq)]
pub struct Fields {
    /// The keys, concatenated in order.
    names: Box<str>,
    /// Each field's shape and the end offset of its key in `names`.
    entries: Box<[(u32, Shape)]>,
}

impl Fields {
    /// Number of fields.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if there are no fields.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The fields in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Shape)> + '_ {
        let mut start = 0usize;
        self.entries.iter().map(move |(end, shape)| {
            let end = *end as usize;
            let key = &self.names[start..end];
            start = end;
            (key, shape)
        })
    }

    /// All keys, concatenated in order.
    pub(crate) fn names(&self) -> &str {
        &self.names
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// The shape of field `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Shape> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The union of two field sets as [`merge`] defines it: shared keys
    /// merge, keys only in `other` are added (in key order) while there are
    /// fewer than [`MAX_FIELDS`]; true if some were left out.
    fn union(self, other: Fields) -> (Fields, bool) {
        let mut names = String::with_capacity(self.names.len() + other.names.len());
        let mut entries = Vec::with_capacity(self.entries.len() + other.entries.len());
        let mut cut = false;
        let mut room = MAX_FIELDS.saturating_sub(self.entries.len());
        let mut a = FieldDrain::new(self);
        let mut b = FieldDrain::new(other);
        let (mut x, mut y) = (a.next(), b.next());
        loop {
            let order = match (&x, &y) {
                (Some((ka, _)), Some((kb, _))) => a.key(ka).cmp(b.key(kb)),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => break,
            };
            match order {
                Ordering::Less => {
                    if let Some((k, v)) = x.take() {
                        names.push_str(a.key(&k));
                        entries.push((end_offset(&names), v));
                    }
                    x = a.next();
                }
                Ordering::Greater => {
                    if let Some((k, v)) = y.take() {
                        if room > 0 {
                            room -= 1;
                            names.push_str(b.key(&k));
                            entries.push((end_offset(&names), v));
                        } else {
                            cut = true;
                        }
                    }
                    y = b.next();
                }
                Ordering::Equal => {
                    if let (Some((k, va)), Some((_, vb))) = (x.take(), y.take()) {
                        names.push_str(a.key(&k));
                        entries.push((end_offset(&names), merge(va, vb)));
                    }
                    x = a.next();
                    y = b.next();
                }
            }
        }
        let fields = Fields {
            names: names.into_boxed_str(),
            entries: entries.into_boxed_slice(),
        };
        (fields, cut)
    }
}

/// Takes the shapes out of a [`Fields`], keeping its keys to look at.
struct FieldDrain {
    names: Box<str>,
    entries: std::vec::IntoIter<(u32, Shape)>,
    start: usize,
}

impl FieldDrain {
    fn new(f: Fields) -> Self {
        FieldDrain {
            names: f.names,
            entries: f.entries.into_vec().into_iter(),
            start: 0,
        }
    }

    /// The next field: its key's byte range in `names`, and its shape.
    fn next(&mut self) -> Option<(std::ops::Range<usize>, Shape)> {
        let (end, shape) = self.entries.next()?;
        let end = end as usize;
        let range = self.start..end;
        self.start = end;
        Some((range, shape))
    }

    fn key(&self, r: &std::ops::Range<usize>) -> &str {
        &self.names[r.clone()]
    }
}

impl<K: AsRef<str>> FromIterator<(K, Shape)> for Fields {
    /// Sorts by key; of duplicate keys the last one wins (as in a map).
    fn from_iter<I: IntoIterator<Item = (K, Shape)>>(iter: I) -> Self {
        let mut all: Vec<(K, Shape)> = iter.into_iter().collect();
        all.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        let mut names = String::new();
        let mut entries: Vec<(u32, Shape)> = Vec::with_capacity(all.len());
        let mut last: Option<K> = None;
        for (k, v) in all {
            match (&last, entries.last_mut()) {
                (Some(prev), Some(slot)) if prev.as_ref() == k.as_ref() => slot.1 = v,
                _ => {
                    names.push_str(k.as_ref());
                    entries.push((end_offset(&names), v));
                    last = Some(k);
                }
            }
        }
        Fields {
            names: names.into_boxed_str(),
            entries: entries.into_boxed_slice(),
        }
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of field shapes")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut all: Vec<(String, Shape)> = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    all.push(entry);
                }
                Ok(all.into_iter().collect())
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// Decodes JSON string escapes (lossy: bad escapes are kept literally, lone
/// surrogates become U+FFFD). Input is capped at [`KEY_SCAN_BYTES`].
pub(crate) fn unescape(raw: &[u8]) -> Vec<u8> {
    let raw = &raw[..raw.len().min(KEY_SCAN_BYTES)];
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' || i + 1 >= raw.len() {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        let c = raw[i + 1];
        i += 2;
        let ch = match c {
            b'n' => '\n',
            b't' => '\t',
            b'r' => '\r',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'u' => {
                let hex = raw.get(i..i + 4).and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u32::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        i += 4;
                        char::from_u32(v).unwrap_or(char::REPLACEMENT_CHARACTER)
                    }
                    None => char::REPLACEMENT_CHARACTER,
                }
            }
            other => char::from(other),
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape_json(s: &[u8]) -> String {
        serde_json::to_string(&infer(s)).unwrap()
    }

    #[test]
    fn shapes() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "null"),
            (b"  ", "null"),
            (b"nope", "null"),
            (b"1", r#"{"type":"integer"}"#),
            (b"-1.5e3", r#"{"type":"number"}"#),
            (b"true", r#"{"type":"boolean"}"#),
            (b"nu", r#"{"type":"null"}"#),
            (b"\"x\"", r#"{"type":"string"}"#),
            (b"[]", r#"{"type":"array"}"#),
            (b"[1,2.5]", r#"{"type":"array","items":{"type":"number"}}"#),
            (b"[1,\"a\"]", r#"{"type":"array","items":{"type":"any"}}"#),
            (
                b"{\"a\":1,\"b\":{\"c\":null}}",
                r#"{"type":"object","fields":{"a":{"type":"integer"},"b":{"type":"object","fields":{"c":{"type":"null"}}}}}"#,
            ),
            (
                b"{\"a\":1,\"b\":\"trunc",
                r#"{"type":"object","fields":{"a":{"type":"integer"},"b":{"type":"string"}},"truncated":true}"#,
            ),
            (
                b"{\"a\":1,\"b",
                r#"{"type":"object","fields":{"a":{"type":"integer"}},"truncated":true}"#,
            ),
            (
                b"[{\"a\":1},{\"b\":true,\"a\":2.0}]",
                r#"{"type":"array","items":{"type":"object","fields":{"a":{"type":"number"},"b":{"type":"boolean"}}}}"#,
            ),
            (
                b"{\"k\\u0065y\":1,\"q\\\"\":2}",
                r#"{"type":"object","fields":{"key":{"type":"integer"},"q\"":{"type":"integer"}}}"#,
            ),
            (
                b"{\"123\":1,\"alice@example.com\":2,\"a\":3}",
                r#"{"type":"object","fields":{"a":{"type":"integer"},"{key}":{"type":"integer"}}}"#,
            ),
            (b"\xEF\xBB\xBF{}", r#"{"type":"object","fields":{}}"#),
            (
                b"{\"a\" 1}",
                r#"{"type":"object","fields":{},"truncated":true}"#,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                shape_json(input),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn fields_sort_like_strings_and_round_trip() {
        let keys = [
            "amount_10",
            "amount_1",
            "amount_",
            "amount_12",
            "b",
            "a",
            "é",
            "amount_100000",
            "z~",
        ];
        let mut doc = String::from("{");
        for k in keys {
            doc.push_str(&format!("{}:1,", serde_json::to_string(k).unwrap()));
        }
        doc.push_str("\"a\":2.5}");
        let shape = infer(doc.as_bytes()).unwrap();
        let Shape::Object { fields, .. } = &shape else {
            panic!("{shape:?}");
        };
        let mut want: Vec<&str> = keys.to_vec();
        want.sort_unstable();
        assert_eq!(fields.keys().collect::<Vec<_>>(), want);
        assert_eq!(fields.get("a"), Some(&Shape::Number));
        let json = serde_json::to_string(&shape).unwrap();
        let back: Shape = serde_json::from_str(&json).unwrap();
        assert_eq!(back, shape);
        // Collected fields: sorted, the last of duplicate keys wins.
        let f: Fields = [("b", Shape::Null), ("a", Shape::Null), ("b", Shape::Any)]
            .into_iter()
            .collect();
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"a":{"type":"null"},"b":{"type":"any"}}"#
        );
    }

    #[test]
    fn ranked_keys_sort_like_unranked_ones() {
        // A reused scanner ranks its keys once enough bytes were scanned;
        // the shapes stay those of a fresh scanner, new keys included.
        let docs: Vec<String> = (0..200)
            .map(|i| {
                let mut d = String::from("{");
                for k in [
                    "b",
                    "a",
                    "amount_12",
                    "amount_1",
                    "\\u00e9",
                    "Z",
                    "amount_100000000001",
                ] {
                    d.push_str(&format!("\"{k}\":{i},"));
                }
                d.push_str(&format!("\"new_{}\":[{{\"z\":1,\"y{i}\":2}}]}}", i % 7));
                d
            })
            .collect();
        let mut scanner = ShapeScanner::default();
        for d in &docs {
            assert_eq!(scanner.infer(d.as_bytes()), infer(d.as_bytes()), "{d}");
        }
        assert!(scanner.keys.rank(0).is_some());
    }

    #[test]
    fn strings_end_at_the_first_quote_or_escape() {
        // Quotes and escapes at every offset of the word-wise search.
        for len in 0..80 {
            let text = "k".repeat(len);
            let doc = format!("{{\"{text}\":1,\"{text}\\u0041\":\"v{text}\\\"\"}}");
            let shape = infer(doc.as_bytes()).unwrap();
            let Shape::Object { fields, truncated } = &shape else {
                panic!("{shape:?}");
            };
            assert!(!truncated, "{doc}");
            // Keys are capped at MAX_KEY_BYTES (all ASCII here).
            let cap = |k: String| k[..k.len().min(MAX_KEY_BYTES)].to_owned();
            let mut want = vec![cap(text.clone()), cap(format!("{text}A"))];
            want.sort();
            want.dedup();
            assert_eq!(fields.keys().collect::<Vec<_>>(), want, "{doc}");
        }
        assert_eq!(quote_or_backslash(u64::from_le_bytes(*b"abcdefgh")), 0);
        let found = quote_or_backslash(u64::from_le_bytes(*b"ab\\\"efgh"));
        assert_eq!(found.trailing_zeros() / 8, 2);
    }

    #[test]
    fn hostile_nesting_is_bounded() {
        let deep = vec![b'['; 100_000];
        let s = infer(&deep).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.matches("array").count() <= MAX_DEPTH);
        let mut deep_obj = Vec::new();
        for _ in 0..50_000 {
            deep_obj.extend_from_slice(b"{\"a\":");
        }
        let s = infer(&deep_obj).unwrap();
        assert!(serde_json::to_string(&s).unwrap().contains("truncated"));
        // Closed deep nesting followed by more fields: the scanner resumes.
        let mut v = b"{\"deep\":".to_vec();
        v.extend(std::iter::repeat_n(b'[', 1000));
        v.extend(std::iter::repeat_n(b']', 1000));
        v.extend_from_slice(b",\"after\":1}");
        let json = serde_json::to_string(&infer(&v).unwrap()).unwrap();
        assert!(json.contains("\"after\":{\"type\":\"integer\"}"), "{json}");
        assert!(json.contains("\"truncated\":true"), "{json}");
    }

    #[test]
    fn caps_width_and_keys() {
        let mut v = b"{".to_vec();
        for i in 0..200 {
            v.extend_from_slice(format!("\"field_{i}_x\":{i},").as_bytes());
        }
        v.extend_from_slice(b"\"z\":1}");
        match infer(&v).unwrap() {
            Shape::Object { fields, truncated } => {
                assert_eq!(fields.len(), MAX_FIELDS);
                assert!(truncated);
            }
            other => panic!("{other:?}"),
        }
        let huge = format!("{{\"{}\":1}}", "k_".repeat(50_000));
        match infer(huge.as_bytes()).unwrap() {
            Shape::Object { fields, .. } => {
                assert!(fields.keys().all(|k| k.len() <= MAX_KEY_BYTES));
            }
            other => panic!("{other:?}"),
        }
        let arr = format!("[{}1]", "\"s\",".repeat(1000));
        assert_eq!(
            shape_json(arr.as_bytes()),
            r#"{"type":"array","items":{"type":"string"}}"#
        );
    }

    #[test]
    fn invalid_utf8_and_garbage_never_panic() {
        let inputs: &[&[u8]] = &[
            b"{\"\xff\xfe\":1}",
            b"{\"a\":\"\xff",
            b"[\"\\",
            b"{\"a\":\\u",
            b"{\"\\ud800\":1}",
            b"[tru, fals, nul]",
            b"{,,,:}",
            b"]]]]}}}}",
            b"[-,.,e]",
        ];
        for i in inputs {
            let _ = infer(i);
        }
        // Every prefix of a realistic document.
        let doc = br#"{"user":{"id":1,"email":"a@b.co","tags":["x",{"k":[1,2]}]},"ok":true}"#;
        for n in 0..=doc.len() {
            let _ = infer(&doc[..n]);
        }
        assert_eq!(
            shape_json(b"{\"\xff\":1}"),
            r#"{"type":"object","fields":{"\ufffd":{"type":"integer"}}}"#
                .replace("\\ufffd", "\u{fffd}")
        );
    }
}
