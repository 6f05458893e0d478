//! Classic pcap output and the Ethernet / IP / TCP framing the generator
//! (and the integration tests' capture builders) write.
//!
//! [`PcapWriter`] streams records to any [`Write`]; nothing is buffered
//! beyond what the caller's writer buffers. Packets carry valid IPv4 header
//! and TCP checksums (IPv6 TCP checksums too), so tools that verify them
//! (tshark with checksum validation on, Zeek) accept the captures.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Snapshot length written in the file header.
pub const SNAPLEN: u32 = 262_144;
/// Bytes of the pcap file header.
pub const FILE_HEADER_BYTES: u64 = 24;
/// Bytes of a pcap record header.
pub const RECORD_HEADER_BYTES: u64 = 16;
/// Bytes of an Ethernet II header.
pub const ETHERNET_HEADER_BYTES: usize = 14;

/// A classic little-endian, microsecond-resolution pcap being written.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    bytes: u64,
    records: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header for `linktype`.
    pub fn new(mut out: W, linktype: u32) -> io::Result<Self> {
        let mut h = [0u8; FILE_HEADER_BYTES as usize];
        h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&linktype.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter {
            out,
            bytes: FILE_HEADER_BYTES,
            records: 0,
        })
    }

    /// Writes one frame made of `parts` (concatenated) at `ts_us`
    /// microseconds since the Unix epoch.
    pub fn write_frame(&mut self, ts_us: u64, parts: &[&[u8]]) -> io::Result<()> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let len = u32::try_from(len).map_err(|_| io::Error::other("frame over 4 GiB"))?;
        let secs = u32::try_from(ts_us / 1_000_000)
            .map_err(|_| io::Error::other("timestamp past 2106"))?;
        let mut h = [0u8; RECORD_HEADER_BYTES as usize];
        h[0..4].copy_from_slice(&secs.to_le_bytes());
        h[4..8].copy_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&len.to_le_bytes());
        h[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&h)?;
        for p in parts {
            self.out.write_all(p)?;
        }
        self.bytes += RECORD_HEADER_BYTES + u64::from(len);
        self.records += 1;
        Ok(())
    }

    /// Bytes written so far, file header included.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Records (frames) written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Flushes and returns the writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// An Ethernet II header from `src_mac` to `dst_mac` for an IP packet
