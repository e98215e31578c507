//! UDP header (RFC 768).

use core::net::Ipv4Addr;

use super::{checksum, IpProtocol, Result};

mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// Length of a UDP header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

super::packet_view! {
    /// A read/write view of a UDP datagram. [`Packet::set_len`] can undo its `check_len`.
    Packet, at least HEADER_LEN bytes and as many as len says {
        /// Source port.
        pub fn src_port, set_src_port: u16 = field::SRC_PORT;
        /// Destination port.
        pub fn dst_port, set_dst_port: u16 = field::DST_PORT;
        /// Length field: header and payload, in bytes.
        pub fn len, set_len: u16 = field::LENGTH;
        /// Checksum as stored (0: none computed, allowed over IPv4).
        pub fn checksum, set_checksum: u16 = field::CHECKSUM;
    }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// True when the length field says there is no payload.
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// True when the checksum is absent (0) or correct for an IPv4 pseudo-header.
    pub fn checksum_valid_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let data = &self.buffer.as_ref()[..usize::from(self.len())];
        checksum::combine(&[
            checksum::pseudo_header_v4(src, dst, IpProtocol::Udp.into(), self.len()),
            checksum::sum(data),
        ]) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload, up to the length field.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Computes the checksum over the IPv4 pseudo-header, the header and the payload (up to
    /// the length field, which must be set and within the buffer) and stores it. A computed
    /// 0 is sent as 0xffff (RFC 768).
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let len = self.len();
        let sum = checksum::combine(&[
            checksum::pseudo_header_v4(src, dst, IpProtocol::Udp.into(), len),
            checksum::sum(&self.buffer.as_ref()[..usize::from(len)]),
        ]);
        let value = !sum;
        self.set_checksum(if value == 0 { 0xffff } else { value })
    }

    /// The payload, up to the length field, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// The values of a UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload length in bytes.
    pub payload_len: usize,
}

impl Repr {
    /// Reads a checked datagram. The checksum is not verified (see
    /// [`Packet::checksum_valid_v4`]).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: usize::from(packet.len()) - HEADER_LEN,
        })
    }

    /// Length of the emitted header.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into a buffer of at least [`Repr::header_len`] bytes, with checksum
    /// 0 ("none", which IPv4 allows and VXLAN senders use, RFC 7348 section 5). To checksum,
    /// write the payload, then call [`Packet::fill_checksum_v4`]. The length field is
    /// `HEADER_LEN + payload_len`, saturated at 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(u16::try_from(HEADER_LEN + self.payload_len).unwrap_or(u16::MAX));
        packet.set_checksum(0);
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::wire::Error;

    static PACKET_BYTES: [u8; 12] = [
        0xc0, 0x00, // source port 49152
        0x12, 0xb5, // destination port 4789
        0x00, 0x0c, // length 12
        0x00, 0x00, // checksum: none
        0xaa, 0x00, 0x00, 0xff, // payload
    ];

    static PAYLOAD: [u8; 4] = [0xaa, 0x00, 0x00, 0xff];

    crate::wire::header_tests!(PACKET_BYTES, repr: repr());

    fn repr() -> Repr {
        Repr {
            src_port: 49152,
            dst_port: 4789,
            payload_len: 4,
        }
    }

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(p.src_port(), 49152);
        assert_eq!(p.dst_port(), 4789);
        assert_eq!(p.len(), 12);
        assert!(!p.is_empty());
        assert_eq!(p.checksum(), 0);
        assert_eq!(p.payload(), &PAYLOAD);
    }

    #[test]
    fn test_construct() {
        let mut bytes = [0xa5u8; 12];
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_src_port(49152);
        p.set_dst_port(4789);
        p.set_len(12);
        p.set_checksum(0);
        p.payload_mut().copy_from_slice(&PAYLOAD);
        assert_eq!(bytes, PACKET_BYTES);
    }

    #[test]
    fn test_checksum() {
        let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let mut bytes = PACKET_BYTES;
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.fill_checksum_v4(src, dst);
        assert_ne!(p.checksum(), 0);
        assert!(p.checksum_valid_v4(src, dst));
        assert!(!p.checksum_valid_v4(src, Ipv4Addr::new(10, 0, 0, 3)));
    }

    #[test]
    fn test_impossible_len() {
        let mut bytes = PACKET_BYTES;
        bytes[4..6].copy_from_slice(&[0, 4]);
        assert_eq!(Packet::new_checked(&bytes[..]), Err(Error::Malformed));
    }

    #[test]
    fn test_truncated() {
        // The fixed header fits, the length field does not.
        assert_eq!(
            Packet::new_checked(&PACKET_BYTES[..11]),
            Err(Error::Truncated)
        );
    }
}
