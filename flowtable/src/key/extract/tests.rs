//! Tests of key extraction: hand-written frames per layer, truncation at every length, and
//! cross-checks against the `wire` views.

use super::*;
use crate::key::KEY_WORDS;
use crate::types::MacAddr;
use crate::wire::{
    EtherType, EthernetPacket, IpProtocol, Ipv4Packet, TcpPacket, VlanPacket, VxlanPacket,
};

const DST: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x02];
const SRC: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x01];
const PORT: PortNo = PortNo(7);

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// An IPv4 header without options (checksum left zero: the extractor ignores it).
fn ipv4_header(proto: u8, total_len: u16, flg_off: u16) -> [u8; 20] {
    let [l0, l1] = total_len.to_be_bytes();
    let [f0, f1] = flg_off.to_be_bytes();
    [
        0x45, 0xb8, l0, l1, 0x12, 0x34, f0, f1, 0x40, proto, 0x00, 0x00, // ...
        10, 0, 0, 1, // source 10.0.0.1
        10, 0, 0, 2, // destination 10.0.0.2
    ]
}

/// An IPv6 header: traffic class 0xb8, flow label 0x12345, hop limit 64, fe80::1 ->
/// fe80::2.
fn ipv6_header(next: u8, payload_len: u16) -> [u8; 40] {
    let mut h = [0u8; 40];
    h[..4].copy_from_slice(&[0x6b, 0x81, 0x23, 0x45]);
    h[4..6].copy_from_slice(&payload_len.to_be_bytes());
    h[6] = next;
    h[7] = 64;
    h[8] = 0xfe;
    h[9] = 0x80;
    h[23] = 1;
    h[24] = 0xfe;
    h[25] = 0x80;
    h[39] = 2;
    h
}

const FE80_1: u128 = 0xfe80_0000_0000_0000_0000_0000_0000_0001;
const FE80_2: u128 = 0xfe80_0000_0000_0000_0000_0000_0000_0002;

static VLAN_IPV4_TCP: [u8; 62] = [
    // Ethernet
    0x52, 0x54, 0x00, 0x00, 0x00, 0x02, // destination
    0x52, 0x54, 0x00, 0x00, 0x00, 0x01, // source
    0x81, 0x00, // TPID 802.1Q
    // VLAN tag
    0xb0, 0x64, // PCP 5, DEI 1, VID 100
    0x08, 0x00, // EtherType IPv4
    // IPv4
    0x45, // version 4, IHL 5
    0x10, // TOS
    0x00, 0x2c, // total length 44
    0x00, 0x01, // identification
    0x40, 0x00, // DF
    0x3f, // TTL 63
    0x06, // protocol TCP
    0x00, 0x00, // checksum (not checked)
    0xc0, 0xa8, 0x01, 0x01, // source 192.168.1.1
    0xc0, 0xa8, 0x01, 0x02, // destination 192.168.1.2
    // TCP
    0xbf, 0x00, // source port 48896
    0x01, 0xbb, // destination port 443
    0x00, 0x00, 0x00, 0x01, // sequence number
    0x00, 0x00, 0x00, 0x00, // acknowledgement number
    0x50, 0x02, // data offset 5, SYN
    0xff, 0xff, // window
    0x00, 0x00, // checksum
    0x00, 0x00, // urgent pointer
    // payload
    0xde, 0xad, 0xbe, 0xef,
];

/// The key of `VLAN_IPV4_TCP` truncated to `len` bytes, by the module doc's rules.
fn vlan_ipv4_tcp_key(len: usize) -> FlowKey {
    let mut k = FlowKey::ZERO;
    k.set_in_port(PORT);
    if len < 14 {
        return k;
    }
    k.set_eth_dst(MacAddr(DST));
    k.set_eth_src(MacAddr(SRC));
    k.set_eth_type(0x8100);
    if len < 18 {
        return k;
    }
    k.set_vlan_tci(0xa064 | VLAN_PRESENT); // DEI dropped, present bit set
    k.set_eth_type(0x0800);
    if len < 38 {
        return k;
    }
    k.set_ip_src(0xc0a8_0101);
    k.set_ip_dst(0xc0a8_0102);
    k.set_ip_proto(6);
    k.set_ip_tos(0x10);
    k.set_ip_ttl(63);
    if len < 58 {
        return k;
    }
    k.set_tp_src(48896);
    k.set_tp_dst(443);
    k
}

