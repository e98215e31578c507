//! The vhost-user port with the packed ring (VIRTIO_F_RING_PACKED) against the `vhost`
//! crate's frontend: frames both ways over several laps, chained, indirect and mergeable
//! buffers, event suppression with and without EVENT_IDX, and stopping and restarting a ring
//! at a position whose wrap counter is bit 15 (`GET_VRING_BASE`/`SET_VRING_BASE`).

use ports::vhost::test_utils as driver;

use driver::*;
use ports::vhost::packed::layout::{event, WRAP_BIT};
use ports::vhost::{VhostOptions, VhostUserPort};
use ports::Port;
use vhost::VhostBackend;

fn setup(features: u64) -> (SockDir, VhostUserPort, Guest) {
    let d = SockDir::new();
    let path = d.path("vhu.sock");
    let port = VhostUserPort::server(&path, 1).unwrap();
    let g = Guest::connect(&path, 1, features | PACKED | INDIRECT);
    (d, port, g)
}

/// A port told not to offer the packed ring (what the switch does unless configured to) does
/// not offer it, and refuses a frontend that acks it anyway.
#[test]
fn packed_is_not_offered_when_the_options_say_so() {
    let d = SockDir::new();
    let path = d.path("vhu.sock");
    let opts = VhostOptions {
        packed_ring: false,
        ..VhostOptions::default()
    };
    let port = VhostUserPort::server_with(&path, 1, opts).unwrap();
    let g = Guest::connect(&path, 1, 0);
    let offered = g.fe.get_features().unwrap();
    assert_eq!(offered & PACKED, 0, "offered {offered:#x}");
    assert!(g.fe.set_features(offered | PACKED).is_err());
    assert!(port.is_connected());
    assert_eq!(port.stats().refused_messages, 1);
}

#[test]
fn packed_is_negotiated_and_reported() {
    let (_d, port, g) = setup(0);
    assert_ne!(g.features & PACKED, 0, "acked");
    assert!(g.rings.is_empty() && g.packed.len() == 2);
    for v in 0..2 {
        let s = vring_stats(&port, v);
        assert!(s.running && s.packed, "vring {v}: {s:?}");
    }
    // A fresh packed ring starts with kicks disabled while the PMD polls.
    assert_eq!(g.device_event(1).1, event::FLAG_DISABLE);
}

/// Guest transmit over four laps of the 256-entry ring, each frame a chain of one to four
/// descriptors or an indirect table: every frame arrives intact and in order, and every chain
/// comes back under its buffer id with used length 0.
#[test]
fn guest_tx_over_several_laps_with_chains_and_indirect() {
    guest_tx_over_several_laps(0);
}

/// The same with VIRTIO_F_IN_ORDER acked: the switch returns each burst with one used
/// descriptor (§2.7.9), so the second chain of a round keeps the driver's flags, and the
/// driver, walking its chains up to each used id, still gets every chain back in order.
#[test]
fn guest_tx_in_order_returns_each_burst_with_one_used_descriptor() {
    guest_tx_over_several_laps(IN_ORDER);
}

