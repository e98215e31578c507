//! Micro-benchmark of our split-virtqueue fast path without the pipeline: one burst of 32
//! 64-byte frames taken from a guest transmit ring (`SplitRing::dequeue`) and written into a
//! guest receive ring (`SplitRing::enqueue`, with and without mergeable buffers), the
//! "guest" being this thread bumping `avail.idx` over pre-built descriptors in a memfd.
//!
//! The same for the packed ring (`vring_packed`, `vring_packed_hostile`: `PackedRing`,
//! driven by `PackedDriverRing`). A packed driver rewrites every descriptor it makes
//! available (the device wrote its used descriptor over it), so the "guest" refills the ring
//! outside the measured time (`iter_custom`, the clock paused while it writes) and only the
//! device's bursts are timed; the split benchmarks time their one `avail.idx` store too.
//!
//! Single-threaded, so it measures the instructions and copies per frame, not the cache-line
//! traffic between a real guest's core and the PMD's (the end-to-end harness measures that).
//!
//! Run: `cargo bench -p bench --bench vring`. For instruction counts:
//! `valgrind --tool=callgrind target/release/deps/vring-* --bench --profile-time 5`.

use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ports::vhost::memory::GuestMemoryTable;
use ports::vhost::net::NET_HDR_LEN;
use ports::vhost::packed::layout::PackedDesc;
use ports::vhost::packed::PackedRing;
use ports::vhost::split::layout::{desc, Descriptor};
use ports::vhost::split::SplitRing;
use ports::vhost::test_utils::{
    write_desc_at, DriverRing, PackedDriverRing, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE,
};
use ports::vhost::RingCounters;
use ports::Packet;
use vhost::vhost_user::message::VhostUserMemoryRegion;
use vm_memory::{Bytes, GuestAddress};

const MEM: u64 = 4 << 20;
const QSIZE: u16 = 256;
const BURST: u16 = 32;
const FRAME: usize = 64;
const HDR: usize = NET_HDR_LEN;
const TX_RING: u64 = 0;
const RX_RING: u64 = 0x8000;
const TX_BUFS: u64 = 0x10_0000;
const RX_BUFS: u64 = 0x20_0000;
const BUF: u64 = 2048;

/// Guest memory with both rings laid out by the test driver (transmit ring 1, receive ring
/// 0): avail slot `i` names descriptor `i`, and each transmit descriptor holds a 12-byte
/// header and a 64-byte frame. Nothing is published yet.
fn guest() -> (Arc<GuestMemoryTable>, DriverRing, DriverRing) {
    let t = frames();
    let m = t.mem();
    let mut tx = DriverRing::at(1, QSIZE, TX_RING);
    let mut rx = DriverRing::at(0, QSIZE, RX_RING);
    for i in 0..u64::from(QSIZE) {
        tx.add_chain(m, &[(TX_BUFS + i * BUF, (HDR + FRAME) as u32, 0)]);
        rx.add_chain(m, &[(RX_BUFS + i * BUF, BUF as u32, DESC_F_WRITE)]);
    }
    (t, tx, rx)
}

