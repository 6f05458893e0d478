//! Classic libpcap format.
//!
//! ```text
//! global header (24 bytes)
//!   0 magic  a1b2c3d4 (µs) | a1b23c4d (ns) | a1b2cd34 (Kuznetzov), either byte order
//!   4 version major (2), minor (4, any accepted)
//!   8 thiszone, 12 sigfigs (ignored)
//!  16 snaplen (informational)
//!  20 linktype: lower 28 bits; the FCS bits above are ignored
//! record header (16 bytes; 24 in the Kuznetzov format)
//!   0 ts seconds   4 ts µs or ns   8 caplen   12 orig_len
//!  [16 ifindex, 20 protocol, 22 pkt_type, 23 pad]   (Kuznetzov only)
//! ```
//!
//! `caplen` over [`MAX_RECORD_BYTES`] is an error; `caplen` over the header's
//! snaplen or over `orig_len` is tolerated (real writers produce both).

use shadowtap_proto::time::Timestamp;
use shadowtap_proto::wire::LinkType;

use super::error::{CaptureError, ErrorKind, Part};
use super::input::Input;
use super::{CapturedPacket, FileFormat, MAX_RECORD_BYTES};

const MAGIC_US: u32 = 0xa1b2_c3d4;
const MAGIC_NS: u32 = 0xa1b2_3c4d;
const MAGIC_MODIFIED: u32 = 0xa1b2_cd34;
const FILE_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;
const MODIFIED_RECORD_HEADER_LEN: usize = 24;
const LINKTYPE_MASK: u32 = 0x0fff_ffff;

pub(crate) struct PcapReader {
    big_endian: bool,
    /// Multiplier from the fractional timestamp field to nanoseconds.
    frac_to_ns: u64,
    record_header_len: usize,
    format: FileFormat,
    link_type: LinkType,
}

#[inline]
fn u32_at(b: &[u8], at: usize, big_endian: bool) -> u32 {
    let v = match b.get(at..at + 4).and_then(|s| s.first_chunk::<4>()) {
        Some(v) => *v,
        None => [0; 4],
    };
    if big_endian {
        u32::from_be_bytes(v)
    } else {
        u32::from_le_bytes(v)
    }
}

impl PcapReader {
    /// Parses the global header; `magic` is the first four bytes.
    pub(crate) fn open(input: &mut Input, magic: [u8; 4]) -> Result<PcapReader, CaptureError> {
        let le = u32::from_le_bytes(magic);
        let be = u32::from_be_bytes(magic);
        let (big_endian, m) = match (le, be) {
            (MAGIC_US | MAGIC_NS | MAGIC_MODIFIED, _) => (false, le),
            (_, MAGIC_US | MAGIC_NS | MAGIC_MODIFIED) => (true, be),
            _ => {
                return Err(CaptureError::new(
                    input.name(),
                    0,
                    ErrorKind::NotACapture { magic: be },
                ))
            }
        };
        let have = input.fill(FILE_HEADER_LEN)?;
        let Some(h) = input.bytes().first_chunk::<FILE_HEADER_LEN>().copied() else {
            return Err(CaptureError::new(
                input.name(),
                0,
                ErrorKind::Truncated {
                    part: Part::FileHeader,
                    needed: FILE_HEADER_LEN as u64,
                    available: have as u64,
                },
            ));
        };
        let (major, minor) = if big_endian {
            (
                u16::from_be_bytes([h[4], h[5]]),
                u16::from_be_bytes([h[6], h[7]]),
            )
        } else {
            (
                u16::from_le_bytes([h[4], h[5]]),
                u16::from_le_bytes([h[6], h[7]]),
            )
        };
        if major != 2 {
            return Err(CaptureError::new(
                input.name(),
                4,
                ErrorKind::UnsupportedVersion {
                    format: "pcap",
                    major,
                    minor,
                },
            ));
        }
        let snaplen = u32_at(&h, 16, big_endian);
        let link_type = LinkType(u32_at(&h, 20, big_endian) & LINKTYPE_MASK);
        input.take(FILE_HEADER_LEN);
        let nanosecond = m == MAGIC_NS;
        let modified = m == MAGIC_MODIFIED;
        Ok(PcapReader {
            big_endian,
            frac_to_ns: if nanosecond { 1 } else { 1_000 },
            record_header_len: if modified {
                MODIFIED_RECORD_HEADER_LEN
            } else {
                RECORD_HEADER_LEN
            },
            format: FileFormat::Pcap {
                nanosecond,
                big_endian,
                modified,
                link_type,
                snaplen,
            },
            link_type,
        })
    }

