//! A guest may write anything: arbitrary headers with arbitrary or damaged frames never
//! panic, and whatever is accepted segments and checksums safely (and, on a well-formed
//! frame, right).

use std::ops::ControlFlow;

use proptest::prelude::*;

use super::frames::{frame_spec, FrameSpec};
use super::reference::{check_segments, dissect, raw_checksums_ok, same_tcp_checksum};
use crate::offload::{csum, segment, CheckOffload, OffloadRequest, Transport, VirtioNetHdr};

/// Header fields a hostile guest might write: anything, with values a parser would look at
/// twice (valid kinds, the usual checksum offsets, starts near an untagged IPv4 transport
/// header) more often.
fn arbitrary_hdr() -> impl Strategy<Value = VirtioNetHdr> {
    let flags = prop_oneof![Just(0u8), Just(1), Just(3), any::<u8>()];
    let gso_type = prop_oneof![
        Just(0u8),
        Just(VirtioNetHdr::GSO_TCPV4),
        Just(VirtioNetHdr::GSO_TCPV6),
        Just(VirtioNetHdr::GSO_UDP_L4),
        Just(VirtioNetHdr::GSO_TCPV4 | VirtioNetHdr::GSO_ECN),
        any::<u8>(),
    ];
    let gso_size = prop_oneof![1u16..=64, any::<u16>()];
    let csum_start = prop_oneof![30u16..=60, 0u16..=300, any::<u16>()];
    let csum_offset = prop_oneof![Just(6u16), Just(16), 0u16..=64, any::<u16>()];
    let rest = (any::<u16>(), any::<u16>());
    (flags, gso_type, gso_size, csum_start, csum_offset, rest).prop_map(hdr_of)
}

/// The header of the fields `arbitrary_hdr` and `lying_hdr` draw, in their order.
fn hdr_of(
    (flags, gso_type, gso_size, csum_start, csum_offset, (hdr_len, num_buffers)): (
        u8,
        u8,
        u16,
        u16,
        u16,
        (u16, u16),
    ),
) -> VirtioNetHdr {
    VirtioNetHdr {
        flags,
        gso_type,
        hdr_len,
        gso_size,
        csum_start,
        csum_offset,
        num_buffers,
    }
}

/// The header a guest would send with `spec` as a GSO burst, each field replaced by a lie
/// now and then (and `hdr_len`, `num_buffers` always anything): some combinations are
/// refused, some still describe the frame.
fn lying_hdr(spec: &FrameSpec) -> impl Strategy<Value = VirtioNetHdr> {
    let truth = spec.gso_hdr(1);
    let min_gso_size = spec.payload_len.div_ceil(2048).max(1) as u16;
    let flags = prop_oneof![
        4 => Just(VirtioNetHdr::F_NEEDS_CSUM),
        1 => Just(VirtioNetHdr::F_NEEDS_CSUM | VirtioNetHdr::F_DATA_VALID),
        1 => any::<u8>(),
    ];
    let gso_type = prop_oneof![
        4 => Just(truth.gso_type),
        1 => Just(truth.gso_type ^ VirtioNetHdr::GSO_ECN),
        1 => Just(VirtioNetHdr::GSO_NONE),
        1 => prop::sample::select(vec![
            VirtioNetHdr::GSO_TCPV4,
            VirtioNetHdr::GSO_TCPV6,
            VirtioNetHdr::GSO_UDP_L4,
            VirtioNetHdr::GSO_UDP,
        ]),
        1 => any::<u8>(),
    ];
    let gso_size = prop_oneof![4 => min_gso_size..=u16::MAX, 1 => Just(0u16)];
    let l4_offset = truth.csum_start;
    let csum_start = prop_oneof![
        4 => Just(l4_offset),
        1 => l4_offset - 4..=l4_offset + 4,
        1 => any::<u16>(),
    ];
    let csum_offset = prop_oneof![
        4 => Just(truth.csum_offset),
        1 => prop::sample::select(vec![6u16, 16]),
        1 => 0u16..=64,
        1 => any::<u16>(),
    ];
    let rest = (any::<u16>(), any::<u16>());
    (flags, gso_type, gso_size, csum_start, csum_offset, rest).prop_map(hdr_of)
}

/// Carries out an accepted request the way the datapath will, checking only what holds for
/// any input: segments no longer than announced, as many as announced, nothing panics.
/// Returns the segments, or the frame with its checksum filled.
fn carry_out(request: &OffloadRequest, frame: &[u8]) -> Vec<Vec<u8>> {
    if let Some(gso) = &request.gso {
        let mut scratch = vec![0; gso.max_segment_len()];
        let mut segments = Vec::new();
        let count = segment(frame, gso, &mut scratch, |segment| {
            assert!(segment.len() <= gso.max_segment_len());
            segments.push(segment.to_vec());
            ControlFlow::Continue(())
        })
        .expect("a checked request segments");
        assert_eq!(count, gso.segment_count());
        segments
    } else if let Some(csum) = request.csum {
        let mut frame = frame.to_vec();
        csum::fill_partial(
            &mut frame,
            usize::from(csum.start),
            usize::from(csum.offset),
        )
        .expect("a checked checksum request fills");
        vec![frame]
    } else {
        vec![frame.to_vec()]
    }
}

