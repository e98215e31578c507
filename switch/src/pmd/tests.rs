//! The pipeline driven on a [`Pmd`] without its thread: ports added and rules installed
//! with the same commands the control plane sends, frames injected into memory ports, one
//! [`Pmd::poll`] at a time, and what each port sent read back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use flowtable::{Action, MacAddr, Match, PortNo, Rule, RuleId, VlanId};
use nix::sys::eventfd::EventFd;
use ports::mem::{self, MemPeer};
use ports::{Packet, Port};

use super::trace::{NormalOutcome, TraceRequest};
use super::{Pmd, PmdCmd, PmdConfig, RuleOp};
use crate::config::{VlanConfig, VlanMode};
use crate::datapath::vlan::PortVlan;
use crate::stats::{DropReason, PmdSnapshot};

const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);
const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xb]);

/// A PMD and the far ends of its memory ports (`peers[i]` is port `i`).
struct Rig {
    pmd: Pmd,
    peers: Vec<Option<MemPeer>>,
    /// The command channel (most tests apply commands directly, without it).
    cmds: Sender<PmdCmd>,
}

impl Rig {
    fn new() -> Rig {
        let (cmds, rx) = crossbeam_channel::unbounded();
        let cfg = PmdConfig {
            index: 0,
            core: 0,
            emc_entries: 1024,
            emc_insert_inv_prob: 100,
            mac_table_size: 1024,
            mac_aging: Duration::from_secs(300),
            sleep_after: None,
        };
        let wake = Arc::new(EventFd::new().unwrap());
        let mirror = Arc::new(Mutex::new(PmdSnapshot::default()));
        Rig {
            pmd: Pmd::new(cfg, rx, wake, mirror),
            peers: Vec::new(),
            cmds,
        }
    }

    /// Adds memory port `n` with VLAN mode `vlan`.
    fn port(&mut self, n: u32, vlan: PortVlan) {
        let (mut port, peer) = mem::pair(64).unwrap();
        self.pmd.apply(PmdCmd::AddPort {
            port: PortNo(n),
            rxqs: vec![(0, port.take_rxq(0).unwrap())],
            txq: port.txq(0).unwrap(),
            vlan,
            underlay: None,
        });
        let i = n as usize;
        if self.peers.len() <= i {
            self.peers.resize_with(i + 1, || None);
        }
        self.peers[i] = Some(peer);
    }

    /// Installs a rule matching in-port `in_port`.
    fn rule(&mut self, id: u64, in_port: u32, actions: &[Action]) {
        let mut matches = Match::any();
        matches.set_in_port(PortNo(in_port));
        self.rule_matching(id, matches, actions);
    }

    /// Installs a rule (priority 10).
    fn rule_matching(&mut self, id: u64, matches: Match, actions: &[Action]) {
        self.pmd
            .apply(PmdCmd::Rules(vec![RuleOp::Insert(Box::new(Rule {
                id: RuleId(id),
                priority: 10,
                matches,
                actions: actions.into(),
            }))]));
    }

    fn peer(&self, n: u32) -> &MemPeer {
        self.peers[n as usize].as_ref().unwrap()
    }

    /// Injects `frames` into port `n` and polls once; returns the frames polled.
    fn send(&mut self, n: u32, frames: &[Vec<u8>]) -> usize {
        for f in frames {
            assert!(self.peer(n).inject(f));
        }
        self.pmd.poll(Instant::now)
    }

    /// What port `n` sent since the last call.
    fn sent(&self, n: u32) -> Vec<Vec<u8>> {
        self.peer(n).drain()
    }

    /// Adds port `n` as a sink that only counts what it is sent (no receive queue, no
    /// allocation): what the callgrind harness sends to, so that its count is the PMD's.
    fn sink_port(&mut self, n: u32) -> Arc<AtomicUsize> {
        let sent = Arc::new(AtomicUsize::new(0));
        self.pmd.apply(PmdCmd::AddPort {
            port: PortNo(n),
            rxqs: Vec::new(),
            txq: Box::new(Sink(sent.clone())),
            vlan: PortVlan::Untagged,
            underlay: None,
        });
        sent
    }
}

