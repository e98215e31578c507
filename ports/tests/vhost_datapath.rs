//! vhost-user port against the `vhost` crate's frontend: frames both ways through our split
//! rings, with chained, indirect and mergeable buffers, notification suppression and
//! multiqueue.

use ports::vhost::test_utils as driver;

use driver::*;
use ports::vhost::VhostUserPort;
use ports::Port;
use vhost::vhost_user::VhostUserFrontend;
use vhost::VhostBackend;

fn setup(pairs: u16, features: u64) -> (SockDir, VhostUserPort, Guest) {
    let d = SockDir::new();
    let path = d.path("vhu.sock");
    let port = VhostUserPort::server(&path, pairs).unwrap();
    let g = Guest::connect(&path, pairs, features);
    (d, port, g)
}

#[test]
fn kind_and_queue_handles() {
    let (_d, mut port, _g) = setup(2, 0);
    assert_eq!(port.kind(), "vhost-user");
    assert_eq!(port.n_rxq(), 2);
    let q0 = port.take_rxq(0).unwrap();
    assert!(port.take_rxq(0).is_err());
    assert!(port.take_rxq(2).is_err());
    drop(q0);
    assert!(
        port.take_rxq(0).is_ok(),
        "a dropped queue can be taken again"
    );
    assert!(port.is_connected());
}

#[test]
fn guest_tx_single_buffer() {
    let (_d, mut port, mut g) = setup(1, 0);
    let mut rxq = port.take_rxq(0).unwrap();
    let f = frame(60, 1);
    let (a, l) = g.tx_buffer(&f);
    let head = g.add_chain(1, &[(a, l, 0)]);
    g.publish(1);
    let mut pkts = burst();
    assert_eq!(rxq.rx_burst(&mut pkts), 1);
    assert_eq!(pkts[0].data(), &f[..]);
    assert_eq!(g.take_used(1), vec![(u32::from(head), 0)]);
    assert_eq!(rxq.rx_burst(&mut pkts), 0);
    let s = vring_stats(&port, 1);
    assert_eq!((s.counters.packets, s.counters.bytes), (1, 60));
    assert!(s.running);
}

#[test]
fn guest_tx_chained_with_split_header_and_empty_descriptor() {
    let (_d, mut port, mut g) = setup(1, 0);
    let mut rxq = port.take_rxq(0).unwrap();
    let f = frame(1500, 2);
    let (a, l) = g.tx_buffer(&f);
    // Header split over two descriptors, an empty descriptor, the rest in two pieces.
    g.add_chain(
        1,
        &[
            (a, 5, 0),
            (a + 5, 20, 0),
            (a + 25, 0, 0),
            (a + 25, 700, 0),
            (a + 725, l - 725, 0),
        ],
    );
    g.publish(1);
    let mut pkts = burst();
    assert_eq!(rxq.rx_burst(&mut pkts), 1);
    assert_eq!(pkts[0].data(), &f[..]);
}

#[test]
fn guest_tx_indirect() {
    let (_d, mut port, mut g) = setup(1, INDIRECT);
    let mut rxq = port.take_rxq(0).unwrap();
    let f = frame(300, 3);
    let (a, l) = g.tx_buffer(&f);
    let table = g.alloc(32);
    write_desc_at(&g.mem, table, a, 12, DESC_F_NEXT, 1);
    write_desc_at(&g.mem, table + 16, a + 12, l - 12, 0, 0);
    g.add_chain(1, &[(table, 32, DESC_F_INDIRECT)]);
    g.publish(1);
    let mut pkts = burst();
    assert_eq!(rxq.rx_burst(&mut pkts), 1);
    assert_eq!(pkts[0].data(), &f[..]);
}

