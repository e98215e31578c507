//! Any bytes as an Ethernet frame: the flow key extractor and the `wire` views.
//!
//! Input: byte 0 picks a truncation length, bytes 1..3 the in-port, the rest is the frame.
//! Checked, beyond "never panics":
//! - `extract`, `extract_into` (over a dirty key) and `extract_l2_into` agree;
//! - the key's L2 and IPv4/IPv6/ARP fields equal what the `wire` views read from the same
//!   bytes, whenever both accept the header;
//! - a truncated frame's key only drops fields (the rule of `tests/extract_oracle.rs`);
//! - `extract_vxlan`'s inner frame lies inside the frame and its outer fields match the views;
//! - every view's getters run once `new_checked` accepted it, and each `Repr` that parses
//!   emits bytes that parse back to the same `Repr`.
#![no_main]

use libfuzzer_sys::fuzz_target;

use flowtable::key::{
    extract, extract_into, extract_l2_into, extract_vxlan, FlowKey, ETH_TYPE_NONE, VLAN_PRESENT,
};
use flowtable::wire::{
    ArpPacket, ArpRepr, EtherType, EthernetPacket, EthernetRepr, IcmpPacket, IpProtocol,
    Ipv4Packet, Ipv4Repr, Ipv6ExtHeader, Ipv6FragmentHeader, Ipv6Packet, TcpPacket, UdpPacket,
    UdpRepr, VlanPacket, VlanRepr, VxlanPacket, VxlanRepr,
};
use flowtable::PortNo;

fuzz_target!(|data: &[u8]| {
    let Some((&[cut, p0, p1], frame)) = data.split_first_chunk::<3>() else {
        return;
    };
    let port = PortNo(u32::from(u16::from_le_bytes([p0, p1])));
    let k = extract(frame, port);
    assert_eq!(k.in_port(), port);
    consistent_variants(frame, port, &k);
    against_views(frame, &k);
    vxlan(frame);
    // One truncation per input (the fuzzer picks which): cheaper than all of them.
    let len = usize::from(cut).min(frame.len());
    truncation_only_drops(&frame[..len], port, &k);
});

