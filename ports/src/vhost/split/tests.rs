//! Unit tests of the split ring and the net paths over it: start-time checks, buffers in two
//! regions, and random rings that must never make the device panic.

use std::io::Write;
use std::sync::Arc;

use vhost::vhost_user::message::VhostUserMemoryRegion;
use vm_memory::{Bytes, GuestAddress};

use super::layout::{avail, desc, used, Descriptor, DESC_F_WRITE};
use super::{QueueError, RingConfig, SplitRing, MAX_QUEUE_SIZE};
use crate::offload::{Offload, VirtioNetHdr};
use crate::packet::{Packet, MAX_FRAME};
use crate::vhost::memory::GuestMemoryTable;
use crate::vhost::net::{RingCounters, NET_HDR_LEN};
use crate::vhost::test_utils::DriverRing;

const MEM: u64 = 1 << 20;

fn table() -> Arc<GuestMemoryTable> {
    let mut f = crate::vhost::memory::test::memfd();
    f.write_all(&vec![0u8; MEM as usize]).unwrap();
    let r = VhostUserMemoryRegion::new(0, MEM, 0, 0);
    Arc::new(GuestMemoryTable::map(&[r], vec![f]).unwrap())
}

fn cfg(size: u32, event_idx: bool) -> RingConfig {
    RingConfig {
        size,
        desc: GuestAddress(0),
        avail: GuestAddress(0x10000),
        used: GuestAddress(0x20000),
        event_idx,
        packed: false,
    }
}

#[test]
fn start_checks_size_alignment_and_placement() {
    let mem = table();
    for size in [0, 3, 65536] {
        let e = SplitRing::new(mem.clone(), cfg(size, false), 0).unwrap_err();
        assert_eq!(e, QueueError::BadSize(size));
    }
    let mut c = cfg(8, false);
    c.desc = GuestAddress(8);
    assert!(matches!(
        SplitRing::new(mem.clone(), c, 0),
        Err(QueueError::Misaligned { .. })
    ));
    let mut c = cfg(8, false);
    c.used = GuestAddress(MEM - 8);
    assert!(matches!(
        SplitRing::new(mem.clone(), c, 0),
        Err(QueueError::RingOutsideMemory { .. })
    ));
    // The largest size fits (overlapping its own rings only hurts the guest itself).
    assert!(SplitRing::new(mem, cfg(MAX_QUEUE_SIZE.into(), true), 0).is_ok());
}

/// Buffers alternating between two regions: the fast paths (which try the region of the
/// last buffer only) hand every other chain to the general path, and frames still arrive
/// intact both ways, with their used lengths.
#[test]
fn buffers_in_two_regions() {
    let mut files = Vec::new();
    for _ in 0..2 {
        let mut f = crate::vhost::memory::test::memfd();
        f.write_all(&vec![0u8; MEM as usize]).unwrap();
        files.push(f);
    }
    let regions = [
        VhostUserMemoryRegion::new(0, MEM, 0, 0),
        VhostUserMemoryRegion::new(MEM, MEM, MEM, 0),
    ];
    let mem = Arc::new(GuestMemoryTable::map(&regions, files).unwrap());
    let m = mem.mem();
    let n = 8u16;
    // Transmit ring at 0 (rings in region 0), receive ring at 0x8000.
    let mut tx = DriverRing::at(1, 16, 0);
    let mut rx = DriverRing::at(0, 16, 0x8000);
    let buf = |i: u16, dir: u64| (u64::from(i % 2)) * MEM + 0x40000 + dir + u64::from(i) * 0x800;
    for i in 0..n {
        let frame: Vec<u8> = (0..60 + usize::from(i))
            .map(|b| b as u8 ^ i as u8)
            .collect();
        let mut chain = vec![0u8; NET_HDR_LEN];
        chain.extend_from_slice(&frame);
        m.write_slice(&chain, GuestAddress(buf(i, 0))).unwrap();
        // Descriptor i, avail slot i, on both rings.
        tx.add_chain(m, &[(buf(i, 0), chain.len() as u32, 0)]);
        rx.add_chain(m, &[(buf(i, 0x20000), 2048, DESC_F_WRITE)]);
    }
    tx.publish(m);
    rx.publish(m);
    let mut txr = SplitRing::new(mem.clone(), tx.config(false), 0).unwrap();
    let mut pkts = vec![Packet::new(); 32];
    let mut cnt = RingCounters::default();
    let (got, _) = txr.dequeue(&mut pkts, &mut cnt);
    assert_eq!(got, usize::from(n), "{:?}", txr.fault());
    for (i, p) in pkts[..got].iter().enumerate() {
        let want: Vec<u8> = (0..60 + i).map(|b| b as u8 ^ i as u8).collect();
        assert_eq!(p.data(), &want[..], "frame {i} out of region {}", i % 2);
    }
    for mrg in [false, true] {
        // A fresh start of the receive ring each round (used idx back to 0).
        m.write_obj(0u16, GuestAddress(rx.used + used::IDX))
            .unwrap();
        let mut rxr = SplitRing::new(mem.clone(), rx.config(false), 0).unwrap();
        let (taken, _) = rxr.enqueue(&pkts[..got], mrg, &mut cnt);
        assert_eq!(taken, got, "{:?}", rxr.fault());
        for i in 0..n {
            let mut b = vec![0u8; NET_HDR_LEN + 60 + usize::from(i)];
            m.read_slice(&mut b, GuestAddress(buf(i, 0x20000))).unwrap();
            assert_eq!(&b[NET_HDR_LEN..], pkts[usize::from(i)].data());
            assert_eq!(u16::from_le_bytes([b[10], b[11]]), 1, "num_buffers");
            let (_, used) = rx.used_elem(m, i);
            assert_eq!(used as usize, b.len(), "used length of chain {i}");
        }
        assert!(rxr.fault().is_none());
    }
    assert!(txr.fault().is_none());
    assert_eq!(cnt.dropped_bad_length + cnt.dropped_too_small, 0);
}

