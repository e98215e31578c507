//! The bounds on what one chain may cost, on the packed ring: a chain (or one mergeable
//! frame's chains) over `MAX_CHAIN_DESCS` descriptors goes back unused and counted, and the
//! ring sits out `COOLDOWN_BURSTS` bursts and then works again; a chain spanning more than
//! `MAX_CHAIN_DESCS` ring descriptors breaks the ring; chains the driver got wrong break it
//! with the matching error.

use super::{pieces, start, table, write_tx_buffer};
use crate::packet::Packet;
use crate::vhost::memory::GuestMemoryTable;
use crate::vhost::net::RingCounters;
use crate::vhost::packed::layout::{PackedDesc, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};
use crate::vhost::packed::PackedRing;
use crate::vhost::test_utils::{frame, packets, PackedDriverRing};
use crate::vhost::virtq::{QueueError, COOLDOWN_BURSTS, MAX_CHAIN_DESCS};

/// Over the cap by this much.
const OVER: u32 = MAX_CHAIN_DESCS + 44;

/// A good transmit chain (a 60-byte frame) added and published on `d`.
fn good_tx_chain(mem: &GuestMemoryTable, d: &mut PackedDriverRing, seed: u8) -> Vec<u8> {
    let f = frame(60, seed);
    let a = 0x6_0000 + 0x100 * u64::from(seed);
    let l = write_tx_buffer(mem, a, &f);
    d.add_chain(mem.mem(), &[(a, l, 0)]);
    d.publish(mem.mem());
    f
}

/// Sits out the cooldown: `COOLDOWN_BURSTS` bursts that take nothing.
fn sit_out(ring: &mut PackedRing, pkts: &mut [Packet], cnt: &mut RingCounters) {
    for _ in 0..COOLDOWN_BURSTS {
        assert_eq!(ring.dequeue(pkts, cnt).0, 0, "sitting out");
    }
}

/// A transmit chain whose indirect table has more than `MAX_CHAIN_DESCS` entries goes back
/// unused (length 0) and counted; after the cooldown the ring delivers the next frame.
#[test]
fn tx_indirect_table_over_the_cap_goes_back_unused() {
    let mem = table();
    let m = mem.mem();
    let mut d = PackedDriverRing::at(1, 512, 0);
    let mut ring = start(&mem, &d, false);
    let a = 0x4_0000;
    let l = write_tx_buffer(&mem, a, &frame(OVER as usize, 1));
    let id = d.add_indirect(m, 0x8_0000, &pieces(a, l, OVER, 0));
    d.publish(m);
    let mut pkts = vec![Packet::new(); 32];
    let mut cnt = RingCounters::default();
    assert_eq!(ring.dequeue(&mut pkts, &mut cnt).0, 0);
    assert_eq!(d.take_used(m), vec![(u32::from(id), 0)]);
    assert_eq!((cnt.guest_errors, cnt.packets), (1, 0));
    let f = good_tx_chain(&mem, &mut d, 2);
    sit_out(&mut ring, &mut pkts, &mut cnt);
    assert_eq!(ring.dequeue(&mut pkts, &mut cnt).0, 1);
    assert_eq!(pkts[0].data(), &f[..]);
    assert!(ring.fault().is_none());
}

