//! VXLAN between in-memory ports: a memory port with an `ip` is the underlay, and the test
//! plays the remote VTEP on it (answering ARP, sending VXLAN). The remote's frames are built
//! with `testkit::frames` (the `flowtable::wire` reprs); the switch's outer headers are checked
//! with etherparse, the VXLAN header (which etherparse lacks) by hand.

mod common;
// The split-horizon tests, in a file of their own (a crate root finds its modules beside it).
#[path = "vxlan/split_horizon.rs"]
mod split_horizon;

use common::*;
use etherparse::{NetHeaders, PacketHeaders, TransportHeader};
use flowtable::wire::ArpOperation::{Reply, Request};
use ports::mem::MemPeer;
use switch::config::{FlowConfig, PortConfig, PortType};
use switch::tunnel::stats::TunnelStats;
use switch::{DropReason, Switch};
use testkit::frames::{self, arp, Underlay};
use testkit::logs::captured_log;

const LOCAL: [u8; 4] = [198, 18, 0, 1];
const REMOTE: [u8; 4] = [198, 18, 0, 2];
/// A second remote VTEP (the split-horizon mesh, two vxlan ports sharing a VNI).
const REMOTE_B: [u8; 4] = [198, 18, 0, 3];
const REMOTE_B_MAC: [u8; 6] = [0x02, 0xee, 0, 0, 0, 3];
/// The MAC the switch derives for a memory uplink with address `LOCAL`.
const LOCAL_MAC: [u8; 6] = [0x02, 0x76, 198, 18, 0, 1];
const REMOTE_MAC: [u8; 6] = [0x02, 0xee, 0, 0, 0, 2];

fn uplink(mtu: Option<u16>) -> PortConfig {
    PortConfig {
        ip: Some("198.18.0.1/24".into()),
        mtu,
        ..mem_port("uplink")
    }
}

fn vxlan(name: &str, vni: u32, remote: [u8; 4], vlan: Option<u16>) -> PortConfig {
    PortConfig {
        kind: PortType::Vxlan,
        vni: Some(vni),
        remote_ip: Some(remote.into()),
        vlan: vlan.map(access),
        ..mem_port(name)
    }
}

/// Ports: uplink, vm (access 10), vx100 (VNI 100 to REMOTE, access 10).
fn setup(mtu: Option<u16>, flows: &[FlowConfig]) -> (Switch, MemPeer, MemPeer) {
    let (sw, p) = switch_from(
        vec![
            uplink(mtu),
            mem_port_vlan("vm", Some(access(10))),
            vxlan("vx100", 100, REMOTE, Some(10)),
        ],
        flows,
    );
    let up = p[0].clone().unwrap();
    let vm = p[1].clone().unwrap();
    (sw, up, vm)
}

fn tunnel_stats(sw: &Switch) -> TunnelStats {
    sw.barrier().unwrap();
    let mut total = TunnelStats::default();
    for s in sw.stats() {
        total.add(&s.tunnel);
    }
    total
}

fn drops(sw: &Switch, why: DropReason) -> u64 {
    sw.stats().iter().map(|s| s.stats.drops_of(why)).sum()
}

/// The remote VTEP's ARP reply to the switch.
fn remote_arp_reply() -> Vec<u8> {
    arp(Reply, REMOTE_MAC, REMOTE, LOCAL_MAC, LOCAL)
}

/// A VXLAN frame from the remote VTEP's MAC to ours, from `src` to `dst`, carrying `inner`
/// with `vni`.
fn vxlan_frame(src: [u8; 4], dst: [u8; 4], vni: u32, inner: &[u8]) -> Vec<u8> {
    let underlay = Underlay {
        src_mac: REMOTE_MAC,
        dst_mac: LOCAL_MAC,
        src_ip: src,
        dst_ip: dst,
        src_port: 54321,
    };
    frames::vxlan(&underlay, vni, inner)
}

/// What an encapsulated frame says, checked along the way: Ethernet to the remote's MAC
/// from ours, IPv4 with a valid checksum and consistent lengths, UDP to 4789, VXLAN I flag.
struct Encapped {
    src_port: u16,
    vni: u32,
    inner: Vec<u8>,
}

