//! Faults raised while reading a capture file.
//!
//! A [`CaptureError`] always names the input (`path`), the byte offset of the
//! damaged header, record or block, and what is wrong with it. The `Display`
//! text is meant for humans and is not a stable interface; match on
//! [`CaptureError::kind`] instead.

use std::fmt;
use std::io;

/// A fault while opening or reading a capture.
///
/// Example messages:
///
/// ```text
/// capture.pcap: truncated packet record at byte offset 123456: header says 1514 bytes, 200 left
/// capture.pcapng: corrupt block at byte offset 2048: block total length 13 is not a multiple of 4
/// notes.txt: not a pcap or pcapng file at byte offset 0: unknown magic number 0x6c6c6568
/// ```
#[derive(Debug, thiserror::Error)]
pub struct CaptureError {
    path: String,
    offset: u64,
    kind: ErrorKind,
    #[source]
    source: Option<io::Error>,
}

impl CaptureError {
    pub(crate) fn new(path: &str, offset: u64, kind: ErrorKind) -> Self {
        CaptureError {
            path: path.to_owned(),
            offset,
            kind,
            source: None,
        }
    }

    pub(crate) fn io(path: &str, offset: u64, error: io::Error) -> Self {
        CaptureError {
            path: path.to_owned(),
            offset,
            kind: ErrorKind::Io,
            source: Some(error),
        }
    }

    /// A live capture device (interface) failed while reading; `name` is the
    /// interface. The offset is 0.
    pub fn device(name: &str, error: io::Error) -> Self {
        CaptureError {
            path: name.to_owned(),
            offset: 0,
            kind: ErrorKind::Device,
            source: Some(error),
        }
    }

    /// Byte offset (from the start of the input) of the damaged header,
    /// record or block, or where an I/O error happened.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The input's name: the path given to `open`, `<stdin>`, or the name
    /// given to `from_reader`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (path, offset) = (&self.path, self.offset);
        match self.kind {
            ErrorKind::Io => match &self.source {
                Some(e) => write!(f, "{path}: I/O error at byte offset {offset}: {e}"),
                None => write!(f, "{path}: I/O error at byte offset {offset}"),
            },
            ErrorKind::Device => match &self.source {
                Some(e) => write!(f, "{path}: live capture failed: {e}"),
                None => write!(f, "{path}: live capture failed"),
            },
            ErrorKind::NotACapture { magic } => write!(
                f,
                "{path}: not a pcap or pcapng file at byte offset {offset}: \
                 unknown magic number 0x{magic:08x}"
            ),
            ErrorKind::UnsupportedVersion {
                format,
                major,
                minor,
            } => write!(
                f,
                "{path}: unsupported {format} version {major}.{minor} at byte offset {offset}"
            ),
            ErrorKind::Truncated {
                part: Part::FileHeader,
                available: 0,
                ..
            } if offset == 0 => {
                write!(
                    f,
                    "{path}: empty file at byte offset 0: no pcap or pcapng header"
                )
            }
            ErrorKind::Truncated {
                part,
                needed,
                available,
            } if part.is_declared() => write!(
                f,
                "{path}: truncated {part} at byte offset {offset}: \
                 header says {needed} bytes, {available} left"
            ),
            ErrorKind::Truncated {
                part,
                needed,
                available,
            } => write!(
                f,
                "{path}: truncated {part} at byte offset {offset}: \
                 need {needed} bytes, {available} left"
            ),
            ErrorKind::Corrupt(c) => {
                write!(f, "{path}: corrupt block at byte offset {offset}: {c}")
            }
            ErrorKind::TooLarge { len, max } => write!(
                f,
                "{path}: oversized packet record at byte offset {offset}: \
                 captured length {len} exceeds the maximum of {max} bytes"
            ),
        }
    }
}

/// The kinds of [`CaptureError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Reading the input failed; [`std::error::Error::source`] has the cause.
    Io,
    /// A live capture device failed while reading (the interface went away,
    /// the socket failed); [`std::error::Error::source`] has the cause.
    Device,
    /// The first four bytes are neither a pcap nor a pcapng magic number.
    NotACapture { magic: u32 },
    /// A pcap file header or pcapng section header with a version we can't read.
    UnsupportedVersion {
        format: &'static str,
        major: u16,
        minor: u16,
    },
    /// The input ended inside a header, record or block.
    Truncated {
        part: Part,
        needed: u64,
        available: u64,
    },
    /// A pcapng block is malformed.
    Corrupt(Corruption),
    /// A record's captured length is over [`super::MAX_RECORD_BYTES`].
    TooLarge { len: u64, max: u64 },
}

/// Which part of the input was cut short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// pcap global header or the first pcapng section header's fixed part.
    FileHeader,
    /// pcap per-record header.
    RecordHeader,
    /// pcap record data (the header gave its length).
    PacketRecord,
    /// pcapng block type and length.
    BlockHeader,
    /// pcapng block body (the header gave its length).
    Block,
}

impl Part {
    /// Whether `needed` came from a length field in the file.
    fn is_declared(self) -> bool {
        matches!(self, Part::PacketRecord | Part::Block)
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::FileHeader => "file header",
            Part::RecordHeader => "record header",
            Part::PacketRecord => "packet record",
            Part::BlockHeader => "block header",
            Part::Block => "block",
        })
    }
}

/// Ways a pcapng block can be malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// Block total length not a multiple of 4.
    LengthNotAligned { len: u32 },
    /// Block total length below the minimum for its type.
    LengthTooSmall { block_type: u32, len: u32, min: u32 },
    /// Block total length over [`super::MAX_BLOCK_BYTES`] (or, for blocks that
    /// are parsed rather than skipped, over [`super::MAX_PARSED_BLOCK_BYTES`]).
    LengthTooLarge { len: u32, max: u32 },
    /// The trailing copy of the block length differs from the leading one.
    TrailingLengthMismatch { leading: u32, trailing: u32 },
    /// A section header whose byte-order magic is not 0x1a2b3c4d.
    BadByteOrderMagic { magic: u32 },
    /// A packet block references an interface no IDB in this section defined.
    UnknownInterface { interface: u32, defined: u32 },
    /// A section defines more than [`super::MAX_INTERFACES`] interfaces.
    TooManyInterfaces { max: u32 },
    /// A packet block's captured length runs past the end of the block.
    PacketPastBlockEnd { caplen: u32, room: u32 },
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Corruption::LengthNotAligned { len } => {
                write!(f, "block total length {len} is not a multiple of 4")
            }
            Corruption::LengthTooSmall {
                block_type,
                len,
                min,
            } => write!(
                f,
                "block total length {len} is below the minimum of {min} for block type \
                 0x{block_type:08x}"
            ),
            Corruption::LengthTooLarge { len, max } => {
                write!(f, "block total length {len} exceeds the maximum of {max}")
            }
            Corruption::TrailingLengthMismatch { leading, trailing } => write!(
                f,
                "trailing block length {trailing} does not match leading block length {leading}"
            ),
            Corruption::BadByteOrderMagic { magic } => {
                write!(
                    f,
                    "section header byte-order magic 0x{magic:08x} is not 0x1a2b3c4d"
                )
            }
            Corruption::UnknownInterface { interface, defined } => write!(
                f,
                "packet references interface {interface} but the section defines {defined}"
            ),
            Corruption::TooManyInterfaces { max } => {
                write!(f, "section defines more than {max} interfaces")
            }
            Corruption::PacketPastBlockEnd { caplen, room } => write!(
                f,
                "captured length {caplen} runs past the end of the block ({room} bytes of room)"
            ),
        }
    }
}