/// A transmit queue that takes every frame and counts them, once per burst.
struct Sink(Arc<AtomicUsize>);

impl ports::TxQueue for Sink {
    fn tx_burst(&mut self, pkts: &mut [Packet]) -> usize {
        self.0.fetch_add(pkts.len(), Ordering::Relaxed);
        pkts.len()
    }
}

/// A 64-byte frame of IEEE local experimental EtherType 0x88b5, `seq` in its first payload
/// byte; with `tci`, an 802.1Q tag inserted after the MACs (68 bytes then).
fn frame(dst: MacAddr, src: MacAddr, tci: Option<u16>, seq: u8) -> Vec<u8> {
    let mut f = Vec::with_capacity(68);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&[0x88, 0xb5, seq]);
    f.resize(64, 0);
    if let Some(t) = tci {
        f.splice(12..12, [0x81, 0x00, (t >> 8) as u8, t as u8]);
    }
    f
}

/// A trunk of `allowed` (`None`: every VLAN) without a native VLAN.
fn trunk(allowed: Option<&[u16]>) -> PortVlan {
    PortVlan::from_config(Some(&VlanConfig {
        mode: VlanMode::Trunk,
        tag: None,
        allowed: allowed.map(<[u16]>::to_vec),
        native: None,
    }))
}

#[test]
fn a_port_rule_outputs_every_frame_without_the_cache() {
    let mut r = Rig::new();
    r.port(1, PortVlan::Untagged);
    r.port(2, PortVlan::Untagged);
    r.rule(1, 1, &[Action::Output(PortNo(2))]);
    let frames: Vec<_> = (0..3).map(|i| frame(B, A, None, i)).collect();
    assert_eq!(r.send(1, &frames), 3);
    assert_eq!(r.sent(2), frames);
    assert!(r.sent(1).is_empty());
    let st = &r.pmd.stats;
    assert_eq!((st.rx_packets, st.port_decided, st.emc_hits), (3, 3, 0));
    assert_eq!(st.ports[2].tx_packets, 3);
    assert_eq!(st.ports[1].rx_bytes, 3 * 64);
    assert_eq!(r.pmd.rxqs[0].counters.rx_packets, 3);
}

#[test]
fn normal_floods_then_sends_to_the_learned_port_as_trace_says() {
    let mut r = Rig::new();
    for n in 1..=3 {
        r.port(n, PortVlan::Untagged);
    }
    // A broadcast from A floods to the other ports, and A is learned on port 1.
    let hello = frame(MacAddr::BROADCAST, A, None, 1);
    r.send(1, std::slice::from_ref(&hello));
    assert_eq!(r.sent(2), std::slice::from_ref(&hello));
    assert_eq!(r.sent(3), [hello]);
    assert!(r.sent(1).is_empty());
    // B answers A: only port 1 gets it, and B is learned on port 2.
    let answer = frame(A, B, None, 2);
    r.send(2, std::slice::from_ref(&answer));
    assert_eq!(r.sent(1), [answer]);
    assert!(r.sent(3).is_empty());
    // The tracer asks the same decision the datapath takes.
    let to_b = frame(B, A, None, 3);
    let t = r.pmd.trace(&TraceRequest {
        in_port: PortNo(3),
        frame: to_b.clone(),
    });
    assert_eq!(t.normal, Some(NormalOutcome::Learned(PortNo(2))));
    r.send(3, std::slice::from_ref(&to_b));
    assert_eq!(r.sent(2), [to_b]);
    assert!(r.sent(1).is_empty());
    assert_eq!(r.pmd.stats.drops, [0; DropReason::COUNT]);
}

