//! IP fragment reassembly with bounded state.
//!
//! Overlap policy: **first wins**. Bytes already received for a datagram are
//! never overwritten by a later fragment; overlapping bytes are counted, and
//! counted again when they differ from what was kept. Trackers expire
//! [`DefragLimits::timeout_ns`] after their first fragment (packet time).
//!
//! Trackers are keyed by wire-controlled addresses and IDs, so the map uses
//! a keyed hasher ([`KeyedState`]); its order only ever reaches counters.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::hash::{HashSeed, KeyedState};
use crate::time::{secs, Timestamp};

/// One IP fragment, borrowed from its frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 identification or IPv6 fragment identification.
    pub id: u32,
    /// Protocol of the reassembled payload.
    pub protocol: u8,
    /// Byte offset of this fragment's payload in the datagram.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
    pub payload: &'a [u8],
}

/// Caps on defragmentation state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefragLimits {
    /// Datagrams being reassembled at once; fragments of new ones are dropped past this.
    pub max_trackers: usize,
    /// Bytes buffered across all trackers.
    pub max_bytes: usize,
    /// Fragments accepted for one datagram.
    pub max_fragments: u32,
    /// A datagram not complete this long after its first fragment is dropped.
    pub timeout_ns: u64,
}

impl Default for DefragLimits {
    fn default() -> Self {
        DefragLimits {
            max_trackers: 8192,
            max_bytes: 32 * 1024 * 1024,
            max_fragments: 128,
            timeout_ns: secs(60),
        }
    }
}

/// Largest reassembled IP payload (IPv4 total length is 16 bits).
const MAX_DATAGRAM: u32 = 65_535;

/// The result of offering one fragment.
#[derive(Debug, PartialEq, Eq)]
pub enum DefragOutcome {
    /// Kept; the datagram is not complete yet.
    Pending,
    /// The datagram is complete: its transport payload.
    Complete {
        src: IpAddr,
        dst: IpAddr,
        protocol: u8,
        payload: Vec<u8>,
    },
    /// Refused: the reason is counted in [`DefragStats`].
    Dropped,
}

/// Counters of the defragmenter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DefragStats {
    pub fragments: u64,
    pub datagrams_reassembled: u64,
    pub overlapping_bytes: u64,
    pub overlapping_bytes_differing: u64,
    pub dropped_too_many_trackers: u64,
    pub dropped_memcap: u64,
    pub dropped_too_many_fragments: u64,
    pub dropped_oversized: u64,
    pub dropped_inconsistent_length: u64,
    pub trackers_expired: u64,
}

type Key = (IpAddr, IpAddr, u32, u8);

struct Tracker {
    first_seen: Timestamp,
    data: Vec<u8>,
    /// Sorted, disjoint, non-adjacent `[start, end)` ranges received.
    have: Vec<(u32, u32)>,
    total: Option<u32>,
    fragments: u32,
}

/// Reassembles IP datagrams from fragments.
pub struct Defragmenter {
    limits: DefragLimits,
    trackers: HashMap<Key, Tracker, KeyedState>,
    bytes: usize,
    stats: DefragStats,
}

impl Defragmenter {
    /// An empty defragmenter whose hasher is keyed by `seed` (see [`crate::hash`]).
    pub fn new(limits: DefragLimits, seed: HashSeed) -> Self {
        Defragmenter {
            limits,
            trackers: HashMap::with_hasher(KeyedState::new(seed)),
            bytes: 0,
            stats: DefragStats::default(),
        }
    }

    pub fn stats(&self) -> DefragStats {
        self.stats
    }

    /// Datagrams currently being reassembled.
    pub fn trackers(&self) -> usize {
        self.trackers.len()
    }

