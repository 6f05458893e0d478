//! Capture sources: where frames come from.
//!
//! Every backend (capture file, live libpcap, eBPF ring buffer, fault
//! injection wrappers) implements [`CaptureSource`] and yields
//! [`CapturedPacket`]s borrowed from its own buffer. This module has the
//! offline one, [`FileSource`], a pure-Rust reader for classic pcap and
//! pcapng that works on files and on non-seekable input such as stdin;
//! `libpcap::PcapSource` (cargo feature `libpcap`) captures live, and
//! [`caps`] checks the Linux capabilities live sources need.
//!
//! ```text
//!  File / stdin ──read 1 MiB──► Input buffer ──┬─ pcap::PcapReader ──┐
//!                                              └─ pcapng::NgReader ──┴─► CapturedPacket<'_>
//! ```
//!
//! Guarantees: no panics on any input, no allocation per packet (packets are
//! slices into the read buffer), memory bounded by [`MAX_PARSED_BLOCK_BYTES`]
//! plus the per-section interface table ([`MAX_INTERFACES`]). A damaged file
//! yields every packet before the damage, then one [`CaptureError`] that names
//! the input and the byte offset of the damaged record, then `Ok(None)`.

pub mod caps;
pub mod ebpf;
mod error;
mod input;
#[cfg(feature = "libpcap")]
pub mod libpcap;
mod pcap;
mod pcapng;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

use std::fs::File;
use std::io::Read;
use std::path::Path;

use shadowtap_proto::time::Timestamp;
use shadowtap_proto::wire::LinkType;

pub use error::{CaptureError, Corruption, ErrorKind, Part};

use input::Input;

/// Largest captured length of a single packet we accept, in bytes. Same value
/// as libpcap's `MAXIMUM_SNAPLEN`; a record claiming more is a
/// [`ErrorKind::TooLarge`] error rather than an allocation.
pub const MAX_RECORD_BYTES: u32 = 262_144;

/// Largest pcapng block of any type (skipped blocks included) we accept.
pub const MAX_BLOCK_BYTES: u32 = 16 * 1024 * 1024;

/// Largest pcapng block that is parsed in memory (section headers, interface
/// descriptions and packet blocks) and the most the read buffer ever grows
/// to. Packet data is capped at [`MAX_RECORD_BYTES`], so only a block with
/// megabytes of options can exceed it; such a block is reported as corrupt.
pub const MAX_PARSED_BLOCK_BYTES: usize = 4 * 1024 * 1024;

/// Initial read buffer size: also the size of each `read` call on the input.
/// 1 MiB measured faster than 4 MiB, and 256 KiB faster than 1 MiB on a CPU
/// with 1 MiB of L2 per core: the kernel's copy is still in L2 when the
/// parser reads it (docs/sensor-core.md, "Machine change"). It still holds
/// several maximum-size records.
pub const READ_BUFFER_BYTES: usize = 256 * 1024;

/// Most interfaces (IDBs) one pcapng section may define.
pub const MAX_INTERFACES: u32 = 4096;

/// One captured frame, borrowed from the source's buffer until the next call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapturedPacket<'a> {
    /// Capture time (file timestamps are converted to ns since the epoch).
    pub ts: Timestamp,
    /// Link-layer header type of `data`.
    pub link_type: LinkType,
    /// The captured bytes (possibly fewer than `orig_len`).
    pub data: &'a [u8],
    /// Length of the frame on the wire.
    pub orig_len: u32,
    /// Interface index: the pcapng IDB number within its section, 0 for pcap.
    pub interface: u32,
}