fn parse_encap(frame: &[u8]) -> Encapped {
    parse_encap_to(frame, REMOTE_MAC, REMOTE)
}

/// [`parse_encap`] for a frame to the VTEP at `remote` (whose MAC is `remote_mac`).
fn parse_encap_to(frame: &[u8], remote_mac: [u8; 6], remote: [u8; 4]) -> Encapped {
    let h = PacketHeaders::from_ethernet_slice(frame).expect("outer headers parse");
    let Some(etherparse::LinkHeader::Ethernet2(eth)) = h.link else {
        panic!("no Ethernet header")
    };
    assert_eq!((eth.destination, eth.source), (remote_mac, LOCAL_MAC));
    let Some(NetHeaders::Ipv4(ip, _)) = h.net else {
        panic!("not IPv4")
    };
    assert_eq!((ip.source, ip.destination), (LOCAL, remote));
    assert_eq!(
        ip.header_checksum,
        ip.calc_header_checksum(),
        "IPv4 checksum"
    );
    assert_eq!(
        usize::from(ip.total_len),
        frame.len() - 14,
        "IPv4 total length"
    );
    assert!(ip.dont_fragment);
    let Some(TransportHeader::Udp(udp)) = h.transport else {
        panic!("not UDP")
    };
    assert_eq!(udp.destination_port, 4789);
    assert_eq!(usize::from(udp.length), frame.len() - 34, "UDP length");
    assert!(udp.source_port >= 49152, "source port {}", udp.source_port);
    let vx = h.payload.slice();
    assert_eq!(vx[0], 0x08, "I flag");
    Encapped {
        src_port: udp.source_port,
        vni: u32::from_be_bytes([0, vx[4], vx[5], vx[6]]),
        inner: vx[8..].to_vec(),
    }
}

fn is_arp_request_for(frame: &[u8], target: [u8; 4]) -> bool {
    let Ok(h) = PacketHeaders::from_ethernet_slice(frame) else {
        return false;
    };
    match h.net {
        Some(NetHeaders::Arp(a)) => {
            let a = a.try_eth_ipv4().unwrap();
            a.operation == etherparse::ArpOperation::REQUEST
                && a.target_ipv4 == target
                && a.sender_ipv4 == LOCAL
                && a.sender_mac == LOCAL_MAC
        }
        _ => false,
    }
}

#[test]
fn arp_miss_holds_frames_then_delivers_them_encapsulated_in_order() {
    let (sw, up, vm) = setup(None, &[]);
    let peers = [up.clone(), vm.clone()];
    for seq in 0..5 {
        vm.inject(&unicast(1, 2, seq));
    }
    let got = collect(&sw, &peers);
    // Only the ARP request so far: the frames wait.
    assert_eq!(got[0].len(), 1, "{:?}", got[0]);
    assert!(is_arp_request_for(&got[0][0], REMOTE));
    let t = tunnel_stats(&sw);
    assert_eq!(
        (t.neigh_misses, t.neigh_queued, t.arp_requests_sent),
        (5, 5, 1)
    );

    up.inject(&remote_arp_reply());
    let got = collect(&sw, &peers);
    let seqs: Vec<u32> = got[0]
        .iter()
        .map(|f| {
            let e = parse_encap(f);
            assert_eq!(e.vni, 100);
            // Access VLAN 10 maps to VNI 100: the inner frame is untagged, as sent.
            assert_eq!(e.inner, unicast(1, 2, seq_of(&e.inner)));
            seq_of(&e.inner)
        })
        .collect();
    assert_sequence(&seqs, 5, "held frames after resolution");
    assert_eq!(tunnel_stats(&sw).arp_replies_received, 1);

    // Resolved now: straight out.
    vm.inject(&unicast(1, 2, 5));
    let got = collect(&sw, &peers);
    assert_eq!(got[0].len(), 1);
    assert_eq!(seq_of(&parse_encap(&got[0][0]).inner), 5);
    assert_eq!(tunnel_stats(&sw).encap_packets, 6);
}