    /// Bytes currently buffered.
    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    /// Offers one fragment received at `now`.
    pub fn push(&mut self, now: Timestamp, frag: &Fragment<'_>) -> DefragOutcome {
        self.stats.fragments += 1;
        let key = (frag.src, frag.dst, frag.id, frag.protocol);
        let len = frag.payload.len() as u32;
        let end = match frag.offset.checked_add(len) {
            Some(e) if e <= MAX_DATAGRAM => e,
            _ => {
                self.stats.dropped_oversized += 1;
                return self.drop_tracker(&key);
            }
        };
        if !self.trackers.contains_key(&key) && self.trackers.len() >= self.limits.max_trackers {
            self.stats.dropped_too_many_trackers += 1;
            return DefragOutcome::Dropped;
        }
        let grow =
            (end as usize).saturating_sub(self.trackers.get(&key).map_or(0, |t| t.data.len()));
        if self.bytes + grow > self.limits.max_bytes {
            self.stats.dropped_memcap += 1;
            return self.drop_tracker(&key);
        }
        let t = self.trackers.entry(key).or_insert_with(|| Tracker {
            first_seen: now,
            data: Vec::new(),
            have: Vec::new(),
            total: None,
            fragments: 0,
        });
        t.fragments += 1;
        if t.fragments > self.limits.max_fragments {
            self.stats.dropped_too_many_fragments += 1;
            return self.drop_tracker(&key);
        }
        if !frag.more {
            // The last fragment fixes the length; a second, different one is inconsistent.
            if t.total.is_some_and(|total| total != end) || t.have.last().is_some_and(|r| r.1 > end)
            {
                self.stats.dropped_inconsistent_length += 1;
                return self.drop_tracker(&key);
            }
            t.total = Some(end);
        } else if t.total.is_some_and(|total| end > total) {
            self.stats.dropped_inconsistent_length += 1;
            return self.drop_tracker(&key);
        }
        if t.data.len() < end as usize {
            t.data.resize(end as usize, 0);
            self.bytes += grow;
        }
        let (overlap, differing) = insert(t, frag.offset, frag.payload);
        self.stats.overlapping_bytes += overlap;
        self.stats.overlapping_bytes_differing += differing;
        if t.total
            .is_some_and(|total| t.have.as_slice() == [(0, total)])
        {
            let t = self.trackers.remove(&key).expect("tracker present");
            self.bytes -= t.data.len();
            self.stats.datagrams_reassembled += 1;
            return DefragOutcome::Complete {
                src: frag.src,
                dst: frag.dst,
                protocol: frag.protocol,
                payload: t.data,
            };
        }
        DefragOutcome::Pending
    }

    /// Drops trackers whose first fragment is older than the timeout.
    pub fn expire(&mut self, now: Timestamp) {
        let timeout = self.limits.timeout_ns;
        let mut freed = 0;
        let mut expired = 0;
        self.trackers.retain(|_, t| {
            let keep = now.nanos_since(t.first_seen) < timeout;
            if !keep {
                freed += t.data.len();
                expired += 1;
            }
            keep
        });
        self.bytes -= freed;
        self.stats.trackers_expired += expired;
    }

    fn drop_tracker(&mut self, key: &Key) -> DefragOutcome {
        if let Some(t) = self.trackers.remove(key) {
            self.bytes -= t.data.len();
        }
        DefragOutcome::Dropped
    }
}

/// Copies the parts of `payload` at `offset` not yet received (first wins)
/// and merges the range. Returns (overlapping bytes, differing overlapping bytes).
fn insert(t: &mut Tracker, offset: u32, payload: &[u8]) -> (u64, u64) {
    let (start, end) = (offset, offset + payload.len() as u32);
    let (mut overlap, mut differing) = (0u64, 0u64);
    let mut cursor = start;
    for &(s, e) in t.have.iter().filter(|&&(s, e)| s < end && e > start) {
        if cursor < s {
            copy(t.data.as_mut_slice(), payload, start, cursor, s);
        }
        let (os, oe) = (s.max(start), e.min(end));
        overlap += u64::from(oe - os);
        let kept = &t.data[os as usize..oe as usize];
        let new = &payload[(os - start) as usize..(oe - start) as usize];
        differing += kept.iter().zip(new).filter(|(a, b)| a != b).count() as u64;
        cursor = cursor.max(oe);
    }
    if cursor < end {
        copy(t.data.as_mut_slice(), payload, start, cursor, end);
    }
    // Merge [start, end) into the sorted range list.
    let mut merged = (start, end);
    t.have.retain(|&(s, e)| {
        if s <= merged.1 && e >= merged.0 {
            merged = (merged.0.min(s), merged.1.max(e));
            false
        } else {
            true
        }
    });
    let at = t.have.partition_point(|&(s, _)| s < merged.0);
    t.have.insert(at, merged);
    (overlap, differing)
}

