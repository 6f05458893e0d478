//! Small in-memory writers for building test captures.

use shadowtap_proto::time::Timestamp;
use shadowtap_proto::wire::LinkType;

use super::{CaptureError, CaptureSource, FileSource};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endian {
    Little,
    Big,
}

impl Endian {
    pub(crate) fn u16(self, v: u16) -> [u8; 2] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }

    pub(crate) fn u32(self, v: u32) -> [u8; 4] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }

    pub(crate) fn u64(self, v: u64) -> [u8; 8] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }
}

/// A classic pcap record.
#[derive(Clone, Debug)]
pub(crate) struct Rec {
    pub(crate) secs: u32,
    pub(crate) frac: u32,
    pub(crate) data: Vec<u8>,
    pub(crate) orig_len: u32,
}

/// A classic pcap file (snaplen 65535).
pub(crate) fn pcap_file(e: Endian, nanos: bool, linktype: u32, recs: &[Rec]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&e.u32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    f.extend_from_slice(&e.u16(2));
    f.extend_from_slice(&e.u16(4));
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&e.u32(65535));
    f.extend_from_slice(&e.u32(linktype));
    for r in recs {
        f.extend_from_slice(&e.u32(r.secs));
        f.extend_from_slice(&e.u32(r.frac));
        f.extend_from_slice(&e.u32(r.data.len() as u32));
        f.extend_from_slice(&e.u32(r.orig_len));
        f.extend_from_slice(&r.data);
    }
    f
}

/// A pcapng writer: call the block methods in file order.
pub(crate) struct NgWriter {
    pub(crate) e: Endian,
    pub(crate) out: Vec<u8>,
}

fn pad4(v: &mut Vec<u8>) {
    while v.len() % 4 != 0 {
        v.push(0);
    }
}

impl NgWriter {
    pub(crate) fn new(e: Endian) -> Self {
        NgWriter { e, out: Vec::new() }
    }

    /// Appends a block with a correct total length; returns its offset.
    pub(crate) fn block(&mut self, block_type: u32, body: &[u8]) -> usize {
        let at = self.out.len();
        let mut body = body.to_vec();
        pad4(&mut body);
        let len = 12 + body.len() as u32;
        let e = self.e;
        self.out.extend_from_slice(&e.u32(block_type));
        self.out.extend_from_slice(&e.u32(len));
        self.out.extend_from_slice(&body);
        self.out.extend_from_slice(&e.u32(len));
        at
    }

    /// Section header block; switches the writer to byte order `e`.
    pub(crate) fn shb(&mut self, e: Endian) -> usize {
        self.e = e;
        let mut body = Vec::new();
        body.extend_from_slice(&e.u32(0x1a2b_3c4d));
        body.extend_from_slice(&e.u16(1));
        body.extend_from_slice(&e.u16(0));
        body.extend_from_slice(&e.u64(u64::MAX));
        // shb_userappl option, then end of options.
        body.extend_from_slice(&self.opt(4, b"shadowtap-test"));
        body.extend_from_slice(&[0; 4]);
        self.block(0x0A0D_0D0A, &body)
    }

    /// One option (code, value), padded.
    pub(crate) fn opt(&self, code: u16, value: &[u8]) -> Vec<u8> {
        let mut o = Vec::new();
        o.extend_from_slice(&self.e.u16(code));
        o.extend_from_slice(&self.e.u16(value.len() as u16));
        o.extend_from_slice(value);
        pad4(&mut o);
        o
    }

    /// Interface description block with optional if_tsresol and if_tsoffset.
    pub(crate) fn idb(&mut self, link: u16, tsresol: Option<u8>, tsoffset: Option<i64>) -> usize {
        let e = self.e;
        let mut body = Vec::new();
        body.extend_from_slice(&e.u16(link));
        body.extend_from_slice(&[0; 2]);
        body.extend_from_slice(&e.u32(262_144));
        body.extend_from_slice(&self.opt(2, b"eth0"));
        if let Some(r) = tsresol {
            body.extend_from_slice(&self.opt(9, &[r]));
        }
        if let Some(o) = tsoffset {
            body.extend_from_slice(&self.opt(14, &e.u64(o as u64)));
        }
        body.extend_from_slice(&[0; 4]);
        self.block(1, &body)
    }

    /// Enhanced packet block.
    pub(crate) fn epb(&mut self, iface: u32, ts: u64, data: &[u8], orig_len: u32) -> usize {
        let e = self.e;
        let mut body = Vec::new();
        body.extend_from_slice(&e.u32(iface));
        body.extend_from_slice(&e.u32((ts >> 32) as u32));
        body.extend_from_slice(&e.u32(ts as u32));
        body.extend_from_slice(&e.u32(data.len() as u32));
        body.extend_from_slice(&e.u32(orig_len));
        body.extend_from_slice(data);
        pad4(&mut body);
        body.extend_from_slice(&self.opt(1, b"a comment"));
        body.extend_from_slice(&[0; 4]);
        self.block(6, &body)
    }

    /// Simple packet block.
    pub(crate) fn spb(&mut self, data: &[u8], orig_len: u32) -> usize {
        let mut body = Vec::new();
        body.extend_from_slice(&self.e.u32(orig_len));
        body.extend_from_slice(data);
        self.block(3, &body)
    }

    /// Obsolete packet block.
    pub(crate) fn opb(&mut self, iface: u16, ts: u64, data: &[u8], orig_len: u32) -> usize {
        let e = self.e;
        let mut body = Vec::new();
        body.extend_from_slice(&e.u16(iface));
        body.extend_from_slice(&e.u16(0));
        body.extend_from_slice(&e.u32((ts >> 32) as u32));
        body.extend_from_slice(&e.u32(ts as u32));
        body.extend_from_slice(&e.u32(data.len() as u32));
        body.extend_from_slice(&e.u32(orig_len));
        body.extend_from_slice(data);
        self.block(2, &body)
    }
}

/// An owned copy of a captured packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Owned {
    pub(crate) ts: Timestamp,
    pub(crate) link_type: LinkType,
    pub(crate) data: Vec<u8>,
    pub(crate) orig_len: u32,
    pub(crate) interface: u32,
}

/// Reads every packet, then checks that the source stays finished.
pub(crate) fn read_all(src: &mut impl CaptureSource) -> (Vec<Owned>, Option<CaptureError>) {
    let mut pkts = Vec::new();
    let err = loop {
        match src.next_packet() {
            Ok(Some(p)) => pkts.push(Owned {
                ts: p.ts,
                link_type: p.link_type,
                data: p.data.to_vec(),
                orig_len: p.orig_len,
                interface: p.interface,
            }),
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    assert!(matches!(src.next_packet(), Ok(None)), "source not finished");
    (pkts, err)
}

/// Opens `bytes` with a given initial buffer size.
pub(crate) fn open_with(bytes: &[u8], buffer: usize) -> Result<FileSource, CaptureError> {
    FileSource::with_buffer(
        "t.pcapng".into(),
        Box::new(std::io::Cursor::new(bytes.to_vec())),
        Some(bytes.len() as u64),
        buffer,
    )
}

/// Deterministic xorshift64* generator.
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}
