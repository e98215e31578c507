//! How a burst hands its used descriptors back: every one written in place, the first one's
//! flags last (so the driver, which polls that descriptor, sees the whole burst at once), or
//! on an in-order transmit ring one for the whole burst; and every write marked in the dirty
//! log while the frontend logs.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::{start, table, write_tx_buffer};
use crate::packet::Packet;
use crate::vhost::memory::{DirtyLog, LOG_PAGE};
use crate::vhost::net::RingCounters;
use crate::vhost::packed::layout::{used_flags, DESC_F_AVAIL, DESC_F_USED, DESC_F_WRITE};
use crate::vhost::test_utils::{frame, packets, PackedDriverRing};
use crate::vhost::virtq::Virtq;

/// Driven through the ring primitives the net paths use: after three chains are completed
/// the driver sees nothing, though the second and third already carry used flags; the first
/// one's flags come with `end_burst`, and then the driver takes all three.
#[test]
fn a_bursts_used_descriptors_appear_at_once() {
    let mem = table();
    let m = mem.mem();
    let mut d = PackedDriverRing::at(1, 8, 0);
    let mut ring = start(&mem, &d, false);
    for i in 0..3u64 {
        let a = 0x4_0000 + 0x100 * i;
        let l = write_tx_buffer(&mem, a, &frame(60, i as u8));
        d.add_chain(m, &[(a, l, 0)]);
    }
    d.publish(m);
    assert!(ring.begin_burst());
    for _ in 0..3 {
        let head = ring.next_chain().expect("available");
        ring.push_used(&head, 0);
        ring.consume(&head);
    }
    assert!(ring.next_chain().is_none());
    assert_eq!(
        d.read_desc(m, 0).flags & DESC_F_USED,
        0,
        "first: still the driver's"
    );
    for i in 1..3 {
        assert_eq!(d.read_desc(m, i).flags, used_flags(true), "descriptor {i}");
    }
    assert!(d.take_used(m).is_empty(), "nothing before the burst ends");
    assert!(ring.end_burst(false).is_some());
    assert_eq!(d.take_used(m), vec![(0, 0), (1, 0), (2, 0)]);

    // The same through `dequeue`, over the end of the ring: all used once it returns.
    let mut pkts = vec![Packet::new(); 8];
    let mut cnt = RingCounters::default();
    for i in 0..7u64 {
        let a = 0x4_0000 + 0x100 * i;
        let l = write_tx_buffer(&mem, a, &frame(60, i as u8));
        d.add_chain(m, &[(a, l, 0)]);
    }
    d.publish(m);
    assert_eq!(ring.dequeue(&mut pkts, &mut cnt).0, 7);
    assert_eq!(d.take_used(m).len(), 7);
    assert_eq!(d.used_base(), 2, "position 2, wrap counter 0");
}

/// With VIRTIO_F_IN_ORDER a transmit ring returns each burst with one used descriptor
/// (§2.7.9): at the burst's first chain, carrying the last chain's buffer id, flags last;
/// the descriptors of the chains in between stay as the driver wrote them. The driver, walking
/// its chains up to that id as DPDK's in-order driver does, ends where the device goes on,
/// over both ends of the ring and through a chain that goes back unused.
#[test]
fn an_in_order_transmit_burst_is_returned_with_one_used_descriptor() {
    let mem = table();
    let m = mem.mem();
    let mut d = PackedDriverRing::at(1, 8, 0);
    let mut ring = start(&mem, &d, false);
    ring.set_batch_used(true);
    let mut pkts = vec![Packet::new(); 8];
    let mut cnt = RingCounters::default();
    let both = DESC_F_AVAIL | DESC_F_USED;
    for round in 0..5u64 {
        // Three chains of 1, 2 and 1 descriptors (the middle one's length too short for a
        // header in the last round: dropped, still returned).
        let first = d.next_avail;
        let mut ids = Vec::new();
        for i in 0..3u64 {
            let a = 0x4_0000 + 0x1000 * i;
            let l = write_tx_buffer(&mem, a, &frame(60, (round * 3 + i) as u8));
            let id = if i == 1 {
                let l = if round == 4 { 4 } else { l };
                d.add_chain(m, &[(a, l.min(6), 0), (a + 6, l.saturating_sub(6), 0)])
            } else {
                d.add_chain(m, &[(a, l, 0)])
            };
            ids.push(u32::from(id));
        }
        d.publish(m);
        let middle = [(first + 1) % 8, (first + 2) % 8, (first + 3) % 8];
        let before: Vec<_> = middle.iter().map(|&i| d.read_desc(m, i)).collect();
        let want = if round == 4 { 2 } else { 3 };
        assert_eq!(ring.dequeue(&mut pkts, &mut cnt).0, want, "round {round}");
        let after: Vec<_> = middle.iter().map(|&i| d.read_desc(m, i)).collect();
        assert_eq!(
            after, before,
            "round {round}: only the first descriptor written"
        );
        let used = d.read_desc(m, first);
        let flags = if d.used_wrap { both } else { 0 };
        assert_eq!(
            (u32::from(used.id), used.len, used.flags),
            (ids[2], 0, flags),
            "round {round}"
        );
        let done = d.take_used(m);
        assert_eq!(done, ids.iter().map(|&id| (id, 0)).collect::<Vec<_>>());
        assert_eq!(d.used_base(), d.avail_base(), "round {round}: caught up");
    }
    assert_eq!(cnt.dropped_bad_length, 1);
}