fn copy(data: &mut [u8], payload: &[u8], start: u32, from: u32, to: u32) {
    data[from as usize..to as usize]
        .copy_from_slice(&payload[(from - start) as usize..(to - start) as usize]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const TEST_SEED: HashSeed = HashSeed::from_bytes([7; 16]);

    fn frag(id: u32, offset: u32, more: bool, payload: &[u8]) -> Fragment<'_> {
        Fragment {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            id,
            protocol: 6,
            offset,
            more,
            payload,
        }
    }

    fn complete(o: DefragOutcome) -> Vec<u8> {
        match o {
            DefragOutcome::Complete { payload, .. } => payload,
            other => panic!("expected a complete datagram, got {other:?}"),
        }
    }

    #[test]
    fn reassembles_in_any_order() {
        let data: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        let parts = [(0u32, 1480usize), (1480, 2960), (2960, 3000)];
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]] {
            let mut d = Defragmenter::new(DefragLimits::default(), TEST_SEED);
            let mut out = None;
            for (n, &i) in order.iter().enumerate() {
                let (s, e) = parts[i];
                let r = d.push(Timestamp(0), &frag(7, s, i != 2, &data[s as usize..e]));
                if n < 2 {
                    assert_eq!(r, DefragOutcome::Pending);
                } else {
                    out = Some(complete(r));
                }
            }
            assert_eq!(out.as_deref(), Some(&data[..]));
            assert_eq!(d.trackers(), 0);
            assert_eq!(d.buffered_bytes(), 0);
        }
    }

    #[test]
    fn first_wins_on_overlap_and_counts_differences() {
        let mut d = Defragmenter::new(DefragLimits::default(), TEST_SEED);
        assert_eq!(
            d.push(Timestamp(0), &frag(1, 0, true, b"AAAAAAAA")),
            DefragOutcome::Pending
        );
        // Overlaps bytes 4..8 with different data, then supplies 8..16.
        assert_eq!(
            d.push(Timestamp(0), &frag(1, 4, true, b"BBBBCCCC")),
            DefragOutcome::Pending
        );
        let out = complete(d.push(Timestamp(0), &frag(1, 8, false, b"CCCCDDDD")));
        assert_eq!(out, b"AAAAAAAACCCCDDDD");
        assert_eq!(d.stats().overlapping_bytes, 8);
        assert_eq!(d.stats().overlapping_bytes_differing, 4);
    }

    #[test]
    fn expiry_frees_every_tracker() {
        let mut d = Defragmenter::new(DefragLimits::default(), TEST_SEED);
        for id in 0..100 {
            assert_eq!(
                d.push(Timestamp(0), &frag(id, 8, true, b"12345678")),
                DefragOutcome::Pending
            );
        }
        // Malformed: a fragment beyond 64 KiB, and two different "last" lengths.
        assert_eq!(
            d.push(Timestamp(0), &frag(500, 65_530, true, b"12345678")),
            DefragOutcome::Dropped
        );
        assert_eq!(
            d.push(Timestamp(0), &frag(501, 0, false, b"12345678")),
            DefragOutcome::Complete {
                src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                protocol: 6,
                payload: b"12345678".to_vec()
            }
        );
        assert_eq!(
            d.push(Timestamp(0), &frag(502, 8, false, b"12345678")),
            DefragOutcome::Pending
        );
        assert_eq!(
            d.push(Timestamp(0), &frag(502, 16, false, b"12345678")),
            DefragOutcome::Dropped
        );
        assert_eq!(d.trackers(), 100);
        d.expire(Timestamp(secs(59)));
        assert_eq!(d.trackers(), 100);
        d.expire(Timestamp(secs(60)));
        assert_eq!(d.trackers(), 0);
        assert_eq!(d.buffered_bytes(), 0);
        assert_eq!(d.stats().trackers_expired, 100);
    }

    #[test]
    fn limits_hold() {
        let limits = DefragLimits {
            max_trackers: 2,
            max_bytes: 100,
            max_fragments: 3,
            timeout_ns: 1,
        };
        let mut d = Defragmenter::new(limits, TEST_SEED);
        assert_eq!(
            d.push(Timestamp(0), &frag(1, 8, true, b"x")),
            DefragOutcome::Pending
        );
        assert_eq!(
            d.push(Timestamp(0), &frag(2, 8, true, b"x")),
            DefragOutcome::Pending
        );
        assert_eq!(
            d.push(Timestamp(0), &frag(3, 8, true, b"x")),
            DefragOutcome::Dropped
        );
        assert_eq!(d.stats().dropped_too_many_trackers, 1);
        assert_eq!(
            d.push(Timestamp(0), &frag(1, 200, true, b"x")),
            DefragOutcome::Dropped
        );
        assert_eq!(d.stats().dropped_memcap, 1);
        for _ in 0..2 {
            assert_eq!(
                d.push(Timestamp(0), &frag(2, 16, true, b"y")),
                DefragOutcome::Pending
            );
        }
        assert_eq!(
            d.push(Timestamp(0), &frag(2, 24, true, b"y")),
            DefragOutcome::Dropped
        );
        assert_eq!(d.stats().dropped_too_many_fragments, 1);
        assert!(d.buffered_bytes() <= 100);
    }
}