fn guest_tx_over_several_laps(features: u64) {
    let (_d, mut port, mut g) = setup(features);
    let in_order = features & IN_ORDER != 0;
    assert_eq!(g.features & IN_ORDER, features & IN_ORDER, "acked as asked");
    let mut rxq = port.take_rxq(0).unwrap();
    let mut pkts = burst();
    let mut descs = 0u64;
    for round in 0..10u8 {
        let frames: Vec<Vec<u8>> = (0..60).map(|i| frame(64 + i, round)).collect();
        let mut ids = Vec::new();
        let mut second = 0;
        for (i, f) in frames.iter().enumerate() {
            if i == 1 {
                second = g.packed[1].next_avail;
            }
            let (a, l) = g.tx_buffer(f);
            let k = i % 5;
            let id = if k == 4 {
                let table = g.alloc(32);
                descs += 1;
                g.add_indirect(1, table, &[(a, 12, 0), (a + 12, l - 12, 0)])
            } else {
                // k + 1 descriptors: the header, then the frame in k pieces.
                let mut bufs = vec![(a, 12u32, 0u16)];
                let piece = (l - 12) / k.max(1) as u32;
                let mut off = 12;
                for j in 0..k {
                    let len = if j + 1 == k { l - off } else { piece };
                    bufs.push((a + u64::from(off), len, 0));
                    off += len;
                }
                if k == 0 {
                    bufs[0].1 = l;
                }
                descs += bufs.len() as u64;
                g.add_chain(1, &bufs)
            };
            ids.push(u32::from(id));
        }
        g.publish(1);
        let before = g.packed[1].read_desc(&g.mem, second);
        let mut got = Vec::new();
        loop {
            let n = rxq.rx_burst(&mut pkts);
            if n == 0 {
                break;
            }
            got.extend(pkts[..n].iter().map(|p| p.data().to_vec()));
        }
        assert_eq!(got, frames, "round {round}");
        let after = g.packed[1].read_desc(&g.mem, second);
        assert_eq!(
            after == before,
            in_order,
            "round {round}: the second chain's first descriptor, {before:?} then {after:?}"
        );
        let used = g.take_used(1);
        assert_eq!(used.iter().map(|u| u.0).collect::<Vec<_>>(), ids);
        assert!(used.iter().all(|u| u.1 == 0));
    }
    assert!(
        descs > 3 * u64::from(QSIZE),
        "{descs} descriptors: over three laps"
    );
    let s = vring_stats(&port, 1);
    assert_eq!(s.counters.packets, 600);
    assert!(s.running && s.packed);
}

fn guest_rx_single_buffer(features: u64) {
    let (_d, mut port, mut g) = setup(features);
    let mut txq = port.txq(0).unwrap();
    // Four laps of the ring, 100 frames at a time.
    for round in 0..10u8 {
        let bufs = g.post_rx_buffers(100, 2048);
        g.publish(0);
        let frames: Vec<Vec<u8>> = (0..100).map(|i| frame(60 + 14 * i, round)).collect();
        let mut sent = 0;
        for chunk in frames.chunks(32) {
            sent += txq.tx_burst(&mut packets(chunk));
        }
        assert_eq!(sent, 100);
        let used = g.take_used(0);
        let want: Vec<(u32, u32)> = bufs
            .iter()
            .zip(&frames)
            .map(|(b, f)| (u32::from(b.0), 12 + f.len() as u32))
            .collect();
        assert_eq!(used, want, "round {round}");
        for (b, f) in bufs.iter().zip(&frames) {
            assert_eq!(g.read(b.1, 10), vec![0; 10], "no offload flags");
            assert_eq!(g.num_buffers(b.1), 1);
            assert_eq!(&g.read(b.1 + 12, f.len()), f);
        }
    }
    assert_eq!(vring_stats(&port, 0).counters.packets, 1000);
}

#[test]
fn guest_rx_single_buffer_without_mrg() {
    guest_rx_single_buffer(0);
}

#[test]
fn guest_rx_single_buffer_with_mrg() {
    guest_rx_single_buffer(MRG);
}

#[test]
fn guest_rx_single_buffer_with_event_idx() {
    guest_rx_single_buffer(EVENT_IDX);
    guest_rx_single_buffer(MRG | EVENT_IDX);
}