#[test]
fn udp_source_port_follows_the_inner_flow() {
    let (sw, up, vm) = setup(None, &[]);
    let peers = [up.clone(), vm.clone()];
    // A reply addressed to us is learned even unasked.
    up.inject(&remote_arp_reply());
    settle(&sw, &peers);
    let mut ports = std::collections::BTreeSet::new();
    for host in 2..40u8 {
        vm.inject(&udp_frame(1, mac(host), host, None, 0));
        vm.inject(&udp_frame(1, mac(host), host, None, 1));
        let got = collect(&sw, &peers);
        assert_eq!(got[0].len(), 2);
        let (a, b) = (parse_encap(&got[0][0]), parse_encap(&got[0][1]));
        assert_eq!(a.src_port, b.src_port, "one flow, one source port");
        ports.insert(a.src_port);
    }
    assert!(ports.len() > 20, "source ports barely vary: {ports:?}");
}

#[test]
fn decap_delivers_to_the_matching_vxlan_port() {
    let (sw, up, vm) = setup(None, &[]);
    let peers = [up.clone(), vm.clone()];
    let inner = broadcast(7, 1);
    up.inject(&vxlan_frame(REMOTE, LOCAL, 100, &inner));
    let got = collect(&sw, &peers);
    assert_eq!(
        got[1],
        vec![inner],
        "decapsulated into VLAN 10, out untagged"
    );
    // Trailing bytes after the outer IPv4 packet are not part of the inner frame.
    let mut padded = vxlan_frame(REMOTE, LOCAL, 100, &unicast(7, 1, 2));
    padded.extend_from_slice(&[0xee; 8]);
    up.inject(&padded);
    let got = collect(&sw, &peers);
    assert_eq!(got[1], vec![unicast(7, 1, 2)]);
    let t = tunnel_stats(&sw);
    assert_eq!(t.decap_packets, 2);
    // The inner source was learned behind the vxlan port: the answer is unicast to it.
    let fdb = sw.fdb().unwrap();
    assert!(fdb
        .iter()
        .any(|e| e.mac.0 == mac(7) && e.port == sw.port_no("vx100").unwrap()));
}

/// Decapsulation picks the vxlan port by VNI *and* remote address: three vxlan ports, two
/// of them with VNI 100 (to different VTEPs, different local VLANs) and one with VNI 200 to
/// the first VTEP; each outer frame reaches the one tenant port behind its own vxlan port,
/// and its inner source is learned on that vxlan port.
#[test]
fn decap_picks_the_vxlan_port_by_vni_and_remote_address() {
    let (sw, p) = switch_from(
        vec![
            uplink(None),
            mem_port_vlan("vm10", Some(access(10))),
            mem_port_vlan("vm20", Some(access(20))),
            mem_port_vlan("vm30", Some(access(30))),
            vxlan("vx100a", 100, REMOTE, Some(10)),
            vxlan("vx200a", 200, REMOTE, Some(20)),
            vxlan("vx100b", 100, REMOTE_B, Some(30)),
        ],
        &[],
    );
    let p: Vec<MemPeer> = p.into_iter().flatten().collect();
    let cases = [
        (REMOTE, 100, 7, "vm10", "vx100a"),
        (REMOTE, 200, 8, "vm20", "vx200a"),
        (REMOTE_B, 100, 9, "vm30", "vx100b"),
    ];
    for (seq, &(remote, vni, src, to, via)) in cases.iter().enumerate() {
        let inner = broadcast(src, seq as u32);
        p[0].inject(&vxlan_frame(remote, LOCAL, vni, &inner));
        let got = collect(&sw, &p);
        for (i, name) in ["vm10", "vm20", "vm30"].into_iter().enumerate() {
            let want = if name == to {
                vec![inner.clone()]
            } else {
                vec![]
            };
            assert_eq!(got[i + 1], want, "VNI {vni} from {remote:?} at {name}");
        }
        let fdb = sw.fdb().unwrap();
        let learned: Vec<_> = fdb.iter().filter(|e| e.mac.0 == mac(src)).collect();
        assert_eq!(learned.len(), 1, "{learned:?}");
        assert_eq!(learned[0].port, sw.port_no(via).unwrap(), "{learned:?}");
    }
    assert_eq!(tunnel_stats(&sw).decap_packets, 3);
}

