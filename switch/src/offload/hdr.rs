//! The virtio-net header (`struct virtio_net_hdr_v1`, virtio 1.2 5.1.6, [`VirtioNetHdr`]) as
//! an offload request, and its validation against the frame it comes with.

use std::num::NonZeroU16;

pub use ports::VirtioNetHdr;

use super::error::OffloadError;
use super::headers::{parse_link, parse_network, parse_transport, Headers};
use super::{Csum, Gso, GsoKind, OffloadRequest, MAX_FRAME_LEN};

/// Bytes after the IP header that flow rules may match for a protocol other than TCP and
/// UDP: SCTP's ports, ICMP's type and code.
const CLASSIFIED_L4_LEN: usize = 4;

/// Checking a virtio-net header ([`VirtioNetHdr`], as a port copied it into switch memory)
/// against the frame it came with.
pub trait CheckOffload {
    /// Checks this header against `frame`, the bytes that followed it, and says what the
    /// switch must do: see the module documentation for the rules. `hdr_len` and
    /// `num_buffers` are ignored, as are `csum_*` without `F_NEEDS_CSUM` and `gso_size`
    /// without a `gso_type`.
    fn offload_request(&self, frame: &[u8]) -> Result<OffloadRequest, OffloadError>;
}

/// Flags a transmitted header may carry.
const KNOWN_FLAGS: u8 =
    VirtioNetHdr::F_NEEDS_CSUM | VirtioNetHdr::F_DATA_VALID | VirtioNetHdr::F_RSC_INFO;

impl CheckOffload for VirtioNetHdr {
    fn offload_request(&self, frame: &[u8]) -> Result<OffloadRequest, OffloadError> {
        if frame.len() > MAX_FRAME_LEN {
            return Err(OffloadError::FrameTooLong {
                len: frame.len(),
                max: MAX_FRAME_LEN,
            });
        }
        let csum = csum_request(self)?;
        let gso = gso_request(self)?;
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
}

/// The checksum request in the flags, not yet checked against the frame.
fn csum_request(hdr: &VirtioNetHdr) -> Result<Option<Csum>, OffloadError> {
    let unknown = hdr.flags & !KNOWN_FLAGS;
    if unknown != 0 {
        return Err(OffloadError::UnknownFlags { flags: unknown });
    }
    if hdr.flags & VirtioNetHdr::F_RSC_INFO != 0 {
        return Err(OffloadError::RscInfoFromDriver);
    }
    Ok(
        (hdr.flags & VirtioNetHdr::F_NEEDS_CSUM != 0).then_some(Csum {
            start: hdr.csum_start,
            offset: hdr.csum_offset,
        }),
    )
}

/// The segmentation request in `gso_type` and `gso_size`, not yet checked against the
/// frame.
fn gso_request(hdr: &VirtioNetHdr) -> Result<Option<GsoRequest>, OffloadError> {
    if hdr.gso_type == VirtioNetHdr::GSO_NONE {
        return Ok(None);
    }
    let ecn = hdr.gso_type & VirtioNetHdr::GSO_ECN != 0;
    let kind = match hdr.gso_type & !VirtioNetHdr::GSO_ECN {
        VirtioNetHdr::GSO_TCPV4 => GsoKind::Tcp4,
        VirtioNetHdr::GSO_TCPV6 => GsoKind::Tcp6,
        VirtioNetHdr::GSO_UDP_L4 if ecn => return Err(OffloadError::EcnWithUdp),
        VirtioNetHdr::GSO_UDP_L4 => GsoKind::UdpL4,
        VirtioNetHdr::GSO_UDP => return Err(OffloadError::UfoUnsupported),
        _ => {
            return Err(OffloadError::UnknownGsoType {
                gso_type: hdr.gso_type,
            })
        }
    };
    let size = NonZeroU16::new(hdr.gso_size).ok_or(OffloadError::GsoSizeZero)?;
    Ok(Some(GsoRequest { kind, size, ecn }))
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
    if gso.segment_count() > kind.max_segments() {
        return Err(OffloadError::TooManySegments {
            kind,
            segments: gso.segment_count(),
            max: kind.max_segments(),
        });
    }
    Ok(gso)
}