/// The same on the receive side, with and without mergeable buffers: the frame is dropped,
/// the chain goes back with length 0, and the next frame lands after the cooldown.
#[test]
fn rx_indirect_table_over_the_cap_goes_back_unused() {
    for mrg in [false, true] {
        let mem = table();
        let m = mem.mem();
        let mut d = PackedDriverRing::at(0, 512, 0);
        let mut ring = start(&mem, &d, false);
        let hostile = d.add_indirect(
            m,
            0x8_0000,
            &pieces(0x4_0000, 16 * OVER, OVER, DESC_F_WRITE),
        );
        let good = d.add_chain(m, &[(0x6_0000, 2048, DESC_F_WRITE)]);
        d.publish(m);
        let mut cnt = RingCounters::default();
        let f = frame(100, 3);
        assert_eq!(
            ring.enqueue(&packets(std::slice::from_ref(&f)), mrg, &mut cnt)
                .0,
            1
        );
        assert_eq!(d.take_used(m), vec![(u32::from(hostile), 0)]);
        assert_eq!((cnt.guest_errors, cnt.packets), (1, 0));
        for _ in 0..COOLDOWN_BURSTS {
            assert_eq!(
                ring.enqueue(&packets(std::slice::from_ref(&f)), mrg, &mut cnt)
                    .0,
                0
            );
        }
        assert_eq!(
            ring.enqueue(&packets(std::slice::from_ref(&f)), mrg, &mut cnt)
                .0,
            1
        );
        assert_eq!(d.take_used(m), vec![(u32::from(good), 112)]);
        assert_eq!(super::read(&mem, 0x6_0000 + 12, 100), f);
        assert!(ring.fault().is_none());
    }
}

/// A mergeable frame offered nothing but empty chains: the chains its walk read, up to one
/// past `MAX_CHAIN_DESCS`, all go back with length 0, the frame is dropped and counted once;
/// after the cooldown the next frame lands in the good chain behind them.
#[test]
fn mergeable_frame_over_many_empty_chains_goes_back_unused() {
    let mem = table();
    let m = mem.mem();
    let mut d = PackedDriverRing::at(0, 512, 0);
    let mut ring = start(&mem, &d, false);
    let empty = MAX_CHAIN_DESCS + 1;
    for _ in 0..empty {
        d.add_chain(m, &[(0x4_0000, 0, DESC_F_WRITE)]);
    }
    let good = d.add_chain(m, &[(0x6_0000, 2048, DESC_F_WRITE)]);
    d.publish(m);
    let mut cnt = RingCounters::default();
    let one = packets(&[frame(60, 4)]);
    assert_eq!(ring.enqueue(&one, true, &mut cnt).0, 1);
    let used = d.take_used(m);
    assert_eq!(used.len() as u32, empty);
    assert!(used.iter().all(|u| u.1 == 0));
    assert_eq!((cnt.guest_errors, cnt.packets), (1, 0));
    for _ in 0..COOLDOWN_BURSTS {
        assert_eq!(ring.enqueue(&one, true, &mut cnt).0, 0);
    }
    assert_eq!(ring.enqueue(&one, true, &mut cnt).0, 1);
    assert_eq!(d.take_used(m), vec![(u32::from(good), 72)]);
    assert_eq!(super::num_buffers(&mem, 0x6_0000), 1);
    assert!(ring.fault().is_none());
}

/// A chain of exactly `MAX_CHAIN_DESCS` ring descriptors is a frame; one more breaks the
/// ring (its end cannot be found without walking it): nothing is used, nothing moves after.
#[test]
fn a_chain_over_the_cap_in_the_ring_breaks_it() {
    let mem = table();
    let m = mem.mem();
    let mut d = PackedDriverRing::at(1, 1024, 0);
    let mut ring = start(&mem, &d, false);
    let mut pkts = vec![Packet::new(); 32];
    let mut cnt = RingCounters::default();
    let f = frame(MAX_CHAIN_DESCS as usize - 12, 5);
    let l = write_tx_buffer(&mem, 0x4_0000, &f);
    d.add_chain(m, &pieces(0x4_0000, l, MAX_CHAIN_DESCS, 0));
    d.publish(m);
    assert_eq!(ring.dequeue(&mut pkts, &mut cnt).0, 1);
    assert_eq!(pkts[0].data(), &f[..]);
    assert_eq!(d.take_used(m).len(), 1);
    let l = write_tx_buffer(&mem, 0x4_0000, &frame(MAX_CHAIN_DESCS as usize, 6));
    d.add_chain(m, &pieces(0x4_0000, l, MAX_CHAIN_DESCS + 1, 0));
    d.publish(m);
    assert_eq!(ring.dequeue(&mut pkts, &mut cnt).0, 0);
    assert_eq!(ring.fault(), Some(&QueueError::RingChainOverCap));
    assert!(d.take_used(m).is_empty());
    good_tx_chain(&mem, &mut d, 7);
    assert_eq!(ring.dequeue(&mut pkts, &mut cnt).0, 0, "broken");
    assert!(!ring.has_pending());
}