#[test]
fn hostile_or_foreign_outer_frames_are_counted_never_forwarded() {
    let (sw, up, vm) = setup(None, &[]);
    let peers = [up.clone(), vm.clone()];
    let good = vxlan_frame(REMOTE, LOCAL, 100, &broadcast(7, 1));
    // Wrong VNI, unknown remote, not our address.
    up.inject(&vxlan_frame(REMOTE, LOCAL, 101, &broadcast(7, 1)));
    up.inject(&vxlan_frame([198, 18, 0, 9], LOCAL, 100, &broadcast(7, 1)));
    up.inject(&vxlan_frame(REMOTE, [198, 18, 0, 3], 100, &broadcast(7, 1)));
    // Every truncation of a good frame, and a few corruptions.
    for len in 0..good.len() {
        up.inject(&good[..len]);
    }
    // IHL 15, total length past the frame, another UDP port, I flag clear, total length 16.
    for (at, byte) in [(14, 0x4f), (16, 0xff), (36, 0x13), (42, 0x00), (17, 0x10)] {
        let mut bad = good.clone();
        bad[at] = byte;
        up.inject(&bad);
    }
    // Plain traffic on the underlay is not bridged.
    up.inject(&broadcast(9, 3));
    let got = collect(&sw, &peers);
    assert!(got[1].is_empty(), "{} frames leaked", got[1].len());
    let t = tunnel_stats(&sw);
    assert_eq!(t.decap_unknown_vni, 2);
    assert_eq!(t.decap_not_local, 1);
    assert_eq!(t.decap_packets, 0);
    let total = 3 + good.len() as u64 + 5 + 1;
    let counted = t.decap_unknown_vni + t.decap_not_local + t.decap_malformed + t.underlay_other;
    assert_eq!(counted, total, "every bad frame counted once: {t:?}");
    assert_eq!(drops(&sw, DropReason::Tunnel), total);
    // The switch still works.
    up.inject(&good);
    let got = collect(&sw, &peers);
    assert_eq!(got[1].len(), 1);
}

#[test]
fn arp_for_our_address_is_answered() {
    let (sw, up, vm) = setup(None, &[]);
    let peers = [up.clone(), vm.clone()];
    up.inject(&arp(Request, REMOTE_MAC, REMOTE, [0; 6], LOCAL));
    // Not for us: no answer.
    up.inject(&arp(Request, REMOTE_MAC, REMOTE, [0; 6], [198, 18, 0, 77]));
    let got = collect(&sw, &peers);
    assert_eq!(got[0].len(), 1);
    let h = PacketHeaders::from_ethernet_slice(&got[0][0]).unwrap();
    let Some(NetHeaders::Arp(a)) = h.net else {
        panic!("not ARP")
    };
    let a = a.try_eth_ipv4().unwrap();
    assert_eq!(a.operation, etherparse::ArpOperation::REPLY);
    assert_eq!((a.sender_mac, a.sender_ipv4), (LOCAL_MAC, LOCAL));
    assert_eq!((a.target_mac, a.target_ipv4), (REMOTE_MAC, REMOTE));
    assert!(got[1].is_empty(), "ARP on the underlay is not bridged");
    assert_eq!(tunnel_stats(&sw).arp_replies_sent, 1);
    // The asker was learned: traffic to it needs no resolution.
    vm.inject(&unicast(1, 2, 0));
    let got = collect(&sw, &peers);
    assert_eq!(got[0].len(), 1);
    assert_eq!(parse_encap(&got[0][0]).vni, 100);
}