proptest! {
    #![proptest_config(super::proptest_config(4096))]

    /// Arbitrary header bytes with arbitrary frames: an error or a request carried out
    /// safely, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(
        hdr in prop::collection::vec(any::<u8>(), 0..16),
        frame in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        if let Ok(request) = OffloadRequest::parse(&hdr, &frame) {
            carry_out(&request, &frame);
        }
    }

    /// Arbitrary header fields with frames whose first bytes look like Ethernet and IP
    /// (so the parser goes deeper).
    #[test]
    fn arbitrary_fields_on_ip_looking_bytes_never_panic(
        hdr in arbitrary_hdr(),
        vlans in prop::collection::vec(prop_oneof![Just(0x8100u16), Just(0x88a8)], 0..4),
        ethertype in prop_oneof![Just(0x0800u16), Just(0x86dd), any::<u16>()],
        version_ihl in prop_oneof![Just(0x45u8), Just(0x46), Just(0x60), any::<u8>()],
        rest in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut frame = vec![0x52; 12];
        for tpid in vlans {
            frame.extend_from_slice(&tpid.to_be_bytes());
            frame.extend_from_slice(&[0, 7]);
        }
        frame.extend_from_slice(&ethertype.to_be_bytes());
        frame.push(version_ihl);
        frame.extend_from_slice(&rest);
        if let Ok(request) = hdr.offload_request(&frame) {
            carry_out(&request, &frame);
        }
    }
}

proptest! {
    #![proptest_config(super::proptest_config(1024))]

    /// Arbitrary header fields on well-formed frames: whatever is accepted is carried out
    /// right. A segmentation request segments exactly as etherparse expects; a checksum
    /// request at the transport checksum gives etherparse's checksum.
    #[test]
    fn what_is_accepted_on_a_good_frame_is_done_right(
        (spec, hdr) in frame_spec(0).prop_flat_map(|spec| {
            let hdr = lying_hdr(&spec);
            (Just(spec), hdr)
        })
    ) {
        let frame = spec.guest_frame();
        let Ok(request) = hdr.offload_request(&frame) else {
            return Ok(());
        };
        let output = carry_out(&request, &frame);
        match (&request.gso, request.csum) {
            (Some(gso), _) => check_segments(&frame, &output, usize::from(gso.size())),
            (None, Some(csum))
                if usize::from(csum.start) == spec.l4_offset()
                    && usize::from(csum.offset) == spec.csum_offset() =>
            {
                let filled = dissect(&output[0]).l4.checksum();
                let expected = dissect(&spec.build()).l4.checksum();
                match spec.transport {
                    Transport::Tcp => prop_assert!(same_tcp_checksum(filled, expected)),
                    Transport::Udp => prop_assert_eq!(filled, expected),
                }
            }
            (None, Some(csum)) => {
                // Elsewhere: in the payload, and only that field changed.
                let field = usize::from(csum.start) + usize::from(csum.offset);
                prop_assert!(usize::from(csum.start) >= spec.l4_offset());
                prop_assert!(field >= spec.header_len() || field == spec.csum_field());
                prop_assert_eq!(&output[0][..field], &frame[..field]);
                prop_assert_eq!(&output[0][field + 2..], &frame[field + 2..]);
            }
            (None, None) => prop_assert_eq!(&output[0], &frame),
        }
    }

    /// The truthful request on a frame with a few bytes damaged (headers mostly) or cut:
    /// refused, or carried out into segments that parse and whose checksums verify over
    /// their raw bytes, carrying the damaged frame's payload.
    #[test]
    fn damaged_frames_are_refused_or_segmented_safely(
        (spec, gso_size) in frame_spec(1).prop_flat_map(|spec| {
            let min = spec.payload_len.div_ceil(128).max(1) as u16;
            (Just(spec), min..=u16::MAX)
        }),
        damage in prop::collection::vec((0usize..80, any::<u8>()), 1..6),
        cut in prop_oneof![Just(None), (0usize..100).prop_map(Some)],
    ) {
        let mut frame = spec.guest_frame();
        for (at, value) in damage {
            let at = at.min(frame.len() - 1);
            frame[at] = value;
        }
        if let Some(cut) = cut {
            frame.truncate(frame.len().saturating_sub(cut));
        }
        let Ok(request) = spec.gso_hdr(gso_size).offload_request(&frame) else {
            return Ok(());
        };
        let segments = carry_out(&request, &frame);
        let payload_offset = request.gso.map_or(0, |gso| gso.headers().header_len());
        let mut payload = Vec::new();
        for segment in &segments {
            prop_assert!(raw_checksums_ok(segment));
            payload.extend_from_slice(&dissect(segment).payload);
        }
        prop_assert_eq!(&payload[..], &frame[payload_offset..]);
    }
}
