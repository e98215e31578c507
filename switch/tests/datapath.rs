//! The datapath forwarding between in-memory ports: by rule, by `normal` learning, with VLAN
//! edits, under rule and port changes while traffic flows, and with faulty input.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use switch::DropReason;

#[test]
fn forwards_by_rule_both_ways() {
    let flows = [
        flow(100, &[("in_port", "p1")], &["output:p2"]),
        flow(100, &[("in_port", "p2")], &["output:p1"]),
    ];
    let (sw, peers) = switch_with(&["p1", "p2", "p3"], &flows);
    for i in 0..100 {
        peers[0].inject(&unicast(1, 9, i));
        peers[1].inject(&unicast(2, 9, 1000 + i));
    }
    let got = collect(&sw, &peers);
    assert_eq!(got[1].len(), 100, "p1 -> p2");
    assert_eq!(got[0].len(), 100, "p2 -> p1");
    assert!(got[2].is_empty(), "p3 gets nothing: rules, not flooding");
    let seqs: Vec<u32> = got[1].iter().map(|f| seq_of(f)).collect();
    assert_sequence(&seqs, 100, "order kept");
    assert_eq!(got[1][0], unicast(1, 9, 0), "frame unchanged");

    let stats = sw.stats();
    let s = &stats[0].stats;
    assert_eq!(s.rx_packets, 200);
    // In-port rules decide every frame of their port: no cache or classifier lookup.
    assert_eq!(s.port_decided, 200);
    assert_eq!((s.emc_hits, s.emc_misses, s.classifier_hits), (0, 0, 0));
    let p1 = sw.port_no("p1").unwrap();
    assert_eq!(s.ports[p1.index()].rx_packets, 100);
    assert_eq!(s.ports[p1.index()].tx_packets, 100);
    let hits: Vec<u64> = sw.flows().unwrap().iter().map(|f| f.hits).collect();
    assert_eq!(hits, vec![100, 100]);
}

#[test]
fn priority_and_masks_decide() {
    let flows = [
        // Everything from p1 goes to p2 ...
        flow(10, &[("in_port", "p1")], &["output:p2"]),
        // ... except 198.18.0.128/25, which goes to p3 ...
        flow(
            20,
            &[
                ("in_port", "p1"),
                ("eth_type", "0x0800"),
                ("ip_dst", "198.18.0.128/25"),
            ],
            &["output:p3"],
        ),
        // ... and UDP port 2000 to .200, which is dropped.
        flow(
            30,
            &[
                ("eth_type", "0x0800"),
                ("ip_dst", "198.18.0.200"),
                ("ip_proto", "udp"),
                ("tp_dst", "2000"),
            ],
            &["drop"],
        ),
    ];
    let (sw, peers) = switch_with(&["p1", "p2", "p3"], &flows);
    peers[0].inject(&unicast(1, 5, 1)); // -> p2
    peers[0].inject(&unicast(1, 130, 2)); // -> p3
    peers[0].inject(&unicast(1, 200, 3)); // dropped
    let got = collect(&sw, &peers);
    assert_eq!(
        got[1].iter().map(|f| seq_of(f)).collect::<Vec<_>>(),
        vec![1]
    );
    assert_eq!(
        got[2].iter().map(|f| seq_of(f)).collect::<Vec<_>>(),
        vec![2]
    );
    assert_eq!(sw.stats()[0].stats.drops_of(DropReason::Rule), 1);
}