#[test]
fn resolution_queue_overflow_is_counted() {
    let (sw, up, vm) = setup(None, &[]);
    let peers = [up.clone(), vm.clone()];
    let n = 100u32;
    for seq in 0..n {
        vm.inject(&unicast(1, 2, seq));
    }
    let got = collect(&sw, &peers);
    assert_eq!(got[0].len(), 1, "one ARP request");
    let t = tunnel_stats(&sw);
    assert!(t.neigh_queued > 0 && t.neigh_queue_overflow > 0, "{t:?}");
    assert_eq!(t.neigh_queued + t.neigh_queue_overflow, u64::from(n));
    up.inject(&remote_arp_reply());
    let got = collect(&sw, &peers);
    let seqs: Vec<u32> = got[0]
        .iter()
        .map(|f| seq_of(&parse_encap(f).inner))
        .collect();
    // The first ones were held, in order; the rest were dropped and counted.
    assert_sequence(&seqs, t.neigh_queued as u32, "held frames");
    assert_eq!(drops(&sw, DropReason::Tunnel), t.neigh_queue_overflow);
}

#[test]
fn frames_over_the_underlay_mtu_are_dropped_and_counted() {
    captured_log(); // from here on, logs are kept
    let (sw, up, vm) = setup(Some(576), &[]);
    let peers = [up.clone(), vm.clone()];
    up.inject(&arp(Request, REMOTE_MAC, REMOTE, [0; 6], LOCAL));
    let _ = collect(&sw, &peers);
    let frame = |len: usize| {
        let mut f = unicast(1, 2, 0);
        f.resize(len, 0);
        f
    };
    // 576 = 20 + 8 + 8 + inner: 540 bytes of inner frame fit, 541 do not.
    vm.inject(&frame(540));
    vm.inject(&frame(541));
    let got = collect(&sw, &peers);
    assert_eq!(got[0].len(), 1);
    assert_eq!(got[0][0].len(), 590);
    assert_eq!(parse_encap(&got[0][0]).inner.len(), 540);
    assert_eq!(tunnel_stats(&sw).mtu_drops, 1);
    assert_eq!(drops(&sw, DropReason::Tunnel), 1);
    // And a log line says so, with the sizes.
    let log = captured_log();
    let line = log
        .lines()
        .find(|l| l.contains("inner frame too large for the underlay MTU"))
        .unwrap_or_else(|| panic!("no MTU drop log line in:\n{log}"));
    assert!(
        line.contains("WARN")
            && line.contains("port=")
            && line.contains("inner_len=541")
            && line.contains("mtu=576"),
        "{line}"
    );
}

#[test]
fn set_tunnel_chooses_the_vni_per_flow() {
    let flows = [flow(
        100,
        &[
            ("in_port", "vm"),
            ("eth_type", "0x0800"),
            ("ip_dst", "198.18.0.3"),
        ],
        &["set_tunnel:200", "output:vx100"],
    )];
    let (sw, up, vm) = setup(None, &flows);
    let peers = [up.clone(), vm.clone()];
    up.inject(&arp(Request, REMOTE_MAC, REMOTE, [0; 6], LOCAL));
    let _ = collect(&sw, &peers);
    vm.inject(&unicast(1, 3, 0)); // the rule: VNI 200
    vm.inject(&unicast(1, 2, 1)); // normal: the port's VNI 100
    let got = collect(&sw, &peers);
    let vnis: Vec<u32> = got[0].iter().map(|f| parse_encap(f).vni).collect();
    assert_eq!(vnis, [200, 100]);
}

