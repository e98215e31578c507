//! Port VLAN modes under `normal`, between in-memory ports: access, trunk, native VLAN,
//! unconfigured ports (the untagged domain only), trunks of every VLAN; isolation
//! (broadcasts included), learning per VLAN, drops counted.

mod common;

use common::*;
use switch::DropReason;

fn vlan_drops(sw: &switch::Switch) -> u64 {
    sw.stats()
        .iter()
        .map(|s| s.stats.drops_of(DropReason::Vlan))
        .sum()
}

fn peers(p: Vec<Option<ports::mem::MemPeer>>) -> Vec<ports::mem::MemPeer> {
    p.into_iter().map(|p| p.unwrap()).collect()
}

#[test]
fn access_ports_keep_vlans_apart_broadcasts_included() {
    let (sw, p) = switch_from(
        vec![
            mem_port_vlan("a10x", Some(access(10))),
            mem_port_vlan("a10y", Some(access(10))),
            mem_port_vlan("a20", Some(access(20))),
            mem_port_vlan("trunk", Some(trunk(&[10, 20], None))),
        ],
        &[],
    );
    let p = peers(p);
    // A broadcast in VLAN 10: the other VLAN 10 access port gets it untagged, the trunk
    // tagged 10, VLAN 20 nothing.
    p[0].inject(&broadcast(1, 1));
    let got = collect(&sw, &p);
    assert!(got[0].is_empty(), "never back out of the in-port");
    assert_eq!(got[1], vec![broadcast(1, 1)]);
    assert!(got[2].is_empty(), "VLAN 20 got a VLAN 10 broadcast");
    assert_eq!(got[3], vec![udp_frame(1, [0xff; 6], 255, Some(10), 1)]);

    // The same MAC (host 1) in VLAN 20: learned separately.
    p[2].inject(&broadcast(1, 2));
    let got = collect(&sw, &p);
    assert!(got[0].is_empty() && got[1].is_empty());
    assert_eq!(got[3], vec![udp_frame(1, [0xff; 6], 255, Some(20), 2)]);

    // Host 2 in VLAN 10 answers host 1: unicast to a10x only, untagged.
    p[1].inject(&unicast(2, 1, 3));
    let got = collect(&sw, &p);
    assert_eq!(got[0], vec![unicast(2, 1, 3)]);
    assert!(got[2].is_empty() && got[3].is_empty());

    // From the trunk, tagged 20, to host 1: only the VLAN 20 access port, untagged.
    p[3].inject(&udp_frame(9, mac(1), 1, Some(20), 4));
    let got = collect(&sw, &p);
    assert!(got[0].is_empty() && got[1].is_empty());
    assert_eq!(got[2], vec![udp_frame(9, mac(1), 1, None, 4)]);

    let fdb = sw.fdb().unwrap();
    let host1: Vec<String> = fdb
        .iter()
        .filter(|e| e.mac.0 == mac(1))
        .map(|e| e.domain.to_string())
        .collect();
    assert_eq!(host1, ["vlan 10", "vlan 20"]);

    // A tagged frame on an access port is dropped and counted, not forwarded.
    let before = vlan_drops(&sw);
    p[0].inject(&udp_frame(1, [0xff; 6], 255, Some(10), 5));
    p[0].inject(&udp_frame(1, [0xff; 6], 255, Some(20), 6));
    let got = collect(&sw, &p);
    assert!(got.iter().all(Vec::is_empty), "{got:?}");
    assert_eq!(vlan_drops(&sw) - before, 2);
}