/// Guest memory whose transmit buffer `i` (at `TX_BUFS + i * BUF`) holds a 12-byte header
/// and a 64-byte frame.
fn frames() -> Arc<GuestMemoryTable> {
    let t = Arc::new(
        GuestMemoryTable::map(&[VhostUserMemoryRegion::new(0, MEM, 0, 0)], vec![memfd()])
            .expect("map"),
    );
    let mut frame = [0u8; HDR + FRAME];
    frame[HDR..HDR + 12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
    frame[HDR + 12..HDR + 14].copy_from_slice(&[0x08, 0x00]);
    for i in 0..u64::from(QSIZE) {
        t.mem()
            .write_slice(&frame, GuestAddress(TX_BUFS + i * BUF))
            .expect("frame");
    }
    t
}

/// Guest memory of [`MEM`] bytes in a memfd (guest memory must be tmpfs or hugetlbfs).
fn memfd() -> std::fs::File {
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let f = std::fs::File::from(memfd_create(c"vring-bench", MFdFlags::empty()).expect("memfd"));
    (&f).write_all(&vec![0u8; MEM as usize]).expect("size");
    f
}

/// The "driver": makes `BURST` more buffers available on `ring`.
fn post(mem: &GuestMemoryTable, ring: &DriverRing, idx: &mut u16) {
    *idx = idx.wrapping_add(BURST);
    ring.set_avail_idx(mem.mem(), *idx);
}

fn bench_vring(c: &mut Criterion) {
    let mut g = c.benchmark_group("vring");
    g.throughput(Throughput::Elements(u64::from(BURST)));
    for mrg in [true, false] {
        let (mem, txd, rxd) = guest();
        let mut tx = SplitRing::new(mem.clone(), txd.config(true), 0).expect("tx ring");
        let mut rx = SplitRing::new(mem.clone(), rxd.config(true), 0).expect("rx ring");
        let mut pkts = vec![Packet::new(); usize::from(BURST)];
        let mut cnt = RingCounters::default();
        let (mut tx_avail, mut rx_avail) = (0u16, 0u16);
        let name = if mrg {
            "guest_to_guest_64B_mrg"
        } else {
            "guest_to_guest_64B"
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                post(&mem, &txd, &mut tx_avail);
                post(&mem, &rxd, &mut rx_avail);
                let (n, _) = tx.dequeue(&mut pkts, &mut cnt);
                let (m, _) = rx.enqueue(&pkts[..n], mrg, &mut cnt);
                assert_eq!((n, m), (usize::from(BURST), usize::from(BURST)));
                black_box(&pkts);
            })
        });
        assert!(tx.fault().is_none() && rx.fault().is_none());
        // For instruction counts per frame under callgrind (see the module doc).
        eprintln!("vring/{name}: {} frames each way", cnt.packets / 2);
        assert_eq!(cnt.dropped_bad_length + cnt.dropped_too_small, 0);
    }
    g.finish();
}

/// A hostile guest's ring of the largest size: every avail entry names descriptor 0, an
/// indirect table of 32768 zero-length descriptors chained in a loop (a guest transmit ring:
/// the same chain without the indirection). One burst into (or out of) it against the benign
/// burst above: the bounds (`MAX_CHAIN_DESCS`, `BURST_DESC_BUDGET`) are what keep it close.
fn bench_hostile(c: &mut Criterion) {
    const SIZE: u32 = 32768;
    const RING: u64 = 0;
    const TABLE: u64 = 0x20_0000;
    let driver = DriverRing::at(0, SIZE as u16, RING);
    let mut g = c.benchmark_group("vring_hostile");
    for (name, mrg, rx) in [
        ("rx_burst_empty_chains_mrg", true, true),
        ("rx_burst_empty_chains", false, true),
        ("tx_burst_empty_chains", false, false),
    ] {
        let mem = Arc::new(
            GuestMemoryTable::map(&[VhostUserMemoryRegion::new(0, MEM, 0, 0)], vec![memfd()])
                .expect("map"),
        );
        let m = mem.mem();
        // Avail entries are all 0 (fresh memory): every one names descriptor 0.
        for i in 0..SIZE as u16 {
            let next = ((u32::from(i) + 1) % SIZE) as u16;
            let empty = |flags| Descriptor {
                addr: 0x30_0000,
                len: 0,
                flags,
                next,
            };
            if rx {
                let d = empty(DESC_F_WRITE | DESC_F_NEXT);
                write_desc_at(m, TABLE + desc::entry(i), d.addr, d.len, d.flags, d.next);
            } else {
                driver.write_desc(m, i, empty(DESC_F_NEXT));
            }
        }
        if rx {
            let table = Descriptor {
                addr: TABLE,
                len: desc::table_len(SIZE) as u32,
                flags: DESC_F_INDIRECT,
                next: 0,
            };
            driver.write_desc(m, 0, table);
        }
        let mut ring = SplitRing::new(mem.clone(), driver.config(true), 0).expect("ring");
        let mut pkts = packets_of(FRAME);
        let mut cnt = RingCounters::default();
        g.bench_function(name, |b| {
            b.iter(|| {
                // Keep the whole ring available: every entry a hostile chain.
                let idx = ring.last_avail().wrapping_add(SIZE as u16);
                driver.set_avail_idx(m, idx);
                let n = if rx {
                    ring.enqueue(&pkts, mrg, &mut cnt).0
                } else {
                    ring.dequeue(&mut pkts, &mut cnt).0
                };
                black_box(n);
            })
        });
        assert!(ring.fault().is_none(), "{:?}", ring.fault());
        // (Untouched when a name filter skipped this benchmark.)
        let ran = cnt != RingCounters::default();
        assert!(
            !ran || (cnt.guest_errors > 0 && cnt.packets == 0),
            "{cnt:?}"
        );
    }
    g.finish();
}

