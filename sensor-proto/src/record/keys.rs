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

use std::hash::BuildHasher as _;

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};

use super::shape::{export_key, unescape, MAX_KEY_BYTES};
use super::url::REDACTED_NAME;
use crate::hash::bytes_equal;

/// Raw keys remembered before the table is emptied (checked between scans).
pub const KEY_CACHE_MAX_KEYS: usize = 4096;
/// Raw, exported and rendered (JSON member) key bytes remembered before
/// the table is emptied.
pub const KEY_CACHE_MAX_BYTES: usize = 256 * 1024;
/// Longest raw key remembered; longer keys are exported at every use.
const CACHED_RAW_BYTES: usize = 2 * MAX_KEY_BYTES;

/// Bytes scanned per known key that pay for re-ranking the keys (inserting
/// the new ones into the order, renumbering all): bounds the amortised cost
/// of ranking while new keys keep arriving to a few instructions per
/// scanned byte.
const RANK_CREDIT_PER_KEY: usize = 16;

/// One distinct exported key.
struct Key {
    text: Box<str>,
    /// First sixteen bytes, big-endian, zero-padded (see [`prefix_word`]).
    prefix: u128,
    /// The key as a JSON object member name, escaped, with its colon.
    member: Box<str>,
}

/// Slots of the short-key cache (a power of two): 96 KiB, room for the
/// distinct keys of many endpoints (512 slots measured 2 % slower on the
/// bench capture: its hundreds of keys collided).
const SHORT_SLOTS: usize = 4096;
/// Longest raw key the short-key cache holds: [`short_words`] describes it
/// exactly in two words.
const SHORT_KEY_BYTES: usize = 16;

/// One slot of the short-key cache: a raw key of at most
/// [`SHORT_KEY_BYTES`] bytes as its [`short_words`] and length, and its id.
#[derive(Clone, Copy)]
struct ShortKey {
    words: (u64, u64),
    /// `u32::MAX` for a free slot.
    len: u32,
    id: u32,
}

const FREE_SHORT_KEY: ShortKey = ShortKey {
    words: (0, 0),
    len: u32::MAX,
    id: 0,
};

/// Raw key → exported key id, and the exported keys by id.
#[derive(Default)]
pub(crate) struct KeyTable {
    /// Direct-mapped cache in front of `raw` for short raw keys (most
    /// keys): a hit costs two word loads and compares instead of a hash of
    /// the bytes and a probe. It holds only keys that `raw` holds (never a
    /// value-like one), and is emptied with it. Allocated on first use.
    short: Vec<ShortKey>,
    /// Remembered raw keys and their ids, looked up with [`bytes_equal`].
    raw: HashTable<(Box<[u8]>, u32)>,
    exported: FxHashMap<Box<str>, u32>,
    keys: Vec<Key>,
    /// `rank[id]`: the position of key `id` in the byte-wise order of the
    /// first `rank.len()` keys (the ranked ones).
    rank: Vec<u32>,
    /// The ranked keys' ids in byte-wise order of their text.
    order: Vec<u32>,
    /// Bytes scanned since the keys were last ranked.
    rank_credit: usize,
    /// Bytes of raw and exported keys held.
    bytes: usize,
}

impl KeyTable {
    /// Empties the table if it is over its caps (true if it did). Ids
    /// handed out before are invalid afterwards, so this is called only
    /// between scans.
    pub(crate) fn trim(&mut self) -> bool {
        let over = self.raw.len() > KEY_CACHE_MAX_KEYS
            || self.keys.len() > KEY_CACHE_MAX_KEYS
            || self.bytes > KEY_CACHE_MAX_BYTES;
        if over {
            self.short.clear();
            self.raw.clear();
            self.exported.clear();
            self.keys.clear();
            self.rank.clear();
            self.order.clear();
            self.rank_credit = 0;
            self.bytes = 0;
        }
        over
    }

    /// Called before scanning `scan_bytes` bytes: ranks every key once the
    /// bytes scanned since the last ranking pay for it. Like
    /// [`Self::trim`], only between scans.
    pub(crate) fn rank_if_due(&mut self, scan_bytes: usize) {
        if self.rank.len() == self.keys.len() {
            return;
        }
        self.rank_credit = self.rank_credit.saturating_add(scan_bytes);
        if self.rank_credit < self.keys.len() * RANK_CREDIT_PER_KEY {
            return;
        }
        self.rank_credit = 0;
        // The new keys go into the sorted order by binary search; then
        // every rank is renumbered, one pass without comparisons.
        for id in self.rank.len()..self.keys.len() {
            let id = u32::try_from(id).unwrap_or(u32::MAX);
            let text = self.text(id);
            let at = self.order.partition_point(|&o| self.text(o) < text);
            self.order.insert(at, id);
        }
        self.rank.resize(self.keys.len(), 0);
        for (r, &id) in self.order.iter().enumerate() {
            self.rank[id as usize] = u32::try_from(r).unwrap_or(u32::MAX);
        }
    }

