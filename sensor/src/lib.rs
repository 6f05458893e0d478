//! shadowtap sensor library: capture sources and the offline runtime.

pub mod capture;

/// Hooks for fuzz targets and benchmarks; not a stable API.
#[doc(hidden)]
pub mod internal {
    /// Reads every packet from `data` as a capture file (pcap or pcapng).
    /// Never panics on any input; for the `file_reader` fuzz target.
    pub fn fuzz_file_reader(data: &[u8]) {
        crate::capture::fuzz_file_reader(data);
    }
}
