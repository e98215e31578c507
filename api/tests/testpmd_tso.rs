//! TCP segmentation offload from a real virtio frontend (issue 13). DPDK testpmd's `csum`
//! forwarding engine with `tso set` replays large TCP/IPv4 frames from a pcap file (its
//! `net_pcap` port 0) to its `net_virtio_user` port 1, which hands vswitchd each one whole
//! with a GSO request in its virtio-net header (VIRTIO_NET_F_CSUM and HOST_TSO4 acked).
//! One rule sends them to three outputs:
//!
//! - an AF_XDP uplink on a veth into a namespace of the test's own, where an AF_PACKET
//!   socket reads what arrives and etherparse checks it independently: segments of at most
//!   the MSS, right IPv4 and TCP checksums (the pcap's are wrong on purpose), sequence
//!   numbers and IP ids that follow, the payload reassembling to the pcap's;
//! - a second testpmd's virtio-user port that negotiated GUEST_CSUM and GUEST_TSO4 (rx
//!   offloads `tcp_cksum` and `tcp_lro`): it must get the frames whole;
//! - the same testpmd's other port, which did not: it must get segments.
//!
//! The switch's counters (REST, on a unix socket) must say the same: offload requests taken
//! in on the guest's port, segments made for the uplink and the plain guest, frames passed
//! on whole to the TSO guest. What each frontend negotiated comes from testpmd's own log.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use etherparse::{
    EtherType, Ethernet2Header, IpNumber, Ipv4Header, NetSlice, SlicedPacket, TcpHeader,
    TransportSlice,
};
use nix::sys::signal::Signal;
use testkit::config::{switch_table, vhost_port};
use testkit::packet_socket::PacketSocket;
use testkit::pcap;
use testkit::testpmd::{
    negotiations, pcap_vdev, stop_forwarding_per_port, testpmd_ports, virtio_user_vdev,
    DpdkRuntime, VIRTIO_INIT_DEBUG,
};

/// Payload bytes per segment the sender asks for (`tso set`).
const MSS: usize = 1400;
/// Large frames in the pcap file.
const FRAMES: usize = 16;
const SENDER: [u8; 4] = [198, 18, 40, 1];
const RECEIVER: [u8; 4] = [198, 18, 40, 2];
const SRC_PORT: u16 = 40_000;
const DST_PORT: u16 = 5201;
/// The first frame's sequence number: close enough to 2^32 that the numbers wrap within
/// the first two frames.
const FIRST_SEQ: u32 = u32::MAX - 6_000;

// virtio-net feature bits (virtio 1.2, 5.1.3).
const VIRTIO_NET_F_CSUM: u64 = 1 << 0;
const VIRTIO_NET_F_GUEST_CSUM: u64 = 1 << 1;
const VIRTIO_NET_F_GUEST_TSO4: u64 = 1 << 7;
const VIRTIO_NET_F_HOST_TSO4: u64 = 1 << 11;

/// One large frame as the pcap file holds it.
struct Large {
    frame: Vec<u8>,
    id: u16,
    seq: u32,
    payload: Vec<u8>,
}

impl Large {
    fn segments(&self) -> usize {
        self.payload.len().div_ceil(MSS)
    }
}

