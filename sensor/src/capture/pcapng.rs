//! pcapng (draft-ietf-opsawg-pcapng).
//!
//! ```text
//! every block:   type u32 | total length u32 | body ... | total length u32
//! SHB 0x0a0d0d0a  byte-order magic 1a2b3c4d | major 1 | minor | section length | options
//! IDB 1           link type u16 | reserved u16 | snaplen u32 | options (9 if_tsresol, 14 if_tsoffset)
//! EPB 6           interface u32 | ts high | ts low | caplen | orig len | data (padded) | options
//! SPB 3           orig len | data (padded)
//! OPB 2           interface u16 | drops u16 | ts high | ts low | caplen | orig len | data | options
//! ```
//!
//! Each SHB starts a new section with its own byte order and resets the
//! interface table. Other block types (NRB, ISB, DSB, custom, unknown) are
//! skipped by their length without being buffered; their trailing length is
//! still checked. A Simple Packet Block has no timestamp: it gets the last
//! timestamp seen in the file (0 if none yet) and interface 0.

use shadowtap_proto::time::Timestamp;
use shadowtap_proto::wire::LinkType;

use super::error::{CaptureError, Corruption, ErrorKind, Part};
use super::input::Input;
use super::{
    CapturedPacket, MAX_BLOCK_BYTES, MAX_INTERFACES, MAX_PARSED_BLOCK_BYTES, MAX_RECORD_BYTES,
};

/// Section header block type; symmetric, so it reads the same in both orders.
pub(crate) const SHB_TYPE: u32 = 0x0A0D_0D0A;
const IDB_TYPE: u32 = 1;
const OPB_TYPE: u32 = 2;
const SPB_TYPE: u32 = 3;
const EPB_TYPE: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

/// Offset of packet data in EPB and OPB.
const PACKET_DATA_AT: usize = 28;
/// Offset of packet data in SPB.
const SPB_DATA_AT: usize = 12;

#[inline]
fn rd32(b: &[u8], at: usize, big_endian: bool) -> u32 {
    let v = match b.get(at..).and_then(|s| s.first_chunk::<4>()) {
        Some(v) => *v,
        None => [0; 4],
    };
    if big_endian {
        u32::from_be_bytes(v)
    } else {
        u32::from_le_bytes(v)
    }
}

#[inline]
fn rd16(b: &[u8], at: usize, big_endian: bool) -> u16 {
    let v = match b.get(at..).and_then(|s| s.first_chunk::<2>()) {
        Some(v) => *v,
        None => [0; 2],
    };
    if big_endian {
        u16::from_be_bytes(v)
    } else {
        u16::from_le_bytes(v)
    }
}

/// How an interface's timestamp units convert to nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolution {
    /// units × n (10^-k with k ≤ 9; n = 0 for k ≥ 29, which always rounds to 0).
    Mul(u64),
    /// units ÷ n (10^-k with 9 < k < 29).
    Div(u64),
    /// units × 10^9 ÷ 2^k.
    Pow2(u32),
}

impl Resolution {
    const MICROS: Resolution = Resolution::Mul(1_000);

    /// From the `if_tsresol` option byte.
    fn from_tsresol(v: u8) -> Resolution {
        let k = u32::from(v & 0x7f);
        if v & 0x80 != 0 {
            return Resolution::Pow2(k);
        }
        if k <= 9 {
            Resolution::Mul(10u64.pow(9 - k))
        } else {
            match 10u64.checked_pow(k - 9) {
                Some(d) => Resolution::Div(d),
                None => Resolution::Mul(0),
            }
        }
    }

