//! Named caps on reassembly buffers.

/// Out-of-order memory charged per flow direction: each buffered segment's
/// payload plus [`SEGMENT_OVERHEAD_BYTES`]. Past this the stream skips
/// ahead to the buffered data and reports the hole as a gap. The overhead
/// is counted here too, so that this cap, like [`OOO_MEMCAP_BYTES`],
/// bounds memory rather than payload; with 1 460-byte segments it holds
/// about 6 % fewer of them than a payload-only cap would.
pub const OOO_MAX_BYTES: usize = 256 * 1024;
/// Out-of-order segments buffered per flow direction.
pub const OOO_MAX_SEGMENTS: usize = 1024;
/// Out-of-order memory charged across all flows (payload plus
/// [`SEGMENT_OVERHEAD_BYTES`] per segment).
pub const OOO_MEMCAP_BYTES: usize = 64 * 1024 * 1024;
/// What one buffered out-of-order segment costs besides its payload, charged
/// with the payload against [`OOO_MAX_BYTES`] and [`OOO_MEMCAP_BYTES`]:
///
/// - 40 bytes for the B-tree entry itself: the `u64` key plus the
///   `(Timestamp, Vec<u8>)` value (8 + 8 + 24 bytes);
/// - the B-tree's slack: a leaf node has room for 11 entries but holds 5 to
///   11 of them, plus the internal nodes above. Measured with a counting
///   allocator on 1 024 entries (the segment cap), entry plus slack comes to
///   63 bytes per entry inserted in random order and 79 in ascending or
///   descending order (splits leave those leaves about half full);
/// - the payload's own allocation rounded up to the allocator's size class:
///   mimalloc (the sensor's allocator) has no header and 8-byte classes for
///   small sizes, so a 1-byte payload costs 8.
///
/// 79 + 7 rounds up to 96. Without it a 1-byte segment was charged 1 byte,
/// and the 64 MiB memcap admitted 67 M one-byte segments, about 6 GB of
/// memory. The size-class rounding of larger payloads grows with the
/// payload and is not counted; B-trees of a few entries cost more per
/// entry, but few entries cost little in total.
pub const SEGMENT_OVERHEAD_BYTES: usize = 96;
/// A segment more than this far ahead of the next expected byte, or an
/// acknowledgement more than this far ahead, is taken as bogus and ignored.
pub const MAX_SEQ_JUMP: u32 = 1 << 30;
/// Delivered segments remembered per direction to tell a faithful
/// retransmission from one carrying different data.
pub const RETRANSMIT_HISTORY: usize = 8;