#[test]
fn a_vlan_stays_in_its_ports_and_is_tagged_on_trunks() {
    let mut r = Rig::new();
    r.port(1, PortVlan::Access(10));
    r.port(2, trunk(Some(&[10, 20])));
    r.port(3, PortVlan::Access(20));
    let untagged = frame(MacAddr::BROADCAST, A, None, 1);
    r.send(1, std::slice::from_ref(&untagged));
    assert_eq!(r.sent(2), [frame(MacAddr::BROADCAST, A, Some(10), 1)]);
    assert!(r.sent(3).is_empty(), "another VLAN");
    // Back from the trunk in VLAN 20: untagged out of the access port of 20.
    r.send(2, &[frame(MacAddr::BROADCAST, B, Some(20), 2)]);
    assert_eq!(r.sent(3), [frame(MacAddr::BROADCAST, B, None, 2)]);
    assert!(r.sent(1).is_empty());
    // A tagged frame on an access port is not taken.
    r.send(1, &[frame(MacAddr::BROADCAST, A, Some(10), 3)]);
    assert!(r.sent(2).is_empty() && r.sent(3).is_empty());
    assert_eq!(r.pmd.stats.drops[DropReason::Vlan as usize], 1);
}

#[test]
fn push_and_pop_vlan_actions_edit_the_frame() {
    let mut r = Rig::new();
    r.port(1, PortVlan::Untagged);
    // A trunk: port 2 takes the tagged frames its rule pops.
    r.port(2, trunk(None));
    let vid = VlanId::new(5).unwrap();
    r.rule(
        1,
        1,
        &[Action::PushVlan { vid, pcp: 3 }, Action::Output(PortNo(2))],
    );
    r.rule(2, 2, &[Action::PopVlan, Action::Output(PortNo(1))]);
    r.send(1, &[frame(B, A, None, 1)]);
    let pushed = r.sent(2);
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0][12..16], [0x81, 0x00, 0x60, 0x05]);
    assert_eq!(pushed[0][..], frame(B, A, Some(0x6005), 1)[..]);
    r.send(2, &[frame(A, B, Some(7), 2)]);
    assert_eq!(r.sent(1), [frame(A, B, None, 2)]);
    assert_eq!(r.pmd.stats.drops, [0; DropReason::COUNT]);
}

/// `normal` after a VLAN edit decides on the edited frame, and `trace` says so: an
/// untagged frame that a rule tags with VLAN 20 floods to the trunk carrying 20, not to the
/// other untagged port.
#[test]
fn normal_after_push_vlan_floods_in_the_pushed_vlan_as_trace_says() {
    let mut r = Rig::new();
    r.port(1, PortVlan::Untagged);
    r.port(2, trunk(Some(&[20])));
    r.port(3, PortVlan::Untagged);
    let vid = VlanId::new(20).unwrap();
    r.rule(1, 1, &[Action::PushVlan { vid, pcp: 0 }, Action::Normal]);
    let hello = frame(MacAddr::BROADCAST, A, None, 1);
    let t = r.pmd.trace(&TraceRequest {
        in_port: PortNo(1),
        frame: hello.clone(),
    });
    assert_eq!(t.normal, Some(NormalOutcome::Flood(vec![PortNo(2)])));
    r.send(1, &[hello]);
    assert_eq!(r.sent(2), [frame(MacAddr::BROADCAST, A, Some(20), 1)]);
    assert!(r.sent(3).is_empty(), "the untagged domain");
    assert_eq!(r.pmd.stats.drops, [0; DropReason::COUNT]);
}

