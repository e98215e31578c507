//! The request bodies' schemas as exactly as JSON Schema can say what the server accepts,
//! written into the OpenAPI document in place of the ones derived from the types (which only
//! say "a string", "an object"): a port is one of a schema per type (and, for the types that
//! can be the underlay, per role), whose fields that do not apply may only be null; a flow's
//! match is one of a shape per protocol (its fields' prerequisites: `ip_dst` needs
//! `eth_type` IPv4, ...), every value a pattern built from the same limits the parsers use;
//! actions, trace frames, socket paths (inside this switch's `socket_dir`) likewise.
//!
//! What JSON Schema cannot say, the descriptions do: a gateway must be another address on
//! the `ip` subnet; a name in `in_port`, `output:` or a trace must be a port that exists
//! (404 otherwise); a second underlay, or a VNI already carried to a remote, is a conflict
//! (409); a socket's directory must exist (404). The document is stricter than the server in
//! a few spellings it does not advertise: the old `ovs-ofctl` field aliases (`dl_type`, ...),
//! whitespace around values, and masks of all zeros on fields whose prerequisites are absent.

use std::path::Path;

use flowtable::wire::{EtherType, IpProtocol};
use serde_json::{json, Map, Value};

/// The largest value of each numeric match field.
const U8: u64 = 0xff;
const U16: u64 = 0xffff;
const VID: u64 = 0xfff;
const VNI: u64 = 0xff_ffff;

/// Regex character class of the digits worth `lo..=hi` in `radix` (hex letters both cases).
fn class(lo: u32, hi: u32, radix: u32) -> String {
    let digit = |v: u32, upper: bool| {
        let c = char::from_digit(v, radix).expect("a digit");
        if upper {
            c.to_ascii_uppercase()
        } else {
            c
        }
    };
    let mut out = String::from("[");
    let range = |out: &mut String, a: u32, b: u32, upper: bool| {
        out.push(digit(a, upper));
        if b > a {
            out.push('-');
            out.push(digit(b, upper));
        }
    };
    if lo <= 9 {
        range(&mut out, lo, hi.min(9), false);
    }
    if hi >= 10 {
        let a = lo.max(10);
        range(&mut out, a, hi, false);
        range(&mut out, a, hi, true);
    }
    out.push(']');
    out
}

/// Digits of `n` in `radix`, most significant first.
fn digits(mut n: u64, radix: u32) -> Vec<u32> {
    let mut d = vec![(n % u64::from(radix)) as u32];
    n /= u64::from(radix);
    while n > 0 {
        d.push((n % u64::from(radix)) as u32);
        n /= u64::from(radix);
    }
    d.reverse();
    d
}

/// `0..=max` in `radix` without leading zeros.
fn up_to(max: u64, radix: u32) -> String {
    let s = digits(max, radix);
    let len = s.len();
    let any = class(0, radix - 1, radix);
    if len == 1 {
        return class(0, s[0], radix);
    }
    let exact = |ds: &[u32]| -> String { ds.iter().map(|&d| class(d, d, radix)).collect() };
    let mut alts = vec![any.clone()];
    for k in 2..len {
        alts.push(format!("{}{any}{{{}}}", class(1, radix - 1, radix), k - 1));
    }
    for i in 0..len {
        let lo = u32::from(i == 0);
        if s[i] > lo {
            let rest = len - i - 1;
            let tail = if rest == 0 {
                String::new()
            } else {
                format!("{any}{{{rest}}}")
            };
            alts.push(format!(
                "{}{}{tail}",
                exact(&s[..i]),
                class(lo, s[i] - 1, radix)
            ));
        }
    }
    alts.push(exact(&s));
    format!("(?:{})", alts.join("|"))
}

/// A number in `0..=max` as the match parser reads it: decimal or `0x` hex, leading zeros
/// allowed.
pub fn number(max: u64) -> String {
    format!("(?:0*{}|0[xX]0*{})", up_to(max, 10), up_to(max, 16))
}

/// Exactly the number `n`, in any spelling [`number`] takes.
fn exactly(n: u64) -> String {
    let spell = |radix| -> String {
        digits(n, radix)
            .into_iter()
            .map(|d| class(d, d, radix))
            .collect()
    };
    format!("(?:0*{}|0[xX]0*{})", spell(10), spell(16))
}