fn consistent_variants(frame: &[u8], port: PortNo, k: &FlowKey) {
    // In place over a key full of ones: every word is rewritten.
    let mut dirty = FlowKey::EXACT;
    extract_into(frame, port, &mut dirty);
    assert_eq!(&dirty, k, "extract_into over a dirty key");
    let mut l2 = FlowKey::EXACT;
    extract_l2_into(frame, port, &mut l2);
    let mut want = FlowKey::ZERO;
    want.set_in_port(port);
    want.set_eth_dst_raw(k.eth_dst_raw());
    want.set_eth_src_raw(k.eth_src_raw());
    want.set_eth_type(k.eth_type());
    want.set_vlan_tci(k.vlan_tci());
    want.set_vlan_inner_tci(k.vlan_inner_tci());
    assert_eq!(l2, want, "extract_l2_into");
    if frame.len() < 14 {
        let mut z = FlowKey::ZERO;
        z.set_in_port(port);
        assert_eq!(k, &z, "a frame shorter than Ethernet has only in_port");
    }
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

fn truncation_only_drops(cut: &[u8], port: PortNo, full: &FlowKey) {
    let k = extract(cut, port);
    for ((name, t), (_, f)) in fields(&k).into_iter().zip(fields(full)) {
        // An IPv6 extension header cut short leaves ip_proto at its type.
        let ext = name == "ip_proto" && k.eth_type() == 0x86dd && [0, 43, 44, 60].contains(&t);
        // IPv6 fragment flags: a cut before a later fragment header leaves those of the
        // headers before it (FRAG_ANY of a first fragment header, where the whole frame has
        // FRAG_ANY | FRAG_LATER).
        let frag = name == "ip_frag" && t & !f == 0;
        assert!(
            t == f || t == 0 || ext || frag,
            "cut to {} bytes: {name} = {t:#x}, whole frame {f:#x}",
            cut.len()
        );
    }
    // eth_type is the full one, a TPID whose tag was cut, or unset.
    let et = k.eth_type();
    assert!(
        et == full.eth_type() || et == 0x8100 || et == 0x88a8 || et == 0,
        "cut to {} bytes: eth_type {et:#x}, whole frame {:#x}",
        cut.len(),
        full.eth_type()
    );
}

/// Walks the frame with the `wire` views and compares what they read with the key.
fn against_views(frame: &[u8], k: &FlowKey) {
    let Ok(eth) = EthernetPacket::new_checked(frame) else {
        assert!(frame.len() < 14);
        return;
    };
    assert_eq!(k.eth_dst(), eth.dst_addr());
    assert_eq!(k.eth_src(), eth.src_addr());
    let repr = EthernetRepr::parse(&eth).expect("a checked Ethernet header parses");
    let mut buf = [0u8; 14];
    repr.emit(&mut EthernetPacket::new_unchecked(&mut buf[..]));
    assert_eq!(buf[..], frame[..14], "Ethernet emit(parse(x)) == x");

    // Up to two tags, as the extractor parses them.
    let mut et = eth.ethertype();
    let mut rest = eth.payload();
    let tcis = [k.vlan_tci(), k.vlan_inner_tci()];
    for (i, key_tci) in tcis.into_iter().enumerate() {
        if !et.is_vlan() {
            assert_eq!(key_tci, 0, "tag {i} absent");
            break;
        }
        let Ok(tag) = VlanPacket::new_checked(rest) else {
            assert_eq!(key_tci, 0, "tag {i} truncated");
            assert_eq!(
                k.eth_type(),
                u16::from(et),
                "a truncated tag leaves its TPID"
            );
            return;
        };
        assert_eq!(key_tci, (tag.tci() & !VLAN_PRESENT) | VLAN_PRESENT);
        assert_eq!(tag.vid().get(), tag.tci() & 0x0fff);
        let _ = (tag.pcp(), tag.dei());
        let repr = VlanRepr::parse(&tag).expect("a checked tag parses");
        assert_eq!(repr.tci(), tag.tci());
        let mut buf = [0u8; 4];
        repr.emit(&mut VlanPacket::new_unchecked(&mut buf[..]));
        assert_eq!(buf[..], rest[..4], "VLAN emit(parse(x)) == x");
        et = tag.ethertype();
        rest = tag.payload();
    }
    let raw_et = u16::from(et);
    if raw_et < 0x0600 {
        assert_eq!(k.eth_type(), ETH_TYPE_NONE, "an 802.3 length");
        return;
    }
    assert_eq!(k.eth_type(), raw_et);
    match et {
        EtherType::Ipv4 => ipv4(rest, k),
        EtherType::Ipv6 => ipv6(rest, k),
        EtherType::Arp => arp(rest, k),
        _ => {}
    }
}

fn ipv4(p: &[u8], k: &FlowKey) {
    let Ok(ip) = Ipv4Packet::new_checked(p) else {
        return;
    };
    let _ = (ip.ident(), ip.checksum(), ip.checksum_valid(), ip.options());
    let (_, _) = (ip.dscp(), ip.ecn());
    if ip.version() != 4 {
        assert_eq!(k.ip_src(), 0, "not version 4: no L3 fields");
        return;
    }
    // The view accepted it, so the extractor's rule (IHL >= 5 and inside the frame) holds.
    assert_eq!(k.ip_src(), u32::from(ip.src_addr()));
    assert_eq!(k.ip_dst(), u32::from(ip.dst_addr()));
    assert_eq!(k.ip_ttl(), ip.ttl());
    assert_eq!(k.ip_tos(), ip.tos());
    assert_eq!(k.ip_proto(), u8::from(ip.protocol()));
    assert_eq!(k.ip_frag() != 0, ip.is_fragment());
    match Ipv4Repr::parse(&ip) {
        Ok(repr) => {
            let mut buf = [0u8; 20];
            let mut out = Ipv4Packet::new_unchecked(&mut buf[..]);
            repr.emit(&mut out);
            let back = Ipv4Packet::new_checked(&buf[..]);
            // A packet longer than its header is not whole in `buf`: re-check the header only.
            let back = back.unwrap_or_else(|_| Ipv4Packet::new_unchecked(&buf[..]));
            assert!(back.checksum_valid());
            assert_eq!(back.src_addr(), repr.src_addr);
            assert_eq!(back.dst_addr(), repr.dst_addr);
            assert_eq!(back.total_len(), u16::try_from(repr.buffer_len()).unwrap());
        }
        Err(_) => assert!(ip.is_fragment()),
    }
    if ip.is_fragment() && ip.frag_offset() != 0 {
        assert_eq!(
            (k.tp_src(), k.tp_dst()),
            (0, 0),
            "a later fragment has no L4"
        );
        return;
    }
    l4(ip.protocol(), IpProtocol::Icmp, ip.payload(), k);
}

fn ipv6(p: &[u8], k: &FlowKey) {
    let Ok(ip) = Ipv6Packet::new_checked(p) else {
        return;
    };
    let _ = (ip.flow_label(), ip.payload_len());
    if ip.version() != 6 {
        assert_eq!(k.ipv6_src(), 0, "not version 6: no L3 fields");
        return;
    }
    assert_eq!(k.ipv6_src(), u128::from(ip.src_addr()));
    assert_eq!(k.ipv6_dst(), u128::from(ip.dst_addr()));
    assert_eq!(k.ip_ttl(), ip.hop_limit());
    assert_eq!(k.ip_tos(), ip.traffic_class());
    // The extension walk, with the views.
    let mut nh = ip.next_header();
    let mut rest = ip.payload();
    let mut later = false;
    for _ in 0..8 {
        match u8::from(nh) {
            0 | 43 | 60 => {
                let Ok(e) = Ipv6ExtHeader::new_checked(rest) else {
                    break;
                };
                nh = e.next_header();
                rest = e.payload();
            }
            44 => {
                let Ok(f) = Ipv6FragmentHeader::new_checked(rest) else {
                    break;
                };
                let _ = (f.more_frags(), f.ident());
                nh = f.next_header();
                if f.frag_offset() != 0 {
                    // A later fragment: the rest is fragment data.
                    later = true;
                    break;
                }
                // The view has no payload accessor: the header is 8 bytes.
                rest = &rest[8..];
            }
            _ => break,
        }
    }
    assert_eq!(
        k.ip_proto(),
        u8::from(nh),
        "ip_proto after the extension walk"
    );
    if later {
        assert_eq!(
            (k.tp_src(), k.tp_dst()),
            (0, 0),
            "a later fragment has no L4"
        );
    } else {
        l4(nh, IpProtocol::Icmpv6, rest, k);
    }
}

/// Compares the key's ports with the L4 view, where the view accepts the header: then the
/// extractor, whose rules are the views' or looser, has set them.
fn l4(proto: IpProtocol, icmp: IpProtocol, p: &[u8], k: &FlowKey) {
    let (src, dst) = (k.tp_src(), k.tp_dst());
    match proto {
        IpProtocol::Tcp => {
            if let Ok(t) = TcpPacket::new_checked(p) {
                let _ = (t.seq_number(), t.ack_number(), t.flags(), t.window_len());
                let _ = (
                    t.syn(),
                    t.ack(),
                    t.fin(),
                    t.rst(),
                    t.checksum(),
                    t.urgent_at(),
                );
                let _ = (t.options(), t.payload());
                assert_eq!((src, dst), (t.src_port(), t.dst_port()));
            }
        }
        IpProtocol::Udp => {
            let Ok(u) = UdpPacket::new_checked(p) else {
                return;
            };
            let _ = (u.checksum(), u.is_empty(), u.payload());
            assert_eq!((src, dst), (u.src_port(), u.dst_port()));
            let repr = UdpRepr::parse(&u).expect("a checked UDP header parses");
            let mut buf = [0u8; 8];
            repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]));
            assert_eq!(buf[..6], p[..6], "UDP emit(parse(x)) == x, checksum aside");
        }
        _ if proto == icmp => {
            if let Ok(i) = IcmpPacket::new_checked(p) {
                let _ = (
                    i.checksum(),
                    i.rest_of_header(),
                    i.echo_ident(),
                    i.echo_seq_no(),
                );
                let _ = i.payload();
                assert_eq!((src, dst), (i.msg_type().into(), i.msg_code().into()));
            }
        }
        _ => {}
    }
}

