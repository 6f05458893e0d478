//! Builds pcap files of TCP conversations, frame by frame, so tests can
//! reorder, duplicate, corrupt or drop segments and know the exact outcome.
//!
//! The pcap writer and the IP/TCP framing (with valid checksums) are the
//! scenario generator's (`shadowtap_scenario::pcap`); this module adds the
//! link types, IPv6 extension headers, fragmentation and the scripted
//! connections the tests need.

use std::net::{IpAddr, SocketAddr};

use shadowtap_scenario::pcap::{
    ethernet_header, fix_ipv4_checksum, ipv4_header, ipv6_header, PcapWriter,
};
pub use shadowtap_scenario::pcap::{tcp_packet, ACK, FIN, PSH, RST, SYN};

/// MAC addresses of every Ethernet frame written.
const DST_MAC: [u8; 6] = [0, 0x16, 0x3e, 1, 2, 3];
const SRC_MAC: [u8; 6] = [0, 0x16, 0x3e, 4, 5, 6];

/// Link-layer framing of the frames written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    Ethernet,
    /// Ethernet with these VLAN tags (outer first); TPID 0x88a8 for all but the last.
    Vlan(Vec<u16>),
    Sll,
    Sll2,
    /// BSD loopback, family in little-endian host order.
    Null,
    /// OpenBSD loopback, family in network order.
    Loop,
    Raw,
}

impl Link {
    fn linktype(&self) -> u32 {
        match self {
            Link::Ethernet | Link::Vlan(_) => 1,
            Link::Sll => 113,
            Link::Sll2 => 276,
            Link::Null => 0,
            Link::Loop => 108,
            Link::Raw => 101,
        }
    }

    fn wrap(&self, ip: &[u8]) -> Vec<u8> {
        let v6 = ip.first().is_some_and(|b| b >> 4 == 6);
        let ethertype: [u8; 2] = if v6 { [0x86, 0xdd] } else { [0x08, 0x00] };
        let mut f = Vec::with_capacity(ip.len() + 24);
        match self {
            Link::Ethernet => f.extend_from_slice(&ethernet_header(SRC_MAC, DST_MAC, v6)),
            Link::Vlan(tags) => {
                f.extend_from_slice(&DST_MAC);
                f.extend_from_slice(&SRC_MAC);
                for (i, tag) in tags.iter().enumerate() {
                    let tpid: [u8; 2] = if i + 1 < tags.len() {
                        [0x88, 0xa8]
                    } else {
                        [0x81, 0x00]
                    };
                    f.extend_from_slice(&tpid);
                    f.extend_from_slice(&tag.to_be_bytes());
                }
                f.extend_from_slice(&ethertype);
            }
            Link::Sll => {
                f.extend_from_slice(&[0, 0, 0, 1, 0, 6, 0, 0x16, 0x3e, 1, 2, 3, 0, 0]);
                f.extend_from_slice(&ethertype);
            }
            Link::Sll2 => {
                f.extend_from_slice(&ethertype);
                f.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 0, 0x16, 0x3e, 1, 2, 3, 0, 0]);
            }
            Link::Null => f.extend_from_slice(&(if v6 { 30u32 } else { 2u32 }).to_le_bytes()),
            Link::Loop => f.extend_from_slice(&(if v6 { 30u32 } else { 2u32 }).to_be_bytes()),
            Link::Raw => {}
        }
        f.extend_from_slice(ip);
        f
    }
}

/// An IP packet; `v6_ext` are IPv6 extension headers (hop-by-hop first).
pub fn ip_packet(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload: &[u8],
    v6_ext: &[(u8, Vec<u8>)],
) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut p = ipv4_header(s, d, proto, payload.len(), 1).to_vec();
            p.extend_from_slice(payload);
            p
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let ext_len: usize = v6_ext.iter().map(|(_, e)| e.len()).sum();
            let first = v6_ext.first().map_or(proto, |(t, _)| *t);
            let mut p = ipv6_header(s, d, first, ext_len + payload.len()).to_vec();
            for (i, (_, e)) in v6_ext.iter().enumerate() {
                let mut e = e.clone();
                e[0] = v6_ext.get(i + 1).map_or(proto, |(t, _)| *t);
                p.extend_from_slice(&e);
            }
            p.extend_from_slice(payload);
            p
        }
        _ => panic!("mixed address families"),
    }
}

/// Splits an IPv4 packet into fragments of at most `size` payload bytes (multiple of 8).
pub fn fragment_v4(packet: &[u8], size: usize, id: u16) -> Vec<Vec<u8>> {
    assert_eq!(size % 8, 0);
    let (hdr, payload) = packet.split_at(20);
    let chunks: Vec<&[u8]> = payload.chunks(size).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut h = hdr.to_vec();
            h[2..4].copy_from_slice(&((20 + c.len()) as u16).to_be_bytes());
            h[4..6].copy_from_slice(&id.to_be_bytes());
            let off = (i * size / 8) as u16;
            let more = if i + 1 < chunks.len() { 0x2000 } else { 0 };
            h[6..8].copy_from_slice(&(off | more).to_be_bytes());
            fix_ipv4_checksum(&mut h);
            h.extend_from_slice(c);
            h
        })
        .collect()
}

