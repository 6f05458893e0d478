//! Keyed hashing for tables whose keys come off the wire.
//!
//! The flow table and the fragment tracker are keyed by addresses, ports and
//! IDs that whoever sends packets past the sensor chooses. With an unkeyed
//! hash (Fx) those can be crafted to collide and turn every lookup into a
//! scan; with SipHash-1-3 (the hash of std's `HashMap`) keyed by a
//! [`HashSeed`] the attacker does not know, they cannot.
//!
//! The seed is configuration ([`crate::engine::EngineConfig::hash_seed`]):
//! this crate never asks the OS for randomness. The sensor binary draws a
//! random seed per process. Nothing that reaches the output depends on the
//! seed: the tables never emit in their iteration order.

use std::hash::{BuildHasher, Hasher};

/// The 128-bit key of [`KeyedState`]. `Debug` never prints it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HashSeed {
    k0: u64,
    k1: u64,
}

impl HashSeed {
    /// A seed from 16 bytes (random ones, outside tests).
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        let [a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7] = bytes;
        HashSeed {
            k0: u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]),
            k1: u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]),
        }
    }
}

impl std::fmt::Debug for HashSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashSeed(<redacted>)")
    }
}

/// Builds [`SipHasher13`]s keyed with one [`HashSeed`].
#[derive(Clone, Copy, Debug)]
pub struct KeyedState {
    seed: HashSeed,
}

impl KeyedState {
    pub const fn new(seed: HashSeed) -> Self {
        KeyedState { seed }
    }
}

impl BuildHasher for KeyedState {
    type Hasher = SipHasher13;

    #[inline]
    fn build_hasher(&self) -> SipHasher13 {
        SipHasher::new(self.seed)
    }
}

/// SipHash-1-3: one compression and three finalization rounds, as std uses.
pub type SipHasher13 = SipHasher<1, 3>;

/// SipHash-c-d (Aumasson and Bernstein) over the bytes written, keyed by a
/// [`HashSeed`]. Integers are written in native byte order (as std does).
/// No `Debug`: the state is derived from the key.
#[derive(Clone)]
pub struct SipHasher<const C: usize, const D: usize> {
    v: [u64; 4],
    /// Pending bytes (fewer than 8), little-endian in the low bytes.
    tail: u64,
    ntail: usize,
    length: usize,
}

impl<const C: usize, const D: usize> SipHasher<C, D> {
    #[inline]
    fn new(seed: HashSeed) -> Self {
        SipHasher {
            v: [
                seed.k0 ^ 0x736f_6d65_7073_6575,
                seed.k1 ^ 0x646f_7261_6e64_6f6d,
                seed.k0 ^ 0x6c79_6765_6e65_7261,
                seed.k1 ^ 0x7465_6462_7974_6573,
            ],
            tail: 0,
            ntail: 0,
            length: 0,
        }
    }

    #[inline(always)]
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }

    #[inline(always)]
    fn compress(&mut self, m: u64) {
        self.v[3] ^= m;
        for _ in 0..C {
            Self::round(&mut self.v);
        }
        self.v[0] ^= m;
    }
}

/// Up to 8 bytes as a little-endian integer.
#[inline(always)]
fn load_le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .enumerate()
        .fold(0, |acc, (i, &b)| acc | u64::from(b) << (8 * i))
}

impl<const C: usize, const D: usize> Hasher for SipHasher<C, D> {
    #[inline]
    fn write(&mut self, mut bytes: &[u8]) {
        self.length += bytes.len();
        if self.ntail != 0 {
            let fill = (8 - self.ntail).min(bytes.len());
            self.tail |= load_le(&bytes[..fill]) << (8 * self.ntail);
            self.ntail += fill;
            bytes = &bytes[fill..];
            if self.ntail < 8 {
                return;
            }
            let m = self.tail;
            self.compress(m);
            self.tail = 0;
            self.ntail = 0;
        }
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            self.compress(u64::from_le_bytes(w));
        }
        let rest = words.remainder();
        self.tail = load_le(rest);
        self.ntail = rest.len();
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        if self.ntail == 0 {
            // The common, aligned case: one whole word.
            self.length += 8;
            self.compress(u64::from_le_bytes(n.to_ne_bytes()));
        } else {
            self.write(&n.to_ne_bytes());
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        let mut v = self.v;
        let b = ((self.length as u64 & 0xff) << 56) | self.tail;
        v[3] ^= b;
        for _ in 0..C {
            Self::round(&mut v);
        }
        v[0] ^= b;
        v[2] ^= 0xff;
        for _ in 0..D {
            Self::round(&mut v);
        }
        v[0] ^ v[1] ^ v[2] ^ v[3]
    }
}