/// Every capture backend (file, libpcap, eBPF ring buffer) implements this.
///
/// File sources end by themselves: `Ok(None)` is the clean end. Live sources
/// ([`CaptureSource::is_live`]) never end by themselves: `next_packet` waits
/// at most a short poll interval (well under a second) and returns
/// `Ok(None)` when nothing arrived in it, so that the runtime can advance
/// the engine's clock, print periodic counters and notice a stop request
/// between packets. The runtime, not the source, decides when a live
/// capture stops.
pub trait CaptureSource {
    /// Next packet; `Ok(None)` at a clean end (file sources) or when no
    /// packet arrived within the poll interval (live sources). After an
    /// `Err` a file source is finished (returns `Ok(None)`).
    fn next_packet(&mut self) -> Result<Option<CapturedPacket<'_>>, CaptureError>;

    /// Bytes consumed so far (for progress bars) and total if known.
    fn progress(&self) -> (u64, Option<u64>);

    /// True for live sources (see the trait documentation).
    fn is_live(&self) -> bool {
        false
    }

    /// Losses counted outside this process, by name, as totals since the
    /// source was opened: libpcap's `ps_drop` and `ps_ifdrop`, the eBPF
    /// programs' failed ring-buffer reservations. Empty for files.
    fn drops(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// Every counter of the source by name (losses included), totals since
    /// it was opened, for `--stats-json`. Empty for files.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// Live sources: stop taking new traffic (detach from the kernel);
    /// what is already buffered can still be read until `next_packet`
    /// returns `Ok(None)`. The runtime calls it when a capture stops.
    fn stop(&mut self) {}
}

impl<S: CaptureSource + ?Sized> CaptureSource for Box<S> {
    fn next_packet(&mut self) -> Result<Option<CapturedPacket<'_>>, CaptureError> {
        (**self).next_packet()
    }

    fn progress(&self) -> (u64, Option<u64>) {
        (**self).progress()
    }

    fn is_live(&self) -> bool {
        (**self).is_live()
    }

    fn drops(&self) -> Vec<(&'static str, u64)> {
        (**self).drops()
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        (**self).counters()
    }

    fn stop(&mut self) {
        (**self).stop();
    }
}

/// The format of a capture file, from its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// Classic libpcap format.
    Pcap {
        /// Timestamps have nanosecond (magic `a1b23c4d`) rather than
        /// microsecond resolution.
        nanosecond: bool,
        /// The file was written big-endian.
        big_endian: bool,
        /// Kuznetzov's modified format (magic `a1b2cd34`, 24-byte records).
        modified: bool,
        /// Link type of every packet (FCS bits masked off).
        link_type: LinkType,
        /// The snapshot length in the header (informational only).
        snaplen: u32,
    },
    /// pcapng; link types and timestamp resolutions are per interface.
    PcapNg,
}

enum Reader {
    Pcap(pcap::PcapReader),
    PcapNg(pcapng::NgReader),
}

/// Reads a pcap or pcapng file (or stream) packet by packet.
///
/// ```no_run
/// use shadowtap_sensor::capture::{CaptureSource, FileSource};
///
/// let mut src = FileSource::open("capture.pcap".as_ref())?;
/// while let Some(p) = src.next_packet()? {
///     let _ = (p.ts, p.link_type, p.data.len(), p.orig_len, p.interface);
/// }
/// # Ok::<(), shadowtap_sensor::capture::CaptureError>(())
/// ```
pub struct FileSource {
    input: Input,
    reader: Reader,
    total: Option<u64>,
    done: bool,
}

