//! The Internet checksum (RFC 1071) and the checksums built on it: IPv4 header, TCP and UDP
//! with their pseudo-headers, and the completion of a guest's partial checksum.
//!
//! [`sum`] gives the folded ones' complement sum of a slice, not complemented; [`combine`]
//! adds such sums (each slice but the last of even length, so every byte keeps its place in
//! its 16-bit word); a checksum is the complement of the whole sum.

use super::error::{FrameMismatch, OffloadError};
use super::headers::{Headers, IpVersion, Transport};

/// Offset of the checksum field in an IPv4 header.
const IPV4_CHECKSUM_OFFSET: usize = 10;

/// The ones' complement sum of `bytes` as big-endian 16-bit words (an odd last byte is the
/// high byte of a word whose low byte is 0), folded to 16 bits and not complemented.
///
/// Accumulates 8 bytes at a time in a `u64` with end-around carry: 2^64 is 1 modulo
/// 2^16 - 1, so the 64-bit sum folds to the sum of the 16-bit words.
pub fn sum(bytes: &[u8]) -> u16 {
    let (words, tail) = bytes.as_chunks::<8>();
    let mut acc: u64 = 0;
    for word in words {
        acc = add_end_around(acc, u64::from_be_bytes(*word));
    }
    let (pairs, odd) = tail.as_chunks::<2>();
    for pair in pairs {
        acc = add_end_around(acc, u64::from(u16::from_be_bytes(*pair)));
    }
    if let [last] = odd {
        acc = add_end_around(acc, u64::from(*last) << 8);
    }
    fold(acc)
}

/// Adds partial sums from [`sum`] and the pseudo-header functions, folded.
pub fn combine(sums: &[u16]) -> u16 {
    let acc = sums.iter().fold(0u64, |acc, &s| acc + u64::from(s));
    fold(acc)
}

/// The sum of the IPv4 pseudo-header (RFC 793 3.1, RFC 768): addresses, protocol and the
/// transport length (header and payload).
pub fn pseudo_header_v4(source: [u8; 4], destination: [u8; 4], protocol: u8, length: u16) -> u16 {
    let acc = u64::from(u32::from_be_bytes(source))
        + u64::from(u32::from_be_bytes(destination))
        + u64::from(protocol)
        + u64::from(length);
    fold(acc)
}

/// The sum of the IPv6 pseudo-header (RFC 8200 8.1): addresses, the upper-layer packet
/// length and the next header.
pub fn pseudo_header_v6(
    source: [u8; 16],
    destination: [u8; 16],
    next_header: u8,
    length: u32,
) -> u16 {
    let acc = u64::from(sum(&source))
        + u64::from(sum(&destination))
        + u64::from(length >> 16)
        + u64::from(length & 0xffff)
        + u64::from(next_header);
    fold(acc)
}

/// The checksum to store in the IPv4 header `header` (options included), whatever its
/// checksum field holds now.
pub fn ipv4_header_checksum(header: &[u8]) -> u16 {
    let before = header.get(..IPV4_CHECKSUM_OFFSET).unwrap_or(header);
    let after = header.get(IPV4_CHECKSUM_OFFSET + 2..).unwrap_or(&[]);
    !combine(&[sum(before), sum(after)])
}

/// Completes a partial checksum, as a device does for `VIRTIO_NET_HDR_F_NEEDS_CSUM` and as
/// Linux's `skb_checksum_help` does for `CHECKSUM_PARTIAL`: sums the frame from `start` to
/// its end, the field at `start + offset` included (where the guest left the pseudo-header
/// sum), and stores the complement there, big-endian. A result of 0 is stored as 0xffff
/// (Linux's `CSUM_MANGLED_0`): the same checksum for TCP, and the one UDP needs.
///
/// Fails, touching nothing, when the 2-byte field is not inside the frame.
pub fn fill_partial(frame: &mut [u8], start: usize, offset: usize) -> Result<(), OffloadError> {
    let out_of_frame = OffloadError::CsumOutOfFrame {
        start,
        offset,
        frame_len: frame.len(),
    };
    let field = start.checked_add(offset).ok_or(out_of_frame)?;
    if field.checked_add(2).is_none_or(|end| end > frame.len()) {
        return Err(out_of_frame);
    }
    let checksum = match !sum(&frame[start..]) {
        0 => 0xffff,
        checksum => checksum,
    };
    frame[field..field + 2].copy_from_slice(&checksum.to_be_bytes());
    Ok(())
}

/// The TCP or UDP checksum of a parsed frame, computed in full (pseudo-header, transport
/// header with its checksum field taken as 0, payload), whatever the field holds now. A UDP
/// checksum of 0 is given as 0xffff (RFC 768: 0 means "none").
pub fn l4_checksum(frame: &[u8], headers: &Headers) -> Result<u16, FrameMismatch> {
    headers.check_frame(frame)?;
    Ok(transport_checksum(
        frame,
        headers.ip(),
        headers.l3_offset(),
        headers.l4_offset(),
        headers.transport(),
    ))
}

/// Computes [`l4_checksum`] and stores it in the transport header.
pub fn fill_l4_checksum(frame: &mut [u8], headers: &Headers) -> Result<(), FrameMismatch> {
    let checksum = l4_checksum(frame, headers)?;
    let field = headers.l4_offset() + headers.transport().csum_offset();
    frame[field..field + 2].copy_from_slice(&checksum.to_be_bytes());
    Ok(())
}

/// The transport checksum of `packet`, whose IP header is at `l3_offset` and transport
/// header at `l4_offset`, running to the end of `packet`. The caller guarantees the headers
/// are inside `packet` (it parsed them from this packet, or copied them in).
pub(super) fn transport_checksum(
    packet: &[u8],
    ip: IpVersion,
    l3_offset: usize,
    l4_offset: usize,
    transport: Transport,
) -> u16 {
    let ip_header = &packet[l3_offset..l4_offset];
    let segment = &packet[l4_offset..];
    let protocol = transport.protocol();
    let pseudo = match ip {
        IpVersion::V4 => pseudo_header_v4(
            address(ip_header, 12),
            address(ip_header, 16),
            protocol,
            segment.len() as u16,
        ),
        IpVersion::V6 => pseudo_header_v6(
            address(ip_header, 8),
            address(ip_header, 24),
            protocol,
            segment.len() as u32,
        ),
    };
    let field = transport.csum_offset();
    let stored = u16::from_be_bytes([segment[field], segment[field + 1]]);
    // Sum everything, then take the stored field out again: adding its complement
    // subtracts it in ones' complement arithmetic.
    let checksum = !combine(&[pseudo, sum(segment), !stored]);
    match (transport, checksum) {
        (Transport::Udp, 0) => 0xffff,
        (_, checksum) => checksum,
    }
}

/// The `N`-byte address at `at` in an IP header that holds it.
fn address<const N: usize>(ip_header: &[u8], at: usize) -> [u8; N] {
    let mut address = [0; N];
    address.copy_from_slice(&ip_header[at..at + N]);
    address
}

/// Adds in ones' complement arithmetic on 64 bits: the carry out comes back in at the bottom.
fn add_end_around(a: u64, b: u64) -> u64 {
    let (sum, carry) = a.overflowing_add(b);
    sum + u64::from(carry)
}

/// Folds a 64-bit ones' complement sum to 16 bits.
fn fold(mut acc: u64) -> u16 {
    // Each round at least halves the bits above 16: at most four rounds.
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}
