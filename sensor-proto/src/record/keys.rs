//! Interned object keys for the shape scanner.
//!
//! API payloads repeat their keys: in every element of an array and in
//! every body an endpoint returns. [`KeyTable`] remembers the exported form
//! (cleaned, capped, or [`REDACTED_NAME`]) of the raw keys it has seen and
//! numbers the distinct exported keys, so a repeated key costs one hash
//! lookup instead of the value-likeness checks, and the fields of an object
//! are told apart by number.
//!
//! The table is bounded: when it holds more than [`KEY_CACHE_MAX_KEYS`] raw
//! keys or [`KEY_CACHE_MAX_BYTES`] of key text at the start of a scan, it
//! is emptied (one scan adds at most what its sample holds). Only keys are
//! kept, never values; a raw key that looks like a value (exported as
//! [`REDACTED_NAME`]) is not remembered, and no raw key leaves the table.

use std::borrow::Cow;

use rustc_hash::FxHashMap;

use super::shape::{export_key, unescape, MAX_KEY_BYTES};
use super::url::REDACTED_NAME;

/// Raw keys remembered before the table is emptied (checked between scans).
pub const KEY_CACHE_MAX_KEYS: usize = 4096;
/// Raw plus exported key bytes remembered before the table is emptied.
pub const KEY_CACHE_MAX_BYTES: usize = 256 * 1024;
/// Longest raw key remembered; longer keys are exported at every use.
const CACHED_RAW_BYTES: usize = 2 * MAX_KEY_BYTES;

/// One distinct exported key.
struct Key {
    text: Box<str>,
    /// First eight bytes, big-endian, zero-padded (see [`prefix_word`]).
    prefix: u64,
}

/// Raw key → exported key id, and the exported keys by id.
#[derive(Default)]
pub(crate) struct KeyTable {
    raw: FxHashMap<Box<[u8]>, u32>,
    exported: FxHashMap<Box<str>, u32>,
    keys: Vec<Key>,
    /// Bytes of raw and exported keys held.
    bytes: usize,
}

impl KeyTable {
    /// Empties the table if it is over its caps. Ids handed out before are
    /// invalid afterwards, so this is called only between scans.
    pub(crate) fn trim(&mut self) {
        if self.raw.len() > KEY_CACHE_MAX_KEYS
            || self.keys.len() > KEY_CACHE_MAX_KEYS
            || self.bytes > KEY_CACHE_MAX_BYTES
        {
            self.raw.clear();
            self.exported.clear();
            self.keys.clear();
            self.bytes = 0;
        }
    }

    /// The id of the exported form of `raw`, the bytes between a key's
    /// quotes (`escaped`: they contain escapes).
    #[inline]
    pub(crate) fn intern(&mut self, raw: &[u8], escaped: bool) -> u32 {
        if raw.len() <= CACHED_RAW_BYTES {
            if let Some(&id) = self.raw.get(raw) {
                return id;
            }
        }
        self.intern_slow(raw, escaped)
    }

    #[cold]
    fn intern_slow(&mut self, raw: &[u8], escaped: bool) -> u32 {
        let exported: Cow<'_, [u8]> = if escaped {
            Cow::Owned(export_key(&unescape(raw)).into_owned())
        } else {
            export_key(raw)
        };
        // Exported keys are UTF-8 (cleaned text); lossy only as a safeguard.
        let text = String::from_utf8_lossy(&exported);
        let id = match self.exported.get(&*text) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
                let text: Box<str> = text.into();
                self.bytes += text.len();
                self.exported.insert(text.clone(), id);
                self.keys.push(Key {
                    prefix: prefix_word(text.as_bytes()),
                    text,
                });
                id
            }
        };
        if raw.len() <= CACHED_RAW_BYTES && *exported != *REDACTED_NAME.as_bytes() {
            self.bytes += raw.len();
            self.raw.insert(raw.into(), id);
        }
        id
    }

    /// The exported text of key `id`.
    #[inline]
    pub(crate) fn text(&self, id: u32) -> &str {
        self.keys.get(id as usize).map_or("", |k| &k.text)
    }

    /// The first eight bytes of key `id` as a big-endian word: keys whose
    /// words differ sort as their words do.
    #[inline]
    pub(crate) fn prefix(&self, id: u32) -> u64 {
        self.keys.get(id as usize).map_or(0, |k| k.prefix)
    }
}

/// The first eight bytes of `k`, zero-padded, as a big-endian word.
fn prefix_word(k: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = k.len().min(8);
    w[..n].copy_from_slice(&k[..n]);
    u64::from_be_bytes(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_export_same_id_and_bounded() {
        let mut t = KeyTable::default();
        let a = t.intern(b"name", false);
        assert_eq!(t.intern(b"name", false), a);
        assert_eq!(t.text(a), "name");
        // Two value-like keys share the redacted name.
        let x = t.intern(b"12345", false);
        assert_eq!(t.intern(b"alice@example.com", false), x);
        assert_eq!(t.text(x), "{key}");
        // ... and are not remembered.
        assert!(!t.raw.contains_key(&b"12345"[..]));
        // An escaped spelling of a known key is the same key.
        assert_eq!(t.intern(br"n\u0061me", true), a);
        assert!(t.prefix(a) < t.prefix(x));
        for i in 0..2 * KEY_CACHE_MAX_KEYS {
            t.intern(format!("key_{i}").as_bytes(), false);
        }
        t.trim();
        assert!(t.raw.is_empty() && t.keys.is_empty() && t.bytes == 0);
    }
}
