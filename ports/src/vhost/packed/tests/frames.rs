//! Frames both ways through small packed rings over several laps: chains of one to four
//! descriptors and indirect tables, mergeable frames across chains (and across the end of
//! the ring), a chain too small without mergeable buffers, and buffers in two regions.

use std::io::Write;
use std::sync::Arc;

use vhost::vhost_user::message::VhostUserMemoryRegion;

use super::{gather, num_buffers, pieces, read, start, table, write_tx_buffer};
use crate::packet::Packet;
use crate::vhost::memory::GuestMemoryTable;
use crate::vhost::net::{RingCounters, NET_HDR_LEN};
use crate::vhost::packed::layout::DESC_F_WRITE;
use crate::vhost::test_utils::{frame, packets, PackedDriverRing};

/// Ring descriptors the `k`th chain of the lap tests takes: one to four, and every fifth
/// chain one descriptor pointing at an indirect table.
fn shape(k: usize) -> (u32, bool) {
    match k % 5 {
        4 => (1, true),
        n => (n as u32 + 1, false),
    }
}

/// Guest transmit over more than three laps of rings of 5 and 8 descriptors: each burst
/// fills the ring with chains of one to four descriptors and indirect tables; every frame
/// arrives intact, every chain comes back in order under its buffer id with length 0, and
/// the device's position follows the driver's.
#[test]
fn tx_frames_over_several_laps() {
    let mem = table();
    let m = mem.mem();
    for size in [5u16, 8] {
        let mut d = PackedDriverRing::at(1, size, 0);
        let mut ring = start(&mem, &d, false);
        let mut pkts = vec![Packet::new(); 32];
        let mut cnt = RingCounters::default();
        let (mut k, mut descs) = (0usize, 0u32);
        for round in 0..12 {
            let (mut frames, mut ids, mut free) = (Vec::new(), Vec::new(), u32::from(size));
            loop {
                let (n, indirect) = shape(k);
                if n > free {
                    break;
                }
                let f = frame(60 + k % 50, k as u8);
                let a = 0x4_0000 + 0x800 * (k % 64) as u64;
                let l = write_tx_buffer(&mem, a, &f);
                let id = if indirect {
                    let table = 0x8_0000 + 0x100 * (k % 64) as u64;
                    d.add_indirect(m, table, &pieces(a, l, 3, 0))
                } else {
                    d.add_chain(m, &pieces(a, l, n, 0))
                };
                (free, descs, k) = (free - n, descs + n, k + 1);
                frames.push(f);
                ids.push(u32::from(id));
            }
            d.publish(m);
            let (got, _) = ring.dequeue(&mut pkts, &mut cnt);
            assert_eq!(
                got,
                frames.len(),
                "size {size} round {round}: {:?}",
                ring.fault()
            );
            for (p, f) in pkts.iter().zip(&frames) {
                assert_eq!(p.data(), &f[..], "size {size} round {round}");
            }
            let used = d.take_used(m);
            assert_eq!(used.iter().map(|u| u.0).collect::<Vec<_>>(), ids);
            assert!(used.iter().all(|u| u.1 == 0));
            assert_eq!(ring.last_avail(), d.avail_base());
            assert_eq!(d.used_base(), d.avail_base());
        }
        assert!(
            descs > 3 * u32::from(size),
            "size {size}: {descs} descriptors"
        );
        assert!(ring.fault().is_none());
        assert_eq!(cnt.dropped_bad_length + cnt.guest_errors, 0);
    }
}

