//! IPv4, IPv6 (extension headers skipped) and the TCP header.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::error::{WireError, WireErrorKind as K};
use super::{Decoded, Fragment, TcpFlags, TcpSegment};

const PROTO_TCP: u8 = 6;
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_AH: u8 = 51;
const IPV6_DEST_OPTS: u8 = 60;
const IPV6_MOBILITY: u8 = 135;

/// `net` is the IP packet, found at `base` in the frame (for error offsets).
pub(super) fn decode_ip(net: &[u8], base: usize) -> Result<Decoded<'_>, WireError> {
    match net.first().map(|b| b >> 4) {
        Some(4) => decode_ipv4(net, base),
        Some(6) => decode_ipv6(net, base),
        Some(_) => Err(WireError::new(K::BadIpVersion, base)),
        None => Err(WireError::new(K::TruncatedIpHeader, base)),
    }
}

fn decode_ipv4(net: &[u8], base: usize) -> Result<Decoded<'_>, WireError> {
    let h = net
        .get(..20)
        .ok_or(WireError::new(K::TruncatedIpHeader, base))?;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if ihl < 20 {
        return Err(WireError::new(K::BadIpHeaderLength, base));
    }
    if net.len() < ihl {
        return Err(WireError::new(K::TruncatedIpHeader, base));
    }
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    // Total length 0 is what TSO/GSO hands to a local capture: use what we have.
    // A total beyond the captured bytes means a snaplen cut: use what we have.
    let end = match total {
        0 => net.len(),
        t if t < ihl => return Err(WireError::new(K::BadIpTotalLength, base + 2)),
        t => t.min(net.len()),
    };
    let src = IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]));
    let protocol = h[9];
    let frag = u16::from_be_bytes([h[6], h[7]]);
    let more = frag & 0x2000 != 0;
    let offset = u32::from(frag & 0x1fff) * 8;
    let payload = &net[ihl..end];
    if more || offset != 0 {
        return Ok(Decoded::Fragment(Fragment {
            src,
            dst,
            id: u32::from(u16::from_be_bytes([h[4], h[5]])),
            protocol,
            offset,
            more,
            payload,
        }));
    }
    decode_transport(src, dst, protocol, payload, base + ihl)
}

fn decode_ipv6(net: &[u8], base: usize) -> Result<Decoded<'_>, WireError> {
    let h = net
        .get(..40)
        .ok_or(WireError::new(K::TruncatedIpHeader, base))?;
    let payload_len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let mut next = h[6];
    let mut src = [0u8; 16];
    src.copy_from_slice(&h[8..24]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&h[24..40]);
    let (src, dst) = (
        IpAddr::V6(Ipv6Addr::from(src)),
        IpAddr::V6(Ipv6Addr::from(dst)),
    );
    // Payload length 0 is a jumbogram or a TSO capture: use what we have.
    let end = if payload_len == 0 {
        net.len()
    } else {
        (40 + payload_len).min(net.len())
    };
    let mut at = 40;
    let truncated_ext = |at| WireError::new(K::TruncatedIpv6ExtensionHeader, base + at);
    loop {
        match next {
            IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS | IPV6_MOBILITY => {
                let ext = net
                    .get(at..at + 2)
                    .filter(|_| at + 2 <= end)
                    .ok_or(truncated_ext(at))?;
                next = ext[0];
                at += (usize::from(ext[1]) + 1) * 8;
            }
            IPV6_AH => {
                let ext = net
                    .get(at..at + 2)
                    .filter(|_| at + 2 <= end)
                    .ok_or(truncated_ext(at))?;
                next = ext[0];
                at += (usize::from(ext[1]) + 2) * 4;
            }
            IPV6_FRAGMENT => {
                let ext = net
                    .get(at..at + 8)
                    .filter(|_| at + 8 <= end)
                    .ok_or(truncated_ext(at))?;
                let frag = u16::from_be_bytes([ext[2], ext[3]]);
                let offset = u32::from(frag >> 3) * 8;
                let more = frag & 1 != 0;
                let id = u32::from_be_bytes([ext[4], ext[5], ext[6], ext[7]]);
                let protocol = ext[0];
                at += 8;
                let payload = net.get(at..end).ok_or(truncated_ext(at))?;
                if more || offset != 0 {
                    return Ok(Decoded::Fragment(Fragment {
                        src,
                        dst,
                        id,
                        protocol,
                        offset,
                        more,
                        payload,
                    }));
                }
                // An atomic fragment (offset 0, no more): just a header.
                next = protocol;
            }
            _ => break,
        }
        if at > end {
            return Err(truncated_ext(at));
        }
    }
    let payload = net.get(at..end).ok_or(truncated_ext(at))?;
    decode_transport(src, dst, next, payload, base + at)
}

/// Decodes a TCP header at `base` (frame offset, for errors).
pub(super) fn decode_transport(
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    seg: &[u8],
    base: usize,
) -> Result<Decoded<'_>, WireError> {
    if protocol != PROTO_TCP {
        return Ok(Decoded::NotTcp);
    }
    let h = seg
        .get(..20)
        .ok_or(WireError::new(K::TruncatedTcpHeader, base))?;
    let data_offset = usize::from(h[12] >> 4) * 4;
    if data_offset < 20 {
        return Err(WireError::new(K::BadTcpDataOffset, base + 12));
    }
    let payload = seg
        .get(data_offset..)
        .ok_or(WireError::new(K::TruncatedTcpHeader, base))?;
    Ok(Decoded::Tcp(TcpSegment {
        src,
        dst,
        sport: u16::from_be_bytes([h[0], h[1]]),
        dport: u16::from_be_bytes([h[2], h[3]]),
        seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        ack: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        flags: TcpFlags(h[13]),
        payload,
    }))
}