/// A 1000-byte frame over 256-byte chains (one of them two descriptors): one used
/// descriptor per chain, `num_buffers` 4, the bytes in order across them.
#[test]
fn guest_rx_mergeable_spans_chains() {
    for features in [MRG, MRG | EVENT_IDX] {
        let (_d, mut port, mut g) = setup(features);
        let mut txq = port.txq(0).unwrap();
        let a: Vec<u64> = (0..5).map(|_| g.alloc(256)).collect();
        let ids = [
            g.add_chain(0, &[(a[0], 256, DESC_F_WRITE)]),
            g.add_chain(
                0,
                &[(a[1], 100, DESC_F_WRITE), (a[1] + 100, 156, DESC_F_WRITE)],
            ),
            g.add_chain(0, &[(a[2], 256, DESC_F_WRITE)]),
            g.add_chain(0, &[(a[3], 256, DESC_F_WRITE)]),
        ];
        g.publish(0);
        let f = frame(1000, 6);
        assert_eq!(txq.tx_burst(&mut packets(std::slice::from_ref(&f))), 1);
        let used = g.take_used(0);
        let want: Vec<(u32, u32)> = ids
            .iter()
            .zip([256, 256, 256, 244])
            .map(|(&id, len)| (u32::from(id), len))
            .collect();
        assert_eq!(used, want);
        assert_eq!(g.num_buffers(a[0]), 4);
        let mut data = g.read(a[0] + 12, 244);
        for (b, len) in a[1..4].iter().zip([256, 256, 244]) {
            data.extend(g.read(*b, len));
        }
        assert_eq!(data, f);
    }
}

/// Without EVENT_IDX the driver's flags decide: DISABLE, no interrupt; ENABLE, one per
/// burst.
#[test]
fn interrupts_follow_driver_flags_without_event_idx() {
    let (_d, mut port, mut g) = setup(0);
    let mut txq = port.txq(0).unwrap();
    g.post_rx_buffers(4, 2048);
    g.publish(0);
    g.set_driver_event(0, 0, event::FLAG_DISABLE);
    let mut one = packets(&[frame(60, 1)]);
    assert_eq!(txq.tx_burst(&mut one), 1);
    assert!(!g.called(0));
    g.set_driver_event(0, 0, event::FLAG_ENABLE);
    assert_eq!(txq.tx_burst(&mut packets(&[frame(60, 1), frame(60, 2)])), 2);
    assert!(g.called(0), "one interrupt for the burst");
    assert!(!g.called(0));
    assert_eq!(vring_stats(&port, 0).counters.notifications, 1);
}

/// With EVENT_IDX and `RING_EVENT_FLAGS_DESC`, an interrupt only when the used descriptors
/// of a burst pass the driver's event offset in its lap.
#[test]
fn interrupts_follow_the_event_offset_with_event_idx() {
    let (_d, mut port, mut g) = setup(EVENT_IDX);
    let mut txq = port.txq(0).unwrap();
    g.post_rx_buffers(8, 2048);
    g.publish(0);
    let lap = WRAP_BIT;
    g.set_driver_event(0, lap, event::FLAG_DESC);
    let mut one = packets(&[frame(60, 1)]);
    assert_eq!(txq.tx_burst(&mut one), 1);
    assert!(g.called(0), "the first decision: 0 -> 1 passes 0");
    assert_eq!(txq.tx_burst(&mut one), 1);
    assert!(!g.called(0), "offset 0 not passed by 1 -> 2");
    g.set_driver_event(0, 3 | lap, event::FLAG_DESC);
    let mut two = packets(&[frame(60, 1), frame(60, 2)]);
    assert_eq!(txq.tx_burst(&mut two), 2);
    assert!(g.called(0), "offset 3 passed by 2 -> 4");
    // An offset in the other lap (wrap counter 0) is a lap back: long passed, not crossed.
    g.set_driver_event(0, 4, event::FLAG_DESC);
    assert_eq!(txq.tx_burst(&mut one), 1);
    assert!(!g.called(0), "offset 4 of the previous lap");
    assert_eq!(vring_stats(&port, 0).counters.notifications, 2);
}