/// Guest receive over more than three laps, each chain of 2048 bytes cut into one to four
/// descriptors (or behind an indirect table): header and frame land across the chain's
/// buffers, each used descriptor carries its buffer id, the bytes written and the WRITE
/// flag (§2.7.4: a used descriptor says whether the device wrote into the buffer).
#[test]
fn rx_frames_over_several_laps() {
    let mem = table();
    let m = mem.mem();
    for (size, mrg) in [(5u16, false), (8, false), (8, true)] {
        let mut d = PackedDriverRing::at(0, size, 0);
        let mut ring = start(&mem, &d, false);
        let mut cnt = RingCounters::default();
        let (mut k, mut descs) = (0usize, 0u32);
        for round in 0..12 {
            let (mut chains, mut free) = (Vec::new(), u32::from(size));
            loop {
                let (n, indirect) = shape(k);
                if n > free {
                    break;
                }
                let a = 0x4_0000 + 0x800 * (k % 64) as u64;
                let bufs = pieces(a, 2048, if indirect { 3 } else { n }, DESC_F_WRITE);
                let id = if indirect {
                    let table = 0x8_0000 + 0x100 * (k % 64) as u64;
                    d.add_indirect(m, table, &bufs)
                } else {
                    d.add_chain(m, &bufs)
                };
                (free, descs, k) = (free - n, descs + n, k + 1);
                chains.push((id, bufs));
            }
            d.publish(m);
            let frames: Vec<Vec<u8>> = (0..chains.len())
                .map(|i| frame(60 + 100 * i, round))
                .collect();
            let (taken, _) = ring.enqueue(&packets(&frames), mrg, &mut cnt);
            assert_eq!(
                taken,
                frames.len(),
                "size {size} round {round}: {:?}",
                ring.fault()
            );
            let used = d.take_used_descs(m);
            assert_eq!(used.len(), chains.len());
            for ((u, (id, bufs)), f) in used.iter().zip(&chains).zip(&frames) {
                let len = NET_HDR_LEN + f.len();
                assert_eq!((u.id, u.len as usize), (*id, len));
                assert_ne!(u.flags & DESC_F_WRITE, 0, "used flags {:#x}", u.flags);
                let bytes = gather(&mem, bufs, len);
                assert_eq!(u16::from_le_bytes([bytes[10], bytes[11]]), 1, "num_buffers");
                assert_eq!(&bytes[NET_HDR_LEN..], &f[..]);
            }
            assert_eq!(ring.last_avail(), d.avail_base());
        }
        assert!(descs > 3 * u32::from(size));
        assert!(ring.fault().is_none());
        assert_eq!(cnt.dropped_too_small + cnt.guest_errors, 0);
    }
}

/// A mergeable frame over four chains that cross the end of a 5-entry ring (one of them two
/// descriptors): `num_buffers` 4, one used descriptor per chain at the chain's first slot
/// (the driver finds each by skipping the previous chain's length), the bytes in order.
#[test]
fn rx_mergeable_frame_across_chains_and_the_wrap() {
    let mem = table();
    let m = mem.mem();
    let mut d = PackedDriverRing::at(0, 5, 0);
    let mut ring = start(&mem, &d, true);
    let mut cnt = RingCounters::default();
    let buf = |i: u64| 0x4_0000 + 0x400 * i;
    // Positions 0, 1, 2; a 60-byte frame takes position 0.
    for i in 0..3 {
        d.add_chain(m, &[(buf(i), 256, DESC_F_WRITE)]);
    }
    d.publish(m);
    assert_eq!(ring.enqueue(&packets(&[frame(60, 1)]), true, &mut cnt).0, 1);
    assert_eq!(d.take_used(m), vec![(0, 72)]);
    // Positions 3-4 (one chain of two buffers) and 0 of the next lap.
    let two = [(buf(3), 128, DESC_F_WRITE), (buf(4), 128, DESC_F_WRITE)];
    let ids = [
        1,
        2,
        d.add_chain(m, &two),
        d.add_chain(m, &[(buf(5), 256, DESC_F_WRITE)]),
    ];
    d.publish(m);
    let f = frame(1000, 2);
    assert_eq!(
        ring.enqueue(&packets(std::slice::from_ref(&f)), true, &mut cnt)
            .0,
        1
    );
    let used = d.take_used(m);
    let want: Vec<(u32, u32)> = ids
        .iter()
        .zip([256, 256, 256, 244])
        .map(|(&id, len)| (u32::from(id), len))
        .collect();
    assert_eq!(used, want);
    assert_eq!(num_buffers(&mem, buf(1)), 4);
    let mut data = read(&mem, buf(1) + 12, 244);
    for (a, len) in [(buf(2), 256), (buf(3), 128), (buf(4), 128), (buf(5), 244)] {
        data.extend(read(&mem, a, len));
    }
    assert_eq!(data, f);
    assert_eq!(ring.last_avail(), 0x0001, "position 1 of the second lap");
    assert_eq!(d.used_base(), 0x0001);
    assert_eq!(cnt.packets, 2);
}

