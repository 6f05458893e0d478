//! Bounds-checked decoding of captured frames down to TCP segments.

/// A capture's link-layer header type (the pcap `LINKTYPE_*` number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: 4-byte address family in host byte order.
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP (the `DLT_RAW` values some platforms write as 12 or 14).
    pub const RAW: LinkType = LinkType(101);
    pub const RAW_DLT12: LinkType = LinkType(12);
    pub const RAW_DLT14: LinkType = LinkType(14);
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux cooked capture v1.
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture v2 (what `-i any` writes on current libpcap).
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

mod defrag;
mod error;
mod ip;
mod link;

pub use defrag::{DefragLimits, DefragOutcome, DefragStats, Defragmenter, Fragment};
pub use error::{WireError, WireErrorKind};

use std::net::IpAddr;

/// TCP header flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;

    pub const fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub const fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub const fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub const fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// A decoded TCP segment, borrowing its payload from the frame (or from a
/// reassembled IP datagram).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub payload: &'a [u8],
}

/// What a frame turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    Tcp(TcpSegment<'a>),
    /// An IP fragment: hand it to a [`Defragmenter`], then call
    /// [`decode_transport`] on the reassembled datagram.
    Fragment(Fragment<'a>),
    /// A frame that is not TCP over IP (ARP, UDP, ICMP, ...). Counted, ignored.
    NotTcp,
}

/// Decodes one captured frame of link type `link` down to its TCP segment.
///
/// Ethernet (with any number of 802.1Q/802.1ad tags up to [`MAX_VLAN_TAGS`]),
/// Linux SLL and SLL2, BSD NULL/LOOP and raw IPv4/IPv6 are understood; IPv6
/// extension headers are skipped. Checksums are not verified (offloaded
/// checksums on locally generated traffic are routinely wrong).
pub fn decode(link: LinkType, frame: &[u8]) -> Result<Decoded<'_>, WireError> {
    let Some((net, offset)) = link::strip(link, frame)? else {
        return Ok(Decoded::NotTcp);
    };
    ip::decode_ip(net, offset)
}

/// Decodes the transport header of a reassembled datagram.
pub fn decode_transport(
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    payload: &[u8],
) -> Result<Decoded<'_>, WireError> {
    ip::decode_transport(src, dst, protocol, payload, 0)
}

/// Most VLAN tags peeled off one Ethernet frame.
pub const MAX_VLAN_TAGS: usize = 4;
