//! What `PackedRing::new` refuses and accepts: sizes (any from 1 to 32768, §2.7), the
//! alignment and placement of its three parts (§2.7.10.1), and the starting position.

use vm_memory::GuestAddress;

use super::{start, table, FRESH, MEM};
use crate::packet::Packet;
use crate::vhost::net::RingCounters;
use crate::vhost::packed::PackedRing;
use crate::vhost::test_utils::{frame, PackedDriverRing};
use crate::vhost::virtq::{QueueError, RingConfig};

/// A change to a good configuration.
type Edit = fn(&mut RingConfig);

fn cfg(size: u32) -> RingConfig {
    RingConfig {
        size,
        desc: GuestAddress(0),
        avail: GuestAddress(0x8_0000),
        used: GuestAddress(0x8_0004),
        event_idx: false,
        packed: true,
    }
}

#[test]
fn sizes_0_and_32769_are_refused_and_any_other_is_taken() {
    let mem = table();
    for size in [0, 32769, 65536] {
        let e = PackedRing::new(mem.clone(), cfg(size), FRESH).unwrap_err();
        assert_eq!(e, QueueError::BadSize(size));
    }
    // No power of two needed.
    for size in [1, 3, 5, 1000, 32768] {
        let r = PackedRing::new(mem.clone(), cfg(size), FRESH).unwrap();
        assert_eq!(r.config().size, size);
    }
}

#[test]
fn misaligned_parts_are_refused() {
    let mem = table();
    let cases: [(&str, Edit); 3] = [
        ("descriptor", |c| c.desc = GuestAddress(8)),
        ("driver event", |c| c.avail = GuestAddress(0x8_0002)),
        ("device event", |c| c.used = GuestAddress(0x8_0006)),
    ];
    for (part, edit) in cases {
        let mut c = cfg(8);
        edit(&mut c);
        match PackedRing::new(mem.clone(), c, FRESH) {
            Err(QueueError::Misaligned { ring, .. }) => assert_eq!(ring, part),
            other => panic!("{part}: {other:?}"),
        }
    }
}

#[test]
fn parts_outside_memory_are_refused() {
    let mem = table();
    let cases: [(&str, Edit); 3] = [
        // 8 descriptors, the last one past the end.
        ("descriptor", |c| c.desc = GuestAddress(MEM - 7 * 16)),
        ("driver event", |c| c.avail = GuestAddress(MEM)),
        ("device event", |c| c.used = GuestAddress(1 << 40)),
    ];
    for (part, edit) in cases {
        let mut c = cfg(8);
        edit(&mut c);
        match PackedRing::new(mem.clone(), c, FRESH) {
            Err(QueueError::RingOutsideMemory { ring, .. }) => assert_eq!(ring, part),
            other => panic!("{part}: {other:?}"),
        }
    }
}

#[test]
fn a_base_past_the_ring_is_refused() {
    let mem = table();
    for base in [8, 0x8008, 0x7fff, 0xffff] {
        let e = PackedRing::new(mem.clone(), cfg(8), base).unwrap_err();
        assert_eq!(e, QueueError::BadBase(base));
    }
    assert!(PackedRing::new(mem.clone(), cfg(8), 7).is_ok());
    assert!(PackedRing::new(mem, cfg(1000), 0x8000 | 999).is_ok());
}

/// `last_avail` reports the base a ring started at, in the same encoding.
#[test]
fn last_avail_round_trips_the_base() {
    let mem = table();
    for base in [FRESH, 0, 7, 0x8007, 3] {
        let r = PackedRing::new(mem.clone(), cfg(8), base).unwrap();
        assert_eq!(r.last_avail(), base);
    }
    let r = PackedRing::new(mem, cfg(1000), 0x8000 | 999).unwrap();
    assert_eq!(r.last_avail(), 0x8000 | 999);
}

/// A ring started mid-lap (position 6, wrap counter 0) takes the driver's chains from there
/// and moves on across the end into the next lap (wrap counter 1).
#[test]
fn a_ring_started_at_a_base_continues_from_it() {
    let mem = table();
    let m = mem.mem();
    let mut d = PackedDriverRing::at(1, 8, 0);
    (d.next_avail, d.avail_wrap, d.next_used, d.used_wrap) = (6, false, 6, false);
    let mut ring = PackedRing::new(mem.clone(), d.config(false), 6).unwrap();
    let frames: Vec<Vec<u8>> = (0..4).map(|i| frame(60, i)).collect();
    for (i, f) in frames.iter().enumerate() {
        let a = 0x4_0000 + 0x800 * i as u64;
        let l = super::write_tx_buffer(&mem, a, f);
        d.add_chain(m, &[(a, l, 0)]);
    }
    d.publish(m);
    let mut pkts = vec![Packet::new(); 8];
    let mut cnt = RingCounters::default();
    assert_eq!(ring.dequeue(&mut pkts, &mut cnt).0, 4, "{:?}", ring.fault());
    for (p, f) in pkts.iter().zip(&frames) {
        assert_eq!(p.data(), &f[..]);
    }
    assert_eq!(d.take_used(m).len(), 4);
    assert_eq!(ring.last_avail(), 0x8000 | 2, "position 2 of the next lap");
    // A fresh ring starts at position 0 with wrap counter 1.
    assert_eq!(
        start(&mem, &PackedDriverRing::at(0, 8, 0x1000), false).last_avail(),
        FRESH
    );
}