/// A port whose frames one in-port rule decides skips the cache, until a higher-priority
/// rule that looks at more than the in-port arrives; then every frame is looked up (and the
/// specific rule wins where it matches), and after it goes the port is decided again.
#[test]
fn port_decided_until_a_specific_rule_overrides() {
    let (sw, peers) = switch_with(
        &["p1", "p2", "p3"],
        &[flow(10, &[("in_port", "p1")], &["output:p2"])],
    );
    let s = |sw: &switch::Switch| sw.stats()[0].stats.clone();
    for i in 0..10 {
        peers[0].inject(&unicast(1, 5, i));
    }
    let got = collect(&sw, &peers);
    assert_eq!(got[1].len(), 10);
    assert_eq!((s(&sw).port_decided, s(&sw).emc_misses), (10, 0));
    let decided = |sw: &switch::Switch| sw.trace("p1", unicast(1, 130, 0)).unwrap().port_decided;
    assert!(decided(&sw), "trace says the port is decided");

    let ids = sw
        .add_flows(&[flow(
            20,
            &[("eth_type", "0x0800"), ("ip_dst", "198.18.0.130")],
            &["output:p3"],
        )])
        .unwrap();
    peers[0].inject(&unicast(1, 5, 100));
    peers[0].inject(&unicast(1, 130, 101));
    let got = collect(&sw, &peers);
    assert_eq!(
        got[1].iter().map(|f| seq_of(f)).collect::<Vec<_>>(),
        vec![100]
    );
    assert_eq!(
        got[2].iter().map(|f| seq_of(f)).collect::<Vec<_>>(),
        vec![101]
    );
    assert_eq!(
        s(&sw).port_decided,
        10,
        "looked up while the specific rule exists"
    );
    assert!(!decided(&sw));
    assert_eq!(s(&sw).emc_misses, 2);

    sw.del_flow(ids[0]).unwrap();
    peers[0].inject(&unicast(1, 130, 102));
    let got = collect(&sw, &peers);
    assert_eq!(
        got[1].iter().map(|f| seq_of(f)).collect::<Vec<_>>(),
        vec![102]
    );
    assert_eq!(s(&sw).port_decided, 11, "decided again");
    let hits: Vec<u64> = sw.flows().unwrap().iter().map(|f| f.hits).collect();
    assert_eq!(
        hits,
        vec![12],
        "every frame the in-port rule decided is counted"
    );
}

#[test]
fn normal_learns_and_floods() {
    let (sw, peers) = switch_with(&["p1", "p2", "p3"], &[]);
    // Unknown destination: flooded to every port but the in-port.
    peers[0].inject(&unicast(1, 2, 1));
    let got = collect(&sw, &peers);
    assert!(got[0].is_empty(), "never back out of the in-port");
    assert_eq!(got[1].len(), 1);
    assert_eq!(got[2].len(), 1);

    // Host 2 answers: host 1 was learned on p1, so only p1 gets it.
    peers[1].inject(&unicast(2, 1, 2));
    let got = collect(&sw, &peers);
    assert_eq!(got[0].len(), 1);
    assert!(got[1].is_empty() && got[2].is_empty());

    // Now both are known: unicast both ways without flooding.
    peers[0].inject(&unicast(1, 2, 3));
    let got = collect(&sw, &peers);
    assert_eq!((got[0].len(), got[1].len(), got[2].len()), (0, 1, 0));

    // Broadcast always floods.
    peers[2].inject(&broadcast(3, 4));
    let got = collect(&sw, &peers);
    assert_eq!((got[0].len(), got[1].len(), got[2].len()), (1, 1, 0));

    let fdb = sw.fdb().unwrap();
    let learned: Vec<String> = fdb
        .iter()
        .map(|e| format!("{}@{}", e.mac, e.port))
        .collect();
    assert_eq!(learned.len(), 3, "{learned:?}");

    // A host that moves is re-learned on its new port.
    peers[2].inject(&unicast(1, 2, 5));
    settle(&sw, &peers);
    peers[1].inject(&unicast(2, 1, 6));
    let got = collect(&sw, &peers);
    assert_eq!((got[0].len(), got[1].len(), got[2].len()), (0, 1, 1));

    sw.flush_fdb().unwrap();
    assert!(sw.fdb().unwrap().is_empty());
}

