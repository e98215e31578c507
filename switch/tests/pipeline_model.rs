//! A property test of the whole pipeline: random small rule sets installed through the
//! `Switch` API, random frames injected into memory ports, and the copies of each frame every
//! port sends compared with a model of the decision: the actions of the highest-priority
//! rule that matches (any one of them when several share that priority: the classifier
//! leaves such ties open), and `normal` when none does.
//!
//! The frames' destinations are never learned (broadcast, multicast, or unicast to MACs that
//! no frame comes from), so `normal` is a flood to every port but the in-port; an output to
//! the in-port sends nothing. One switch serves every case: each case replaces the rules, so
//! the exact-match cache and the in-port decisions must follow rule changes too.

mod common;

use std::cell::Cell;

use common::*;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use switch::config::FlowConfig;

const PORTS: [&str; 4] = ["p0", "p1", "p2", "p3"];
/// The last octets of the 198.18.0.x destinations frames and rules use: few, so that rules
/// and frames meet often, on both sides of the prefix boundaries below.
const HOSTS: [u8; 8] = [1, 2, 3, 7, 64, 129, 130, 200];
const PREFIXES: [u8; 6] = [24, 25, 26, 28, 30, 32];
const TP_DSTS: [u16; 3] = [53, 80, 2000];
/// A non-IP EtherType (IEEE local experimental).
const OTHER_ETH_TYPE: u16 = 0x88b5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Udp,
    Tcp,
}

/// What a rule asks of the frame beyond its in-port.
#[derive(Clone, Debug)]
enum EthMatch {
    /// Nothing.
    Any,
    /// `eth_type=0x88b5`.
    Other,
    /// `eth_type=0x0800`, optionally an `ip_dst` prefix (host octet, length) and a protocol
    /// with optionally a `tp_dst`.
    Ipv4 {
        ip_dst: Option<(u8, u8)>,
        l4: Option<(Proto, Option<u16>)>,
    },
}

#[derive(Clone, Copy, Debug)]
enum Act {
    Output(usize),
    Normal,
}

#[derive(Clone, Debug)]
struct RuleSpec {
    priority: u32,
    in_port: Option<usize>,
    eth: EthMatch,
    /// Empty: `drop`.
    actions: Vec<Act>,
}

#[derive(Clone, Copy, Debug)]
enum Dst {
    Broadcast,
    Multicast,
    /// A unicast MAC no frame comes from.
    Unknown(u8),
}

#[derive(Clone, Copy, Debug)]
enum Body {
    /// EtherType 0x88b5.
    Other,
    /// IPv4 to 198.18.0.`host`.
    Ipv4 { host: u8, proto: Proto, tp_dst: u16 },
}

#[derive(Clone, Copy, Debug)]
struct FrameSpec {
    in_port: usize,
    dst: Dst,
    body: Body,
}

fn arb_proto() -> impl Strategy<Value = Proto> {
    prop_oneof![Just(Proto::Udp), Just(Proto::Tcp)]
}

fn arb_rule() -> BoxedStrategy<RuleSpec> {
    let eth = prop_oneof![
        2 => Just(EthMatch::Any),
        1 => Just(EthMatch::Other),
        4 => (
            proptest::option::of((select(&HOSTS[..]), select(&PREFIXES[..]))),
            proptest::option::of((arb_proto(), proptest::option::of(select(&TP_DSTS[..])))),
        )
            .prop_map(|(ip_dst, l4)| EthMatch::Ipv4 { ip_dst, l4 }),
    ];
    let act = prop_oneof![
        5 => (0..PORTS.len()).prop_map(Act::Output),
        1 => Just(Act::Normal),
    ];
    let actions = prop_oneof![
        1 => Just(Vec::new()),
        4 => proptest::collection::vec(act, 1..=3),
    ];
    // Priorities from a small range: ties between overlapping rules happen.
    (1u32..=6, proptest::option::of(0..PORTS.len()), eth, actions)
        .prop_map(|(priority, in_port, eth, actions)| RuleSpec {
            priority,
            in_port,
            eth,
            actions,
        })
        .boxed()
}