/// The device event area while the PMD sleeps: ENABLE without EVENT_IDX, DESC and its own
/// position with EVENT_IDX; DISABLE again while it polls; a pending chain means no sleep.
#[test]
fn idle_notify_writes_the_device_event_area() {
    for features in [0, EVENT_IDX] {
        let (_d, mut port, mut g) = setup(features);
        let mut rxq = port.take_rxq(0).unwrap();
        let mut pkts = burst();
        for i in 0..3u8 {
            let (a, l) = g.tx_buffer(&frame(60, i));
            g.add_chain(1, &[(a, l, 0)]);
        }
        g.publish(1);
        assert_eq!(rxq.rx_burst(&mut pkts), 3);
        assert_eq!(g.device_event(1).1, event::FLAG_DISABLE);
        assert!(rxq.enable_notify(), "empty: may sleep");
        if features & EVENT_IDX != 0 {
            assert_eq!(g.device_event(1), (3 | WRAP_BIT, event::FLAG_DESC));
        } else {
            assert_eq!(g.device_event(1).1, event::FLAG_ENABLE);
        }
        let (a, l) = g.tx_buffer(&frame(60, 9));
        g.add_chain(1, &[(a, l, 0)]);
        g.publish(1);
        assert!(readable(rxq.wait_fd().unwrap()), "the kick wakes the PMD");
        rxq.disable_notify();
        rxq.ack_wakeup();
        assert_eq!(g.device_event(1).1, event::FLAG_DISABLE);
        assert!(!rxq.enable_notify(), "a chain is pending: must not sleep");
        assert_eq!(rxq.rx_burst(&mut pkts), 1);
    }
}

/// GET_VRING_BASE stops the ring and reports its position with the wrap counter in bit 15;
/// SET_VRING_BASE with that value restarts it where it stopped, over the wrap.
#[test]
fn get_vring_base_reports_the_wrap_bit_and_a_restart_continues() {
    let (_d, mut port, mut g) = setup(0);
    let mut rxq = port.take_rxq(0).unwrap();
    let mut pkts = burst();
    let send = |g: &mut Guest, n: usize, seed: u8| -> Vec<Vec<u8>> {
        let frames: Vec<Vec<u8>> = (0..n).map(|i| frame(60 + i % 7, seed)).collect();
        for f in &frames {
            let (a, l) = g.tx_buffer(f);
            g.add_chain(1, &[(a, l, 0)]);
        }
        g.publish(1);
        frames
    };
    // 300 one-descriptor chains: the device passes the end of the 256-entry ring once.
    for round in 0..10u8 {
        let frames = send(&mut g, 30, round);
        let mut got = 0;
        while got < 30 {
            let n = rxq.rx_burst(&mut pkts);
            assert!(n > 0);
            got += n;
        }
        assert_eq!(g.take_used(1).len(), frames.len());
    }
    assert_eq!(
        g.fe.get_vring_base(1).unwrap(),
        300 - 256,
        "index 44, wrap counter 0"
    );
    assert!(!vring_stats(&port, 1).running);
    assert_eq!(g.packed[1].used_base(), 44);
    // Restart there: frames go on from position 44 of the second lap.
    let r = g.packed[1].clone();
    g.start_packed_vring(&r);
    assert!(vring_stats(&port, 1).packed);
    let frames = send(&mut g, 5, 99);
    assert_eq!(rxq.rx_burst(&mut pkts), 5);
    let got: Vec<Vec<u8>> = pkts[..5].iter().map(|p| p.data().to_vec()).collect();
    assert_eq!(got, frames);
    assert_eq!(g.take_used(1).len(), 5);
    // Stopped with chains still pending: the base is the device's position, not the driver's.
    let frames = send(&mut g, 5, 100);
    assert_eq!(rxq.rx_burst(&mut pkts[..2]), 2);
    assert_eq!(g.fe.get_vring_base(1).unwrap(), 51);
    let r = g.packed[1].clone();
    g.start_packed_vring_at(
        &r,
        VA_BASE + r.desc,
        VA_BASE + r.driver,
        VA_BASE + r.device,
        51,
    )
    .unwrap();
    assert_eq!(rxq.rx_burst(&mut pkts), 3);
    let got: Vec<Vec<u8>> = pkts[..3].iter().map(|p| p.data().to_vec()).collect();
    assert_eq!(got, frames[2..]);
    assert_eq!(g.take_used(1).len(), 5);
}
