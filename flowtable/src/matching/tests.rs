//! Tests of matches: each field's text syntax and canonical rendering, the errors of refused
//! values and texts, prerequisites, and matching keys.

use super::*;
use crate::types::MacAddr;

fn m(text: &str) -> Match {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn set_err(field: Field, text: &str) -> String {
    Match::any().set(field, text).unwrap_err().to_string()
}

fn parse_err(text: &str) -> String {
    text.parse::<Match>().unwrap_err().to_string()
}

fn prereq_err(text: &str) -> String {
    m(text).check_prerequisites().unwrap_err().to_string()
}

/// Parses, checks the canonical rendering, and checks that it parses back equal.
fn canon(text: &str, expect: &str) {
    let a = m(text);
    assert_eq!(a.to_string(), expect, "{text}");
    assert_eq!(m(expect), a, "{expect}");
}

#[test]
fn field_names_round_trip() {
    for &f in Field::ALL {
        assert_eq!(Field::from_name(f.name()), Some(f));
        assert_eq!(f.to_string(), f.name());
    }
    assert_eq!(Field::ALL.len(), 27);
    assert_eq!(Field::from_name("nw_dst"), Some(Field::IpDst));
    assert_eq!(Field::from_name("dl_type"), Some(Field::EthType));
    assert_eq!(Field::from_name("ip_dest"), None);
}

#[test]
fn any_and_from_parts() {
    assert_eq!(Match::any().to_string(), "any");
    assert_eq!(m("any"), Match::any());
    assert_eq!(m("  any "), Match::any());
    assert!(Match::any().is_any());
    assert!(Match::any().matches(&FlowKey::EXACT));
    let mut v = FlowKey::ZERO;
    v.set_ip_dst(0x0a00_00ff);
    let mut mask = FlowKey::ZERO;
    mask.set_ip_dst(0xffff_ff00);
    let x = Match::from_parts(v, mask);
    assert_eq!(x.value().ip_dst(), 0x0a00_0000);
    assert_eq!(x.mask(), &mask);
    assert!(x.matches(&v));
}

#[test]
fn in_port() {
    let a = m("in_port=7");
    let mut b = Match::any();
    b.set_in_port(PortNo(7));
    assert_eq!(a, b);
    canon("in_port=7", "in_port=7");
}

#[test]
fn ethernet() {
    let a = m("eth_src=52:54:00:12:34:56,eth_dst=01:00:5e:00:00:00/ff:ff:ff:80:00:00");
    assert_eq!(
        a.value().eth_src(),
        "52:54:00:12:34:56".parse::<MacAddr>().unwrap()
    );
    assert_eq!(a.mask().eth_src_raw(), 0xffff_ffff_ffff);
    assert_eq!(a.mask().eth_dst_raw(), 0xffff_ff80_0000);
    canon(
        "eth_dst=01:00:5e:7f:00:01/ff:ff:ff:80:00:00,eth_src=52:54:00:12:34:56",
        "eth_src=52:54:00:12:34:56,eth_dst=01:00:5e:00:00:00/ff:ff:ff:80:00:00",
    );
    for (t, et) in [
        ("0x0800", 0x0800),
        ("2048", 0x0800),
        ("ipv4", 0x0800),
        ("ip", 0x0800),
        ("ipv6", 0x86dd),
        ("arp", 0x0806),
    ] {
        let a = m(&format!("eth_type={t}"));
        assert_eq!(a.value().eth_type(), et);
        assert_eq!(a.mask().eth_type(), 0xffff);
    }
    canon("eth_type=ipv6", "eth_type=0x86dd");
}

#[test]
fn vlan() {
    let a = m("vlan_vid=100");
    assert_eq!(a.value().vlan_tci(), VLAN_PRESENT | 100);
    assert_eq!(a.mask().vlan_tci(), VLAN_PRESENT | 0x0fff);
    let a = m("vlan_vid=none");
    assert_eq!(
        (a.value().vlan_tci(), a.mask().vlan_tci()),
        (0, VLAN_PRESENT)
    );
    let a = m("vlan_vid=any");
    assert_eq!(
        (a.value().vlan_tci(), a.mask().vlan_tci()),
        (VLAN_PRESENT, VLAN_PRESENT)
    );
    let a = m("vlan_pcp=5");
    assert_eq!(
        (a.value().vlan_tci(), a.mask().vlan_tci()),
        (VLAN_PRESENT | 5 << 13, VLAN_PRESENT | 0xe000)
    );
    canon("vlan_vid=0", "vlan_vid=0");
    canon("vlan_vid=none", "vlan_vid=none");
    canon("vlan_vid=any", "vlan_vid=any");
    canon("vlan_pcp=5", "vlan_pcp=5");
    canon("vlan_pcp=5,vlan_vid=10", "vlan_vid=10,vlan_pcp=5");
    canon("vlan_pcp=5,vlan_vid=any", "vlan_pcp=5");
    canon("vlan_vid=0x100/0xf00", "vlan_vid=0x100/0xf00");
    // Overwrites: none clears the priority; a later VID keeps it.
    canon("vlan_pcp=5,vlan_vid=none", "vlan_vid=none");
    canon("vlan_vid=none,vlan_pcp=5", "vlan_pcp=5");
    canon("vlan_vid=7,vlan_vid=8", "vlan_vid=8");
    canon("vlan_vid=7,vlan_vid=any", "vlan_vid=any");

    let mut key = FlowKey::ZERO;
    assert!(m("vlan_vid=none").matches(&key));
    assert!(!m("vlan_vid=any").matches(&key));
    key.set_vlan_tci(VLAN_PRESENT | 3 << 13 | 100);
    assert!(m("vlan_vid=100").matches(&key));
    assert!(m("vlan_vid=any").matches(&key));
    assert!(m("vlan_pcp=3").matches(&key));
    assert!(!m("vlan_vid=none").matches(&key));
    assert!(!m("vlan_vid=101").matches(&key));
}

#[test]
fn ipv4() {
    let a = m("eth_type=0x0800,ip_src=198.18.0.1,ip_dst=198.18.0.0/15");
    assert_eq!(
        (a.value().ip_src(), a.mask().ip_src()),
        (0xc612_0001, u32::MAX)
    );
    assert_eq!(
        (a.value().ip_dst(), a.mask().ip_dst()),
        (0xc612_0000, 0xfffe_0000)
    );
    assert_eq!(
        m("ip_dst=198.18.0.0/255.254.0.0"),
        m("ip_dst=198.19.1.1/15")
    );
    canon(
        "eth_type=ip,ip_dst=198.19.1.1/255.254.0.0",
        "eth_type=0x0800,ip_dst=198.18.0.0/15",
    );
    canon("ip_dst=10.1.2.3/255.0.255.0", "ip_dst=10.0.2.0/255.0.255.0");
    canon("ip_dst=10.1.2.3/0", "any");
}

#[test]
fn ipv6() {
    let a = m("eth_type=ipv6,ipv6_src=2001:db8::1,ipv6_dst=2001:db8::/32");
    assert_eq!(
        a.value().ipv6_src(),
        0x2001_0db8_0000_0000_0000_0000_0000_0001
    );
    assert_eq!(a.mask().ipv6_dst(), 0xffff_ffff_u128 << 96);
    canon("ipv6_dst=2001:db8:1::1/32", "ipv6_dst=2001:db8::/32");
}

#[test]
fn ip_fields() {
    for (t, p) in [
        ("tcp", 6),
        ("udp", 17),
        ("icmp", 1),
        ("icmpv6", 58),
        ("sctp", 132),
        ("47", 47),
        ("0x2f", 47),
    ] {
        assert_eq!(m(&format!("ip_proto={t}")).value().ip_proto(), p);
    }
    canon("eth_type=0x0800,ip_proto=tcp", "eth_type=0x0800,ip_proto=6");
    let a = m("ip_dscp=46,ip_ecn=1,ip_ttl=64");
    assert_eq!((a.value().ip_tos(), a.mask().ip_tos()), (46 << 2 | 1, 0xff));
    assert_eq!((a.value().ip_ttl(), a.mask().ip_ttl()), (64, 0xff));
    canon("ip_ecn=1,ip_dscp=46", "ip_dscp=46,ip_ecn=1");
    canon("ip_dscp=46,ip_ecn=1,ip_dscp=10", "ip_dscp=10,ip_ecn=1");
}

#[test]
fn ip_frag() {
    // (text, value, mask) as OVS nw_frag.
    for (t, v, msk) in [
        ("no", 0, FRAG_ANY),
        ("yes", FRAG_ANY, FRAG_ANY),
        ("first", FRAG_ANY, FRAG_ANY | FRAG_LATER),
        ("later", FRAG_ANY | FRAG_LATER, FRAG_ANY | FRAG_LATER),
        ("not_later", 0, FRAG_LATER),
    ] {
        let a = m(&format!("ip_frag={t}"));
        assert_eq!((a.value().ip_frag(), a.mask().ip_frag()), (v, msk), "{t}");
        canon(&format!("ip_frag={t}"), &format!("ip_frag={t}"));
    }
    let key = |f: u8| {
        let mut k = FlowKey::ZERO;
        k.set_ip_frag(f);
        k
    };
    let (whole, first, later) = (key(0), key(FRAG_ANY), key(FRAG_ANY | FRAG_LATER));
    let check = |t: &str, expect: [bool; 3]| {
        let a = m(&format!("ip_frag={t}"));
        assert_eq!(
            [a.matches(&whole), a.matches(&first), a.matches(&later)],
            expect,
            "{t}"
        );
    };
    check("no", [true, false, false]);
    check("yes", [false, true, true]);
    check("first", [false, true, false]);
    check("later", [false, false, true]);
    check("not_later", [true, true, false]);
}

#[test]
fn transport_and_icmp() {
    let a = m("tcp,tp_src=80,tp_dst=0x1000/0xf000");
    assert_eq!((a.value().tp_src(), a.mask().tp_src()), (80, 0xffff));
    assert_eq!((a.value().tp_dst(), a.mask().tp_dst()), (0x1000, 0xf000));
    canon(
        "tcp,tp_dst=0x1234/0xf000",
        "eth_type=0x0800,ip_proto=6,tp_dst=0x1000/0xf000",
    );

    let a = m("icmp,icmp_type=8,icmp_code=0");
    assert_eq!((a.value().tp_src(), a.mask().tp_src()), (8, 0xffff));
    assert_eq!((a.value().tp_dst(), a.mask().tp_dst()), (0, 0xffff));
    canon(
        "icmp,icmp_type=8,icmp_code=0",
        "eth_type=0x0800,ip_proto=1,icmp_type=8,icmp_code=0",
    );
    canon(
        "icmp6,icmp_type=135",
        "eth_type=0x86dd,ip_proto=58,icmp_type=135",
    );
    // Same bits as tp_src: named by context.
    canon("icmp,tp_src=3", "eth_type=0x0800,ip_proto=1,icmp_type=3");
    canon("tcp,icmp_type=3", "eth_type=0x0800,ip_proto=6,tp_src=3");
}

#[test]
fn arp() {
    let a = m("arp,arp_op=1,arp_spa=10.0.0.1,arp_tpa=10.0.0.0/8,arp_sha=52:54:00:00:00:01,arp_tha=00:00:00:00:00:00");
    assert_eq!(a.value().ip_proto(), 1);
    assert_eq!(a.value().ip_src(), 0x0a00_0001);
    assert_eq!(a.mask().ip_dst(), 0xff00_0000);
    assert_eq!(a.value().arp_sha_raw(), 0x5254_0000_0001);
    assert_eq!(a.mask().arp_tha_raw(), 0xffff_ffff_ffff);
    assert_eq!(
        a.to_string(),
        "eth_type=0x0806,arp_op=1,arp_spa=10.0.0.1,arp_tpa=10.0.0.0/8,arp_sha=52:54:00:00:00:01,arp_tha=00:00:00:00:00:00"
    );
    assert_eq!(m(&a.to_string()), a);
    assert!(a.check_prerequisites().is_ok());
}

#[test]
fn tunnel() {
    let a = m("tun_id=5000,tun_src=192.0.2.1,tun_dst=192.0.2.0/24");
    assert_eq!((a.value().tun_id(), a.mask().tun_id()), (5000, 0xff_ffff));
    assert_eq!(
        (a.value().tun_src(), a.mask().tun_dst()),
        (0xc000_0201, 0xffff_ff00)
    );
    canon("tun_id=0x1234/0xff00", "tun_id=0x1200/0xff00");
    canon("tun_id=0xffffff", "tun_id=16777215");
    assert!(a.check_prerequisites().is_ok());
}

#[test]
fn display_order_and_overwrite() {
    canon(
        "ip_dst=10.0.0.0/24,eth_type=0x0800,in_port=1",
        "in_port=1,eth_type=0x0800,ip_dst=10.0.0.0/24",
    );
    canon("in_port=1,in_port=2", "in_port=2");
    canon(
        " in_port = 1 , eth_type = arp ",
        "in_port=1,eth_type=0x0806",
    );
    let a = m("in_port=1,eth_type=0x0800,ip_dst=10.0.0.0/24");
    assert_eq!(
        a.fields(),
        vec![
            (Field::InPort, "1".to_string()),
            (Field::EthType, "0x0800".to_string()),
            (Field::IpDst, "10.0.0.0/24".to_string()),
        ]
    );
    assert_eq!(
        m("nw_dst=10.0.0.0/24,dl_type=0x0800"),
        m("ip_dst=10.0.0.0/24,eth_type=0x0800")
    );
    assert_eq!(m("udp6"), m("eth_type=ipv6,ip_proto=udp"));
}

/// Values `Match::set` refuses: the error names the field and the text, then says why.
#[test]
fn set_errors() {
    for (field, text, err) in [
        (Field::InPort, "vm1", "in_port: \"vm1\": expected a decimal or 0x-prefixed hex number"),
        (Field::InPort, "0x1", "in_port: \"0x1\": expected a decimal port number"),
        (Field::InPort, "4294967296", "in_port: \"4294967296\": port number must be 0..=4294967295"),
        (Field::EthSrc, "52:54:00:12:34", "eth_src: \"52:54:00:12:34\": expected a MAC address like 52:54:00:12:34:56, optionally /ff:ff:ff:00:00:00"),
        (Field::EthType, "0x10000", "eth_type: \"0x10000\": eth_type must be 0..=65535"),
        (Field::EthType, "ipx", "eth_type: \"ipx\": expected a number 0..=0xffff or ipv4, ip, ipv6, arp"),
        (Field::VlanVid, "5000", "vlan_vid: \"5000\": VLAN id must be 0..=4095"),
        (Field::VlanVid, "x", "vlan_vid: \"x\": expected a VLAN id 0..=4095, none or any"),
        (Field::VlanPcp, "8", "vlan_pcp: \"8\": VLAN priority must be 0..=7"),
        (Field::IpDst, "10.0.0.0/33", "ip_dst: \"10.0.0.0/33\": prefix length must be 0..=32"),
        (Field::IpSrc, "10.0.0", "ip_src: \"10.0.0\": expected an IPv4 address like 198.18.0.1, optionally /prefix"),
        (Field::IpSrc, "10.0.0.0/x", "ip_src: \"10.0.0.0/x\": invalid mask \"x\": expected a prefix length 0..=32 or an address mask"),
        (Field::Ipv6Dst, "2001:db8::/129", "ipv6_dst: \"2001:db8::/129\": prefix length must be 0..=128"),
        (Field::Ipv6Src, "10.0.0.1", "ipv6_src: \"10.0.0.1\": expected an IPv6 address like 2001:db8::1, optionally /prefix"),
        (Field::IpProto, "tcpp", "ip_proto: \"tcpp\": expected a number 0..=255 or tcp, udp, icmp, icmpv6, sctp"),
        (Field::IpProto, "256", "ip_proto: \"256\": ip_proto must be 0..=255"),
        (Field::IpDscp, "64", "ip_dscp: \"64\": DSCP must be 0..=63"),
        (Field::IpEcn, "4", "ip_ecn: \"4\": ECN must be 0..=3"),
        (Field::IpTtl, "256", "ip_ttl: \"256\": TTL must be 0..=255"),
        (Field::IpFrag, "maybe", "ip_frag: \"maybe\": expected no, yes, first, later or not_later"),
        (Field::TpDst, "65536", "tp_dst: \"65536\": port must be 0..=65535"),
        (Field::TpDst, "1/0x10000", "tp_dst: \"1/0x10000\": mask must be 0..=65535"),
        (Field::IcmpType, "256", "icmp_type: \"256\": ICMP type must be 0..=255"),
        (Field::IcmpCode, "256", "icmp_code: \"256\": ICMP code must be 0..=255"),
        (Field::ArpOp, "256", "arp_op: \"256\": ARP opcode must be 0..=255"),
        (Field::ArpSpa, "1.2.3.4/40", "arp_spa: \"1.2.3.4/40\": prefix length must be 0..=32"),
        (Field::TunId, "16777216", "tun_id: \"16777216\": VNI must be 0..=16777215"),
    ] {
        assert_eq!(set_err(field, text), err, "{text}");
    }
}

#[test]
fn set_failure_leaves_match_unchanged() {
    let mut a = m("in_port=1,vlan_vid=5");
    let before = a;
    assert!(a.set(Field::VlanVid, "5000").is_err());
    assert!(a.set(Field::IpDst, "1.2.3.4/99").is_err());
    assert_eq!(a, before);
}

#[test]
fn text_errors() {
    for (text, err) in [
        (
            "ip_dest=10.0.0.1",
            "unknown match field \"ip_dest\" (did you mean \"ip_dst\"?)",
        ),
        ("colour=red", "unknown match field \"colour\""),
        (
            "in_prot",
            "unknown match field \"in_prot\" (did you mean \"in_port\"?)",
        ),
        ("in_port", "\"in_port\": expected field=value"),
        ("", "\"\": empty match: use \"any\" to match everything"),
        (
            "in_port=1,",
            "\"in_port=1,\": empty entry in match (stray comma?)",
        ),
        (
            "any,in_port=1",
            "\"any\": \"any\" cannot be combined with other fields",
        ),
        (
            "in_port=1,ip_dst=10.0.0.0/33",
            "ip_dst: \"10.0.0.0/33\": prefix length must be 0..=32",
        ),
        (
            "vlan_vid=5000",
            "vlan_vid: \"5000\": VLAN id must be 0..=4095",
        ),
        (
            "ip_ttl=",
            "ip_ttl: \"\": expected a decimal or 0x-prefixed hex number",
        ),
    ] {
        assert_eq!(parse_err(text), err, "{text}");
    }
    // Callers that look names up themselves build the error directly and get the hint too.
    assert_eq!(
        MatchError::UnknownField("tp_dts".into()).to_string(),
        "unknown match field \"tp_dts\" (did you mean \"tp_dst\"?)"
    );
    assert_eq!(Field::suggest("eth_tpye"), Some("eth_type"));
    assert_eq!(Field::suggest("nothing_like_it"), None);
}

#[test]
fn prerequisites() {
    for ok in [
        "any",
        "in_port=1,eth_src=52:54:00:00:00:01,vlan_vid=5,vlan_pcp=1,tun_id=5",
        "eth_type=0x0800,ip_dst=10.0.0.0/24",
        "ipv6,ipv6_src=::1",
        "ip,ip_dscp=1,ip_ecn=1,ip_ttl=1,ip_frag=no",
        "ipv6,ip_proto=6,ip_ttl=1",
        "tcp,tp_dst=22",
        "udp6,tp_src=53",
        "sctp,tp_src=1",
        "icmp,icmp_type=8",
        "icmp6,icmp_code=0",
        "icmp,tp_src=0x8/0xff",
        "arp,arp_op=2,arp_spa=1.2.3.4,arp_tha=52:54:00:00:00:01",
    ] {
        assert_eq!(m(ok).check_prerequisites(), Ok(()), "{ok}");
    }
    for (text, err) in [
        (
            "ip_dst=10.0.0.0/24",
            "ip_dst requires eth_type=0x0800 (ipv4)",
        ),
        (
            "eth_type=ipv6,ip_src=10.0.0.1",
            "ip_src requires eth_type=0x0800 (ipv4)",
        ),
        ("ipv6_dst=::1", "ipv6_dst requires eth_type=0x86dd (ipv6)"),
        (
            "ip_proto=6",
            "ip_proto requires eth_type=0x0800 (ipv4) or eth_type=0x86dd (ipv6)",
        ),
        (
            "arp,ip_ttl=3",
            "ip_ttl requires eth_type=0x0800 (ipv4) or eth_type=0x86dd (ipv6)",
        ),
        (
            "ip,tp_dst=80",
            "tp_dst requires ip_proto=6 (tcp), 17 (udp) or 132 (sctp)",
        ),
        (
            "ip,ip_proto=47,tp_src=80",
            "tp_src requires ip_proto=6 (tcp), 17 (udp) or 132 (sctp)",
        ),
        (
            "ipv6,ip_proto=1,icmp_type=8",
            "icmp_type requires ip_proto=1 (icmp) with eth_type=0x0800 (ipv4), \
             or ip_proto=58 (icmpv6) with eth_type=0x86dd (ipv6)",
        ),
        // ip_proto's own prerequisite is reported before the transport field's.
        (
            "ip_proto=6,tp_dst=80",
            "ip_proto requires eth_type=0x0800 (ipv4) or eth_type=0x86dd (ipv6)",
        ),
        (
            "arp_sha=52:54:00:00:00:01",
            "arp_sha requires eth_type=0x0806 (arp)",
        ),
        (
            "ip,arp_tha=52:54:00:00:00:01",
            "arp_tha requires eth_type=0x0806 (arp)",
        ),
    ] {
        assert_eq!(prereq_err(text), err, "{text}");
    }
    assert_eq!(prereq_err("ip_frag=yes").split(' ').next(), Some("ip_frag"));
    assert_eq!(prereq_err("ip_ecn=1").split(' ').next(), Some("ip_ecn"));
    // A masked eth_type is not a prerequisite match.
    let mut v = FlowKey::ZERO;
    v.set_eth_type(0x0800);
    v.set_ip_dst(1);
    let mut mask = FlowKey::ZERO;
    mask.set_eth_type(0xff00);
    mask.set_ip_dst(u32::MAX);
    assert!(Match::from_parts(v, mask).check_prerequisites().is_err());
}

#[test]
fn matching_a_key() {
    let a = m("in_port=3,tcp,ip_dst=10.0.0.0/24,tp_dst=443");
    let mut k = FlowKey::ZERO;
    k.set_in_port(PortNo(3));
    k.set_eth_type(0x0800);
    k.set_ip_proto(6);
    k.set_ip_dst(0x0a00_0042);
    k.set_ip_src(0x0b00_0001);
    k.set_tp_src(51000);
    k.set_tp_dst(443);
    assert!(a.matches(&k));
    let mut k2 = k;
    k2.set_ip_dst(0x0a00_0142);
    assert!(!a.matches(&k2));
    let mut k3 = k;
    k3.set_tp_dst(80);
    assert!(!a.matches(&k3));
}
