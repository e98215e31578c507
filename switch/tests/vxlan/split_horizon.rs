//! Split horizon on a node of a VXLAN mesh: what arrives from the overlay is never flooded or
//! forwarded back into it by `normal` (counted where it has nowhere else to go), while an
//! explicit rule may still send it there.

use super::*;

/// One node of a VXLAN mesh: uplink, `vm` (access 10), and vxlan ports `vxa` (to REMOTE)
/// and `vxb` (to REMOTE_B), both VNI 100 <-> VLAN 10, both remotes resolved. Extra ports
/// and flows as given. Returns the switch and the memory peers (uplink, vm, extras).
fn mesh_node(extra: Vec<PortConfig>, flows: &[FlowConfig]) -> (Switch, Vec<MemPeer>) {
    let mut ports = vec![
        uplink(None),
        mem_port_vlan("vm", Some(access(10))),
        vxlan("vxa", 100, REMOTE, Some(10)),
        vxlan("vxb", 100, REMOTE_B, Some(10)),
    ];
    ports.extend(extra);
    let (sw, p) = switch_from(ports, flows);
    let p: Vec<MemPeer> = p.into_iter().flatten().collect();
    // Both VTEPs ask for our address: the switch answers and knows their MACs.
    p[0].inject(&arp(Request, REMOTE_MAC, REMOTE, [0; 6], LOCAL));
    p[0].inject(&arp(Request, REMOTE_B_MAC, REMOTE_B, [0; 6], LOCAL));
    let got = collect(&sw, &p);
    assert_eq!(got[0].len(), 2, "two ARP replies");
    (sw, p)
}

/// The VTEP an encapsulated frame goes to (REMOTE or REMOTE_B), and the frame checked as
/// [`parse_encap`] does.
fn encap_to(frame: &[u8]) -> ([u8; 4], Encapped) {
    let dst = match PacketHeaders::from_ethernet_slice(frame).unwrap().net {
        Some(NetHeaders::Ipv4(ip, _)) => ip.destination,
        other => panic!("not IPv4: {other:?}"),
    };
    let remote_mac = if dst == REMOTE_B {
        REMOTE_B_MAC
    } else {
        REMOTE_MAC
    };
    (dst, parse_encap_to(frame, remote_mac, dst))
}

/// Split horizon: a broadcast and an unknown unicast decapsulated from vxlan port A reach
/// the local port only, never vxlan port B (the sending VTEP already sent B's node its own
/// copy; forwarding it would loop round a mesh). A local broadcast still goes to both.
#[test]
fn frames_from_the_overlay_are_never_flooded_back_into_it() {
    let (sw, p) = mesh_node(Vec::new(), &[]);
    let (up, vm) = (&p[0], &p[1]);
    up.inject(&vxlan_frame(REMOTE, LOCAL, 100, &broadcast(7, 1)));
    up.inject(&vxlan_frame(REMOTE, LOCAL, 100, &unicast(7, 9, 2)));
    let got = collect(&sw, &p);
    assert_eq!(
        got[1],
        vec![broadcast(7, 1), unicast(7, 9, 2)],
        "vm gets both"
    );
    assert!(
        got[0].is_empty(),
        "{} frames went back into the overlay",
        got[0].len()
    );
    let t = tunnel_stats(&sw);
    assert_eq!(
        (t.decap_packets, t.encap_packets, t.neigh_queued),
        (2, 0, 0)
    );
    // The local port took them: nothing was dropped.
    assert_eq!(drops(&sw, DropReason::SplitHorizon), 0);
    // The trace agrees with the datapath: a flood to vm alone.
    let vm_no = sw.port_no("vm").unwrap();
    let tr = sw.trace("vxa", broadcast(7, 3)).unwrap();
    assert_eq!(
        tr.normal,
        Some(switch::control::NormalOutcome::Flood(vec![vm_no]))
    );

    // From the local port, a broadcast goes to every VTEP of the VNI.
    vm.inject(&broadcast(1, 4));
    let got = collect(&sw, &p);
    let mut sent: Vec<([u8; 4], Vec<u8>)> = got[0]
        .iter()
        .map(|f| {
            let (dst, e) = encap_to(f);
            assert_eq!(e.vni, 100);
            (dst, e.inner)
        })
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        [(REMOTE, broadcast(1, 4)), (REMOTE_B, broadcast(1, 4))]
    );
}

