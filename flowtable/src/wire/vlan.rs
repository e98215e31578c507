//! IEEE 802.1Q VLAN tag: the 4 bytes that follow a TPID (0x8100, or 0x88a8 for an 802.1ad
//! service tag).
//!
//! The TPID itself is the EtherType field of the header before the tag, so this view covers
//! the Tag Control Information (PCP, DEI, VID) and the EtherType of what follows the tag.

use super::{EtherType, Result};
use crate::types::VlanId;

mod field {
    use core::ops::{Range, RangeFrom};

    pub const TCI: Range<usize> = 0..2;
    pub const ETHERTYPE: Range<usize> = 2..4;
    pub const PAYLOAD: RangeFrom<usize> = ETHERTYPE.end..;
}

/// Length of a VLAN tag after its TPID.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// The TCI bits of the priority code point.
const PCP_SHIFT: u16 = 13;
/// The TCI bit of the drop eligible indicator.
const DEI_BIT: u16 = 0x1000;
/// The TCI bits of the VLAN id.
const VID_MASK: u16 = 0x0fff;

super::packet_view! {
    /// A read/write view of a VLAN tag.
    Packet, at least HEADER_LEN bytes, payload at field::PAYLOAD {
        /// The whole Tag Control Information field.
        pub fn tci, set_tci: u16 = field::TCI;
        /// EtherType of what follows the tag.
        pub fn ethertype, set_ethertype: EtherType = field::ETHERTYPE;
    }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Priority code point (0..=7).
    #[inline]
    pub fn pcp(&self) -> u8 {
        (self.tci() >> PCP_SHIFT) as u8
    }

    super::flag_getters! {
        /// Drop eligible indicator.
        pub fn dei = tci & DEI_BIT;
    }

    /// VLAN id (0..=4095).
    #[inline]
    pub fn vid(&self) -> VlanId {
        // A 12-bit value always fits.
        VlanId::new(self.tci() & VID_MASK).unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the priority code point; only the low 3 bits of `value` are used.
    #[inline]
    pub fn set_pcp(&mut self, value: u8) {
        let tci = self.tci() & !(0x7 << PCP_SHIFT);
        self.set_tci(tci | (u16::from(value & 0x7) << PCP_SHIFT))
    }

    super::flag_setters! {
        /// Sets the drop eligible indicator.
        pub fn set_dei = tci & DEI_BIT, via set_tci;
    }

    /// Sets the VLAN id.
    #[inline]
    pub fn set_vid(&mut self, value: VlanId) {
        let tci = self.tci() & !VID_MASK;
        self.set_tci(tci | value.get())
    }
}

/// The values of a VLAN tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Priority code point (0..=7; higher bits are ignored by `emit`).
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN id.
    pub vid: VlanId,
    /// EtherType of what follows the tag.
    pub ethertype: EtherType,
}

impl Repr {
    /// Reads a checked tag.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        Ok(Repr {
            pcp: packet.pcp(),
            dei: packet.dei(),
            vid: packet.vid(),
            ethertype: packet.ethertype(),
        })
    }

    /// Length of the emitted tag.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The TCI this tag emits.
    pub fn tci(&self) -> u16 {
        (u16::from(self.pcp & 0x7) << PCP_SHIFT)
            | if self.dei { DEI_BIT } else { 0 }
            | self.vid.get()
    }

    /// Writes the tag into a buffer of at least [`Repr::header_len`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_tci(self.tci());
        packet.set_ethertype(self.ethertype);
    }
}

/// Where an outer tag sits in an Ethernet frame: right after the two MAC addresses, its TPID
/// in the EtherType's place (the frame's EtherType follows the tag).
pub const TAG_OFFSET: usize = 12;
/// Bytes a tag adds to an Ethernet frame: its TPID and its TCI.
pub const TAG_LEN: usize = 4;

/// True when the Ethernet frame `frame` carries an outer 802.1Q or 802.1ad tag, whole (the
/// EtherType after it included).
#[inline]
pub fn is_tagged(frame: &[u8]) -> bool {
    frame.len() >= super::ethernet::HEADER_LEN + HEADER_LEN
        && EtherType::is_vlan_raw(u16::from_be_bytes([
            frame[TAG_OFFSET],
            frame[TAG_OFFSET + 1],
        ]))
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::wire::Error;

    static TAG_BYTES: [u8; 6] = [
        0xb0, 0x64, // TCI: PCP 5, DEI 1, VID 100
        0x86, 0xdd, // EtherType IPv6
        0x60, 0x00, // payload
    ];

    crate::wire::header_tests!(TAG_BYTES, repr: repr());

    fn repr() -> Repr {
        Repr {
            pcp: 5,
            dei: true,
            vid: VlanId::new(100).unwrap(),
            ethertype: EtherType::Ipv6,
        }
    }

    #[test]
    fn test_deconstruct() {
        let packet = Packet::new_checked(&TAG_BYTES[..]).unwrap();
        assert_eq!(packet.tci(), 0xb064);
        assert_eq!(packet.pcp(), 5);
        assert!(packet.dei());
        assert_eq!(packet.vid().get(), 100);
        assert_eq!(packet.ethertype(), EtherType::Ipv6);
        assert_eq!(packet.payload(), &[0x60, 0x00]);
    }

    #[test]
    fn test_construct() {
        let mut bytes = [0xa5u8; 6];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_tci(0);
        packet.set_pcp(5);
        packet.set_dei(true);
        packet.set_vid(VlanId::new(100).unwrap());
        packet.set_ethertype(EtherType::Ipv6);
        packet.payload_mut().copy_from_slice(&[0x60, 0x00]);
        assert_eq!(bytes, TAG_BYTES);
    }

    #[test]
    fn test_setters_keep_other_bits() {
        let mut bytes = TAG_BYTES;
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_dei(false);
        packet.set_vid(VlanId::new(4095).unwrap());
        assert_eq!(
            (packet.pcp(), packet.dei(), packet.vid().get()),
            (5, false, 4095)
        );
    }

    #[test]
    fn test_is_tagged() {
        let mut frame = [0u8; 18];
        frame[TAG_OFFSET..TAG_OFFSET + 2].copy_from_slice(&[0x81, 0x00]);
        assert!(is_tagged(&frame));
        frame[TAG_OFFSET..TAG_OFFSET + 2].copy_from_slice(&[0x88, 0xa8]);
        assert!(is_tagged(&frame));
        assert!(
            !is_tagged(&frame[..17]),
            "no room for the EtherType after the tag"
        );
        frame[TAG_OFFSET..TAG_OFFSET + 2].copy_from_slice(&[0x08, 0x00]);
        assert!(!is_tagged(&frame));
    }

    #[test]
    fn test_truncated() {
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&TAG_BYTES[..1])),
            Err(Error::Truncated)
        );
    }
}