fn arp(p: &[u8], k: &FlowKey) {
    let Ok(a) = ArpPacket::new_checked(p) else {
        return;
    };
    let _ = (
        a.hardware_type(),
        a.protocol_type(),
        a.hardware_len(),
        a.protocol_len(),
    );
    match ArpRepr::parse(&a) {
        Ok(repr) => {
            let op = u16::from(a.operation());
            assert_eq!(u16::from(k.ip_proto()), if op <= 0xff { op } else { 0 });
            assert_eq!(k.ip_src(), u32::from(repr.source_protocol_addr));
            assert_eq!(k.ip_dst(), u32::from(repr.target_protocol_addr));
            assert_eq!(
                k.arp_sha_raw(),
                flowtable::MacAddr::to_u64(repr.source_hardware_addr)
            );
            assert_eq!(
                k.arp_tha_raw(),
                flowtable::MacAddr::to_u64(repr.target_hardware_addr)
            );
            let mut buf = [0u8; 28];
            repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
            assert_eq!(buf[..], p[..28], "ARP emit(parse(x)) == x");
        }
        Err(_) => assert_eq!(
            (k.ip_src(), k.ip_dst(), k.arp_sha_raw()),
            (0, 0, 0),
            "an ARP packet the view refuses has no ARP fields in the key"
        ),
    }
}

