//! The flow key extractor against an outside oracle: random frames built with
//! `etherparse::PacketBuilder`, each key field checked against what
//! `etherparse::SlicedPacket::from_ethernet` reports. Then robustness: random bytes, single-byte
//! mutations and every truncation of valid frames never panic, and a truncated frame's key
//! never holds a value the whole frame's key does not.

use etherparse::{
    IpDscp, IpEcn, IpFragOffset, IpHeaders, IpNumber, Ipv4Header, Ipv6Extensions,
    Ipv6FragmentHeader, Ipv6Header, Ipv6RawExtHeader, LinkExtSlice, LinkSlice, NetSlice,
    PacketBuilder, SingleVlanHeader, SlicedPacket, TransportSlice, VlanHeader, VlanId, VlanPcp,
};
use flowtable::key::{
    extract, extract_into, extract_l2_into, extract_vxlan, FlowKey, ETH_TYPE_NONE, FRAG_ANY,
    FRAG_LATER, VLAN_PRESENT,
};
use flowtable::{MacAddr, PortNo};
use proptest::prelude::*;

const PORT: PortNo = PortNo(3);

#[derive(Debug, Clone)]
struct Tag {
    pcp: u8,
    dei: bool,
    vid: u16,
}

#[derive(Debug, Clone)]
enum Ip {
    V4 {
        src: [u8; 4],
        dst: [u8; 4],
        ttl: u8,
        dscp: u8,
        ecn: u8,
        ident: u16,
        df: bool,
        /// (more fragments, offset in 8-byte units)
        frag: Option<(bool, u16)>,
    },
    V6 {
        src: [u8; 16],
        dst: [u8; 16],
        hop_limit: u8,
        traffic_class: u8,
        flow_label: u32,
        hop_by_hop: bool,
        dst_opts: bool,
        /// (more fragments, offset in 8-byte units)
        frag: Option<(bool, u16)>,
    },
}

#[derive(Debug, Clone)]
enum L4 {
    Tcp {
        src: u16,
        dst: u16,
        seq: u32,
        window: u16,
    },
    Udp {
        src: u16,
        dst: u16,
    },
    /// ICMPv4 over IPv4, ICMPv6 over IPv6.
    Icmp {
        ty: u8,
        code: u8,
        rest: [u8; 4],
    },
}

#[derive(Debug, Clone)]
struct Spec {
    src: [u8; 6],
    dst: [u8; 6],
    tags: Vec<Tag>,
    ip: Ip,
    l4: L4,
    payload: Vec<u8>,
}

fn tag() -> impl Strategy<Value = Tag> {
    (0u8..8, any::<bool>(), 0u16..4096).prop_map(|(pcp, dei, vid)| Tag { pcp, dei, vid })
}

fn frag() -> impl Strategy<Value = Option<(bool, u16)>> {
    prop_oneof![
        6 => Just(None),
        1 => (any::<bool>(), 0u16..8192).prop_map(Some),
    ]
}

fn ip() -> impl Strategy<Value = Ip> {
    prop_oneof![
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u8>(),
            0u8..64,
            0u8..4,
            any::<u16>(),
            any::<bool>(),
            frag(),
        )
            .prop_map(|(src, dst, ttl, dscp, ecn, ident, df, frag)| Ip::V4 {
                src,
                dst,
                ttl,
                dscp,
                ecn,
                ident,
                df,
                frag,
            }),
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u8>(),
            any::<u8>(),
            0u32..(1 << 20),
            any::<bool>(),
            any::<bool>(),
            frag(),
        )
            .prop_map(
                |(src, dst, hop_limit, traffic_class, flow_label, hop_by_hop, dst_opts, frag)| {
                    Ip::V6 {
                        src,
                        dst,
                        hop_limit,
                        traffic_class,
                        flow_label,
                        hop_by_hop,
                        dst_opts,
                        frag,
                    }
                }
            ),
    ]
}

