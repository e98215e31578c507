//! What `VirtioNetHdr::offload_request` accepts, and the named error for each lie.

use super::frames::FrameSpec;
use crate::offload::{
    CheckOffload, Csum, GsoKind, IpVersion, Layer, OffloadError, OffloadRequest, Transport,
    VirtioNetHdr, MAX_FRAME_LEN, MAX_TCP_SEGMENTS, MAX_UDP_SEGMENTS,
};

fn tcp4(payload_len: usize) -> FrameSpec {
    FrameSpec::simple(IpVersion::V4, Transport::Tcp, payload_len)
}

fn tcp6(payload_len: usize) -> FrameSpec {
    FrameSpec::simple(IpVersion::V6, Transport::Tcp, payload_len)
}

fn udp4(payload_len: usize) -> FrameSpec {
    FrameSpec::simple(IpVersion::V4, Transport::Udp, payload_len)
}

/// The error `hdr` gets with `frame`.
fn error(hdr: VirtioNetHdr, frame: &[u8]) -> OffloadError {
    hdr.offload_request(frame)
        .expect_err("the request is refused")
}

/// Offsets in an untagged IPv4 frame.
const IPV4: usize = 14;

// Accepted requests.

#[test]
fn parse_reads_the_header_from_its_bytes() {
    let spec = tcp4(10);
    let frame = spec.guest_frame();
    let hdr = spec.csum_hdr();
    let want = hdr.offload_request(&frame).unwrap();
    assert!(want.csum.is_some());
    let mut bytes = hdr.to_bytes().to_vec();
    assert_eq!(OffloadRequest::parse(&bytes, &frame), Ok(want));
    bytes.push(0xee);
    assert_eq!(
        OffloadRequest::parse(&bytes, &frame),
        Ok(want),
        "longer is fine"
    );
}

#[test]
fn no_offload_looks_at_nothing() {
    // Flags 0 and GSO_NONE: whatever the other fields and the frame, send as it is.
    let hdr = VirtioNetHdr {
        hdr_len: 999,
        gso_size: 0,
        csum_start: 0xffff,
        csum_offset: 0xffff,
        num_buffers: 7,
        ..Default::default()
    };
    assert_eq!(
        hdr.offload_request(b"not a frame"),
        Ok(OffloadRequest::default())
    );
    assert_eq!(hdr.offload_request(&[]), Ok(OffloadRequest::default()));
}

#[test]
fn csum_request_is_accepted_as_given() {
    for spec in [
        tcp4(100),
        tcp6(0),
        udp4(1),
        FrameSpec::simple(IpVersion::V6, Transport::Udp, 9),
    ] {
        let frame = spec.guest_frame();
        let request = OffloadRequest::parse(&spec.csum_hdr().to_bytes(), &frame).unwrap();
        let csum = Csum {
            start: spec.l4_offset() as u16,
            offset: spec.csum_offset() as u16,
        };
        assert_eq!(
            request,
            OffloadRequest {
                csum: Some(csum),
                gso: None
            }
        );
    }
}

#[test]
fn csum_request_may_fill_an_inner_checksum() {
    // A guest's own tunnel: the partial checksum is of the inner packet, in the payload.
    let spec = udp4(200);
    let frame = spec.guest_frame();
    let hdr = VirtioNetHdr {
        csum_start: (spec.header_len() + 50) as u16,
        csum_offset: 16,
        ..spec.csum_hdr()
    };
    assert!(hdr.offload_request(&frame).unwrap().csum.is_some());
}

#[test]
fn csum_request_on_another_protocol_past_its_first_4_bytes() {
    // GRE (47) carrying a packet whose checksum is partial: past the GRE flags and
    // protocol type is accepted, over them is not.
    let spec = udp4(200);
    let mut frame = spec.guest_frame();
    frame[IPV4 + 9] = 47;
    let hdr = |csum_start: u16, csum_offset: u16| VirtioNetHdr {
        csum_start,
        csum_offset,
        ..spec.csum_hdr()
    };
    assert!(hdr(34, 4).offload_request(&frame).is_ok());
    assert!(hdr(38, 20).offload_request(&frame).is_ok());
    assert_eq!(
        error(hdr(34, 2), &frame),
        OffloadError::CsumFieldInTransportHeader {
            field: 36,
            l4_offset: 34
        }
    );
}