/// `V` or `V/M`, both numbers in `0..=max`.
fn masked(max: u64) -> String {
    let n = number(max);
    format!("{n}(?:/{n})?")
}

/// One IPv4 octet as Rust parses it (no leading zeros).
const OCTET: &str = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";

/// An IPv4 address.
pub fn ipv4() -> String {
    format!("{OCTET}(?:\\.{OCTET}){{3}}")
}

/// A unicast IPv4 address: not 0.0.0.0, multicast (224/4) or 255.255.255.255.
pub fn unicast_ipv4() -> String {
    let o = OCTET;
    let nonzero = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]?)";
    let not255 = "(?:25[0-4]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
    let first = "(?:22[0-3]|2[01][0-9]|1[0-9][0-9]|[1-9][0-9]?|24[0-9]|25[0-4])";
    format!(
        "(?:{first}(?:\\.{o}){{3}}\
         |0\\.(?:{nonzero}\\.{o}\\.{o}|0\\.{nonzero}\\.{o}|0\\.0\\.{nonzero})\
         |255\\.(?:{not255}\\.{o}\\.{o}|255\\.{not255}\\.{o}|255\\.255\\.{not255}))"
    )
}

/// An IPv4 address, optionally `/len` (0..=32) or `/dotted-mask`.
fn ipv4_masked() -> String {
    let ip = ipv4();
    format!("{ip}(?:/(?:0*(?:3[0-2]|[12]?[0-9])|{ip}))?")
}

/// An IPv6 address as Rust parses it: eight groups of 1 to 4 hex digits, one `::` for a run
/// of them, the last 32 bits optionally as an IPv4 address.
pub fn ipv6() -> String {
    let h = "[0-9a-fA-F]{1,4}";
    let v4 = ipv4();
    let mut alts = vec![format!("(?:{h}:){{7}}{h}"), format!("(?:{h}:){{6}}{v4}")];
    for head in 0..=7usize {
        let head_re = if head == 0 {
            String::new()
        } else {
            format!("{h}(?::{h}){{{}}}", head - 1)
        };
        let room = 7 - head;
        let tail = if room == 0 {
            String::new()
        } else {
            format!("(?:{h}(?::{h}){{0,{}}})?", room - 1)
        };
        alts.push(format!("{head_re}::{tail}"));
        if room >= 2 {
            alts.push(format!("{head_re}::(?:{h}:){{0,{}}}{v4}", room - 2));
        }
    }
    format!("(?:{})", alts.join("|"))
}

/// An IPv6 address, optionally `/len` (0..=128) or `/mask-address`.
fn ipv6_masked() -> String {
    let ip = ipv6();
    format!("{ip}(?:/(?:0*(?:12[0-8]|1[01][0-9]|[1-9]?[0-9])|{ip}))?")
}

/// A MAC address (`:` or `-` between 1- or 2-digit groups), optionally `/mask`.
fn mac_masked() -> String {
    let g = "[0-9a-fA-F]{1,2}";
    let mac = format!("{g}(?:[:-]{g}){{5}}");
    format!("{mac}(?:/{mac})?")
}

/// A port name: letters, digits, `-`, `_`, `.`; 1 to 64.
pub const NAME: &str = "[A-Za-z0-9._-]{1,64}";

/// A Linux interface name as the switch takes it: 1 to 15 printable ASCII characters
/// other than space, `/`, `:` and `%`, not `.` or `..`.
pub fn ifname() -> String {
    let c = "[!-$&-.0-9;-~]";
    let not_dot = "[!-$&-,\\-0-9;-~]";
    format!("(?:{not_dot}{c}{{0,14}}|\\.{not_dot}{c}{{0,13}}|\\.\\.{c}{{1,13}})")
}

/// A vhost-user socket path inside `dir`: segments of printable ASCII but `/`, none `.` or
/// `..` alone (at most 107 bytes, what a unix socket address holds, is `maxLength`).
pub fn socket_path(dir: &Path) -> String {
    let c = "[ -.0-~]";
    let not_dot = "[ -,\\-0-~]";
    let seg = format!("(?:{not_dot}{c}*|\\.{not_dot}{c}*|\\.\\.{c}+)");
    let dir = dir.to_string_lossy();
    let dir = dir.trim_end_matches('/');
    format!("{}(?:/{seg})+", escape(dir))
}

