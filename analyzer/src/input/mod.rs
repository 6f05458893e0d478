//! What `analyze` reads: packet captures (through the sensor library, in
//! process), JSON Lines of exchange records (the sensor's `-w` output), and
//! HAR files (browser and proxy exports).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use sha2::{Digest, Sha256};

use shadowtap_proto::ExchangeRecord;

mod har;

pub use har::{har_records, read_har, HarReport, MAX_HAR_BYTES};

/// The kind of an input file, detected from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// pcap or pcapng.
    Capture,
    /// JSON Lines of exchange records.
    Records,
    /// HTTP Archive (JSON with a top-level `log`).
    Har,
}

impl InputKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InputKind::Capture => "capture",
            InputKind::Records => "records",
            InputKind::Har => "har",
        }
    }
}

/// An input's identity: a capture analysed twice is recognised and not
/// counted twice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputIdentity {
    pub kind: InputKind,
    pub bytes: u64,
    /// Hex SHA-256 over the size, the first and the last [`IDENTITY_SPAN`]
    /// bytes: cheap on a large capture, and two different captures of the
    /// same size agree on both ends only by construction.
    pub id: String,
}

/// Bytes hashed at each end of a file for its identity.
pub const IDENTITY_SPAN: u64 = 1 << 20;

/// Detects the kind of `path` and computes its identity.
pub fn identify(path: &Path) -> io::Result<InputIdentity> {
    let mut f = File::open(path)?;
    let bytes = f.metadata()?.len();
    let mut head = vec![0u8; IDENTITY_SPAN.min(bytes) as usize];
    f.read_exact(&mut head)?;
    let kind = detect(&head).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "not a pcap/pcapng capture, a JSON Lines file of exchange records or a HAR file",
        )
    })?;
    let mut h = Sha256::new();
    h.update(bytes.to_le_bytes());
    h.update(&head);
    if bytes > IDENTITY_SPAN {
        let tail_start = bytes.saturating_sub(IDENTITY_SPAN).max(IDENTITY_SPAN);
        f.seek(SeekFrom::Start(tail_start))?;
        let mut tail = Vec::new();
        f.take(IDENTITY_SPAN).read_to_end(&mut tail)?;
        h.update(&tail);
    }
    let id = h
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    Ok(InputIdentity { kind, bytes, id })
}

/// The kind of an input whose first bytes are `head` (`None`: none of
/// them). A records file is recognised by its first line, so `head` should
/// hold it whole.
pub fn detect(head: &[u8]) -> Option<InputKind> {
    const PCAP_MAGICS: [[u8; 4]; 5] = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
        [0xa1, 0xb2, 0xcd, 0x34],
    ];
    if head.len() >= 4 {
        let magic = [head[0], head[1], head[2], head[3]];
        if PCAP_MAGICS.contains(&magic) || magic == [0x0a, 0x0d, 0x0d, 0x0a] {
            return Some(InputKind::Capture);
        }
    }
    // gzip: a compressed capture (`.pcap.gz`), which the sensor's file
    // source decompresses as it reads.
    if head.starts_with(&[0x1f, 0x8b]) {
        return Some(InputKind::Capture);
    }
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
    if text[start] != b'{' {
        return None;
    }
    // A record line starts with `{"schema":`; a HAR document has `"log"`
    // near its top. Look at the first line only.
    let line_end = text[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |p| start + p);
    let first = &text[start..line_end];
    if first.starts_with(b"{\"schema\"") {
        return Some(InputKind::Records);
    }
    let window = &text[start..text.len().min(start + 4096)];
    if window.windows(5).any(|w| w == b"\"log\"") {
        return Some(InputKind::Har);
    }
    // A records file whose first object has another key order.
    if memchr_schema(first) {
        return Some(InputKind::Records);
    }
    None
}

fn memchr_schema(line: &[u8]) -> bool {
    line.windows(9).any(|w| w == b"\"schema\":") && line.windows(8).any(|w| w == b"\"method\"")
}

/// Longest line read from a records file; longer lines are counted bad.
pub const MAX_RECORD_LINE_BYTES: usize = 1 << 20;

/// Outcome of reading a records file.
#[derive(Clone, Debug, Default)]
pub struct RecordsReport {
    pub records: u64,
    /// Lines that were not valid records (counted, skipped).
    pub bad_lines: u64,
    /// The first bad line's number and error, for the message.
    pub first_error: Option<(u64, String)>,
}

/// Reads a JSON Lines file of exchange records, calling `sink` for each.
/// Bad lines are counted and skipped, never fatal.
pub fn read_records(
    path: &Path,
    sink: &mut dyn FnMut(ExchangeRecord),
) -> io::Result<RecordsReport> {
    let reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    records_from(reader, sink)
}

/// [`read_records`] on any buffered reader.
pub fn records_from(
    mut reader: impl BufRead,
    sink: &mut dyn FnMut(ExchangeRecord),
) -> io::Result<RecordsReport> {
    let mut report = RecordsReport::default();
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_RECORD_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.len() > MAX_RECORD_LINE_BYTES && !line.ends_with(b"\n") {
            // Skip the rest of the over-long line.
            let mut rest = Vec::new();
            reader.read_until(b'\n', &mut rest)?;
            report.bad_lines += 1;
            report
                .first_error
                .get_or_insert((number, "line longer than 1 MiB".into()));
            continue;
        }
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        match serde_json::from_slice::<ExchangeRecord>(trimmed) {
            Ok(r) => {
                report.records += 1;
                sink(r);
            }
            Err(e) => {
                report.bad_lines += 1;
                report.first_error.get_or_insert((number, e.to_string()));
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_kinds() {
        assert_eq!(
            detect(&[0xd4, 0xc3, 0xb2, 0xa1, 0]),
            Some(InputKind::Capture)
        );
        assert_eq!(detect(&[0x0a, 0x0d, 0x0d, 0x0a]), Some(InputKind::Capture));
        assert_eq!(detect(&[0x1f, 0x8b, 8, 0]), Some(InputKind::Capture));
        assert_eq!(
            detect(b"{\"schema\":1,\"ts\":\"x\"}\n{\"schema\":1}"),
            Some(InputKind::Records)
        );
        assert_eq!(
            detect(b"{\n  \"log\": {\"version\": \"1.2\"}}"),
            Some(InputKind::Har)
        );
        assert_eq!(detect(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(detect(b""), None);
    }
}
