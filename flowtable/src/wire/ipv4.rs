//! IPv4 header (RFC 791).

use core::net::Ipv4Addr;

use super::{checksum, Error, IpProtocol, Result};

mod field {
    use core::ops::Range;

    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// The "don't fragment" flag in the flags/offset field.
const FLAG_DF: u16 = 0x4000;
/// The "more fragments" flag in the flags/offset field.
const FLAG_MF: u16 = 0x2000;
/// The fragment offset bits (in 8-byte units) of the flags/offset field.
const OFFSET_MASK: u16 = 0x1fff;

super::packet_view! {
    /// A read/write view of an IPv4 packet.
    Packet {
        /// The whole type-of-service byte (DSCP << 2 | ECN).
        pub fn tos, set_tos: u8 = field::TOS;
        /// Total length (header and payload) in bytes.
        pub fn total_len, set_total_len: u16 = field::LENGTH;
        /// Identification.
        pub fn ident, set_ident: u16 = field::IDENT;
        /// The flags and the fragment offset.
        fn flg_off, set_flg_off: u16 = field::FLG_OFF;
        /// Time to live.
        pub fn ttl, set_ttl: u8 = field::TTL;
        /// Protocol of the payload.
        pub fn protocol, set_protocol: IpProtocol = field::PROTOCOL;
        /// Header checksum as stored.
        pub fn checksum, set_checksum: u16 = field::CHECKSUM;
        /// Source address.
        pub fn src_addr, set_src_addr: Ipv4Addr = field::SRC_ADDR;
        /// Destination address.
        pub fn dst_addr, set_dst_addr: Ipv4Addr = field::DST_ADDR;
    }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks that the header and the packet its total length describes fit the buffer:
    /// `Err(Truncated)` when the buffer is shorter than [`HEADER_LEN`], than the IHL or than the
    /// total length; `Err(Malformed)` when the IHL is below 5 words or the total length below
    /// the IHL. The version is not checked (see [`Packet::version`]).
    ///
    /// [`Packet::set_header_len`] and [`Packet::set_total_len`] can undo this check.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = usize::from(self.header_len());
        let total_len = usize::from(self.total_len());
        if header_len < HEADER_LEN || total_len < header_len {
            Err(Error::Malformed)
        } else if header_len > len || total_len > len {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Version (4 for IPv4).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4).
    #[inline]
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Differentiated services code point.
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.tos() >> 2
    }

    /// Explicit congestion notification.
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.tos() & 0x03
    }

    super::flag_getters! {
        /// The "don't fragment" flag.
        pub fn dont_frag = flg_off & FLAG_DF;
        /// The "more fragments" flag.
        pub fn more_frags = flg_off & FLAG_MF;
        /// True when the packet is a fragment: MF set or a non-zero offset.
        pub fn is_fragment = flg_off & (FLAG_MF | OFFSET_MASK);
    }

    /// Fragment offset in bytes (the field times 8).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flg_off() & OFFSET_MASK) << 3
    }

    /// True when the header checksum is correct.
    pub fn checksum_valid(&self) -> bool {
        let data = self.buffer.as_ref();
        checksum::sum(&data[..usize::from(self.header_len())]) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The options: the bytes between [`HEADER_LEN`] and the IHL.
    #[inline]
    pub fn options(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.header_len())]
    }

    /// The payload: from the IHL up to the total length (trailing padding excluded).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[usize::from(self.header_len())..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version.
    #[inline]
    pub fn set_version(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (value << 4);
    }

    /// Sets the header length in bytes (rounded down to whole words; at most 60).
    #[inline]
    pub fn set_header_len(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((value / 4) & 0x0f);
    }

    /// Clears the flags and the fragment offset.
    #[inline]
    pub fn clear_flags(&mut self) {
        let v = self.flg_off() & OFFSET_MASK;
        self.set_flg_off(v)
    }

    super::flag_setters! {
        /// Sets the "don't fragment" flag.
        pub fn set_dont_frag = flg_off & FLAG_DF, via set_flg_off;
        /// Sets the "more fragments" flag.
        pub fn set_more_frags = flg_off & FLAG_MF, via set_flg_off;
    }

    /// Sets the fragment offset in bytes (rounded down to 8-byte units).
    #[inline]
    pub fn set_frag_offset(&mut self, value: u16) {
        let v = self.flg_off() & !OFFSET_MASK;
        self.set_flg_off(v | (value >> 3))
    }

    /// Computes the header checksum (over the IHL) and stores it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::sum(&self.buffer.as_ref()[..usize::from(self.header_len())]);
        self.set_checksum(!sum)
    }

    /// The payload (from the IHL up to the total length), mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = usize::from(self.header_len())..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

/// The values of an IPv4 header without options that is not a fragment: what the switch
/// builds (a VXLAN outer header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload.
    pub protocol: IpProtocol,
    /// Payload length in bytes (total length minus the header).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// Type of service (DSCP << 2 | ECN).
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// The "don't fragment" flag.
    pub dont_frag: bool,
}