/// (ethertype IPv6 when `ipv6`, else IPv4).
pub fn ethernet_header(src_mac: [u8; 6], dst_mac: [u8; 6], ipv6: bool) -> [u8; 14] {
    let mut h = [0u8; ETHERNET_HEADER_BYTES];
    h[0..6].copy_from_slice(&dst_mac);
    h[6..12].copy_from_slice(&src_mac);
    h[12..14].copy_from_slice(if ipv6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
    h
}

/// A locally administered MAC address derived from an IP address.
pub fn mac_for(ip: IpAddr) -> [u8; 6] {
    let tail = match ip {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    [0x02, 0x42, tail[0], tail[1], tail[2], tail[3]]
}

/// Ones' complement sum of `data` (16-bit big-endian words) added to `acc`.
fn sum16(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The Internet checksum of `data`.
pub fn internet_checksum(data: &[u8]) -> u16 {
    fold(sum16(0, data))
}

/// Writes a fresh header checksum into a 20-byte (option-less or not)
/// IPv4 header.
pub fn fix_ipv4_checksum(header: &mut [u8]) {
    if header.len() < 20 {
        return;
    }
    header[10] = 0;
    header[11] = 0;
    let c = internet_checksum(header);
    header[10..12].copy_from_slice(&c.to_be_bytes());
}

/// An IPv4 header (no options, DF clear, TTL 64) with a valid checksum.
pub fn ipv4_header(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    payload_len: usize,
    id: u16,
) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&((20 + payload_len) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    fix_ipv4_checksum(&mut h);
    h
}

/// An IPv6 header (hop limit 64) for `payload_len` bytes of `next` header.
pub fn ipv6_header(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload_len: usize) -> [u8; 40] {
    let mut h = [0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&(payload_len as u16).to_be_bytes());
    h[6] = next;
    h[7] = 64;
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&dst.octets());
    h
}

/// The 20-byte TCP header (no options) of a segment, with its checksum
/// over the pseudo-header and `payload`.
pub fn tcp_header(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    payload: &[u8],
) -> [u8; 20] {
    let mut t = [0u8; 20];
    t[0..2].copy_from_slice(&src.port().to_be_bytes());
    t[2..4].copy_from_slice(&dst.port().to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&window.to_be_bytes());
    let tcp_len = (20 + payload.len()) as u32;
    let mut acc = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => sum16(sum16(0, &s.octets()), &d.octets()),
        (s, d) => sum16(sum16(0, &ip_bytes(s)), &ip_bytes(d)),
    };
    acc += 6 + (tcp_len & 0xffff) + (tcp_len >> 16);
    acc = sum16(acc, &t);
    acc = sum16(acc, payload);
    t[16..18].copy_from_slice(&fold(acc).to_be_bytes());
    t
}

fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// An IP packet (v4 or v6, after the families of `src` and `dst`; IPv4
/// when they differ) carrying one TCP segment, checksums valid.
pub fn tcp_packet(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let tcp = tcp_header(src, dst, seq, ack, flags, 0xffff, payload);
    let mut p = Vec::with_capacity(60 + payload.len());
    match (src.ip(), dst.ip()) {
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&ipv6_header(s, d, 6, 20 + payload.len()));
        }
        (s, d) => {
            let v4 = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4,
                IpAddr::V6(v6) => v6.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
            };
            p.extend_from_slice(&ipv4_header(v4(s), v4(d), 6, 20 + payload.len(), 1));
        }
    }
    p.extend_from_slice(&tcp);
    p.extend_from_slice(payload);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_record_layout() {
        let mut w = PcapWriter::new(Vec::new(), LINKTYPE_ETHERNET).expect("vec write");
        w.write_frame(1_700_000_000_250_000, &[b"ab", b"cde"])
            .expect("vec write");
        assert_eq!(w.records(), 1);
        assert_eq!(w.bytes(), 24 + 16 + 5);
        let out = w.into_inner().expect("vec flush");
        assert_eq!(&out[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(&out[20..24], &1u32.to_le_bytes());
        assert_eq!(&out[24..28], &1_700_000_000u32.to_le_bytes());
        assert_eq!(&out[28..32], &250_000u32.to_le_bytes());
        assert_eq!(&out[32..36], &5u32.to_le_bytes());
        assert_eq!(&out[40..], b"abcde");
    }

    #[test]
    fn checksums_verify_to_zero() {
        let src: SocketAddr = "10.1.0.7:40000".parse().expect("addr");
        let dst: SocketAddr = "10.20.0.10:80".parse().expect("addr");
        let p = tcp_packet(src, dst, 1000, 2000, PSH | ACK, b"GET / HTTP/1.1\r\n\r\n!");
        // The IPv4 header sums to 0xffff with its checksum in place.
        assert_eq!(internet_checksum(&p[..20]), 0);
        // So does the TCP segment with the pseudo-header.
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&p[12..20]);
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&((p.len() - 20) as u16).to_be_bytes());
        pseudo.extend_from_slice(&p[20..]);
        assert_eq!(internet_checksum(&pseudo), 0);
    }

    #[test]
    fn ipv6_checksum_verifies() {
        let src: SocketAddr = "[2001:db8::1]:40000".parse().expect("addr");
        let dst: SocketAddr = "[2001:db8::2]:80".parse().expect("addr");
        let p = tcp_packet(src, dst, 1, 2, ACK, b"odd");
        assert_eq!(p[0] >> 4, 6);
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&p[8..40]);
        pseudo.extend_from_slice(&((p.len() - 40) as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 6]);
        pseudo.extend_from_slice(&p[40..]);
        assert_eq!(internet_checksum(&pseudo), 0);
    }
}