#[test]
fn vlan_ipv4_tcp_matches_wire_views() {
    let k = extract(&VLAN_IPV4_TCP, PORT);
    assert_eq!(k, vlan_ipv4_tcp_key(VLAN_IPV4_TCP.len()));

    // The same fields through the wire views.
    let eth = EthernetPacket::new_checked(&VLAN_IPV4_TCP[..]).unwrap();
    assert_eq!(eth.ethertype(), EtherType::Vlan);
    assert_eq!(k.eth_dst(), eth.dst_addr());
    assert_eq!(k.eth_src(), eth.src_addr());
    let vlan = VlanPacket::new_checked(eth.payload()).unwrap();
    assert_eq!(k.vlan_vid(), Some(vlan.vid().get()));
    assert_eq!(k.vlan_tci() >> 13, u16::from(vlan.pcp()));
    assert_eq!(vlan.ethertype(), EtherType::Ipv4);
    assert_eq!(k.eth_type(), u16::from(vlan.ethertype()));
    let ip = Ipv4Packet::new_checked(vlan.payload()).unwrap();
    assert_eq!(k.ip_src(), u32::from(ip.src_addr()));
    assert_eq!(k.ip_dst(), u32::from(ip.dst_addr()));
    assert_eq!(ip.protocol(), IpProtocol::Tcp);
    assert_eq!((k.ip_tos(), k.ip_ttl()), (ip.tos(), ip.ttl()));
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!((k.tp_src(), k.tp_dst()), (tcp.src_port(), tcp.dst_port()));
}

#[test]
fn every_truncation_keeps_what_parsed() {
    for len in 0..=VLAN_IPV4_TCP.len() {
        assert_eq!(
            extract(&VLAN_IPV4_TCP[..len], PORT),
            vlan_ipv4_tcp_key(len),
            "truncated to {len} bytes"
        );
    }
}

#[test]
fn untagged_ipv4_udp() {
    let frame = cat(&[
        &DST,
        &SRC,
        &[0x08, 0x00],
        &ipv4_header(17, 28, 0x4000),
        &[0x30, 0x39, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00], // UDP 12345 -> 53
    ]);
    let k = extract(&frame, PORT);
    assert_eq!(k.in_port(), PORT);
    assert_eq!((k.vlan_tci(), k.vlan_inner_tci()), (0, 0));
    assert_eq!(k.eth_type(), 0x0800);
    assert_eq!((k.ip_src(), k.ip_dst()), (0x0a00_0001, 0x0a00_0002));
    assert_eq!((k.ip_proto(), k.ip_tos(), k.ip_ttl()), (17, 0xb8, 64));
    assert_eq!(k.ip_frag(), 0);
    assert_eq!((k.tp_src(), k.tp_dst()), (12345, 53));
    assert_eq!((k.ipv6_src(), k.ipv6_dst()), (0, 0));
}

#[test]
fn qinq_ipv6_udp() {
    let frame = cat(&[
        &DST,
        &SRC,
        &[0x88, 0xa8],             // TPID 802.1ad
        &[0x20, 0x0a, 0x81, 0x00], // PCP 1, VID 10; TPID 802.1Q
        &[0xf1, 0x2c, 0x86, 0xdd], // PCP 7, DEI, VID 300; IPv6
        &ipv6_header(17, 8),
        &[0x00, 0x44, 0x00, 0x43, 0x00, 0x08, 0x00, 0x00], // UDP 68 -> 67
    ]);
    let k = extract(&frame, PORT);
    assert_eq!(k.vlan_tci(), 0x200a | VLAN_PRESENT);
    assert_eq!(k.vlan_inner_tci(), 0xe12c | VLAN_PRESENT);
    assert_eq!(k.eth_type(), 0x86dd);
    assert_eq!((k.ipv6_src(), k.ipv6_dst()), (FE80_1, FE80_2));
    assert_eq!((k.ip_proto(), k.ip_tos(), k.ip_ttl()), (17, 0xb8, 64));
    assert_eq!((k.ip_src(), k.ip_dst()), (0, 0));
    assert_eq!((k.tp_src(), k.tp_dst()), (68, 67));
}

