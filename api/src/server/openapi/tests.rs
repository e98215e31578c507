//! Tests of the schemas' patterns against the parsers they stand for: numbers, addresses,
//! interface names and socket paths, each pattern taking exactly what the server takes.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use flowtable::matching::{Field, Match};
use switch::config::{PortConfig, PortType};

use super::*;

fn re(pattern: &str) -> regex::Regex {
    regex::Regex::new(&anchored(pattern)).unwrap()
}

/// Every spelling of numbers around each limit: the pattern takes exactly what the match
/// parser takes.
#[test]
fn number_patterns_take_what_the_parser_takes() {
    for (field, max) in [
        (Field::IpEcn, 3),
        (Field::VlanPcp, 7),
        (Field::IpDscp, 63),
        (Field::IpTtl, 255),
        (Field::EthType, 0xffff),
    ] {
        let pattern = re(&number(max));
        let mut values: Vec<u64> = (0..=max.min(300)).collect();
        values.extend([max - 1, max, max + 1, max + 7, max * 16, 10 * max + 9]);
        for n in values {
            for text in [
                n.to_string(),
                format!("00{n}"),
                format!("{n:#x}"),
                format!("0X{n:X}"),
                format!("0x000{n:x}"),
            ] {
                let parsed = Match::any().set(field, &text).is_ok();
                assert_eq!(pattern.is_match(&text), parsed, "{field} {text:?}");
            }
        }
        for bad in ["", "0x", "-1", "+1", "1 2", "x", "0xg", "1/2"] {
            assert!(!pattern.is_match(bad), "{field} {bad:?}");
        }
    }
    let tp = re(&masked(U16));
    for text in [
        "80",
        "0x50/0xfff0",
        "65535/0",
        "0/65535",
        "65536",
        "1/65536",
        "1/",
    ] {
        assert_eq!(
            tp.is_match(text),
            Match::any().set(Field::TpDst, text).is_ok(),
            "{text:?}"
        );
    }
    assert!(re(&exactly(0x0800)).is_match("2048"));
    assert!(re(&exactly(0x0800)).is_match("0x0800"));
    assert!(!re(&exactly(0x0800)).is_match("0x0806"));
}

#[test]
fn address_patterns_take_what_rust_parses() {
    let v6 = re(&ipv6());
    for text in [
        "::",
        "::1",
        "1::",
        "2001:db8::1",
        "1:2:3:4:5:6:7:8",
        "1:2:3:4:5:6:7::",
        "::2:3:4:5:6:7:8",
        "1:2:3:4:5:6:1.2.3.4",
        "::ffff:198.18.0.1",
        "1::198.18.0.1",
        "1:2:3:4:5::1.2.3.4",
        "1:2:3:4:5:6::1.2.3.4",
        "1:2:3:4:5:6:7:8:9",
        "12345::",
        "::1::",
        ":1::",
        "1:::2",
        "1.2.3.4",
        "::01.2.3.4",
        "1:2:3:4:5:6:7:1.2.3.4",
        "fFfF::",
        "",
    ] {
        assert_eq!(
            v6.is_match(text),
            text.parse::<Ipv6Addr>().is_ok(),
            "{text:?}"
        );
    }
    let v4 = re(&ipv4());
    let unicast = re(&unicast_ipv4());
    for text in [
        "0.0.0.0",
        "0.0.0.1",
        "0.1.0.0",
        "1.2.3.4",
        "198.18.0.1",
        "223.255.255.255",
        "224.0.0.1",
        "239.1.1.1",
        "240.0.0.1",
        "255.255.255.254",
        "255.255.255.255",
        "255.0.0.0",
        "01.2.3.4",
        "256.1.1.1",
        "1.2.3",
        "1.2.3.4.5",
    ] {
        let parsed = text.parse::<Ipv4Addr>();
        assert_eq!(v4.is_match(text), parsed.is_ok(), "{text:?}");
        let is_unicast =
            parsed.is_ok_and(|a| !a.is_unspecified() && !a.is_multicast() && !a.is_broadcast());
        assert_eq!(unicast.is_match(text), is_unicast, "{text:?}");
    }
}

/// A tap port's interface and a vhost-user port's socket: the patterns take exactly what
/// port validation takes (for ASCII names and paths; the socket's symlink check needs the
/// file system).
#[test]
fn interface_and_socket_patterns_take_what_validation_takes() {
    let port = |kind, interface: Option<&str>, socket: Option<&str>| PortConfig {
        name: "p".into(),
        kind,
        socket: socket.map(Into::into),
        mode: None,
        queues: None,
        interface: interface.map(Into::into),
        ip: None,
        gateway: None,
        mtu: None,
        vni: None,
        remote_ip: None,
        local_ip: None,
        vlan: None,
    };
    let dir = Path::new("/nonexistent-vswitch-dir/socks");
    let ifname_re = re(&ifname());
    for name in [
        "eth0",
        "a",
        ".",
        "..",
        "...",
        ".a",
        "..a",
        "a.b",
        "tap%d",
        "a/b",
        "a:b",
        "a b",
        "fifteen-chars-x",
        "sixteen-chars-xx",
        "",
        "~!@#$^&*()_+=-",
        "\u{e9}",
    ] {
        let ok = port(PortType::Tap, Some(name), None).validate(dir).is_ok();
        assert_eq!(ifname_re.is_match(name), ok, "{name:?}");
    }
    let socket_re = re(&socket_path(dir));
    for path in [
        "/nonexistent-vswitch-dir/socks/vm.sock",
        "/nonexistent-vswitch-dir/socks/a/b.sock",
        "/nonexistent-vswitch-dir/socks/...",
        "/nonexistent-vswitch-dir/socks/.hidden",
        "/nonexistent-vswitch-dir/socks/..",
        "/nonexistent-vswitch-dir/socks/../x",
        "/nonexistent-vswitch-dir/socks",
        "/nonexistent-vswitch-dir/socksx/vm.sock",
        "/nonexistent-vswitch-dir/vm.sock",
        "nonexistent-vswitch-dir/socks/vm.sock",
    ] {
        let ok = port(PortType::VhostUser, None, Some(path))
            .validate(dir)
            .is_ok();
        assert_eq!(socket_re.is_match(path), ok, "{path:?}");
    }
    assert!(re(&socket_path(Path::new("/"))).is_match("/etc/x.sock"));
    let hex = regex::Regex::new(&anchored(&trace_hex(20))).unwrap();
    assert!(hex.is_match(&"ab".repeat(14)));
    assert!(hex.is_match(&format!(" {}\n", "a:b ".repeat(14))));
    assert!(!hex.is_match(&"ab".repeat(13)));
    assert!(!hex.is_match(&"ab".repeat(21)));
    assert!(!hex.is_match(&format!("{}a", "ab".repeat(14))));
}