#[test]
fn normal_keeps_vlans_apart() {
    // Trunks of every VLAN (ports without `vlan` carry none).
    let every = || Some(trunk_all());
    let (sw, peers) = switch_from(
        vec![
            mem_port_vlan("p1", every()),
            mem_port_vlan("p2", every()),
            mem_port_vlan("p3", every()),
        ],
        &[],
    );
    let peers: Vec<_> = peers.into_iter().flatten().collect();
    // Host 1 is learned in VLAN 10 on p1.
    peers[0].inject(&udp_frame(1, [0xff; 6], 255, Some(10), 1));
    let _ = collect(&sw, &peers);
    // A frame to host 1 in VLAN 20 must not use the VLAN 10 entry: it floods.
    peers[1].inject(&udp_frame(2, mac(1), 1, Some(20), 2));
    let got = collect(&sw, &peers);
    assert_eq!((got[0].len(), got[2].len()), (1, 1));
    // In VLAN 10 it is unicast to p1.
    peers[1].inject(&udp_frame(2, mac(1), 1, Some(10), 3));
    let got = collect(&sw, &peers);
    assert_eq!((got[0].len(), got[2].len()), (1, 0));
}

#[test]
fn vlan_push_and_pop() {
    let flows = [
        flow(
            100,
            &[("in_port", "access")],
            &["push_vlan:10", "output:trunk"],
        ),
        flow(
            100,
            &[("in_port", "trunk"), ("vlan_vid", "10")],
            &["pop_vlan", "output:access"],
        ),
        flow(90, &[("in_port", "trunk")], &["drop"]),
    ];
    let (sw, peers) = switch_from(
        vec![
            mem_port_vlan("access", None),
            mem_port_vlan("trunk", Some(trunk(&[10, 11], None))),
        ],
        &flows,
    );
    let peers: Vec<_> = peers.into_iter().flatten().collect();
    let plain = unicast(1, 2, 7);
    let tagged = udp_frame(1, mac(2), 2, Some(10), 7);
    peers[0].inject(&plain);
    let got = collect(&sw, &peers);
    assert_eq!(got[1], vec![tagged.clone()], "tag pushed after the MACs");

    peers[1].inject(&tagged);
    peers[1].inject(&udp_frame(1, mac(2), 2, Some(11), 8));
    let got = collect(&sw, &peers);
    assert_eq!(got[0], vec![plain], "tag popped; VLAN 11 dropped");
}

#[test]
fn output_then_modify_copies() {
    // The first output must carry the frame as it was then, not after the push.
    let flows = [flow(
        100,
        &[("in_port", "p1")],
        &["output:p2", "push_vlan:5", "output:p3"],
    )];
    let (sw, peers) = switch_with(&["p1", "p2", "p3"], &flows);
    peers[0].inject(&unicast(1, 2, 1));
    let got = collect(&sw, &peers);
    assert_eq!(got[1], vec![unicast(1, 2, 1)]);
    assert_eq!(got[2], vec![udp_frame(1, mac(2), 2, Some(5), 1)]);
}

#[test]
fn drops_are_counted_by_reason() {
    let flows = [
        flow(100, &[("in_port", "p1")], &["output:p1"]),
        flow(100, &[("in_port", "p2")], &["output:gone"]),
    ];
    let (sw, peers) = switch_with(&["p1", "p2", "gone"], &flows);
    sw.del_port("gone").unwrap();
    for i in 0..10 {
        peers[0].inject(&unicast(1, 2, i));
        peers[1].inject(&unicast(2, 1, i));
    }
    let _ = collect(&sw, &peers);
    let s = &sw.stats()[0].stats;
    assert_eq!(s.drops_of(DropReason::InPort), 10);
    assert_eq!(s.drops_of(DropReason::NoPort), 10);
}

