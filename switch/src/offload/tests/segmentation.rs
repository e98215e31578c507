//! TSO and USO: every segment checked field by field against the original frame as
//! etherparse reads it ([`check_segments`]).

use std::ops::ControlFlow;

use proptest::prelude::*;

use super::frames::{frame_spec, FrameSpec, TCP_ACK, TCP_CWR, TCP_ECE, TCP_FIN, TCP_PSH};
use super::reference::{check_segments, dissect, L4};
use crate::offload::{
    segment, write_segment, CheckOffload, FrameMismatch, Gso, IpVersion, SegmentError, Transport,
    MAX_TCP_SEGMENTS, MAX_UDP_SEGMENTS,
};

/// The checked GSO request for `spec` cut at `gso_size`.
fn gso_of(spec: &FrameSpec, frame: &[u8], gso_size: u16) -> Gso {
    let request = spec
        .gso_hdr(gso_size)
        .offload_request(frame)
        .expect("valid request");
    request.gso.expect("a GSO request")
}

/// Every segment of `frame`, copied out; each one also built alone with `write_segment`
/// (what the datapath does, straight into a tx buffer), which must give the same bytes.
fn segments_of(frame: &[u8], gso: &Gso) -> Vec<Vec<u8>> {
    let mut scratch = vec![0; gso.max_segment_len()];
    let mut segments = Vec::new();
    let count = segment(frame, gso, &mut scratch, |segment| {
        segments.push(segment.to_vec());
        ControlFlow::Continue(())
    })
    .expect("segmentation");
    assert_eq!(count, segments.len());
    assert_eq!(count, gso.segment_count());
    for (index, want) in segments.iter().enumerate() {
        assert_eq!(gso.segment_len(index), want.len());
        let mut alone = vec![0xee; want.len()];
        write_segment(frame, gso, index, &mut alone).expect("one segment");
        assert_eq!(&alone, want, "segment {index} built alone");
    }
    assert_eq!(gso.segment_len(count), 0, "nothing past the last");
    segments
}

/// Builds `spec` as a guest hands it over, segments it at `gso_size` and checks the result.
fn segment_and_check(spec: &FrameSpec, gso_size: u16) -> Vec<Vec<u8>> {
    let frame = spec.guest_frame();
    let gso = gso_of(spec, &frame, gso_size);
    let segments = segments_of(&frame, &gso);
    check_segments(&frame, &segments, usize::from(gso_size));
    segments
}

/// Segment sizes for a payload of `len` bytes: around the payload length (one segment, or
/// just two), typical MSS values, and anything within the kind's segment limit.
fn gso_size_for(spec: &FrameSpec) -> impl Strategy<Value = u16> {
    let len = spec.payload_len;
    let max_segments = match spec.transport {
        Transport::Tcp => MAX_TCP_SEGMENTS,
        Transport::Udp => MAX_UDP_SEGMENTS,
    };
    let min = len.div_ceil(max_segments).max(1) as u16;
    let near = (len.saturating_sub(2).max(usize::from(min)) as u16)..=(len + 2).min(0xffff) as u16;
    prop_oneof![near, min.max(536)..=min.max(9000), min..=u16::MAX,]
}

proptest! {
    #![proptest_config(super::proptest_config(1024))]

    /// Any TCP or UDP frame over IPv4 or IPv6, with 0 to 2 VLAN tags and options, any
    /// payload length up to 64 KiB and any segment size: the segments parse, every checksum
    /// verifies, the payload is the original's, sequence numbers, ids and flags follow.
    #[test]
    fn segments_are_what_etherparse_expects(
        (spec, gso_size) in frame_spec(1).prop_flat_map(|spec| {
            let sizes = gso_size_for(&spec);
            (Just(spec), sizes)
        })
    ) {
        segment_and_check(&spec, gso_size);
    }
}

#[test]
fn one_segment_alone_needs_its_exact_buffer() {
    let spec = FrameSpec::simple(IpVersion::V4, Transport::Tcp, 3000);
    let frame = spec.guest_frame();
    let gso = gso_of(&spec, &frame, 1000);
    assert_eq!(gso.segment_count(), 3);
    let len = gso.segment_len(2);
    assert_eq!(len, spec.header_len() + 1000);
    assert_eq!(
        write_segment(&frame, &gso, 3, &mut vec![0; len]),
        Err(SegmentError::NoSuchSegment { index: 3, count: 3 })
    );
    assert_eq!(
        write_segment(&frame, &gso, 0, &mut vec![0; len + 1]),
        Err(SegmentError::WrongSegmentBuffer {
            needed: len,
            have: len + 1
        })
    );
    assert!(matches!(
        write_segment(&frame[..frame.len() - 1], &gso, 0, &mut vec![0; len]),
        Err(SegmentError::FrameMismatch(_))
    ));
}

#[test]
fn one_segment_when_the_payload_fits() {
    // The frame as etherparse built it, checksums filled: flags FIN and PSH kept.
    for transport in [Transport::Tcp, Transport::Udp] {
        for ip in [IpVersion::V4, IpVersion::V6] {
            let mut spec = FrameSpec::simple(ip, transport, 1000);
            spec.tcp_flags = TCP_ACK | TCP_PSH | TCP_FIN | TCP_CWR;
            for gso_size in [1000, 1001, 0xffff] {
                let segments = segment_and_check(&spec, gso_size);
                assert_eq!(segments, [spec.build()], "{ip} {transport} {gso_size}");
            }
        }
    }
}

