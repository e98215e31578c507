//! The virtio-net header (`struct virtio_net_hdr_v1`, virtio 1.2 5.1.6) as an offload
//! request, and its validation against the frame it comes with.

use std::num::NonZeroU16;

use super::error::OffloadError;
use super::headers::{parse_link, parse_network, parse_transport, Headers};
use super::{Csum, Gso, GsoKind, OffloadRequest, MAX_FRAME_LEN, MAX_UDP_SEGMENTS};

/// Bytes after the IP header that flow rules may match for a protocol other than TCP and
/// UDP: SCTP's ports, ICMP's type and code.
const CLASSIFIED_L4_LEN: usize = 4;

/// `struct virtio_net_hdr_v1`: the 12 bytes in front of every frame on a virtio-net queue
/// once `VIRTIO_F_VERSION_1` is negotiated, all fields little-endian.
///
/// Only a description of what the guest wrote: [`VirtioNetHdr::offload_request`] says what
/// of it holds for the frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VirtioNetHdr {
    /// `VIRTIO_NET_HDR_F_*` bits.
    pub flags: u8,
    /// `VIRTIO_NET_HDR_GSO_*`, possibly with [`VirtioNetHdr::GSO_ECN`].
    pub gso_type: u8,
    /// The guest's idea of the header length; a hint only (Linux puts the length of the
    /// packet's linear part there), never used.
    pub hdr_len: u16,
    /// Payload bytes per segment (the MSS), with a `gso_type`.
    pub gso_size: u16,
    /// Where the partial checksum's summing starts, with `F_NEEDS_CSUM`.
    pub csum_start: u16,
    /// Where the checksum field is from `csum_start`, with `F_NEEDS_CSUM`.
    pub csum_offset: u16,
    /// Buffers a received packet spans (`VIRTIO_NET_F_MRG_RXBUF`); unused on transmit.
    pub num_buffers: u16,
}

impl VirtioNetHdr {
    /// The header's length on the queue.
    pub const LEN: usize = 12;

    /// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum from `csum_start` on is partial.
    pub const F_NEEDS_CSUM: u8 = 1;
    /// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was checked (receive path only).
    pub const F_DATA_VALID: u8 = 2;
    /// `VIRTIO_NET_HDR_F_RSC_INFO`: coalescing counts in the checksum fields (receive path
    /// only).
    pub const F_RSC_INFO: u8 = 4;

    /// `VIRTIO_NET_HDR_GSO_NONE`: no segmentation.
    pub const GSO_NONE: u8 = 0;
    /// `VIRTIO_NET_HDR_GSO_TCPV4`: TCP over IPv4 segmentation.
    pub const GSO_TCPV4: u8 = 1;
    /// `VIRTIO_NET_HDR_GSO_UDP`: UDP fragmentation (UFO).
    pub const GSO_UDP: u8 = 3;
    /// `VIRTIO_NET_HDR_GSO_TCPV6`: TCP over IPv6 segmentation.
    pub const GSO_TCPV6: u8 = 4;
    /// `VIRTIO_NET_HDR_GSO_UDP_L4`: UDP segmentation (USO).
    pub const GSO_UDP_L4: u8 = 5;
    /// `VIRTIO_NET_HDR_GSO_ECN`: the TCP burst has CWR set.
    pub const GSO_ECN: u8 = 0x80;

    /// Flags a transmitted header may carry.
    const KNOWN_FLAGS: u8 = Self::F_NEEDS_CSUM | Self::F_DATA_VALID | Self::F_RSC_INFO;

    /// Reads the header from the first [`VirtioNetHdr::LEN`] bytes of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OffloadError> {
        let Some(bytes) = bytes.first_chunk::<{ Self::LEN }>() else {
            return Err(OffloadError::HeaderTooShort { len: bytes.len() });
        };
        let le16 = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        Ok(VirtioNetHdr {
            flags: bytes[0],
            gso_type: bytes[1],
            hdr_len: le16(2),
            gso_size: le16(4),
            csum_start: le16(6),
            csum_offset: le16(8),
            num_buffers: le16(10),
        })
    }

    /// The header as it is on the queue.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut bytes = [0; Self::LEN];
        bytes[0] = self.flags;
        bytes[1] = self.gso_type;
        for (at, field) in [
            (2, self.hdr_len),
            (4, self.gso_size),
            (6, self.csum_start),
            (8, self.csum_offset),
            (10, self.num_buffers),
        ] {
            bytes[at..at + 2].copy_from_slice(&field.to_le_bytes());
        }
        bytes
    }

    /// Checks this header against `frame`, the bytes that followed it, and says what the
    /// switch must do: see the module documentation for the rules. `hdr_len` and
    /// `num_buffers` are ignored, as are `csum_*` without `F_NEEDS_CSUM` and `gso_size`
    /// without a `gso_type`.
    pub fn offload_request(&self, frame: &[u8]) -> Result<OffloadRequest, OffloadError> {
        if frame.len() > MAX_FRAME_LEN {
            return Err(OffloadError::FrameTooLong {
                len: frame.len(),
                max: MAX_FRAME_LEN,
            });
        }
        let csum = self.csum()?;
        let gso = self.gso()?;
        match (csum, gso) {
            (None, None) => Ok(OffloadRequest::default()),
            (None, Some(_)) => Err(OffloadError::GsoWithoutCsum),
            (Some(csum), None) => {
                check_partial_csum(frame, csum)?;
                Ok(OffloadRequest {
                    csum: Some(csum),
                    gso: None,
                })
            }
            (Some(csum), Some(gso)) => Ok(OffloadRequest {
                csum: Some(csum),
                gso: Some(check_gso(frame, csum, gso)?),
            }),
        }
    }

    /// The checksum request in the flags, not yet checked against the frame.
    fn csum(&self) -> Result<Option<Csum>, OffloadError> {
        let unknown = self.flags & !Self::KNOWN_FLAGS;
        if unknown != 0 {
            return Err(OffloadError::UnknownFlags { flags: unknown });
        }
        if self.flags & Self::F_RSC_INFO != 0 {
            return Err(OffloadError::RscInfoFromDriver);
        }
        Ok((self.flags & Self::F_NEEDS_CSUM != 0).then_some(Csum {
            start: self.csum_start,
            offset: self.csum_offset,
        }))
    }

    /// The segmentation request in `gso_type` and `gso_size`, not yet checked against the
    /// frame.
    fn gso(&self) -> Result<Option<GsoRequest>, OffloadError> {
        if self.gso_type == Self::GSO_NONE {
            return Ok(None);
        }
        let ecn = self.gso_type & Self::GSO_ECN != 0;
        let kind = match self.gso_type & !Self::GSO_ECN {
            Self::GSO_TCPV4 => GsoKind::Tcp4,
            Self::GSO_TCPV6 => GsoKind::Tcp6,
            Self::GSO_UDP_L4 if ecn => return Err(OffloadError::EcnWithUdp),
            Self::GSO_UDP_L4 => GsoKind::UdpL4,
            Self::GSO_UDP => return Err(OffloadError::UfoUnsupported),
            _ => {
                return Err(OffloadError::UnknownGsoType {
                    gso_type: self.gso_type,
                })
            }
        };
        let size = NonZeroU16::new(self.gso_size).ok_or(OffloadError::GsoSizeZero)?;
        Ok(Some(GsoRequest { kind, size, ecn }))
    }
}