#[test]
fn gso_request_describes_the_frame() {
    let mut spec = tcp4(10_000);
    spec.vlans = 2;
    spec.ipv4_options = vec![1; 8];
    spec.tcp_options = vec![1; 12];
    let frame = spec.guest_frame();
    let request = spec.gso_hdr(1448).offload_request(&frame).unwrap();
    let gso = request.gso.unwrap();
    assert_eq!(gso.kind(), GsoKind::Tcp4);
    assert_eq!(gso.size(), 1448);
    assert!(!gso.ecn());
    let headers = gso.headers();
    assert_eq!(
        (headers.l2_len(), headers.l3_len(), headers.l4_len()),
        (22, 28, 32)
    );
    assert_eq!(headers.header_len(), spec.header_len());
    assert_eq!(headers.payload_len(), 10_000);
    assert_eq!(gso.segment_count(), 7);
    assert_eq!(gso.max_segment_len(), spec.header_len() + 1448);
}

#[test]
fn hdr_len_is_ignored_whatever_it_says() {
    // Linux sets hdr_len to the linear length, a hint: never a header length to trust, and
    // no reason to refuse the frame.
    let spec = tcp6(3000);
    let frame = spec.guest_frame();
    let truthful = spec.gso_hdr(1000).offload_request(&frame).unwrap();
    for hdr_len in [0, 1, 14, 54, 74, 75, 1000, 0xffff] {
        let hdr = VirtioNetHdr {
            hdr_len,
            ..spec.gso_hdr(1000)
        };
        assert_eq!(
            hdr.offload_request(&frame),
            Ok(truthful),
            "hdr_len {hdr_len}"
        );
    }
}

#[test]
fn data_valid_is_ignored() {
    let spec = tcp4(10);
    let frame = spec.guest_frame();
    let hdr = VirtioNetHdr {
        flags: VirtioNetHdr::F_DATA_VALID,
        ..Default::default()
    };
    assert_eq!(hdr.offload_request(&frame), Ok(OffloadRequest::default()));
    let hdr = VirtioNetHdr {
        flags: VirtioNetHdr::F_DATA_VALID | VirtioNetHdr::F_NEEDS_CSUM,
        ..spec.csum_hdr()
    };
    assert_eq!(
        hdr.offload_request(&frame),
        spec.csum_hdr().offload_request(&frame)
    );
}

#[test]
fn ecn_is_carried() {
    let spec = tcp4(5000);
    let hdr = VirtioNetHdr {
        gso_type: VirtioNetHdr::GSO_TCPV4 | VirtioNetHdr::GSO_ECN,
        ..spec.gso_hdr(1000)
    };
    let gso = hdr
        .offload_request(&spec.guest_frame())
        .unwrap()
        .gso
        .unwrap();
    assert!(gso.ecn());
}

#[test]
fn payload_within_one_segment_is_still_a_gso_request() {
    let spec = udp4(100);
    let gso = spec
        .gso_hdr(100)
        .offload_request(&spec.guest_frame())
        .unwrap()
        .gso
        .unwrap();
    assert_eq!(gso.segment_count(), 1);
    assert_eq!(gso.max_segment_len(), spec.header_len() + 100);
}

