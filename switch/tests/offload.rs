//! Guest offloads through the switch, with in-process vhost-user guests: a guest that
//! negotiated checksum and TSO offloads sends a 64 KiB-class TCP frame with a partial
//! checksum; a guest that negotiated the same gets it as one frame with its header, a guest
//! without them and a memory port (an uplink's stand-in) get segments with full checksums,
//! checked with etherparse. A lying header costs only its frame. (Real guests: the QEMU tests
//! in `api/tests`; the primitives: `switch::offload`'s unit and property tests.)

mod common;

use std::time::Duration;

use common::*;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use ports::mem::MemPeer;
use ports::vhost::test_utils::{wait_for, Guest, SockDir, OFFLOADS};
use ports::VirtioNetHdr;
use switch::config::{Config, PortConfig, PortType};
use switch::stats::PortCounters;
use switch::Switch;

/// The TCP payload the source sends in one frame, and its MSS.
const PAYLOAD: usize = 20_000;
const MSS: u16 = 1448;
/// Receive buffers: large enough for the whole frame (no mergeable buffers needed).
const RX_BUF: u32 = 24 * 1024;

fn vhost_port(dir: &SockDir, name: &str) -> PortConfig {
    PortConfig {
        kind: PortType::VhostUser,
        socket: Some(dir.path(&format!("{name}.sock"))),
        ..mem_port(name)
    }
}

/// The TCP payload and sequence number of `frame`, after checking that its IPv4 header and
/// TCP checksums are right (etherparse computes them independently).
fn checked_tcp(frame: &[u8]) -> (Vec<u8>, u32) {
    let p = SlicedPacket::from_ethernet(frame).expect("a parsable frame");
    let Some(NetSlice::Ipv4(ipv4)) = p.net else {
        panic!("not IPv4")
    };
    let h = ipv4.header().to_header();
    assert_eq!(
        h.header_checksum,
        h.calc_header_checksum(),
        "IPv4 header checksum"
    );
    let Some(TransportSlice::Tcp(tcp)) = p.transport else {
        panic!("not TCP")
    };
    let want = tcp
        .to_header()
        .calc_checksum_ipv4(&h, tcp.payload())
        .unwrap();
    assert_eq!(tcp.checksum(), want, "TCP checksum");
    (tcp.payload().to_vec(), tcp.sequence_number())
}

/// Payload bytes in sequence order from `segments`, checking they follow each other.
fn reassemble(segments: &[Vec<u8>], first_seq: u32, mss: u16) -> Vec<u8> {
    let mut data = Vec::new();
    for s in segments {
        let (payload, seq) = checked_tcp(s);
        assert_eq!(
            seq,
            first_seq.wrapping_add(data.len() as u32),
            "segment out of sequence"
        );
        assert!(payload.len() <= usize::from(mss));
        data.extend_from_slice(&payload);
    }
    data
}

/// What a guest received on vring 0: (header, frame) per used buffer.
fn received(g: &mut Guest, posted: &[(u16, u64)]) -> Vec<(VirtioNetHdr, Vec<u8>)> {
    g.take_used(0)
        .into_iter()
        .map(|(id, len)| {
            let addr = posted.iter().find(|(h, _)| u32::from(*h) == id).unwrap().1;
            let bytes = g.read(addr, len as usize);
            let hdr = VirtioNetHdr::from_bytes(bytes[..12].try_into().unwrap());
            (hdr, bytes[12..].to_vec())
        })
        .collect()
}

fn counters(sw: &Switch, name: &str) -> PortCounters {
    PortCounters::total(&sw.stats(), sw.port_no(name).unwrap())
}

/// Posts `n` receive buffers on a guest's vring 0 and publishes them.
fn post(g: &mut Guest, n: usize) -> Vec<(u16, u64)> {
    let posted = g.post_rx_buffers(n, RX_BUF);
    g.publish(0);
    posted
}

fn send(g: &mut Guest, hdr: &VirtioNetHdr, frame: &[u8]) {
    let (addr, len) = g.tx_buffer_with(hdr, frame);
    g.add_chain(1, &[(addr, len, 0)]);
    g.publish(1);
}

/// A switch on the last CPU with its sockets in `dir`, `ports`, and one rule: everything
/// from port `src` to `outputs`, in that order.
fn start(dir: &SockDir, ports: Vec<PortConfig>, outputs: &[&str]) -> Switch {
    let mut switch = switch_cfg(&[last_cpu()]);
    switch.socket_dir = dir.dir.path().to_path_buf();
    let actions: Vec<String> = outputs.iter().map(|o| format!("output:{o}")).collect();
    let actions: Vec<&str> = actions.iter().map(String::as_str).collect();
    let cfg = Config {
        switch,
        ports,
        flows: vec![flow(100, &[("in_port", "src")], &actions)],
    };
    Switch::start(&cfg).expect("switch starts")
}

/// The next `n` frames at memory port `peer` (`what` names them if they do not come).
fn recv_n(peer: &MemPeer, n: usize, what: &str) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            peer.recv_timeout(Duration::from_secs(5))
                .unwrap_or_else(|| panic!("{what} at the memory port"))
        })
        .collect()
}