/// Rules are added and removed while a steady flow runs: that flow loses nothing, and the
/// changes take effect as soon as the call returns. Each round adds a rule for one
/// destination from p3 (output to p1 only), sends a frame to it at once, removes the rule and
/// at once sends another: the first must not be flooded (so the rule decided it), the second
/// must be (so `normal` did, the rule being gone).
#[test]
fn rule_changes_while_traffic_flows() {
    let flows = [flow(100, &[("in_port", "p1")], &["output:p2"])];
    let (sw, peers) = switch_with(&["p1", "p2", "p3"], &flows);
    let stop = Arc::new(AtomicBool::new(false));
    let sender = send_thread(peers[0].clone(), peers[1].clone(), stop.clone());
    let stop_rx = Arc::new(AtomicBool::new(false));
    let receiver = drain_thread(peers[1].clone(), stop_rx.clone());
    const ROUNDS: u32 = 50;
    // From host 3 on p3 to host 9 (never learned: `normal` floods it to p1 and p2), at
    // 198.18.0.(100 + round); seq 2 * round while the rule exists, 2 * round + 1 after.
    let probe = |round: u32, seq: u32| udp_frame(3, mac(9), 100 + round as u8, None, seq);
    let mut p1_flooded = Vec::new();
    for round in 0..ROUNDS {
        let ids = sw
            .add_flows(&[flow(
                200,
                &[
                    ("in_port", "p3"),
                    ("eth_type", "0x0800"),
                    ("ip_dst", &format!("198.18.0.{}", 100 + round)),
                ],
                &["output:p1"],
            )])
            .unwrap();
        assert!(peers[2].inject(&probe(round, 2 * round)));
        // Decided before the rule goes (else the delete could overtake it). The flooded
        // probe of the round before may come first.
        loop {
            let got = peers[0].recv_timeout(Duration::from_secs(5));
            let seq = got.map(|f| seq_of(&f)).expect("probe at p1");
            if seq == 2 * round {
                break;
            }
            p1_flooded.push(seq);
        }
        sw.del_flow(ids[0]).unwrap();
        assert!(peers[2].inject(&probe(round, 2 * round + 1)));
    }
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    settle(&sw, &peers);
    stop_rx.store(true, Ordering::Relaxed);
    let got = receiver.join().unwrap();
    let seqs: Vec<u32> = got
        .iter()
        .filter(|f| f[6..12] == mac(1))
        .map(|f| seq_of(f))
        .collect();
    assert_sequence(&seqs, sent, "every frame, in order");
    assert!(
        sent > 100,
        "traffic really flowed during the changes: {sent}"
    );
    // p1 got every probe (the even ones above, by the rule; the odd ones by the flood); p2
    // only the ones sent after the rule was removed.
    p1_flooded.extend(peers[0].drain().iter().map(|f| seq_of(f)));
    let flooded: Vec<u32> = (0..ROUNDS).map(|r| 2 * r + 1).collect();
    assert_eq!(p1_flooded, flooded, "the flooded probes at p1");
    let p2: Vec<u32> = got
        .iter()
        .filter(|f| f[6..12] == mac(3))
        .map(|f| seq_of(f))
        .collect();
    assert_eq!(
        p2, flooded,
        "probes flooded to p2: an even one was sent while its rule existed, an odd one \
         after the rule was removed"
    );
    let s = &sw.stats()[0].stats;
    assert_eq!(s.drops.iter().sum::<u64>(), 0, "no drops: {:?}", s.drops);
}

/// Ports come and go while traffic flows between two others.
#[test]
fn port_changes_while_traffic_flows() {
    let flows = [flow(100, &[("in_port", "p1")], &["output:p2"])];
    let (sw, peers) = switch_with(&["p1", "p2"], &flows);
    let stop = Arc::new(AtomicBool::new(false));
    let sender = send_thread(peers[0].clone(), peers[1].clone(), stop.clone());
    let stop_rx = Arc::new(AtomicBool::new(false));
    let receiver = drain_thread(peers[1].clone(), stop_rx.clone());
    for round in 0..20 {
        let name = format!("extra{round}");
        sw.add_port(mem_port(&name)).unwrap();
        let extra = sw.mem_peer(&name).unwrap();
        // The new port forwards at once (normal floods to p1 and p2).
        extra.inject(&broadcast(50, round));
        // Frames a deleted port has not read yet are gone with it: let the PMD read it.
        settle(&sw, std::slice::from_ref(&extra));
        sw.del_port(&name).unwrap();
        assert!(sw.mem_peer(&name).is_none());
    }
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    settle(&sw, &peers);
    stop_rx.store(true, Ordering::Relaxed);
    let got = receiver.join().unwrap();
    let seqs: Vec<u32> = got
        .iter()
        .filter(|f| f[6..12] == mac(1))
        .map(|f| seq_of(f))
        .collect();
    assert_sequence(&seqs, sent, "p1 -> p2 lost nothing");
    let floods = got.iter().filter(|f| f[6..12] == mac(50)).count();
    assert_eq!(floods, 20, "each new port's broadcast reached p2");
    assert_eq!(sw.ports().len(), 2);
}

