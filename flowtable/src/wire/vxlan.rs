//! VXLAN header (RFC 7348 section 5): 8 bits of flags (only I, 0x08, defined), 24 reserved
//! bits, the 24-bit VNI, 8 reserved bits. Carried in UDP to port [`UDP_PORT`].

use super::{array, Error, Result};
use crate::types::Vni;

mod field {
    use core::ops::{Range, RangeFrom};

    pub const FLAGS: usize = 0;
    pub const RESERVED0: Range<usize> = 1..4;
    pub const VNI: Range<usize> = 4..7;
    pub const RESERVED1: usize = 7;
    pub const PAYLOAD: RangeFrom<usize> = (RESERVED1 + 1)..;
}

/// Length of a VXLAN header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// The IANA UDP destination port of VXLAN.
pub const UDP_PORT: u16 = 4789;

/// The I flag: the VNI is valid. RFC 7348 requires it set.
pub const FLAG_I: u8 = 0x08;

super::packet_view! {
    /// A read/write view of a VXLAN header and the inner frame after it.
    Packet, at least HEADER_LEN bytes, payload at field::PAYLOAD {
        /// The flags byte.
        pub fn flags, set_flags: u8 = field::FLAGS;
        /// The 8 reserved bits after the VNI.
        pub fn reserved1, set_reserved1: u8 = field::RESERVED1;
    }
}

impl<T: AsRef<[u8]>> Packet<T> {
    super::flag_getters! {
        /// True when the I flag (valid VNI) is set.
        pub fn i_flag = flags & FLAG_I;
    }

    /// The 24 reserved bits after the flags.
    #[inline]
    pub fn reserved0(&self) -> u32 {
        let [a, b, c] = array::<3>(self.buffer.as_ref(), field::RESERVED0);
        u32::from_be_bytes([0, a, b, c])
    }

    /// The VNI.
    #[inline]
    pub fn vni(&self) -> Vni {
        let [a, b, c] = array::<3>(self.buffer.as_ref(), field::VNI);
        // 24 bits always fit.
        Vni::new(u32::from_be_bytes([0, a, b, c])).unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the 24 reserved bits after the flags (bits above 24 are ignored).
    #[inline]
    pub fn set_reserved0(&mut self, value: u32) {
        self.buffer.as_mut()[field::RESERVED0].copy_from_slice(&value.to_be_bytes()[1..])
    }

    /// Sets the VNI.
    #[inline]
    pub fn set_vni(&mut self, value: Vni) {
        self.buffer.as_mut()[field::VNI].copy_from_slice(&value.get().to_be_bytes()[1..])
    }
}

/// The values of a VXLAN header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// The VNI.
    pub vni: Vni,
}

impl Repr {
    /// Reads a checked header. `Err(Malformed)` when the I flag is clear. Reserved bits are
    /// ignored on receipt (RFC 7348).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        if !packet.i_flag() {
            return Err(Error::Malformed);
        }
        Ok(Repr { vni: packet.vni() })
    }

    /// Length of the emitted header.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header (I flag set, reserved bits zero) into a buffer of at least
    /// [`Repr::header_len`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_flags(FLAG_I);
        packet.set_reserved0(0);
        packet.set_vni(self.vni);
        packet.set_reserved1(0);
    }
}

#[cfg(test)]
mod test {
    use super::*;

    static PACKET_BYTES: [u8; 10] = [
        0x08, // flags: I
        0x00, 0x00, 0x00, // reserved
        0x12, 0x34, 0x56, // VNI 0x123456
        0x00, // reserved
        0x52, 0x54, // payload (start of the inner frame)
    ];

    crate::wire::header_tests!(PACKET_BYTES, repr: repr());

    fn repr() -> Repr {
        Repr {
            vni: Vni::new(0x12_3456).unwrap(),
        }
    }

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(p.flags(), 0x08);
        assert!(p.i_flag());
        assert_eq!(p.reserved0(), 0);
        assert_eq!(p.vni().get(), 0x12_3456);
        assert_eq!(p.reserved1(), 0);
        assert_eq!(p.payload(), &[0x52, 0x54]);
    }

    #[test]
    fn test_construct() {
        let mut bytes = [0xa5u8; 10];
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_flags(FLAG_I);
        p.set_reserved0(0);
        p.set_vni(Vni::new(0x12_3456).unwrap());
        p.set_reserved1(0);
        p.payload_mut().copy_from_slice(&[0x52, 0x54]);
        assert_eq!(bytes, PACKET_BYTES);
    }

    #[test]
    fn test_parse_no_i_flag() {
        let mut bytes = PACKET_BYTES;
        bytes[0] = 0;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&bytes[..])),
            Err(Error::Malformed)
        );
    }
}