impl FileSource {
    /// Opens a capture file; `-` means stdin (total size unknown). A
    /// gzip-compressed file (`capture.pcap.gz`, as tshark reads them) is
    /// decompressed as it is read; its errors then name the input
    /// `PATH (gunzipped)` and give offsets into the decompressed bytes.
    pub fn open(path: &Path) -> Result<FileSource, CaptureError> {
        if path.as_os_str() == "-" {
            return Self::from_reader("<stdin>", Box::new(std::io::stdin()), None);
        }
        let name = path.display().to_string();
        let mut file = File::open(path).map_err(|e| CaptureError::io(&name, 0, e))?;
        let total = file
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        if total.is_some()
            && starts_with_gzip_magic(&mut file).map_err(|e| CaptureError::io(&name, 0, e))?
        {
            let gunzip = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file));
            return Self::from_reader(format!("{name} (gunzipped)"), Box::new(gunzip), None);
        }
        Self::from_reader(name, Box::new(file), total)
    }

    /// Reads a capture from any byte stream; `name` is used in errors.
    pub fn from_reader(
        name: impl Into<String>,
        r: Box<dyn Read + Send>,
        total: Option<u64>,
    ) -> Result<FileSource, CaptureError> {
        Self::with_buffer(name.into(), r, total, READ_BUFFER_BYTES)
    }

    /// As [`FileSource::from_reader`] with a chosen initial buffer size
    /// (tests and fuzzing use tiny buffers to exercise refills and growth).
    pub(crate) fn with_buffer(
        name: String,
        r: Box<dyn Read + Send>,
        total: Option<u64>,
        buffer_bytes: usize,
    ) -> Result<FileSource, CaptureError> {
        let mut input = Input::new(name, r, buffer_bytes);
        let have = input.fill(4)?;
        let magic_bytes = input.bytes().first_chunk::<4>().copied();
        let Some(magic_bytes) = magic_bytes else {
            return Err(CaptureError::new(
                input.name(),
                0,
                ErrorKind::Truncated {
                    part: Part::FileHeader,
                    needed: 4,
                    available: have as u64,
                },
            ));
        };
        let reader = if u32::from_le_bytes(magic_bytes) == pcapng::SHB_TYPE {
            Reader::PcapNg(pcapng::NgReader::open(&mut input)?)
        } else {
            Reader::Pcap(pcap::PcapReader::open(&mut input, magic_bytes)?)
        };
        Ok(FileSource {
            input,
            reader,
            total,
            done: false,
        })
    }

    /// The file's format, from its header.
    pub fn format(&self) -> FileFormat {
        match &self.reader {
            Reader::Pcap(r) => r.format(),
            Reader::PcapNg(_) => FileFormat::PcapNg,
        }
    }
}

impl CaptureSource for FileSource {
    #[inline]
    fn next_packet(&mut self) -> Result<Option<CapturedPacket<'_>>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        let result = match &mut self.reader {
            Reader::Pcap(r) => r.next_packet(&mut self.input),
            Reader::PcapNg(r) => r.next_packet(&mut self.input),
        };
        match result {
            Ok(Some(p)) => Ok(Some(p)),
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }

    fn progress(&self) -> (u64, Option<u64>) {
        (self.input.pos(), self.total)
    }
}

/// Reads every packet from `data`, for the fuzz target: must never panic,
/// must terminate, and must stay finished after the first error or end.
pub(crate) fn fuzz_file_reader(data: &[u8]) {
    // Small buffers keep each run cheap and exercise refills and growth.
    for buffer_bytes in [4096, 64] {
        let r = Box::new(std::io::Cursor::new(data.to_vec()));
        let Ok(mut src) =
            FileSource::with_buffer("fuzz".into(), r, Some(data.len() as u64), buffer_bytes)
        else {
            continue;
        };
        let mut packets = 0u64;
        while let Ok(Some(p)) = src.next_packet() {
            assert!(p.data.len() <= MAX_RECORD_BYTES as usize);
            packets += 1;
        }
        assert!(matches!(src.next_packet(), Ok(None)));
        assert!(src.progress().0 <= data.len() as u64);
        // Every packet consumes at least 12 bytes of input.
        assert!(packets <= data.len() as u64 / 12);
    }
}

/// Whether a regular file starts with the gzip magic `1f 8b`; leaves the
/// file at offset 0 either way.
fn starts_with_gzip_magic(file: &mut File) -> std::io::Result<bool> {
    use std::io::{Seek, SeekFrom};
    let mut magic = [0u8; 2];
    let gzip = match file.read_exact(&mut magic) {
        Ok(()) => magic == [0x1f, 0x8b],
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => false,
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(0))?;
    Ok(gzip)
}