fn vxlan(frame: &[u8]) {
    let Some(o) = extract_vxlan(frame) else {
        return;
    };
    let end = o
        .inner_offset
        .checked_add(o.inner_len)
        .expect("no overflow");
    assert!(end <= frame.len(), "inner frame inside the outer one");
    assert!(o.inner_len >= 14, "an inner frame has its Ethernet header");
    let _ = extract(&frame[o.inner_offset..end], PortNo(1));
    // The outer headers, with the views.
    let eth = EthernetPacket::new_checked(frame).expect("outer Ethernet");
    let (l3, l3_off) = match eth.ethertype() {
        EtherType::Ipv4 => (eth.payload(), 14),
        EtherType::Vlan => {
            let tag = VlanPacket::new_checked(eth.payload()).expect("outer tag");
            assert_eq!(tag.ethertype(), EtherType::Ipv4);
            (tag.payload(), 18)
        }
        other => panic!("VXLAN over EtherType {other}"),
    };
    let ip = Ipv4Packet::new_checked(l3).expect("outer IPv4");
    assert_eq!(ip.version(), 4);
    assert!(!ip.is_fragment());
    assert_eq!(ip.protocol(), IpProtocol::Udp);
    assert_eq!(u32::from(ip.src_addr()), o.src);
    assert_eq!(u32::from(ip.dst_addr()), o.dst);
    let ihl = usize::from(ip.header_len());
    let udp_bytes = &l3[ihl..usize::from(ip.total_len())];
    // The UDP length field is not checked by the extractor: view the 8 header bytes only.
    let udp = UdpPacket::new_unchecked(&udp_bytes[..8]);
    assert_eq!(udp.dst_port(), 4789);
    assert_eq!(udp.src_port(), o.src_port);
    let vx = VxlanPacket::new_checked(&udp_bytes[8..]).expect("VXLAN header");
    assert!(vx.i_flag());
    let _ = (vx.flags(), vx.reserved0(), vx.reserved1());
    assert_eq!(vx.vni(), o.vni);
    assert_eq!(o.inner_offset, l3_off + ihl + 16);
    assert_eq!(vx.payload().len(), o.inner_len);
    let repr = VxlanRepr::parse(&vx).expect("a VXLAN header with I parses");
    assert_eq!(repr.vni, o.vni);
}
