//! Guest transmit offloads: checksum completion and software segmentation (GSO).
//!
//! A guest that negotiated `VIRTIO_NET_F_CSUM` and `VIRTIO_NET_F_HOST_TSO4`/`_TSO6`/`_USO`
//! may hand the switch TCP or UDP frames of up to 64 KiB whose transport checksum is only
//! partial, described by the 12-byte `struct virtio_net_hdr_v1` in front of each frame
//! (virtio 1.2, 5.1.6 "Device Operation", 5.1.6.2 "Packet Transmission"). Where the output
//! cannot take such a frame as it is (an AF_XDP or tap uplink, VXLAN encapsulation, a guest
//! that did not negotiate the offload), the switch finishes the guest's work in software:
//!
//! 1. [`CheckOffload::offload_request`] (or [`OffloadRequest::parse`]) checks the header
//!    against the frame, which the switch has already copied into its own memory, and returns
//!    an [`OffloadRequest`], or an [`OffloadError`] naming the lie. The frame's own headers
//!    are parsed ([`Headers`]); `hdr_len` is ignored and `csum_start` is only accepted where
//!    it agrees with them. Nothing the guest wrote is trusted for an offset or a length.
//! 2. A request with [`Gso`] is cut with [`segment`] into frames of at most
//!    [`Gso::max_segment_len`] bytes, each with its own IP lengths, IPv4 id and header
//!    checksum, TCP sequence number and flags, and a full transport checksum.
//! 3. A request with only [`Csum`] (`VIRTIO_NET_HDR_F_NEEDS_CSUM`) is completed in place with
//!    [`csum::fill_partial`], as Linux's `skb_checksum_help` completes `CHECKSUM_PARTIAL`.
//!
//! The datapath classifies a frame before it knows whether the output needs it finished, so
//! the checksum a guest asks for must not change what flow rules matched: a checked checksum
//! field overwrites no Ethernet, IP, port or TCP flag byte. Segmentation rewrites only
//! lengths, the IPv4 id, TCP sequence numbers, FIN/PSH/CWR and checksums.
//!
//! Everything here is pure: no allocation, no I/O, and work bounded by the frame's length
//! whatever the guest wrote. The caller owns the buffers ([`segment`] builds each segment in
//! a scratch buffer it is given).
//!
//! # Semantics
//!
//! Validation follows Linux's `virtio_net_hdr_to_skb` (`include/linux/virtio_net.h`), what
//! a tap device accepts from its user, made stricter where the switch must rely on the frame
//! itself (Linux hands a dodgy GSO packet to its stack, which re-parses it):
//!
//! - the frame is Ethernet with at most two VLAN tags (0x8100, 0x88a8), then IPv4 (options
//!   allowed, no fragment) or IPv6, and the IP length fields match the frame exactly;
//! - a checksum request lies within the frame (`csum_start + csum_offset + 2 <= len`, as
//!   Linux), starts at or after the transport header (Linux: at least 20 bytes in), and its
//!   field is, for TCP and UDP, their checksum field or in the payload (an inner checksum of
//!   the guest's own tunnel), for another protocol past the 4 bytes after the IP header
//!   (ports, ICMP type and code); IPv6 extension headers are refused;
//! - a segmentation request carries `NEEDS_CSUM` (5.1.6.2.1 requires a driver to set it
//!   with any `gso_type`; Linux probes the headers without it), `gso_size > 0`, a `gso_type` that matches the IP version
//!   and transport protocol, `csum_start` at the transport header and `csum_offset` at its
//!   checksum field (16 for TCP, 6 for UDP), IPv6 without extension headers, and a payload;
//! - USO: no ECN bit and at most [`MAX_UDP_SEGMENTS`] segments, as Linux; TSO: at most
//!   [`MAX_TCP_SEGMENTS`] (stricter than Linux, which sets no bound: the work one frame may
//!   ask of a PMD shared with other tenants is bounded);
//! - flags: `NEEDS_CSUM` is acted on, `DATA_VALID` is ignored (as Linux and DPDK do, though
//!   5.1.6.2.1 says a driver must not set it), `RSC_INFO` (which redefines the checksum
//!   fields) and any unknown bit are refused. 5.1.6.2.2 says a device must ignore flags it
//!   does not recognise; the switch offers no feature that defines one, so a set unknown bit
//!   is a guest bug or a probe, and refusing it is the safe side;
//! - UFO (`GSO_UDP`, IPv4 fragmentation) is refused: the switch does not offer
//!   `VIRTIO_NET_F_HOST_UFO`.
//!
//! `hdr_len` is never used: Linux drivers set it to the length of the linear part of the
//! packet (a hint), not to the header length, so it neither counts nor is checked.

mod error;
mod gso;
mod hdr;
mod headers;

pub mod csum;

#[cfg(test)]
mod tests;

use std::fmt;
use std::num::NonZeroU16;

pub use error::{FrameMismatch, OffloadError, SegmentError};
pub use gso::{segment, write_segment};
pub use hdr::{CheckOffload, VirtioNetHdr};
pub use headers::{Headers, IpVersion, Layer, Transport};

/// The longest frame an offload request may describe: an Ethernet header with two VLAN
/// tags, an IPv6 header and the largest payload its 16-bit length field can give (an IPv4
/// packet, whose total length counts its header, is shorter).
pub const MAX_FRAME_LEN: usize = 14 + 2 * 4 + 40 + 65_535;

/// The most segments a USO request may make, Linux's `UDP_MAX_SEGMENTS`.
pub const MAX_UDP_SEGMENTS: usize = 128;