#[test]
fn payload_a_multiple_of_the_segment_size() {
    let spec = FrameSpec::simple(IpVersion::V4, Transport::Tcp, 4 * 1448);
    let segments = segment_and_check(&spec, 1448);
    assert_eq!(segments.len(), 4);
    assert!(segments.iter().all(|s| s.len() == 54 + 1448));
}

#[test]
fn tcp_flags_per_segment() {
    let mut spec = FrameSpec::simple(IpVersion::V6, Transport::Tcp, 2500);
    spec.tcp_flags = TCP_ACK | TCP_PSH | TCP_FIN | TCP_CWR | TCP_ECE;
    let segments = segment_and_check(&spec, 1000);
    let flags: Vec<_> = segments
        .iter()
        .map(|s| match dissect(s).l4 {
            L4::Tcp(t) => (t.fin, t.psh, t.cwr, t.ece, t.ack),
            L4::Udp(_) => unreachable!(),
        })
        .collect();
    assert_eq!(
        flags,
        [
            (false, false, true, true, true),
            (false, false, false, true, true),
            (true, true, false, true, true),
        ]
    );
}

#[test]
fn sequence_number_and_ipv4_id_wrap() {
    let mut spec = FrameSpec::simple(IpVersion::V4, Transport::Tcp, 3000);
    spec.seq = u32::MAX - 1000;
    spec.ip_id = u16::MAX;
    let segments = segment_and_check(&spec, 1000);
    let seqs_and_ids: Vec<_> = segments
        .iter()
        .map(|s| {
            let d = dissect(s);
            let (L4::Tcp(tcp), super::reference::Ip::V4(ip)) = (d.l4, d.ip) else {
                unreachable!()
            };
            (tcp.sequence_number, ip.identification)
        })
        .collect();
    assert_eq!(
        seqs_and_ids,
        [(u32::MAX - 1000, 0xffff), (u32::MAX, 0), (999, 1)]
    );
}

#[test]
fn uso_segments_are_datagrams() {
    for ip in [IpVersion::V4, IpVersion::V6] {
        let mut spec = FrameSpec::simple(ip, Transport::Udp, MAX_UDP_SEGMENTS * 8 - 3);
        spec.vlans = 1;
        let segments = segment_and_check(&spec, 8);
        assert_eq!(segments.len(), MAX_UDP_SEGMENTS);
        assert_eq!(segments.last().unwrap().len(), spec.header_len() + 5);
    }
}

#[test]
fn the_most_segments_a_tso_request_may_make() {
    // The largest IPv4 frame at an MSS of 64, and an MSS of 1: one segment per payload byte.
    for (payload, mss) in [(65_535 - 40, 64), (MAX_TCP_SEGMENTS, 1)] {
        let spec = FrameSpec::simple(IpVersion::V4, Transport::Tcp, payload);
        let frame = spec.guest_frame();
        let gso = gso_of(&spec, &frame, mss);
        let segments = segments_of(&frame, &gso);
        assert_eq!(segments.len(), MAX_TCP_SEGMENTS);
        check_segments(&frame, &segments, usize::from(mss));
    }
}

#[test]
fn emit_stops_the_iteration() {
    let spec = FrameSpec::simple(IpVersion::V4, Transport::Tcp, 10_000);
    let frame = spec.guest_frame();
    let gso = gso_of(&spec, &frame, 1000);
    let mut scratch = vec![0; gso.max_segment_len()];
    let mut seen = 0;
    let count = segment(&frame, &gso, &mut scratch, |_| {
        seen += 1;
        if seen == 3 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    assert_eq!(count, Ok(3));
    assert_eq!(seen, 3);
}

#[test]
fn scratch_too_small() {
    let spec = FrameSpec::simple(IpVersion::V6, Transport::Udp, 3000);
    let frame = spec.guest_frame();
    let gso = gso_of(&spec, &frame, 1000);
    let mut scratch = vec![0; gso.max_segment_len() - 1];
    let mut emitted = 0;
    let result = segment(&frame, &gso, &mut scratch, |_| {
        emitted += 1;
        ControlFlow::Continue(())
    });
    assert_eq!(
        result,
        Err(SegmentError::ScratchTooSmall {
            needed: 62 + 1000,
            have: 62 + 999
        })
    );
    assert_eq!(emitted, 0);
}

#[test]
fn another_frame_is_refused() {
    let spec = FrameSpec::simple(IpVersion::V4, Transport::Udp, 3000);
    let frame = spec.guest_frame();
    let gso = gso_of(&spec, &frame, 1000);
    let mut scratch = vec![0; 65_536];
    let shorter = &frame[..frame.len() - 1];
    assert_eq!(
        segment(shorter, &gso, &mut scratch, |_| ControlFlow::Continue(())),
        Err(SegmentError::FrameMismatch(FrameMismatch {
            len: frame.len() - 1,
            expected: frame.len()
        }))
    );
}

#[test]
fn the_guests_checksum_field_does_not_matter() {
    // Whatever the guest left in the field (a pseudo-header sum for the whole burst, or for
    // no length as some drivers do, or garbage), the segments' checksums are computed whole.
    let spec = FrameSpec::simple(IpVersion::V6, Transport::Tcp, 5000);
    let mut frame = spec.guest_frame();
    let gso = gso_of(&spec, &frame, 1400);
    let reference = segments_of(&frame, &gso);
    for stale in [0u16, 0xffff, 0x1234] {
        let field = spec.csum_field();
        frame[field..field + 2].copy_from_slice(&stale.to_be_bytes());
        assert_eq!(segments_of(&frame, &gso), reference);
    }
}