#[test]
fn two_vnis_with_overlapping_addresses_stay_apart() {
    // Tenant A: VLAN 10 <-> VNI 100; tenant B: VLAN 20 <-> VNI 200. Same MACs and IPs.
    let (sw, p) = switch_from(
        vec![
            uplink(None),
            mem_port_vlan("vmA", Some(access(10))),
            mem_port_vlan("vmB", Some(access(20))),
            vxlan("vxA", 100, REMOTE, Some(10)),
            vxlan("vxB", 200, REMOTE, Some(20)),
        ],
        &[],
    );
    let p: Vec<MemPeer> = p.into_iter().flatten().collect();
    let (up, a, b) = (&p[0], &p[1], &p[2]);
    up.inject(&arp(Request, REMOTE_MAC, REMOTE, [0; 6], LOCAL));
    let _ = collect(&sw, &p);
    // Broadcasts from the wire: each VNI reaches only its tenant.
    up.inject(&vxlan_frame(REMOTE, LOCAL, 100, &broadcast(5, 1)));
    up.inject(&vxlan_frame(REMOTE, LOCAL, 200, &broadcast(5, 2)));
    let got = collect(&sw, &p);
    assert_eq!(got[1], vec![broadcast(5, 1)]);
    assert_eq!(got[2], vec![broadcast(5, 2)]);
    // Broadcasts from the tenants: each leaves in its own VNI only.
    a.inject(&broadcast(1, 3));
    b.inject(&broadcast(1, 4));
    let got = collect(&sw, &p);
    assert!(
        got[1].is_empty() && got[2].is_empty(),
        "tenants leaked locally"
    );
    let mut vnis: Vec<(u32, u32)> = got[0]
        .iter()
        .map(|f| {
            let e = parse_encap(f);
            (e.vni, seq_of(&e.inner))
        })
        .collect();
    vnis.sort();
    assert_eq!(vnis, [(100, 3), (200, 4)]);
    // Unicast to host 5, known in both tenants behind different ports.
    a.inject(&unicast(1, 5, 5));
    let got = collect(&sw, &p);
    assert_eq!(got[0].len(), 1);
    assert_eq!(parse_encap(&got[0][0]).vni, 100);
}

#[test]
fn config_rejects_bad_overlay_settings() {
    use switch::config::Config;
    let bad = |ports: Vec<PortConfig>, want: &str| {
        let cfg = Config {
            ports,
            ..Config::default()
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains(want), "{err:?} does not mention {want:?}");
    };
    // A vxlan port without an underlay is valid (the uplink may come later, through the
    // API); its frames are counted as `no_underlay_drops` meanwhile.
    assert!(Config {
        ports: vec![vxlan("vx", 1, REMOTE, None)],
        ..Config::default()
    }
    .validate()
    .is_ok());
    bad(
        vec![
            uplink(None),
            PortConfig {
                ip: Some("198.18.0.5/24".into()),
                ..mem_port("u2")
            },
        ],
        "port[1].ip",
    );
    bad(
        vec![
            uplink(None),
            vxlan("a", 1, REMOTE, None),
            vxlan("b", 1, REMOTE, None),
        ],
        "port[2].vni",
    );
    bad(
        vec![PortConfig {
            gateway: Some([198, 18, 1, 1].into()),
            ..uplink(None)
        }],
        "gateway",
    );
    bad(
        vec![PortConfig {
            mtu: Some(100),
            ..uplink(None)
        }],
        "port[0].mtu",
    );
    bad(
        vec![PortConfig {
            mtu: Some(1400),
            ..mem_port("m")
        }],
        "port[0].mtu",
    );
    bad(
        vec![PortConfig {
            vlan: Some(access(10)),
            ..uplink(None)
        }],
        "port[0].vlan",
    );
    bad(
        vec![uplink(None), vxlan("v", 1, [224, 0, 0, 1], None)],
        "port[1].remote_ip",
    );
    bad(
        vec![mem_port_vlan("t", Some(trunk(&[10, 10], None)))],
        "vlan.allowed",
    );
    bad(
        vec![mem_port_vlan("t", Some(trunk(&[], None)))],
        "vlan.allowed",
    );
    bad(vec![mem_port_vlan("a", Some(access(4095)))], "vlan.tag");
    bad(
        vec![mem_port_vlan("t", Some(trunk(&[10], Some(0))))],
        "vlan.native",
    );
}

