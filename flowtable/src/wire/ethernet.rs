//! Ethernet II header (IEEE 802.3 clause 3.1.1): destination, source, EtherType.
//!
//! A type field below 0x600 is an 802.3 length; the view reports it as
//! `EtherType::Unknown(len)` and leaves the decision to the caller.

use super::{EtherType, Result};
use crate::types::MacAddr;

mod field {
    use core::ops::{Range, RangeFrom};

    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: RangeFrom<usize> = ETHERTYPE.end..;
}

/// Length of an Ethernet II header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

super::packet_view! {
    /// A read/write view of an Ethernet II frame.
    Packet, at least HEADER_LEN bytes, payload at field::PAYLOAD {
        /// Destination address.
        pub fn dst_addr, set_dst_addr: MacAddr = field::DESTINATION;
        /// Source address.
        pub fn src_addr, set_src_addr: MacAddr = field::SOURCE;
        /// EtherType (or an 802.3 length, as `Unknown`).
        pub fn ethertype, set_ethertype: EtherType = field::ETHERTYPE;
    }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Length of the header: [`HEADER_LEN`].
    pub const fn header_len() -> usize {
        HEADER_LEN
    }
}

/// The values of an Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source address.
    pub src_addr: MacAddr,
    /// Destination address.
    pub dst_addr: MacAddr,
    /// EtherType.
    pub ethertype: EtherType,
}

impl Repr {
    /// Reads the header of a checked packet.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            ethertype: packet.ethertype(),
        })
    }

    /// Length of the emitted header.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into a buffer of at least [`Repr::header_len`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_dst_addr(self.dst_addr);
        packet.set_src_addr(self.src_addr);
        packet.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod test {
    use super::*;

    static FRAME_BYTES: [u8; 18] = [
        0x52, 0x54, 0x00, 0x00, 0x00, 0x02, // destination 52:54:00:00:00:02
        0x52, 0x54, 0x00, 0x00, 0x00, 0x01, // source 52:54:00:00:00:01
        0x08, 0x00, // EtherType IPv4
        0xaa, 0xbb, 0xcc, 0xdd, // payload
    ];

    const DST: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 2]);
    const SRC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 1]);

    crate::wire::header_tests!(FRAME_BYTES, repr: repr());

    fn repr() -> Repr {
        Repr {
            src_addr: SRC,
            dst_addr: DST,
            ethertype: EtherType::Ipv4,
        }
    }

    #[test]
    fn test_deconstruct() {
        let packet = Packet::new_checked(&FRAME_BYTES[..]).unwrap();
        assert_eq!(packet.dst_addr(), DST);
        assert_eq!(packet.src_addr(), SRC);
        assert_eq!(packet.ethertype(), EtherType::Ipv4);
        assert_eq!(packet.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
    }

    #[test]
    fn test_construct() {
        let mut bytes = [0xa5u8; 18];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_dst_addr(DST);
        packet.set_src_addr(SRC);
        packet.set_ethertype(EtherType::Ipv4);
        packet
            .payload_mut()
            .copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(bytes, FRAME_BYTES);
    }

    #[test]
    fn test_length_field_is_unknown() {
        let mut bytes = FRAME_BYTES;
        bytes[12..14].copy_from_slice(&[0x00, 0x2e]);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.ethertype(), EtherType::Unknown(0x2e));
    }

    #[test]
    fn test_header_only() {
        assert!(Packet::new_checked(&FRAME_BYTES[..HEADER_LEN]).is_ok());
    }
}
