//! Generic segmentation offload in software: cutting a guest's large TCP or UDP frame into
//! frames an output can take, as Linux's `tcp_gso_segment` and `__udp_gso_segment` do.
//!
//! Each segment is the frame's headers (Ethernet and VLAN tags as they are, IP, TCP or UDP)
//! followed by the next `gso_size` bytes of payload, with its headers edited:
//!
//! - IPv4: total length, the id advanced by the segment's index (the first keeps the
//!   guest's), a fresh header checksum; IPv6: payload length;
//! - TCP: sequence number advanced by the payload already sent; FIN and PSH only on the
//!   last segment, CWR only on the first; a full checksum;
//! - UDP (USO): length; a full checksum (0 sent as 0xffff).

use std::ops::ControlFlow;

use super::csum;
use super::error::SegmentError;
use super::headers::{Headers, IpVersion, Transport};
use super::Gso;

/// Offsets in the IPv4 header.
const IPV4_TOTAL_LEN: usize = 2;
const IPV4_ID: usize = 4;
const IPV4_CHECKSUM: usize = 10;
/// Offset of the payload length in the IPv6 header.
const IPV6_PAYLOAD_LEN: usize = 4;
/// Offsets in the TCP header.
const TCP_SEQ: usize = 4;
const TCP_FLAGS: usize = 13;
/// Offset of the length in the UDP header.
const UDP_LEN: usize = 4;

const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// Cuts `frame` into the segments `gso` asks for, builds each in `scratch` and hands it to
/// `emit`, in order; `emit` returns [`ControlFlow::Break`] to stop early (a full tx ring).
/// Returns how many segments were handed to `emit`.
///
/// `frame` must be the frame `gso` was checked against, and `scratch` at least
/// [`Gso::max_segment_len`] bytes; otherwise nothing is emitted and the error says which.
/// A payload that fits in one segment gives one segment, the frame with its checksums
/// filled. Allocates nothing; the work is one copy and one checksum pass over each segment.
pub fn segment<F>(
    frame: &[u8],
    gso: &Gso,
    scratch: &mut [u8],
    mut emit: F,
) -> Result<usize, SegmentError>
where
    F: FnMut(&[u8]) -> ControlFlow<()>,
{
    gso.headers().check_frame(frame)?;
    let needed = gso.max_segment_len();
    if scratch.len() < needed {
        return Err(SegmentError::ScratchTooSmall {
            needed,
            have: scratch.len(),
        });
    }
    let mut emitted = 0;
    for index in 0..gso.segment_count() {
        let segment = &mut scratch[..gso.segment_len(index)];
        write_segment(frame, gso, index, segment)?;
        emitted += 1;
        if emit(segment).is_break() {
            break;
        }
    }
    Ok(emitted)
}

/// Builds segment `index` (of [`Gso::segment_count`]) of `frame` in `dst`, which must be
/// exactly [`Gso::segment_len`]`(index)` bytes: the headers, edited for the segment's place,
/// then its payload. `frame` must be the frame `gso` was checked against. Lets a caller build
/// each segment straight into the buffer it sends.
pub fn write_segment(
    frame: &[u8],
    gso: &Gso,
    index: usize,
    dst: &mut [u8],
) -> Result<(), SegmentError> {
    let headers = gso.headers();
    headers.check_frame(frame)?;
    let count = gso.segment_count();
    if index >= count {
        return Err(SegmentError::NoSuchSegment { index, count });
    }
    let len = gso.segment_len(index);
    if dst.len() != len {
        return Err(SegmentError::WrongSegmentBuffer {
            needed: len,
            have: dst.len(),
        });
    }
    let header_len = headers.header_len();
    let payload_offset = index * usize::from(gso.size());
    let chunk = &frame[header_len + payload_offset..header_len + payload_offset + len - header_len];
    dst[..header_len].copy_from_slice(&frame[..header_len]);
    dst[header_len..].copy_from_slice(chunk);
    let position = Position {
        index,
        payload_offset,
        last: index + 1 == count,
    };
    write_headers(dst, headers, position);
    Ok(())
}

/// Where a segment is in the burst.
#[derive(Clone, Copy)]
struct Position {
    /// 0 for the first segment.
    index: usize,
    /// Payload bytes in the segments before this one.
    payload_offset: usize,
    /// Whether this is the last segment.
    last: bool,
}

impl Position {
    fn first(&self) -> bool {
        self.index == 0
    }
}

/// Edits the headers copied into `segment` (headers then payload, laid out as `headers`
/// says) for its place in the burst, checksums last.
fn write_headers(segment: &mut [u8], headers: &Headers, position: Position) {
    let l3 = headers.l3_offset();
    let l4 = headers.l4_offset();
    let l4_segment_len = segment.len() - l4;

    match headers.ip() {
        IpVersion::V4 => {
            let total_len = (segment.len() - l3) as u16;
            put_be16(segment, l3 + IPV4_TOTAL_LEN, total_len);
            let id = be16(segment, l3 + IPV4_ID).wrapping_add(position.index as u16);
            put_be16(segment, l3 + IPV4_ID, id);
            put_be16(segment, l3 + IPV4_CHECKSUM, 0);
            let checksum = csum::ipv4_header_checksum(&segment[l3..l4]);
            put_be16(segment, l3 + IPV4_CHECKSUM, checksum);
        }
        IpVersion::V6 => {
            put_be16(segment, l3 + IPV6_PAYLOAD_LEN, l4_segment_len as u16);
        }
    }

    match headers.transport() {
        Transport::Tcp => {
            let seq = be32(segment, l4 + TCP_SEQ).wrapping_add(position.payload_offset as u32);
            segment[l4 + TCP_SEQ..l4 + TCP_SEQ + 4].copy_from_slice(&seq.to_be_bytes());
            let mut flags = segment[l4 + TCP_FLAGS];
            if !position.last {
                flags &= !(TCP_FIN | TCP_PSH);
            }
            if !position.first() {
                flags &= !TCP_CWR;
            }
            segment[l4 + TCP_FLAGS] = flags;
        }
        Transport::Udp => {
            put_be16(segment, l4 + UDP_LEN, l4_segment_len as u16);
        }
    }

    let transport = headers.transport();
    let checksum = csum::transport_checksum(segment, headers.ip(), l3, l4, transport);
    put_be16(segment, l4 + transport.csum_offset(), checksum);
}

fn be16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn put_be16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_be_bytes());
}