/// [`FRAMES`] frames of one TCP stream, 4000 to 7750 payload bytes each (3 to 6 segments,
/// the last one short but for the 7000-byte frame's), with PSH and ACK, and IPv4 and TCP
/// checksums that are wrong: with TSO, testpmd computes neither (it flags the mbuf for the
/// "hardware"), so every right checksum the far end sees is one the switch wrote.
fn large_frames() -> Vec<Large> {
    let mut seq = FIRST_SEQ;
    (0..FRAMES)
        .map(|i| {
            let len = 4000 + 250 * i;
            let payload: Vec<u8> = (0..len).map(|j| (i * 31 + j * 7 + j / 251) as u8).collect();
            let id = 0x1000 + 0x100 * i as u16;
            let mut ip = Ipv4Header::new(
                (TcpHeader::MIN_LEN + len) as u16,
                64,
                IpNumber::TCP,
                SENDER,
                RECEIVER,
            )
            .unwrap();
            ip.identification = id;
            ip.header_checksum = 0xbad4;
            let mut tcp = TcpHeader::new(SRC_PORT, DST_PORT, seq, 65_535);
            tcp.ack = true;
            tcp.psh = true;
            tcp.acknowledgment_number = 1;
            tcp.checksum = 0xbad6;
            let mut frame = Vec::new();
            Ethernet2Header {
                source: [2, 0, 0, 0, 0x40, 1],
                destination: [2, 0, 0, 0, 0x40, 2],
                ether_type: EtherType::IPV4,
            }
            .write(&mut frame)
            .unwrap();
            ip.write_raw(&mut frame).unwrap();
            tcp.write(&mut frame).unwrap();
            frame.extend_from_slice(&payload);
            let large = Large {
                frame,
                id,
                seq,
                payload,
            };
            seq = seq.wrapping_add(len as u32);
            large
        })
        .collect()
}

/// The test's own frames among what the uplink's far end sees: TCP over IPv4 from
/// [`SENDER`] (read from the bytes, so that a malformed segment is kept and reported).
fn from_sender(f: &[u8]) -> bool {
    f.len() >= 34 && f[12..14] == [0x08, 0x00] && f[23] == 6 && f[26..30] == SENDER
}

/// `got` (in arrival order) is `sent`, each frame cut into segments of [`MSS`] payload
/// bytes (the last one shorter) with right checksums, sequence numbers and IP ids
/// advancing, PSH only on each frame's last segment, and the payload reassembling.
fn check_segments(sent: &[Large], got: &[Vec<u8>]) {
    let mut got = got.iter();
    for (i, large) in sent.iter().enumerate() {
        let n = large.segments();
        let mut payload = Vec::with_capacity(large.payload.len());
        for k in 0..n {
            let at = format!("frame {i} segment {k} of {n}");
            let f = got
                .next()
                .unwrap_or_else(|| panic!("{at}: missing (frames arrived out of order?)"));
            let p = SlicedPacket::from_ethernet(f).unwrap_or_else(|e| panic!("{at}: {e}"));
            let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(tcp))) = (p.net, p.transport)
            else {
                panic!("{at}: not TCP over IPv4: {f:02x?}");
            };
            let ip = ip.header().to_header();
            let (tcp, data) = (tcp.to_header(), tcp.payload());
            assert_eq!(
                ip.header_checksum,
                ip.calc_header_checksum(),
                "{at}: IPv4 header checksum"
            );
            assert_eq!(
                tcp.checksum,
                tcp.calc_checksum_ipv4(&ip, data).unwrap(),
                "{at}: TCP checksum"
            );
            let last = k + 1 == n;
            let want_len = if last {
                large.payload.len() - k * MSS
            } else {
                MSS
            };
            assert_eq!(data.len(), want_len, "{at}: payload length");
            assert_eq!(
                tcp.sequence_number,
                large.seq.wrapping_add((k * MSS) as u32),
                "{at}: sequence number"
            );
            assert_eq!(
                ip.identification,
                large.id.wrapping_add(k as u16),
                "{at}: IP id"
            );
            assert_eq!(tcp.psh, last, "{at}: PSH on the last segment only");
            assert!(tcp.ack && !tcp.fin && !tcp.syn, "{at}: flags {tcp:?}");
            payload.extend_from_slice(data);
        }
        assert!(
            payload == large.payload,
            "frame {i}: the segments' payload differs from the frame's"
        );
    }
    let extra = got.count();
    assert_eq!(extra, 0, "{extra} frames more than the segments expected");
}

