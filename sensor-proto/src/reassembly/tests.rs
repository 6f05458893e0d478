//! Model tests: every delivery order gives the same stream.

use super::*;

#[derive(Debug, Default, PartialEq, Eq)]
struct Rec {
    /// Delivered bytes with gaps written as `_`.
    bytes: Vec<u8>,
    gaps: Vec<u64>,
    closed: bool,
}

impl StreamSink for Rec {
    fn data(&mut self, _: Direction, _: Timestamp, bytes: &[u8]) {
        assert!(!self.closed, "data after close");
        self.bytes.extend_from_slice(bytes);
    }
    fn gap(&mut self, _: Direction, _: Timestamp, len: u64) {
        self.gaps.push(len);
        self.bytes.extend(std::iter::repeat_n(b'_', len as usize));
    }
    fn close(&mut self, _: Direction, _: Timestamp) {
        assert!(!self.closed, "closed twice");
        self.closed = true;
    }
}

struct Harness {
    half: HalfStream,
    budget: Budget,
    stats: ReassemblyStats,
    rec: Rec,
}

impl Harness {
    fn new(isn: u32) -> Self {
        let mut half = HalfStream::default();
        half.start_at_syn(isn);
        Harness {
            half,
            budget: Budget::new(limits::OOO_MEMCAP_BYTES),
            stats: Default::default(),
            rec: Rec::default(),
        }
    }
    fn seg(&mut self, seq: u32, payload: &[u8], fin: bool) {
        let mut cx = Ctx {
            dir: Direction::ToServer,
            budget: &mut self.budget,
            stats: &mut self.stats,
            sink: &mut self.rec,
        };
        self.half.segment(Timestamp(0), seq, payload, fin, &mut cx);
    }
    fn ack(&mut self, ack: u32) {
        let mut cx = Ctx {
            dir: Direction::ToServer,
            budget: &mut self.budget,
            stats: &mut self.stats,
            sink: &mut self.rec,
        };
        self.half.acked(Timestamp(0), ack, &mut cx);
    }
    fn finish(&mut self) {
        let mut cx = Ctx {
            dir: Direction::ToServer,
            budget: &mut self.budget,
            stats: &mut self.stats,
            sink: &mut self.rec,
        };
        self.half.finish(Timestamp(0), &mut cx);
    }
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn segments(isn: u32, data: &[u8], mss: usize) -> Vec<(u32, &[u8])> {
    data.chunks(mss)
        .enumerate()
        .map(|(i, c)| (isn.wrapping_add(1).wrapping_add((i * mss) as u32), c))
        .collect()
}

#[test]
fn any_order_gives_the_same_stream_even_across_wraparound() {
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    for isn in [0, 12345, 0xFFFF_FFFF - 7000, 0xFFFF_FFFF] {
        for round in 0..20 {
            let mut segs = segments(isn, &data, 1000);
            match round {
                0 => {}
                1 => segs.reverse(),
                _ => {
                    for i in (1..segs.len()).rev() {
                        let j = (xorshift(&mut rng) % (i as u64 + 1)) as usize;
                        segs.swap(i, j);
                    }
                }
            }
            let mut h = Harness::new(isn);
            for (seq, p) in &segs {
                h.seg(*seq, p, false);
            }
            h.seg(
                isn.wrapping_add(1).wrapping_add(data.len() as u32),
                b"",
                true,
            );
            assert_eq!(h.rec.bytes, data, "isn {isn} round {round}");
            assert!(h.rec.closed);
            assert!(h.rec.gaps.is_empty());
            assert_eq!(h.budget.used(), 0);
        }
    }
}

#[test]
fn retransmissions_first_wins_and_differences_are_counted() {
    let mut h = Harness::new(100);
    h.seg(101, b"hello ", false);
    h.seg(101, b"hello ", false); // faithful retransmission
    h.seg(101, b"HELLO ", false); // same boundaries, different data
    h.seg(104, b"lo world", false); // partial overlap, then new bytes
    assert_eq!(h.rec.bytes, b"hello world");
    assert_eq!(h.stats.retransmitted_segments, 2);
    assert_eq!(h.stats.retransmit_different_data, 1);
    assert_eq!(h.stats.overlapping_bytes, 3);
}

#[test]
fn overlapping_out_of_order_segments_keep_the_first_bytes() {
    let mut h = Harness::new(0);
    h.seg(6, b"WORLD", false); // offset 5..10
    h.seg(4, b"xxwxyz!", false); // offset 3..10: 2 new bytes, 5 overlapping, all differ
    h.seg(1, b"abc", false);
    assert_eq!(h.rec.bytes, b"abcxxWORLD");
    assert_eq!(h.stats.overlapping_bytes, 5);
    assert_eq!(h.stats.overlapping_bytes_differing, 5);
}

#[test]
fn acknowledged_missing_bytes_become_a_gap() {
    let mut h = Harness::new(0);
    h.seg(1, b"GET / HTTP/1.1\r\n", false);
    h.seg(1 + 16 + 10, b"after", false); // 10 bytes lost by the capture
    assert_eq!(h.rec.bytes.len(), 16);
    h.ack(1 + 16 + 10 + 5);
    assert_eq!(h.rec.gaps, vec![10]);
    assert_eq!(&h.rec.bytes[16..], b"__________after");
    // An ACK beyond everything seen (lost tail) also becomes a gap.
    h.ack(1 + 31 + 4);
    assert_eq!(h.rec.gaps, vec![10, 4]);
}

#[test]
fn overflow_skips_ahead_with_a_gap_and_memory_stays_bounded() {
    let mut h = Harness::new(0);
    // A hole at the start, then more out-of-order data than the cap allows.
    let seg = vec![b'x'; 1000];
    let n = limits::OOO_MAX_BYTES / 1000 + 50;
    for i in 0..n {
        h.seg(1 + 100 + (i * 1000) as u32, &seg, false);
        assert!(h.half.buffered() <= limits::OOO_MAX_BYTES);
    }
    assert!(h.stats.ooo_overflow > 0);
    assert_eq!(h.rec.gaps, vec![100]);
    h.finish();
    assert_eq!(h.rec.bytes.len(), 100 + n * 1000);
    assert_eq!(h.budget.used(), 0);
}

#[test]
fn global_memcap_is_never_exceeded() {
    let mut budget = Budget::new(10_000);
    let mut stats = ReassemblyStats::default();
    let mut halves: Vec<HalfStream> = (0..50).map(|_| HalfStream::default()).collect();
    let mut recs: Vec<Rec> = (0..50).map(|_| Rec::default()).collect();
    for (half, rec) in halves.iter_mut().zip(&mut recs) {
        half.start_at_syn(0);
        for i in 0..10u32 {
            let mut cx = Ctx {
                dir: Direction::ToClient,
                budget: &mut budget,
                stats: &mut stats,
                sink: rec,
            };
            half.segment(Timestamp(0), 1 + 10 + i * 100, &[7u8; 100], false, &mut cx);
            assert!(budget.used() <= 10_000);
        }
    }
    assert!(stats.memcap_skips > 0);
    assert!(budget.peak() <= 10_000);
}

#[test]
fn fin_closes_after_the_last_byte_even_when_reordered() {
    let mut h = Harness::new(0);
    h.seg(6, b"world", true);
    assert!(!h.rec.closed);
    h.seg(1, b"hello", false);
    assert_eq!(h.rec.bytes, b"helloworld");
    assert!(h.rec.closed);
    h.seg(11, b"late", false);
    assert_eq!(h.stats.data_after_close, 1);
}

#[test]
fn mid_stream_pickup_starts_at_the_first_segment() {
    let mut half = HalfStream::default();
    let mut budget = Budget::new(1 << 20);
    let mut stats = ReassemblyStats::default();
    let mut rec = Rec::default();
    let mut cx = Ctx {
        dir: Direction::ToClient,
        budget: &mut budget,
        stats: &mut stats,
        sink: &mut rec,
    };
    half.segment(Timestamp(0), 5000, b"", false, &mut cx); // pure ACK does not start it
    assert!(!half.is_started());
    half.segment(Timestamp(0), 7000, b"HTTP/1.1 200 OK\r\n", false, &mut cx);
    half.segment(Timestamp(0), 7017, b"\r\n", false, &mut cx);
    assert_eq!(rec.bytes, b"HTTP/1.1 200 OK\r\n\r\n");
}

#[test]
fn bogus_sequence_numbers_are_ignored() {
    let mut h = Harness::new(0);
    h.seg(1, b"abc", false);
    h.seg(0x9000_0000, b"far away", false);
    h.ack(0x9000_0000);
    h.finish();
    assert_eq!(h.rec.bytes, b"abc");
    assert_eq!(h.stats.bogus_sequence, 1);
}

#[test]
fn checksum_sees_any_changed_byte_at_any_length() {
    for len in [1usize, 7, 8, 31, 32, 63, 64, 65, 127, 128, 200, 1460] {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let base = super::checksum(&bytes);
        for at in 0..len {
            let mut changed = bytes.clone();
            changed[at] ^= 0x5a;
            assert_ne!(super::checksum(&changed), base, "len {len} at {at}");
        }
        assert_ne!(
            super::checksum(&bytes[..len - 1]),
            base,
            "len {len} shortened"
        );
    }
}

/// What `half`'s buffered segments should be charged, counted from the
/// segments themselves rather than from the running totals.
fn charge_of(half: &HalfStream) -> usize {
    half.ooo
        .values()
        .map(|(_, d)| d.len() + limits::SEGMENT_OVERHEAD_BYTES)
        .sum()
}

/// One segment into one of several halves sharing a budget.
fn feed(
    half: &mut HalfStream,
    rec: &mut Rec,
    budget: &mut Budget,
    stats: &mut ReassemblyStats,
    seq: u32,
    payload: &[u8],
    fin: bool,
) {
    let mut cx = Ctx {
        dir: Direction::ToServer,
        budget,
        stats,
        sink: rec,
    };
    half.segment(Timestamp(0), seq, payload, fin, &mut cx);
}

#[test]
fn segment_cap_overflows_with_a_gap_and_the_stream_continues() {
    let n = limits::OOO_MAX_SEGMENTS;
    // n one-byte segments stay under the byte cap: the segment cap is hit.
    assert!(n * (1 + limits::SEGMENT_OVERHEAD_BYTES) <= limits::OOO_MAX_BYTES);
    let data: Vec<u8> = (0..n + 100).map(|i| b'a' + (i % 26) as u8).collect();
    let seq = |i: usize| 1 + i as u32;
    let mut h = Harness::new(0);
    // Byte 0 is lost; bytes 1..=n fill the buffer one segment each.
    for i in 1..=n {
        h.seg(seq(i), &data[i..=i], false);
        assert_eq!(h.budget.used(), charge_of(&h.half));
    }
    assert_eq!(h.half.ooo.len(), n);
    assert_eq!(h.stats.ooo_overflow, 0);
    assert!(h.rec.bytes.is_empty());
    // One more: skip the hole, deliver the buffer, then this segment.
    h.seg(seq(n + 1), &data[n + 1..=n + 1], false);
    assert_eq!(h.stats.ooo_overflow, 1);
    assert_eq!(h.rec.gaps, vec![1]);
    assert_eq!(h.rec.bytes.len(), n + 2);
    assert_eq!(h.budget.used(), 0);
    // The stream goes on in order.
    for i in n + 2..data.len() {
        h.seg(seq(i), &data[i..=i], false);
    }
    h.seg(seq(data.len()), b"", true);
    assert!(h.rec.closed);
    assert_eq!(h.rec.bytes[0], b'_');
    assert_eq!(h.rec.bytes[1..], data[1..]);
    assert_eq!(h.stats.ooo_overflow, 1);
    assert_eq!(h.budget.used(), 0);
}

#[test]
fn per_direction_byte_cap_counts_the_overhead() {
    let len = 1300;
    let fits = limits::OOO_MAX_BYTES / (len + limits::SEGMENT_OVERHEAD_BYTES);
    // Counting payload alone, more segments would fit.
    assert!(limits::OOO_MAX_BYTES / len > fits);
    let seg = vec![b'x'; len];
    let mut h = Harness::new(0);
    for i in 0..fits {
        h.seg(1 + 10 + (i * len) as u32, &seg, false);
    }
    assert_eq!(h.stats.ooo_overflow, 0);
    assert_eq!(
        h.budget.used(),
        fits * (len + limits::SEGMENT_OVERHEAD_BYTES)
    );
    assert!(h.budget.used() <= limits::OOO_MAX_BYTES);
    h.seg(1 + 10 + (fits * len) as u32, &seg, false);
    assert_eq!(h.stats.ooo_overflow, 1);
    assert_eq!(h.rec.gaps, vec![10]);
    assert_eq!(h.budget.used(), 0);
}

#[test]
fn one_byte_segments_are_charged_their_overhead_against_the_memcap() {
    let cap = 1 << 20;
    let (streams, per_stream) = (200, 1000);
    // The payload alone would never reach the cap; with the overhead it
    // would be many times over it.
    assert!(streams * per_stream < cap);
    assert!(streams * per_stream * (1 + limits::SEGMENT_OVERHEAD_BYTES) > 10 * cap);
    let mut budget = Budget::new(cap);
    let mut stats = ReassemblyStats::default();
    let mut halves: Vec<HalfStream> = (0..streams).map(|_| HalfStream::default()).collect();
    let mut recs: Vec<Rec> = (0..streams).map(|_| Rec::default()).collect();
    for (half, rec) in halves.iter_mut().zip(&mut recs) {
        half.start_at_syn(0);
        // Byte 0 is missing; the rest arrives one byte per segment.
        for i in 1..=per_stream as u32 {
            feed(half, rec, &mut budget, &mut stats, 1 + i, &[7], false);
            assert!(budget.used() <= cap);
        }
    }
    let charged: usize = halves.iter().map(charge_of).sum();
    assert_eq!(budget.used(), charged);
    assert!(budget.peak() <= cap);
    // Nearly full, and what it holds is mostly overhead.
    assert!(budget.peak() > cap - (1 + limits::SEGMENT_OVERHEAD_BYTES));
    let payload: usize = halves.iter().map(HalfStream::buffered).sum();
    assert!(payload <= cap / (1 + limits::SEGMENT_OVERHEAD_BYTES));
    assert!(stats.memcap_skips > 0);
    assert_eq!(stats.ooo_overflow, 0);
    for half in &mut halves {
        half.discard(&mut budget);
    }
    assert_eq!(budget.used(), 0);
}

#[test]
fn budget_returns_to_zero_however_streams_end() {
    // Random segments (tiny ones to reach the segment cap, large ones to
    // reach the byte caps), acknowledgements and FINs on streams sharing a
    // budget smaller than their caps together; then every way of ending.
    let cap = 1_000_000;
    let mut budget = Budget::new(cap);
    let mut stats = ReassemblyStats::default();
    let mut halves: Vec<HalfStream> = (0..8).map(|_| HalfStream::default()).collect();
    let mut recs: Vec<Rec> = (0..8).map(|_| Rec::default()).collect();
    let big = vec![b'y'; 3000];
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    for half in &mut halves {
        half.start_at_syn(0);
    }
    let mut closed = 0;
    for _ in 0..40_000 {
        let k = (xorshift(&mut rng) % 8) as usize;
        let (half, rec) = (&mut halves[k], &mut recs[k]);
        let r = xorshift(&mut rng);
        let next = half.next_seq().0;
        match r % 1000 {
            0 => {
                let mut cx = Ctx {
                    dir: Direction::ToServer,
                    budget: &mut budget,
                    stats: &mut stats,
                    sink: &mut *rec,
                };
                let ack = next.wrapping_add((r >> 8) as u32 % 200_000);
                half.acked(Timestamp(0), ack, &mut cx);
            }
            1 => {
                let fin_at = next.wrapping_add((r >> 8) as u32 % 100_000);
                feed(half, rec, &mut budget, &mut stats, fin_at, b"", true);
            }
            _ => {
                let ahead = if r % 2 == 0 { 2_000 } else { 400_000 };
                let seq = next.wrapping_add((r >> 8) as u32 % ahead);
                let len = if r % 4 < 2 {
                    1 + (r >> 40) as usize % 4
                } else {
                    1 + (r >> 40) as usize % big.len()
                };
                feed(half, rec, &mut budget, &mut stats, seq, &big[..len], false);
            }
        }
        let charged: usize = halves.iter().map(charge_of).sum();
        assert_eq!(budget.used(), charged);
        assert!(budget.used() <= cap);
        for half in &halves {
            assert!(half.ooo.len() <= limits::OOO_MAX_SEGMENTS);
            assert!(charge_of(half) <= limits::OOO_MAX_BYTES);
        }
        if halves[k].is_closed() {
            closed += 1;
            halves[k] = HalfStream::default();
            halves[k].start_at_syn(0);
            recs[k] = Rec::default();
        }
    }
    assert!(stats.memcap_skips > 0);
    assert!(stats.ooo_overflow > 0);
    assert!(closed > 0);
    assert!(budget.used() > 0);
    // Half the streams finish (delivering what is buffered), half are dropped.
    for (i, (half, rec)) in halves.iter_mut().zip(&mut recs).enumerate() {
        if i % 2 == 0 {
            let mut cx = Ctx {
                dir: Direction::ToServer,
                budget: &mut budget,
                stats: &mut stats,
                sink: rec,
            };
            half.finish(Timestamp(0), &mut cx);
        } else {
            half.discard(&mut budget);
        }
    }
    assert_eq!(budget.used(), 0);
}

#[test]
fn reaching_the_fin_releases_segments_buffered_beyond_it() {
    let mut h = Harness::new(0);
    h.seg(1 + 10, b"after the end", false);
    assert_eq!(h.budget.used(), 13 + limits::SEGMENT_OVERHEAD_BYTES);
    h.seg(1, b"hello", true);
    assert!(h.rec.closed);
    assert_eq!(h.rec.bytes, b"hello");
    assert_eq!(h.budget.used(), 0);
}

#[test]
fn one_mebibyte_of_one_byte_segments_reversed_or_with_holes_gives_the_stream() {
    // Within windows small enough for the segment cap, so nothing is skipped.
    const WINDOW: usize = 1000;
    let mut rng = 0x1234_5678_9ABC_DEF1u64;
    let data: Vec<u8> = (0..1 << 20).map(|_| xorshift(&mut rng) as u8).collect();
    let seq = |i: usize| 1 + i as u32;
    let most_buffered = (WINDOW - 1) * (1 + limits::SEGMENT_OVERHEAD_BYTES);

    let mut reversed = Harness::new(0);
    for w in (0..data.len()).step_by(WINDOW) {
        for i in (w..(w + WINDOW).min(data.len())).rev() {
            reversed.seg(seq(i), &data[i..=i], false);
        }
    }
    reversed.seg(seq(data.len()), b"", true);

    // Odd bytes first, then the holes from the top down, each filled by a
    // three-byte segment overlapping both buffered neighbours, then the
    // window's first byte.
    let mut holes = Harness::new(0);
    for w in (0..data.len()).step_by(WINDOW) {
        let end = (w + WINDOW).min(data.len());
        for i in (w + 1..end).step_by(2) {
            holes.seg(seq(i), &data[i..=i], false);
        }
        for i in (w + 2..end - 1).step_by(2).rev() {
            holes.seg(seq(i - 1), &data[i - 1..i + 2], false);
        }
        holes.seg(seq(w), &data[w..=w], false);
    }
    holes.seg(seq(data.len()), b"", true);

    for (name, h) in [("reversed", &reversed), ("holes", &holes)] {
        assert_eq!(h.rec.bytes, data, "{name}");
        assert!(h.rec.closed, "{name}");
        assert!(h.rec.gaps.is_empty(), "{name}");
        assert_eq!(h.stats.ooo_overflow + h.stats.memcap_skips, 0, "{name}");
        assert_eq!(h.stats.overlapping_bytes_differing, 0, "{name}");
        assert_eq!(h.budget.peak(), most_buffered, "{name}");
        assert_eq!(h.budget.used(), 0, "{name}");
    }
    // Each filled hole overlapped its two buffered neighbours: every byte
    // of a window but the first and the last was an odd-offset one
    // overlapped once or a hole.
    let windows = data.len().div_ceil(WINDOW);
    assert_eq!(reversed.stats.overlapping_bytes, 0);
    assert_eq!(
        holes.stats.overlapping_bytes,
        (data.len() - 2 * windows) as u64
    );
}

#[test]
fn overlap_scan_matches_a_scan_from_the_first_segment() {
    let mut rng = 0xDEAD_BEEF_CAFE_F00Du64;
    let mut compared = 0;
    for _ in 0..20 {
        let mut h = Harness::new(0);
        for _ in 0..600 {
            let r = xorshift(&mut rng);
            // A hole at offset 0 keeps everything buffered.
            let off = 1 + (r % 3000);
            let len = 1 + (r >> 16) as usize % 40;
            let payload: Vec<u8> = (0..len)
                .map(|_| b'a' + (xorshift(&mut rng) % 3) as u8)
                .collect();
            assert_eq!(
                h.half.overlap(off, &payload),
                // The scan as it was: from the lowest buffered offset up.
                h.half.overlap_from(0, off, &payload),
                "offset {off} length {len}"
            );
            compared += 1;
            h.seg(1 + off as u32, &payload, false);
        }
        assert!(h.stats.overlapping_bytes_differing > 0);
        h.finish();
        assert_eq!(h.budget.used(), 0);
    }
    assert_eq!(compared, 20 * 600);
}
