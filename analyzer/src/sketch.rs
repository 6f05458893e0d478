//! Mergeable summaries: a relative-error quantile sketch for latencies and
//! sizes, and a k-minimum-values distinct counter for callers and parameter
//! values.
//!
//! Both merge exactly (merging the sketches of two halves of a stream gives
//! the sketch of the whole stream), which is what lets observations be
//! stored, reloaded and re-grouped into different templates.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Relative accuracy of [`QuantileSketch`]: a reported quantile is within
/// 1 % of a value that was really observed at that rank.
pub const QUANTILE_RELATIVE_ACCURACY: f64 = 0.01;

/// Most buckets one quantile sketch keeps; beyond it the lowest buckets are
/// folded together (low quantiles lose accuracy first, as in DDSketch).
pub const MAX_QUANTILE_BUCKETS: usize = 2048;

/// A DDSketch-style quantile sketch over non-negative integers: values go
/// into logarithmic buckets of ratio `γ = (1 + α) / (1 − α)`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QuantileSketch {
    /// Number of values recorded.
    pub count: u64,
    /// Values that were exactly zero.
    pub zeros: u64,
    pub min: Option<u64>,
    pub max: Option<u64>,
    /// Bucket index → count. Bucket `i` holds values in `(γ^(i-1), γ^i]`.
    buckets: Buckets,
}

/// The non-empty buckets of a [`QuantileSketch`] as `(index, count)` pairs
/// sorted by index, in one contiguous vector: an insert is a binary search
/// that nearly always lands on an existing bucket, and a quantile is a
/// linear scan. Sparse rather than dense so a sketch of a few far-apart
/// values stays a few entries. Serialized as a JSON object of index →
/// count, ascending (the form stored sketches have always had).
#[derive(Clone, Debug, Default, PartialEq)]
struct Buckets(Vec<(i32, u64)>);

impl Buckets {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn add(&mut self, index: i32, count: u64) {
        match self.0.binary_search_by_key(&index, |&(i, _)| i) {
            Ok(at) => self.0[at].1 += count,
            Err(at) => self.0.insert(at, (index, count)),
        }
    }
}

impl Serialize for Buckets {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(i, c)| (i, c)))
    }
}

impl<'de> Deserialize<'de> for Buckets {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Through the map the field always was: sorted, and a repeated
        // key resolved the way the map always resolved it.
        let map = BTreeMap::<i32, u64>::deserialize(d)?;
        Ok(Buckets(map.into_iter().collect()))
    }
}

fn gamma_ln() -> f64 {
    let a = QUANTILE_RELATIVE_ACCURACY;
    ((1.0 + a) / (1.0 - a)).ln()
}

impl QuantileSketch {
    pub fn insert(&mut self, value: u64) {
        self.count += 1;
        self.min = Some(self.min.map_or(value, |m| m.min(value)));
        self.max = Some(self.max.map_or(value, |m| m.max(value)));
        if value == 0 {
            self.zeros += 1;
            return;
        }
        let index = ((value as f64).ln() / gamma_ln()).ceil() as i32;
        self.buckets.add(index, 1);
        self.fold_excess();
    }

    pub fn merge(&mut self, other: &QuantileSketch) {
        self.count += other.count;
        self.zeros += other.zeros;
        self.min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, other.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if self.buckets.0.is_empty() {
            self.buckets.0.clone_from(&other.buckets.0);
        } else if !other.buckets.0.is_empty() {
            // Both sorted: one linear merge.
            let mine = std::mem::take(&mut self.buckets.0);
            let mut merged = Vec::with_capacity(mine.len() + other.buckets.0.len());
            let (mut a, mut b) = (mine.iter().peekable(), other.buckets.0.iter().peekable());
            loop {
                let next = match (a.peek(), b.peek()) {
                    (Some(&&(ia, ca)), Some(&&(ib, cb))) => {
                        if ia < ib {
                            a.next();
                            (ia, ca)
                        } else if ib < ia {
                            b.next();
                            (ib, cb)
                        } else {
                            a.next();
                            b.next();
                            (ia, ca + cb)
                        }
                    }
                    (Some(&&x), None) => {
                        a.next();
                        x
                    }
                    (None, Some(&&x)) => {
                        b.next();
                        x
                    }
                    (None, None) => break,
                };
                merged.push(next);
            }
            self.buckets.0 = merged;
        }
        self.fold_excess();
    }