    #[inline]
    fn to_nanos(self, units: u64) -> u64 {
        match self {
            Resolution::Mul(m) => units.saturating_mul(m),
            Resolution::Div(d) => units / d.max(1),
            Resolution::Pow2(k) => {
                let ns = (u128::from(units) * 1_000_000_000)
                    .checked_shr(k)
                    .unwrap_or(0);
                u64::try_from(ns).unwrap_or(u64::MAX)
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    link_type: LinkType,
    resolution: Resolution,
    /// `if_tsoffset`, seconds added to every timestamp.
    offset_secs: i64,
}

impl Interface {
    #[inline]
    fn timestamp(&self, units: u64) -> Timestamp {
        let ns = self.resolution.to_nanos(units);
        if self.offset_secs == 0 {
            return Timestamp(ns);
        }
        let shifted = i128::from(ns) + i128::from(self.offset_secs) * 1_000_000_000;
        Timestamp(u64::try_from(shifted.max(0)).unwrap_or(u64::MAX))
    }
}

pub(crate) struct NgReader {
    big_endian: bool,
    interfaces: Vec<Interface>,
    last_ts: Timestamp,
}

impl NgReader {
    /// Reads the first section header. The caller has seen the SHB type.
    pub(crate) fn open(input: &mut Input) -> Result<NgReader, CaptureError> {
        let have = input.fill(12)?;
        if have < 12 {
            return Err(CaptureError::new(
                input.name(),
                0,
                ErrorKind::Truncated {
                    part: Part::FileHeader,
                    needed: 12,
                    available: have as u64,
                },
            ));
        }
        let mut r = NgReader {
            big_endian: false,
            interfaces: Vec::new(),
            last_ts: Timestamp(0),
        };
        // The first block is the SHB (the caller checked its type): this
        // consumes it or fails.
        r.next_block(input)?;
        Ok(r)
    }

    pub(crate) fn next_packet<'a>(
        &mut self,
        input: &'a mut Input,
    ) -> Result<Option<CapturedPacket<'a>>, CaptureError> {
        loop {
            let have = input.fill(12)?;
            if have == 0 {
                return Ok(None);
            }
            if let Some(p) = self.next_block_header_checked(input, have)? {
                return Ok(Some(self.packet(input, p)));
            }
        }
    }

    /// Processes one block at the start of the buffer (`have` > 0 bytes
    /// available). Returns `Some` for a packet block (not yet consumed),
    /// `None` for a block that was consumed.
    fn next_block_header_checked(
        &mut self,
        input: &mut Input,
        have: usize,
    ) -> Result<Option<PacketAt>, CaptureError> {
        if have < 12 {
            return Err(CaptureError::new(
                input.name(),
                input.pos(),
                ErrorKind::Truncated {
                    part: Part::BlockHeader,
                    needed: 12,
                    available: have as u64,
                },
            ));
        }
        self.next_block(input)
    }

    /// Reads one block whose first 12 bytes are buffered. Non-packet blocks
    /// are consumed and give `None`; packet blocks are validated and
    /// described, and left in the buffer for [`NgReader::packet`].
    fn next_block(&mut self, input: &mut Input) -> Result<Option<PacketAt>, CaptureError> {
        let at = input.pos();
        let name = input.name();
        let corrupt = |c| Err(CaptureError::new(name, at, ErrorKind::Corrupt(c)));
        let b = input.bytes();
        let raw_type = rd32(b, 0, false);
        if raw_type == SHB_TYPE {
            self.big_endian = match rd32(b, 8, false) {
                BYTE_ORDER_MAGIC => false,
                m if m.swap_bytes() == BYTE_ORDER_MAGIC => true,
                m => {
                    return corrupt(Corruption::BadByteOrderMagic {
                        magic: m.swap_bytes(),
                    })
                }
            };
        }
        let be = self.big_endian;
        let block_type = rd32(b, 0, be);
        let len = rd32(b, 4, be);
        if len % 4 != 0 {
            return corrupt(Corruption::LengthNotAligned { len });
        }
        let min = match block_type {
            SHB_TYPE => 28,
            IDB_TYPE => 20,
            EPB_TYPE | OPB_TYPE => 32,
            SPB_TYPE => 16,
            _ => 12,
        };
        if len < min {
            return corrupt(Corruption::LengthTooSmall {
                block_type,
                len,
                min,
            });
        }
        if len > MAX_BLOCK_BYTES {
            return corrupt(Corruption::LengthTooLarge {
                len,
                max: MAX_BLOCK_BYTES,
            });
        }
        let parsed = matches!(
            block_type,
            SHB_TYPE | IDB_TYPE | EPB_TYPE | SPB_TYPE | OPB_TYPE
        );
        let Ok(ulen) = usize::try_from(len) else {
            return corrupt(Corruption::LengthTooLarge {
                len,
                max: MAX_BLOCK_BYTES,
            });
        };
        if !parsed {
            return self.skip_block(input, at, len).map(|()| None);
        }
        if ulen > MAX_PARSED_BLOCK_BYTES {
            let max = u32::try_from(MAX_PARSED_BLOCK_BYTES).unwrap_or(u32::MAX);
            return corrupt(Corruption::LengthTooLarge { len, max });
        }
        // `corrupt` borrowed the name; refilling needs `input` mutably.
        let have = input.fill(ulen)?;
        let name = input.name();
        let err = |kind| Err(CaptureError::new(name, at, kind));
        let corrupt = |c| Err(CaptureError::new(name, at, ErrorKind::Corrupt(c)));
        let Some(block) = input.bytes().get(..ulen) else {
            return err(ErrorKind::Truncated {
                part: Part::Block,
                needed: len.into(),
                available: have as u64,
            });
        };
        let trailing = rd32(block, ulen - 4, be);
        if trailing != len {
            return corrupt(Corruption::TrailingLengthMismatch {
                leading: len,
                trailing,
            });
        }
        match block_type {
            SHB_TYPE => {
                let (major, minor) = (rd16(block, 12, be), rd16(block, 14, be));
                if major != 1 {
                    return err(ErrorKind::UnsupportedVersion {
                        format: "pcapng",
                        major,
                        minor,
                    });
                }
                self.interfaces.clear();
                input.take(ulen);
                Ok(None)
            }
            IDB_TYPE => {
                if self.interfaces.len() >= MAX_INTERFACES as usize {
                    return corrupt(Corruption::TooManyInterfaces {
                        max: MAX_INTERFACES,
                    });
                }
                let iface = parse_idb(block, be);
                self.interfaces.push(iface);
                input.take(ulen);
                Ok(None)
            }
            EPB_TYPE | OPB_TYPE => {
                let (iface, ts_at) = if block_type == EPB_TYPE {
                    (rd32(block, 8, be), 12)
                } else {
                    (u32::from(rd16(block, 8, be)), 12)
                };
                let units = (u64::from(rd32(block, ts_at, be)) << 32)
                    | u64::from(rd32(block, ts_at + 4, be));
                let caplen = rd32(block, 20, be);
                let orig_len = rd32(block, 24, be);
                if caplen > MAX_RECORD_BYTES {
                    return err(ErrorKind::TooLarge {
                        len: caplen.into(),
                        max: MAX_RECORD_BYTES.into(),
                    });
                }
                // len >= 32, so room is well defined.
                let room = len - (PACKET_DATA_AT as u32) - 4;
                if caplen > room {
                    return corrupt(Corruption::PacketPastBlockEnd { caplen, room });
                }
                let Some(i) = self.interface(iface) else {
                    let defined = self.interfaces.len() as u32;
                    return corrupt(Corruption::UnknownInterface {
                        interface: iface,
                        defined,
                    });
                };
                let ts = i.timestamp(units);
                self.last_ts = ts;
                Ok(Some(PacketAt {
                    block_len: ulen,
                    data_at: PACKET_DATA_AT,
                    caplen: caplen as usize,
                    orig_len,
                    ts,
                    link_type: i.link_type,
                    interface: iface,
                }))
            }
            _ => {
                // SPB: interface 0, no timestamp.
                let orig_len = rd32(block, 8, be);
                let room = len - (SPB_DATA_AT as u32) - 4;
                let caplen = orig_len.min(room);
                if caplen > MAX_RECORD_BYTES {
                    return err(ErrorKind::TooLarge {
                        len: caplen.into(),
                        max: MAX_RECORD_BYTES.into(),
                    });
                }
                let Some(i) = self.interface(0) else {
                    return corrupt(Corruption::UnknownInterface {
                        interface: 0,
                        defined: 0,
                    });
                };
                Ok(Some(PacketAt {
                    block_len: ulen,
                    data_at: SPB_DATA_AT,
                    caplen: caplen as usize,
                    orig_len,
                    ts: self.last_ts,
                    link_type: i.link_type,
                    interface: 0,
                }))
            }
        }
    }

    #[inline]
    fn interface(&self, id: u32) -> Option<Interface> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.interfaces.get(i))
            .copied()
    }

    /// Consumes a validated packet block and returns its packet.
    #[inline]
    fn packet<'a>(&self, input: &'a mut Input, p: PacketAt) -> CapturedPacket<'a> {
        let block = input.take(p.block_len);
        let data = block.get(p.data_at..p.data_at + p.caplen).unwrap_or(&[]);
        CapturedPacket {
            ts: p.ts,
            link_type: p.link_type,
            data,
            orig_len: p.orig_len,
            interface: p.interface,
        }
    }

    /// Skips a block we don't parse without buffering it, then checks its
    /// trailing length.
    #[cold]
    fn skip_block(&self, input: &mut Input, at: u64, len: u32) -> Result<(), CaptureError> {
        let body = u64::from(len) - 4;
        let skipped = input.skip(body)?;
        let have = if skipped == body { input.fill(4)? } else { 0 };
        let Some(t) = input.bytes().first_chunk::<4>() else {
            return Err(CaptureError::new(
                input.name(),
                at,
                ErrorKind::Truncated {
                    part: Part::Block,
                    needed: len.into(),
                    available: skipped + have as u64,
                },
            ));
        };
        let trailing = if self.big_endian {
            u32::from_be_bytes(*t)
        } else {
            u32::from_le_bytes(*t)
        };
        if trailing != len {
            return Err(CaptureError::new(
                input.name(),
                at,
                ErrorKind::Corrupt(Corruption::TrailingLengthMismatch {
                    leading: len,
                    trailing,
                }),
            ));
        }
        input.take(4);
        Ok(())
    }
}