/// On a ring of at most `MAX_CHAIN_DESCS` entries a chain may be as long as the ring.
#[test]
fn a_chain_as_long_as_a_small_ring_is_fine() {
    let mem = table();
    let m = mem.mem();
    let mut d = PackedDriverRing::at(1, 8, 0);
    let mut ring = start(&mem, &d, false);
    let f = frame(100, 8);
    let l = write_tx_buffer(&mem, 0x4_0000, &f);
    d.add_chain(m, &pieces(0x4_0000, l, 8, 0));
    d.publish(m);
    let mut pkts = vec![Packet::new(); 4];
    let mut cnt = RingCounters::default();
    assert_eq!(ring.dequeue(&mut pkts, &mut cnt).0, 1);
    assert_eq!(pkts[0].data(), &f[..]);
    assert_eq!(d.take_used(m).len(), 1);
}

/// Chains the driver got wrong (§2.7.6, §2.7.7, §2.7.4) break the ring with the error that
/// says why, on the first burst that reads them; nothing is used.
#[test]
fn chains_the_driver_got_wrong_break_the_ring() {
    let buf = |len, flags| PackedDesc {
        addr: 0x4_0000,
        len,
        id: 0,
        flags,
    };
    let ind = |len, flags| PackedDesc {
        addr: 0x8_0000,
        len,
        id: 0,
        flags: flags | DESC_F_INDIRECT,
    };
    let cases: Vec<(Vec<PackedDesc>, QueueError)> = vec![
        (
            vec![ind(16, DESC_F_NEXT), buf(72, 0)],
            QueueError::IndirectWithNext,
        ),
        (vec![ind(0, 0)], QueueError::BadIndirectLen(0)),
        (vec![ind(24, 0)], QueueError::BadIndirectLen(24)),
        (vec![ind(16 * 9, 0)], QueueError::BadIndirectLen(16 * 9)),
        (vec![buf(72, DESC_F_WRITE)], QueueError::WrongDirection),
        (
            vec![buf(0x8000_0000, DESC_F_NEXT), buf(0x8000_0000, 0)],
            QueueError::ChainTooLarge,
        ),
        (
            vec![PackedDesc {
                addr: 1 << 40,
                ..buf(72, 0)
            }],
            // Header and frame are read together: the whole buffer.
            QueueError::BufferOutsideMemory {
                addr: 1 << 40,
                len: 72,
            },
        ),
        (
            vec![PackedDesc {
                addr: super::MEM - 16,
                ..ind(32, 0)
            }],
            QueueError::BufferOutsideMemory {
                addr: super::MEM - 16,
                len: 32,
            },
        ),
    ];
    for (descs, want) in cases {
        let mem = table();
        let m = mem.mem();
        let mut d = PackedDriverRing::at(1, 8, 0);
        let mut ring = start(&mem, &d, false);
        write_tx_buffer(&mem, 0x4_0000, &frame(60, 9));
        d.add_descs(m, &descs);
        d.publish(m);
        let mut pkts = vec![Packet::new(); 4];
        let mut cnt = RingCounters::default();
        assert_eq!(ring.dequeue(&mut pkts, &mut cnt).0, 0);
        assert_eq!(ring.fault(), Some(&want), "{descs:?}");
        assert!(d.take_used(m).is_empty());
    }
    // An indirect descriptor inside an indirect table.
    let mem = table();
    let m = mem.mem();
    let mut d = PackedDriverRing::at(1, 8, 0);
    let mut ring = start(&mem, &d, false);
    d.add_indirect(m, 0x8_0000, &[(0x9_0000, 16, DESC_F_INDIRECT)]);
    d.publish(m);
    let mut cnt = RingCounters::default();
    assert_eq!(ring.dequeue(&mut vec![Packet::new(); 4], &mut cnt).0, 0);
    assert_eq!(ring.fault(), Some(&QueueError::NestedIndirect));
}