impl Repr {
    /// Reads a checked packet. `Err(Malformed)` when the version is not 4;
    /// `Err(Unsupported)` for a fragment. Options are skipped (not kept) and the checksum is
    /// not verified: see [`Packet::checksum_valid`].
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        if packet.version() != 4 {
            return Err(Error::Malformed);
        }
        if packet.is_fragment() {
            return Err(Error::Unsupported);
        }
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len() - u16::from(packet.header_len())),
            ttl: packet.ttl(),
            tos: packet.tos(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
        })
    }

    /// Length of the emitted header: [`HEADER_LEN`] (no options).
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Length of the whole packet: header and payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the header, with its checksum, into a buffer of at least [`Repr::header_len`]
    /// bytes. The total length is `HEADER_LEN + payload_len`, saturated at 65535 (a payload
    /// that large cannot be sent unfragmented; the caller keeps it within the MTU).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_version(4);
        packet.set_header_len(HEADER_LEN as u8);
        packet.set_tos(self.tos);
        packet.set_total_len(u16::try_from(self.buffer_len()).unwrap_or(u16::MAX));
        packet.set_ident(self.ident);
        packet.set_flg_off(if self.dont_frag { FLAG_DF } else { 0 });
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod test {
    use super::*;

    static PACKET_BYTES: [u8; 28] = [
        0x45, // version 4, IHL 5
        0xb8, // TOS: DSCP 46 (EF), ECN 0
        0x00, 0x1c, // total length 28
        0x12, 0x34, // identification
        0x40, 0x00, // flags DF, offset 0
        0x40, // TTL 64
        0x11, // protocol UDP
        0x13, 0xe3, // header checksum
        0x0a, 0x00, 0x00, 0x01, // source 10.0.0.1
        0x0a, 0x00, 0x00, 0x02, // destination 10.0.0.2
        0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11, // payload
    ];

    static PAYLOAD: [u8; 8] = [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11];

    crate::wire::header_tests!(PACKET_BYTES, repr: repr());

    fn repr() -> Repr {
        Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            protocol: IpProtocol::Udp,
            payload_len: 8,
            ttl: 64,
            tos: 0xb8,
            ident: 0x1234,
            dont_frag: true,
        }
    }

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!((p.tos(), p.dscp(), p.ecn()), (0xb8, 46, 0));
        assert_eq!(p.total_len(), 28);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::Udp);
        assert_eq!(p.checksum(), 0x13e3);
        assert_eq!(p.src_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert!(p.checksum_valid());
        assert_eq!(p.options(), &[] as &[u8]);
        assert_eq!(p.payload(), &PAYLOAD);
    }

    #[test]
    fn test_construct() {
        let mut bytes = [0xa5u8; 28];
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_version(4);
        p.set_header_len(20);
        p.set_tos(0xb8);
        p.set_total_len(28);
        p.set_ident(0x1234);
        p.clear_flags();
        p.set_frag_offset(0);
        p.set_dont_frag(true);
        p.set_more_frags(false);
        p.set_ttl(64);
        p.set_protocol(IpProtocol::Udp);
        p.set_src_addr(Ipv4Addr::new(10, 0, 0, 1));
        p.set_dst_addr(Ipv4Addr::new(10, 0, 0, 2));
        p.fill_checksum();
        p.payload_mut().copy_from_slice(&PAYLOAD);
        assert_eq!(bytes, PACKET_BYTES);
    }

    #[test]
    fn test_fragment_fields() {
        let mut bytes = PACKET_BYTES;
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_more_frags(true);
        p.set_frag_offset(1480);
        assert!(p.more_frags() && p.dont_frag());
        assert_eq!(p.frag_offset(), 1480);
        assert!(p.is_fragment());
        assert!(!p.checksum_valid());
        assert_eq!(Repr::parse(&p), Err(Error::Unsupported));
    }

    #[test]
    fn test_repr_len() {
        let r = repr();
        assert_eq!((r.header_len(), r.buffer_len()), (20, 28));
    }

    #[test]
    fn test_parse_wrong_version() {
        let mut bytes = PACKET_BYTES;
        bytes[0] = 0x65;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&bytes[..])),
            Err(Error::Malformed)
        );
    }

    #[test]
    fn test_check_len() {
        // Truncated inside the total length (below the fixed header: test_truncated_header).
        assert_eq!(
            Packet::new_checked(&PACKET_BYTES[..27]),
            Err(Error::Truncated)
        );
        // IHL below 5, and a total length below the IHL.
        let mut bytes = PACKET_BYTES;
        bytes[0] = 0x44;
        assert_eq!(Packet::new_checked(&bytes[..]), Err(Error::Malformed));
        let mut bytes = PACKET_BYTES;
        bytes[2..4].copy_from_slice(&[0, 19]);
        assert_eq!(Packet::new_checked(&bytes[..]), Err(Error::Malformed));
        // An IHL past the end of the buffer.
        let mut bytes = PACKET_BYTES;
        bytes[0] = 0x4f;
        bytes[2..4].copy_from_slice(&[0, 60]);
        assert_eq!(Packet::new_checked(&bytes[..]), Err(Error::Truncated));
    }
}