/// Two PMDs: a MAC learned on one PMD's rx queue is known to the other.
#[test]
fn two_pmds_share_learning() {
    let ncpu = std::thread::available_parallelism().unwrap().get();
    if ncpu < 2 {
        eprintln!("two_pmds_share_learning: needs 2 CPUs; running both PMDs on CPU 0");
    }
    let cores: Vec<usize> = if ncpu >= 2 { vec![0, 1] } else { vec![0] };
    let cfg = switch::Config {
        switch: switch_cfg(&cores),
        ports: vec![mem_port("p1"), mem_port("p2"), mem_port("p3")],
        flows: vec![],
    };
    let sw = switch::Switch::start(&cfg).unwrap();
    let peers: Vec<_> = ["p1", "p2", "p3"]
        .iter()
        .map(|n| sw.mem_peer(n).unwrap())
        .collect();
    let ports = sw.ports();
    if cores.len() == 2 {
        assert_ne!(
            ports[0].rxq_pmds, ports[1].rxq_pmds,
            "rx queues spread over PMDs"
        );
    }
    peers[0].inject(&unicast(1, 2, 1)); // learned where p1 is polled
    settle(&sw, &peers);
    let _ = collect(&sw, &peers);
    peers[1].inject(&unicast(2, 1, 2)); // decided where p2 is polled
    let got = collect(&sw, &peers);
    assert_eq!((got[0].len(), got[2].len()), (1, 0), "unicast, not flooded");
}

/// An idle PMD sleeps instead of spinning, and the next frame wakes it.
///
/// A sleeping PMD also wakes every 100 ms by itself (its `epoll_wait` timeout), so a frame
/// that merely arrives proves nothing about the wakeup: with the rx queue's wakeup broken,
/// each frame below would wait for that timeout, about 80 ms (it is sent 20 ms after the
/// previous one left, when the PMD has been asleep for all but its first 0.2 ms). So the test
/// times each frame from injection to delivery and asserts that the typical one (the median)
/// arrives well before the timeout could have delivered it.
#[test]
fn idle_pmd_sleeps_and_wakes_on_traffic() {
    let flows = [flow(100, &[("in_port", "p1")], &["output:p2"])];
    let (sw, peers) = switch_with(&["p1", "p2"], &flows);
    peers[0].inject(&unicast(1, 2, 0));
    assert!(peers[1].recv_timeout(Duration::from_secs(5)).is_some());

    std::thread::sleep(Duration::from_millis(50));
    sw.barrier().unwrap();
    let before = sw.stats()[0].stats.clone();
    std::thread::sleep(Duration::from_millis(300));
    sw.barrier().unwrap();
    let after = sw.stats()[0].stats.clone();
    assert!(after.sleeps > 0, "went to sleep");
    // A spinning PMD runs millions of empty iterations in 300 ms; a sleeping one wakes only
    // for the barrier and its 100 ms timeout.
    let idle = after.idle_iterations - before.idle_iterations;
    assert!(
        idle < 1000,
        "{idle} idle iterations in 300 ms: the PMD is spinning"
    );

    // Each frame is sent to a PMD that has been asleep for ~20 ms (pmd_sleep_after_us is
    // 200 µs), so it must be the frame that wakes it.
    const FRAMES: u32 = 21;
    let mut latencies = Vec::new();
    for seq in 1..=FRAMES {
        std::thread::sleep(Duration::from_millis(20));
        let sent = std::time::Instant::now();
        peers[0].inject(&unicast(1, 2, seq));
        let got = peers[1].recv_timeout(Duration::from_secs(5));
        latencies.push(sent.elapsed());
        assert_eq!(got.map(|f| seq_of(&f)), Some(seq), "frame {seq} delivered");
    }
    std::thread::sleep(Duration::from_millis(20));
    sw.barrier().unwrap();
    let woken = sw.stats()[0].stats.sleeps - after.sleeps;
    assert!(
        woken >= u64::from(FRAMES / 2),
        "only {woken} sleeps while {FRAMES} frames were sent 20 ms apart: \
         the frames did not find the PMD asleep, so they tested no wakeup"
    );
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    // The 100 ms epoll timeout would deliver these frames after ~80 ms each.
    assert!(
        median < Duration::from_millis(20),
        "median delivery {median:?} (all, sorted: {latencies:?}): the frames waited for the \
         PMD's 100 ms sleep timeout instead of waking it"
    );
}

