//! Why an offload request was refused ([`OffloadError`], the guest's fault) and why a
//! checked request could not be carried out ([`SegmentError`], the caller's).

use super::{GsoKind, IpVersion, Layer, Transport, VirtioNetHdr};

/// What was wrong with a guest's virtio-net header or with the frame it describes.
///
/// Every field a guest writes may lie; each lie found has its variant, so a counter or a
/// rate-limited log can say which.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    /// Fewer bytes than a `virtio_net_hdr_v1`.
    #[error("virtio-net header of {len} bytes, {} needed", VirtioNetHdr::LEN)]
    HeaderTooShort {
        /// Bytes given.
        len: usize,
    },
    /// The frame is longer than any IP packet the header could describe.
    #[error("frame of {len} bytes, longer than the {max} an offload request may describe")]
    FrameTooLong {
        /// The frame's length.
        len: usize,
        /// [`super::MAX_FRAME_LEN`].
        max: usize,
    },
    /// A flag bit no negotiated feature defines.
    #[error("unknown virtio-net header flags {flags:#04x}")]
    UnknownFlags {
        /// The unknown bits.
        flags: u8,
    },
    /// `VIRTIO_NET_HDR_F_RSC_INFO`, which only the device sets (on the receive path), where
    /// it gives `csum_start` and `csum_offset` another meaning.
    #[error("VIRTIO_NET_HDR_F_RSC_INFO set by the driver")]
    RscInfoFromDriver,
    /// A `gso_type` that is none of NONE, TCPV4, UDP, TCPV6, UDP_L4 (with or without ECN).
    #[error("unknown gso_type {gso_type:#04x}")]
    UnknownGsoType {
        /// The whole field.
        gso_type: u8,
    },
    /// `VIRTIO_NET_HDR_GSO_UDP`: UDP fragmentation offload, which the switch does not offer.
    #[error("gso_type UDP (UFO) is not supported")]
    UfoUnsupported,
    /// The ECN bit on a UDP segmentation request: ECN is TCP's.
    #[error("VIRTIO_NET_HDR_GSO_ECN with gso_type UDP_L4")]
    EcnWithUdp,
    /// Segmentation with a segment size of 0.
    #[error("gso_size 0")]
    GsoSizeZero,
    /// Segmentation without `VIRTIO_NET_HDR_F_NEEDS_CSUM`, which 5.1.6.2.1 requires with it.
    #[error("segmentation requested without VIRTIO_NET_HDR_F_NEEDS_CSUM")]
    GsoWithoutCsum,
    /// The checksum field (`csum_start + csum_offset`, 2 bytes) is not inside the frame.
    #[error("checksum field at {start} + {offset} is not inside the {frame_len}-byte frame")]
    CsumOutOfFrame {
        /// `csum_start`.
        start: usize,
        /// `csum_offset`.
        offset: usize,
        /// The frame's length.
        frame_len: usize,
    },
    /// `csum_start` points into the Ethernet or IP header.
    #[error("csum_start {start} is before the transport header at {l4_offset}")]
    CsumStartInHeaders {
        /// `csum_start`.
        start: usize,
        /// Where the IP header ends.
        l4_offset: usize,
    },
    /// The checksum field would overwrite a transport header field flow rules match on
    /// (ports, TCP flags, ICMP type and code) after they matched.
    #[error("checksum field at {field} is inside the transport header at {l4_offset}")]
    CsumFieldInTransportHeader {
        /// `csum_start + csum_offset`.
        field: usize,
        /// Where the transport header starts.
        l4_offset: usize,
    },
    /// Segmentation with `csum_start` elsewhere than at the transport header.
    #[error("csum_start {start} is not the transport header's offset {l4_offset}")]
    CsumStartMismatch {
        /// `csum_start`.
        start: usize,
        /// Where the transport header is.
        l4_offset: usize,
    },
    /// Segmentation with `csum_offset` elsewhere than at the transport checksum field.
    #[error("csum_offset {offset} is not the {transport} checksum field's {expected}")]
    CsumOffsetMismatch {
        /// `csum_offset`.
        offset: usize,
        /// Where the checksum field is in the transport header.
        expected: usize,
        /// The frame's transport protocol.
        transport: Transport,
    },
    /// The frame ends inside a header.
    #[error("frame of {have} bytes ends inside its {layer} header ({need} bytes needed)")]
    Truncated {
        /// The header cut short.
        layer: Layer,
        /// The frame length the header needs.
        need: usize,
        /// The frame's length.
        have: usize,
    },
    /// A third VLAN tag.
    #[error("more than two VLAN tags")]
    TooManyVlanTags,
    /// The ethertype after the VLAN tags is neither IPv4 nor IPv6.
    #[error("ethertype {ethertype:#06x} is neither IPv4 nor IPv6")]
    NotIp {
        /// The ethertype.
        ethertype: u16,
    },
    /// The IP header's version field contradicts the ethertype.
    #[error("IP version {version} under ethertype {ethertype:#06x}")]
    IpVersionMismatch {
        /// The ethertype.
        ethertype: u16,
        /// The version field.
        version: u8,
    },
    /// An IPv4 header length (IHL) below the 5 words of the fixed header.
    #[error("IPv4 IHL {ihl}, below 5")]
    Ipv4IhlTooShort {
        /// The IHL field.
        ihl: u8,
    },
    /// The IP length field (IPv4 total length, IPv6 40 + payload length) is not the
    /// number of bytes after the Ethernet header.
    #[error("IP header gives {header} bytes, the frame holds {frame} after its Ethernet header")]
    IpLengthMismatch {
        /// The length the IP header gives.
        header: usize,
        /// The bytes the frame has from the IP header on.
        frame: usize,
    },
    /// An IPv4 fragment: its transport checksum covers bytes that are not in this frame.
    #[error("IPv4 fragment")]
    Ipv4Fragment,
    /// An IPv6 extension header after the fixed header, which the switch does not walk.
    #[error("IPv6 next header {next_header} is an extension header (not supported)")]
    Ipv6ExtensionHeader {
        /// The fixed header's next header field.
        next_header: u8,
    },
    /// Segmentation of a protocol that is neither TCP nor UDP.
    #[error("IP protocol {protocol} is neither TCP nor UDP")]
    UnsupportedTransport {
        /// The IPv4 protocol or IPv6 next header field.
        protocol: u8,
    },
    /// `gso_type` TCPV4 on an IPv6 frame, or TCPV6 on an IPv4 one.
    #[error("gso_type {kind} on an {ip} frame")]
    GsoIpMismatch {
        /// The requested kind.
        kind: GsoKind,
        /// The frame's IP version.
        ip: IpVersion,
    },
    /// A TCP `gso_type` on a UDP frame or the reverse.
    #[error("gso_type {kind} on a {found} frame")]
    L4ProtocolMismatch {
        /// The requested kind.
        kind: GsoKind,
        /// The frame's transport protocol.
        found: Transport,
    },
    /// A TCP data offset below the 5 words of the fixed header.
    #[error("TCP data offset {data_offset}, below 5")]
    TcpDataOffsetTooShort {
        /// The data offset field.
        data_offset: u8,
    },
    /// The UDP length field is not the number of bytes from the UDP header on.
    #[error("UDP length {header}, the frame holds {frame} from the UDP header on")]
    UdpLengthMismatch {
        /// The UDP length field.
        header: usize,
        /// The bytes the frame has from the UDP header on.
        frame: usize,
    },
    /// Segmentation of a frame with nothing after its transport header.
    #[error("segmentation requested on a frame with no payload")]
    GsoWithoutPayload,
    /// A request that would make more segments than its kind allows
    /// ([`GsoKind::max_segments`]).
    #[error("gso_type {kind} asks for {segments} segments, more than {max}")]
    TooManySegments {
        /// The requested kind.
        kind: GsoKind,
        /// Segments the request would make.
        segments: usize,
        /// [`GsoKind::max_segments`].
        max: usize,
    },
}