/// Split horizon for learned unicast: a MAC learned behind vxlan port B, addressed by a
/// frame from vxlan port A, is dropped and counted (`split_horizon`), not relayed through
/// this node; the MAC stays learned on B, and the trace says so. From the local port the
/// same destination is reached through B.
#[test]
fn learned_unicast_from_one_vxlan_port_to_another_is_dropped_and_counted() {
    let (sw, p) = mesh_node(Vec::new(), &[]);
    let (up, vm) = (&p[0], &p[1]);
    // Host 8 lives behind B, host 7 behind A.
    up.inject(&vxlan_frame(REMOTE_B, LOCAL, 100, &broadcast(8, 0)));
    up.inject(&vxlan_frame(REMOTE, LOCAL, 100, &broadcast(7, 1)));
    let got = collect(&sw, &p);
    assert_eq!(
        (got[0].len(), got[1].len()),
        (0, 2),
        "frames sent back into the overlay, to vm"
    );
    // A's node sends us a frame for host 8 (it has it wrong, or is flooding): not ours to
    // relay.
    up.inject(&vxlan_frame(REMOTE, LOCAL, 100, &unicast(7, 8, 2)));
    let got = collect(&sw, &p);
    assert_eq!(
        (got[0].len(), got[1].len()),
        (0, 0),
        "frames relayed into the overlay, to vm"
    );
    assert_eq!(drops(&sw, DropReason::SplitHorizon), 1);
    assert_eq!(tunnel_stats(&sw).encap_packets, 0);
    let (vxa, vxb) = (sw.port_no("vxa").unwrap(), sw.port_no("vxb").unwrap());
    let fdb = sw.fdb().unwrap();
    let port_of = |m: u8| fdb.iter().find(|e| e.mac.0 == mac(m)).map(|e| e.port);
    assert_eq!((port_of(7), port_of(8)), (Some(vxa), Some(vxb)), "{fdb:?}");
    let tr = sw.trace("vxa", unicast(7, 8, 3)).unwrap();
    assert_eq!(
        tr.normal,
        Some(switch::control::NormalOutcome::SplitHorizon(vxb))
    );
    // The local guest reaches host 8 through B, and only B.
    vm.inject(&unicast(1, 8, 4));
    let got = collect(&sw, &p);
    assert_eq!(got[0].len(), 1);
    let (dst, e) = encap_to(&got[0][0]);
    assert_eq!((dst, e.inner), (REMOTE_B, unicast(1, 8, 4)));
}

/// A node without a local port in the VNI's VLAN (a transit node of the mesh): a broadcast
/// from the overlay has only vxlan ports to go to, so split horizon drops it, counted as
/// `split_horizon`; nothing goes back out.
#[test]
fn a_flood_from_the_overlay_with_only_vxlan_ports_left_is_counted_as_split_horizon() {
    let (sw, p) = switch_from(
        vec![
            uplink(None),
            mem_port_vlan("other", Some(access(20))),
            vxlan("vxa", 100, REMOTE, Some(10)),
            vxlan("vxb", 100, REMOTE_B, Some(10)),
        ],
        &[],
    );
    let p: Vec<MemPeer> = p.into_iter().flatten().collect();
    p[0].inject(&arp(Request, REMOTE_MAC, REMOTE, [0; 6], LOCAL));
    p[0].inject(&arp(Request, REMOTE_B_MAC, REMOTE_B, [0; 6], LOCAL));
    let _ = collect(&sw, &p);
    p[0].inject(&vxlan_frame(REMOTE, LOCAL, 100, &broadcast(7, 1)));
    p[0].inject(&vxlan_frame(REMOTE_B, LOCAL, 100, &unicast(8, 9, 2)));
    let got = collect(&sw, &p);
    assert_eq!(
        (got[0].len(), got[1].len()),
        (0, 0),
        "frames sent back into the overlay, to the other VLAN's port"
    );
    assert_eq!(drops(&sw, DropReason::SplitHorizon), 2);
    assert_eq!(drops(&sw, DropReason::NoDestination), 0);
    let tr = sw.trace("vxa", broadcast(7, 3)).unwrap();
    assert_eq!(
        tr.normal,
        Some(switch::control::NormalOutcome::Flood(vec![]))
    );
}

/// Explicit rules are the operator's choice: `output:` to a vxlan port sends a frame from
/// another vxlan port back into the overlay (split horizon is `normal`'s rule only).
#[test]
fn an_explicit_rule_may_still_send_overlay_frames_to_a_vxlan_port() {
    let flows = [flow(100, &[("in_port", "vxa")], &["output:vxb"])];
    let (sw, p) = mesh_node(Vec::new(), &flows);
    p[0].inject(&vxlan_frame(REMOTE, LOCAL, 100, &broadcast(7, 1)));
    let got = collect(&sw, &p);
    assert_eq!(got[0].len(), 1);
    let (dst, e) = encap_to(&got[0][0]);
    assert_eq!((dst, e.inner), (REMOTE_B, broadcast(7, 1)));
    assert!(got[1].is_empty());
    assert_eq!(drops(&sw, DropReason::SplitHorizon), 0);
}