/// Each kind takes requests up to its segment limit (USO: Linux's 128; TSO: 1,024, a 64 KiB
/// frame at an MSS of 64) and refuses one segment size smaller.
#[test]
fn requests_take_up_to_their_kinds_segment_limit() {
    let udp = MAX_UDP_SEGMENTS * 100;
    let tcp = (MAX_TCP_SEGMENTS - 1) * 64 + 1;
    for (spec, kind, size) in [
        (udp4(udp), GsoKind::UdpL4, 100),
        (tcp4(tcp), GsoKind::Tcp4, 64),
        (tcp6(tcp), GsoKind::Tcp6, 64),
    ] {
        let frame = spec.guest_frame();
        let max = kind.max_segments();
        let gso = spec
            .gso_hdr(size)
            .offload_request(&frame)
            .unwrap()
            .gso
            .unwrap();
        assert_eq!(gso.segment_count(), max, "{kind}");
        assert_eq!(
            error(spec.gso_hdr(size - 1), &frame),
            OffloadError::TooManySegments {
                kind,
                segments: spec.payload_len.div_ceil(usize::from(size - 1)),
                max
            }
        );
    }
    assert_eq!(GsoKind::UdpL4.max_segments(), 128);
    assert_eq!(GsoKind::Tcp4.max_segments(), 1024);
    // The largest TCP frames at an MSS of 1: refused, whatever they would cost.
    for (ip, kind) in [
        (IpVersion::V4, GsoKind::Tcp4),
        (IpVersion::V6, GsoKind::Tcp6),
    ] {
        let big = FrameSpec::simple(ip, Transport::Tcp, 65_535 - 40);
        assert_eq!(
            error(big.gso_hdr(1), &big.guest_frame()),
            OffloadError::TooManySegments {
                kind,
                segments: 65_495,
                max: MAX_TCP_SEGMENTS
            }
        );
    }
}

// The virtio-net header's own fields.

#[test]
fn short_header() {
    assert_eq!(
        OffloadRequest::parse(&[0; 10], &[]),
        Err(OffloadError::HeaderTooShort { len: 10 })
    );
}

#[test]
fn unknown_flags() {
    let spec = tcp4(10);
    let frame = spec.guest_frame();
    for (flags, unknown) in [(0x08, 0x08), (0x80, 0x80), (0xff, 0xf8), (0x09, 0x08)] {
        let hdr = VirtioNetHdr {
            flags,
            ..spec.csum_hdr()
        };
        assert_eq!(
            error(hdr, &frame),
            OffloadError::UnknownFlags { flags: unknown }
        );
    }
}

#[test]
fn rsc_info_from_the_driver() {
    let spec = tcp4(10);
    let hdr = VirtioNetHdr {
        flags: VirtioNetHdr::F_NEEDS_CSUM | VirtioNetHdr::F_RSC_INFO,
        ..spec.csum_hdr()
    };
    assert_eq!(
        error(hdr, &spec.guest_frame()),
        OffloadError::RscInfoFromDriver
    );
}

#[test]
fn unknown_gso_types() {
    let spec = tcp4(3000);
    let frame = spec.guest_frame();
    for gso_type in [2, 6, 7, 0x10, 0x20, 0x40, 0x41, 0x80, 0x82, 0xff] {
        let hdr = VirtioNetHdr {
            gso_type,
            ..spec.gso_hdr(1000)
        };
        assert_eq!(
            error(hdr, &frame),
            OffloadError::UnknownGsoType { gso_type }
        );
    }
}

#[test]
fn ufo_is_not_supported() {
    let spec = udp4(3000);
    let hdr = VirtioNetHdr {
        gso_type: VirtioNetHdr::GSO_UDP,
        ..spec.gso_hdr(1000)
    };
    assert_eq!(
        error(hdr, &spec.guest_frame()),
        OffloadError::UfoUnsupported
    );
}

#[test]
fn ecn_with_uso() {
    let spec = udp4(3000);
    let hdr = VirtioNetHdr {
        gso_type: VirtioNetHdr::GSO_UDP_L4 | VirtioNetHdr::GSO_ECN,
        ..spec.gso_hdr(1000)
    };
    assert_eq!(error(hdr, &spec.guest_frame()), OffloadError::EcnWithUdp);
}

#[test]
fn gso_size_zero() {
    let spec = tcp4(3000);
    assert_eq!(
        error(spec.gso_hdr(0), &spec.guest_frame()),
        OffloadError::GsoSizeZero
    );
}