/// `large` cut into segments the way the switch must (for the checker's own tests).
fn segmented_by_hand(large: &[Large]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for l in large {
        let n = l.segments();
        for (k, data) in l.payload.chunks(MSS).enumerate() {
            let mut ip = Ipv4Header::new(
                (TcpHeader::MIN_LEN + data.len()) as u16,
                64,
                IpNumber::TCP,
                SENDER,
                RECEIVER,
            )
            .unwrap();
            ip.identification = l.id.wrapping_add(k as u16);
            let mut tcp = TcpHeader::new(
                SRC_PORT,
                DST_PORT,
                l.seq.wrapping_add((k * MSS) as u32),
                65_535,
            );
            tcp.ack = true;
            tcp.psh = k + 1 == n;
            tcp.acknowledgment_number = 1;
            tcp.checksum = tcp.calc_checksum_ipv4(&ip, data).unwrap();
            let mut f = l.frame[..14].to_vec();
            ip.write(&mut f).unwrap();
            tcp.write(&mut f).unwrap();
            f.extend_from_slice(data);
            out.push(f);
        }
    }
    out
}

#[test]
fn checker_takes_right_segments() {
    let large = large_frames();
    check_segments(&large, &segmented_by_hand(&large));
}

#[test]
#[should_panic(expected = "frame 1 segment 1 of 4: TCP checksum")]
fn checker_catches_a_wrong_tcp_checksum() {
    let large = large_frames();
    let mut segs = segmented_by_hand(&large);
    // Frame 0 has 3 segments: this is frame 1's second. Its last payload byte, changed.
    *segs[4].last_mut().unwrap() ^= 0x01;
    check_segments(&large, &segs);
}

#[test]
#[should_panic(expected = "frame 2 segment 0 of 4: IPv4 header checksum")]
fn checker_catches_a_wrong_ip_checksum() {
    let large = large_frames();
    let mut segs = segmented_by_hand(&large);
    segs[7][14 + 8] -= 1; // the TTL
    check_segments(&large, &segs);
}

/// Port `port`'s counters from vswitchd's REST port view, over its unix socket `api`.
fn counters(api: &Path, port: &str) -> serde_json::Value {
    let path = format!("/v1/ports/{port}");
    let r = api::ctl::http::Endpoint::Unix(api.to_path_buf())
        .request("GET", &path, None, None)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    let v: serde_json::Value =
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("GET {path}: {e}: {}", r.body));
    v["counters"].clone()
}

fn counter(c: &serde_json::Value, name: &str) -> u64 {
    c[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name} in {c}"))
}

