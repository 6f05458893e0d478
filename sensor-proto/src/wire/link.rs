//! Link-layer headers: find where the IP packet starts.

use super::error::{WireError, WireErrorKind as K};
use super::{LinkType, MAX_VLAN_TAGS};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88A8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
/// Most MPLS labels peeled off one frame.
const MAX_MPLS_LABELS: usize = 8;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Returns the network-layer bytes and their offset in the frame, or `None`
/// for a frame that carries no IP.
pub(super) fn strip(link: LinkType, frame: &[u8]) -> Network<'_> {
    let truncated = WireError::new(K::TruncatedLinkHeader, 0);
    match link {
        LinkType::ETHERNET => {
            let mut ethertype = be16(frame, 12).ok_or(truncated)?;
            let mut at = 14;
            let mut tags = 0;
            while matches!(
                ethertype,
                ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
            ) {
                tags += 1;
                if tags > MAX_VLAN_TAGS {
                    return Err(WireError::new(K::TooManyVlanTags, at));
                }
                ethertype =
                    be16(frame, at + 2).ok_or(WireError::new(K::TruncatedLinkHeader, at))?;
                at += 4;
            }
            by_ethertype(ethertype, frame, at)
        }
        LinkType::LINUX_SLL => {
            let ethertype = be16(frame, 14).ok_or(truncated)?;
            by_ethertype(ethertype, frame, 16)
        }
        LinkType::LINUX_SLL2 => {
            let ethertype = be16(frame, 0).ok_or(truncated)?;
            by_ethertype(ethertype, frame, 20)
        }
        LinkType::NULL | LinkType::LOOP => {
            let b = frame.get(..4).ok_or(truncated)?;
            // NULL stores the family in the capturing host's byte order and
            // LOOP in network order; accept either, the values don't collide.
            let le = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let be = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            let is_ip = |f: u32| matches!(f, 2 | 10 | 24 | 28 | 30);
            if is_ip(le) || is_ip(be) {
                Ok(frame.get(4..).map(|n| (n, 4)))
            } else {
                Ok(None)
            }
        }
        LinkType::RAW
        | LinkType::RAW_DLT12
        | LinkType::RAW_DLT14
        | LinkType::IPV4
        | LinkType::IPV6 => Ok(Some((frame, 0))),
        _ => Err(WireError::new(K::UnsupportedLinkType, 0)),
    }
}

type Network<'a> = Result<Option<(&'a [u8], usize)>, WireError>;

/// The payload of an ethertype at `at`: IP directly, or IP inside a PPPoE
/// session or under an MPLS label stack.
fn by_ethertype(ethertype: u16, frame: &[u8], at: usize) -> Network<'_> {
    let truncated = |at| WireError::new(K::TruncatedLinkHeader, at);
    let rest = frame.get(at..).ok_or(truncated(0))?;
    match ethertype {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => Ok(Some((rest, at))),
        ETHERTYPE_PPPOE_SESSION => {
            // 6-byte PPPoE header, then the 2-byte PPP protocol.
            let proto = be16(frame, at + 6).ok_or(truncated(at))?;
            match proto {
                PPP_IPV4 | PPP_IPV6 => Ok(frame.get(at + 8..).map(|n| (n, at + 8))),
                _ => Ok(None),
            }
        }
        ETHERTYPE_MPLS | ETHERTYPE_MPLS_MULTICAST => {
            let mut at = at;
            for _ in 0..MAX_MPLS_LABELS {
                let entry = frame.get(at..at + 4).ok_or(truncated(at))?;
                at += 4;
                if entry[2] & 0x01 != 0 {
                    // Bottom of stack: no protocol field, guess IP by its version.
                    let net = frame.get(at..).ok_or(truncated(at))?;
                    return Ok(match net.first().map(|b| b >> 4) {
                        Some(4 | 6) => Some((net, at)),
                        _ => None,
                    });
                }
            }
            Err(WireError::new(K::TooManyVlanTags, at))
        }
        _ => Ok(None),
    }
}