/// `text` with regex metacharacters escaped.
fn escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The hex of a frame for `POST /v1/trace`: 14 to `max` bytes, two digits each, with ASCII
/// whitespace and `:` anywhere.
pub fn trace_hex(max: usize) -> String {
    let s = "[ \\t\\n\\f\\r:]*";
    format!("{s}(?:[0-9A-Fa-f]{s}[0-9A-Fa-f]{s}){{14,{max}}}")
}

/// `^...$`.
fn anchored(re: &str) -> String {
    format!("^{re}$")
}

fn string(re: &str) -> Value {
    json!({"type": "string", "pattern": anchored(re)})
}

fn integer(min: u64, max: u64) -> Value {
    json!({"type": "integer", "minimum": min, "maximum": max})
}

/// A match value given as a number (JSON or text) in `0..=max`, or one of `names`.
fn num_value(max: u64, names: &[&str]) -> Value {
    let mut alts: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    alts.push(number(max));
    json!({"anyOf": [integer(0, max), string(&format!("(?:{})", alts.join("|")))]})
}

/// A match value that is exactly `n` (a JSON number or text), or one of `names`.
fn exact_value(n: u64, names: &[&str]) -> Value {
    let mut alts: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    alts.push(exactly(n));
    json!({"anyOf": [{"type": "integer", "enum": [n]}, string(&format!("(?:{})", alts.join("|")))]})
}