/// The virtio-net header in front of each transmitted frame becomes the packet's offload
/// request only when the driver acked `VIRTIO_NET_F_CSUM` (the handler sets the ring so),
/// on the one-descriptor fast path and on the general walk alike; the receive path writes a
/// packet's request back as the guest's header.
#[test]
fn transmit_headers_are_read_only_with_csum_and_written_back_on_receive() {
    let hdr = VirtioNetHdr {
        flags: VirtioNetHdr::F_NEEDS_CSUM,
        gso_type: VirtioNetHdr::GSO_TCPV4,
        hdr_len: 54,
        gso_size: 1448,
        csum_start: 34,
        csum_offset: 16,
        num_buffers: 0,
    };
    let frame: Vec<u8> = (0..100u8).collect();
    for offloads in [false, true] {
        let mem = table();
        let m = mem.mem();
        let mut tx = DriverRing::at(1, 16, 0);
        let mut chain = hdr.to_bytes().to_vec();
        chain.extend_from_slice(&frame);
        m.write_slice(&chain, GuestAddress(0x40000)).unwrap();
        // One descriptor (the fast path), then header and frame apart (the general walk).
        tx.add_chain(m, &[(0x40000, chain.len() as u32, 0)]);
        tx.add_chain(
            m,
            &[
                (0x40000, NET_HDR_LEN as u32, 0),
                (0x40000 + NET_HDR_LEN as u64, frame.len() as u32, 0),
            ],
        );
        tx.publish(m);
        let mut txr = SplitRing::new(mem.clone(), tx.config(false), 0).unwrap();
        txr.set_tx_offloads(offloads);
        let mut pkts = vec![Packet::new(); 4];
        let mut cnt = RingCounters::default();
        assert_eq!(txr.dequeue(&mut pkts, &mut cnt).0, 2, "{:?}", txr.fault());
        let want = if offloads {
            Offload::from_header(&hdr)
        } else {
            Offload::NONE
        };
        for p in &pkts[..2] {
            assert_eq!(p.data(), &frame[..]);
            assert_eq!(*p.offload(), want, "tx_offloads {offloads}");
        }
        // Back to a guest: the request is its header (hdr_len 0, num_buffers 1).
        let mut rx = DriverRing::at(0, 16, 0x8000);
        rx.add_chain(m, &[(0x60000, 2048, DESC_F_WRITE)]);
        rx.publish(m);
        let mut rxr = SplitRing::new(mem.clone(), rx.config(false), 0).unwrap();
        assert_eq!(rxr.enqueue(&pkts[..1], false, &mut cnt).0, 1);
        let mut written = [0u8; NET_HDR_LEN];
        m.read_slice(&mut written, GuestAddress(0x60000)).unwrap();
        assert_eq!(written, want.header_bytes(1));
    }
}

