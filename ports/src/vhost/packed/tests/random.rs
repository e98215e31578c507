//! Rings of random bytes: random sizes (no power of two needed), starting positions,
//! descriptors (addresses, lengths, ids, every flag bit including AVAIL and USED), indirect
//! tables of random bytes and random driver event areas, over several bursts each, with the
//! driver scribbling between bursts. The device must never panic, and its counters must add
//! up.

use vm_memory::{Bytes, GuestAddress};

use super::{table, MEM};
use crate::packet::{Packet, MAX_FRAME};
use crate::vhost::net::RingCounters;
use crate::vhost::packed::layout::PackedDesc;
use crate::vhost::packed::PackedRing;
use crate::vhost::test_utils::PackedDriverRing;

/// A tiny xorshift generator: reproducible garbage without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Where random indirect tables point: 64 KiB of random bytes.
const GARBAGE: u64 = 0x3_0000;

fn random_desc(rng: &mut Rng, size: u16) -> PackedDesc {
    let addr = match rng.below(8) {
        0 => rng.next(),
        1 => GARBAGE + rng.below(0x1_0000),
        _ => 0x4_0000 + rng.below(MEM - 0x4_0000),
    };
    let len = match rng.below(4) {
        0 => rng.next() as u32,
        1 => 0,
        2 => 16 * rng.below(u64::from(size) + 2) as u32,
        _ => rng.below(3000) as u32,
    };
    // Mostly NEXT/WRITE/INDIRECT and the two wrap bits, sometimes any bits at all.
    let mask = if rng.below(4) == 0 { 0xffff } else { 0x8087 };
    PackedDesc {
        addr,
        len,
        id: rng.below(u64::from(size) + 2) as u16,
        flags: rng.next() as u16 & mask,
    }
}

#[test]
fn garbage_rings_never_panic() {
    let mem = table();
    let m = mem.mem();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut pkts = vec![Packet::new(); 32];
    let out: Vec<Packet> = (0..32)
        .map(|i| {
            let mut p = Packet::new();
            p.copy_from(&vec![i as u8; 60 + 50 * i]);
            p
        })
        .collect();
    let (mut broken, mut moved) = (0, 0);
    for round in 0..400 {
        let size = 1 + rng.below(40) as u16;
        let d = PackedDriverRing::at(round % 2, size, 0);
        for i in 0..size {
            d.write_desc(m, i, random_desc(&mut rng, size));
        }
        for i in 0..0x1_0000 / 8 {
            m.write_obj(rng.next(), GuestAddress(GARBAGE + 8 * i))
                .unwrap();
        }
        d.set_driver_event(m, rng.next() as u16, rng.below(4) as u16);
        let base = rng.below(u64::from(size)) as u16 | (rng.next() as u16 & 0x8000);
        let event_idx = rng.below(2) == 0;
        let mut ring = PackedRing::new(mem.clone(), d.config(event_idx), base).unwrap();
        let (rx, mrg) = (round % 3 == 0, rng.below(2) == 0);
        let mut cnt = RingCounters::default();
        for _ in 0..4 {
            let before = cnt;
            if rx {
                let (taken, _) = ring.enqueue(&out, mrg, &mut cnt);
                let done = (cnt.packets + cnt.dropped_too_small + cnt.guest_errors)
                    - (before.packets + before.dropped_too_small + before.guest_errors);
                assert_eq!(taken as u64, done, "round {round}");
                let none = cnt.dropped_no_buffers - before.dropped_no_buffers;
                // A burst counts every frame one way or another, or (sitting out, broken)
                // none.
                assert!(done + none == out.len() as u64 || done + none == 0);
            } else {
                let (n, _) = ring.dequeue(&mut pkts, &mut cnt);
                assert_eq!(n as u64, cnt.packets - before.packets, "round {round}");
                assert!(pkts[..n].iter().all(|p| p.len() <= MAX_FRAME));
            }
            assert!(ring.last_avail() & 0x7fff < size);
            // The driver scribbles over a few descriptors between bursts.
            for _ in 0..rng.below(4) {
                let i = rng.below(u64::from(size)) as u16;
                d.write_desc(m, i, random_desc(&mut rng, size));
            }
        }
        broken += usize::from(ring.fault().is_some());
        moved += usize::from(cnt.packets > 0);
    }
    assert!(broken > 0 && broken < 400, "both outcomes: {broken} broken");
    assert!(moved > 0, "some frames moved");
}