/// A masked number in `0..=max` (JSON number: unmasked).
fn masked_value(max: u64) -> Value {
    json!({"anyOf": [integer(0, max), string(&masked(max))]})
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The match fields' value schemas, by field, as components named `Match_<field>`.
fn match_values() -> Vec<(&'static str, Value)> {
    let ip_proto_names = ["tcp", "udp", "icmp", "icmpv6", "sctp"];
    vec![
        (
            "in_port",
            json!({"anyOf": [string(NAME), integer(0, u64::MAX)],
                   "description": "a port name (404 when no port has it)"}),
        ),
        ("eth_src", string(&mac_masked())),
        ("eth_dst", string(&mac_masked())),
        ("eth_type", num_value(U16, &["ipv4", "ip", "ipv6", "arp"])),
        ("vlan_vid", {
            let mut v = num_value(VID, &["none", "any", &masked(VID)]);
            v["description"] = json!("a VID, `none` (untagged), `any` (tagged) or `V/M`");
            v
        }),
        ("vlan_pcp", num_value(7, &[])),
        ("ip_src", string(&ipv4_masked())),
        ("ip_dst", string(&ipv4_masked())),
        ("ipv6_src", string(&ipv6_masked())),
        ("ipv6_dst", string(&ipv6_masked())),
        ("ip_proto", num_value(U8, &ip_proto_names)),
        ("ip_dscp", num_value(63, &[])),
        ("ip_ecn", num_value(3, &[])),
        ("ip_ttl", num_value(U8, &[])),
        (
            "ip_frag",
            json!({"type": "string", "enum": ["no", "yes", "first", "later", "not_later"]}),
        ),
        ("tp_src", masked_value(U16)),
        ("tp_dst", masked_value(U16)),
        ("icmp_type", num_value(U8, &[])),
        ("icmp_code", num_value(U8, &[])),
        ("arp_op", num_value(U8, &[])),
        ("arp_spa", string(&ipv4_masked())),
        ("arp_tpa", string(&ipv4_masked())),
        ("arp_sha", string(&mac_masked())),
        ("arp_tha", string(&mac_masked())),
        ("tun_id", masked_value(VNI)),
        ("tun_src", string(&ipv4_masked())),
        ("tun_dst", string(&ipv4_masked())),
    ]
}

/// One shape of a match: the fields it allows (by their value components), some of them
/// pinned to a value (`eth_type`, `ip_proto`), required.
fn shape(title: &str, fields: &[&str], pinned: &[(&str, Value)]) -> Value {
    let mut props = Map::new();
    for f in fields {
        props.insert(f.to_string(), reference(&format!("Match_{f}")));
    }
    let mut required = Vec::new();
    for (f, v) in pinned {
        props.insert(f.to_string(), v.clone());
        required.push(f.to_string());
    }
    json!({
        "title": title,
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": false,
    })
}

/// The match: one of a shape per protocol, so that every field's prerequisites hold.
fn match_schema() -> Value {
    const L2: &[&str] = &[
        "in_port", "eth_src", "eth_dst", "eth_type", "vlan_vid", "vlan_pcp", "tun_id", "tun_src",
        "tun_dst",
    ];
    const IP: &[&str] = &["ip_proto", "ip_dscp", "ip_ecn", "ip_ttl", "ip_frag"];
    const V4: &[&str] = &["ip_src", "ip_dst", "arp_spa", "arp_tpa", "arp_op"];
    const V6: &[&str] = &["ipv6_src", "ipv6_dst"];
    const L4: &[&str] = &["tp_src", "tp_dst", "icmp_type", "icmp_code"];
    const ARP: &[&str] = &[
        "arp_op", "arp_spa", "arp_tpa", "arp_sha", "arp_tha", "ip_src", "ip_dst", "ip_proto",
    ];
    let cat = |parts: &[&[&'static str]]| -> Vec<&'static str> {
        let mut v: Vec<&str> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let et = |n: u16, names: &[&str]| ("eth_type", exact_value(n.into(), names));
    let proto = |ns: &[(u8, &str)]| {
        let alts: Vec<Value> = ns
            .iter()
            .map(|&(n, name)| exact_value(n.into(), &[name]))
            .collect();
        ("ip_proto", json!({"anyOf": alts}))
    };
    let l4 = [
        (IpProtocol::TCP, "tcp"),
        (IpProtocol::UDP, "udp"),
        (IpProtocol::SCTP, "sctp"),
    ];
    let v4 = || et(EtherType::IPV4, &["ipv4", "ip"]);
    let v6 = || et(EtherType::IPV6, &["ipv6"]);
    let l2_fields = cat(&[L2]);
    let ip4 = cat(&[L2, IP, V4]);
    let ip4_l4 = cat(&[L2, IP, V4, L4]);
    let ip6 = cat(&[L2, IP, V6]);
    let ip6_l4 = cat(&[L2, IP, V6, L4]);
    let arp = cat(&[L2, ARP]);
    json!({
        "description": "Match fields (absent: wildcard), by ovs-ofctl name. Each field needs \
            its prerequisites, so a match has one of these shapes: layer 2 only; IPv4 \
            (`eth_type` 0x0800), with `tp_*`/`icmp_*` when `ip_proto` is tcp, udp, sctp or \
            icmp; IPv6 likewise (icmpv6); ARP (0x0806). Numbers are JSON numbers or text, \
            decimal or 0x hex; masks are `value/mask`. `in_port` names a port (404 when none \
            has that name). The server also takes the older ovs-ofctl aliases (`dl_type`, \
            `nw_src`, ...) and whitespace around values.",
        "anyOf": [
            shape("layer 2", &l2_fields, &[]),
            shape("IPv4", &ip4, &[v4()]),
            shape("IPv4 with ports", &ip4_l4, &[v4(), proto(&l4)]),
            shape("ICMP", &ip4_l4, &[v4(), proto(&[(IpProtocol::ICMP, "icmp")])]),
            shape("IPv6", &ip6, &[v6()]),
            shape("IPv6 with ports", &ip6_l4, &[v6(), proto(&l4)]),
            shape("ICMPv6", &ip6_l4, &[v6(), proto(&[(IpProtocol::ICMPV6, "icmpv6")])]),
            shape("ARP", &arp, &[et(EtherType::ARP, &["arp"])]),
        ]
    })
}

/// An action list: `["drop"]`, or one or more other actions.
fn actions_schema() -> Value {
    let action = format!(
        "(?:output:{NAME}|normal|pop_vlan|strip_vlan|push_vlan:{}(?:,pcp={})?|set_tunnel:{})",
        number(VID),
        number(7),
        number(VNI)
    );
    json!({
        "description": "Actions in order: `output:PORT` (404 when no port has that name), \
            `normal`, `push_vlan:VID` or `push_vlan:VID,pcp=P`, `pop_vlan`, \
            `set_tunnel:VNI`; or `drop` alone.",
        "example": ["output:b"],
        "anyOf": [
            {"type": "array", "items": {"type": "string", "enum": ["drop"]},
             "minItems": 1, "maxItems": 1},
            {"type": "array", "items": string(&action), "minItems": 1},
        ]
    })
}

fn priority(nullable: bool) -> Value {
    let mut p = json!({"type": "integer", "minimum": 0, "maximum": switch::config::MAX_PRIORITY,
                       "description": "0..=65535 (higher wins)"});
    if nullable {
        p["type"] = json!(["integer", "null"]);
    } else {
        p["default"] = json!(switch::config::DEFAULT_PRIORITY);
    }
    p
}

/// `[[flow]]`.
fn flow_schema() -> Value {
    json!({
        "type": "object",
        "description": "A [[flow]] table of the config file, as JSON.",
        "properties": {
            "priority": priority(false),
            "match": reference("Match"),
            "actions": actions_schema(),
        },
        "required": ["actions"],
        "additionalProperties": false,
    })
}

/// `POST /v1/flows/delete`'s body.
fn match_query_schema() -> Value {
    json!({
        "type": "object",
        "description": "Which flows to delete: those whose match equals this one (and \
            priority, when given).",
        "properties": {
            "match": reference("Match"),
            "priority": priority(true),
        },
        "additionalProperties": false,
    })
}

/// `vlan = {...}`: access (with `tag`) or trunk (`allowed`, `native`).
fn vlan_schema() -> Value {
    let vid = integer(1, 4094);
    let none = json!({"type": "null"});
    json!({
        "description": "VLAN mode. Access: `tag` only. Trunk: `allowed` (absent: every VLAN) \
            and `native` (the VLAN of untagged frames).",
        "oneOf": [
            {"title": "access", "type": "object", "additionalProperties": false,
             "required": ["mode", "tag"],
             "properties": {"mode": {"type": "string", "enum": ["access"]}, "tag": vid,
                            "allowed": none, "native": none}},
            {"title": "trunk", "type": "object", "additionalProperties": false,
             "required": ["mode"],
             "properties": {"mode": {"type": "string", "enum": ["trunk"]}, "tag": none,
                            "allowed": {"anyOf": [none, {"type": "array", "items": vid,
                                        "minItems": 1, "uniqueItems": true}]},
                            "native": {"anyOf": [none, vid]}}},
        ]
    })
}

/// `[[port]]`: one schema per type, and for the types that can be the underlay (the one port
/// with `ip`) one per role, since a bridge port's `vlan` and the underlay's `ip`, `gateway`
/// and `mtu` exclude each other.
fn port_schema(socket_dir: &Path) -> Value {
    let none = json!({"type": "null"});
    let nullable = |v: Value| json!({"anyOf": [none, v]});
    let socket = json!({
        "type": "string",
        "pattern": anchored(&socket_path(socket_dir)),
        "maxLength": 107,
        "description": format!(
            "An absolute path inside switch.socket_dir ({}); its directory must exist \
             (404 otherwise).",
            socket_dir.display()
        ),
    });
    let ifname = json!({"type": "string", "pattern": anchored(&ifname()),
                        "example": "eth1",
                        "description": "The kernel interface (404 when an afxdp port's does not \
                            exist; a tap is created if absent)."});
    let ip = json!({"type": "string",
                    "pattern": anchored(&format!("{}/\\+?0*(?:3[0-2]|[12][0-9]|[1-9])", unicast_ipv4())),
                    "example": "198.18.0.1/24",
                    "description": "This node's underlay address with its prefix length (1..=32)."});
    let gateway = nullable(json!({"type": "string", "pattern": anchored(&ipv4()),
        "description": "Another address on the `ip` subnet."}));
    let unicast = json!({"type": "string", "pattern": anchored(&unicast_ipv4())});
    let queues = nullable(integer(1, 64));
    let mtu = |max: u64| nullable(integer(576, max));
    let vlan = nullable(reference("VlanConfig"));
    let fields = [
        "socket",
        "mode",
        "queues",
        "interface",
        "ip",
        "gateway",
        "mtu",
        "vni",
        "remote_ip",
        "local_ip",
        "vlan",
    ];
    let variant = |title: &str, kind: &str, set: &[(&str, Value)], required: &[&str]| {
        let mut props = Map::new();
        props.insert(
            "name".into(),
            json!({"type": "string", "pattern": anchored(NAME),
                                           "example": "vm1"}),
        );
        props.insert("type".into(), json!({"type": "string", "enum": [kind]}));
        for f in fields {
            props.insert(f.into(), none.clone());
        }
        for (f, v) in set {
            props.insert(f.to_string(), v.clone());
        }
        let mut req = vec!["name".to_string(), "type".to_string()];
        req.extend(required.iter().map(|r| r.to_string()));
        json!({"title": title, "type": "object", "properties": props, "required": req,
               "additionalProperties": false})
    };
    let underlay = |max_mtu: u64| {
        vec![
            ("ip", ip.clone()),
            ("gateway", gateway.clone()),
            ("mtu", mtu(max_mtu)),
        ]
    };
    let with = |mut a: Vec<(&'static str, Value)>, b: &[(&'static str, Value)]| {
        a.extend_from_slice(b);
        a
    };
    let afxdp_max = u64::from(ports::afxdp::MAX_MTU);
    let mtu_max = u64::from(*switch::tunnel::MTU_RANGE.end());
    json!({
        "description": "A [[port]] table of the config file, as JSON: one schema per `type`. \
            Fields that do not apply to the type may only be null. The underlay (the one \
            port with `ip`, 409 if another has it) is a memory, afxdp or tap port without \
            `vlan`.",
        "oneOf": [
            variant("memory", "memory", &[("vlan", vlan.clone())], &[]),
            variant("memory underlay", "memory", &underlay(mtu_max), &["ip"]),
            variant("vhost-user", "vhost-user", &[
                ("socket", socket),
                ("mode", json!({"type": ["string", "null"], "enum": ["server", "client", null]})),
                ("queues", queues.clone()),
                ("vlan", vlan.clone()),
            ], &["socket"]),
            variant("afxdp", "afxdp", &[("interface", ifname.clone()), ("queues", queues.clone()),
                                         ("vlan", vlan.clone())], &["interface"]),
            variant("afxdp underlay", "afxdp",
                    &with(underlay(afxdp_max), &[("interface", ifname.clone()),
                                                  ("queues", queues)]),
                    &["interface", "ip"]),
            variant("tap", "tap", &[("interface", ifname.clone()), ("vlan", vlan.clone())],
                    &["interface"]),
            variant("tap underlay", "tap", &with(underlay(mtu_max), &[("interface", ifname)]),
                    &["interface", "ip"]),
            variant("vxlan", "vxlan", &[
                ("vni", integer(0, VNI)),
                ("remote_ip", unicast.clone()),
                ("local_ip", nullable(unicast)),
                ("vlan", vlan),
            ], &["vni", "remote_ip"]),
        ]
    })
}

/// `POST /v1/trace`'s body: `in_port` and either `hex` or `fields`.
fn trace_schema(max_frame: usize, max_hex: usize) -> Value {
    let none = json!({"type": "null"});
    let in_port = json!({"type": "string", "pattern": anchored(NAME),
                         "description": "The port the frame arrives on (404 when none has that name)."});
    let hex = json!({"type": "string", "pattern": anchored(&trace_hex(max_frame)),
                     "minLength": 28, "maxLength": max_hex,
                     "description": format!("The frame as hex digits, 14 to {max_frame} bytes \
                        (whitespace and `:` allowed anywhere, {max_hex} characters at most).")});
    json!({
        "description": "A frame and its in-port: give `hex` (the whole frame) or `fields` \
            (built for you).",
        "oneOf": [
            {"title": "hex", "type": "object", "additionalProperties": false,
             "required": ["in_port", "hex"],
             "properties": {"in_port": in_port, "hex": hex, "fields": none}},
            {"title": "fields", "type": "object", "additionalProperties": false,
             "required": ["in_port", "fields"],
             "properties": {"in_port": in_port, "hex": none, "fields": reference("FrameFields")}},
        ]
    })
}

/// The header fields a trace frame is built from: IP fields and ARP fields exclude each
/// other, and an `eth_type` given with either must be theirs.
fn frame_fields_schema() -> Value {
    let none = json!({"type": "null"});
    let nullable = |v: Value| json!({"anyOf": [none, v]});
    let byte = "\\+?0*[0-9a-fA-F]{1,2}";
    let mac = nullable(string(&format!("{byte}(?::{byte}){{5}}")));
    let ip = nullable(string(&ipv4()));
    // `eth_type` as the frame builder reads it: decimal, or `0x` (lower case) hex.
    let et_any = format!("(?:0*{}|0x0*{})", up_to(U16, 10), up_to(U16, 16));
    let et_is = |n: u16| {
        let n = u64::from(n);
        let dec: String = digits(n, 10).iter().map(|d| d.to_string()).collect();
        let hex: String = digits(n, 16).into_iter().map(|d| class(d, d, 16)).collect();
        format!("(?:0*{dec}|0x0*{hex})")
    };
    let common = |eth_type: Value| {
        json!({
            "eth_src": mac, "eth_dst": mac,
            "vlan_vid": nullable(integer(0, VID)),
            "vlan_pcp": nullable(integer(0, U8)),
            "eth_type": eth_type,
            "tp_src": nullable(integer(0, U16)), "tp_dst": nullable(integer(0, U16)),
        })
    };
    let proto = nullable(string(&format!("(?:tcp|udp|icmp|{})", up_to(U8, 10))));
    let object = |title: &str, mut props: Value, extra: Value| {
        for (k, v) in extra.as_object().expect("an object") {
            props[k] = v.clone();
        }
        json!({"title": title, "type": "object", "properties": props,
               "additionalProperties": false})
    };
    let none_of = |fields: &[&str]| {
        let mut m = Map::new();
        for f in fields {
            m.insert(f.to_string(), none.clone());
        }
        Value::Object(m)
    };
    const IP: &[&str] = &["ip_src", "ip_dst", "ip_proto"];
    const ARP: &[&str] = &["arp_op", "arp_spa", "arp_tpa"];
    let mut no_l3 = none_of(IP);
    for (k, v) in none_of(ARP).as_object().expect("an object") {
        no_l3[k] = v.clone();
    }
    let mut ipv4 = json!({"ip_src": ip, "ip_dst": ip, "ip_proto": proto});
    for (k, v) in none_of(ARP).as_object().expect("an object") {
        ipv4[k] = v.clone();
    }
    let mut arp = json!({"arp_op": nullable(integer(0, U16)), "arp_spa": ip, "arp_tpa": ip});
    for (k, v) in none_of(IP).as_object().expect("an object") {
        arp[k] = v.clone();
    }
    json!({
        "description": "Header fields to build the frame from (unset fields take harmless \
            defaults): Ethernet, an optional VLAN tag, and IPv4 (`ip_*`, TCP/UDP ports) or \
            ARP (`arp_*`), not both; an `eth_type` given with IP or ARP fields must be theirs \
            (0x0800, 0x0806).",
        "anyOf": [
            object("no IP or ARP fields", common(nullable(string(&et_any))), no_l3),
            object("IPv4", common(nullable(string(&et_is(EtherType::IPV4)))), ipv4),
            object("ARP", common(nullable(string(&et_is(EtherType::ARP)))), arp),
        ]
    })
}

/// Replaces the derived request schemas of `doc` (the OpenAPI document as JSON) with the
/// exact ones; `socket_dir` is the running switch's.
pub fn refine(doc: &mut Value, socket_dir: &Path) {
    let schemas = &mut doc["components"]["schemas"];
    for (field, v) in match_values() {
        schemas[format!("Match_{field}")] = v;
    }
    schemas["Match"] = match_schema();
    schemas["FlowConfig"] = flow_schema();
    schemas["MatchQuery"] = match_query_schema();
    schemas["VlanConfig"] = vlan_schema();
    schemas["PortConfig"] = port_schema(socket_dir);
    schemas["TraceRequest"] =
        trace_schema(super::limits::MAX_TRACE_FRAME, super::limits::MAX_TRACE_HEX);
    schemas["FrameFields"] = frame_fields_schema();
    if let Some(o) = schemas.as_object_mut() {
        // Only the derived port schema used these; the exact one spells them out.
        for gone in ["PortType", "SocketMode", "VlanMode"] {
            o.remove(gone);
        }
    }
}

#[cfg(test)]
mod tests;