#[test]
fn learned_macs_age_out_and_unknown_unicast_floods_again() {
    let cfg = switch::Config {
        switch: switch::config::SwitchConfig {
            mac_aging_secs: 1,
            ..switch_cfg(&[last_cpu()])
        },
        ports: ["p1", "p2", "p3"].iter().map(|n| mem_port(n)).collect(),
        flows: Vec::new(),
    };
    let sw = switch::Switch::start(&cfg).unwrap();
    let peers: Vec<_> = ["p1", "p2", "p3"]
        .iter()
        .map(|n| sw.mem_peer(n).unwrap())
        .collect();
    // Host 2 speaks once: learned on p2.
    peers[1].inject(&broadcast(2, 0));
    let _ = collect(&sw, &peers);
    peers[0].inject(&unicast(1, 2, 1));
    let got = collect(&sw, &peers);
    assert_eq!((got[1].len(), got[2].len()), (1, 0), "known: unicast to p2");
    assert!(sw.fdb().unwrap().iter().any(|e| e.mac.0 == mac(2)));
    // Silent for longer than the aging time (plus the PMD's once-a-second sweep).
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        sw.fdb().unwrap().iter().all(|e| e.mac.0 != mac(2)),
        "host 2 still in the MAC table: {:?}",
        sw.fdb().unwrap()
    );
    peers[0].inject(&unicast(1, 2, 2));
    let got = collect(&sw, &peers);
    assert_eq!(
        (got[1].len(), got[2].len()),
        (1, 1),
        "aged out: unknown unicast flooded again"
    );
    assert_eq!(got[2], vec![unicast(1, 2, 2)]);
}

/// A deleted port's number goes to the next port added (the PMDs' per-port tables stay as
/// long as the most ports the switch had at once, not every port it ever had), and the new
/// port starts clean: zero counters, none of the old port's MAC entries.
#[test]
fn a_reused_port_number_starts_clean() {
    let (sw, peers) = switch_with(&["p1", "p2", "p3"], &[]);
    // p3 learns host 3's MAC and counts frames.
    for i in 0..10 {
        peers[2].inject(&unicast(3, 1, i));
    }
    collect(&sw, &peers);
    let old = sw.port_no("p3").unwrap();
    sw.del_port("p3").unwrap();
    let new = sw.add_port(mem_port("p4")).unwrap();
    assert_eq!(new, old, "the lowest free number is reused");
    let p4 = sw.mem_peer("p4").unwrap();
    sw.barrier().unwrap();
    sw.barrier().unwrap();
    for snap in sw.stats() {
        let c = snap
            .stats
            .ports
            .get(new.index())
            .copied()
            .unwrap_or_default();
        assert_eq!(
            (c.rx_packets, c.tx_packets),
            (0, 0),
            "counters start at zero"
        );
    }
    // A frame for host 3 (learned on the old p3) floods: p4 gets it as a flood, and p2 too;
    // had p4 inherited the MAC entry, p2 would get nothing.
    peers[0].inject(&unicast(1, 3, 100));
    let mut all = peers.clone();
    all.push(p4.clone());
    let got = collect(&sw, &all);
    assert_eq!(got[1].len(), 1, "flooded to p2: no stale entry for host 3");
    assert_eq!(got[3].len(), 1, "and to p4");
    // Numbers after the reused one are still handed out in order.
    assert_eq!(sw.add_port(mem_port("p5")).unwrap().0, 4);
}