/// A transmit burst stops once its frames amount to `BURST_WORK` (bytes, and `SEGMENT_WORK`
/// per segment a request asks for); the rest stay on the ring for the next bursts, in order.
#[test]
fn a_transmit_burst_stops_at_its_work_budget() {
    const LEN: usize = 64 * 1024;
    let tso = |gso_size| VirtioNetHdr {
        flags: VirtioNetHdr::F_NEEDS_CSUM,
        gso_type: VirtioNetHdr::GSO_TCPV4,
        gso_size,
        csum_start: 34,
        csum_offset: 16,
        ..Default::default()
    };
    // (header, frame length, whether the ring reads headers, frames per burst)
    let cases = [
        (VirtioNetHdr::default(), LEN, false, 8),
        (tso(1448), LEN, false, 8),
        (tso(1448), LEN, true, 6),
        (tso(1), LEN, true, 1),
        (tso(1), 60, true, 18),
        (VirtioNetHdr::default(), 9000, true, 32),
    ];
    for (hdr, len, offloads, per_burst) in cases {
        let mem = table();
        let m = mem.mem();
        let mut chain = hdr.to_bytes().to_vec();
        chain.extend((0..len).map(|b| b as u8));
        m.write_slice(&chain, GuestAddress(0x40000)).unwrap();
        let mut tx = DriverRing::at(1, 64, 0);
        for _ in 0..64 {
            tx.add_chain(m, &[(0x40000, chain.len() as u32, 0)]);
        }
        tx.publish(m);
        let mut txr = SplitRing::new(mem.clone(), tx.config(false), 0).unwrap();
        txr.set_tx_offloads(offloads);
        let mut pkts = vec![Packet::new(); 32];
        let mut cnt = RingCounters::default();
        let what = format!(
            "gso_size {}, {len} bytes, offloads {offloads}",
            hdr.gso_size
        );
        let mut taken = 0;
        while taken < 64 {
            let (got, _) = txr.dequeue(&mut pkts, &mut cnt);
            assert_eq!(
                got,
                per_burst.min(64 - taken),
                "{what}: burst after {taken}"
            );
            assert!(pkts[..got].iter().all(|p| p.len() == len), "{what}");
            taken += got;
        }
        assert_eq!(txr.dequeue(&mut pkts, &mut cnt).0, 0, "{what}");
        assert!(txr.fault().is_none(), "{what}: {:?}", txr.fault());
        assert_eq!(cnt.packets, 64, "{what}");
    }
}

/// A tiny xorshift generator: reproducible garbage without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Random descriptor tables, avail rings and indices: the ring moves frames or breaks,
/// but never panics, and every frame it produces has a sane length.
#[test]
fn garbage_rings_never_panic() {
    let mem = table();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut pkts = vec![Packet::new(); 32];
    let out: Vec<Packet> = (0..32)
        .map(|i| {
            let mut p = Packet::new();
            p.copy_from(&vec![i as u8; 60 + 50 * i]);
            p
        })
        .collect();
    let mut broken = 0;
    for round in 0..300 {
        let size = 1u32 << (rng.next() % 5 + 2);
        // Descriptors pointing mostly into memory, sometimes anywhere.
        for i in 0..u64::from(size) {
            let addr = if rng.next().is_multiple_of(8) {
                rng.next()
            } else {
                0x30000 + rng.next() % (MEM - 0x30000)
            };
            let len = match rng.next() % 4 {
                0 => rng.next() as u32,
                1 => 0,
                _ => (rng.next() % 3000) as u32,
            };
            let d = Descriptor {
                addr,
                len,
                flags: (rng.next() % 8) as u16,
                next: (rng.next() % u64::from(size + 2)) as u16,
            };
            let at = GuestAddress(desc::entry(i as u16));
            mem.mem().write_slice(&d.to_bytes(), at).unwrap();
        }
        for i in 0..u64::from(size) {
            let head = (rng.next() % u64::from(size + 1)) as u16;
            mem.mem()
                .write_obj(head, GuestAddress(0x10000 + avail::entry(i)))
                .unwrap();
        }
        let avail_idx = (rng.next() % u64::from(2 * size)) as u16;
        let at = GuestAddress(0x10000 + avail::IDX);
        mem.mem().write_obj(avail_idx, at).unwrap();
        let at = GuestAddress(0x20000 + used::IDX);
        mem.mem().write_obj(0u16, at).unwrap();
        let mut ring = SplitRing::new(mem.clone(), cfg(size, round % 2 == 0), 0).unwrap();
        let mut cnt = RingCounters::default();
        if round % 3 == 0 {
            ring.enqueue(&out, round % 4 == 0, &mut cnt);
        } else {
            let (n, _) = ring.dequeue(&mut pkts, &mut cnt);
            assert!(pkts[..n].iter().all(|p| p.len() <= MAX_FRAME));
        }
        broken += usize::from(ring.fault().is_some());
        assert!(u32::from(ring.last_avail()) <= size);
    }
    assert!(
        broken > 0 && broken < 300,
        "both outcomes exercised: {broken}"
    );
}