#[test]
fn a_tso_frame_goes_whole_to_a_guest_that_takes_it_and_segmented_elsewhere() {
    let dir = SockDir::new();
    let ports = vec![
        vhost_port(&dir, "src"),
        vhost_port(&dir, "tso"),
        vhost_port(&dir, "plain"),
        mem_port("up"),
    ];
    let sw = start(&dir, ports, &["tso", "plain", "up"]);
    let up = sw.mem_peer("up").unwrap();
    let mut src = Guest::connect(&dir.path("src.sock"), 1, OFFLOADS);
    let mut tso = Guest::connect(&dir.path("tso.sock"), 1, OFFLOADS);
    let mut plain = Guest::connect(&dir.path("plain.sock"), 1, 0);
    let tso_bufs = post(&mut tso, 4);
    let plain_bufs = post(&mut plain, 32);

    let payload: Vec<u8> = (0..PAYLOAD).map(|i| (i * 7 % 251) as u8).collect();
    let (hdr, frame) = partial_tcp(&payload, Some(MSS), 1000);
    send(&mut src, &hdr, &frame);
    let segments = PAYLOAD.div_ceil(usize::from(MSS));

    // The guest that negotiated TSO: the frame as it was sent, with its request.
    wait_for("the TSO frame at the tso guest", || tso.used_idx(0) >= 1);
    let got = received(&mut tso, &tso_bufs);
    assert_eq!(got.len(), 1);
    let (h, f) = &got[0];
    assert_eq!(f, &frame, "passed on as it came");
    assert_eq!(h.flags, VirtioNetHdr::F_NEEDS_CSUM);
    assert_eq!((h.gso_type, h.gso_size), (VirtioNetHdr::GSO_TCPV4, MSS));
    assert_eq!((h.csum_start, h.csum_offset), (34, 16));
    assert_eq!(h.num_buffers, 1);

    // The guest without offloads: segments, no request in their headers.
    wait_for("the segments at the plain guest", || {
        usize::from(plain.used_idx(0)) >= segments
    });
    let got = received(&mut plain, &plain_bufs);
    assert!(
        got.iter().all(|(h, _)| !h.requests()),
        "no header asks for anything"
    );
    let frames: Vec<Vec<u8>> = got.into_iter().map(|(_, f)| f).collect();
    assert_eq!(frames.len(), segments);
    assert_eq!(reassemble(&frames, 1000, MSS), payload);

    // The uplink's stand-in: the same segments.
    let up_frames = recv_n(&up, segments, "a segment");
    assert_eq!(reassemble(&up_frames, 1000, MSS), payload);

    sw.barrier().unwrap();
    assert_eq!(counters(&sw, "src").rx_offload, 1);
    assert_eq!(counters(&sw, "tso").tx_offload, 1);
    assert_eq!(counters(&sw, "tso").tx_segments, 0);
    assert_eq!(counters(&sw, "plain").tx_segments, segments as u64);
    assert_eq!(counters(&sw, "plain").tx_packets, segments as u64);
    assert_eq!(counters(&sw, "up").tx_segments, segments as u64);
}

#[test]
fn a_partial_checksum_is_filled_for_an_output_that_cannot_take_it() {
    let dir = SockDir::new();
    let ports = vec![
        vhost_port(&dir, "src"),
        vhost_port(&dir, "csum"),
        mem_port("up"),
    ];
    let sw = start(&dir, ports, &["csum", "up"]);
    let up = sw.mem_peer("up").unwrap();
    let mut src = Guest::connect(&dir.path("src.sock"), 1, OFFLOADS);
    let mut csum = Guest::connect(&dir.path("csum.sock"), 1, OFFLOADS);
    let bufs = post(&mut csum, 4);

    let payload = vec![0xa5; 1000];
    let (hdr, frame) = partial_tcp(&payload, None, 5);
    send(&mut src, &hdr, &frame);

    wait_for("the frame at the csum guest", || csum.used_idx(0) >= 1);
    let got = received(&mut csum, &bufs);
    assert_eq!(got[0].1, frame, "a guest with GUEST_CSUM gets it partial");
    assert_eq!(got[0].0.flags, VirtioNetHdr::F_NEEDS_CSUM);
    let f = recv_n(&up, 1, "the frame");
    assert_eq!(checked_tcp(&f[0]), (payload, 5));
    sw.barrier().unwrap();
    assert_eq!(counters(&sw, "up").tx_csum_filled, 1);
    assert_eq!(counters(&sw, "csum").tx_offload, 1);
}

