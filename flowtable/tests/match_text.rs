//! Property tests for the match and action text syntaxes.

use std::net::{Ipv4Addr, Ipv6Addr};

use flowtable::action::{format_actions, parse_actions};
use flowtable::key::KEY_WORDS;
use flowtable::{Field, FlowKey, MacAddr, Match, PortNo};
use proptest::prelude::*;

fn mac() -> impl Strategy<Value = String> {
    any::<[u8; 6]>().prop_map(|b| MacAddr(b).to_string())
}

fn masked_mac() -> BoxedStrategy<String> {
    prop_oneof![mac(), (mac(), mac()).prop_map(|(v, m)| format!("{v}/{m}"))].boxed()
}

fn ipv4() -> BoxedStrategy<String> {
    let a = any::<u32>().prop_map(|a| Ipv4Addr::from(a).to_string());
    prop_oneof![
        a.clone(),
        (a.clone(), 0u32..=32).prop_map(|(a, l)| format!("{a}/{l}")),
        (a, any::<u32>()).prop_map(|(a, m)| format!("{a}/{}", Ipv4Addr::from(m))),
    ]
    .boxed()
}

fn ipv6() -> BoxedStrategy<String> {
    let a = any::<u128>().prop_map(|a| Ipv6Addr::from(a).to_string());
    prop_oneof![
        a.clone(),
        (a.clone(), 0u32..=128).prop_map(|(a, l)| format!("{a}/{l}")),
        (a, any::<u128>()).prop_map(|(a, m)| format!("{a}/{}", Ipv6Addr::from(m))),
    ]
    .boxed()
}

/// A number `0..=max` in decimal or hex.
fn num(max: u64) -> BoxedStrategy<String> {
    (0..=max, any::<bool>())
        .prop_map(|(n, hex)| {
            if hex {
                format!("{n:#x}")
            } else {
                n.to_string()
            }
        })
        .boxed()
}

/// A number `0..=max`, optionally masked.
fn masked_num(max: u64) -> BoxedStrategy<String> {
    prop_oneof![
        num(max),
        (0..=max, 0..=max).prop_map(|(v, m)| format!("{v:#x}/{m:#x}"))
    ]
    .boxed()
}

fn one_of(words: &'static [&'static str]) -> BoxedStrategy<String> {
    proptest::sample::select(words)
        .prop_map(str::to_string)
        .boxed()
}

/// A valid value text for `field`.
fn value_for(field: Field) -> BoxedStrategy<String> {
    match field {
        Field::InPort => any::<u32>().prop_map(|p| p.to_string()).boxed(),
        Field::EthSrc | Field::EthDst | Field::ArpSha | Field::ArpTha => masked_mac(),
        Field::EthType => prop_oneof![num(0xffff), one_of(&["ipv4", "ip", "ipv6", "arp"])].boxed(),
        Field::VlanVid => prop_oneof![
            num(4095),
            one_of(&["none", "any"]),
            (0..=0xfffu64, 0..=0xfffu64).prop_map(|(v, m)| format!("{v:#x}/{m:#x}")),
        ]
        .boxed(),
        Field::VlanPcp => num(7),
        Field::IpSrc
        | Field::IpDst
        | Field::ArpSpa
        | Field::ArpTpa
        | Field::TunSrc
        | Field::TunDst => ipv4(),
        Field::Ipv6Src | Field::Ipv6Dst => ipv6(),
        Field::IpProto => {
            prop_oneof![num(255), one_of(&["tcp", "udp", "icmp", "icmpv6", "sctp"])].boxed()
        }
        Field::IpDscp => num(63),
        Field::IpEcn => num(3),
        Field::IpTtl | Field::IcmpType | Field::IcmpCode | Field::ArpOp => num(255),
        Field::IpFrag => one_of(&["no", "yes", "first", "later", "not_later"]),
        Field::TpSrc | Field::TpDst => masked_num(0xffff),
        Field::TunId => masked_num(0xff_ffff),
    }
}

/// Contexts that make fields sharing storage render under their other names.
fn context() -> BoxedStrategy<Vec<(Field, String)>> {
    let et = |t: &'static str| (Field::EthType, t.to_string());
    let proto = |t: &'static str| (Field::IpProto, t.to_string());
    proptest::sample::select(vec![
        vec![],
        vec![et("ipv4")],
        vec![et("ipv6")],
        vec![et("arp")],
        vec![et("ipv4"), proto("tcp")],
        vec![et("ipv4"), proto("icmp")],
        vec![et("ipv6"), proto("icmpv6")],
        vec![et("ipv6"), proto("udp")],
    ])
    .boxed()
}