#[test]
fn testpmd_tso_segmented_for_the_uplink_and_a_plain_guest_whole_for_a_tso_guest() {
    if !require_peer(TESTPMD, "dpdk-dev", "VSWITCH_SKIP_DPDK") {
        return;
    }
    let started = Instant::now();
    let dir = Scratch::new("tpmd-tso");
    let large = large_frames();
    let segments: usize = large.iter().map(Large::segments).sum();
    let pcap_file = dir.path("large.pcap");
    pcap::write(&pcap_file, large.iter().map(|l| &l.frame));

    // The uplink's far end, with IPv6 off and no address: nothing but the test's frames
    // crosses the veth.
    let ns = Netns::named_ipv4_only(unique_name("tso"));
    let veth = Veth::new(&ns);
    let far_end = PacketSocket::open(Some(&ns), &veth.peer);

    let (s_vm, s_lro, s_plain) = (
        dir.path("vm.sock"),
        dir.path("lro.sock"),
        dir.path("plain.sock"),
    );
    let cfg = dir.file(
        "vswitch.toml",
        &(switch_table(last_cpu(), &dir.socket_dir())
            + &vhost_port("vm", &s_vm, "server")
            + &vhost_port("lro", &s_lro, "server")
            + &vhost_port("plain", &s_plain, "server")
            + &format!(
                "\n[[port]]\nname = \"up\"\ntype = \"afxdp\"\ninterface = \"{}\"\n",
                veth.host
            )
            + r#"
[[flow]]
match = { in_port = "vm" }
actions = ["output:up", "output:lro", "output:plain"]
"#),
    );
    let api_sock = dir.path("api.sock");
    let mut sw_cmd = Command::new(VSWITCHD);
    sw_cmd
        .arg("--config")
        .arg(&cfg)
        .args(["--api-listen", "off"])
        .arg("--api-socket")
        .arg(&api_sock)
        .arg("--api-token-file")
        .arg(dir.path("api-token"))
        .env("RUST_LOG", "info");
    // Declared before the processes: their runtime directories go after they do.
    let (rx_runtime, tx_runtime) = (DpdkRuntime::new("tso-rx"), DpdkRuntime::new("tso-tx"));
    let mut sw = Proc::spawn("vswitchd", sw_cmd);
    sw.wait_for("vswitchd running", Duration::from_secs(30));

    // The receiving "guest": port 0 takes TSO frames whole, port 1 does not.
    let mut rx = Proc::spawn(
        "testpmd-rx",
        testpmd_ports(
            &rx_runtime.prefix,
            [
                VIRTIO_INIT_DEBUG.to_string(),
                virtio_user_vdev(0, &s_lro, false, ""),
                virtio_user_vdev(1, &s_plain, false, ""),
            ],
            ["--total-num-mbufs=4096", "--forward-mode=rxonly"],
        ),
    );
    let probed = negotiations(&mut rx, None, 2, "Done", Duration::from_secs(60));
    assert_eq!(probed.len(), 2, "one negotiation per port:\n{}", rx.log);
    for f in &probed {
        assert_eq!(
            f & VIRTIO_NET_F_GUEST_TSO4,
            0,
            "GUEST_TSO4 before asked: {f:#x}"
        );
    }
    // The virtio PMD asks for GUEST_TSO4/6 with `tcp_lro` and for GUEST_CSUM with
    // `tcp_cksum`; the switch passes TSO frames on only with both (virtio 1.2, 5.1.3.1).
    rx.send("port stop 0");
    rx.wait_for("Done", Duration::from_secs(20));
    rx.send("port config 0 rx_offload tcp_cksum on");
    rx.send("port config 0 rx_offload tcp_lro on");
    let lro_features = negotiations(
        &mut rx,
        Some("port start 0"),
        1,
        "Done",
        Duration::from_secs(20),
    )[0];
    let plain_features = probed[1];
    rx.send("start");
    rx.wait_for("rxonly packet forwarding", Duration::from_secs(10));

    // The sending "guest". testpmd drains its ports when forwarding starts, which would
    // read the whole pcap file into the void: --no-flush-rx.
    let mut tx = Proc::spawn(
        "testpmd-tx",
        testpmd_ports(
            &tx_runtime.prefix,
            [
                VIRTIO_INIT_DEBUG.to_string(),
                pcap_vdev(0, &pcap_file),
                virtio_user_vdev(1, &s_vm, false, ""),
            ],
            [
                "--total-num-mbufs=4096",
                "--no-flush-rx",
                "--forward-mode=csum",
            ],
        ),
    );
    negotiations(&mut tx, None, 1, "Done", Duration::from_secs(60));
    // The csum engine's settings are per output port and need it stopped; starting it
    // again reconfigures the virtio PMD with the TCP checksum and TSO offloads, for which
    // it negotiates CSUM and HOST_TSO4/6 anew. virtio-net has no IPv4 checksum offload, so
    // `csum set ip hw` is refused and stays sw, but with TSO testpmd leaves the IPv4
    // checksum to the segmenter anyway.
    tx.send("port stop 1");
    tx.wait_for("Done", Duration::from_secs(20));
    tx.send("csum set ip hw 1");
    tx.wait_for("Outer-Udp checksum offload is", Duration::from_secs(5));
    tx.send("csum set tcp hw 1");
    tx.wait_for("TCP checksum offload is hw", Duration::from_secs(5));
    tx.send(&format!("tso set {MSS} 1"));
    tx.wait_for(
        &format!("TSO segment size for non-tunneled packets is {MSS}"),
        Duration::from_secs(5),
    );
    let tso_features = negotiations(
        &mut tx,
        Some("port start 1"),
        1,
        "Done",
        Duration::from_secs(20),
    )[0];
    eprintln!(
        "negotiated (testpmd's virtio PMD): sender {tso_features:#x}, TSO receiver \
         {lro_features:#x}, plain receiver {plain_features:#x}"
    );
    assert_eq!(
        tso_features & (VIRTIO_NET_F_CSUM | VIRTIO_NET_F_HOST_TSO4),
        VIRTIO_NET_F_CSUM | VIRTIO_NET_F_HOST_TSO4,
        "the sender negotiated CSUM and HOST_TSO4: {tso_features:#x}\n{}",
        tx.log
    );
    assert_eq!(
        lro_features & (VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_TSO4),
        VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_TSO4,
        "the TSO receiver negotiated GUEST_CSUM and GUEST_TSO4: {lro_features:#x}\n{}",
        rx.log
    );
    tx.send("start");
    tx.wait_for("csum packet forwarding", Duration::from_secs(10));

    let got = far_end.recv_frames(segments, Duration::from_secs(30), from_sender);
    if got.len() < segments {
        sw.drain_for(Duration::from_millis(200));
        panic!(
            "{} of {segments} segments reached the uplink's far end\n{}",
            got.len(),
            testkit::process::logs(&[&sw, &tx, &rx])
        );
    }
    check_segments(&large, &got);

    // The receiving guest's ring may still be filling: wait for the switch to have sent
    // all (a bound against hanging, not a timing check).
    let deadline = Instant::now() + Duration::from_secs(20);
    let (vm, up, lro, plain) = loop {
        let c = ["vm", "up", "lro", "plain"].map(|p| counters(&api_sock, p));
        let done = counter(&c[2], "tx_packets") >= FRAMES as u64
            && counter(&c[3], "tx_packets") >= segments as u64;
        if done || Instant::now() > deadline {
            let [vm, up, lro, plain] = c;
            break (vm, up, lro, plain);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let rx_ports = stop_forwarding_per_port(&mut rx, 2);
    let tx_ports = stop_forwarding_per_port(&mut tx, 2);
    for p in [&mut rx, &mut tx] {
        p.send("quit");
        let _ = p.stop(Signal::SIGTERM, Duration::from_secs(20));
    }
    let status = sw.stop(Signal::SIGTERM, Duration::from_secs(20));
    assert!(status.success(), "vswitchd exit {status:?}\n{}", sw.log);
    eprintln!("vm {vm}\nup {up}\nlro {lro}\nplain {plain}");
    eprintln!("testpmd-tx ports (rx, tx): {tx_ports:?}; testpmd-rx ports: {rx_ports:?}");
    // The switch logs the features of a connection's first SET_FEATURES only; DPDK's
    // virtio-user sends that when the port is probed, before any offload is configured
    // (hence the features above come from testpmd's log).
    for l in sw.log.lines().filter(|l| l.contains("features acked")) {
        eprintln!("{l}");
    }

    let frames = FRAMES as u64;
    let segments = segments as u64;
    assert_eq!(tx_ports[1].1, frames, "testpmd sent each large frame once");
    // In on the guest's port: every frame with a request that checked out.
    assert_eq!(counter(&vm, "rx_packets"), frames, "vm: {vm}");
    assert_eq!(counter(&vm, "rx_offload"), frames, "vm: {vm}");
    assert_eq!(counter(&vm, "rx_offload_bad"), 0, "vm: {vm}");
    // Out on the uplink and to the plain guest: segments made in software.
    for (name, c) in [("up", &up), ("plain", &plain)] {
        assert_eq!(counter(c, "tx_segments"), segments, "{name}: {c}");
        assert_eq!(counter(c, "tx_packets"), segments, "{name}: {c}");
        assert_eq!(counter(c, "tx_offload"), 0, "{name}: {c}");
    }
    // To the TSO guest: the frames whole, the request passed on.
    assert_eq!(counter(&lro, "tx_offload"), frames, "lro: {lro}");
    assert_eq!(counter(&lro, "tx_packets"), frames, "lro: {lro}");
    assert_eq!(counter(&lro, "tx_segments"), 0, "lro: {lro}");
    assert_eq!(
        rx_ports,
        [(frames, 0), (segments, 0)],
        "testpmd received the frames whole on port 0 and segmented on port 1"
    );
    assert_eq!(drops_for(&sw.log, "bad_offload"), 0, "{}", sw.log);
    eprintln!("took {:?}", started.elapsed());
}