    /// The rank of key `id` in the byte-wise order of the ranked keys, if
    /// it is ranked.
    #[inline]
    pub(crate) fn rank(&self, id: u32) -> Option<u32> {
        self.rank.get(id as usize).copied()
    }

    /// The id of the exported form of `raw`, the bytes between a key's
    /// quotes (`escaped`: they contain escapes).
    #[inline]
    pub(crate) fn intern(&mut self, raw: &[u8], escaped: bool) -> u32 {
        let short = short_words(raw).map(|words| {
            let len = raw.len() as u32;
            let slot = short_slot(words, len);
            (words, len, slot)
        });
        if let Some((words, len, slot)) = short {
            if let Some(e) = self.short.get(slot) {
                if e.len == len && e.words == words {
                    return e.id;
                }
            }
        }
        if raw.len() <= CACHED_RAW_BYTES {
            let hash = FxBuildHasher.hash_one(raw);
            if let Some(&(_, id)) = self.raw.find(hash, |(k, _)| bytes_equal(k, raw)) {
                if let Some((words, len, slot)) = short {
                    if self.short.is_empty() {
                        self.short = vec![FREE_SHORT_KEY; SHORT_SLOTS];
                    }
                    self.short[slot] = ShortKey { words, len, id };
                }
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
                let mut member = Vec::with_capacity(text.len() + 3);
                super::json::string(&mut member, &text);
                member.push(b':');
                // Escaped from a `str`: always UTF-8.
                let member = String::from_utf8(member)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                self.bytes += member.len();
                self.keys.push(Key {
                    prefix: prefix_word(text.as_bytes()),
                    member: member.into(),
                    text,
                });
                id
            }
        };
        if raw.len() <= CACHED_RAW_BYTES && *exported != *REDACTED_NAME.as_bytes() {
            self.bytes += raw.len();
            let hash = FxBuildHasher.hash_one(raw);
            self.raw
                .insert_unique(hash, (raw.into(), id), |(k, _)| FxBuildHasher.hash_one(k));
        }
        id
    }

    /// The exported text of key `id`.
    #[inline]
    pub(crate) fn text(&self, id: u32) -> &str {
        self.keys.get(id as usize).map_or("", |k| &k.text)
    }

    /// Key `id` as a JSON object member name: quoted, escaped as
    /// `write_json` escapes it, followed by `:`.
    #[inline]
    pub(crate) fn member(&self, id: u32) -> &str {
        self.keys.get(id as usize).map_or("\"\":", |k| &k.member)
    }

    /// The first sixteen bytes of key `id` as a big-endian number: keys
    /// whose numbers differ sort as their numbers do.
    #[inline]
    pub(crate) fn prefix(&self, id: u32) -> u128 {
        self.keys.get(id as usize).map_or(0, |k| k.prefix)
    }
}

/// Two words that, with its length, tell a key of at most
/// [`SHORT_KEY_BYTES`] bytes from every other: its first and last eight
/// bytes (overlapping below sixteen), four below eight, and the first,
/// middle and last byte below four. `None` for longer keys.
#[inline]
fn short_words(k: &[u8]) -> Option<(u64, u64)> {
    let n = k.len();
    let word = |at: usize| {
        k.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(0, u64::from_le_bytes)
    };
    let half = |at: usize| {
        k.get(at..at + 4)
            .and_then(|w| <[u8; 4]>::try_from(w).ok())
            .map_or(0, |w| u64::from(u32::from_le_bytes(w)))
    };
    let byte = |at: usize| k.get(at).map_or(0, |&b| u64::from(b));
    match n {
        0 => Some((0, 0)),
        1..=3 => Some((byte(0) | byte(n / 2) << 8 | byte(n - 1) << 16, 0)),
        4..=7 => Some((half(0), half(n - 4))),
        8..=SHORT_KEY_BYTES => Some((word(0), word(n - 8))),
        _ => None,
    }
}

/// The short-key cache slot of a key's words and length.
#[inline]
fn short_slot(words: (u64, u64), len: u32) -> usize {
    let mixed =
        (words.0 ^ words.1.rotate_left(29) ^ u64::from(len)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> (64 - SHORT_SLOTS.trailing_zeros())) as usize
}