#[test]
fn gso_without_needs_csum() {
    let spec = tcp4(3000);
    let hdr = VirtioNetHdr {
        flags: 0,
        ..spec.gso_hdr(1000)
    };
    assert_eq!(
        error(hdr, &spec.guest_frame()),
        OffloadError::GsoWithoutCsum
    );
}

#[test]
fn frame_too_long() {
    let frame = vec![0; MAX_FRAME_LEN + 1];
    assert_eq!(
        error(VirtioNetHdr::default(), &frame),
        OffloadError::FrameTooLong {
            len: MAX_FRAME_LEN + 1,
            max: MAX_FRAME_LEN
        }
    );
}

// Where the checksum is.

#[test]
fn csum_start_past_the_end() {
    let spec = tcp4(100);
    let frame = spec.guest_frame();
    for (csum_start, csum_offset) in [(frame.len(), 0), (frame.len() - 1, 0), (0xffff, 0xffff)] {
        let hdr = VirtioNetHdr {
            csum_start: csum_start as u16,
            csum_offset: csum_offset as u16,
            ..spec.csum_hdr()
        };
        assert_eq!(
            error(hdr, &frame),
            OffloadError::CsumOutOfFrame {
                start: csum_start,
                offset: csum_offset,
                frame_len: frame.len()
            }
        );
        let gso_hdr = VirtioNetHdr {
            csum_start: csum_start as u16,
            csum_offset: csum_offset as u16,
            ..spec.gso_hdr(10)
        };
        assert!(matches!(
            error(gso_hdr, &frame),
            OffloadError::CsumOutOfFrame { .. }
        ));
    }
}

#[test]
fn csum_offset_past_the_end() {
    let spec = tcp4(0);
    let frame = spec.guest_frame();
    let hdr = VirtioNetHdr {
        csum_offset: (spec.l4_len() - 1) as u16,
        ..spec.csum_hdr()
    };
    assert_eq!(
        error(hdr, &frame),
        OffloadError::CsumOutOfFrame {
            start: spec.l4_offset(),
            offset: spec.l4_len() - 1,
            frame_len: frame.len()
        }
    );
}

#[test]
fn csum_start_inside_the_ip_header() {
    // The "checksum" would overwrite the source address after the switch matched on it.
    let spec = tcp4(100);
    for csum_start in [0, 14, 26, 33] {
        let hdr = VirtioNetHdr {
            csum_start,
            csum_offset: 0,
            ..spec.csum_hdr()
        };
        assert_eq!(
            error(hdr, &spec.guest_frame()),
            OffloadError::CsumStartInHeaders {
                start: usize::from(csum_start),
                l4_offset: 34
            }
        );
    }
}

#[test]
fn csum_field_over_ports_or_tcp_flags() {
    // Filled after the flow rules matched, such a "checksum" would rewrite what they
    // matched: a port (an ACL bypass), the TCP flags, the sequence number.
    let spec = tcp4(100);
    for (csum_start, csum_offset) in [
        (34, 0),
        (34, 2),
        (36, 0),
        (34, 12),
        (40, 0),
        (34, 18),
        (52, 0),
    ] {
        let hdr = VirtioNetHdr {
            csum_start,
            csum_offset,
            ..spec.csum_hdr()
        };
        assert_eq!(
            error(hdr, &spec.guest_frame()),
            OffloadError::CsumFieldInTransportHeader {
                field: usize::from(csum_start + csum_offset),
                l4_offset: 34
            }
        );
    }
    let spec = udp4(100);
    let hdr = VirtioNetHdr {
        csum_offset: 2,
        ..spec.csum_hdr()
    };
    assert_eq!(
        error(hdr, &spec.guest_frame()),
        OffloadError::CsumFieldInTransportHeader {
            field: 36,
            l4_offset: 34
        }
    );
}

#[test]
fn csum_request_with_ipv6_extension_headers() {
    let spec = FrameSpec::simple(IpVersion::V6, Transport::Udp, 100);
    let mut frame = spec.guest_frame();
    frame[IPV4 + 6] = 60;
    assert_eq!(
        error(spec.csum_hdr(), &frame),
        OffloadError::Ipv6ExtensionHeader { next_header: 60 }
    );
}