    pub(crate) fn format(&self) -> FileFormat {
        self.format
    }

    #[inline]
    pub(crate) fn next_packet<'a>(
        &mut self,
        input: &'a mut Input,
    ) -> Result<Option<CapturedPacket<'a>>, CaptureError> {
        let hlen = self.record_header_len;
        let have = input.fill(hlen)?;
        let Some(h) = input.bytes().first_chunk::<RECORD_HEADER_LEN>() else {
            return self.short_header(input, have);
        };
        if have < hlen {
            return self.short_header(input, have);
        }
        let be = self.big_endian;
        let secs = u32_at(h, 0, be);
        let frac = u32_at(h, 4, be);
        let caplen = u32_at(h, 8, be);
        let orig_len = u32_at(h, 12, be);
        if caplen > MAX_RECORD_BYTES {
            return Err(CaptureError::new(
                input.name(),
                input.pos(),
                ErrorKind::TooLarge {
                    len: caplen.into(),
                    max: MAX_RECORD_BYTES.into(),
                },
            ));
        }
        // caplen <= MAX_RECORD_BYTES, so this cannot overflow.
        let need = hlen + caplen as usize;
        let have = input.fill(need)?;
        if have < need {
            return Err(CaptureError::new(
                input.name(),
                input.pos(),
                ErrorKind::Truncated {
                    part: Part::PacketRecord,
                    needed: caplen.into(),
                    available: have.saturating_sub(hlen) as u64,
                },
            ));
        }
        let ts = Timestamp(
            u64::from(secs)
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::from(frac).saturating_mul(self.frac_to_ns)),
        );
        let record = input.take(need);
        let data = record.get(hlen..).unwrap_or(&[]);
        Ok(Some(CapturedPacket {
            ts,
            link_type: self.link_type,
            data,
            orig_len,
            interface: 0,
        }))
    }

    #[cold]
    fn short_header<'a>(
        &self,
        input: &Input,
        have: usize,
    ) -> Result<Option<CapturedPacket<'a>>, CaptureError> {
        if have == 0 {
            return Ok(None);
        }
        Err(CaptureError::new(
            input.name(),
            input.pos(),
            ErrorKind::Truncated {
                part: Part::RecordHeader,
                needed: self.record_header_len as u64,
                available: have as u64,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{pcap_file, read_all, Endian, Rec};
    use super::super::{CaptureError, CaptureSource, ErrorKind, FileFormat, FileSource, Part};
    use super::*;

    fn open(bytes: Vec<u8>) -> Result<FileSource, CaptureError> {
        FileSource::from_reader("t.pcap", Box::new(std::io::Cursor::new(bytes)), None)
    }

    fn recs() -> Vec<Rec> {
        vec![
            Rec {
                secs: 1_700_000_000,
                frac: 1,
                data: b"hello".to_vec(),
                orig_len: 5,
            },
            Rec {
                secs: 1_700_000_001,
                frac: 999_999,
                data: vec![0xab; 1514],
                orig_len: 1514,
            },
            Rec {
                secs: 0,
                frac: 0,
                data: vec![],
                orig_len: 60,
            },
            Rec {
                secs: 2,
                frac: 7,
                data: b"tail".to_vec(),
                orig_len: 2,
            },
        ]
    }

    #[test]
    fn reads_all_variants() {
        for endian in [Endian::Little, Endian::Big] {
            for nanos in [false, true] {
                let file = pcap_file(endian, nanos, 101 | 0x1000_0000, &recs());
                for buf in [crate::capture::READ_BUFFER_BYTES, 16, 100] {
                    let mut src = FileSource::with_buffer(
                        "t".into(),
                        Box::new(std::io::Cursor::new(file.clone())),
                        Some(file.len() as u64),
                        buf,
                    )
                    .unwrap();
                    assert_eq!(
                        src.format(),
                        FileFormat::Pcap {
                            nanosecond: nanos,
                            big_endian: endian == Endian::Big,
                            modified: false,
                            link_type: LinkType::RAW,
                            snaplen: 65535,
                        }
                    );
                    let (pkts, err) = read_all(&mut src);
                    assert!(err.is_none(), "{err:?}");
                    assert_eq!(pkts.len(), 4);
                    let mult = if nanos { 1 } else { 1000 };
                    for (p, r) in pkts.iter().zip(recs()) {
                        assert_eq!(
                            p.ts,
                            Timestamp(r.secs as u64 * 1_000_000_000 + r.frac as u64 * mult)
                        );
                        assert_eq!(p.link_type, LinkType::RAW);
                        assert_eq!(p.data, r.data);
                        assert_eq!(p.orig_len, r.orig_len);
                        assert_eq!(p.interface, 0);
                    }
                    assert_eq!(src.progress(), (file.len() as u64, Some(file.len() as u64)));
                }
            }
        }
    }

    #[test]
    fn modified_format() {
        let mut file = pcap_file(Endian::Little, false, 1, &[]);
        file[0..4].copy_from_slice(&MAGIC_MODIFIED.to_le_bytes());
        for r in recs() {
            file.extend_from_slice(&r.secs.to_le_bytes());
            file.extend_from_slice(&r.frac.to_le_bytes());
            file.extend_from_slice(&(r.data.len() as u32).to_le_bytes());
            file.extend_from_slice(&r.orig_len.to_le_bytes());
            file.extend_from_slice(&[7, 0, 0, 0, 8, 0, 0, 0]);
            file.extend_from_slice(&r.data);
        }
        let mut src = open(file).unwrap();
        assert!(matches!(
            src.format(),
            FileFormat::Pcap { modified: true, .. }
        ));
        let (pkts, err) = read_all(&mut src);
        assert!(err.is_none());
        let want: Vec<Vec<u8>> = recs().into_iter().map(|r| r.data).collect();
        let got: Vec<Vec<u8>> = pkts.into_iter().map(|p| p.data).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn bad_magic_and_version() {
        let e = open(b"hello world, this is not a pcap".to_vec())
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::NotACapture { magic: 0x6865_6c6c });
        assert_eq!(e.offset(), 0);
        assert!(e
            .to_string()
            .starts_with("t.pcap: not a pcap or pcapng file at byte offset 0"));

        let mut file = pcap_file(Endian::Big, false, 1, &recs());
        file[4..6].copy_from_slice(&3u16.to_be_bytes());
        let e = open(file).err().unwrap();
        assert_eq!(
            e.kind(),
            ErrorKind::UnsupportedVersion {
                format: "pcap",
                major: 3,
                minor: 4
            }
        );
        // Any 2.x is accepted.
        let mut file = pcap_file(Endian::Big, false, 1, &recs());
        file[6..8].copy_from_slice(&3u16.to_be_bytes());
        assert_eq!(read_all(&mut open(file).unwrap()).0.len(), 4);
    }

    #[test]
    fn empty_and_short_headers() {
        let e = open(vec![]).err().unwrap();
        assert_eq!(
            e.kind(),
            ErrorKind::Truncated {
                part: Part::FileHeader,
                needed: 4,
                available: 0
            }
        );
        assert_eq!(
            e.to_string(),
            "t.pcap: empty file at byte offset 0: no pcap or pcapng header"
        );
        let file = pcap_file(Endian::Little, false, 1, &[]);
        for cut in 1..24 {
            let e = open(file[..cut].to_vec()).err().unwrap();
            assert!(
                matches!(
                    e.kind(),
                    ErrorKind::Truncated {
                        part: Part::FileHeader,
                        ..
                    }
                ),
                "{cut}: {e}"
            );
            assert_eq!(e.offset(), 0);
        }
        // Header only: a clean, empty capture.
        let (pkts, err) = read_all(&mut open(file).unwrap());
        assert!(pkts.is_empty() && err.is_none());
    }

    #[test]
    fn truncation_reports_offset_after_delivering_earlier_packets() {
        let file = pcap_file(Endian::Little, false, 1, &recs());
        // Record offsets: 24, 24+16+5=45, 45+16+1514=1575, 1575+16=1591, end 1591+16+4=1611.
        let starts = [24usize, 45, 1575, 1591];
        assert_eq!(file.len(), 1611);
        for cut in 24..file.len() {
            let (pkts, err) = read_all(&mut open(file[..cut].to_vec()).unwrap());
            let complete = starts.iter().filter(|&&s| s < cut).count();
            let boundary = starts.contains(&cut);
            if boundary {
                assert!(err.is_none(), "{cut}");
                assert_eq!(pkts.len(), complete);
                continue;
            }
            let e = err.expect("error");
            assert_eq!(pkts.len(), complete - 1, "{cut}");
            let rec_start = starts[complete - 1];
            assert_eq!(e.offset(), rec_start as u64, "{cut}");
            let in_rec = cut - rec_start;
            if in_rec < 16 {
                assert_eq!(
                    e.kind(),
                    ErrorKind::Truncated {
                        part: Part::RecordHeader,
                        needed: 16,
                        available: in_rec as u64
                    }
                );
            } else {
                let ErrorKind::Truncated {
                    part: Part::PacketRecord,
                    available,
                    ..
                } = e.kind()
                else {
                    panic!("{e}")
                };
                assert_eq!(available, (in_rec - 16) as u64);
            }
        }
        let e = read_all(&mut open(file[..1000].to_vec()).unwrap())
            .1
            .unwrap();
        assert_eq!(
            e.to_string(),
            "t.pcap: truncated packet record at byte offset 45: header says 1514 bytes, 939 left"
        );
    }

    #[test]
    fn caplen_over_cap_is_an_error_and_caplen_over_orig_len_is_not() {
        let mut r = recs();
        r[1].orig_len = 10; // caplen 1514 > orig_len 10: tolerated
        let big = MAX_RECORD_BYTES as usize + 1;
        r.push(Rec {
            secs: 1,
            frac: 1,
            data: vec![0; big],
            orig_len: big as u32,
        });
        let file = pcap_file(Endian::Big, true, 1, &r);
        let (pkts, err) = read_all(&mut open(file).unwrap());
        assert_eq!(pkts.len(), 4);
        let e = err.unwrap();
        assert_eq!(
            e.kind(),
            ErrorKind::TooLarge {
                len: big as u64,
                max: 262_144
            }
        );
        assert_eq!(e.offset(), 1611);
        // Exactly at the cap is fine.
        let r = vec![Rec {
            secs: 1,
            frac: 1,
            data: vec![1; big - 1],
            orig_len: 1,
        }];
        let (pkts, err) = read_all(&mut open(pcap_file(Endian::Big, true, 1, &r)).unwrap());
        assert!(err.is_none());
        assert_eq!(pkts[0].data.len(), MAX_RECORD_BYTES as usize);
    }

    #[test]
    fn timestamps_saturate() {
        let r = vec![Rec {
            secs: u32::MAX,
            frac: u32::MAX,
            data: vec![],
            orig_len: 0,
        }];
        for nanos in [false, true] {
            let (pkts, _) = read_all(&mut open(pcap_file(Endian::Little, nanos, 1, &r)).unwrap());
            let m = if nanos { 1 } else { 1000 };
            assert_eq!(
                pkts[0].ts,
                Timestamp(u32::MAX as u64 * 1_000_000_000 + u32::MAX as u64 * m)
            );
        }
    }
}