    /// Folds the lowest buckets into the next one up until at most
    /// [`MAX_QUANTILE_BUCKETS`] remain.
    fn fold_excess(&mut self) {
        let excess = self.buckets.len().saturating_sub(MAX_QUANTILE_BUCKETS);
        if excess == 0 {
            return;
        }
        let folded: u64 = self.buckets.0[..excess].iter().map(|&(_, c)| c).sum();
        self.buckets.0.drain(..excess);
        if let Some(first) = self.buckets.0.first_mut() {
            first.1 += folded;
        }
    }

    /// The value at quantile `q` (0 ≤ q ≤ 1), within the relative accuracy;
    /// `None` when empty. Clamped to the exact minimum and maximum.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        let rank = (q * (self.count - 1) as f64).round() as u64;
        // The extremes are known exactly.
        if rank == 0 {
            return self.min;
        }
        if rank == self.count - 1 {
            return self.max;
        }
        if rank < self.zeros {
            return Some(0);
        }
        let mut seen = self.zeros;
        let g = gamma_ln();
        for &(i, c) in &self.buckets.0 {
            seen += c;
            if seen > rank {
                // The bucket's midpoint in relative terms: 2γ^i / (γ + 1).
                let upper = (i as f64 * g).exp();
                let value = 2.0 * upper / (g.exp() + 1.0);
                let value = value.round() as u64;
                let lo = self.min.unwrap_or(0);
                let hi = self.max.unwrap_or(u64::MAX);
                return Some(value.clamp(lo, hi));
            }
        }
        self.max
    }
}

/// How many of the smallest hashes a [`DistinctSketch`] keeps. Below this
/// many distinct values the count is exact; above, the standard error is
/// about `1/√(k−2)` ≈ 6 %.
pub const DISTINCT_SKETCH_K: usize = 256;

/// A k-minimum-values distinct counter over 64-bit hashes of values. It
/// never holds a value, only hashes, and merges exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DistinctSketch {
    /// The smallest hashes seen, ascending, without duplicates.
    hashes: Vec<u64>,
}

impl DistinctSketch {
    /// Adds a value by its bytes (hashed with SHA-256, truncated, so the
    /// result is stable across versions and machines).
    pub fn insert_bytes(&mut self, value: &[u8]) {
        self.insert_hash(stable_hash(value));
    }

    pub fn insert_hash(&mut self, hash: u64) {
        if self.hashes.len() >= DISTINCT_SKETCH_K && hash >= self.hashes[self.hashes.len() - 1] {
            return;
        }
        if let Err(at) = self.hashes.binary_search(&hash) {
            self.hashes.insert(at, hash);
            self.hashes.truncate(DISTINCT_SKETCH_K);
        }
    }

    pub fn merge(&mut self, other: &DistinctSketch) {
        for &h in &other.hashes {
            self.insert_hash(h);
        }
    }

    /// Estimated number of distinct values (exact below [`DISTINCT_SKETCH_K`]).
    pub fn estimate(&self) -> u64 {
        let n = self.hashes.len();
        if n < DISTINCT_SKETCH_K {
            return n as u64;
        }
        let kth = self.hashes[n - 1] as f64 / u64::MAX as f64;
        if kth <= 0.0 {
            return n as u64;
        }
        (((n - 1) as f64) / kth).round() as u64
    }

    /// True when the estimate is an exact count.
    pub fn is_exact(&self) -> bool {
        self.hashes.len() < DISTINCT_SKETCH_K
    }
}

