//! The Internet checksum and its uses, against a plain RFC 1071 loop and etherparse.

use etherparse::checksum::Sum16BitWords;
use etherparse::Ipv4Header;
use proptest::prelude::*;

use super::frames::{frame_spec, pseudo_random_bytes, FrameSpec};
use super::reference::{dissect, same_tcp_checksum};
use crate::offload::{csum, Headers, IpVersion, OffloadError, Transport};

/// RFC 1071 as written: 16-bit big-endian words (an odd byte padded with a zero), summed
/// in 32 bits with the carries folded back.
fn rfc1071_sum(bytes: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        acc += u32::from(word);
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// etherparse's folded sum of `bytes`, big-endian.
fn etherparse_sum(bytes: &[u8]) -> u16 {
    u16::from_be_bytes((!Sum16BitWords::new().add_slice(bytes).ones_complement()).to_ne_bytes())
}

#[test]
fn sum_of_rfc1071_example() {
    // RFC 1071 1.4: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    assert_eq!(
        csum::sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
        0xddf2
    );
}

#[test]
fn sum_of_nothing_and_of_ones() {
    assert_eq!(csum::sum(&[]), 0);
    assert_eq!(csum::sum(&[0; 100]), 0);
    assert_eq!(csum::sum(&[0xff; 64 * 1024]), 0xffff);
    // An odd last byte is the high half of its word.
    assert_eq!(csum::sum(&[0x12]), 0x1200);
}

#[test]
fn sum_carries_through_every_64_bit_overflow() {
    // 64 KiB of 0xfe..: every 8-byte add overflows the accumulator.
    let bytes: Vec<u8> = (0..65_536u32).map(|i| 0xf0 | (i % 16) as u8).collect();
    assert_eq!(csum::sum(&bytes), rfc1071_sum(&bytes));
}

#[test]
fn ipv4_header_checksum_of_a_known_header() {
    // A header from the Wikipedia IPv4 checksum example: checksum b861.
    let header = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];
    assert_eq!(csum::ipv4_header_checksum(&header), 0xb861);
    let mut stale = header;
    stale[10..12].copy_from_slice(&[0x12, 0x34]);
    assert_eq!(
        csum::ipv4_header_checksum(&stale),
        0xb861,
        "the stored field is ignored"
    );
}

#[test]
fn fill_partial_refuses_a_field_outside_the_frame() {
    let original = pseudo_random_bytes(100, 3);
    for (start, offset) in [
        (100, 0),
        (99, 0),
        (98, 1),
        (0, 99),
        (50, 49),
        (usize::MAX, 1),
    ] {
        let mut frame = original.clone();
        assert_eq!(
            csum::fill_partial(&mut frame, start, offset),
            Err(OffloadError::CsumOutOfFrame {
                start,
                offset,
                frame_len: 100
            })
        );
        assert_eq!(frame, original, "nothing written");
    }
    let mut frame = original.clone();
    assert_eq!(csum::fill_partial(&mut frame, 98, 0), Ok(()));
    assert!(csum::fill_partial(&mut frame, usize::MAX, usize::MAX).is_err());
}

#[test]
fn fill_partial_stores_ffff_for_a_zero_checksum() {
    // Words that sum to ffff with the field at 0: the complement is 0.
    let mut frame = vec![0xff, 0xff, 0x00, 0x00];
    csum::fill_partial(&mut frame, 0, 2).unwrap();
    assert_eq!(frame[2..], [0xff, 0xff]);
}

#[test]
fn l4_checksum_refuses_another_frame() {
    let frame = FrameSpec::simple(IpVersion::V4, Transport::Tcp, 100).build();
    let headers = Headers::parse(&frame).unwrap();
    let err = csum::l4_checksum(&frame[..frame.len() - 1], &headers).unwrap_err();
    assert_eq!((err.len, err.expected), (frame.len() - 1, frame.len()));
}