#[test]
fn trunk_native_vlan_and_allowed_list() {
    let (sw, p) = switch_from(
        vec![
            mem_port_vlan("trunk", Some(trunk(&[10], Some(30)))),
            mem_port_vlan("a30", Some(access(30))),
            mem_port_vlan("a10", Some(access(10))),
            mem_port_vlan("a20", Some(access(20))),
        ],
        &[],
    );
    let p = peers(p);
    // Untagged on the trunk: the native VLAN 30.
    p[0].inject(&broadcast(1, 1));
    let got = collect(&sw, &p);
    assert_eq!(got[1], vec![broadcast(1, 1)]);
    assert!(got[2].is_empty() && got[3].is_empty());
    // From VLAN 30 back to the trunk: the native VLAN leaves untagged.
    p[1].inject(&broadcast(2, 2));
    let got = collect(&sw, &p);
    assert_eq!(got[0], vec![broadcast(2, 2)]);
    // Tagged native frames are taken too.
    p[0].inject(&udp_frame(1, [0xff; 6], 255, Some(30), 3));
    let got = collect(&sw, &p);
    assert_eq!(got[1], vec![broadcast(1, 3)]);
    // An allowed VLAN: tag popped towards its access port.
    p[0].inject(&udp_frame(1, [0xff; 6], 255, Some(10), 4));
    let got = collect(&sw, &p);
    assert_eq!(got[2], vec![broadcast(1, 4)]);
    assert!(got[1].is_empty() && got[3].is_empty());
    // And back: tagged 10 onto the trunk.
    p[2].inject(&broadcast(3, 5));
    let got = collect(&sw, &p);
    assert_eq!(got[0], vec![udp_frame(3, [0xff; 6], 255, Some(10), 5)]);
    // VLAN 20 is not on the trunk: dropped at ingress, and VLAN 20's flood never reaches it.
    let before = vlan_drops(&sw);
    p[0].inject(&udp_frame(1, [0xff; 6], 255, Some(20), 6));
    p[3].inject(&broadcast(4, 7));
    let got = collect(&sw, &p);
    assert!(got.iter().all(Vec::is_empty), "{got:?}");
    assert_eq!(vlan_drops(&sw) - before, 1);
    // A trunk without a native VLAN drops untagged frames.
    let (sw2, p2) = switch_from(
        vec![
            mem_port_vlan("t", Some(trunk(&[10], None))),
            mem_port_vlan("a", Some(access(10))),
        ],
        &[],
    );
    let p2 = peers(p2);
    p2[0].inject(&broadcast(1, 8));
    let got = collect(&sw2, &p2);
    assert!(got[1].is_empty());
    assert_eq!(vlan_drops(&sw2), 1);
}

#[test]
fn unconfigured_ports_are_the_untagged_domain() {
    let (sw, p) = switch_from(
        vec![
            mem_port_vlan("u1", None),
            mem_port_vlan("u2", None),
            mem_port_vlan("a10", Some(access(10))),
            mem_port_vlan("t10", Some(trunk(&[10], None))),
        ],
        &[],
    );
    let p = peers(p);
    // Untagged: stays among the unconfigured ports.
    p[0].inject(&broadcast(1, 1));
    let got = collect(&sw, &p);
    assert_eq!(got[1], vec![broadcast(1, 1)]);
    assert!(
        got[2].is_empty() && got[3].is_empty(),
        "untagged domain leaked into VLAN 10"
    );
    // A VLAN 10 broadcast does not reach the unconfigured ports.
    p[2].inject(&broadcast(2, 2));
    let got = collect(&sw, &p);
    assert!(
        got[0].is_empty() && got[1].is_empty(),
        "VLAN 10 reached the untagged domain: {got:?}"
    );
    assert_eq!(got[3], vec![udp_frame(2, [0xff; 6], 255, Some(10), 2)]);
    // Nor does VLAN 10 unicast to a MAC learned in the untagged domain (host 1): VLAN 10
    // floods within itself instead.
    p[3].inject(&udp_frame(3, mac(1), 1, Some(10), 3));
    let got = collect(&sw, &p);
    assert!(got[0].is_empty() && got[1].is_empty(), "{got:?}");
    assert_eq!(got[2], vec![unicast(3, 1, 3)]);
}

