//! TCP header (RFC 9293 section 3.1). Read-only: the switch matches on TCP, it never builds
//! it.

mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    pub const FLAGS: Range<usize> = 12..14;
    pub const WIN_SIZE: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = field::URGENT.end;

/// FIN flag.
pub const FLAG_FIN: u16 = 0x001;
/// SYN flag.
pub const FLAG_SYN: u16 = 0x002;
/// RST flag.
pub const FLAG_RST: u16 = 0x004;
/// PSH flag.
pub const FLAG_PSH: u16 = 0x008;
/// ACK flag.
pub const FLAG_ACK: u16 = 0x010;
/// URG flag.
pub const FLAG_URG: u16 = 0x020;
/// ECE flag.
pub const FLAG_ECE: u16 = 0x040;
/// CWR flag.
pub const FLAG_CWR: u16 = 0x080;

super::packet_view! {
    /// A read-only view of a TCP segment: its `check_len` holds the buffer to the data
    /// offset, and `Err(Malformed)` is a data offset below 5 words.
    Packet, at least HEADER_LEN bytes and as many as header_len says {
        /// Source port.
        pub fn src_port: u16 = field::SRC_PORT;
        /// Destination port.
        pub fn dst_port: u16 = field::DST_PORT;
        /// Sequence number.
        pub fn seq_number: u32 = field::SEQ_NUM;
        /// Acknowledgement number.
        pub fn ack_number: u32 = field::ACK_NUM;
        /// The data offset (top 4 bits) and the control bits.
        fn doff_flags: u16 = field::FLAGS;
        /// Window size.
        pub fn window_len: u16 = field::WIN_SIZE;
        /// Checksum as stored.
        pub fn checksum: u16 = field::CHECKSUM;
        /// Urgent pointer.
        pub fn urgent_at: u16 = field::URGENT;
    }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Header length in bytes (data offset * 4).
    #[inline]
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::FLAGS.start] >> 4) * 4
    }

    /// The control bits (`FLAG_*`), without the data offset.
    #[inline]
    pub fn flags(&self) -> u16 {
        self.doff_flags() & 0x0fff
    }

    super::flag_getters! {
        /// SYN is set.
        pub fn syn = flags & FLAG_SYN;
        /// ACK is set.
        pub fn ack = flags & FLAG_ACK;
        /// FIN is set.
        pub fn fin = flags & FLAG_FIN;
        /// RST is set.
        pub fn rst = flags & FLAG_RST;
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The options: between [`HEADER_LEN`] and the data offset.
    #[inline]
    pub fn options(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.header_len())]
    }

    /// The payload: everything after the data offset.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[usize::from(self.header_len())..]
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::wire::Error;

    static PACKET_BYTES: [u8; 28] = [
        0xbf, 0x00, // source port 48896
        0x00, 0x50, // destination port 80
        0x01, 0x23, 0x45, 0x67, // sequence number
        0x89, 0xab, 0xcd, 0xef, // acknowledgement number
        0x60, 0x12, // data offset 6 words, flags SYN|ACK
        0x01, 0x23, // window
        0x7e, 0xa5, // checksum
        0x00, 0x00, // urgent pointer
        0x02, 0x04, 0x05, 0xb4, // option: MSS 1460
        0xaa, 0x00, 0x00, 0xff, // payload
    ];

    crate::wire::header_tests!(PACKET_BYTES);

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(p.src_port(), 48896);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), 0x0123_4567);
        assert_eq!(p.ack_number(), 0x89ab_cdef);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.flags(), FLAG_SYN | FLAG_ACK);
        assert!(p.syn() && p.ack() && !p.fin() && !p.rst());
        assert_eq!(p.window_len(), 0x0123);
        assert_eq!(p.checksum(), 0x7ea5);
        assert_eq!(p.urgent_at(), 0);
        assert_eq!(p.options(), &[0x02, 0x04, 0x05, 0xb4]);
        assert_eq!(p.payload(), &[0xaa, 0x00, 0x00, 0xff]);
    }

    #[test]
    fn test_impossible_len() {
        let mut bytes = PACKET_BYTES;
        bytes[12] = 0x40; // data offset 4 words
        assert_eq!(Packet::new_checked(&bytes[..]), Err(Error::Malformed));
    }

    #[test]
    fn test_truncated() {
        // The fixed header fits but the options do not.
        assert_eq!(
            Packet::new_checked(&PACKET_BYTES[..23]),
            Err(Error::Truncated)
        );
        assert!(Packet::new_checked(&PACKET_BYTES[..24]).is_ok());
    }
}