/// Guest memory with both packed rings placed where the split ones are (transmit ring 1,
/// receive ring 0) and each transmit buffer holding a 12-byte header and a 64-byte frame;
/// no chain is available yet.
fn packed_guest() -> (Arc<GuestMemoryTable>, PackedDriverRing, PackedDriverRing) {
    let mem = frames();
    let tx = PackedDriverRing::at(1, QSIZE, TX_RING);
    let rx = PackedDriverRing::at(0, QSIZE, RX_RING);
    (mem, tx, rx)
}

/// The packed "driver": makes `bursts` bursts of one-descriptor chains available on both
/// rings, chain `i` of the ring on buffer `i` (as the split benchmark's descriptors).
fn packed_post(
    mem: &GuestMemoryTable,
    tx: &mut PackedDriverRing,
    rx: &mut PackedDriverRing,
    bursts: u16,
) {
    let m = mem.mem();
    for _ in 0..bursts * BURST {
        let i = u64::from(tx.next_avail);
        tx.add_chain(m, &[(TX_BUFS + i * BUF, (HDR + FRAME) as u32, 0)]);
        let i = u64::from(rx.next_avail);
        rx.add_chain(m, &[(RX_BUFS + i * BUF, BUF as u32, DESC_F_WRITE)]);
    }
    tx.publish(m);
    rx.publish(m);
}

fn bench_vring_packed(c: &mut Criterion) {
    let mut g = c.benchmark_group("vring_packed");
    g.throughput(Throughput::Elements(u64::from(BURST)));
    // Bursts the ring holds: the driver refills it whenever the device has emptied it.
    let per_fill = QSIZE / BURST;
    // (mergeable buffers, VIRTIO_F_IN_ORDER: one used descriptor per transmit burst)
    for (mrg, in_order) in [(true, false), (false, false), (false, true)] {
        let (mem, mut txd, mut rxd) = packed_guest();
        let mut tx = PackedRing::new(mem.clone(), txd.config(true), 0x8000).expect("tx ring");
        let mut rx = PackedRing::new(mem.clone(), rxd.config(true), 0x8000).expect("rx ring");
        tx.set_batch_used(in_order);
        let mut pkts = vec![Packet::new(); usize::from(BURST)];
        let mut cnt = RingCounters::default();
        let mut left = 0;
        let name = match (mrg, in_order) {
            (true, _) => "guest_to_guest_64B_mrg",
            (false, false) => "guest_to_guest_64B",
            (false, true) => "guest_to_guest_64B_in_order",
        };
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut t = Instant::now();
                for _ in 0..iters {
                    if left == 0 {
                        total += t.elapsed();
                        packed_post(&mem, &mut txd, &mut rxd, per_fill);
                        left = per_fill;
                        t = Instant::now();
                    }
                    let (n, _) = tx.dequeue(&mut pkts, &mut cnt);
                    let (m, _) = rx.enqueue(&pkts[..n], mrg, &mut cnt);
                    assert_eq!((n, m), (usize::from(BURST), usize::from(BURST)));
                    black_box(&pkts);
                    left -= 1;
                }
                total + t.elapsed()
            })
        });
        assert!(tx.fault().is_none() && rx.fault().is_none());
        eprintln!("vring_packed/{name}: {} frames each way", cnt.packets / 2);
        assert_eq!(cnt.dropped_bad_length + cnt.dropped_too_small, 0);
    }
    g.finish();
}