fn arb_frame() -> BoxedStrategy<FrameSpec> {
    let dst = prop_oneof![
        Just(Dst::Broadcast),
        Just(Dst::Multicast),
        (0u8..8).prop_map(Dst::Unknown),
    ];
    let body = prop_oneof![
        1 => Just(Body::Other),
        4 => (select(&HOSTS[..]), arb_proto(), select(&TP_DSTS[..]))
            .prop_map(|(host, proto, tp_dst)| Body::Ipv4 { host, proto, tp_dst }),
    ];
    (0..PORTS.len(), dst, body)
        .prop_map(|(in_port, dst, body)| FrameSpec { in_port, dst, body })
        .boxed()
}

/// The rule as the `Switch` API takes it.
fn flow_config(r: &RuleSpec) -> FlowConfig {
    let mut m: Vec<(&str, String)> = Vec::new();
    if let Some(p) = r.in_port {
        m.push(("in_port", PORTS[p].to_string()));
    }
    match &r.eth {
        EthMatch::Any => {}
        EthMatch::Other => m.push(("eth_type", format!("{OTHER_ETH_TYPE:#06x}"))),
        EthMatch::Ipv4 { ip_dst, l4 } => {
            m.push(("eth_type", "0x0800".to_string()));
            if let Some((host, len)) = ip_dst {
                m.push(("ip_dst", format!("198.18.0.{host}/{len}")));
            }
            if let Some((proto, tp_dst)) = l4 {
                let name = match proto {
                    Proto::Udp => "udp",
                    Proto::Tcp => "tcp",
                };
                m.push(("ip_proto", name.to_string()));
                if let Some(tp) = tp_dst {
                    m.push(("tp_dst", tp.to_string()));
                }
            }
        }
    }
    let actions: Vec<String> = if r.actions.is_empty() {
        vec!["drop".to_string()]
    } else {
        r.actions
            .iter()
            .map(|a| match a {
                Act::Output(p) => format!("output:{}", PORTS[*p]),
                Act::Normal => "normal".to_string(),
            })
            .collect()
    };
    let m: Vec<(&str, &str)> = m.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let actions: Vec<&str> = actions.iter().map(String::as_str).collect();
    flow(r.priority, &m, &actions)
}

/// The frame's bytes; `seq` goes into the last four.
fn frame_bytes(f: &FrameSpec, seq: u32) -> Vec<u8> {
    let src = 0x10 + f.in_port as u8;
    let dst = match f.dst {
        Dst::Broadcast => [0xff; 6],
        Dst::Multicast => [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01],
        Dst::Unknown(n) => mac(0xe0 + n),
    };
    let payload = seq.to_be_bytes();
    let mut out = Vec::new();
    match f.body {
        Body::Other => {
            let mut body = [0u8; 46];
            body[42..].copy_from_slice(&payload);
            out = testkit::frames::ethernet(dst, mac(src), OTHER_ETH_TYPE, &body);
        }
        Body::Ipv4 {
            host,
            proto,
            tp_dst,
        } => {
            let l3 =
                etherparse::PacketBuilder::ethernet2(mac(src), dst).ipv4(ip(src), ip(host), 64);
            match proto {
                Proto::Udp => l3.udp(1000, tp_dst).write(&mut out, &payload),
                Proto::Tcp => l3.tcp(1000, tp_dst, 1, 1024).write(&mut out, &payload),
            }
            .unwrap();
        }
    }
    out
}

fn rule_matches(r: &RuleSpec, f: &FrameSpec) -> bool {
    if r.in_port.is_some_and(|p| p != f.in_port) {
        return false;
    }
    match (&r.eth, f.body) {
        (EthMatch::Any, _) | (EthMatch::Other, Body::Other) => true,
        (EthMatch::Other, Body::Ipv4 { .. }) | (EthMatch::Ipv4 { .. }, Body::Other) => false,
        (
            EthMatch::Ipv4 { ip_dst, l4 },
            Body::Ipv4 {
                host,
                proto,
                tp_dst,
            },
        ) => {
            let ip_ok = ip_dst.is_none_or(|(rule_host, len)| {
                let mask = u32::MAX << (32 - u32::from(len));
                let (a, b) = (
                    u32::from_be_bytes(ip(rule_host)),
                    u32::from_be_bytes(ip(host)),
                );
                (a ^ b) & mask == 0
            });
            let l4_ok = l4.is_none_or(|(rule_proto, rule_tp)| {
                rule_proto == proto && rule_tp.is_none_or(|t| t == tp_dst)
            });
            ip_ok && l4_ok
        }
    }
}