/// With far more flows than the exact-match cache holds, the cache hits too rarely to pay
/// for itself and sits out (frames go straight to the classifier, still decided right);
/// once traffic narrows to a few flows it is asked again within its sit-out, and hits.
#[test]
fn the_exact_match_cache_sits_out_while_it_hits_too_rarely() {
    let mut r = Rig::new();
    r.port(1, PortVlan::Untagged);
    let sent = r.sink_port(2);
    r.rule_matching(
        1,
        "in_port=1,ip,ip_dst=198.18.0.0/15".parse().unwrap(),
        &[Action::Output(PortNo(2))],
    );
    let now = Instant::now();
    let burst_of = |r: &mut Rig, flow: &dyn Fn(usize) -> u32| {
        for (i, b) in r.pmd.burst.iter_mut().take(32).enumerate() {
            b.copy_from(&udp_from(flow(i)));
        }
        r.pmd.process(PortNo(1), 32, now);
    };
    // 512 bursts of distinct flows (16,384 frames, a cache of 1,024 entries).
    for k in 0..512usize {
        burst_of(&mut r, &|i| (k * 32 + i) as u32);
    }
    assert!(r.pmd.emc_gate.sitting_out());
    let s = r.pmd.stats.clone();
    assert_eq!(
        sent.load(Ordering::Relaxed),
        16_384,
        "every frame decided and sent"
    );
    assert_eq!(s.emc_hits + s.emc_misses, 16_384);
    assert!(s.emc_hits < 16_384 / 10, "{} hits", s.emc_hits);
    assert_eq!(s.classifier_hits, s.emc_misses);
    // One flow from now on: the cache is asked again within its sit-out, then hits.
    for _ in 0..(2 * 16 * 4096 / 32) {
        burst_of(&mut r, &|_| 7);
    }
    assert!(!r.pmd.emc_gate.sitting_out());
    let hits = r.pmd.stats.emc_hits;
    burst_of(&mut r, &|_| 7);
    assert_eq!(r.pmd.stats.emc_hits, hits + 32);
    assert_eq!(sent.load(Ordering::Relaxed), 16_384 + (2 * 16 * 4096 + 32));
}

/// testpmd's 64-byte UDP frame, 02:..:01 -> 02:..:02, to 198.18.0.2 port 9, from flow
/// `flow`'s address and port: 198.18.x.y or 198.19.x.y (x, y: the flow's low 16 bits; bit 16
/// picks 198.19), UDP source port 1024 plus the bits above.
fn udp_from(flow: u32) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(&[
        0x45, 0, 0, 50, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
    ]);
    f.extend_from_slice(&[0, 9, 0, 9, 0, 30, 0, 0]);
    f.resize(64, 0);
    set_flow(&mut f, flow);
    f
}

/// Writes flow `flow`'s source address and port into a frame from [`udp_from`].
fn set_flow(f: &mut [u8], flow: u32) {
    f[27] = 18 + ((flow >> 16) & 1) as u8;
    f[28..30].copy_from_slice(&(flow as u16).to_be_bytes());
    f[34..36].copy_from_slice(&(1024 + (flow >> 17) as u16).to_be_bytes());
}

/// Every frame of 1000 port-decided bursts reaches its output, and the callgrind harness
/// (run by hand under `valgrind --tool=callgrind` on the release test binary, `--exact
/// pmd::tests::burst_loop_for_callgrind`): `CG_BURSTS` bursts (default 1000) of 32 64-byte
/// UDP frames from port 1 through the pipeline to port 2 (a sink that counts, or with
/// `CG_SINK=mem` the memory port the numbers before session 9 were taken with, which
/// allocates a `Vec` per frame: about 270 instructions), under the rules `CG_RULES` names:
/// `port` (`in_port=1`: the port decision, the default) or `l3` (`in_port=1,ip,
/// ip_dst=198.18.0.0/15`: every frame through the exact-match cache), over `CG_FLOWS` flows
/// (default 1; frame `i` is flow `i % CG_FLOWS`: its IPv4 source and UDP source port differ,
/// so with many flows nearly every frame misses the exact-match cache). Instructions per
/// frame are the difference of two runs' totals over the difference of their frames, so the
/// setup cancels out; filling the burst and draining port 2 count in both versions alike.
#[test]
fn burst_loop_for_callgrind() {
    let bursts: usize = std::env::var("CG_BURSTS").map_or(1000, |v| v.parse().unwrap());
    let rules = std::env::var("CG_RULES").unwrap_or_else(|_| "port".into());
    let flows: u32 = std::env::var("CG_FLOWS").map_or(1, |v| v.parse().unwrap());
    let mem_sink = std::env::var("CG_SINK").is_ok_and(|v| v == "mem");
    let mut r = Rig::new();
    r.port(1, PortVlan::Untagged);
    let counted = if mem_sink {
        r.port(2, PortVlan::Untagged);
        None
    } else {
        Some(r.sink_port(2))
    };
    let text = if rules == "l3" {
        "in_port=1,ip,ip_dst=198.18.0.0/15"
    } else {
        "in_port=1"
    };
    r.rule_matching(1, text.parse().unwrap(), &[Action::Output(PortNo(2))]);
    let frame: Packet = {
        let mut p = Packet::new();
        p.copy_from(&udp_from(0));
        p
    };
    let now = Instant::now();
    let mut sent = 0;
    let mut flow = 0u32;
    for _ in 0..bursts {
        for b in r.pmd.burst.iter_mut().take(32) {
            b.copy_from(frame.data());
            if flows > 1 {
                set_flow(b.data_mut(), flow);
                flow = (flow + 1) % flows;
            }
        }
        r.pmd.process(PortNo(1), 32, now);
        if mem_sink {
            sent += r.sent(2).len();
        }
    }
    if let Some(counted) = counted {
        sent = counted.load(Ordering::Relaxed);
    }
    assert_eq!(sent, 32 * bursts);
}

