//! Micro-benchmark of our split-virtqueue fast path without the pipeline: one burst of 32
//! 64-byte frames taken from a guest transmit ring (`SplitRing::dequeue`) and written into a
//! guest receive ring (`SplitRing::enqueue`, with and without mergeable buffers), the
//! "guest" being this thread bumping `avail.idx` over pre-built descriptors in a memfd.
//!
//! Single-threaded, so it measures the instructions and copies per frame, not the cache-line
//! traffic between a real guest's core and the PMD's (the end-to-end harness measures that).
//!
//! Run: `cargo bench -p bench --bench vring`. For instruction counts:
//! `valgrind --tool=callgrind target/release/deps/vring-* --bench --profile-time 5`.

use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ports::vhost::memory::GuestMemoryTable;
use ports::vhost::queue::{RingConfig, SplitRing};
use ports::vhost::RingCounters;
use ports::Packet;
use vhost::vhost_user::message::VhostUserMemoryRegion;
use vm_memory::{Bytes, GuestAddress};

const MEM: u64 = 4 << 20;
const QSIZE: u16 = 256;
const BURST: u16 = 32;
const FRAME: usize = 64;
const HDR: u64 = 12;
const TX_RING: u64 = 0;
const RX_RING: u64 = 0x8000;
const TX_BUFS: u64 = 0x10_0000;
const RX_BUFS: u64 = 0x20_0000;
const BUF: u64 = 2048;

fn ring_cfg(base: u64) -> RingConfig {
    RingConfig {
        size: u32::from(QSIZE),
        desc: GuestAddress(base),
        avail: GuestAddress(base + 0x1000),
        used: GuestAddress(base + 0x2000),
        event_idx: true,
    }
}

/// Guest memory with both rings laid out: avail slot `i` names descriptor `i`, and each
/// transmit descriptor holds a 12-byte header and a 64-byte frame.
fn guest() -> Arc<GuestMemoryTable> {
    let t = Arc::new(
        GuestMemoryTable::map(&[VhostUserMemoryRegion::new(0, MEM, 0, 0)], vec![memfd()])
            .expect("map"),
    );
    let m = t.mem();
    let mut frame = [0u8; HDR as usize + FRAME];
    frame[HDR as usize..HDR as usize + 12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
    frame[HDR as usize + 12..HDR as usize + 14].copy_from_slice(&[0x08, 0x00]);
    for i in 0..u64::from(QSIZE) {
        for (ring, bufs, len, flags) in [
            (TX_RING, TX_BUFS, HDR + FRAME as u64, 0u16),
            (RX_RING, RX_BUFS, BUF, 2u16),
        ] {
            let mut d = [0u8; 16];
            d[..8].copy_from_slice(&(bufs + i * BUF).to_le_bytes());
            d[8..12].copy_from_slice(&(len as u32).to_le_bytes());
            d[12..14].copy_from_slice(&flags.to_le_bytes());
            m.write_slice(&d, GuestAddress(ring + 16 * i))
                .expect("desc");
            m.write_obj((i as u16).to_le(), GuestAddress(ring + 0x1000 + 4 + 2 * i))
                .expect("avail");
        }
        m.write_slice(&frame, GuestAddress(TX_BUFS + i * BUF))
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

/// The "driver": makes `BURST` more buffers available on the ring at `base`.
fn post(mem: &GuestMemoryTable, base: u64, idx: &mut u16) {
    *idx = idx.wrapping_add(BURST);
    mem.mem()
        .write_obj(idx.to_le(), GuestAddress(base + 0x1000 + 2))
        .expect("avail idx");
}

fn bench_vring(c: &mut Criterion) {
    let mut g = c.benchmark_group("vring");
    g.throughput(Throughput::Elements(u64::from(BURST)));
    for mrg in [true, false] {
        let mem = guest();
        let mut tx = SplitRing::new(mem.clone(), ring_cfg(TX_RING), 0).expect("tx ring");
        let mut rx = SplitRing::new(mem.clone(), ring_cfg(RX_RING), 0).expect("rx ring");
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
                post(&mem, TX_RING, &mut tx_avail);
                post(&mem, RX_RING, &mut rx_avail);
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
    const AVAIL: u64 = 16 * SIZE as u64;
    const USED: u64 = AVAIL + 0x2_0000;
    const TABLE: u64 = 0x20_0000;
    let cfg = RingConfig {
        size: SIZE,
        desc: GuestAddress(RING),
        avail: GuestAddress(AVAIL),
        used: GuestAddress(USED),
        event_idx: true,
    };
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
        let desc = |at: u64, addr: u64, len: u32, flags: u16, next: u16| {
            let mut d = [0u8; 16];
            d[..8].copy_from_slice(&addr.to_le_bytes());
            d[8..12].copy_from_slice(&len.to_le_bytes());
            d[12..14].copy_from_slice(&flags.to_le_bytes());
            d[14..].copy_from_slice(&next.to_le_bytes());
            m.write_slice(&d, GuestAddress(at)).expect("desc");
        };
        let write = if rx { 2u16 } else { 0 };
        for i in 0..SIZE {
            let next = ((i + 1) % SIZE) as u16;
            if rx {
                desc(TABLE + 16 * u64::from(i), 0x30_0000, 0, write | 1, next);
            } else {
                desc(RING + 16 * u64::from(i), 0x30_0000, 0, 1, next);
            }
        }
        if rx {
            desc(RING, TABLE, 16 * SIZE, 4, 0);
        }
        let mut ring = SplitRing::new(mem.clone(), cfg, 0).expect("ring");
        let mut pkts = packets_of(FRAME);
        let mut cnt = RingCounters::default();
        g.bench_function(name, |b| {
            b.iter(|| {
                // Keep the whole ring available: every entry a hostile chain.
                let idx = ring.last_avail().wrapping_add(SIZE as u16);
                m.write_obj(idx.to_le(), GuestAddress(AVAIL + 2))
                    .expect("avail idx");
                let n = if rx {
                    ring.enqueue(&pkts, mrg, &mut cnt).0
                } else {
                    ring.dequeue(&mut pkts, &mut cnt).0
                };
                black_box(n);
            })
        });
        assert!(ring.fault().is_none(), "{:?}", ring.fault());
        assert!(cnt.guest_errors > 0 && cnt.packets == 0);
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
    targets = bench_vring, bench_hostile
}
criterion_main!(benches);