#[test]
fn third_tag_is_not_parsed() {
    let frame = cat(&[
        &DST,
        &SRC,
        &[0x88, 0xa8, 0x00, 0x01, 0x81, 0x00, 0x00, 0x02, 0x81, 0x00], // two tags, a third TPID
        &[0x00, 0x03, 0x08, 0x00],
        &ipv4_header(17, 28, 0),
        &[0; 8],
    ]);
    let k = extract(&frame, PORT);
    assert_eq!(k.vlan_tci(), 1 | VLAN_PRESENT);
    assert_eq!(k.vlan_inner_tci(), 2 | VLAN_PRESENT);
    assert_eq!(k.eth_type(), 0x8100);
    assert_eq!((k.ip_src(), k.ip_proto()), (0, 0));
}

#[test]
fn other_tpids_are_not_tags() {
    let frame = cat(&[&DST, &SRC, &[0x91, 0x00, 0x00, 0x01, 0x08, 0x00]]);
    let k = extract(&frame, PORT);
    assert_eq!((k.vlan_tci(), k.eth_type()), (0, 0x9100));
}

#[test]
fn ieee_802_3_length_frame() {
    // 802.3 with LLC (STP BPDU): the type field is a length.
    let frame = cat(&[&DST, &SRC, &[0x00, 0x26, 0x42, 0x42, 0x03], &[0; 35]]);
    let k = extract(&frame, PORT);
    assert_eq!(k.eth_type(), ETH_TYPE_NONE);
    assert_eq!(k.eth_src(), MacAddr(SRC));
    // Tagged too.
    let frame = cat(&[&DST, &SRC, &[0x81, 0x00, 0x00, 0x05, 0x05, 0xff], &[0; 8]]);
    let k = extract(&frame, PORT);
    assert_eq!((k.vlan_vid(), k.eth_type()), (Some(5), ETH_TYPE_NONE));
    // 0x0600 is the first EtherType.
    let frame = cat(&[&DST, &SRC, &[0x06, 0x00]]);
    assert_eq!(extract(&frame, PORT).eth_type(), 0x0600);
}

static ARP_REQUEST: [u8; 42] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination broadcast
    0x52, 0x54, 0x00, 0x00, 0x00, 0x01, // source
    0x08, 0x06, // EtherType ARP
    0x00, 0x01, // hardware type Ethernet
    0x08, 0x00, // protocol type IPv4
    0x06, 0x04, // lengths
    0x00, 0x01, // operation: request
    0x52, 0x54, 0x00, 0x00, 0x00, 0x01, // sender hardware address
    0x0a, 0x00, 0x00, 0x01, // sender protocol address
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target hardware address
    0x0a, 0x00, 0x00, 0x02, // target protocol address
];

#[test]
fn arp() {
    let k = extract(&ARP_REQUEST, PORT);
    assert_eq!(k.eth_dst(), MacAddr::BROADCAST);
    assert_eq!(k.eth_type(), 0x0806);
    assert_eq!(k.ip_proto(), 1);
    assert_eq!((k.ip_src(), k.ip_dst()), (0x0a00_0001, 0x0a00_0002));
    assert_eq!(k.arp_sha_raw(), MacAddr(SRC).to_u64());
    assert_eq!(k.arp_tha_raw(), 0);
    assert_eq!((k.tp_src(), k.tp_dst(), k.ip_ttl()), (0, 0, 0));

    // An opcode above 255 is kept as 0.
    let mut frame = ARP_REQUEST;
    frame[20..22].copy_from_slice(&[0x01, 0x02]);
    let k = extract(&frame, PORT);
    assert_eq!((k.ip_proto(), k.ip_src()), (0, 0x0a00_0001));

    // Not Ethernet/IPv4, or truncated: only the Ethernet fields.
    let mut frame = ARP_REQUEST;
    frame[18] = 8;
    let eth_only = {
        let mut k = FlowKey::ZERO;
        k.set_in_port(PORT);
        k.set_eth_dst(MacAddr::BROADCAST);
        k.set_eth_src(MacAddr(SRC));
        k.set_eth_type(0x0806);
        k
    };
    assert_eq!(extract(&frame, PORT), eth_only);
    assert_eq!(extract(&ARP_REQUEST[..41], PORT), eth_only);
}

fn ipv4_udp_frame(flg_off: u16) -> Vec<u8> {
    cat(&[
        &DST,
        &SRC,
        &[0x08, 0x00],
        &ipv4_header(17, 28, flg_off),
        &[0x30, 0x39, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00],
    ])
}

