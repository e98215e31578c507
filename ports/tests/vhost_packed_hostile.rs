//! A hostile guest on the packed ring (issue 10's cases, as `vhost_hostile.rs` and
//! `vhost_isolation.rs` test them on the split ring): rings of 32768 entries whose chains are
//! zero-length descriptors or indirect tables as long as the ring cost each burst a bounded
//! time; the port's other direction and a witness port served by the same thread (the PMD
//! here is the test thread) keep forwarding; faults are counted on the hostile port only.

use ports::vhost::test_utils as driver;

use std::time::Duration;

use driver::*;
use ports::vhost::packed::layout::{PackedDesc, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};
use ports::vhost::VhostUserPort;
use ports::{GuestFaults, Port, RxQueue};
use vhost::VhostBackend;
use vm_memory::{Bytes, GuestAddress};

/// How long one burst of a hostile port may take: far above a normal burst (microseconds),
/// far below what an unbounded walk of a 32768-entry ring of 32768-entry tables would take.
const BURST_BOUND: Duration = Duration::from_millis(100);
/// The size of the hostile rings.
const BIG: u16 = 32768;
/// Where they live: the descriptor ring at 2 MiB (512 KiB, then the event areas), indirect
/// tables at 3 MiB (512 KiB); test buffers stay below 2 MiB.
const BIG_RING: u64 = 2 << 20;
const TABLE: u64 = 3 << 20;

ports::attached_rig!(Rig);

fn rig(features: u64) -> Rig {
    Rig(Attached::new(features | PACKED | INDIRECT))
}

impl Rig {
    fn faults(&self) -> GuestFaults {
        self.port.guest_faults().unwrap()
    }

    /// Replaces vring `v` with a fresh 32768-entry packed ring and starts it.
    fn big_ring(&mut self, v: usize) {
        let ring = PackedDriverRing::at(v, BIG, BIG_RING);
        self.g.packed[v] = ring.clone();
        self.g.start_packed_vring(&ring);
    }

    /// Makes one chain of `descs` available on vring `v` (no kick).
    fn offer(&mut self, v: usize, descs: &[PackedDesc]) {
        let g = &mut self.0.g;
        g.packed[v].add_descs(&g.mem, descs);
    }

    /// The guest's receive ring takes a frame.
    fn receives(&mut self, seed: u8) -> bool {
        let a = self.g.alloc(2048);
        self.g.add_chain(0, &[(a, 2048, DESC_F_WRITE)]);
        self.g.publish(0);
        let f = frame(100, seed);
        self.txq.tx_burst(&mut packets(std::slice::from_ref(&f))) == 1
            && self.g.read(a + 12, 100) == f
    }
}

/// A packed witness port: its guest's transmit ring delivers a frame.
struct Witness {
    _d: SockDir,
    _port: VhostUserPort,
    g: Guest,
    rxq: Box<dyn RxQueue>,
}

impl Witness {
    fn new() -> Witness {
        let d = SockDir::new();
        let mut port = VhostUserPort::server(&d.path("witness.sock"), 1).unwrap();
        let g = Guest::connect(&d.path("witness.sock"), 1, PACKED);
        let rxq = port.take_rxq(0).unwrap();
        Witness {
            _d: d,
            _port: port,
            g,
            rxq,
        }
    }

    fn forwards(&mut self, seed: u8) -> bool {
        let f = frame(64, seed);
        let (a, l) = self.g.tx_buffer(&f);
        self.g.add_chain(1, &[(a, l, 0)]);
        self.g.publish(1);
        let mut pkts = burst();
        self.rxq.rx_burst(&mut pkts) == 1 && pkts[0].data() == &f[..]
    }
}

/// A zero-length descriptor with `flags`, under buffer id `id`.
fn empty(id: u16, flags: u16) -> PackedDesc {
    PackedDesc {
        addr: 7 << 19,
        len: 0,
        id,
        flags,
    }
}

/// A 32768-entry guest receive ring whose every descriptor is an indirect table of 32768
/// zero-length descriptors, with and without mergeable buffers; and one of 32768 chains of
/// one zero-length descriptor each, for mergeable frames. Every burst returns promptly, the
/// chains it gave up on come back unused and counted (not a ring fault), nothing is
/// received, and the port's transmit ring and a witness port keep forwarding.
#[test]
fn receive_rings_of_empty_chains_cost_a_bounded_burst() {
    for (mrg, indirect) in [(false, true), (true, true), (true, false)] {
        let mut r = rig(if mrg { MRG } else { 0 });
        let mut witness = Witness::new();
        r.big_ring(0);
        for i in 0..u64::from(BIG) {
            let e = empty(0, DESC_F_WRITE);
            r.g.mem
                .write_slice(&e.to_bytes(), GuestAddress(TABLE + 16 * i))
                .unwrap();
        }
        for i in 0..BIG {
            let d = if indirect {
                PackedDesc {
                    addr: TABLE,
                    len: 16 * u32::from(BIG),
                    id: i,
                    flags: DESC_F_INDIRECT,
                }
            } else {
                empty(i, DESC_F_WRITE)
            };
            r.offer(0, &[d]);
        }
        r.g.publish(0);

        let (mut worst, mut ok) = (Duration::ZERO, true);
        for round in 0..20u8 {
            let (n, took) = r.tx_timed(32);
            worst = worst.max(took);
            assert!(n <= 32);
            ok &= r.forwards(round) && witness.forwards(round);
        }
        let what = format!("mrg={mrg} indirect={indirect}");
        assert!(
            ok,
            "{what}: the transmit ring and the witness keep forwarding"
        );
        assert!(worst < BURST_BOUND, "{what}: worst burst {worst:?}");
        let f = r.faults();
        assert!(f.chains_over_cap > 0, "{what}: {f:?}");
        assert_eq!(
            f.rings_broken, 0,
            "{what}: over the bound is not a ring fault"
        );
        let s = vring_stats(&r.port, 0);
        assert!(
            s.running && s.packed && s.counters.packets == 0,
            "{what}: {s:?}"
        );
        let used = r.g.take_used(0);
        assert!(!used.is_empty() && used.iter().all(|u| u.1 == 0), "{what}");
        eprintln!(
            "{what}: 20 bursts into a hostile 32768-entry packed ring, worst {worst:?}, \
             {} chains over the cap, {} returned",
            f.chains_over_cap,
            used.len()
        );
    }
}