/// A frame given with [`super::Headers`] that were parsed from another frame (its length
/// differs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("frame of {len} bytes given with the headers of a {expected}-byte frame")]
pub struct FrameMismatch {
    /// The frame's length.
    pub len: usize,
    /// The length of the frame the headers were parsed from.
    pub expected: usize,
}

/// Why [`super::segment`] made no segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    /// The scratch buffer is shorter than [`super::Gso::max_segment_len`].
    #[error("scratch buffer of {have} bytes, a segment needs up to {needed}")]
    ScratchTooSmall {
        /// [`super::Gso::max_segment_len`].
        needed: usize,
        /// The scratch buffer's length.
        have: usize,
    },
    /// The frame is not the one the request was checked against.
    #[error(transparent)]
    FrameMismatch(#[from] FrameMismatch),
    /// A segment past the last one was asked for.
    #[error("segment {index} asked for, the request makes {count}")]
    NoSuchSegment {
        /// The segment asked for.
        index: usize,
        /// [`super::Gso::segment_count`].
        count: usize,
    },
    /// The buffer for one segment is not exactly [`super::Gso::segment_len`] bytes.
    #[error("a buffer of {have} bytes for a segment of {needed}")]
    WrongSegmentBuffer {
        /// [`super::Gso::segment_len`] of the segment.
        needed: usize,
        /// The buffer's length.
        have: usize,
    },
}