#[test]
fn a_neighbour_learned_on_one_pmd_releases_frames_held_on_another() {
    let ncpu = std::thread::available_parallelism().unwrap().get();
    if ncpu < 2 {
        panic!("this test needs 2 CPUs for 2 PMDs; the machine has {ncpu}");
    }
    let cfg = switch::Config {
        switch: switch_cfg(&[ncpu - 2, ncpu - 1]),
        ports: vec![
            uplink(None),
            mem_port_vlan("vm", Some(access(10))),
            vxlan("vx100", 100, REMOTE, Some(10)),
        ],
        flows: Vec::new(),
    };
    let sw = Switch::start(&cfg).unwrap();
    let ports = sw.ports();
    assert_ne!(
        ports[0].rxq_pmds, ports[1].rxq_pmds,
        "uplink and vm should be polled by different PMDs"
    );
    let up = sw.mem_peer("uplink").unwrap();
    let vm = sw.mem_peer("vm").unwrap();
    let peers = [up.clone(), vm.clone()];
    for seq in 0..3 {
        vm.inject(&unicast(1, 2, seq));
    }
    let got = collect(&sw, &peers);
    assert_eq!(got[0].len(), 1);
    assert!(is_arp_request_for(&got[0][0], REMOTE));
    // The reply reaches the uplink's PMD, which announces it to the vm's PMD.
    up.inject(&remote_arp_reply());
    settle(&sw, &peers);
    // The announcement is applied between the peer's bursts; a barrier round trip covers it.
    sw.barrier().unwrap();
    let got = collect(&sw, &peers);
    let seqs: Vec<u32> = got[0]
        .iter()
        .map(|f| seq_of(&parse_encap(f).inner))
        .collect();
    assert_sequence(&seqs, 3, "frames held on the other PMD");
}

#[test]
fn the_overlay_example_config_is_valid() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/overlay.toml");
    let cfg = switch::Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        cfg.ports
            .iter()
            .filter(|p| p.kind == PortType::Vxlan)
            .count(),
        2
    );
}

#[test]
fn an_unanswered_next_hop_is_asked_again_then_its_frames_dropped() {
    // Retries run from the PMD's timer, also while it sleeps for lack of traffic.
    let (sw, up, vm) = setup(None, &[]);
    let peers = [up.clone(), vm.clone()];
    vm.inject(&unicast(1, 2, 0));
    settle(&sw, &peers);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while tunnel_stats(&sw).neigh_timeout_drops == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            tunnel_stats(&sw)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let t = tunnel_stats(&sw);
    assert_eq!(
        (t.arp_requests_sent, t.neigh_timeout_drops),
        (3, 1),
        "{t:?}"
    );
    let requests = up.drain();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|f| is_arp_request_for(f, REMOTE)));
    assert_eq!(drops(&sw, DropReason::Tunnel), 1);
    // A later frame starts a new resolution.
    vm.inject(&unicast(1, 2, 1));
    up.inject(&remote_arp_reply());
    let got = collect(&sw, &peers);
    assert!(got[0]
        .iter()
        .any(|f| f.len() > 60 && seq_of(&parse_encap(f).inner) == 1));
}

#[test]
fn a_vxlan_port_with_its_own_local_ip_uses_it_both_ways() {
    const LOCAL2: [u8; 4] = [198, 18, 0, 9];
    let mut vx = vxlan("vx100", 100, REMOTE, Some(10));
    vx.local_ip = Some(LOCAL2.into());
    let (sw, p) = switch_from(
        vec![uplink(None), mem_port_vlan("vm", Some(access(10))), vx],
        &[],
    );
    let p: Vec<MemPeer> = p.into_iter().flatten().collect();
    let (up, vm) = (&p[0], &p[1]);
    // ARP for the port's address is answered, with the switch's MAC.
    up.inject(&arp(Request, REMOTE_MAC, REMOTE, [0; 6], LOCAL2));
    let got = collect(&sw, &p);
    assert_eq!(got[0].len(), 1);
    assert_eq!(&got[0][0][22..28], &LOCAL_MAC, "sender MAC");
    assert_eq!(&got[0][0][28..32], &LOCAL2, "sender address");
    // Decap accepts VXLAN to it; encap sends from it.
    up.inject(&vxlan_frame(REMOTE, LOCAL2, 100, &broadcast(7, 1)));
    let got = collect(&sw, &p);
    assert_eq!(got[1], vec![broadcast(7, 1)]);
    vm.inject(&unicast(1, 7, 2));
    let got = collect(&sw, &p);
    assert_eq!(got[0].len(), 1);
    let h = PacketHeaders::from_ethernet_slice(&got[0][0]).unwrap();
    let Some(NetHeaders::Ipv4(ip, _)) = h.net else {
        panic!("not IPv4")
    };
    assert_eq!((ip.source, ip.destination), (LOCAL2, REMOTE));
}