fn l4() -> impl Strategy<Value = L4> {
    prop_oneof![
        (any::<u16>(), any::<u16>(), any::<u32>(), any::<u16>()).prop_map(
            |(src, dst, seq, window)| L4::Tcp {
                src,
                dst,
                seq,
                window
            }
        ),
        (any::<u16>(), any::<u16>()).prop_map(|(src, dst)| L4::Udp { src, dst }),
        (any::<u8>(), any::<u8>(), any::<[u8; 4]>())
            // ICMPv4 timestamp request and reply (types 13 and 14, code 0) are 20 bytes by
            // definition: etherparse writes them raw from any payload but refuses to slice
            // one shorter than that, so the oracle could not read its own frame. (Type 13/14
            // with another code, and every ICMPv6 type, stay in.)
            .prop_filter(
                "an ICMPv4 timestamp etherparse cannot slice",
                |(ty, code, _)| { !matches!((ty, code), (13 | 14, 0)) }
            )
            .prop_map(|(ty, code, rest)| L4::Icmp { ty, code, rest }),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        any::<[u8; 6]>(),
        any::<[u8; 6]>(),
        proptest::collection::vec(tag(), 0..=2),
        ip(),
        l4(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(src, dst, tags, ip, l4, payload)| Spec {
            src,
            dst,
            tags,
            ip,
            l4,
            payload,
        })
}

fn vlan_header(t: &Tag) -> SingleVlanHeader {
    SingleVlanHeader {
        pcp: VlanPcp::try_new(t.pcp).unwrap(),
        drop_eligible_indicator: t.dei,
        vlan_id: VlanId::try_new(t.vid).unwrap(),
        ether_type: 0.into(), // set by the builder
    }
}

fn ip_headers(ip: &Ip) -> IpHeaders {
    match ip {
        Ip::V4 {
            src,
            dst,
            ttl,
            dscp,
            ecn,
            ident,
            df,
            frag,
        } => {
            let mut h = Ipv4Header::new(0, *ttl, IpNumber(0), *src, *dst).unwrap();
            h.dscp = IpDscp::try_new(*dscp).unwrap();
            h.ecn = IpEcn::try_new(*ecn).unwrap();
            h.identification = *ident;
            h.dont_fragment = *df;
            if let Some((more, offset)) = frag {
                h.more_fragments = *more;
                h.fragment_offset = IpFragOffset::try_new(*offset).unwrap();
            }
            IpHeaders::Ipv4(h, Default::default())
        }
        Ip::V6 {
            src,
            dst,
            hop_limit,
            traffic_class,
            flow_label,
            hop_by_hop,
            dst_opts,
            frag,
        } => {
            let h = Ipv6Header {
                traffic_class: *traffic_class,
                flow_label: (*flow_label).try_into().unwrap(),
                payload_length: 0,
                next_header: IpNumber(0),
                hop_limit: *hop_limit,
                source: *src,
                destination: *dst,
            };
            let pad = [1u8, 4, 0, 0, 0, 0]; // PadN option filling the 6 bytes
            let raw = || Some(Ipv6RawExtHeader::new_raw(IpNumber(0), &pad).unwrap());
            let exts = Ipv6Extensions {
                hop_by_hop_options: if *hop_by_hop { raw() } else { None },
                destination_options: if *dst_opts { raw() } else { None },
                fragment: frag.map(|(more, offset)| {
                    Ipv6FragmentHeader::new(
                        IpNumber(0),
                        IpFragOffset::try_new(offset).unwrap(),
                        more,
                        0x1234_5678,
                    )
                }),
                ..Default::default()
            };
            IpHeaders::Ipv6(h, exts)
        }
    }
}

fn build(s: &Spec) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(s.src, s.dst);
    let iph = ip_headers(&s.ip);
    let step = match s.tags.as_slice() {
        [] => eth.ip(iph),
        [t] => eth.vlan(VlanHeader::Single(vlan_header(t))).ip(iph),
        [outer, inner] => eth
            .vlan(VlanHeader::Double(etherparse::DoubleVlanHeader {
                outer: vlan_header(outer),
                inner: vlan_header(inner),
            }))
            .ip(iph),
        _ => unreachable!("at most two tags"),
    };
    let mut out = Vec::new();
    let v4 = matches!(s.ip, Ip::V4 { .. });
    match s.l4 {
        L4::Tcp {
            src,
            dst,
            seq,
            window,
        } => step.tcp(src, dst, seq, window).write(&mut out, &s.payload),
        L4::Udp { src, dst } => step.udp(src, dst).write(&mut out, &s.payload),
        L4::Icmp { ty, code, rest } if v4 => {
            step.icmpv4_raw(ty, code, rest).write(&mut out, &s.payload)
        }
        L4::Icmp { ty, code, rest } => step.icmpv6_raw(ty, code, rest).write(&mut out, &s.payload),
    }
    .unwrap();
    out
}