/// A 32768-entry guest transmit ring of chains of `MAX_CHAIN_DESCS` zero-length descriptors
/// (as long as a chain may be): each burst walks a bounded number of them, drops them
/// (shorter than the header) and returns them; the ring is not broken.
#[test]
fn a_transmit_ring_of_empty_chains_costs_a_bounded_burst() {
    let mut r = rig(0);
    let mut witness = Witness::new();
    r.big_ring(1);
    let per_chain = 256;
    for c in 0..BIG / per_chain {
        let chain: Vec<PackedDesc> = (0..per_chain)
            .map(|k| {
                let last = k + 1 == per_chain;
                empty(c, if last { 0 } else { DESC_F_NEXT })
            })
            .collect();
        r.offer(1, &chain);
    }
    r.g.publish(1);
    let (mut worst, mut total, mut ok) = (Duration::ZERO, 0, true);
    for round in 0..20u8 {
        let (n, took) = r.rx_timed();
        worst = worst.max(took);
        total += n;
        ok &= r.receives(round) && witness.forwards(round);
    }
    assert_eq!(total, 0);
    assert!(ok, "the receive ring and the witness keep working");
    assert!(worst < BURST_BOUND, "worst burst {worst:?}");
    let s = vring_stats(&r.port, 1);
    assert!(s.running && !s.broken, "{s:?}");
    let used = r.g.take_used(1);
    assert!(!used.is_empty(), "chains are taken a few per burst");
    assert_eq!(used.len() as u64, s.counters.dropped_bad_length);
    assert!(used.iter().all(|u| u.1 == 0));
    assert_eq!(r.faults().rings_broken, 0);
}

/// One chain of zero-length descriptors as long as the 32768-entry ring: its end cannot be
/// found within `MAX_CHAIN_DESCS` ring descriptors, so the ring breaks (promptly, counted
/// once); the port's receive ring and a witness port keep working.
#[test]
fn a_chain_as_long_as_a_big_ring_breaks_only_that_ring() {
    let mut r = rig(0);
    let mut witness = Witness::new();
    r.big_ring(1);
    let chain: Vec<PackedDesc> = (0..BIG)
        .map(|k| empty(0, if k + 1 == BIG { 0 } else { DESC_F_NEXT }))
        .collect();
    r.offer(1, &chain);
    r.g.publish(1);
    let (n, took) = r.rx_timed();
    assert_eq!(n, 0);
    assert!(took < BURST_BOUND, "{took:?}");
    let s = vring_stats(&r.port, 1);
    assert!(s.broken && !s.running && s.times_broken == 1, "{s:?}");
    assert_eq!(r.rx_timed().0, 0, "stays broken");
    assert_eq!(vring_stats(&r.port, 1).times_broken, 1, "counted once");
    assert!(r.receives(1) && witness.forwards(1));
    assert_eq!(r.faults().rings_broken, 1);
}

/// A broken packed ring restarts where it stopped: GET_VRING_BASE reports the position
/// before the bad chain (wrap counter 1 here), and a restart there with good chains works.
#[test]
fn a_broken_packed_ring_restarts_after_get_vring_base() {
    let mut r = rig(0);
    assert!(r.forwards(1) && r.forwards(2));
    // Every descriptor of the 256-entry ring chained: no end within the ring.
    let chain: Vec<PackedDesc> = (0..QSIZE).map(|_| empty(0, DESC_F_NEXT)).collect();
    let mut bad = r.g.packed[1].clone();
    bad.add_descs(&r.g.mem, &chain);
    bad.publish(&r.g.mem);
    assert_eq!(r.rx_timed().0, 0);
    assert!(vring_stats(&r.port, 1).broken);
    assert_eq!(r.g.fe.get_vring_base(1).unwrap(), 0x8000 | 2);
    // The driver's own state never counted the bad chain: restart from it.
    let ring = r.g.packed[1].clone();
    r.g.start_packed_vring(&ring);
    let s = vring_stats(&r.port, 1);
    assert!(s.running && !s.broken, "{s:?}");
    assert!(r.forwards(3));
}

/// A SET_VRING_BASE past the ring (sent while the ring is stopped, after GET_VRING_BASE) is
/// refused when the ring starts (counted); a good base starts it again.
#[test]
fn a_base_past_the_ring_is_refused_at_start() {
    let mut r = rig(0);
    assert!(r.forwards(1));
    assert_eq!(r.g.fe.get_vring_base(1).unwrap(), 0x8001);
    let ring = r.g.packed[1].clone();
    let before = vring_stats(&r.port, 1).times_broken;
    r.g.start_packed_vring_at(
        &ring,
        VA_BASE + ring.desc,
        VA_BASE + ring.driver,
        VA_BASE + ring.device,
        0x8000 | QSIZE,
    )
    .unwrap();
    let s = vring_stats(&r.port, 1);
    assert!(!s.running && s.times_broken > before, "{s:?}");
    assert_eq!(r.rx_timed().0, 0);
    assert!(r.receives(1), "the other direction goes on");
    r.g.start_packed_vring(&ring);
    assert!(r.forwards(2));
}