#[test]
fn off_link_vteps_go_through_the_gateway_or_are_dropped_without_one() {
    const GW: [u8; 4] = [198, 18, 0, 254];
    const GW_MAC: [u8; 6] = [0x02, 0xee, 0, 0, 0, 0xfe];
    const FAR: [u8; 4] = [198, 18, 7, 2];
    let with_gw = PortConfig {
        gateway: Some(GW.into()),
        ..uplink(None)
    };
    let (sw, p) = switch_from(
        vec![
            with_gw,
            mem_port_vlan("vm", Some(access(10))),
            vxlan("vxfar", 100, FAR, Some(10)),
        ],
        &[],
    );
    let p: Vec<MemPeer> = p.into_iter().flatten().collect();
    p[1].inject(&unicast(1, 2, 0));
    let got = collect(&sw, &p);
    assert_eq!(got[0].len(), 1);
    assert!(
        is_arp_request_for(&got[0][0], GW),
        "resolves the gateway, not the VTEP"
    );
    p[0].inject(&arp(Reply, GW_MAC, GW, LOCAL_MAC, LOCAL));
    let got = collect(&sw, &p);
    assert_eq!(got[0].len(), 1);
    let h = PacketHeaders::from_ethernet_slice(&got[0][0]).unwrap();
    let Some(etherparse::LinkHeader::Ethernet2(eth)) = h.link else {
        panic!("no Ethernet")
    };
    let Some(NetHeaders::Ipv4(ip, _)) = h.net else {
        panic!("not IPv4")
    };
    assert_eq!(eth.destination, GW_MAC, "sent to the gateway's MAC");
    assert_eq!(ip.destination, FAR, "addressed to the far VTEP");

    // Without a gateway: counted and dropped.
    let (sw, p) = switch_from(
        vec![
            uplink(None),
            mem_port_vlan("vm", Some(access(10))),
            vxlan("vxfar", 100, FAR, Some(10)),
        ],
        &[],
    );
    let p: Vec<MemPeer> = p.into_iter().flatten().collect();
    p[1].inject(&unicast(1, 2, 0));
    let got = collect(&sw, &p);
    assert!(got[0].is_empty());
    assert_eq!(tunnel_stats(&sw).no_route_drops, 1);
    assert_eq!(drops(&sw, DropReason::Tunnel), 1);
}

#[test]
fn removing_the_uplink_drops_held_frames_and_later_output_is_counted() {
    let (sw, up, vm) = setup(None, &[]);
    let peers = [up.clone(), vm.clone()];
    for seq in 0..4 {
        vm.inject(&unicast(1, 2, seq));
    }
    settle(&sw, &peers);
    assert_eq!(tunnel_stats(&sw).neigh_queued, 4);
    sw.del_port("uplink").unwrap();
    assert_eq!(
        drops(&sw, DropReason::Tunnel),
        4,
        "held frames dropped with the uplink"
    );
    vm.inject(&unicast(1, 2, 4));
    settle(&sw, std::slice::from_ref(&vm));
    let t: u64 = sw.stats().iter().map(|s| s.tunnel.no_underlay_drops).sum();
    assert_eq!(t, 1);
    // A new uplink brings the overlay back.
    sw.add_port(uplink(None)).unwrap();
    let up = sw.mem_peer("uplink").unwrap();
    up.inject(&remote_arp_reply());
    settle(&sw, std::slice::from_ref(&up));
    vm.inject(&unicast(1, 2, 5));
    let got = collect(&sw, &[up.clone(), vm.clone()]);
    assert_eq!(got[0].len(), 1);
    assert_eq!(seq_of(&parse_encap(&got[0][0]).inner), 5);
}