/// Checks every key field against the oracle's view of `frame`, and against the generator's
/// values where the oracle stops early (the L4 ports of a first fragment).
fn check_against_oracle(s: &Spec, frame: &[u8]) -> Result<(), TestCaseError> {
    let k = extract(frame, PORT);
    let sliced = SlicedPacket::from_ethernet(frame).expect("etherparse slices its own frames");
    prop_assert_eq!(k.in_port(), PORT);

    // Ethernet.
    let Some(LinkSlice::Ethernet2(eth)) = &sliced.link else {
        return Err(TestCaseError::fail("no Ethernet header"));
    };
    prop_assert_eq!(k.eth_dst(), MacAddr(eth.destination()));
    prop_assert_eq!(k.eth_src(), MacAddr(eth.source()));
    let mut eth_type = eth.ether_type().0;

    // VLAN tags.
    let tcis: Vec<u16> = sliced
        .link_exts
        .iter()
        .map(|e| match e {
            LinkExtSlice::Vlan(v) => {
                eth_type = v.ether_type().0;
                (u16::from(v.priority_code_point().value()) << 13)
                    | v.vlan_identifier().value()
                    | VLAN_PRESENT
            }
            LinkExtSlice::Macsec(_) => panic!("no MACsec generated"),
        })
        .collect();
    prop_assert_eq!(tcis.len(), s.tags.len());
    prop_assert_eq!(k.vlan_tci(), tcis.first().copied().unwrap_or(0));
    prop_assert_eq!(k.vlan_inner_tci(), tcis.get(1).copied().unwrap_or(0));
    prop_assert_eq!(k.eth_type(), eth_type);

    // IP.
    let fragmented;
    match &sliced.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            prop_assert_eq!(k.ip_src(), u32::from_be_bytes(h.source()));
            prop_assert_eq!(k.ip_dst(), u32::from_be_bytes(h.destination()));
            prop_assert_eq!(k.ip_proto(), h.protocol().0);
            prop_assert_eq!(k.ip_tos(), (h.dcp().value() << 2) | h.ecn().value());
            prop_assert_eq!(k.ip_ttl(), h.ttl());
            prop_assert_eq!((k.ipv6_src(), k.ipv6_dst()), (0, 0));
            let later = h.fragments_offset().value() != 0;
            fragmented = ip.is_payload_fragmented();
            let expect_frag = match (fragmented, later) {
                (false, _) => 0,
                (true, false) => FRAG_ANY,
                (true, true) => FRAG_ANY | FRAG_LATER,
            };
            prop_assert_eq!(k.ip_frag(), expect_frag);
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            prop_assert_eq!(k.ipv6_src(), u128::from_be_bytes(h.source()));
            prop_assert_eq!(k.ipv6_dst(), u128::from_be_bytes(h.destination()));
            prop_assert_eq!(k.ip_proto(), ip.payload().ip_number.0);
            prop_assert_eq!(k.ip_tos(), h.traffic_class());
            prop_assert_eq!(k.ip_ttl(), h.hop_limit());
            prop_assert_eq!((k.ip_src(), k.ip_dst()), (0, 0));
            fragmented = ip.is_payload_fragmented();
            let later = ip
                .extensions()
                .clone()
                .into_iter()
                .any(|e| matches!(e, etherparse::Ipv6ExtensionSlice::Fragment(f) if f.fragment_offset().value() != 0));
            let expect_frag = match (fragmented, later) {
                (false, _) => 0,
                (true, false) => FRAG_ANY,
                (true, true) => FRAG_ANY | FRAG_LATER,
            };
            prop_assert_eq!(k.ip_frag(), expect_frag);
        }
        other => return Err(TestCaseError::fail(format!("no IP header: {other:?}"))),
    }

    // L4.
    let (tp_src, tp_dst) = match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port()),
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port()),
        Some(TransportSlice::Icmpv4(i)) => (i.type_u8().into(), i.code_u8().into()),
        Some(TransportSlice::Icmpv6(i)) => (i.type_u8().into(), i.code_u8().into()),
        Some(other) => return Err(TestCaseError::fail(format!("unexpected L4 {other:?}"))),
        None => {
            // etherparse stops at any fragment; the extractor reads a first fragment's ports.
            prop_assert!(fragmented, "unfragmented frame without L4");
            if k.ip_frag() & FRAG_LATER != 0 {
                (0, 0)
            } else {
                match s.l4 {
                    L4::Tcp { src, dst, .. } | L4::Udp { src, dst } => (src, dst),
                    L4::Icmp { ty, code, .. } => (ty.into(), code.into()),
                }
            }
        }
    };
    prop_assert_eq!(k.tp_src(), tp_src);
    prop_assert_eq!(k.tp_dst(), tp_dst);

    // Nothing else is set.
    prop_assert_eq!((k.arp_sha_raw(), k.arp_tha_raw()), (0, 0));
    prop_assert_eq!((k.tun_id(), k.tun_src(), k.tun_dst()), (0, 0, 0));
    Ok(())
}

