//! ICMP (RFC 792) and ICMPv6 (RFC 4443) message header: both start with type, code,
//! checksum and 4 bytes whose meaning depends on the type. Read-only: the switch matches on
//! type and code.

use super::array;

mod field {
    use core::ops::{Range, RangeFrom};

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
    pub const PAYLOAD: RangeFrom<usize> = REST.end..;
}

/// Length of an ICMP/ICMPv6 header (including the 4 type-specific bytes).
pub const HEADER_LEN: usize = field::PAYLOAD.start;

super::packet_view! {
    /// A read-only view of an ICMP or ICMPv6 message.
    Packet, at least HEADER_LEN bytes {
        /// Message type.
        pub fn msg_type: u8 = field::TYPE;
        /// Message code.
        pub fn msg_code: u8 = field::CODE;
        /// Checksum as stored.
        pub fn checksum: u16 = field::CHECKSUM;
    }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// The 4 type-specific bytes (echo id and sequence, MTU, pointer, unused...).
    #[inline]
    pub fn rest_of_header(&self) -> [u8; 4] {
        array(self.buffer.as_ref(), field::REST)
    }

    /// Echo identifier (meaningful for echo request/reply).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        let [a, b, _, _] = self.rest_of_header();
        u16::from_be_bytes([a, b])
    }

    /// Echo sequence number (meaningful for echo request/reply).
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        let [_, _, a, b] = self.rest_of_header();
        u16::from_be_bytes([a, b])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// Everything after the header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

#[cfg(test)]
mod test {
    use super::*;

    static PACKET_BYTES: [u8; 12] = [
        0x08, // type 8: echo request
        0x00, // code 0
        0x8e, 0xfe, // checksum
        0x12, 0x34, // identifier
        0xab, 0xcd, // sequence number
        0xaa, 0x00, 0x00, 0xff, // payload
    ];

    crate::wire::header_tests!(PACKET_BYTES);

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(p.msg_type(), 8);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0x8efe);
        assert_eq!(p.rest_of_header(), [0x12, 0x34, 0xab, 0xcd]);
        assert_eq!(p.echo_ident(), 0x1234);
        assert_eq!(p.echo_seq_no(), 0xabcd);
        assert_eq!(p.payload(), &[0xaa, 0x00, 0x00, 0xff]);
    }

    #[test]
    fn test_header_only() {
        assert!(Packet::new_checked(&PACKET_BYTES[..8]).is_ok());
    }
}
