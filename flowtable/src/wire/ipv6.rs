//! IPv6 header (RFC 8200 section 3) and the extension headers the key extractor skips
//! (section 4): the generic "next header, length in 8-octet units" shape of hop-by-hop,
//! routing and destination options, and the fixed 8-byte fragment header. Read-only.

use core::net::Ipv6Addr;

use super::{Error, IpProtocol, Result};

mod field {
    use core::ops::Range;

    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

super::packet_view! {
    /// A read-only view of an IPv6 packet.
    Packet {
        /// Version, traffic class and flow label.
        fn ver_tc_flow: u32 = field::VER_TC_FLOW;
        /// Payload length: extension headers and upper-layer data, in bytes.
        pub fn payload_len: u16 = field::LENGTH;
        /// Next header: the first extension header or the upper-layer protocol.
        pub fn next_header: IpProtocol = field::NXT_HDR;
        /// Hop limit.
        pub fn hop_limit: u8 = field::HOP_LIMIT;
        /// Source address.
        pub fn src_addr: Ipv6Addr = field::SRC_ADDR;
        /// Destination address.
        pub fn dst_addr: Ipv6Addr = field::DST_ADDR;
    }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// `Err(Truncated)` when the buffer is shorter than [`HEADER_LEN`] plus the payload
    /// length. The version is not checked (see [`Packet::version`]).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || len < HEADER_LEN + usize::from(self.payload_len()) {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Version (6 for IPv6).
    #[inline]
    pub fn version(&self) -> u8 {
        (self.ver_tc_flow() >> 28) as u8
    }

    /// Traffic class (DSCP << 2 | ECN).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.ver_tc_flow() >> 20) as u8
    }

    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow() & 0x000f_ffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload, up to the payload length.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }
}

/// Offsets of the generic extension header shape (hop-by-hop, routing, destination options).
mod ext_field {
    pub const NXT_HDR: usize = 0;
    pub const LENGTH: usize = 1;
}

/// Minimum length of an extension header (length field 0).
pub const EXT_HEADER_MIN_LEN: usize = 8;

super::packet_view! {
    /// A read-only view of a hop-by-hop, routing or destination options header: next header,
    /// then the length in 8-octet units not counting the first 8.
    ExtHeader {
        /// Next header.
        pub fn next_header: IpProtocol = ext_field::NXT_HDR;
    }
}

impl<T: AsRef<[u8]>> ExtHeader<T> {
    /// `Err(Truncated)` when the buffer is shorter than [`EXT_HEADER_MIN_LEN`] or than the
    /// length the header declares.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < EXT_HEADER_MIN_LEN || len < self.header_len() {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Length of this header in bytes: (length field + 1) * 8.
    #[inline]
    pub fn header_len(&self) -> usize {
        (usize::from(self.buffer.as_ref()[ext_field::LENGTH]) + 1) * 8
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> ExtHeader<&'a T> {
    /// What follows this header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

mod frag_field {
    use core::ops::Range;

    pub const NXT_HDR: usize = 0;
    pub const OFF_M: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..8;
}

/// Length of the fragment header.
pub const FRAGMENT_HEADER_LEN: usize = frag_field::IDENT.end;

/// The M ("more fragments") flag in the offset/flags field of the fragment header.
const FRAG_FLAG_M: u16 = 0x0001;

super::packet_view! {
    /// A read-only view of the IPv6 fragment header (RFC 8200 section 4.5).
    FragmentHeader, at least FRAGMENT_HEADER_LEN bytes {
        /// Next header.
        pub fn next_header: IpProtocol = frag_field::NXT_HDR;
        /// The fragment offset (high 13 bits) and the M flag (bit 0).
        fn off_m: u16 = frag_field::OFF_M;
        /// Identification.
        pub fn ident: u32 = frag_field::IDENT;
    }
}

impl<T: AsRef<[u8]>> FragmentHeader<T> {
    /// Fragment offset in bytes (the 13-bit field times 8).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        self.off_m() & 0xfff8
    }

    super::flag_getters! {
        /// The M ("more fragments") flag.
        pub fn more_frags = off_m & FRAG_FLAG_M;
    }
}

#[cfg(test)]
mod test {
    use super::*;

    static PACKET_BYTES: [u8; 64] = [
        0x6b, 0x81, 0x23, 0x45, // version 6, traffic class 0xb8, flow label 0x12345
        0x00, 0x18, // payload length 24
        0x00, // next header: hop-by-hop
        0x40, // hop limit 64
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // source fe80::1
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // destination fe80::2
        0x2c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, // hop-by-hop: next fragment, PadN
        0x11, 0x00, 0x05, 0xa9, 0xde, 0xad, 0xbe, 0xef, // fragment: next UDP, offset 1448, M
        0xaa, 0x00, 0x00, 0xff, 0xaa, 0x00, 0x00, 0xff, // payload
    ];

    crate::wire::header_tests!(PACKET_BYTES);

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x1_2345);
        assert_eq!(p.payload_len(), 24);
        assert_eq!(p.next_header(), IpProtocol::HopByHop);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), "fe80::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst_addr(), "fe80::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.payload().len(), 24);

        let hbh = ExtHeader::new_checked(p.payload()).unwrap();
        assert_eq!(hbh.next_header(), IpProtocol::Ipv6Frag);
        assert_eq!(hbh.header_len(), 8);

        let frag = FragmentHeader::new_checked(hbh.payload()).unwrap();
        assert_eq!(frag.next_header(), IpProtocol::Udp);
        assert_eq!(frag.frag_offset(), 1448);
        assert!(frag.more_frags());
        assert_eq!(frag.ident(), 0xdead_beef);
    }

    #[test]
    fn test_truncated() {
        // The fixed header fits, the payload length does not.
        assert_eq!(
            Packet::new_checked(&PACKET_BYTES[..63]),
            Err(Error::Truncated)
        );
        // An extension header longer than what follows.
        let mut ext = [0u8; 16];
        ext[1] = 2; // 24 bytes
        assert_eq!(ExtHeader::new_checked(&ext[..]), Err(Error::Truncated));
        assert_eq!(
            FragmentHeader::new_checked(&ext[..7]),
            Err(Error::Truncated)
        );
    }
}