#[test]
fn gso_csum_start_elsewhere_than_the_transport_header() {
    let spec = tcp4(3000);
    for csum_start in [14, 33, 35, 54] {
        let hdr = VirtioNetHdr {
            csum_start,
            ..spec.gso_hdr(1000)
        };
        assert_eq!(
            error(hdr, &spec.guest_frame()),
            OffloadError::CsumStartMismatch {
                start: usize::from(csum_start),
                l4_offset: 34
            }
        );
    }
}

#[test]
fn gso_csum_offset_elsewhere_than_the_checksum_field() {
    let spec = tcp4(3000);
    let hdr = VirtioNetHdr {
        csum_offset: 6,
        ..spec.gso_hdr(1000)
    };
    assert_eq!(
        error(hdr, &spec.guest_frame()),
        OffloadError::CsumOffsetMismatch {
            offset: 6,
            expected: 16,
            transport: Transport::Tcp
        }
    );
    let spec = udp4(3000);
    let hdr = VirtioNetHdr {
        csum_offset: 16,
        ..spec.gso_hdr(1000)
    };
    assert_eq!(
        error(hdr, &spec.guest_frame()),
        OffloadError::CsumOffsetMismatch {
            offset: 16,
            expected: 6,
            transport: Transport::Udp
        }
    );
}

// What the frame's headers say against the request.

#[test]
fn tcpv4_on_an_ipv6_frame_and_the_reverse() {
    let spec = tcp6(3000);
    let hdr = VirtioNetHdr {
        gso_type: VirtioNetHdr::GSO_TCPV4,
        ..spec.gso_hdr(1000)
    };
    assert_eq!(
        error(hdr, &spec.guest_frame()),
        OffloadError::GsoIpMismatch {
            kind: GsoKind::Tcp4,
            ip: IpVersion::V6
        }
    );
    let spec = tcp4(3000);
    let hdr = VirtioNetHdr {
        gso_type: VirtioNetHdr::GSO_TCPV6,
        ..spec.gso_hdr(1000)
    };
    assert_eq!(
        error(hdr, &spec.guest_frame()),
        OffloadError::GsoIpMismatch {
            kind: GsoKind::Tcp6,
            ip: IpVersion::V4
        }
    );
}

#[test]
fn transport_protocol_mismatch() {
    let spec = udp4(3000);
    let hdr = VirtioNetHdr {
        gso_type: VirtioNetHdr::GSO_TCPV4,
        csum_offset: 16,
        ..spec.gso_hdr(1000)
    };
    assert_eq!(
        error(hdr, &spec.guest_frame()),
        OffloadError::L4ProtocolMismatch {
            kind: GsoKind::Tcp4,
            found: Transport::Udp
        }
    );
    let spec = tcp6(3000);
    let hdr = VirtioNetHdr {
        gso_type: VirtioNetHdr::GSO_UDP_L4,
        csum_offset: 6,
        ..spec.gso_hdr(1000)
    };
    assert_eq!(
        error(hdr, &spec.guest_frame()),
        OffloadError::L4ProtocolMismatch {
            kind: GsoKind::UdpL4,
            found: Transport::Tcp
        }
    );
}

#[test]
fn gso_on_a_frame_without_payload() {
    for spec in [tcp4(0), tcp6(0), udp4(0)] {
        assert_eq!(
            error(spec.gso_hdr(1000), &spec.guest_frame()),
            OffloadError::GsoWithoutPayload
        );
    }
}

#[test]
fn gso_of_neither_tcp_nor_udp() {
    let spec = tcp4(3000);
    let mut frame = spec.guest_frame();
    frame[IPV4 + 9] = 1; // ICMP
    assert_eq!(
        error(spec.gso_hdr(1000), &frame),
        OffloadError::UnsupportedTransport { protocol: 1 }
    );
}