/// Without mergeable buffers a chain too small for the frame goes back empty (used length
/// 0, counted); the next frame takes the next chain.
#[test]
fn rx_too_small_chain_without_mrg_goes_back_empty() {
    let mem = table();
    let m = mem.mem();
    let mut d = PackedDriverRing::at(0, 8, 0);
    let mut ring = start(&mem, &d, false);
    let small = d.add_chain(
        m,
        &[(0x4_0000, 30, DESC_F_WRITE), (0x4_0100, 20, DESC_F_WRITE)],
    );
    let big = d.add_chain(m, &[(0x4_1000, 2048, DESC_F_WRITE)]);
    d.publish(m);
    let mut cnt = RingCounters::default();
    let frames = [frame(100, 1), frame(60, 2)];
    assert_eq!(ring.enqueue(&packets(&frames), false, &mut cnt).0, 2);
    assert_eq!(
        d.take_used(m),
        vec![(u32::from(small), 0), (u32::from(big), 72)]
    );
    assert_eq!(read(&mem, 0x4_1000 + 12, 60), frames[1]);
    assert_eq!((cnt.dropped_too_small, cnt.packets), (1, 1));
    assert!(ring.fault().is_none());
}

/// Buffers alternating between two regions: the fast paths (which try the region of the
/// last buffer only) hand every other chain to the general path, and frames still arrive
/// intact both ways, with their used lengths.
#[test]
fn buffers_in_two_regions() {
    const REGION: u64 = 1 << 20;
    let mut files = Vec::new();
    for _ in 0..2 {
        let mut f = crate::vhost::memory::test::memfd();
        f.write_all(&vec![0u8; REGION as usize]).unwrap();
        files.push(f);
    }
    let regions = [
        VhostUserMemoryRegion::new(0, REGION, 0, 0),
        VhostUserMemoryRegion::new(REGION, REGION, REGION, 0),
    ];
    let mem = Arc::new(GuestMemoryTable::map(&regions, files).unwrap());
    let m = mem.mem();
    let n = 8u16;
    let mut tx = PackedDriverRing::at(1, 16, 0);
    let mut rx = PackedDriverRing::at(0, 16, 0x8000);
    let buf = |i: u16, dir: u64| u64::from(i % 2) * REGION + 0x4_0000 + dir + u64::from(i) * 0x800;
    for i in 0..n {
        let f = frame(60 + usize::from(i), i as u8);
        let l = write_tx_buffer(&mem, buf(i, 0), &f);
        tx.add_chain(m, &[(buf(i, 0), l, 0)]);
        rx.add_chain(m, &[(buf(i, 0x2_0000), 2048, DESC_F_WRITE)]);
    }
    tx.publish(m);
    rx.publish(m);
    let mut txr = start(&mem, &tx, false);
    let mut pkts = vec![Packet::new(); 32];
    let mut cnt = RingCounters::default();
    let (got, _) = txr.dequeue(&mut pkts, &mut cnt);
    assert_eq!(got, usize::from(n), "{:?}", txr.fault());
    for (i, p) in pkts[..got].iter().enumerate() {
        assert_eq!(
            p.data(),
            &frame(60 + i, i as u8)[..],
            "frame {i} out of region {}",
            i % 2
        );
    }
    // One receive ring per mode, each with a chain per frame.
    for (mrg, base) in [(false, 0x8000), (true, 0xc000)] {
        let mut rx = PackedDriverRing::at(0, 16, base);
        for i in 0..n {
            rx.add_chain(m, &[(buf(i, 0x2_0000), 2048, DESC_F_WRITE)]);
        }
        rx.publish(m);
        let mut rxr = start(&mem, &rx, false);
        let (taken, _) = rxr.enqueue(&pkts[..got], mrg, &mut cnt);
        assert_eq!(taken, got, "{:?}", rxr.fault());
        let used = rx.take_used(m);
        assert_eq!(used.len(), usize::from(n));
        for i in 0..n {
            let len = NET_HDR_LEN + 60 + usize::from(i);
            let b = read(&mem, buf(i, 0x2_0000), len);
            assert_eq!(&b[NET_HDR_LEN..], pkts[usize::from(i)].data());
            assert_eq!(num_buffers(&mem, buf(i, 0x2_0000)), 1);
            assert_eq!(
                used[usize::from(i)],
                (u32::from(i), len as u32),
                "chain {i}"
            );
        }
        assert!(rxr.fault().is_none());
    }
    assert!(txr.fault().is_none());
    assert_eq!(cnt.dropped_bad_length + cnt.dropped_too_small, 0);
}