#[test]
fn a_tagged_frame_from_an_unconfigured_port_is_dropped_not_bridged_into_the_vlan() {
    let (sw, p) = switch_from(
        vec![
            mem_port_vlan("guest", None),
            mem_port_vlan("u2", None),
            mem_port_vlan("a10", Some(access(10))),
            mem_port_vlan("t10", Some(trunk(&[10], None))),
        ],
        &[],
    );
    let p = peers(p);
    // Host 2 lives in VLAN 10 behind the access port (learned).
    p[2].inject(&broadcast(2, 0));
    let _ = collect(&sw, &p);
    let before = vlan_drops(&sw);
    // The guest tries VLAN 10: broadcast, unicast to host 2, and a priority tag.
    p[0].inject(&udp_frame(1, [0xff; 6], 255, Some(10), 1));
    p[0].inject(&udp_frame(1, mac(2), 2, Some(10), 2));
    p[0].inject(&udp_frame(1, mac(2), 2, Some(0), 3));
    let got = collect(&sw, &p);
    assert!(got.iter().all(Vec::is_empty), "{got:?}");
    assert_eq!(vlan_drops(&sw) - before, 3);
    // Host 1 was not learned anywhere.
    assert!(sw.fdb().unwrap().iter().all(|e| e.mac.0 != mac(1)));
    // Untagged, the guest still works.
    p[0].inject(&broadcast(1, 4));
    let got = collect(&sw, &p);
    assert_eq!(got[1], vec![broadcast(1, 4)]);
    assert!(got[2].is_empty() && got[3].is_empty());
}

#[test]
fn a_trunk_without_allowed_carries_every_vlan() {
    // The explicit way to get OVS's default (a port carrying every VLAN).
    let (sw, p) = switch_from(
        vec![
            mem_port_vlan("all", Some(trunk_all())),
            mem_port_vlan("a10", Some(access(10))),
            mem_port_vlan("a4094", Some(access(4094))),
            mem_port_vlan("u", None),
        ],
        &[],
    );
    let p = peers(p);
    p[1].inject(&broadcast(1, 1));
    p[2].inject(&broadcast(2, 2));
    let got = collect(&sw, &p);
    assert_eq!(
        got[0],
        vec![
            udp_frame(1, [0xff; 6], 255, Some(10), 1),
            udp_frame(2, [0xff; 6], 255, Some(4094), 2)
        ]
    );
    assert!(got[3].is_empty());
    // Tagged frames of any VLAN are taken and reach that VLAN only.
    p[0].inject(&udp_frame(3, [0xff; 6], 255, Some(10), 3));
    p[0].inject(&udp_frame(3, [0xff; 6], 255, Some(4094), 4));
    p[0].inject(&udp_frame(3, [0xff; 6], 255, Some(77), 5));
    let got = collect(&sw, &p);
    assert_eq!(got[1], vec![broadcast(3, 3)]);
    assert_eq!(got[2], vec![broadcast(3, 4)]);
    assert!(got[3].is_empty());
    // Untagged frames: no native VLAN, dropped.
    let before = vlan_drops(&sw);
    p[0].inject(&broadcast(3, 6));
    let got = collect(&sw, &p);
    assert!(got.iter().all(Vec::is_empty), "{got:?}");
    assert_eq!(vlan_drops(&sw) - before, 1);
}

#[test]
fn rules_still_tag_frames_to_an_unconfigured_port() {
    // `normal` never sends VLAN frames there, but a rule's explicit output does, as it says.
    let flows = [
        flow(100, &[("in_port", "a10")], &["output:u"]),
        flow(100, &[("in_port", "u2")], &["push_vlan:20", "output:u"]),
    ];
    let (sw, p) = switch_from(
        vec![
            mem_port_vlan("a10", Some(access(10))),
            mem_port_vlan("u", None),
            mem_port_vlan("u2", None),
        ],
        &flows,
    );
    let p = peers(p);
    p[0].inject(&unicast(1, 2, 1));
    p[2].inject(&unicast(3, 2, 2));
    let got = collect(&sw, &p);
    assert_eq!(
        got[1],
        vec![
            udp_frame(1, mac(2), 2, Some(10), 1),
            udp_frame(3, mac(2), 2, Some(20), 2)
        ]
    );
}