/// A classic little-endian microsecond pcap being written.
pub struct Pcap {
    link: Link,
    frames: Vec<(u64, Vec<u8>)>,
}

impl Pcap {
    pub fn new(link: Link) -> Self {
        Pcap {
            link,
            frames: Vec::new(),
        }
    }

    /// Adds an IP packet at `ts_us` microseconds, wrapped in the link header.
    pub fn push_ip(&mut self, ts_us: u64, ip: &[u8]) {
        let f = self.link.wrap(ip);
        self.frames.push((ts_us, f));
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = PcapWriter::new(Vec::new(), self.link.linktype()).expect("writing to memory");
        for (ts, f) in &self.frames {
            w.write_frame(*ts, &[f]).expect("writing to memory");
        }
        w.into_inner().expect("writing to memory")
    }
}

/// A TCP connection that writes its packets into a [`Pcap`], tracking
/// sequence numbers, with a clock that advances 1 ms per packet.
pub struct Conn {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub cseq: u32,
    pub sseq: u32,
    pub now_us: u64,
    /// Segment size for `send`.
    pub mss: usize,
}

/// One segment the conversation produced (IP packet and timestamp), kept
/// apart so a test can reorder or drop it before it reaches the pcap.
#[derive(Clone, Debug)]
pub struct Seg {
    pub ts_us: u64,
    pub ip: Vec<u8>,
    pub from_client: bool,
}

impl Conn {
    pub fn new(client: &str, server: &str, cisn: u32, sisn: u32) -> Self {
        Conn {
            client: client.parse().expect("client address"),
            server: server.parse().expect("server address"),
            cseq: cisn,
            sseq: sisn,
            now_us: 1_700_000_000_000_000,
            mss: 1400,
        }
    }

    fn seg(&mut self, from_client: bool, flags: u8, payload: &[u8]) -> Seg {
        self.now_us += 1000;
        let (src, dst, seq, ack) = if from_client {
            (self.client, self.server, self.cseq, self.sseq)
        } else {
            (self.server, self.client, self.sseq, self.cseq)
        };
        let ack = if flags & ACK != 0 { ack } else { 0 };
        let ip = tcp_packet(src, dst, seq, ack, flags, payload);
        let adv = payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0);
        if from_client {
            self.cseq = self.cseq.wrapping_add(adv);
        } else {
            self.sseq = self.sseq.wrapping_add(adv);
        }
        Seg {
            ts_us: self.now_us,
            ip,
            from_client,
        }
    }

    /// SYN, SYN-ACK, ACK.
    pub fn handshake(&mut self) -> Vec<Seg> {
        vec![
            self.seg(true, SYN, b""),
            self.seg(false, SYN | ACK, b""),
            self.seg(true, ACK, b""),
        ]
    }

    /// `data` from one side in MSS-sized segments, then an ACK from the other side.
    pub fn send(&mut self, from_client: bool, data: &[u8]) -> Vec<Seg> {
        let mut v: Vec<Seg> = data
            .chunks(self.mss)
            .map(|c| self.seg(from_client, PSH | ACK, c))
            .collect();
        v.push(self.seg(!from_client, ACK, b""));
        v
    }

    /// A bare segment with explicit flags (no ACK from the peer).
    pub fn raw(&mut self, from_client: bool, flags: u8, payload: &[u8]) -> Seg {
        self.seg(from_client, flags, payload)
    }

    /// Client FIN, server FIN, client ACK.
    pub fn close(&mut self) -> Vec<Seg> {
        vec![
            self.seg(true, FIN | ACK, b""),
            self.seg(false, FIN | ACK, b""),
            self.seg(true, ACK, b""),
        ]
    }
}

/// Writes segments into a pcap with the given link type.
pub fn pcap_of(link: Link, segs: &[Seg]) -> Vec<u8> {
    let mut p = Pcap::new(link);
    for s in segs {
        p.push_ip(s.ts_us, &s.ip);
    }
    p.to_bytes()
}

impl Conn {
    /// A segment with `seg`'s sequence number and timestamp but `payload`
    /// instead of its data: a retransmission carrying different bytes.
    pub fn clone_at(&self, seg: Seg, payload: &[u8]) -> Vec<Seg> {
        let p = &seg.ip;
        let (src, dst) = if seg.from_client {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        let ihl = usize::from(p[0] & 0x0f) * 4;
        let seq = u32::from_be_bytes([p[ihl + 4], p[ihl + 5], p[ihl + 6], p[ihl + 7]]);
        let ack = u32::from_be_bytes([p[ihl + 8], p[ihl + 9], p[ihl + 10], p[ihl + 11]]);
        let flags = p[ihl + 13];
        vec![Seg {
            ts_us: seg.ts_us + 1,
            ip: tcp_packet(src, dst, seq, ack, flags, payload),
            from_client: seg.from_client,
        }]
    }
}