#[test]
fn ipv4_fragments() {
    // First fragment: MF set, offset 0. Ports are there.
    let k = extract(&ipv4_udp_frame(0x2000), PORT);
    assert_eq!(k.ip_frag(), FRAG_ANY);
    assert_eq!((k.tp_src(), k.tp_dst()), (12345, 53));
    // Later fragment (offset 185 * 8, MF clear): no ports.
    let k = extract(&ipv4_udp_frame(0x00b9), PORT);
    assert_eq!(k.ip_frag(), FRAG_ANY | FRAG_LATER);
    assert_eq!((k.ip_proto(), k.ip_src()), (17, 0x0a00_0001));
    assert_eq!((k.tp_src(), k.tp_dst()), (0, 0));
    // DF alone is not a fragment.
    assert_eq!(extract(&ipv4_udp_frame(0x4000), PORT).ip_frag(), 0);
}

#[test]
fn ipv4_bounds() {
    // Total length shorter than IP + UDP: no ports.
    let mut frame = ipv4_udp_frame(0);
    frame[16..18].copy_from_slice(&27u16.to_be_bytes());
    let k = extract(&frame, PORT);
    assert_eq!((k.ip_proto(), k.tp_src()), (17, 0));
    // Total length below the IHL: IP fields, no ports.
    frame[16..18].copy_from_slice(&10u16.to_be_bytes());
    let k = extract(&frame, PORT);
    assert_eq!((k.ip_dst(), k.tp_src()), (0x0a00_0002, 0));
    // Total length above the frame: bounded by the frame.
    frame[16..18].copy_from_slice(&1500u16.to_be_bytes());
    assert_eq!(extract(&frame, PORT).tp_dst(), 53);
    // Trailing padding after the total length is not L4.
    let mut frame = ipv4_udp_frame(0);
    frame[16..18].copy_from_slice(&20u16.to_be_bytes());
    assert_eq!(extract(&frame, PORT).tp_src(), 0);
}

#[test]
fn ipv4_bad_headers_stop_after_eth_type() {
    for (byte, value) in [(14, 0x65), (14, 0x44), (14, 0x4f)] {
        let mut frame = ipv4_udp_frame(0);
        frame[byte] = value;
        let k = extract(&frame, PORT);
        assert_eq!(k.eth_type(), 0x0800);
        assert_eq!(
            (k.ip_src(), k.ip_proto(), k.ip_ttl(), k.tp_src()),
            (0, 0, 0, 0)
        );
    }
}

#[test]
fn ipv4_options_and_tcp_data_offset() {
    let mut ip = ipv4_header(6, 44, 0);
    ip[0] = 0x46; // IHL 6: one option word
    let tcp = |doff: u8| {
        [
            0x00,
            0x16,
            0x04,
            0x00,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            doff << 4,
            0x10,
            0,
            0,
            0,
            0,
            0,
            0,
        ]
    };
    let frame = cat(&[&DST, &SRC, &[0x08, 0x00], &ip, &[1, 1, 0, 0], &tcp(5)]);
    let k = extract(&frame, PORT);
    assert_eq!((k.tp_src(), k.tp_dst()), (22, 1024));
    // A data offset below 5 words, or past the segment: no ports.
    for doff in [4, 6] {
        let frame = cat(&[&DST, &SRC, &[0x08, 0x00], &ip, &[1, 1, 0, 0], &tcp(doff)]);
        let k = extract(&frame, PORT);
        assert_eq!(
            (k.ip_proto(), k.tp_src(), k.tp_dst()),
            (6, 0, 0),
            "doff {doff}"
        );
    }
}