#[test]
fn a_lying_header_costs_its_frame_and_nothing_else() {
    let dir = SockDir::new();
    let sw = start(&dir, vec![vhost_port(&dir, "src"), mem_port("up")], &["up"]);
    let up = sw.mem_peer("up").unwrap();
    let mut src = Guest::connect(&dir.path("src.sock"), 1, OFFLOADS);

    let payload = vec![1; 3000];
    let (good, frame) = partial_tcp(&payload, Some(MSS), 0);
    let lies = [
        // The checksum would overwrite the IPv4 addresses the flow key reads.
        VirtioNetHdr {
            csum_start: 26,
            csum_offset: 0,
            ..good
        },
        // TSO for IPv6 on an IPv4 frame.
        VirtioNetHdr {
            gso_type: VirtioNetHdr::GSO_TCPV6,
            ..good
        },
        // Segments of no bytes.
        VirtioNetHdr {
            gso_size: 0,
            ..good
        },
        // The checksum field past the end of the frame.
        VirtioNetHdr {
            csum_start: 34,
            csum_offset: 0xfff0,
            gso_type: 0,
            ..good
        },
    ];
    for lie in &lies {
        send(&mut src, lie, &frame);
    }
    // The same frame told truthfully still goes.
    send(&mut src, &good, &frame);
    let segments = payload.len().div_ceil(usize::from(MSS));
    let got = recv_n(&up, segments, "the good frame's segments");
    assert_eq!(reassemble(&got, 0, MSS), payload);
    sw.barrier().unwrap();
    let c = counters(&sw, "src");
    assert_eq!(c.rx_offload_bad, lies.len() as u64);
    assert_eq!(c.rx_offload, 1);
    let drops: u64 = sw
        .stats()
        .iter()
        .map(|s| s.stats.drops_of(switch::DropReason::BadOffload))
        .sum();
    assert_eq!(drops, lies.len() as u64);
    assert!(
        up.recv_timeout(Duration::from_millis(100)).is_none(),
        "nothing else came"
    );
}

/// VXLAN encapsulation cannot carry a TSO frame (the underlay has an MTU): the frame is cut
/// first and each segment encapsulated, its inner checksums filled.
#[test]
fn a_tso_frame_to_a_vxlan_port_is_segmented_then_encapsulated() {
    use flowtable::wire::ArpOperation::Reply;
    use testkit::frames::arp;
    const LOCAL: [u8; 4] = [198, 18, 0, 1];
    const REMOTE: [u8; 4] = [198, 18, 0, 2];
    const LOCAL_MAC: [u8; 6] = [0x02, 0x76, 198, 18, 0, 1];
    const REMOTE_MAC: [u8; 6] = [0x02, 0xee, 0, 0, 0, 2];

    let dir = SockDir::new();
    let ports = vec![
        PortConfig {
            ip: Some("198.18.0.1/24".into()),
            ..mem_port("uplink")
        },
        vhost_port(&dir, "src"),
        PortConfig {
            kind: PortType::Vxlan,
            vni: Some(100),
            remote_ip: Some(REMOTE.into()),
            ..mem_port("vx100")
        },
    ];
    let sw = start(&dir, ports, &["vx100"]);
    let up = sw.mem_peer("uplink").unwrap();
    let mut src = Guest::connect(&dir.path("src.sock"), 1, OFFLOADS);

    // Resolve the remote VTEP first: a small frame asks, the reply lets it go.
    let (_, small) = partial_tcp(b"hello", None, 0);
    send(&mut src, &VirtioNetHdr::default(), &small);
    let request = recv_n(&up, 1, "an ARP request");
    assert_eq!(&request[0][12..14], &[0x08, 0x06]);
    up.inject(&arp(Reply, REMOTE_MAC, REMOTE, LOCAL_MAC, LOCAL));
    recv_n(&up, 1, "the small frame, encapsulated");

    // A guest behind VXLAN runs an MTU of 1450 (the underlay's 1500 less the 50 bytes of
    // encapsulation), so its MSS is 1398.
    const VXLAN_MSS: u16 = 1398;
    let payload: Vec<u8> = (0..PAYLOAD).map(|i| (i % 13) as u8).collect();
    let (hdr, frame) = partial_tcp(&payload, Some(VXLAN_MSS), 77);
    send(&mut src, &hdr, &frame);
    let segments = PAYLOAD.div_ceil(usize::from(VXLAN_MSS));
    let mut inner = Vec::new();
    let mut ids = Vec::new();
    for f in recv_n(&up, segments, "an encapsulated segment") {
        let outer = SlicedPacket::from_ethernet(&f).expect("outer headers");
        let Some(NetSlice::Ipv4(ip)) = &outer.net else {
            panic!("outer not IPv4")
        };
        assert_eq!(ip.header().destination(), REMOTE);
        let Some(TransportSlice::Udp(udp)) = &outer.transport else {
            panic!("outer not UDP")
        };
        assert_eq!(udp.destination_port(), 4789);
        let vxlan = udp.payload();
        assert_eq!(u32::from_be_bytes([0, vxlan[4], vxlan[5], vxlan[6]]), 100);
        let segment = vxlan[8..].to_vec();
        ids.push(u16::from_be_bytes([segment[18], segment[19]]));
        inner.push(segment);
    }
    assert_eq!(reassemble(&inner, 77, VXLAN_MSS), payload);
    let first = ids[0];
    let want: Vec<u16> = (0..segments as u16)
        .map(|i| first.wrapping_add(i))
        .collect();
    assert_eq!(ids, want, "inner IPv4 ids go up by one per segment");
    sw.barrier().unwrap();
    assert_eq!(counters(&sw, "vx100").tx_segments, segments as u64);
}