/// `gso_type` and `gso_size` as the guest gave them.
#[derive(Clone, Copy)]
struct GsoRequest {
    kind: GsoKind,
    size: NonZeroU16,
    ecn: bool,
}

/// Fails unless the 2-byte checksum field is inside the frame.
fn check_csum_in_frame(frame: &[u8], csum: Csum) -> Result<(), OffloadError> {
    let (start, offset) = (usize::from(csum.start), usize::from(csum.offset));
    if start + offset + 2 > frame.len() {
        return Err(OffloadError::CsumOutOfFrame {
            start,
            offset,
            frame_len: frame.len(),
        });
    }
    Ok(())
}

/// A checksum request alone. The summing starts at or after the transport header, and the
/// field it fills overwrites no byte the switch's flow key is read from (flow rules have
/// matched before the datapath fills it): for TCP and UDP it is the checksum field or lies
/// in the payload (a checksum of the guest's own tunnel); for another protocol it lies past
/// the first [`CLASSIFIED_L4_LEN`] bytes after the IP header.
fn check_partial_csum(frame: &[u8], csum: Csum) -> Result<(), OffloadError> {
    check_csum_in_frame(frame, csum)?;
    let (l2_len, ethertype) = parse_link(frame)?;
    let network = parse_network(frame, l2_len, ethertype)?;
    let l4_offset = l2_len + network.header_len;
    let start = usize::from(csum.start);
    if start < l4_offset {
        return Err(OffloadError::CsumStartInHeaders { start, l4_offset });
    }
    let field = start + usize::from(csum.offset);
    let matched_end = match network.transport()? {
        Some(transport) => {
            let l4_len = parse_transport(frame, l4_offset, transport)?;
            if field == l4_offset + transport.csum_offset() {
                return Ok(());
            }
            l4_offset + l4_len
        }
        None => l4_offset + CLASSIFIED_L4_LEN,
    };
    if field < matched_end {
        return Err(OffloadError::CsumFieldInTransportHeader { field, l4_offset });
    }
    Ok(())
}

/// A segmentation request: the frame's own headers parsed and matching the request in
/// every field.
fn check_gso(frame: &[u8], csum: Csum, request: GsoRequest) -> Result<Gso, OffloadError> {
    check_csum_in_frame(frame, csum)?;
    let headers = Headers::parse(frame)?;
    let kind = request.kind;
    if kind.ip_version().is_some_and(|ip| ip != headers.ip()) {
        return Err(OffloadError::GsoIpMismatch {
            kind,
            ip: headers.ip(),
        });
    }
    let transport = headers.transport();
    if kind.transport() != transport {
        return Err(OffloadError::L4ProtocolMismatch {
            kind,
            found: transport,
        });
    }
    if usize::from(csum.start) != headers.l4_offset() {
        return Err(OffloadError::CsumStartMismatch {
            start: usize::from(csum.start),
            l4_offset: headers.l4_offset(),
        });
    }
    if usize::from(csum.offset) != transport.csum_offset() {
        return Err(OffloadError::CsumOffsetMismatch {
            offset: usize::from(csum.offset),
            expected: transport.csum_offset(),
            transport,
        });
    }
    if headers.payload_len() == 0 {
        return Err(OffloadError::GsoWithoutPayload);
    }
    let gso = Gso {
        kind,
        size: request.size,
        ecn: request.ecn,
        headers,
    };
    if kind == GsoKind::UdpL4 && gso.segment_count() > MAX_UDP_SEGMENTS {
        return Err(OffloadError::TooManyUdpSegments {
            segments: gso.segment_count(),
            max: MAX_UDP_SEGMENTS,
        });
    }
    Ok(gso)
}
