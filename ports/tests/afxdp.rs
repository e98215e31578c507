//! AF_XDP port against a real peer: a veth whose other end lives in a namespace the test
//! makes. Frames sent from the namespace with an AF_PACKET socket must arrive on the port's
//! rx queue byte for byte, and frames the port transmits must arrive at the peer the same.
//! Needs root (CI is root).

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use ports::afxdp::{AfXdpError, AfXdpPort, XdpMode};
use ports::{Packet, Port, RxQueue, BURST};
use testkit::frames::{test_frame, TEST_ETHERTYPE};
use testkit::logs::logged;
use testkit::netns::{ip_output, Netns, Veth};
use testkit::packet_socket::PacketSocket;

const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x01];
const SWITCH_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x02];
/// A guard against a hang, not a timing assertion.
const LIMIT: Duration = Duration::from_secs(10);

/// Polls `rxq` until `want` frames with the test ethertype arrived (or [`LIMIT`]).
fn rx_test_frames(rxq: &mut dyn RxQueue, want: usize) -> Vec<Vec<u8>> {
    let mut pkts: Vec<Packet> = (0..BURST).map(|_| Packet::new()).collect();
    let mut got = Vec::new();
    let deadline = Instant::now() + LIMIT;
    while got.len() < want && Instant::now() < deadline {
        let n = rxq.rx_burst(&mut pkts);
        for p in &pkts[..n] {
            if p.len() > 14 && p.data()[12..14] == TEST_ETHERTYPE.to_be_bytes() {
                got.push(p.data().to_vec());
            }
        }
        if n == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    got
}

/// Peer -> port and port -> peer, checked byte for byte, in one XDP mode.
fn exchange(mode: XdpMode) {
    let ns = Netns::new();
    let veth = Veth::new(&ns);
    let mut port = AfXdpPort::open_with_mode(&veth.host, 1, mode).expect("open afxdp port");
    assert_eq!(port.kind(), "afxdp");
    assert_eq!(port.n_rxq(), 1);
    assert_eq!(
        port.xdp_mode(),
        if mode == XdpMode::Auto {
            XdpMode::Driver
        } else {
            mode
        }
    );
    let mut rxq = port.take_rxq(0).unwrap();
    assert!(port.take_rxq(0).is_err(), "an rx queue is taken once");
    assert!(port.take_rxq(1).is_err());
    let mut txq = port.txq(0).unwrap();
    let peer = PacketSocket::open(Some(&ns), &veth.peer);

    // Peer -> port: sizes from the minimum to a full 1500-byte payload.
    let sent: Vec<Vec<u8>> = (0..200u32)
        .map(|i| {
            test_frame(
                PEER_MAC,
                SWITCH_MAC,
                i,
                [46, 64, 200, 1000, 1500][i as usize % 5],
            )
        })
        .collect();
    for f in &sent {
        peer.send(f);
    }
    let got = rx_test_frames(rxq.as_mut(), sent.len());
    assert_eq!(
        got.len(),
        sent.len(),
        "frames from the peer reached the XSK"
    );
    assert_eq!(got, sent, "frames arrive byte for byte, in order");

    // Port -> peer, in bursts.
    let out: Vec<Vec<u8>> = (0..300u32)
        .map(|i| {
            test_frame(
                SWITCH_MAC,
                PEER_MAC,
                1000 + i,
                [46, 128, 1500][i as usize % 3],
            )
        })
        .collect();
    for chunk in out.chunks(BURST) {
        let mut pkts: Vec<Packet> = chunk
            .iter()
            .map(|f| {
                let mut p = Packet::new();
                assert!(p.copy_from(f));
                p
            })
            .collect();
        let mut done = 0;
        let deadline = Instant::now() + LIMIT;
        while done < pkts.len() && Instant::now() < deadline {
            done += txq.tx_burst(&mut pkts[done..]);
        }
        assert_eq!(done, pkts.len(), "tx queue took the burst");
    }
    let back = peer.recv_test_frames(out.len(), LIMIT);
    assert_eq!(
        back.len(),
        out.len(),
        "frames from the port reached the peer"
    );
    assert_eq!(back, out, "frames leave byte for byte, in order");
}

#[test]
fn driver_mode_exchanges_frames_with_peer() {
    exchange(XdpMode::Driver);
}

#[test]
fn generic_mode_exchanges_frames_with_peer() {
    exchange(XdpMode::Skb);
}

#[test]
fn auto_mode_picks_native_xdp_on_veth() {
    exchange(XdpMode::Auto);
}

#[test]
fn idle_queue_sleeps_on_the_socket_fd_and_wakes_on_traffic() {
    let ns = Netns::new();
    let veth = Veth::new(&ns);
    let mut port = AfXdpPort::open(&veth.host, 1).unwrap();
    let mut rxq = port.take_rxq(0).unwrap();
    let peer = PacketSocket::open(Some(&ns), &veth.peer);
    // Drain whatever the link brought up (IPv6 solicitations, say).
    let mut pkts: Vec<Packet> = (0..BURST).map(|_| Packet::new()).collect();
    while rxq.rx_burst(&mut pkts) > 0 {}
    assert!(rxq.enable_notify(), "an empty queue lets the PMD sleep");
    let fd = rxq.wait_fd().expect("afxdp has a wait fd").as_raw_fd();
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    peer.send(&test_frame(PEER_MAC, SWITCH_MAC, 7, 60));
    // SAFETY: `pfd` is one live pollfd.
    let r = unsafe { libc::poll(&mut pfd, 1, LIMIT.as_millis() as i32) };
    assert_eq!(r, 1, "the socket fd became readable");
    assert!(pfd.revents & libc::POLLIN != 0);
    assert!(
        !rxq.enable_notify(),
        "a queue holding frames refuses to sleep"
    );
    rxq.disable_notify();
    rxq.ack_wakeup();
    let got = rx_test_frames(rxq.as_mut(), 1);
    assert_eq!(got, vec![test_frame(PEER_MAC, SWITCH_MAC, 7, 60)]);
}

#[test]
fn two_ports_on_two_interfaces_and_drop_detaches() {
    let ns = Netns::new();
    let a = Veth::new(&ns);
    let b = Veth::new(&ns);
    let mut pa = AfXdpPort::open(&a.host, 1).unwrap();
    let mut pb = AfXdpPort::open(&b.host, 1).unwrap();
    assert!(ip_output(&["link", "show", &a.host]).contains("xdp"));
    let mut ra = pa.take_rxq(0).unwrap();
    let mut rb = pb.take_rxq(0).unwrap();
    let sa = PacketSocket::open(Some(&ns), &a.peer);
    let sb = PacketSocket::open(Some(&ns), &b.peer);
    let fa = test_frame(PEER_MAC, SWITCH_MAC, 1, 100);
    let fb = test_frame(PEER_MAC, SWITCH_MAC, 2, 100);
    sa.send(&fa);
    sb.send(&fb);
    assert_eq!(rx_test_frames(ra.as_mut(), 1), vec![fa]);
    assert_eq!(rx_test_frames(rb.as_mut(), 1), vec![fb]);
    drop(ra);
    drop(pa);
    assert!(
        !ip_output(&["link", "show", &a.host]).contains("xdp"),
        "dropping the port detached its program"
    );
    assert!(ip_output(&["link", "show", &b.host]).contains("xdp"));
    // The interface can be bound again.
    let _again = AfXdpPort::open(&a.host, 1).unwrap();
}

#[test]
fn bad_interface_and_queue_counts_are_clear_errors() {
    let e = AfXdpPort::open("vsw-no-such0", 1)
        .err()
        .expect("no such interface");
    assert!(matches!(e, AfXdpError::Interface { .. }), "{e}");
    assert!(e.to_string().contains("vsw-no-such0"), "{e}");
    assert!(matches!(
        AfXdpPort::open("lo", 0),
        Err(AfXdpError::BadQueues(0))
    ));
    let ns = Netns::new();
    let veth = Veth::new(&ns);
    // veth has one queue: binding queue 1 fails and says which step.
    let e = AfXdpPort::open(&veth.host, 2)
        .err()
        .expect("queue 1 does not exist");
    assert!(e.to_string().contains("queue 1"), "{e}");
}

#[test]
fn two_queues_each_get_a_socket() {
    let ns = Netns::new();
    let veth = Veth::with_queues(&ns, 2);
    let mut port = AfXdpPort::open(&veth.host, 2).unwrap();
    assert_eq!(port.n_rxq(), 2);
    let mut r0 = port.take_rxq(0).unwrap();
    let mut r1 = port.take_rxq(1).unwrap();
    let peer = PacketSocket::open(Some(&ns), &veth.peer);
    // veth delivers on the rx queue matching the sender's tx queue; the kernel spreads the
    // peer's sends over its tx queues by flow, so collect from both queues.
    let sent: Vec<Vec<u8>> = (0..64u32)
        .map(|i| test_frame(PEER_MAC, SWITCH_MAC, i, 60))
        .collect();
    for f in &sent {
        peer.send(f);
    }
    let mut pkts: Vec<Packet> = (0..BURST).map(|_| Packet::new()).collect();
    let mut got = Vec::new();
    let deadline = Instant::now() + LIMIT;
    while got.len() < sent.len() && Instant::now() < deadline {
        for q in [&mut r0, &mut r1] {
            let n = q.rx_burst(&mut pkts);
            for p in &pkts[..n] {
                if p.data()[12..14] == TEST_ETHERTYPE.to_be_bytes() {
                    got.push(p.data().to_vec());
                }
            }
        }
    }
    got.sort();
    let mut want = sent.clone();
    want.sort();
    assert_eq!(got, want, "every frame arrived on one of the two sockets");
    // Both queues' tx halves work: PMD 0 sends on queue 0, PMD 1 on queue 1.
    let mut t0 = port.txq(0).unwrap();
    let mut t1 = port.txq(1).unwrap();
    let a = test_frame(SWITCH_MAC, PEER_MAC, 500, 60);
    let b = test_frame(SWITCH_MAC, PEER_MAC, 501, 60);
    let mut pa = Packet::new();
    pa.copy_from(&a);
    let mut pb = Packet::new();
    pb.copy_from(&b);
    assert_eq!(t0.tx_burst(std::slice::from_mut(&mut pa)), 1);
    assert_eq!(t1.tx_burst(std::slice::from_mut(&mut pb)), 1);
    let mut back = peer.recv_test_frames(2, LIMIT);
    back.sort();
    assert_eq!(back, vec![a, b]);
}

#[test]
fn pmds_sharing_one_socket_transmit_concurrently() {
    let ns = Netns::new();
    let veth = Veth::new(&ns);
    let mut port = AfXdpPort::open(&veth.host, 1).unwrap();
    let peer = PacketSocket::open(Some(&ns), &veth.peer);
    // Three PMDs, one queue: their handles share the socket's tx ring.
    let threads: Vec<_> = (0..3u32)
        .map(|t| {
            let mut txq = port.txq(t as usize).unwrap();
            std::thread::spawn(move || {
                for i in 0..200u32 {
                    let mut p = Packet::new();
                    p.copy_from(&test_frame(SWITCH_MAC, PEER_MAC, t * 1000 + i, 100));
                    let deadline = Instant::now() + LIMIT;
                    while txq.tx_burst(std::slice::from_mut(&mut p)) == 0 {
                        assert!(Instant::now() < deadline, "tx ring never drained");
                        std::thread::yield_now();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let back = peer.recv_test_frames(600, LIMIT);
    assert_eq!(back.len(), 600, "every frame of every PMD left");
    // Each PMD's frames stay in its own order.
    for t in 0..3u32 {
        let seqs: Vec<u32> = back
            .iter()
            .map(|f| u32::from_be_bytes(f[14..18].try_into().unwrap()))
            .filter(|s| s / 1000 == t)
            .collect();
        assert_eq!(seqs, (0..200).map(|i| t * 1000 + i).collect::<Vec<_>>());
    }
}

#[test]
fn an_undrained_queue_shows_in_the_kernel_counters() {
    let ns = Netns::new();
    let veth = Veth::new(&ns);
    let port = AfXdpPort::open(&veth.host, 1).unwrap();
    let before = port
        .kernel_stats(0)
        .expect("counters of a queue the port holds");
    assert_eq!(before.rx_invalid_descs, 0);
    let peer = PacketSocket::open(Some(&ns), &veth.peer);
    // More frames than the socket has rx frames (4096), and nobody drains the ring.
    for i in 0..6000u32 {
        peer.send(&test_frame(PEER_MAC, SWITCH_MAC, i, 60));
    }
    let deadline = Instant::now() + LIMIT;
    loop {
        let st = port.kernel_stats(0).unwrap();
        let lost = st.rx_dropped + st.rx_ring_full + st.rx_fill_ring_empty_descs;
        if lost > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no kernel drop counted: {st:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(port.kernel_stats(1), None, "no such queue");
}

#[test]
fn oversized_frames_are_reported_not_sent() {
    let ns = Netns::new();
    let veth = Veth::new(&ns);
    let mut port = AfXdpPort::open(&veth.host, 1).unwrap();
    let mut txq = port.txq(0).unwrap();
    let peer = PacketSocket::open(Some(&ns), &veth.peer);
    let a = test_frame(SWITCH_MAC, PEER_MAC, 1, 60);
    let big = test_frame(SWITCH_MAC, PEER_MAC, 2, 5000); // more than a 4 KiB UMEM frame
    let b = test_frame(SWITCH_MAC, PEER_MAC, 3, 60);
    let mut pkts: Vec<Packet> = [&a, &big, &b]
        .iter()
        .map(|f| {
            let mut p = Packet::new();
            assert!(p.copy_from(f));
            p
        })
        .collect();
    assert_eq!(
        txq.tx_burst(&mut pkts),
        2,
        "two sent, the big one reported as not sent"
    );
    assert_eq!(pkts[0].data(), &a[..]);
    assert_eq!(pkts[1].data(), &b[..], "sent frames first, in order");
    assert_eq!(pkts[2].data(), &big[..]);
    assert_eq!(peer.recv_test_frames(2, LIMIT), vec![a, b]);
}

#[test]
fn binding_fewer_queues_than_the_interface_has_is_warned() {
    let ns = Netns::new();
    let veth = Veth::with_queues(&ns, 4);
    let (port, log) = logged(|| AfXdpPort::open(&veth.host, 1));
    let port = port.unwrap();
    assert_eq!(port.interface_rx_queues(), Some(4));
    assert_eq!(port.n_rxq(), 1);
    let line = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("rx queues"))
        .unwrap_or_else(|| panic!("no warning about unbound queues:\n{log}"));
    assert!(
        line.contains(&veth.host) && line.contains("rx_queues=4") && line.contains("queues=1"),
        "{line}"
    );
    drop(port);
    // Every queue bound: nothing to warn about.
    let (port, log) = logged(|| AfXdpPort::open(&veth.host, 4));
    assert_eq!(port.unwrap().interface_rx_queues(), Some(4));
    assert!(!log.contains("WARN"), "{log}");
    // A single-queue veth with one socket: no warning either.
    let one = Veth::new(&ns);
    let (port, log) = logged(|| AfXdpPort::open(&one.host, 1));
    assert_eq!(port.unwrap().interface_rx_queues(), Some(1));
    assert!(!log.contains("WARN"), "{log}");
}