/// The value of each key field, `eth_type` left out.
fn fields(k: &FlowKey) -> [(&'static str, u128); 17] {
    [
        ("in_port", k.in_port_raw().into()),
        ("vlan_tci", k.vlan_tci().into()),
        ("vlan_inner_tci", k.vlan_inner_tci().into()),
        ("eth_dst", k.eth_dst_raw().into()),
        ("eth_src", k.eth_src_raw().into()),
        ("ip_proto", k.ip_proto().into()),
        ("ip_frag", k.ip_frag().into()),
        ("ip_src", k.ip_src().into()),
        ("ip_dst", k.ip_dst().into()),
        ("tp_src", k.tp_src().into()),
        ("tp_dst", k.tp_dst().into()),
        ("ip_tos", k.ip_tos().into()),
        ("ip_ttl", k.ip_ttl().into()),
        ("ipv6_src", k.ipv6_src()),
        ("ipv6_dst", k.ipv6_dst()),
        ("arp_sha", k.arp_sha_raw().into()),
        ("arp_tha", k.arp_tha_raw().into()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn key_matches_etherparse(s in spec()) {
        let frame = build(&s);
        check_against_oracle(&s, &frame)?;
    }

    #[test]
    fn truncation_only_drops_fields(s in spec()) {
        let frame = build(&s);
        let full = extract(&frame, PORT);
        let full_fields = fields(&full);
        for len in 0..frame.len() {
            let k = extract(&frame[..len], PORT);
            let _ = extract_vxlan(&frame[..len]);
            for ((name, t), (_, f)) in fields(&k).into_iter().zip(full_fields) {
                // An IPv6 extension header cut short leaves ip_proto at its type.
                let ext = name == "ip_proto" && k.eth_type() == 0x86dd && [0, 43, 44, 60].contains(&t);
                prop_assert!(t == f || t == 0 || ext, "len {}: {} = {:#x}, whole frame {:#x}", len, name, t, f);
            }
            // eth_type is the full one, a TPID whose tag was cut, or unset.
            let et = k.eth_type();
            prop_assert!(et == full.eth_type() || et == 0x8100 || et == 0x88a8 || et == 0,
                "len {}: eth_type {:#x}", len, et);
        }
    }

    #[test]
    fn mutations_never_panic(s in spec(), at in any::<prop::sample::Index>(), value in any::<u8>()) {
        let mut frame = build(&s);
        let i = at.index(frame.len());
        frame[i] = value;
        let k = extract(&frame, PORT);
        prop_assert_eq!(k.in_port(), PORT);
        let _ = extract_vxlan(&frame);
        for len in 0..frame.len() {
            let _ = extract(&frame[..len], PORT);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let k = extract(&bytes, PORT);
        prop_assert_eq!(k.in_port(), PORT);
        // In place over a key full of ones: every word is rewritten.
        let mut dirty = FlowKey::EXACT;
        extract_into(&bytes, PORT, &mut dirty);
        prop_assert_eq!(dirty, k);
        // The L2 part: the same L2 fields, nothing else.
        let mut l2 = FlowKey::EXACT;
        extract_l2_into(&bytes, PORT, &mut l2);
        let mut want = FlowKey::ZERO;
        want.set_in_port(PORT);
        want.set_eth_dst_raw(k.eth_dst_raw());
        want.set_eth_src_raw(k.eth_src_raw());
        want.set_eth_type(k.eth_type());
        want.set_vlan_tci(k.vlan_tci());
        want.set_vlan_inner_tci(k.vlan_inner_tci());
        prop_assert_eq!(l2, want);
        if bytes.len() < 14 {
            prop_assert_eq!(k, { let mut z = FlowKey::ZERO; z.set_in_port(PORT); z });
        } else {
            let et = u16::from_be_bytes([bytes[12], bytes[13]]);
            if et < 0x600 {
                prop_assert_eq!(k.eth_type(), ETH_TYPE_NONE);
            }
        }
        if let Some(outer) = extract_vxlan(&bytes) {
            prop_assert!(outer.inner_offset + 14 <= bytes.len());
        }
    }

    /// Random bytes behind a valid Ethernet + IPv4/IPv6 prefix, so the deeper layers see
    /// garbage too.
    #[test]
    fn random_l3_never_panics(
        v6 in any::<bool>(),
        tags in 0usize..3,
        mut rest in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut frame = vec![0u8; 12];
        for _ in 0..tags {
            frame.extend_from_slice(&[0x81, 0x00, 0x00, 0x01]);
        }
        frame.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
        if let Some(b) = rest.first_mut() {
            *b = (*b & 0x0f) | if v6 { 0x60 } else { 0x40 };
        }
        frame.extend_from_slice(&rest);
        let k = extract(&frame, PORT);
        prop_assert_eq!(k.eth_type(), if v6 { 0x86dd } else { 0x0800 });
        let _ = extract_vxlan(&frame);
    }
}