/// In-port rules that only output (decided per port, only the L2 header parsed) still get
/// the ports' VLAN handling both ways: ingress filtering and the egress tag edit.
#[test]
fn port_decided_outputs_keep_vlan_modes() {
    let flows = [
        flow(100, &[("in_port", "a10")], &["output:t"]),
        flow(100, &[("in_port", "t")], &["output:a10"]),
    ];
    let (sw, p) = switch_from(
        vec![
            mem_port_vlan("a10", Some(access(10))),
            mem_port_vlan("t", Some(trunk(&[10], None))),
        ],
        &flows,
    );
    let p = peers(p);
    p[0].inject(&unicast(1, 2, 1)); // untagged into VLAN 10: leaves the trunk tagged
    p[0].inject(&udp_frame(1, mac(2), 2, Some(10), 2)); // tagged on an access port: dropped
    p[1].inject(&udp_frame(2, mac(1), 1, Some(10), 3)); // VLAN 10 off the trunk: untagged
    p[1].inject(&udp_frame(2, mac(1), 1, Some(20), 4)); // not allowed on the trunk: dropped
    let got = collect(&sw, &p);
    assert_eq!(got[1], vec![udp_frame(1, mac(2), 2, Some(10), 1)]);
    assert_eq!(got[0], vec![unicast(2, 1, 3)]);
    assert_eq!(vlan_drops(&sw), 2);
    let s = &sw.stats()[0].stats;
    assert_eq!((s.port_decided, s.emc_hits + s.emc_misses), (2, 0));
}

#[test]
fn rules_see_the_logical_vlan() {
    // A frame from an access port matches `vlan_vid` of its port's VLAN, and an explicit
    // output to a trunk carries the tag.
    let flows = [
        flow(
            100,
            &[("in_port", "a10"), ("vlan_vid", "10")],
            &["output:trunk"],
        ),
        flow(90, &[("in_port", "a10")], &["drop"]),
        flow(
            100,
            &[("in_port", "trunk"), ("vlan_vid", "10")],
            &["pop_vlan", "push_vlan:11", "output:a10"],
        ),
    ];
    let (sw, p) = switch_from(
        vec![
            mem_port_vlan("a10", Some(access(10))),
            mem_port_vlan("trunk", Some(trunk(&[10, 11], None))),
        ],
        &flows,
    );
    let p = peers(p);
    p[0].inject(&unicast(1, 2, 1));
    let got = collect(&sw, &p);
    assert_eq!(got[1], vec![udp_frame(1, mac(2), 2, Some(10), 1)]);
    // pop then push 11 on a frame tagged 10: leaves tagged 11 (not the access port's VLAN).
    p[1].inject(&udp_frame(2, mac(1), 1, Some(10), 2));
    let got = collect(&sw, &p);
    assert_eq!(got[0], vec![udp_frame(2, mac(1), 1, Some(11), 2)]);
}

#[test]
fn normal_sends_no_vlan_to_an_unconfigured_port_even_where_a_rule_taught_it_a_mac() {
    // A rule moves the guest's frames into VLAN 10 before `normal`, which learns the guest's
    // MAC in VLAN 10 on its (unconfigured) port. Answers in VLAN 10 still do not go there.
    let flows = [flow(100, &[("in_port", "u")], &["push_vlan:10", "normal"])];
    let (sw, p) = switch_from(
        vec![
            mem_port_vlan("u", None),
            mem_port_vlan("a10", Some(access(10))),
            mem_port_vlan("t10", Some(trunk(&[10], None))),
        ],
        &flows,
    );
    let p = peers(p);
    p[0].inject(&broadcast(1, 1));
    let got = collect(&sw, &p);
    assert_eq!(got[1], vec![broadcast(1, 1)], "the rule's VLAN 10 flood");
    assert!(sw
        .fdb()
        .unwrap()
        .iter()
        .any(|e| e.mac.0 == mac(1) && e.port == sw.port_no("u").unwrap()));
    p[1].inject(&unicast(2, 1, 2));
    let got = collect(&sw, &p);
    assert!(got[0].is_empty(), "VLAN 10 sent to an unconfigured port");
    assert_eq!(
        got[2],
        vec![udp_frame(2, mac(1), 1, Some(10), 2)],
        "flooded in VLAN 10"
    );
}