#[test]
fn guest_tx_many_bursts_wrap_the_ring() {
    let (_d, mut port, mut g) = setup(1, 0);
    let mut rxq = port.take_rxq(0).unwrap();
    let mut pkts = burst();
    let mut seen = 0u32;
    for round in 0..4u8 {
        let frames: Vec<Vec<u8>> = (0..100).map(|i| frame(64 + i, round)).collect();
        for f in &frames {
            let (a, l) = g.tx_buffer(f);
            g.add_chain(1, &[(a, l, 0)]);
        }
        g.publish(1);
        let mut got = Vec::new();
        loop {
            let n = rxq.rx_burst(&mut pkts);
            if n == 0 {
                break;
            }
            assert!(n <= ports::BURST);
            got.extend(pkts[..n].iter().map(|p| p.data().to_vec()));
        }
        assert_eq!(got, frames);
        seen += g.take_used(1).len() as u32;
    }
    assert_eq!(seen, 400);
}

fn guest_rx_single_buffer(features: u64) {
    let (_d, mut port, mut g) = setup(1, features);
    let mut txq = port.txq(0).unwrap();
    let bufs = g.post_rx_buffers(4, 2048);
    g.publish(0);
    let frames = vec![frame(60, 4), frame(1500, 5)];
    let mut pkts = packets(&frames);
    assert_eq!(txq.tx_burst(&mut pkts), 2);
    let used = g.take_used(0);
    assert_eq!(
        used,
        vec![(u32::from(bufs[0].0), 72), (u32::from(bufs[1].0), 1512)]
    );
    for (i, f) in frames.iter().enumerate() {
        let a = bufs[i].1;
        assert_eq!(g.read(a, 10), vec![0; 10], "no offload flags");
        assert_eq!(g.num_buffers(a), 1);
        assert_eq!(&g.read(a + 12, f.len()), f);
    }
    assert!(g.called(0), "one interrupt for the burst");
    assert!(!g.called(0));
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
fn guest_rx_mergeable_spans_buffers() {
    let (_d, mut port, mut g) = setup(1, MRG);
    let mut txq = port.txq(0).unwrap();
    let bufs = g.post_rx_buffers(8, 256);
    g.publish(0);
    let f = frame(1000, 6);
    assert_eq!(txq.tx_burst(&mut packets(std::slice::from_ref(&f))), 1);
    let used = g.take_used(0);
    let lens: Vec<u32> = used.iter().map(|u| u.1).collect();
    assert_eq!(lens, vec![256, 256, 256, 244]);
    let heads: Vec<u32> = used.iter().map(|u| u.0).collect();
    let want: Vec<u32> = bufs[..4].iter().map(|b| u32::from(b.0)).collect();
    assert_eq!(heads, want);
    assert_eq!(g.num_buffers(bufs[0].1), 4);
    let mut data = g.read(bufs[0].1 + 12, 244);
    for (b, len) in bufs[1..4].iter().zip([256, 256, 244]) {
        data.extend(g.read(b.1, len));
    }
    assert_eq!(data, f);
}

#[test]
fn guest_rx_mergeable_waits_for_enough_buffers() {
    let (_d, mut port, mut g) = setup(1, MRG);
    let mut txq = port.txq(0).unwrap();
    g.post_rx_buffers(2, 256);
    g.publish(0);
    let f = frame(1000, 7);
    assert_eq!(txq.tx_burst(&mut packets(std::slice::from_ref(&f))), 0);
    assert!(
        g.take_used(0).is_empty(),
        "partial buffers are not consumed"
    );
    assert_eq!(vring_stats(&port, 0).counters.dropped_no_buffers, 1);
    g.post_rx_buffers(2, 256);
    g.publish(0);
    assert_eq!(txq.tx_burst(&mut packets(&[f])), 1);
    assert_eq!(g.take_used(0).len(), 4);
}

#[test]
fn guest_rx_chained_buffer_without_mrg() {
    let (_d, mut port, mut g) = setup(1, 0);
    let mut txq = port.txq(0).unwrap();
    let h = g.alloc(12);
    let b = g.alloc(2000);
    g.add_chain(0, &[(h, 12, DESC_F_WRITE), (b, 2000, DESC_F_WRITE)]);
    g.publish(0);
    let f = frame(1200, 8);
    assert_eq!(txq.tx_burst(&mut packets(std::slice::from_ref(&f))), 1);
    assert_eq!(g.take_used(0)[0].1, 1212);
    assert_eq!(g.num_buffers(h), 1);
    assert_eq!(g.read(b, 1200), f);
}

#[test]
fn guest_rx_too_small_without_mrg_is_dropped_and_counted() {
    let (_d, mut port, mut g) = setup(1, 0);
    let mut txq = port.txq(0).unwrap();
    let bufs = g.post_rx_buffers(2, 100);
    g.publish(0);
    let mut pkts = packets(&[frame(500, 9), frame(60, 9)]);
    assert_eq!(txq.tx_burst(&mut pkts), 2);
    assert_eq!(
        g.take_used(0),
        vec![(u32::from(bufs[0].0), 0), (u32::from(bufs[1].0), 72)]
    );
    let s = vring_stats(&port, 0);
    assert_eq!(s.counters.dropped_too_small, 1);
    assert_eq!(s.counters.packets, 1);
}

#[test]
fn guest_rx_without_buffers_returns_short_count() {
    let (_d, mut port, mut g) = setup(1, 0);
    let mut txq = port.txq(0).unwrap();
    let mut pkts = packets(&[frame(60, 1), frame(60, 2), frame(60, 3)]);
    assert_eq!(txq.tx_burst(&mut pkts), 0);
    g.post_rx_buffers(1, 2048);
    g.publish(0);
    assert_eq!(txq.tx_burst(&mut pkts), 1);
    assert_eq!(vring_stats(&port, 0).counters.dropped_no_buffers, 5);
}

#[test]
fn event_idx_suppresses_interrupts() {
    let (_d, mut port, mut g) = setup(1, EVENT_IDX);
    let mut txq = port.txq(0).unwrap();
    g.post_rx_buffers(8, 2048);
    g.publish(0);
    g.set_used_event(0, 0);
    let mut one = packets(&[frame(60, 1)]);
    assert_eq!(txq.tx_burst(&mut one), 1);
    assert!(g.called(0), "used_event 0 crossed by 0 -> 1");
    assert_eq!(txq.tx_burst(&mut one), 1);
    assert!(!g.called(0), "used_event 0 not crossed by 1 -> 2");
    g.set_used_event(0, 2);
    let mut two = packets(&[frame(60, 1), frame(60, 2)]);
    assert_eq!(txq.tx_burst(&mut two), 2);
    assert!(g.called(0), "used_event 2 crossed by 2 -> 4");
    assert!(!g.called(0), "at most one interrupt per burst");
    assert_eq!(vring_stats(&port, 0).counters.notifications, 2);
}

#[test]
fn no_interrupt_flag_without_event_idx() {
    let (_d, mut port, mut g) = setup(1, 0);
    let mut txq = port.txq(0).unwrap();
    g.post_rx_buffers(4, 2048);
    g.publish(0);
    g.set_avail_flags(0, 1);
    let mut one = packets(&[frame(60, 1)]);
    assert_eq!(txq.tx_burst(&mut one), 1);
    assert!(!g.called(0));
    g.set_avail_flags(0, 0);
    assert_eq!(txq.tx_burst(&mut one), 1);
    assert!(g.called(0));
}

#[test]
fn guest_tx_completion_interrupts_follow_event_idx() {
    let (_d, mut port, mut g) = setup(1, EVENT_IDX);
    let mut rxq = port.take_rxq(0).unwrap();
    g.set_used_event(1, 5);
    let mut pkts = burst();
    for i in 0..4u8 {
        let (a, l) = g.tx_buffer(&frame(60, i));
        g.add_chain(1, &[(a, l, 0)]);
        g.publish(1);
        assert_eq!(rxq.rx_burst(&mut pkts), 1);
        assert!(!g.called(1));
    }
    for _ in 0..2 {
        let (a, l) = g.tx_buffer(&frame(60, 9));
        g.add_chain(1, &[(a, l, 0)]);
    }
    g.publish(1);
    assert_eq!(rxq.rx_burst(&mut pkts), 2);
    assert!(g.called(1), "used_event 5 crossed by 4 -> 6");
}

#[test]
fn idle_notify_without_event_idx() {
    let (_d, mut port, mut g) = setup(1, 0);
    let mut rxq = port.take_rxq(0).unwrap();
    assert_eq!(g.used_flags(1), 1, "kicks suppressed while the PMD polls");
    // A PMD that slept before the ring started must look at it: the start is a wakeup.
    assert!(
        readable(rxq.wait_fd().unwrap()),
        "the ring's start wakes the PMD"
    );
    // The PMD consumes old wakeups before arming (`Sleeper::sleep`).
    rxq.ack_wakeup();
    assert!(rxq.enable_notify(), "empty: may sleep");
    assert_eq!(g.used_flags(1), 0, "kicks wanted");
    assert!(!readable(rxq.wait_fd().unwrap()));
    let (a, l) = g.tx_buffer(&frame(60, 1));
    g.add_chain(1, &[(a, l, 0)]);
    g.publish(1);
    assert!(readable(rxq.wait_fd().unwrap()), "the kick wakes the PMD");
    rxq.disable_notify();
    rxq.ack_wakeup();
    assert!(!readable(rxq.wait_fd().unwrap()), "wakeup consumed");
    assert_eq!(g.used_flags(1), 1);
    assert!(!rxq.enable_notify(), "a frame is pending: must not sleep");
    let mut pkts = burst();
    assert_eq!(rxq.rx_burst(&mut pkts), 1);
}

#[test]
fn idle_notify_with_event_idx_writes_avail_event() {
    let (_d, mut port, mut g) = setup(1, EVENT_IDX);
    let mut rxq = port.take_rxq(0).unwrap();
    let mut pkts = burst();
    for i in 0..3u8 {
        let (a, l) = g.tx_buffer(&frame(60, i));
        g.add_chain(1, &[(a, l, 0)]);
    }
    g.publish(1);
    assert_eq!(rxq.rx_burst(&mut pkts), 3);
    assert!(rxq.enable_notify());
    assert_eq!(g.avail_event(1), 3, "kick me when avail idx passes 3");
    assert_eq!(g.used_flags(1), 0);
}

#[test]
fn multiqueue_maps_rings_to_queues_and_pmds() {
    let (_d, mut port, mut g) = setup(2, 0);
    let mut rxq0 = port.take_rxq(0).unwrap();
    let mut rxq1 = port.take_rxq(1).unwrap();
    for (v, seed) in [(1, 10u8), (3, 30)] {
        let (a, l) = g.tx_buffer(&frame(60, seed));
        g.add_chain(v, &[(a, l, 0)]);
        g.publish(v);
    }
    let mut pkts = burst();
    assert_eq!(rxq0.rx_burst(&mut pkts), 1);
    assert_eq!(pkts[0].data(), &frame(60, 10)[..]);
    assert_eq!(rxq1.rx_burst(&mut pkts), 1);
    assert_eq!(pkts[0].data(), &frame(60, 30)[..]);

    for v in [0, 2] {
        for _ in 0..4 {
            let a = g.alloc(2048);
            g.add_chain(v, &[(a, 2048, DESC_F_WRITE)]);
        }
        g.publish(v);
    }
    let mut tx: Vec<_> = (0..3).map(|p| port.txq(p).unwrap()).collect();
    for (p, q) in tx.iter_mut().enumerate() {
        assert_eq!(q.tx_burst(&mut packets(&[frame(60, p as u8)])), 1);
    }
    assert_eq!(g.take_used(0).len(), 2, "PMDs 0 and 2 share ring 0");
    assert_eq!(g.take_used(2).len(), 1, "PMD 1 uses ring 2");

    // A guest that disables its second pair: PMD 1 falls back to ring 0.
    g.fe.set_vring_enable(2, false).unwrap();
    assert_eq!(tx[1].tx_burst(&mut packets(&[frame(60, 1)])), 1);
    assert_eq!(g.take_used(0).len(), 1);
    assert!(!vring_stats(&port, 2).running);
}

#[test]
fn get_vring_base_stops_the_ring_and_reports_the_index() {
    let (_d, mut port, mut g) = setup(1, 0);
    let mut rxq = port.take_rxq(0).unwrap();
    for i in 0..5u8 {
        let (a, l) = g.tx_buffer(&frame(60, i));
        g.add_chain(1, &[(a, l, 0)]);
    }
    g.publish(1);
    let mut pkts = burst();
    assert_eq!(rxq.rx_burst(&mut pkts[..3]), 3);
    assert_eq!(g.fe.get_vring_base(1).unwrap(), 3);
    assert!(!vring_stats(&port, 1).running);
    assert_eq!(rxq.rx_burst(&mut pkts), 0, "stopped");
    // Restart where it stopped (the driver's used idx is 3 as well).
    g.rings[1].next_avail = 3;
    let r = g.rings[1].clone();
    g.start_vring(&r);
    g.rings[1].next_avail = 5;
    assert_eq!(rxq.rx_burst(&mut pkts), 2);
}

#[test]
fn queue_num_is_pairs() {
    let d = SockDir::new();
    let path = d.path("vhu.sock");
    let _port = VhostUserPort::server(&path, 3).unwrap();
    let mut fe = vhost::vhost_user::Frontend::connect(&path, 6).unwrap();
    fe.get_features().unwrap();
    fe.get_protocol_features().unwrap();
    fe.set_protocol_features(vhost::vhost_user::VhostUserProtocolFeatures::MQ)
        .unwrap();
    // QEMU's vhost-user-net and DPDK read this as queue pairs.
    assert_eq!(fe.get_queue_num().unwrap(), 3);
}

/// VIRTIO_F_IN_ORDER is offered and, once acked, both directions complete chains exactly in
/// the order they were made available (§2.6.9), including a chain dropped for its length and
/// chains of several descriptors: a driver may then skip its out-of-order bookkeeping.
#[test]
fn in_order_completes_chains_in_avail_order() {
    let (_d, mut port, mut g) = setup(1, MRG | IN_ORDER);
    assert_ne!(g.features & IN_ORDER, 0, "acked");
    // Guest transmit: a good frame, one shorter than the header (dropped), a chained one.
    let mut rxq = port.take_rxq(0).unwrap();
    let f0 = frame(64, 1);
    let (a0, l0) = g.tx_buffer(&f0);
    let h0 = g.add_chain(1, &[(a0, l0, 0)]);
    let short = g.alloc(8);
    let h1 = g.add_chain(1, &[(short, 8, 0)]);
    let f2 = frame(300, 2);
    let (a2, l2) = g.tx_buffer(&f2);
    let h2 = g.add_chain(1, &[(a2, 20, 0), (a2 + 20, l2 - 20, 0)]);
    g.publish(1);
    let mut pkts = burst();
    let n = rxq.rx_burst(&mut pkts);
    let got: Vec<Vec<u8>> = pkts[..n].iter().map(|p| p.data().to_vec()).collect();
    assert_eq!(got, vec![f0, f2]);
    let heads: Vec<u32> = g.take_used(1).iter().map(|u| u.0).collect();
    assert_eq!(heads, vec![u32::from(h0), u32::from(h1), u32::from(h2)]);

    // Guest receive, mergeable: small buffers, a frame spanning three of them between two
    // single-buffer frames; used elements follow the avail ring one for one.
    let mut txq = port.txq(0).unwrap();
    let bufs = g.post_rx_buffers(8, 512);
    g.publish(0);
    let frames = vec![frame(100, 3), frame(1200, 4), frame(60, 5)];
    assert_eq!(txq.tx_burst(&mut packets(&frames)), 3);
    let used = g.take_used(0);
    let heads: Vec<u32> = used.iter().map(|u| u.0).collect();
    let want: Vec<u32> = bufs[..5].iter().map(|b| u32::from(b.0)).collect();
    assert_eq!(heads, want);
    assert_eq!(g.num_buffers(bufs[1].1), 3);
}