#[test]
fn ipv4_ihl_below_5() {
    let spec = tcp4(100);
    for ihl in 0..5u8 {
        let mut frame = spec.guest_frame();
        frame[IPV4] = 0x40 | ihl;
        assert_eq!(
            error(spec.gso_hdr(10), &frame),
            OffloadError::Ipv4IhlTooShort { ihl }
        );
        assert_eq!(
            error(spec.csum_hdr(), &frame),
            OffloadError::Ipv4IhlTooShort { ihl }
        );
    }
}

#[test]
fn ipv4_ihl_past_the_frame() {
    let spec = tcp4(0);
    let mut frame = spec.guest_frame();
    frame.truncate(IPV4 + 40);
    frame[IPV4] = 0x4f;
    frame[IPV4 + 2..IPV4 + 4].copy_from_slice(&40u16.to_be_bytes());
    assert_eq!(
        error(spec.gso_hdr(10), &frame),
        OffloadError::Truncated {
            layer: Layer::Ipv4,
            need: IPV4 + 60,
            have: IPV4 + 40
        }
    );
}

#[test]
fn ip_version_contradicts_the_ethertype() {
    let spec = tcp4(100);
    let mut frame = spec.guest_frame();
    frame[IPV4] = 0x65;
    assert_eq!(
        error(spec.csum_hdr(), &frame),
        OffloadError::IpVersionMismatch {
            ethertype: 0x0800,
            version: 6
        }
    );
    let spec = tcp6(100);
    let mut frame = spec.guest_frame();
    frame[IPV4] = 0x45;
    assert_eq!(
        error(spec.gso_hdr(10), &frame),
        OffloadError::IpVersionMismatch {
            ethertype: 0x86dd,
            version: 4
        }
    );
}

#[test]
fn ipv4_total_length_disagrees_with_the_frame() {
    let spec = tcp4(100);
    let ip_len = 20 + 20 + 100;
    for total_len in [0, 20, ip_len - 1, ip_len + 1, 0xffff] {
        let mut frame = spec.guest_frame();
        frame[IPV4 + 2..IPV4 + 4].copy_from_slice(&(total_len as u16).to_be_bytes());
        let expected = OffloadError::IpLengthMismatch {
            header: total_len,
            frame: ip_len,
        };
        assert_eq!(error(spec.gso_hdr(10), &frame), expected);
        assert_eq!(error(spec.csum_hdr(), &frame), expected);
    }
    // Ethernet padding after the packet is a mismatch too.
    let mut frame = spec.guest_frame();
    frame.extend_from_slice(&[0; 4]);
    assert_eq!(
        error(spec.csum_hdr(), &frame),
        OffloadError::IpLengthMismatch {
            header: ip_len,
            frame: ip_len + 4
        }
    );
}

#[test]
fn ipv6_payload_length_disagrees_with_the_frame() {
    let spec = tcp6(100);
    let mut frame = spec.guest_frame();
    frame[IPV4 + 4..IPV4 + 6].copy_from_slice(&0u16.to_be_bytes());
    assert_eq!(
        error(spec.gso_hdr(10), &frame),
        OffloadError::IpLengthMismatch {
            header: 40,
            frame: 40 + 20 + 100
        }
    );
}

#[test]
fn ipv4_fragments() {
    let spec = udp4(100);
    for (flags_offset, what) in [(0x2000u16, "MF"), (0x0001, "offset"), (0x3fff, "both")] {
        let mut frame = spec.guest_frame();
        frame[IPV4 + 6..IPV4 + 8].copy_from_slice(&flags_offset.to_be_bytes());
        assert_eq!(
            error(spec.csum_hdr(), &frame),
            OffloadError::Ipv4Fragment,
            "{what}"
        );
    }
    // DF alone is not a fragment.
    let mut frame = spec.guest_frame();
    frame[IPV4 + 6..IPV4 + 8].copy_from_slice(&0x4000u16.to_be_bytes());
    assert!(spec.csum_hdr().offload_request(&frame).is_ok());
}