/// The first sixteen bytes of `k`, zero-padded, as a big-endian number.
fn prefix_word(k: &[u8]) -> u128 {
    let mut w = [0u8; 16];
    let n = k.len().min(16);
    w[..n].copy_from_slice(&k[..n]);
    u128::from_be_bytes(w)
}

/// Byte-wise order of two keys (the order of their `String`s), comparing
/// eight bytes at a time.
pub(super) fn key_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let (x, y) = (be_word(x), be_word(y));
        if x != y {
            return x.cmp(&y);
        }
    }
    let n = (a.len().min(b.len()) / 8) * 8;
    a[n..].cmp(&b[n..])
}

/// Eight bytes as a big-endian number (0 if `b` is not eight bytes long).
fn be_word(b: &[u8]) -> u64 {
    <[u8; 8]>::try_from(b).map_or(0, u64::from_be_bytes)
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
        let hash = FxBuildHasher.hash_one(&b"12345"[..]);
        assert!(t.raw.find(hash, |(k, _)| **k == *b"12345").is_none());
        assert_eq!(t.intern(b"12345", false), x);
        assert!(
            t.short.iter().all(|e| e.len != 5),
            "a value-like key was cached"
        );
        // An escaped spelling of a known key is the same key.
        assert_eq!(t.intern(br"n\u0061me", true), a);
        assert!(t.prefix(a) < t.prefix(x));
        for i in 0..2 * KEY_CACHE_MAX_KEYS {
            t.intern(format!("key_{i}").as_bytes(), false);
        }
        t.trim();
        assert!(t.raw.is_empty() && t.keys.is_empty() && t.bytes == 0);
        assert!(t.short.is_empty());
        assert!(t.rank.is_empty());
    }

    #[test]
    fn short_words_tell_every_short_key_apart() {
        for n in 0..=SHORT_KEY_BYTES + 2 {
            let a: Vec<u8> = (1..=n as u8).collect();
            let Some(words) = short_words(&a) else {
                assert!(n > SHORT_KEY_BYTES);
                continue;
            };
            assert!(n <= SHORT_KEY_BYTES);
            for pos in 0..n {
                let mut b = a.clone();
                b[pos] = 0;
                assert_ne!(short_words(&b), Some(words), "{n} {pos}");
            }
        }
    }

    #[test]
    fn cached_short_keys_keep_their_ids() {
        // Enough keys that some share a slot of the short-key cache: every
        // lookup, hit, miss or evicted, gives the id of the first.
        let mut t = KeyTable::default();
        let names: Vec<String> = (0..3 * SHORT_SLOTS).map(|i| format!("k{i}")).collect();
        let ids: Vec<u32> = names
            .iter()
            .map(|k| t.intern(k.as_bytes(), false))
            .collect();
        for _ in 0..3 {
            for (k, &id) in names.iter().zip(&ids) {
                assert_eq!(t.intern(k.as_bytes(), false), id, "{k}");
                assert_eq!(t.text(id), k);
            }
        }
    }

    #[test]
    fn ranks_follow_byte_order_once_paid_for() {
        let mut t = KeyTable::default();
        let words = [
            "b",
            "a",
            "amount_12",
            "amount_1",
            "é",
            "Z",
            "amount_100000000000",
        ];
        let ids: Vec<u32> = words
            .iter()
            .map(|w| t.intern(w.as_bytes(), false))
            .collect();
        t.rank_if_due(1);
        assert_eq!(t.rank(ids[0]), None, "not paid for yet");
        t.rank_if_due(words.len() * RANK_CREDIT_PER_KEY);
        let mut by_rank = ids;
        by_rank.sort_by_key(|&id| t.rank(id).unwrap());
        let mut sorted = words.to_vec();
        sorted.sort_unstable();
        let texts: Vec<&str> = by_rank.iter().map(|&id| t.text(id)).collect();
        assert_eq!(texts, sorted);
        // A new key is unranked until the next ranking, then takes its
        // place among the others.
        let new = t.intern(b"c", false);
        assert_eq!(t.rank(new), None);
        t.rank_if_due(usize::MAX);
        let mut by_rank: Vec<u32> = (0..=new).collect();
        by_rank.sort_by_key(|&id| t.rank(id).unwrap());
        let texts: Vec<&str> = by_rank.iter().map(|&id| t.text(id)).collect();
        let mut sorted: Vec<&str> = words.iter().copied().chain(["c"]).collect();
        sorted.sort_unstable();
        assert_eq!(texts, sorted);
    }
}