/// The hostile rings of [`bench_hostile`] in the packed format, 32768 descriptors each and
/// kept full (the driver makes a chain available again for every one the device returned,
/// outside the measured time): receive rings whose every descriptor is an indirect table of
/// 32768 zero-length descriptors, a transmit ring of the same tables, and a transmit ring of
/// chains of 256 zero-length descriptors (the longest a packed chain may be in the ring: not
/// over the cap, so no cooldown; each burst walks as many as its budget allows).
fn bench_hostile_packed(c: &mut Criterion) {
    const SIZE: u16 = 32768;
    const RING: u64 = 0;
    const TABLE: u64 = 0x20_0000;
    const CHAIN: u16 = 256;
    let mut g = c.benchmark_group("vring_packed_hostile");
    for (name, mrg, rx, indirect) in [
        ("rx_burst_empty_chains_mrg", true, true, true),
        ("rx_burst_empty_chains", false, true, true),
        ("tx_burst_empty_tables", false, false, true),
        ("tx_burst_empty_chains", false, false, false),
    ] {
        let mem = Arc::new(
            GuestMemoryTable::map(&[VhostUserMemoryRegion::new(0, MEM, 0, 0)], vec![memfd()])
                .expect("map"),
        );
        let m = mem.mem();
        let empty = |id, flags| PackedDesc {
            addr: 0x30_0000,
            len: 0,
            id,
            flags,
        };
        let dir = if rx { DESC_F_WRITE } else { 0 };
        for i in 0..SIZE {
            let at = GuestAddress(TABLE + u64::from(i) * 16);
            m.write_slice(&empty(0, dir).to_bytes(), at).expect("table");
        }
        // One chain as the driver makes it available: a table, or 256 empty descriptors.
        let chain = |id: u16| -> Vec<PackedDesc> {
            if indirect {
                let len = 16 * u32::from(SIZE);
                vec![PackedDesc {
                    addr: TABLE,
                    len,
                    id,
                    flags: DESC_F_INDIRECT,
                }]
            } else {
                (0..CHAIN)
                    .map(|k| {
                        empty(
                            id,
                            if k + 1 < CHAIN {
                                dir | DESC_F_NEXT
                            } else {
                                dir
                            },
                        )
                    })
                    .collect()
            }
        };
        let mut driver = PackedDriverRing::at(0, SIZE, RING);
        let per_chain = chain(0).len() as u16;
        for c in 0..SIZE / per_chain {
            driver.add_descs(m, &chain(c));
        }
        driver.publish(m);
        let mut ring = PackedRing::new(mem.clone(), driver.config(true), 0x8000).expect("ring");
        let mut pkts = packets_of(FRAME);
        let mut cnt = RingCounters::default();
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut t = Instant::now();
                for _ in 0..iters {
                    let before = ring.last_avail();
                    let n = if rx {
                        ring.enqueue(&pkts, mrg, &mut cnt).0
                    } else {
                        ring.dequeue(&mut pkts, &mut cnt).0
                    };
                    black_box(n);
                    if ring.last_avail() != before {
                        // Keep the whole ring available: every chain returned, again.
                        total += t.elapsed();
                        for d in driver.take_used_descs(m) {
                            driver.add_descs(m, &chain(d.id));
                        }
                        driver.publish(m);
                        t = Instant::now();
                    }
                }
                total + t.elapsed()
            })
        });
        assert!(ring.fault().is_none(), "{:?}", ring.fault());
        // (Untouched when a name filter skipped this benchmark.)
        let ran = cnt != RingCounters::default();
        assert!(
            !ran || (cnt.guest_errors + cnt.dropped_bad_length > 0 && cnt.packets == 0),
            "{cnt:?}"
        );
    }
    g.finish();
}

/// A burst of 64-byte frames to send.
fn packets_of(len: usize) -> Vec<Packet> {
    (0..BURST)
        .map(|_| {
            let mut p = Packet::new();
            assert!(p.copy_from(&vec![0u8; len]));
            p
        })
        .collect()
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_vring, bench_hostile, bench_vring_packed, bench_hostile_packed
}
criterion_main!(benches);