/// `a == b`, comparing whole words (the last one overlapping) instead of
/// calling `memcmp`: for the short keys of hash tables (object keys, field
/// names) a call costs more than the compare.
#[inline]
pub fn bytes_equal(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| {
        s.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(0, u64::from_le_bytes)
    };
    let half = |s: &[u8], at: usize| {
        s.get(at..at + 4)
            .and_then(|w| <[u8; 4]>::try_from(w).ok())
            .map_or(0, u32::from_le_bytes)
    };
    match n {
        0..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=8 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        _ => {
            let mut at = 0;
            while at + 8 < n {
                if word(a, at) != word(b, at) {
                    return false;
                }
                at += 8;
            }
            word(a, n - 8) == word(b, n - 8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_equal_is_slice_equality() {
        for n in 0..40u8 {
            let a: Vec<u8> = (1..=n).collect();
            assert!(bytes_equal(&a, &a.clone()));
            assert!(!bytes_equal(&a, &a[..a.len().saturating_sub(1)]) || a.is_empty());
            for pos in 0..a.len() {
                let mut b = a.clone();
                b[pos] = 0;
                assert!(!bytes_equal(&a, &b), "{n} {pos}");
            }
        }
    }

    fn seed_0_to_15() -> HashSeed {
        HashSeed::from_bytes(std::array::from_fn(|i| i as u8))
    }

    fn sip24(seed: HashSeed, chunks: &[&[u8]]) -> u64 {
        let mut h = SipHasher::<2, 4>::new(seed);
        for c in chunks {
            h.write(c);
        }
        h.finish()
    }

    #[test]
    fn siphash_2_4_reference_vectors() {
        // From the SipHash paper (appendix A) and its reference
        // implementation's vectors: key 00..0f, message 00..len-1.
        let msg: Vec<u8> = (0..64).collect();
        assert_eq!(sip24(seed_0_to_15(), &[&msg[..0]]), 0x726f_db47_dd0e_0e31);
        assert_eq!(sip24(seed_0_to_15(), &[&msg[..15]]), 0xa129_ca61_49be_45e5);
    }

    #[test]
    #[expect(deprecated, reason = "std's SipHasher (2-4, keyed) is the reference")]
    fn same_as_std_siphash_2_4_for_any_split() {
        let seed = HashSeed::from_bytes(*b"0123456789abcdef");
        let (k0, k1) = (seed.k0, seed.k1);
        let msg: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37)).collect();
        for len in 0..msg.len() {
            let mut reference = std::hash::SipHasher::new_with_keys(k0, k1);
            reference.write(&msg[..len]);
            let want = reference.finish();
            for split in 0..=len {
                let (a, b) = msg[..len].split_at(split);
                assert_eq!(sip24(seed, &[a, b]), want, "len {len} split {split}");
            }
        }
        // Integer writes are their native bytes, aligned or not.
        let mut reference = std::hash::SipHasher::new_with_keys(k0, k1);
        let mut ours = SipHasher::<2, 4>::new(seed);
        for (i, n) in [1u64, u64::MAX, 0x0102_0304_0506_0708]
            .into_iter()
            .enumerate()
        {
            reference.write_u64(n);
            ours.write_u64(n);
            reference.write_u16(i as u16);
            ours.write_u16(i as u16);
        }
        assert_eq!(ours.finish(), reference.finish());
    }

    #[test]
    fn seed_changes_the_hash() {
        let a = KeyedState::new(HashSeed::from_bytes([1; 16]));
        let b = KeyedState::new(HashSeed::from_bytes([2; 16]));
        assert_ne!(a.hash_one(42u64), b.hash_one(42u64));
        assert_eq!(a.hash_one(42u64), a.hash_one(42u64));
    }
}