#[test]
fn ipv6_extension_headers() {
    let spec = tcp6(100);
    for next_header in [0, 43, 44, 60] {
        let mut frame = spec.guest_frame();
        frame[IPV4 + 6] = next_header;
        assert_eq!(
            error(spec.gso_hdr(10), &frame),
            OffloadError::Ipv6ExtensionHeader { next_header }
        );
    }
}

#[test]
fn tcp_data_offset_below_5_or_past_the_frame() {
    let spec = tcp4(10);
    for data_offset in 0..5u8 {
        let mut frame = spec.guest_frame();
        frame[spec.l4_offset() + 12] = data_offset << 4;
        assert_eq!(
            error(spec.gso_hdr(4), &frame),
            OffloadError::TcpDataOffsetTooShort { data_offset }
        );
    }
    let mut frame = spec.guest_frame();
    frame[spec.l4_offset() + 12] = 0xf0;
    assert_eq!(
        error(spec.gso_hdr(4), &frame),
        OffloadError::Truncated {
            layer: Layer::Tcp,
            need: spec.l4_offset() + 60,
            have: frame.len()
        }
    );
}

#[test]
fn udp_length_disagrees_with_the_frame() {
    let spec = udp4(100);
    for udp_len in [0u16, 8, 107, 109, 0xffff] {
        let mut frame = spec.guest_frame();
        frame[spec.l4_offset() + 4..spec.l4_offset() + 6].copy_from_slice(&udp_len.to_be_bytes());
        assert_eq!(
            error(spec.gso_hdr(10), &frame),
            OffloadError::UdpLengthMismatch {
                header: usize::from(udp_len),
                frame: 108
            }
        );
    }
}

#[test]
fn three_vlan_tags() {
    let mut spec = tcp4(100);
    spec.vlans = 2;
    let mut frame = spec.guest_frame();
    // Make the ethertype after the second tag a third tag.
    frame[20..22].copy_from_slice(&0x8100u16.to_be_bytes());
    assert_eq!(
        error(spec.csum_hdr(), &frame),
        OffloadError::TooManyVlanTags
    );
}

#[test]
fn not_ip() {
    let spec = tcp4(100);
    let mut frame = spec.guest_frame();
    frame[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    assert_eq!(
        error(spec.csum_hdr(), &frame),
        OffloadError::NotIp { ethertype: 0x0806 }
    );
}

#[test]
fn truncated_headers() {
    let spec = tcp4(0);
    let frame = spec.guest_frame();
    let hdr = VirtioNetHdr {
        csum_start: 0,
        csum_offset: 0,
        ..spec.csum_hdr()
    };
    // The checksum field is kept inside each cut frame, so the headers are what fail.
    for (len, layer, need) in [
        (13, Layer::Ethernet, 14),
        (14, Layer::Ipv4, 34),
        (33, Layer::Ipv4, 34),
    ] {
        assert_eq!(
            error(hdr, &frame[..len]),
            OffloadError::Truncated {
                layer,
                need,
                have: len
            }
        );
    }
    let mut tagged = frame[..14].to_vec();
    tagged[12..14].copy_from_slice(&0x88a8u16.to_be_bytes());
    tagged.extend_from_slice(&[0, 100]);
    assert_eq!(
        error(hdr, &tagged),
        OffloadError::Truncated {
            layer: Layer::Vlan,
            need: 18,
            have: 16
        }
    );
}

#[test]
fn errors_say_what_was_wrong() {
    let spec = tcp6(3000);
    let hdr = VirtioNetHdr {
        gso_type: VirtioNetHdr::GSO_TCPV4,
        ..spec.gso_hdr(1000)
    };
    assert_eq!(
        error(hdr, &spec.guest_frame()).to_string(),
        "gso_type TCPV4 on an IPv6 frame"
    );
    assert_eq!(
        OffloadError::Truncated {
            layer: Layer::Tcp,
            need: 54,
            have: 40
        }
        .to_string(),
        "frame of 40 bytes ends inside its TCP header (54 bytes needed)"
    );
}
