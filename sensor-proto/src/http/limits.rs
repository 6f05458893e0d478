//! Named caps on every HTTP buffer. Hitting one records an anomaly and is
//! counted; it never panics and never grows a buffer past the cap.

/// Most header fields parsed in one message (more: `TooManyHeaders`).
pub const MAX_HEADERS: usize = 100;
/// Largest start line plus header section buffered for one message
/// (more: `HeaderSectionTooLarge`, the stream resyncs).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Longest start line (request line or status line) that is not flagged
/// `LineTooLong`; the message is still parsed (only [`MAX_HEADER_BYTES`]
/// bounds what is buffered). Reliability target S10; libhtp's default.
pub const MAX_START_LINE_BYTES: usize = 8 * 1024;
/// Longest header field line (name, `:`, value) that is not flagged
/// `LineTooLong`; as for [`MAX_START_LINE_BYTES`], the message is still
/// parsed.
pub const MAX_HEADER_LINE_BYTES: usize = 16 * 1024;
/// Bytes of each body kept for shape inference; the rest is skipped by
/// framing without being buffered.
pub const BODY_SAMPLE_MAX: usize = 4 * 1024;
/// Longest chunk-size line, extensions included (more: `ChunkExtensionTooLong`).
pub const MAX_CHUNK_LINE_BYTES: usize = 1024;
/// Longest trailer section after the last chunk.
pub const MAX_TRAILER_BYTES: usize = 16 * 1024;
/// Requests waiting for a response on one connection (pipelining); past
/// this the oldest is flushed unanswered (`TooManyPendingRequests`).
pub const MAX_PENDING_REQUESTS: usize = 100;
/// What the HTTP layer counts for each heap allocation it holds (a header
/// name, a header value, a sample) on top of its bytes: the allocator's
/// rounding and bookkeeping, for the flow table's handler memcap
/// ([`crate::flow::FlowLimits::handler_memcap_bytes`]). mimalloc rounds
/// small blocks up to its size classes (at most 12.5 % plus 8 bytes);
/// glibc adds 8 to 16 bytes per block.
pub const ALLOCATION_OVERHEAD_BYTES: usize = 16;
