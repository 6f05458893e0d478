//! # shadowtap-sensor
//!
//! Capture backends and the runtime that drives the sans-IO core
//! ([`shadowtap_proto`]) with them.
//!
//! ```text
//!  capture::FileSource ───────┐                               ┌─► JSON Lines (-w)
//!  capture::libpcap (feature) ├─► CaptureSource ─► Engine ────┤
//!  capture::ebpf (--ebpf)     ┘                               └─► summary, --stats-json
//! ```
//!
//! [`runtime::run`] reads files to their end; [`runtime::live::run_live`]
//! drives any live source until a signal, `--duration` or `--count`. The
//! eBPF side is in `docs/ebpf.md`, libpcap in `docs/live-capture.md`.

pub mod capture;
pub mod memory;
pub mod runtime;
pub mod summary;

/// Hooks for fuzz targets and benchmarks; not a stable API.
#[doc(hidden)]
pub mod internal {
    /// Reads every packet from `data` as a capture file (pcap or pcapng).
    /// Never panics on any input; for the `file_reader` fuzz target.
    pub fn fuzz_file_reader(data: &[u8]) {
        crate::capture::fuzz_file_reader(data);
    }

    /// Reads `data` as a capture file and runs every packet through an
    /// engine with small caps; for the `reassembly` fuzz target.
    pub fn fuzz_pipeline(data: &[u8]) {
        use crate::capture::{CaptureSource, FileSource};
        let reader = Box::new(std::io::Cursor::new(data.to_vec()));
        let Ok(mut source) = FileSource::from_reader("fuzz", reader, Some(data.len() as u64))
        else {
            return;
        };
        let mut engine = shadowtap_proto::internal::fuzz_engine();
        let mut out = Vec::new();
        while let Ok(Some(p)) = source.next_packet() {
            engine.on_packet(p.ts, p.link_type, p.data, &mut out);
            out.clear();
        }
        engine.finish(&mut out);
    }
}
