//! ARP (RFC 826) for Ethernet hardware and IPv4 protocol addresses, the only kind the switch
//! parses or builds: hardware type 1, protocol type 0x0800, lengths 6 and 4, so the packet is
//! 28 bytes with fixed offsets.

use core::net::Ipv4Addr;

use super::{enum_with_unknown, Error, EtherType, Result};
use crate::types::MacAddr;

mod field {
    use core::ops::Range;

    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const HEADER_LEN: usize = field::TPA.end;

/// ARP hardware type of Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;

/// The first 6 bytes of every packet this module parses or builds: hardware type Ethernet
/// ([`HTYPE_ETHERNET`]), protocol type IPv4 ([`EtherType::IPV4`]), hardware length 6,
/// protocol length 4. The key extractor compares them at once.
pub const ETHERNET_IPV4: [u8; 6] = {
    let [h0, h1] = HTYPE_ETHERNET.to_be_bytes();
    let [p0, p1] = EtherType::IPV4.to_be_bytes();
    [h0, h1, p0, p1, 6, 4]
};

enum_with_unknown! {
    /// An ARP operation code.
    pub enum Operation(u16) {
        /// A request: who has the target protocol address?
        Request = REQUEST = 1,
        /// A reply: the sender has it.
        Reply = REPLY = 2,
    }
}

super::packet_view! {
    /// A read/write view of an Ethernet/IPv4 ARP packet. Its `check_len` checks the buffer
    /// length only: the offsets are fixed, and [`Repr::parse`] checks the length fields.
    Packet, at least HEADER_LEN bytes {
        /// Hardware type (1 for Ethernet).
        pub fn hardware_type, set_hardware_type: u16 = field::HTYPE;
        /// Protocol type.
        pub fn protocol_type, set_protocol_type: EtherType = field::PTYPE;
        /// Hardware address length.
        pub fn hardware_len, set_hardware_len: u8 = field::HLEN;
        /// Protocol address length.
        pub fn protocol_len, set_protocol_len: u8 = field::PLEN;
        /// Operation.
        pub fn operation, set_operation: Operation = field::OPER;
        /// Sender hardware address.
        pub fn source_hardware_addr, set_source_hardware_addr: MacAddr = field::SHA;
        /// Sender protocol address.
        pub fn source_protocol_addr, set_source_protocol_addr: Ipv4Addr = field::SPA;
        /// Target hardware address.
        pub fn target_hardware_addr, set_target_hardware_addr: MacAddr = field::THA;
        /// Target protocol address.
        pub fn target_protocol_addr, set_target_protocol_addr: Ipv4Addr = field::TPA;
    }
}

/// The values of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Operation.
    pub operation: Operation,
    /// Sender hardware address.
    pub source_hardware_addr: MacAddr,
    /// Sender protocol address.
    pub source_protocol_addr: Ipv4Addr,
    /// Target hardware address.
    pub target_hardware_addr: MacAddr,
    /// Target protocol address.
    pub target_protocol_addr: Ipv4Addr,
}

impl Repr {
    /// Reads a checked packet. `Err(Unsupported)` unless it is Ethernet/IPv4 ARP (hardware
    /// type 1, protocol 0x0800, lengths 6 and 4).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        if packet.hardware_type() != HTYPE_ETHERNET
            || packet.protocol_type() != EtherType::Ipv4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(Error::Unsupported);
        }
        Ok(Repr {
            operation: packet.operation(),
            source_hardware_addr: packet.source_hardware_addr(),
            source_protocol_addr: packet.source_protocol_addr(),
            target_hardware_addr: packet.target_hardware_addr(),
            target_protocol_addr: packet.target_protocol_addr(),
        })
    }

    /// Length of the emitted packet.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the packet into a buffer of at least [`Repr::header_len`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_hardware_type(HTYPE_ETHERNET);
        packet.set_protocol_type(EtherType::Ipv4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_source_hardware_addr(self.source_hardware_addr);
        packet.set_source_protocol_addr(self.source_protocol_addr);
        packet.set_target_hardware_addr(self.target_hardware_addr);
        packet.set_target_protocol_addr(self.target_protocol_addr);
    }
}

#[cfg(test)]
mod test {
    use super::*;

    static PACKET_BYTES: [u8; 28] = [
        0x00, 0x01, // hardware type: Ethernet
        0x08, 0x00, // protocol type: IPv4
        0x06, // hardware length
        0x04, // protocol length
        0x00, 0x02, // operation: reply
        0x52, 0x54, 0x00, 0x00, 0x00, 0x01, // sender hardware address
        0x0a, 0x00, 0x00, 0x01, // sender protocol address 10.0.0.1
        0x52, 0x54, 0x00, 0x00, 0x00, 0x02, // target hardware address
        0x0a, 0x00, 0x00, 0x02, // target protocol address 10.0.0.2
    ];

    crate::wire::header_tests!(PACKET_BYTES, repr: repr());

    fn repr() -> Repr {
        Repr {
            operation: Operation::Reply,
            source_hardware_addr: MacAddr([0x52, 0x54, 0, 0, 0, 1]),
            source_protocol_addr: Ipv4Addr::new(10, 0, 0, 1),
            target_hardware_addr: MacAddr([0x52, 0x54, 0, 0, 0, 2]),
            target_protocol_addr: Ipv4Addr::new(10, 0, 0, 2),
        }
    }

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(p.hardware_type(), 1);
        assert_eq!(p.protocol_type(), EtherType::Ipv4);
        assert_eq!((p.hardware_len(), p.protocol_len()), (6, 4));
        assert_eq!(p.operation(), Operation::Reply);
        assert_eq!(p.source_hardware_addr(), MacAddr([0x52, 0x54, 0, 0, 0, 1]));
        assert_eq!(p.source_protocol_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.target_hardware_addr(), MacAddr([0x52, 0x54, 0, 0, 0, 2]));
        assert_eq!(p.target_protocol_addr(), Ipv4Addr::new(10, 0, 0, 2));
    }

    #[test]
    fn test_construct() {
        let mut bytes = [0xa5u8; 28];
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_hardware_type(1);
        p.set_protocol_type(EtherType::Ipv4);
        p.set_hardware_len(6);
        p.set_protocol_len(4);
        p.set_operation(Operation::Reply);
        p.set_source_hardware_addr(MacAddr([0x52, 0x54, 0, 0, 0, 1]));
        p.set_source_protocol_addr(Ipv4Addr::new(10, 0, 0, 1));
        p.set_target_hardware_addr(MacAddr([0x52, 0x54, 0, 0, 0, 2]));
        p.set_target_protocol_addr(Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(bytes, PACKET_BYTES);
    }

    #[test]
    fn test_parse_unsupported() {
        let mut bytes = PACKET_BYTES;
        bytes[5] = 16; // protocol length of IPv6
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&bytes[..])),
            Err(Error::Unsupported)
        );
    }
}