/// First eight bytes of SHA-256 as a big-endian integer.
pub fn stable_hash(value: &[u8]) -> u64 {
    let digest = Sha256::digest(value);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_the_relative_accuracy() {
        let mut s = QuantileSketch::default();
        for v in 1..=10_000u64 {
            s.insert(v);
        }
        for (q, exact) in [(0.5, 5_000.0), (0.9, 9_000.0), (0.99, 9_900.0)] {
            let got = s.quantile(q).unwrap() as f64;
            assert!(
                (got - exact).abs() / exact <= 0.011,
                "q{q}: {got} vs {exact}"
            );
        }
        assert_eq!(s.quantile(0.0), Some(1));
        assert_eq!(s.quantile(1.0), Some(10_000));
    }

    #[test]
    fn merging_halves_equals_the_whole() {
        let (mut a, mut b, mut whole) = Default::default();
        for v in 0..5000u64 {
            let x = v * v % 9973;
            if v % 2 == 0 {
                QuantileSketch::insert(&mut a, x)
            } else {
                QuantileSketch::insert(&mut b, x)
            }
            QuantileSketch::insert(&mut whole, x);
        }
        a.merge(&b);
        assert_eq!(a, whole);
    }

    #[test]
    fn zeros_and_empty() {
        let mut s = QuantileSketch::default();
        assert_eq!(s.quantile(0.5), None);
        s.insert(0);
        s.insert(0);
        s.insert(100);
        assert_eq!(s.quantile(0.5), Some(0));
        assert_eq!(s.quantile(1.0), Some(100));
    }

    #[test]
    fn bucket_count_is_bounded() {
        let mut s = QuantileSketch::default();
        let mut v = 1u64;
        while v < u64::MAX / 2 {
            s.insert(v);
            v = v + v / 50 + 1;
        }
        assert!(s.buckets.len() <= MAX_QUANTILE_BUCKETS);
        assert_eq!(s.quantile(1.0), s.max);
    }

    /// The stored form from before the buckets were a vector, for
    /// [`stored_form_is_unchanged`].
    #[derive(Serialize, Deserialize)]
    struct StoredForm {
        count: u64,
        zeros: u64,
        min: Option<u64>,
        max: Option<u64>,
        buckets: BTreeMap<i32, u64>,
    }

    #[test]
    fn stored_form_is_unchanged() {
        let mut s = QuantileSketch::default();
        for v in [0, 3, 3, 70, 1_000, 5, 900_000, 2] {
            s.insert(v);
        }
        let json = serde_json::to_string(&s).unwrap();
        let old: StoredForm = serde_json::from_str(&json).unwrap();
        assert_eq!(old.count, 8);
        assert_eq!(old.buckets.values().sum::<u64>(), 7);
        assert_eq!(serde_json::to_string(&old).unwrap(), json);
        let back: QuantileSketch = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        // A sketch written by the old map form loads as the same sketch.
        let written =
            r#"{"count":3,"zeros":0,"min":1,"max":9000,"buckets":{"0":1,"228":1,"456":1}}"#;
        let loaded: QuantileSketch = serde_json::from_str(written).unwrap();
        assert_eq!(serde_json::to_string(&loaded).unwrap(), written);
        // Bucket 228 holds (93.7, 95.6]; the median reads as its midpoint.
        assert_eq!(loaded.quantile(0.5), Some(95));
    }

    #[test]
    fn folding_keeps_every_count() {
        let mut a = QuantileSketch::default();
        let mut b = QuantileSketch::default();
        let mut v = 1u64;
        let mut i = 0u64;
        while v < u64::MAX / 2 {
            if i % 2 == 0 {
                a.insert(v);
            } else {
                b.insert(v);
            }
            v = v + v / 50 + 1;
            i += 1;
        }
        a.merge(&b);
        assert!(a.buckets.len() <= MAX_QUANTILE_BUCKETS);
        assert_eq!(a.buckets.0.iter().map(|&(_, c)| c).sum::<u64>(), i);
        assert!(a.buckets.0.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn distinct_is_exact_when_small_and_close_when_large() {
        let mut s = DistinctSketch::default();
        for i in 0..100u32 {
            s.insert_bytes(&i.to_be_bytes());
            s.insert_bytes(&i.to_be_bytes());
        }
        assert_eq!(s.estimate(), 100);
        assert!(s.is_exact());
        let mut big = DistinctSketch::default();
        for i in 0..100_000u32 {
            big.insert_bytes(&i.to_le_bytes());
        }
        let e = big.estimate() as f64;
        assert!((e - 100_000.0).abs() / 100_000.0 < 0.2, "{e}");
    }

    #[test]
    fn distinct_merge_is_union() {
        let (mut a, mut b, mut whole) = Default::default();
        for i in 0..2000u32 {
            let v = (i % 700).to_be_bytes();
            if i % 3 == 0 {
                DistinctSketch::insert_bytes(&mut a, &v)
            } else {
                DistinctSketch::insert_bytes(&mut b, &v)
            }
            DistinctSketch::insert_bytes(&mut whole, &v);
        }
        a.merge(&b);
        assert_eq!(a, whole);
    }
}