/// Copies per port that `actions` send of a frame from `in_port` (`normal`: a flood).
fn copies(actions: &[Act], in_port: usize) -> [u32; PORTS.len()] {
    let mut out = [0; PORTS.len()];
    for a in actions {
        match *a {
            Act::Output(p) if p != in_port => out[p] += 1,
            Act::Output(_) => {}
            Act::Normal => {
                for (p, n) in out.iter_mut().enumerate() {
                    if p != in_port {
                        *n += 1;
                    }
                }
            }
        }
    }
    out
}

/// The copies per port the model allows for `f` under `rules`: one outcome, or several when
/// matching rules of the top priority disagree.
fn model(rules: &[RuleSpec], f: &FrameSpec) -> Vec<[u32; PORTS.len()]> {
    let matching: Vec<&RuleSpec> = rules.iter().filter(|r| rule_matches(r, f)).collect();
    let Some(top) = matching.iter().map(|r| r.priority).max() else {
        return vec![copies(&[Act::Normal], f.in_port)];
    };
    let mut outcomes: Vec<[u32; PORTS.len()]> = matching
        .iter()
        .filter(|r| r.priority == top)
        .map(|r| copies(&r.actions, f.in_port))
        .collect();
    outcomes.sort();
    outcomes.dedup();
    outcomes
}

#[test]
fn pipeline_forwards_as_the_highest_priority_matching_rule_says() {
    let (sw, peers) = switch_with(&PORTS, &[]);
    let seq = Cell::new(0u32);
    // Frames decided by a rule, by `normal`, sent nowhere, by a tie of disagreeing rules.
    let tally = Cell::new([0u32; 4]);
    let strategy = (
        proptest::collection::vec(arb_rule(), 0..=8),
        proptest::collection::vec(arb_frame(), 1..=24),
    );
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 64,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let result = runner.run(&strategy, |(rules, frames)| {
        sw.del_all_flows().unwrap();
        let flows: Vec<FlowConfig> = rules.iter().map(flow_config).collect();
        sw.add_flows(&flows)
            .map_err(|e| TestCaseError::fail(format!("rules refused: {e}")))?;
        // Sequence numbers never repeat across cases: a late copy from an earlier case
        // cannot pass for one of this case's.
        let first = seq.get();
        let sent: Vec<Vec<u8>> = frames
            .iter()
            .enumerate()
            .map(|(i, f)| frame_bytes(f, first + i as u32))
            .collect();
        seq.set(first + frames.len() as u32);
        for (f, bytes) in frames.iter().zip(&sent) {
            prop_assert!(peers[f.in_port].inject(bytes), "rx queue full");
        }
        let got = collect(&sw, &peers);
        let mut counts = vec![[0u32; PORTS.len()]; frames.len()];
        for (port, received) in got.iter().enumerate() {
            for bytes in received {
                let s = seq_of(bytes);
                let i = s.wrapping_sub(first) as usize;
                prop_assert!(
                    i < frames.len(),
                    "{} sent a frame not of this case (seq {s})",
                    PORTS[port]
                );
                prop_assert_eq!(
                    bytes,
                    &sent[i],
                    "frame {} changed on its way to {}",
                    i,
                    PORTS[port]
                );
                counts[i][port] += 1;
            }
        }
        for (i, f) in frames.iter().enumerate() {
            let allowed = model(&rules, f);
            let by_rule = rules.iter().any(|r| rule_matches(r, f));
            let c = tally.get();
            tally.set([
                c[0] + u32::from(by_rule),
                c[1] + u32::from(!by_rule),
                c[2] + u32::from(counts[i] == [0; PORTS.len()]),
                c[3] + u32::from(allowed.len() > 1),
            ]);
            prop_assert!(
                allowed.contains(&counts[i]),
                "frame {i} {f:?}: copies per port {:?}, the model allows {allowed:?}",
                counts[i]
            );
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The generators reach every kind of decision (each count is in the tens or hundreds
    // per run): a model check that only ever saw `normal`, or no drops, would prove little.
    let [by_rule, by_normal, none_sent, ties] = tally.get();
    assert!(
        by_rule > 0 && by_normal > 0 && none_sent > 0 && ties > 0,
        "frames decided by a rule {by_rule}, by normal {by_normal}, sent nowhere \
         {none_sent}, by disagreeing rules of equal priority {ties}"
    );
}