/// Receive chains come back with WRITE in their used flags when the device wrote into them
/// (§2.7.4: "In a used descriptor, this bit is used to specify whether any data has been
/// written by the device"; the length is reserved without it), and without it when they go
/// back empty. Regression: the device wrote AVAIL | USED only, so a driver that follows the
/// spec would ignore the length of every received frame.
#[test]
fn used_descriptors_say_whether_the_device_wrote() {
    let mem = table();
    let m = mem.mem();
    let mut d = PackedDriverRing::at(0, 8, 0);
    let mut ring = start(&mem, &d, false);
    d.add_chain(m, &[(0x4_0000, 2048, DESC_F_WRITE)]);
    d.add_chain(m, &[(0x4_1000, 20, DESC_F_WRITE)]);
    d.publish(m);
    let mut cnt = RingCounters::default();
    let frames = [frame(60, 1), frame(60, 2)];
    assert_eq!(ring.enqueue(&packets(&frames), false, &mut cnt).0, 2);
    let used = d.take_used_descs(m);
    let both = DESC_F_AVAIL | DESC_F_USED;
    assert_eq!((used[0].len, used[0].flags), (72, both | DESC_F_WRITE));
    assert_eq!(
        (used[1].len, used[1].flags),
        (0, both),
        "too small: nothing written"
    );

    // Transmit chains: nothing written, no WRITE.
    let mut t = PackedDriverRing::at(1, 8, 0x1000);
    let mut tx = start(&mem, &t, false);
    let l = write_tx_buffer(&mem, 0x4_2000, &frames[0]);
    t.add_chain(m, &[(0x4_2000, l, 0)]);
    t.publish(m);
    assert_eq!(tx.dequeue(&mut vec![Packet::new(); 2], &mut cnt).0, 1);
    assert_eq!(t.take_used_descs(m)[0].flags, both);
}

/// The dirty pages of a 4 KiB log file.
fn dirty(log: &std::fs::File) -> Vec<u64> {
    let mut b = [0u8; 4096];
    log.read_exact_at(&mut b, 0).unwrap();
    (0..4096 * 8)
        .filter(|&p| b[p / 8] & (1 << (p % 8)) != 0)
        .map(|p| p as u64)
        .collect()
}

/// While logging, the device marks its event area when the log is attached, then the pages
/// of the used descriptors it writes (only those: the ring's second page stays clean) and
/// of the receive buffers it fills.
#[test]
fn the_dirty_log_marks_used_descriptors_and_buffers() {
    let mem = table();
    let m = mem.mem();
    // A 512-entry ring over pages 0x10-0x11, its event areas on page 0x12.
    let mut d = PackedDriverRing::at(0, 512, 0x1_0000);
    let mut ring = start(&mem, &d, false);
    let file = crate::vhost::memory::test::memfd();
    file.set_len(4096).unwrap();
    let log = Arc::new(DirtyLog::map(4096, 0, file.try_clone().unwrap()).unwrap());
    ring.set_log(Some(log));
    assert_eq!(
        dirty(&file),
        vec![d.device / LOG_PAGE],
        "the device event area"
    );
    file.write_all_at(&[0u8; 4096], 0).unwrap();

    // Two frames into buffers on pages 0x40 and 0x42-0x43 (the second one spans two).
    d.add_chain(m, &[(0x4_0000, 2048, DESC_F_WRITE)]);
    d.add_chain(
        m,
        &[
            (0x4_2f00, 0x200, DESC_F_WRITE),
            (0x4_3100, 2048, DESC_F_WRITE),
        ],
    );
    d.publish(m);
    let mut cnt = RingCounters::default();
    let frames = [frame(100, 1), frame(1000, 2)];
    assert_eq!(ring.enqueue(&packets(&frames), false, &mut cnt).0, 2);
    assert_eq!(d.take_used(m).len(), 2);
    assert_eq!(dirty(&file), vec![0x10, 0x40, 0x42, 0x43]);

    // A transmit ring writes only its used descriptors.
    let mut t = PackedDriverRing::at(1, 8, 0x2_0000);
    let mut tx = start(&mem, &t, false);
    let file = crate::vhost::memory::test::memfd();
    file.set_len(4096).unwrap();
    tx.set_log(Some(Arc::new(
        DirtyLog::map(4096, 0, file.try_clone().unwrap()).unwrap(),
    )));
    file.write_all_at(&[0u8; 4096], 0).unwrap();
    let l = write_tx_buffer(&mem, 0x5_0000, &frames[0]);
    t.add_chain(m, &[(0x5_0000, l, 0)]);
    t.publish(m);
    assert_eq!(tx.dequeue(&mut vec![Packet::new(); 2], &mut cnt).0, 1);
    assert_eq!(dirty(&file), vec![0x20]);
}