proptest! {
    #![proptest_config(super::proptest_config(1024))]

    /// `sum` is RFC 1071's sum and etherparse's, at any length and alignment.
    #[test]
    fn sum_matches_rfc1071_and_etherparse(
        bytes in prop::collection::vec(any::<u8>(), 0..2100),
        skip in 0usize..8,
    ) {
        let bytes = &bytes[skip.min(bytes.len())..];
        prop_assert_eq!(csum::sum(bytes), rfc1071_sum(bytes));
        prop_assert_eq!(csum::sum(bytes), etherparse_sum(bytes));
    }

    /// Sums of pieces combine into the sum of the whole when every piece but the last has
    /// an even length.
    #[test]
    fn combine_of_even_pieces_is_the_whole(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        cut in 0usize..300,
    ) {
        let cut = (2 * cut).min(bytes.len() & !1);
        let (head, tail) = bytes.split_at(cut);
        prop_assert_eq!(csum::combine(&[csum::sum(head), csum::sum(tail)]), rfc1071_sum(&bytes));
    }

    /// Pseudo-header sums are etherparse's.
    #[test]
    fn pseudo_headers_match_etherparse(
        v4 in any::<([u8; 4], [u8; 4], u8, u16)>(),
        v6 in any::<([u8; 16], [u8; 16], u8, u32)>(),
    ) {
        let (src, dst, protocol, len) = v4;
        let expected = Sum16BitWords::new()
            .add_4bytes(src)
            .add_4bytes(dst)
            .add_2bytes([0, protocol])
            .add_2bytes(len.to_be_bytes());
        let expected = u16::from_be_bytes((!expected.ones_complement()).to_ne_bytes());
        prop_assert_eq!(csum::pseudo_header_v4(src, dst, protocol, len), expected);

        let (src, dst, next_header, len) = v6;
        let expected = Sum16BitWords::new()
            .add_16bytes(src)
            .add_16bytes(dst)
            .add_4bytes(len.to_be_bytes())
            .add_2bytes([0, next_header]);
        let expected = u16::from_be_bytes((!expected.ones_complement()).to_ne_bytes());
        prop_assert_eq!(csum::pseudo_header_v6(src, dst, next_header, len), expected);
    }

    /// The IPv4 header checksum is etherparse's, options included.
    #[test]
    fn ipv4_header_checksum_matches_etherparse(
        fields in any::<(u16, u16, u8, u8, [u8; 4], [u8; 4])>(),
        options in (0..=10usize, any::<u64>()),
        stale in any::<u16>(),
    ) {
        let (total_len, id, ttl, protocol, src, dst) = fields;
        let mut header = Ipv4Header::new(0, ttl, protocol.into(), src, dst).unwrap();
        header.total_len = total_len;
        header.identification = id;
        header.options = pseudo_random_bytes(4 * options.0, options.1)[..].try_into().unwrap();
        let mut bytes = header.to_bytes().to_vec();
        bytes[10..12].copy_from_slice(&stale.to_be_bytes());
        prop_assert_eq!(csum::ipv4_header_checksum(&bytes), header.calc_header_checksum());
    }
}

proptest! {
    #![proptest_config(super::proptest_config(512))]

    /// `fill_partial` on a frame whose checksum field holds the pseudo-header sum (as a
    /// guest leaves it) gives the frame etherparse built, full checksum and all.
    #[test]
    fn fill_partial_completes_a_guest_checksum(spec in frame_spec(0)) {
        let built = spec.build();
        let mut frame = spec.guest_frame();
        csum::fill_partial(&mut frame, spec.l4_offset(), spec.csum_offset()).unwrap();

        let field = spec.csum_field();
        let ours = u16::from_be_bytes([frame[field], frame[field + 1]]);
        let expected = dissect(&built).l4.checksum();
        match spec.transport {
            Transport::Tcp => prop_assert!(same_tcp_checksum(ours, expected), "{ours:#x} {expected:#x}"),
            Transport::Udp => prop_assert_eq!(ours, expected),
        }
        prop_assert_eq!(&frame[..field], &built[..field]);
        prop_assert_eq!(&frame[field + 2..], &built[field + 2..]);
    }

    /// `l4_checksum` is etherparse's whatever the field holds; `fill_l4_checksum` stores it.
    #[test]
    fn l4_checksum_matches_etherparse(spec in frame_spec(0), stale in any::<u16>()) {
        let built = spec.build();
        let mut frame = built.clone();
        let field = spec.csum_field();
        frame[field..field + 2].copy_from_slice(&stale.to_be_bytes());
        let headers = Headers::parse(&frame).unwrap();

        let expected = dissect(&built).l4.checksum();
        prop_assert_eq!(csum::l4_checksum(&frame, &headers), Ok(expected));
        csum::fill_l4_checksum(&mut frame, &headers).unwrap();
        prop_assert_eq!(frame, built);
    }
}