/// A validated packet block at the start of the buffer.
struct PacketAt {
    block_len: usize,
    data_at: usize,
    caplen: usize,
    orig_len: u32,
    ts: Timestamp,
    link_type: LinkType,
    interface: u32,
}

/// Parses an IDB (whole block, length already validated). Malformed options
/// end option parsing; what was read so far is kept.
fn parse_idb(block: &[u8], be: bool) -> Interface {
    let mut iface = Interface {
        link_type: LinkType(u32::from(rd16(block, 8, be))),
        resolution: Resolution::MICROS,
        offset_secs: 0,
    };
    let opts_end = block.len().saturating_sub(4);
    let mut at = 16;
    while at + 4 <= opts_end {
        let code = rd16(block, at, be);
        let len = usize::from(rd16(block, at + 2, be));
        if code == OPT_END {
            break;
        }
        let Some(value) = block
            .get(at + 4..at + 4 + len)
            .filter(|_| at + 4 + len <= opts_end)
        else {
            break;
        };
        match (code, value) {
            (OPT_IF_TSRESOL, [v, ..]) => iface.resolution = Resolution::from_tsresol(*v),
            (OPT_IF_TSOFFSET, [a, b, c, d, e, f, g, h, ..]) => {
                let bytes = [*a, *b, *c, *d, *e, *f, *g, *h];
                iface.offset_secs = if be {
                    i64::from_be_bytes(bytes)
                } else {
                    i64::from_le_bytes(bytes)
                };
            }
            _ => {}
        }
        at += 4 + len.next_multiple_of(4);
    }
    iface
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{open_with, read_all, Endian, NgWriter, Owned};
    use super::super::{CaptureSource, FileFormat, READ_BUFFER_BYTES};
    use super::*;

    const SEC: u64 = 1_000_000_000;

    /// Two sections (LE then BE), two interfaces each with different link
    /// types and resolutions, EPB/SPB/OPB, and blocks that must be skipped.
    fn sample() -> (Vec<u8>, Vec<Owned>, Vec<usize>) {
        let mut w = NgWriter::new(Endian::Little);
        let mut starts = Vec::new();
        let mut want = Vec::new();
        w.shb(Endian::Little);
        // Interface 0: Ethernet, ns resolution, +10 s offset.
        w.idb(1, Some(9), Some(10));
        // Interface 1: raw IP, 2^-10 s resolution.
        w.idb(101, Some(0x80 | 10), None);
        starts.push(w.epb(0, 1_700_000_000 * SEC + 5, b"eth frame", 60));
        want.push(Owned {
            ts: Timestamp((1_700_000_010) * SEC + 5),
            link_type: LinkType::ETHERNET,
            data: b"eth frame".to_vec(),
            orig_len: 60,
            interface: 0,
        });
        // Name resolution block, then an unknown and a custom block: skipped.
        w.block(4, &[1, 0, 8, 0, 10, 0, 0, 1, 0, 0, 0, 0]);
        w.block(0x0BAD, &[0xAA; 40]);
        w.block(0x4000_0BAD, &[]);
        // 1536 units of 2^-10 s = 1.5 s.
        starts.push(w.epb(1, 1536, &[0x45, 0, 0, 20], 20));
        want.push(Owned {
            ts: Timestamp(1_500_000_000),
            link_type: LinkType::RAW,
            data: vec![0x45, 0, 0, 20],
            orig_len: 20,
            interface: 1,
        });
        // SPB: interface 0, timestamp of the previous packet.
        starts.push(w.spb(b"simple", 6));
        want.push(Owned {
            ts: Timestamp(1_500_000_000),
            link_type: LinkType::ETHERNET,
            data: b"simple".to_vec(),
            orig_len: 6,
            interface: 0,
        });
        // Interface statistics block: skipped.
        w.block(5, &[0; 12]);
        // Section 2, big-endian: interfaces reset.
        w.shb(Endian::Big);
        w.idb(113, None, None); // LINUX_SLL, default µs
        w.idb(1, Some(3), Some(-5)); // ms, -5 s
        starts.push(w.opb(1, 7_000, b"obsolete", 100));
        want.push(Owned {
            ts: Timestamp(2 * SEC), // 7000 ms - 5 s
            link_type: LinkType::ETHERNET,
            data: b"obsolete".to_vec(),
            orig_len: 100,
            interface: 1,
        });
        starts.push(w.epb(0, 1_700_000_000_123_456, &[7; 1514], 1514));
        want.push(Owned {
            ts: Timestamp(1_700_000_000_123_456_000),
            link_type: LinkType::LINUX_SLL,
            data: vec![7; 1514],
            orig_len: 1514,
            interface: 0,
        });
        // Empty-caplen EPB; 3000 ms - 5 s saturates at 0.
        starts.push(w.epb(1, 3_000, &[], 0));
        want.push(Owned {
            ts: Timestamp(0),
            link_type: LinkType::ETHERNET,
            data: vec![],
            orig_len: 0,
            interface: 1,
        });
        (w.out, want, starts)
    }

    #[test]
    fn reads_sections_interfaces_and_packet_blocks() {
        let (file, want, _) = sample();
        for buf in [READ_BUFFER_BYTES, 16, 64, 333] {
            let mut src = open_with(&file, buf).unwrap();
            assert_eq!(src.format(), FileFormat::PcapNg);
            let (pkts, err) = read_all(&mut src);
            assert!(err.is_none(), "{err:?}");
            assert_eq!(pkts, want, "buffer {buf}");
            assert_eq!(src.progress().0, file.len() as u64);
        }
    }

    #[test]
    fn tsoffset_positive_and_resolutions() {
        let mut w = NgWriter::new(Endian::Big);
        w.shb(Endian::Big);
        w.idb(1, Some(3), Some(5)); // ms, +5 s
        w.idb(1, Some(12), None); // ps
        w.idb(1, Some(0x80), None); // 2^0 = 1 s
        w.idb(1, Some(127), None); // 10^-127: always 0
        w.epb(0, 2_500, b"a", 1);
        w.epb(1, 3_000_000_000_000, b"b", 1);
        w.epb(2, 7, b"c", 1);
        w.epb(3, u64::MAX, b"d", 1);
        let (pkts, err) = read_all(&mut open_with(&w.out, 1 << 20).unwrap());
        assert!(err.is_none());
        let ts: Vec<u64> = pkts.iter().map(|p| p.ts.0).collect();
        assert_eq!(ts, vec![7_500_000_000, 3_000_000_000, 7_000_000_000, 0]);
    }

    #[test]
    fn resolution_math_saturates() {
        assert_eq!(Resolution::from_tsresol(6).to_nanos(u64::MAX), u64::MAX);
        assert_eq!(Resolution::from_tsresol(9).to_nanos(42), 42);
        assert_eq!(Resolution::from_tsresol(10).to_nanos(42), 4);
        assert_eq!(Resolution::from_tsresol(28).to_nanos(u64::MAX), 1);
        assert_eq!(Resolution::from_tsresol(29).to_nanos(u64::MAX), 0);
        assert_eq!(Resolution::from_tsresol(0x80 | 127).to_nanos(u64::MAX), 0);
        assert_eq!(
            Resolution::from_tsresol(0x80 | 20).to_nanos(1 << 20),
            1_000_000_000
        );
        assert_eq!(Resolution::from_tsresol(0x80).to_nanos(u64::MAX), u64::MAX);
        let i = Interface {
            link_type: LinkType(1),
            resolution: Resolution::MICROS,
            offset_secs: i64::MAX,
        };
        assert_eq!(i.timestamp(u64::MAX), Timestamp(u64::MAX));
        let i = Interface {
            offset_secs: i64::MIN,
            ..i
        };
        assert_eq!(i.timestamp(u64::MAX), Timestamp(0));
    }

    fn err_of(file: &[u8]) -> (usize, CaptureError) {
        let (pkts, err) = read_all(&mut open_with(file, READ_BUFFER_BYTES).unwrap());
        (pkts.len(), err.expect("an error"))
    }

    #[test]
    fn truncation_anywhere_delivers_earlier_packets_then_one_error() {
        let (file, _, starts) = sample();
        // Offsets of every block, to know which cuts are clean.
        let mut blocks = Vec::new();
        let mut at = 0;
        while at < file.len() {
            blocks.push(at);
            let be = blocks.len() > 1 && at >= second_section(&file);
            let len = rd32(&file, at + 4, be) as usize;
            at += len;
        }
        let first_shb_len = rd32(&file, 4, false) as usize;
        for cut in 1..file.len() {
            let src = open_with(&file[..cut], 64);
            if cut < first_shb_len {
                let e = src.err().expect("header error");
                assert_eq!(e.offset(), 0);
                assert!(matches!(e.kind(), ErrorKind::Truncated { .. }), "{cut} {e}");
                continue;
            }
            let (pkts, err) = read_all(&mut src.unwrap());
            let complete = starts.iter().filter(|&&s| s < cut).count();
            if blocks.contains(&cut) {
                assert!(err.is_none(), "{cut}");
                assert_eq!(pkts.len(), complete);
            } else {
                let e = err.expect("error");
                let damaged = *blocks.iter().rfind(|&&b| b < cut).unwrap();
                assert_eq!(e.offset(), damaged as u64, "cut {cut}: {e}");
                let delivered = starts.iter().filter(|&&s| s < damaged).count();
                assert_eq!(pkts.len(), delivered, "cut {cut}");
                assert!(matches!(e.kind(), ErrorKind::Truncated { .. }), "{e}");
            }
        }
    }

    fn second_section(file: &[u8]) -> usize {
        let mut at = 0;
        let mut seen = 0;
        while at < file.len() {
            if rd32(file, at, false) == SHB_TYPE {
                seen += 1;
                if seen == 2 {
                    return at;
                }
            }
            let be = seen == 2;
            at += rd32(file, at + 4, be) as usize;
        }
        usize::MAX
    }

    fn two_packets() -> (NgWriter, usize) {
        let mut w = NgWriter::new(Endian::Little);
        w.shb(Endian::Little);
        w.idb(1, None, None);
        w.epb(0, 1, b"one", 3);
        let at = w.out.len();
        (w, at)
    }

    #[test]
    fn block_length_not_multiple_of_4() {
        let (mut w, at) = two_packets();
        w.epb(0, 2, b"two", 3);
        w.out[at + 4] += 1;
        let (n, e) = err_of(&w.out);
        assert_eq!(n, 1);
        assert_eq!(e.offset(), at as u64);
        assert_eq!(
            e.kind(),
            ErrorKind::Corrupt(Corruption::LengthNotAligned { len: 57 })
        );
        assert_eq!(
            e.to_string(),
            format!(
                "t.pcapng: corrupt block at byte offset {at}: \
                 block total length 57 is not a multiple of 4"
            )
        );
    }

    #[test]
    fn trailing_length_mismatch() {
        let (mut w, at) = two_packets();
        w.epb(0, 2, b"two", 3);
        let end = w.out.len();
        w.out[end - 4] = 44;
        let (n, e) = err_of(&w.out);
        assert_eq!((n, e.offset()), (1, at as u64));
        assert_eq!(
            e.kind(),
            ErrorKind::Corrupt(Corruption::TrailingLengthMismatch {
                leading: 56,
                trailing: 44
            })
        );
        // The same for a skipped block.
        let (mut w, at) = two_packets();
        w.block(0x1234, &[0; 8]);
        let end = w.out.len();
        w.out[end - 4] = 0;
        let (n, e) = err_of(&w.out);
        assert_eq!((n, e.offset()), (1, at as u64));
        assert_eq!(
            e.kind(),
            ErrorKind::Corrupt(Corruption::TrailingLengthMismatch {
                leading: 20,
                trailing: 0
            })
        );
    }

    #[test]
    fn huge_and_tiny_lengths() {
        let (mut w, at) = two_packets();
        w.block(0x1234, &[0; 8]);
        w.out[at + 4..at + 8].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let (n, e) = err_of(&w.out);
        assert_eq!((n, e.offset()), (1, at as u64));
        assert_eq!(
            e.kind(),
            ErrorKind::Corrupt(Corruption::LengthTooLarge {
                len: 0xFFFF_FFF0,
                max: MAX_BLOCK_BYTES
            })
        );
        // An EPB over the parse cap (huge options) is corrupt, not buffered.
        let (mut w, at) = two_packets();
        w.epb(0, 2, b"two", 3);
        let big = (MAX_PARSED_BLOCK_BYTES + 4) as u32;
        w.out[at + 4..at + 8].copy_from_slice(&big.to_le_bytes());
        let (_, e) = err_of(&w.out);
        assert!(matches!(
            e.kind(),
            ErrorKind::Corrupt(Corruption::LengthTooLarge { .. })
        ));
        // EPB shorter than its fixed fields.
        let (mut w, at) = two_packets();
        w.block(EPB_TYPE, &[0; 8]);
        let (_, e) = err_of(&w.out);
        assert_eq!(e.offset(), at as u64);
        assert_eq!(
            e.kind(),
            ErrorKind::Corrupt(Corruption::LengthTooSmall {
                block_type: 6,
                len: 20,
                min: 32
            })
        );
        // A skipped block larger than the read buffer is fine.
        let (mut w, _) = two_packets();
        w.block(0x1234, &vec![9; 5 * 1024 * 1024]);
        w.epb(0, 2, b"two", 3);
        let (pkts, err) = read_all(&mut open_with(&w.out, 1024).unwrap());
        assert!(err.is_none());
        assert_eq!(pkts.len(), 2);
    }

    #[test]
    fn epb_with_unknown_interface_and_spb_without_interface() {
        let (mut w, at) = two_packets();
        w.epb(1, 2, b"two", 3);
        let (n, e) = err_of(&w.out);
        assert_eq!((n, e.offset()), (1, at as u64));
        assert_eq!(
            e.kind(),
            ErrorKind::Corrupt(Corruption::UnknownInterface {
                interface: 1,
                defined: 1
            })
        );
        let mut w = NgWriter::new(Endian::Big);
        w.shb(Endian::Big);
        let at = w.spb(b"x", 1);
        let (n, e) = err_of(&w.out);
        assert_eq!((n, e.offset()), (0, at as u64));
        assert_eq!(
            e.kind(),
            ErrorKind::Corrupt(Corruption::UnknownInterface {
                interface: 0,
                defined: 0
            })
        );
        // Interfaces do not survive a new section.
        let (mut w, _) = two_packets();
        let at = w.shb(Endian::Little);
        let _ = at;
        let at = w.epb(0, 2, b"two", 3);
        let (n, e) = err_of(&w.out);
        assert_eq!((n, e.offset()), (1, at as u64));
    }

    #[test]
    fn caplen_over_cap_or_past_block_end() {
        let (mut w, at) = two_packets();
        w.epb(0, 2, &vec![0; MAX_RECORD_BYTES as usize + 4], 3);
        let (n, e) = err_of(&w.out);
        assert_eq!((n, e.offset()), (1, at as u64));
        assert_eq!(
            e.kind(),
            ErrorKind::TooLarge {
                len: 262_148,
                max: 262_144
            }
        );
        let (mut w, at) = two_packets();
        w.epb(0, 2, b"two", 3);
        w.out[at + 20..at + 24].copy_from_slice(&100u32.to_le_bytes());
        let (_, e) = err_of(&w.out);
        assert_eq!(
            e.kind(),
            ErrorKind::Corrupt(Corruption::PacketPastBlockEnd {
                caplen: 100,
                room: 24
            })
        );
    }

    #[test]
    fn bad_section_headers() {
        let (mut w, _) = two_packets();
        w.out[8] = 0x99;
        let e = open_with(&w.out, 64).err().unwrap();
        assert_eq!(e.offset(), 0);
        assert!(matches!(
            e.kind(),
            ErrorKind::Corrupt(Corruption::BadByteOrderMagic { .. })
        ));
        let (mut w, _) = two_packets();
        w.out[12] = 2;
        let e = open_with(&w.out, 64).err().unwrap();
        assert_eq!(
            e.kind(),
            ErrorKind::UnsupportedVersion {
                format: "pcapng",
                major: 2,
                minor: 0
            }
        );
        assert_eq!(
            e.to_string(),
            "t.pcapng: unsupported pcapng version 2.0 at byte offset 0"
        );
        // Second section with a bad byte-order magic.
        let (mut w, _) = two_packets();
        let at = w.shb(Endian::Big);
        w.out[at + 8] = 0;
        let (n, e) = err_of(&w.out);
        assert_eq!((n, e.offset()), (1, at as u64));
        // Truncated first header.
        for cut in 4..12 {
            let e = open_with(&w.out[..cut], 64).err().unwrap();
            assert_eq!(
                e.kind(),
                ErrorKind::Truncated {
                    part: Part::FileHeader,
                    needed: 12,
                    available: cut as u64
                }
            );
        }
        let e = err_of(&{
            let (mut w, _) = two_packets();
            w.out.extend_from_slice(&[6, 0, 0, 0, 32]);
            w.out
        })
        .1;
        assert_eq!(
            e.kind(),
            ErrorKind::Truncated {
                part: Part::BlockHeader,
                needed: 12,
                available: 5
            }
        );
    }

    #[test]
    fn too_many_interfaces() {
        let mut w = NgWriter::new(Endian::Little);
        w.shb(Endian::Little);
        for _ in 0..MAX_INTERFACES {
            w.idb(1, None, None);
        }
        let at = w.idb(1, None, None);
        let (n, e) = err_of(&w.out);
        assert_eq!((n, e.offset()), (0, at as u64));
        assert_eq!(
            e.kind(),
            ErrorKind::Corrupt(Corruption::TooManyInterfaces {
                max: MAX_INTERFACES
            })
        );
    }
}
