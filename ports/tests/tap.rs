//! Tap port against the kernel: the tap interface is moved into a namespace the test makes,
//! and an AF_PACKET socket there sends frames the port must receive byte for byte, and
//! receives the frames the port transmits. Runs through io_uring and through the plain
//! read/write fallback. Needs root (CI is root).

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use ports::tap::TapPort;
use ports::{Packet, Port, RxQueue, BURST};
use testkit::frames::{test_frame, TEST_ETHERTYPE};
use testkit::netns::{ip, ip_output, unique_name, Netns};
use testkit::packet_socket::PacketSocket;

const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x01, 0x01];
const SWITCH_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x01, 0x02];
/// A guard against a hang, not a timing assertion.
const LIMIT: Duration = Duration::from_secs(10);

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

/// A tap made by the port, moved into a fresh namespace and brought up there.
fn tap_in_ns(plain_io: bool) -> (Netns, String, TapPort) {
    let ns = Netns::new();
    let name = unique_name("vtp");
    let port = if plain_io {
        TapPort::open_plain_io(&name)
    } else {
        TapPort::open(&name)
    }
    .expect("open tap port");
    ip(&["link", "set", &name, "netns", &ns.name]);
    ns.exec(&["ip", "link", "set", &name, "up"]);
    (ns, name, port)
}

fn exchange(plain_io: bool) {
    let (ns, name, mut port) = tap_in_ns(plain_io);
    assert_eq!(port.kind(), "tap");
    let mut rxq = port.take_rxq(0).unwrap();
    assert!(port.take_rxq(0).is_err());
    let mut txq = port.txq(0).unwrap();
    let peer = PacketSocket::open(Some(&ns), &name);

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
        "frames from the namespace reached the port"
    );
    assert_eq!(got, sent, "byte for byte, in order");

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
        assert_eq!(txq.tx_burst(&mut pkts), pkts.len(), "every write succeeded");
    }
    let back = peer.recv_test_frames(out.len(), LIMIT);
    assert_eq!(
        back.len(),
        out.len(),
        "frames from the port reached the namespace"
    );
    assert_eq!(back, out, "byte for byte, in order");
}

#[test]
fn exchanges_frames_through_io_uring() {
    assert!(
        ports::tap::io_uring_available(),
        "io_uring is unavailable here (kernel.io_uring_disabled or a seccomp filter): this \
         test would only exercise the plain read/write fallback"
    );
    exchange(false);
}

#[test]
fn exchanges_frames_through_plain_read_write() {
    exchange(true);
}

#[test]
fn idle_queue_wakes_on_the_tap_fd() {
    let (ns, name, mut port) = tap_in_ns(false);
    let mut rxq = port.take_rxq(0).unwrap();
    let peer = PacketSocket::open(Some(&ns), &name);
    let mut pkts: Vec<Packet> = (0..BURST).map(|_| Packet::new()).collect();
    while rxq.rx_burst(&mut pkts) > 0 {}
    assert!(rxq.enable_notify());
    let fd = rxq.wait_fd().expect("tap has a wait fd").as_raw_fd();
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let f = test_frame(PEER_MAC, SWITCH_MAC, 9, 80);
    peer.send(&f);
    // SAFETY: `pfd` is one live pollfd.
    let r = unsafe { libc::poll(&mut pfd, 1, LIMIT.as_millis() as i32) };
    assert_eq!(r, 1, "the tap fd became readable");
    rxq.disable_notify();
    rxq.ack_wakeup();
    assert_eq!(rx_test_frames(rxq.as_mut(), 1), vec![f]);
}

#[test]
fn created_when_absent_removed_on_drop_and_busy_is_an_error() {
    let name = unique_name("vtq");
    let port = TapPort::open(&name).unwrap();
    assert!(ip_output(&["link", "show", &name]).contains(&name));
    let e = TapPort::open(&name)
        .err()
        .expect("a tap in use cannot be opened twice");
    assert!(e.to_string().contains(&name), "{e}");
    drop(port);
    // The kernel unregisters a closed tap asynchronously (it may still be listed for a few
    // milliseconds, longer on a loaded host).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while ip_output(&["link", "show", &name]).contains(&name) {
        assert!(
            std::time::Instant::now() < deadline,
            "the non-persistent tap went away with the port"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let e = TapPort::open("bad/name-that-is-too-long")
        .err()
        .expect("invalid name");
    assert!(e.to_string().contains("interface name"), "{e}");
}
