//! Named caps on reassembly buffers.

/// Out-of-order bytes buffered per flow direction. Past this the stream
/// skips ahead to the buffered data and reports the hole as a gap.
pub const OOO_MAX_BYTES: usize = 256 * 1024;
/// Out-of-order segments buffered per flow direction.
pub const OOO_MAX_SEGMENTS: usize = 1024;
/// Out-of-order bytes buffered across all flows.
pub const OOO_MEMCAP_BYTES: usize = 64 * 1024 * 1024;
/// A segment more than this far ahead of the next expected byte, or an
/// acknowledgement more than this far ahead, is taken as bogus and ignored.
pub const MAX_SEQ_JUMP: u32 = 1 << 30;
/// Delivered segments remembered per direction to tell a faithful
/// retransmission from one carrying different data.
pub const RETRANSMIT_HISTORY: usize = 8;