/// The most segments a TSO request may make: a 64 KiB frame cut at an MSS of 64, the
/// smallest Intel's ice NICs encode (`ICE_TXD_CTX_MIN_MSS`). Linux sets no such bound (a
/// `gso_size` of 1 asks for 65,495 segments, about 2.5 ms of a PMD's time), and a Linux guest
/// cuts at least at its `tcp_min_snd_mss` (48) less options, so only a peer that advertised
/// an MSS under about 76 leads a real guest past it.
pub const MAX_TCP_SEGMENTS: usize = 1024;

/// What a guest asked the switch to finish for one frame, checked against that frame.
///
/// Both `None` is a frame to send as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OffloadRequest {
    /// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the transport checksum is partial. Always set when
    /// `gso` is.
    pub csum: Option<Csum>,
    /// `gso_type` other than `GSO_NONE`: the frame must be cut into segments of `gso_size`
    /// payload bytes.
    pub gso: Option<Gso>,
}

impl OffloadRequest {
    /// Reads a virtio-net header from `hdr` (at least [`VirtioNetHdr::LEN`] bytes) and checks
    /// it against `frame`, the bytes after it: [`CheckOffload::offload_request`].
    pub fn parse(hdr: &[u8], frame: &[u8]) -> Result<Self, OffloadError> {
        let Some(bytes) = hdr.first_chunk::<{ VirtioNetHdr::LEN }>() else {
            return Err(OffloadError::HeaderTooShort { len: hdr.len() });
        };
        VirtioNetHdr::from_bytes(bytes).offload_request(frame)
    }
}

/// A partial checksum to complete (`VIRTIO_NET_HDR_F_NEEDS_CSUM`): the Internet checksum of
/// the frame from `start` to its end, stored at `start + offset`, where the guest left the
/// pseudo-header sum. See [`csum::fill_partial`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Csum {
    /// `csum_start`: where the summed bytes begin, from the start of the frame.
    pub start: u16,
    /// `csum_offset`: where the checksum field is, from `start`.
    pub offset: u16,
}

/// The kind of segmentation a guest asked for (`gso_type` without the ECN bit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GsoKind {
    /// `VIRTIO_NET_HDR_GSO_TCPV4`: TCP segmentation over IPv4 (TSO).
    Tcp4,
    /// `VIRTIO_NET_HDR_GSO_TCPV6`: TCP segmentation over IPv6 (TSO).
    Tcp6,
    /// `VIRTIO_NET_HDR_GSO_UDP_L4`: UDP segmentation (USO), IPv4 or IPv6: each segment is
    /// a datagram of its own.
    UdpL4,
}

impl GsoKind {
    /// The transport protocol this kind segments.
    pub fn transport(self) -> Transport {
        match self {
            GsoKind::Tcp4 | GsoKind::Tcp6 => Transport::Tcp,
            GsoKind::UdpL4 => Transport::Udp,
        }
    }

    /// The most segments one request of this kind may make: [`MAX_TCP_SEGMENTS`],
    /// [`MAX_UDP_SEGMENTS`].
    pub fn max_segments(self) -> usize {
        match self.transport() {
            Transport::Tcp => MAX_TCP_SEGMENTS,
            Transport::Udp => MAX_UDP_SEGMENTS,
        }
    }

    /// The IP version this kind requires, `None` for either.
    pub fn ip_version(self) -> Option<IpVersion> {
        match self {
            GsoKind::Tcp4 => Some(IpVersion::V4),
            GsoKind::Tcp6 => Some(IpVersion::V6),
            GsoKind::UdpL4 => None,
        }
    }
}

impl fmt::Display for GsoKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GsoKind::Tcp4 => "TCPV4",
            GsoKind::Tcp6 => "TCPV6",
            GsoKind::UdpL4 => "UDP_L4",
        })
    }
}

/// A checked segmentation request: the kind, the segment size and the frame's parsed
/// headers. Only [`CheckOffload::offload_request`] makes one, so its lengths are those of the
/// frame it was checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gso {
    kind: GsoKind,
    size: NonZeroU16,
    ecn: bool,
    headers: Headers,
}

impl Gso {
    /// The kind of segmentation.
    pub fn kind(&self) -> GsoKind {
        self.kind
    }

    /// `gso_size`: the most payload bytes (after the transport header) in one segment, the
    /// MSS for TCP.
    pub fn size(&self) -> u16 {
        self.size.get()
    }

    /// `VIRTIO_NET_HDR_GSO_ECN`: the guest's TCP set CWR on this burst, which goes on the
    /// first segment only (as it does without the bit).
    pub fn ecn(&self) -> bool {
        self.ecn
    }

    /// The frame's Ethernet, IP and transport headers, copied into every segment.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// How many segments [`segment`] makes: at least one.
    pub fn segment_count(&self) -> usize {
        self.headers
            .payload_len()
            .div_ceil(usize::from(self.size()))
    }

    /// The length of segment `index` (of [`Gso::segment_count`]), all headers included: the
    /// last one carries what is left of the payload. 0 past the last segment.
    pub fn segment_len(&self, index: usize) -> usize {
        let size = usize::from(self.size());
        let payload = self.headers.payload_len();
        let sent = index.saturating_mul(size).min(payload);
        match (payload - sent).min(size) {
            0 => 0,
            chunk => self.headers.header_len() + chunk,
        }
    }

    /// The longest segment, all headers included: the scratch buffer [`segment`] needs.
    pub fn max_segment_len(&self) -> usize {
        self.headers.header_len() + self.headers.payload_len().min(usize::from(self.size()))
    }
}