/// A rule change larger than a slice is applied over several loop iterations, in order, and
/// frames are forwarded between the slices (the PMD never stops for the whole change);
/// commands sent behind it wait until it is all in.
#[test]
fn a_large_rule_change_is_applied_in_slices_with_forwarding_between() {
    use super::command::RULE_OPS_PER_ITERATION;
    let mut r = Rig::new();
    r.port(1, PortVlan::Untagged);
    r.port(2, PortVlan::Untagged);
    r.rule(1, 1, &[Action::Output(PortNo(2))]);
    // Rules that never match these frames (in-port 2), after one that replaces rule 1's
    // decision at the very end: frames follow rule 1 until the last slice is in.
    let n = 3 * RULE_OPS_PER_ITERATION + 10;
    let mut ops: Vec<RuleOp> = (0..n as u64)
        .map(|i| {
            let mut m = Match::any();
            m.set_in_port(PortNo(2));
            m.set(
                flowtable::Field::EthSrc,
                &format!("02:00:00:00:{:02x}:{:02x}", i >> 8, i & 0xff),
            )
            .unwrap();
            RuleOp::Insert(Box::new(Rule {
                id: RuleId(100 + i),
                priority: 10,
                matches: m,
                actions: vec![Action::Output(PortNo(1))].into(),
            }))
        })
        .collect();
    let mut drop_all = Match::any();
    drop_all.set_in_port(PortNo(1));
    ops.push(RuleOp::Insert(Box::new(Rule {
        id: RuleId(99),
        priority: 20,
        matches: drop_all,
        actions: Vec::new().into(),
    })));
    r.cmds.send(PmdCmd::Rules(ops)).unwrap();
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    r.cmds.send(PmdCmd::Barrier(done_tx)).unwrap();

    let mut slices = 0;
    while r.pmd.rules_pending() || slices == 0 {
        assert!(matches!(
            r.pmd.drain_commands(),
            super::command::Flow::Continue
        ));
        slices += 1;
        if r.pmd.rules_pending() {
            assert!(
                done_rx.try_recv().is_err(),
                "the barrier waits for the change"
            );
            let f = frame(B, A, None, slices as u8);
            assert_eq!(r.send(1, std::slice::from_ref(&f)), 1);
            assert_eq!(r.sent(2), vec![f], "forwarded by rule 1 mid-change");
        }
    }
    assert_eq!(slices, n / RULE_OPS_PER_ITERATION + 1);
    assert_eq!(r.pmd.classifier.len(), n + 2);
    assert!(matches!(
        r.pmd.drain_commands(),
        super::command::Flow::Continue
    ));
    assert!(
        done_rx.try_recv().is_ok(),
        "the barrier answered after the change"
    );
    assert_eq!(r.send(1, &[frame(B, A, None, 0)]), 1);
    assert!(
        r.sent(2).is_empty(),
        "the last rule of the change decides now"
    );
}
