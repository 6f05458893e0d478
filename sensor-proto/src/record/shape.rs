//! JSON body shapes: the caps, object [`Fields`] and exported keys.
//!
//! A body's shape is scanned by [`super::skeleton`]; this module holds what
//! the scanner and the record's readers share: the named caps on a shape
//! ([`MAX_DEPTH`], [`MAX_FIELDS`], [`MAX_ARRAY_ITEMS`], [`MAX_KEY_BYTES`]),
//! the [`Fields`] of a [`Shape::Object`] as a reader holds them, and how an
//! object key is exported (cleaned, capped, or [`REDACTED_NAME`] when it
//! looks like a value).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::url::{clean_text, truncate_on_char, REDACTED_NAME};
use super::values::{
    classified_looks_like_value, classify, key_looks_like_value, string_format, MAX_FORMAT_BYTES,
    NOT_PRINTABLE,
};
use super::{Shape, StringFormat};

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

/// True if `b` starts (after whitespace) with `{` or `[`.
pub(crate) fn looks_like_json(b: &[u8]) -> bool {
    matches!(
        b.iter().find(|c| !c.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
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

    /// Fields from keys already sorted and unique, in order; `names_len`
    /// is the keys' total length (a hint: exact, the names are allocated
    /// once and never shrunk).
    pub(crate) fn from_sorted<'k>(
        names_len: usize,
        sorted: impl ExactSizeIterator<Item = (&'k str, Shape)>,
    ) -> Self {
        let mut names = String::with_capacity(names_len);
        let mut entries = Vec::with_capacity(sorted.len());
        for (k, v) in sorted {
            names.push_str(k);
            entries.push((end_offset(&names), v));
        }
        Fields {
            names: names.into_boxed_str(),
            entries: entries.into_boxed_slice(),
        }
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

/// The kinds a shape's `type` names.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ShapeType {
    Null,
    Boolean,
    Integer,
    Number,
    String,
    Array,
    Object,
    Any,
}

/// The keys of a shape object; others are skipped.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum ShapeKey {
    Type,
    Format,
    Items,
    Fields,
    Truncated,
    #[serde(other)]
    Other,
}

impl ShapeKey {
    /// Whether a shape of `kind` has this key; while the kind is not known
    /// yet, every key but [`ShapeKey::Other`] may belong to it.
    fn belongs_to(&self, kind: Option<&ShapeType>) -> bool {
        matches!(
            (self, kind),
            (ShapeKey::Type, _)
                | (
                    ShapeKey::Format | ShapeKey::Items | ShapeKey::Fields | ShapeKey::Truncated,
                    None
                )
                | (ShapeKey::Format, Some(ShapeType::String))
                | (ShapeKey::Items, Some(ShapeType::Array))
                | (
                    ShapeKey::Fields | ShapeKey::Truncated,
                    Some(ShapeType::Object)
                )
        )
    }
}

/// Reads the value of the key `name` into `slot`; a second one is an error.
fn once<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
    slot: &mut Option<T>,
    name: &'static str,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

/// Reads a shape object as the serialised form has it (`type` and the
/// kind's own keys), in one pass in any key order. Keys that the kind does
/// not have are skipped, as serde's derive would; one that comes before
/// `type` is read as the kind that has it, so a malformed value there is an
/// error even when the kind turns out not to use it.
impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ShapeVisitor;
        impl<'de> Visitor<'de> for ShapeVisitor {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a shape: an object with a `type`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
                let mut kind: Option<ShapeType> = None;
                let mut format: Option<Option<StringFormat>> = None;
                let mut items: Option<Option<Box<Shape>>> = None;
                let mut fields: Option<Fields> = None;
                let mut truncated: Option<bool> = None;
                while let Some(key) = map.next_key::<ShapeKey>()? {
                    // A key the kind (once known) does not have is skipped.
                    if !key.belongs_to(kind.as_ref()) {
                        map.next_value::<de::IgnoredAny>()?;
                        continue;
                    }
                    match key {
                        ShapeKey::Type => once(&mut map, &mut kind, "type")?,
                        ShapeKey::Format => once(&mut map, &mut format, "format")?,
                        ShapeKey::Items => once(&mut map, &mut items, "items")?,
                        ShapeKey::Fields => once(&mut map, &mut fields, "fields")?,
                        ShapeKey::Truncated => once(&mut map, &mut truncated, "truncated")?,
                        // Skipped above; read past here too, should that change.
                        ShapeKey::Other => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(
                    match kind.ok_or_else(|| de::Error::missing_field("type"))? {
                        ShapeType::Null => Shape::Null,
                        ShapeType::Boolean => Shape::Boolean,
                        ShapeType::Integer => Shape::Integer,
                        ShapeType::Number => Shape::Number,
                        ShapeType::String => Shape::String {
                            format: format.flatten(),
                        },
                        ShapeType::Array => Shape::Array {
                            items: items.flatten(),
                        },
                        ShapeType::Object => Shape::Object {
                            fields: fields.ok_or_else(|| de::Error::missing_field("fields"))?,
                            truncated: truncated.unwrap_or(false),
                        },
                        ShapeType::Any => Shape::Any,
                    },
                )
            }
        }
        deserializer.deserialize_map(ShapeVisitor)
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

    fn shape(json: &str) -> Result<Shape, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// A shape with every kind, nested three deep.
    fn every_kind() -> Shape {
        let inner: Fields = [
            ("n", Shape::Null),
            ("b", Shape::Boolean),
            ("i", Shape::Integer),
            ("x", Shape::Number),
            ("s", Shape::String { format: None }),
            (
                "u",
                Shape::String {
                    format: Some(StringFormat::Uuid),
                },
            ),
            ("e", Shape::Array { items: None }),
            ("a", Shape::Any),
        ]
        .into_iter()
        .collect();
        let middle: Fields = [
            (
                "list",
                Shape::Array {
                    items: Some(Box::new(Shape::Object {
                        fields: inner,
                        truncated: true,
                    })),
                },
            ),
            ("id", Shape::Integer),
        ]
        .into_iter()
        .collect();
        Shape::Object {
            fields: [(
                "data",
                Shape::Object {
                    fields: middle,
                    truncated: false,
                },
            )]
            .into_iter()
            .collect(),
            truncated: false,
        }
    }

    #[test]
    fn shapes_read_back_in_any_key_order() {
        let s = every_kind();
        // As written: `type` first.
        let written = serde_json::to_string(&s).unwrap();
        assert!(written.starts_with(r#"{"type":"object""#), "{written}");
        assert_eq!(shape(&written).unwrap(), s);
        // Through a `Value`, whose maps sort their keys: `type` comes after
        // `fields`, `format`, `items` and `truncated`.
        let sorted = serde_json::to_string(&serde_json::to_value(&s).unwrap()).unwrap();
        assert!(sorted.starts_with(r#"{"fields":"#), "{sorted}");
        assert_ne!(sorted, written);
        assert_eq!(shape(&sorted).unwrap(), s);
    }

    #[test]
    fn keys_a_kind_does_not_have_are_skipped() {
        assert_eq!(
            shape(r#"{"type":"integer","fields":5,"items":"x","format":[1],"extra":{"a":1}}"#)
                .unwrap(),
            Shape::Integer
        );
        assert_eq!(
            shape(r#"{"type":"string","format":"email","truncated":"no"}"#).unwrap(),
            Shape::String {
                format: Some(StringFormat::Email)
            }
        );
        assert_eq!(
            shape(r#"{"items":null,"type":"array"}"#).unwrap(),
            Shape::Array { items: None }
        );
        assert_eq!(
            shape(r#"{"fields":{},"type":"object"}"#).unwrap(),
            Shape::Object {
                fields: Fields::default(),
                truncated: false
            }
        );
    }

    #[test]
    fn malformed_shapes_are_errors_that_name_the_problem() {
        for (json, says) in [
            (r#"{"format":"uuid"}"#, "missing field `type`"),
            (r#"{"type":"object"}"#, "missing field `fields`"),
            (r#"{"type":"tuple"}"#, "unknown variant `tuple`"),
            (r#"{"type":"null","type":"null"}"#, "duplicate field `type`"),
            (
                r#"{"type":"object","fields":{},"fields":{}}"#,
                "duplicate field `fields`",
            ),
            (
                r#"{"type":"string","format":"colour"}"#,
                "unknown variant `colour`",
            ),
            (
                r#"{"type":"object","fields":{"a":{}}}"#,
                "missing field `type`",
            ),
            (r#"{"type":"object","fields":[]}"#, "a map of field shapes"),
            (r#"{"fields":5,"type":"integer"}"#, "a map of field shapes"),
            (r#""integer""#, "a shape: an object with a `type`"),
            (
                r#"{"type":"object","fields":{"a":{"type":"boolean"}}"#,
                "EOF",
            ),
        ] {
            let e = shape(json).expect_err(json).to_string();
            assert!(e.contains(says), "{json}: {e}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_by_the_json_reader() {
        // serde_json's recursion limit (128) applies through the visitor.
        let mut json = String::new();
        for _ in 0..200 {
            json.push_str(r#"{"type":"array","items":"#);
        }
        json.push_str(r#"{"type":"null"}"#);
        json.push_str(&"}".repeat(200));
        let e = shape(&json).expect_err("too deep").to_string();
        assert!(e.contains("recursion limit"), "{e}");
    }
}
