//! Why a frame could not be decoded.

use std::fmt;

/// Closed set of decode failures, used as a drop reason in counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WireErrorKind {
    UnsupportedLinkType,
    TruncatedLinkHeader,
    TooManyVlanTags,
    TruncatedIpHeader,
    BadIpVersion,
    BadIpHeaderLength,
    BadIpTotalLength,
    TruncatedIpv6ExtensionHeader,
    TruncatedTcpHeader,
    BadTcpDataOffset,
}

impl WireErrorKind {
    pub const ALL: &'static [WireErrorKind] = &[
        WireErrorKind::UnsupportedLinkType,
        WireErrorKind::TruncatedLinkHeader,
        WireErrorKind::TooManyVlanTags,
        WireErrorKind::TruncatedIpHeader,
        WireErrorKind::BadIpVersion,
        WireErrorKind::BadIpHeaderLength,
        WireErrorKind::BadIpTotalLength,
        WireErrorKind::TruncatedIpv6ExtensionHeader,
        WireErrorKind::TruncatedTcpHeader,
        WireErrorKind::BadTcpDataOffset,
    ];

    /// Stable snake_case name for counters.
    pub const fn name(self) -> &'static str {
        match self {
            WireErrorKind::UnsupportedLinkType => "unsupported_link_type",
            WireErrorKind::TruncatedLinkHeader => "truncated_link_header",
            WireErrorKind::TooManyVlanTags => "too_many_vlan_tags",
            WireErrorKind::TruncatedIpHeader => "truncated_ip_header",
            WireErrorKind::BadIpVersion => "bad_ip_version",
            WireErrorKind::BadIpHeaderLength => "bad_ip_header_length",
            WireErrorKind::BadIpTotalLength => "bad_ip_total_length",
            WireErrorKind::TruncatedIpv6ExtensionHeader => "truncated_ipv6_extension_header",
            WireErrorKind::TruncatedTcpHeader => "truncated_tcp_header",
            WireErrorKind::BadTcpDataOffset => "bad_tcp_data_offset",
        }
    }
}

/// A decode failure: what went wrong and at which byte offset of the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} at frame offset {offset}", kind.name())]
pub struct WireError {
    pub kind: WireErrorKind,
    pub offset: usize,
}

impl WireError {
    pub(crate) const fn new(kind: WireErrorKind, offset: usize) -> Self {
        WireError { kind, offset }
    }
}

impl fmt::Display for WireErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