#[test]
fn icmp_and_sctp() {
    let frame = cat(&[
        &DST,
        &SRC,
        &[0x08, 0x00],
        &ipv4_header(1, 28, 0),
        &[0x03, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // destination host unreachable
    ]);
    let k = extract(&frame, PORT);
    assert_eq!((k.ip_proto(), k.tp_src(), k.tp_dst()), (1, 3, 1));
    // ICMP truncated below 8 bytes: no type/code.
    assert_eq!(extract(&frame[..frame.len() - 1], PORT).tp_src(), 0);

    let frame = cat(&[
        &DST,
        &SRC,
        &[0x08, 0x00],
        &ipv4_header(132, 32, 0),
        &[0x0b, 0x59, 0x0b, 0x5a, 0, 0, 0, 1, 0, 0, 0, 0], // SCTP 2905 -> 2906
    ]);
    let k = extract(&frame, PORT);
    assert_eq!((k.ip_proto(), k.tp_src(), k.tp_dst()), (132, 2905, 2906));
}

#[test]
fn icmpv6() {
    let frame = cat(&[
        &DST,
        &SRC,
        &[0x86, 0xdd],
        &ipv6_header(58, 8),
        &[0x80, 0x00, 0x12, 0x34, 0x00, 0x01, 0x00, 0x01], // echo request
    ]);
    let k = extract(&frame, PORT);
    assert_eq!((k.ip_proto(), k.tp_src(), k.tp_dst()), (58, 128, 0));
    // ICMP (1) over IPv6 is not ICMPv6: no type/code.
    let mut frame = frame;
    frame[20] = 1;
    let k = extract(&frame, PORT);
    assert_eq!((k.ip_proto(), k.tp_src()), (1, 0));
}

/// Hop-by-hop (8 bytes, PadN), fragment header with `off_m`, UDP 5353 -> 5353.
fn ipv6_fragment_frame(off_m: u16) -> Vec<u8> {
    let [o0, o1] = off_m.to_be_bytes();
    cat(&[
        &DST,
        &SRC,
        &[0x86, 0xdd],
        &ipv6_header(0, 24),
        &[44, 0, 0x01, 0x04, 0, 0, 0, 0], // hop-by-hop: next fragment
        &[17, 0, o0, o1, 0xde, 0xad, 0xbe, 0xef], // fragment: next UDP
        &[0x14, 0xe9, 0x14, 0xe9, 0x00, 0x08, 0x00, 0x00], // UDP
    ])
}

#[test]
fn ipv6_fragment_extension_header() {
    // First fragment (M set): ports, FRAG_ANY.
    let k = extract(&ipv6_fragment_frame(0x0001), PORT);
    assert_eq!((k.ip_proto(), k.ip_frag()), (17, FRAG_ANY));
    assert_eq!((k.tp_src(), k.tp_dst()), (5353, 5353));
    // Later fragment (offset 1448): no ports.
    let k = extract(&ipv6_fragment_frame(0x05a8), PORT);
    assert_eq!((k.ip_proto(), k.ip_frag()), (17, FRAG_ANY | FRAG_LATER));
    assert_eq!((k.tp_src(), k.tp_dst()), (0, 0));
    assert_eq!((k.ipv6_src(), k.ip_ttl()), (FE80_1, 64));
    // Atomic fragment (offset 0, M clear) is not a fragment (RFC 6946).
    let k = extract(&ipv6_fragment_frame(0), PORT);
    assert_eq!((k.ip_frag(), k.tp_src()), (0, 5353));
}

/// Found by the `frame_key` fuzz target: a later fragment whose data starts like a
/// second fragment header (offset 0, M set) and a UDP header. The walk used to go on into
/// the data: the second header cleared FRAG_LATER and the "UDP ports" reached the key, so
/// a rule on ports could match a later fragment. The data is not headers; the walk stops.
#[test]
fn ipv6_later_fragment_ends_the_walk() {
    let frame = cat(&[
        &DST,
        &SRC,
        &[0x86, 0xdd],
        &ipv6_header(44, 24),
        &[44, 0, 0x05, 0xa8, 0, 0, 0, 1], // fragment, offset 1448: next "fragment"
        &[17, 0, 0x00, 0x01, 0, 0, 0, 2], // fragment data: offset 0, M, next UDP
        &[0x00, 0x35, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00], // fragment data: "UDP 53"
    ]);
    let k = extract(&frame, PORT);
    assert_eq!(k.ip_frag(), FRAG_ANY | FRAG_LATER);
    assert_eq!(k.ip_proto(), 44, "the later fragment's next header");
    assert_eq!((k.tp_src(), k.tp_dst()), (0, 0));
}

#[test]
fn ipv6_extension_walk_is_bounded() {
    // Routing and destination options headers, then UDP: skipped.
    let frame = cat(&[
        &DST,
        &SRC,
        &[0x86, 0xdd],
        &ipv6_header(43, 40),
        &[60, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // routing, 16 bytes
        &[17, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // dst options, 16 bytes
        &[0x00, 0x01, 0x00, 0x02, 0x00, 0x08, 0x00, 0x00],
    ]);
    let k = extract(&frame, PORT);
    assert_eq!((k.ip_proto(), k.tp_src(), k.tp_dst()), (17, 1, 2));

    // Nine destination options headers: the walk stops after eight.
    let mut parts: Vec<Vec<u8>> = vec![
        cat(&[&DST, &SRC, &[0x86, 0xdd]]),
        ipv6_header(60, 9 * 8 + 8).to_vec(),
    ];
    for i in 0..9 {
        parts.push(vec![if i == 8 { 17 } else { 60 }, 0, 0, 0, 0, 0, 0, 0]);
    }
    parts.push(vec![0x00, 0x01, 0x00, 0x02, 0x00, 0x08, 0x00, 0x00]);
    let frame = parts.concat();
    let k = extract(&frame, PORT);
    assert_eq!((k.ip_proto(), k.tp_src()), (60, 0));
    assert_eq!(k.ipv6_dst(), FE80_2);

    // An extension header longer than the payload length: stops there.
    let mut frame = ipv6_fragment_frame(1);
    frame[14 + 40 + 1] = 200; // hop-by-hop claims 1608 bytes
    let k = extract(&frame, PORT);
    assert_eq!((k.ip_proto(), k.ip_frag(), k.tp_src()), (0, 0, 0));
}

#[test]
fn ipv6_payload_length_bounds_l4() {
    let frame = cat(&[
        &DST,
        &SRC,
        &[0x86, 0xdd],
        &ipv6_header(17, 7), // one byte short of the UDP header
        &[0x00, 0x01, 0x00, 0x02, 0x00, 0x08, 0x00, 0x00],
    ]);
    let k = extract(&frame, PORT);
    assert_eq!((k.ip_proto(), k.tp_src()), (17, 0));
    // Wrong version: only the Ethernet fields.
    let mut frame = frame;
    frame[14] = 0x4b;
    let k = extract(&frame, PORT);
    assert_eq!((k.eth_type(), k.ipv6_src(), k.ip_proto()), (0x86dd, 0, 0));
}

#[test]
fn garbage_never_panics() {
    // Every short prefix of every header shape, and an all-ones / all-zeros frame.
    let frames = [
        VLAN_IPV4_TCP.to_vec(),
        ARP_REQUEST.to_vec(),
        ipv6_fragment_frame(1),
        vec![0xff; 128],
        vec![0; 128],
    ];
    for f in &frames {
        for len in 0..=f.len() {
            let k = extract(&f[..len], PORT);
            assert_eq!(k.in_port(), PORT);
            let _ = extract_vxlan(&f[..len]);
        }
    }
    assert_eq!(extract(&[], PORT).words()[1..], [0; KEY_WORDS - 1]);
}

// VXLAN

static VXLAN_FRAME: [u8; 64] = [
    // outer Ethernet
    0x52, 0x54, 0x00, 0x00, 0x00, 0x02, // destination
    0x52, 0x54, 0x00, 0x00, 0x00, 0x01, // source
    0x08, 0x00, // EtherType IPv4
    // outer IPv4
    0x45, 0x00, // version 4, IHL 5, TOS 0
    0x00, 0x32, // total length 50
    0x00, 0x00, 0x40, 0x00, // identification, DF
    0x40, 0x11, 0x00, 0x00, // TTL 64, UDP, checksum
    0xc0, 0x00, 0x02, 0x01, // source 192.0.2.1
    0xc0, 0x00, 0x02, 0x02, // destination 192.0.2.2
    // outer UDP
    0xd4, 0x31, // source port 54321
    0x12, 0xb5, // destination port 4789
    0x00, 0x1e, // length 30
    0x00, 0x00, // checksum: none
    // VXLAN
    0x08, 0x00, 0x00, 0x00, // flags I, reserved
    0x00, 0x10, 0x01, 0x00, // VNI 4097, reserved
    // inner Ethernet (14 bytes)
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // destination
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source
    0x08, 0x06, // EtherType ARP
];

fn vxlan_outer(inner_offset: usize) -> VxlanOuter {
    VxlanOuter {
        vni: Vni::new(4097).unwrap(),
        src: 0xc000_0201,
        dst: 0xc000_0202,
        src_port: 54321,
        inner_offset,
        inner_len: 14,
    }
}

#[test]
fn vxlan_untagged() {
    let outer = extract_vxlan(&VXLAN_FRAME).unwrap();
    assert_eq!(outer, vxlan_outer(50));
    // Same as the wire view.
    let vx = VxlanPacket::new_checked(&VXLAN_FRAME[42..]).unwrap();
    assert_eq!(outer.vni, vx.vni());
    assert_eq!(&VXLAN_FRAME[outer.inner_offset..], vx.payload());
    assert_eq!(outer.inner_len, VXLAN_FRAME.len() - outer.inner_offset);
    // The inner frame's key.
    let k = extract(&VXLAN_FRAME[outer.inner_offset..], PORT);
    assert_eq!(
        (k.eth_type(), k.eth_src()),
        (0x0806, MacAddr([2, 0, 0, 0, 0, 1]))
    );
    // A plain extract of the outer frame sees UDP to 4789.
    let k = extract(&VXLAN_FRAME, PORT);
    assert_eq!((k.ip_proto(), k.tp_src(), k.tp_dst()), (17, 54321, 4789));
}

#[test]
fn vxlan_tagged() {
    let frame = cat(&[
        &VXLAN_FRAME[..12],
        &[0x81, 0x00, 0x00, 0x64], // 802.1Q, VID 100
        &VXLAN_FRAME[12..],
    ]);
    assert_eq!(extract_vxlan(&frame), Some(vxlan_outer(54)));
    // Not with an 802.1ad tag, nor two tags.
    let mut frame = frame;
    frame[12..14].copy_from_slice(&[0x88, 0xa8]);
    assert_eq!(extract_vxlan(&frame), None);
    let frame = cat(&[
        &VXLAN_FRAME[..12],
        &[0x81, 0x00, 0x00, 0x64, 0x81, 0x00, 0x00, 0x65],
        &VXLAN_FRAME[12..],
    ]);
    assert_eq!(extract_vxlan(&frame), None);
}

#[test]
fn vxlan_rejects() {
    let with = |at: usize, bytes: &[u8]| {
        let mut f = VXLAN_FRAME;
        f[at..at + bytes.len()].copy_from_slice(bytes);
        extract_vxlan(&f)
    };
    assert_eq!(with(12, &[0x86, 0xdd]), None); // not IPv4
    assert_eq!(with(14, &[0x44]), None); // IHL 4
    assert_eq!(with(14, &[0x65]), None); // version 6
    assert_eq!(with(20, &[0x20, 0x00]), None); // MF
    assert_eq!(with(20, &[0x00, 0x01]), None); // later fragment
    assert_eq!(with(23, &[6]), None); // TCP
    assert_eq!(with(36, &[0x12, 0xb6]), None); // port 4790
    assert_eq!(with(42, &[0x00]), None); // I flag clear
    assert_eq!(with(16, &[0x00, 0x33]), None); // total length past the frame
    assert_eq!(with(16, &[0x00, 0x31]), None); // 13 bytes of inner frame
    assert_eq!(with(16, &[0x00, 0x10]), None); // total length < IHL + UDP
    assert_eq!(with(16, &[0x00, 0x05]), None); // total length < IHL
                                               // Other flags and reserved bits are ignored.
    assert_eq!(with(42, &[0xff, 0xff]), Some(vxlan_outer(50)));
    // Every truncation.
    for len in 0..VXLAN_FRAME.len() {
        assert_eq!(extract_vxlan(&VXLAN_FRAME[..len]), None, "len {len}");
    }
    // IPv4 options move the inner frame.
    let frame = cat(&[
        &VXLAN_FRAME[..14],
        &[0x46, 0x00, 0x00, 0x36],
        &VXLAN_FRAME[18..34],
        &[0x01, 0x01, 0x01, 0x00], // options: NOP NOP NOP EOL
        &VXLAN_FRAME[34..],
    ]);
    assert_eq!(extract_vxlan(&frame), Some(vxlan_outer(54)));
}

#[test]
fn vxlan_inner_len_stops_at_total_length() {
    // Trailing bytes (padding, a trailer) after the outer IPv4 packet are not inner frame.
    let frame = cat(&[&VXLAN_FRAME, &[0xee; 10]]);
    let outer = extract_vxlan(&frame).unwrap();
    assert_eq!(outer, vxlan_outer(50));
    assert_eq!(outer.inner_offset + outer.inner_len, VXLAN_FRAME.len());
}