fn field() -> impl Strategy<Value = Field> {
    proptest::sample::select(Field::ALL)
}

fn settings() -> impl Strategy<Value = Vec<(Field, String)>> {
    let one = field().prop_flat_map(|f| value_for(f).prop_map(move |v| (f, v)));
    (context(), proptest::collection::vec(one, 0..10)).prop_map(|(mut ctx, rest)| {
        // Context either first (later settings may overwrite it) or last.
        if rest.len() % 2 == 0 {
            ctx.extend(rest);
            ctx
        } else {
            let mut all = rest;
            all.extend(ctx);
            all
        }
    })
}

fn build(settings: &[(Field, String)]) -> Match {
    let mut m = Match::any();
    for (f, v) in settings {
        m.set(*f, v).unwrap_or_else(|e| panic!("{f}={v}: {e}"));
    }
    m
}

/// Any string, plus strings made of plausible fragments (so the parsers get past the name).
fn noise() -> BoxedStrategy<String> {
    let frag = prop_oneof![
        one_of(&[
            "in_port",
            "eth_src",
            "ip_dst",
            "vlan_vid",
            "ipv6_src",
            "tp_dst",
            "tun_id",
            "ip_frag",
            "any",
            "tcp",
            "=",
            ",",
            "/",
            ":",
            ".",
            "0x",
            "ff",
            "10",
            "4095",
            "none",
            "::",
            " ",
            "output",
            "push_vlan",
            "pcp=",
            "set_tunnel",
            "drop",
            "normal",
            "99999999999999999999",
        ]),
        "[ -~]{0,4}",
        ".{0,2}",
    ];
    prop_oneof![
        ".*",
        proptest::collection::vec(frag, 0..12).prop_map(|v| v.concat()),
    ]
    .boxed()
}

fn resolve(name: &str) -> Option<PortNo> {
    match name {
        "vm1" => Some(PortNo(1)),
        _ => name.parse().ok().map(PortNo),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn display_parses_back(s in settings()) {
        let m = build(&s);
        let text = m.to_string();
        let back: Match = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        prop_assert_eq!(back, m, "{}", text);
        prop_assert_eq!(back.to_string(), text.clone());
        // The invariant holds, and fields() agrees with Display.
        prop_assert_eq!(m.value().masked(m.mask()), *m.value());
        let joined: Vec<String> = m.fields().iter().map(|(f, v)| format!("{f}={v}")).collect();
        prop_assert_eq!(if joined.is_empty() { "any".to_string() } else { joined.join(",") }, text);
        // Prerequisite checking never panics, whatever the outcome.
        let _ = m.check_prerequisites();
    }

    #[test]
    fn satisfying_key_matches_and_flipped_bit_does_not(
        s in settings(),
        noise in any::<[u64; KEY_WORDS]>(),
        pick in any::<u32>(),
    ) {
        let m: Match = build(&s).to_string().parse().unwrap();
        let (v, mask) = (m.value().words(), m.mask().words());
        let mut words = [0u64; KEY_WORDS];
        for i in 0..KEY_WORDS {
            words[i] = noise[i] & !mask[i] | v[i];
        }
        let key = FlowKey::from_words(words);
        prop_assert!(m.matches(&key));
        // Flip one bit the mask keeps: the key must stop matching.
        let bits: Vec<(usize, u32)> = (0..KEY_WORDS)
            .flat_map(|i| (0..64).filter(move |b| mask[i] >> b & 1 == 1).map(move |b| (i, b)))
            .collect();
        if bits.is_empty() {
            prop_assert!(m.matches(&FlowKey::from_words(noise)));
        } else {
            let (i, b) = bits[pick as usize % bits.len()];
            let mut flipped = words;
            flipped[i] ^= 1 << b;
            prop_assert!(!m.matches(&FlowKey::from_words(flipped)));
        }
    }

    #[test]
    fn match_parser_never_panics(text in noise()) {
        if let Ok(m) = text.parse::<Match>() {
            let _ = m.check_prerequisites();
            prop_assert_eq!(m.to_string().parse::<Match>().unwrap(), m);
        }
        for &f in Field::ALL {
            let mut m = Match::any();
            let _ = m.set(f, &text);
        }
        let _ = Field::from_name(&text);
    }

    #[test]
    fn action_parser_never_panics(list in proptest::collection::vec(noise(), 0..4)) {
        if let Ok(actions) = parse_actions(&list, &resolve) {
            let text = format_actions(&actions, &|_| None);
            prop_assert_eq!(parse_actions(&text, &resolve).unwrap(), actions);
        }
    }
}
