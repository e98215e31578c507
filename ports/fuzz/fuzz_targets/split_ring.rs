//! The split-ring walk over fuzzed guest memory and ring state.
//!
//! Guest memory is a memfd (as the switch requires), mapped once per process in one of four
//! layouts; each input rewrites its bytes, places a `SplitRing` with a fuzzed size, ring
//! addresses, event-idx and base, and runs a few operations: dequeue and enqueue bursts
//! (mergeable buffers on and off), guest writes between them (a new avail index, say), and
//! kick toggling. Checked, beyond "never panics" (and ASan):
//! - a burst moves at most the frames it was given room for (32, `ports::BURST`), and its
//!   counters add up (`packets` is the frames returned; an enqueue's frames are each sent,
//!   too small, over the cap or not taken for lack of buffers);
//! - a dequeue writes nothing in guest memory but the used ring;
//! - a broken ring moves nothing more.
#![no_main]

use std::cell::RefCell;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use nix::sys::memfd::{memfd_create, MFdFlags};
use ports::packet::MAX_FRAME;
use ports::vhost::memory::{DirtyLog, GuestMemoryTable};
use ports::vhost::split::layout::used;
use ports::vhost::split::{RingConfig, SplitRing};
use ports::vhost::RingCounters;
use ports::{Packet, BURST};
use vhost::vhost_user::message::VhostUserMemoryRegion;
use vm_memory::GuestAddress;

/// One guest memory region: its file, guest physical address and size.
struct Region {
    file: File,
    gpa: u64,
    size: u64,
}

/// A mapped memory table and its regions, in guest address order.
struct Layout {
    table: Arc<GuestMemoryTable>,
    regions: Vec<Region>,
}

/// The layouts an input picks from: one region at 0; two adjacent regions (a buffer may
/// straddle them); one region ending a page below the top of the address space (a region
/// cannot end at 2^64; buffer sums near it wrap); two regions far apart.
const LAYOUTS: [&[(u64, u64)]; 4] = [
    &[(0, 0x2000)],
    &[(0, 0x1000), (0x1000, 0x1000)],
    &[(0xffff_ffff_ffff_d000, 0x2000)],
    &[(0, 0x1000), (0x1_0000_0000, 0x1000)],
];

fn memfd(size: u64) -> File {
    let f = File::from(memfd_create(c"fuzz-guest", MFdFlags::MFD_ALLOW_SEALING).expect("memfd"));
    f.set_len(size).expect("ftruncate");
    f
}

fn layouts() -> &'static [Layout] {
    static L: OnceLock<Vec<Layout>> = OnceLock::new();
    L.get_or_init(|| {
        LAYOUTS
            .iter()
            .map(|spec| {
                let regions: Vec<Region> = spec
                    .iter()
                    .map(|&(gpa, size)| Region {
                        file: memfd(size),
                        gpa,
                        size,
                    })
                    .collect();
                let descs: Vec<VhostUserMemoryRegion> = regions
                    .iter()
                    .enumerate()
                    // Frontend virtual addresses: anything disjoint.
                    .map(|(i, r)| {
                        VhostUserMemoryRegion::new(
                            r.gpa,
                            r.size,
                            0x7f00_0000_0000 + (i as u64) * 0x1_0000_0000,
                            0,
                        )
                    })
                    .collect();
                let files = regions
                    .iter()
                    .map(|r| r.file.try_clone().expect("dup"))
                    .collect();
                let table = GuestMemoryTable::map(&descs, files).expect("a valid table maps");
                Layout {
                    table: Arc::new(table),
                    regions,
                }
            })
            .collect()
    })
}

/// A dirty log covering the layouts' low pages (writes elsewhere are past its end, which it
/// ignores).
fn dirty_log() -> Arc<DirtyLog> {
    static L: OnceLock<Arc<DirtyLog>> = OnceLock::new();
    L.get_or_init(|| Arc::new(DirtyLog::map(0x1000, 0, memfd(0x1000)).expect("log maps")))
        .clone()
}

#[derive(Arbitrary, Debug)]
enum Size {
    /// `1 << (n % 16)`: every valid size.
    Pow(u8),
    /// Anything (0, not a power of two, too large).
    Raw(u32),
}

#[derive(Arbitrary, Debug)]
enum Addr {
    /// An offset from the layout's first region.
    Near(u16),
    /// Any guest address.
    Raw(u64),
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Take frames from the guest: room for `BURST` or fewer.
    Dequeue { room: u8 },
    /// Frames of these lengths into the guest.
    Enqueue { mrg: bool, lens: Vec<u16> },
    /// The guest writes a 16-bit value (an avail index, a descriptor field) at an offset of
    /// the first region.
    Write { at: u16, value: u16 },
    /// The PMD asks for kicks again (and sees whether buffers arrived), or stops them.
    Kicks { enable: bool },
}

#[derive(Arbitrary, Debug)]
struct Input {
    layout: u8,
    size: Size,
    desc: Addr,
    avail: Addr,
    used: Addr,
    event_idx: bool,
    base: u16,
    log: bool,
    ops: Vec<Op>,
    /// Guest memory, regions in order, from their start (the rest is zeros).
    memory: Vec<u8>,
}

thread_local! {
    static PKTS: RefCell<Vec<Packet>> = RefCell::new((0..BURST).map(|_| Packet::new()).collect());
}

/// Rewrites every region: `bytes` from the start of the first one on, zeros after them.
fn fill(layout: &Layout, mut bytes: &[u8]) {
    static ZEROS: [u8; 0x2000] = [0; 0x2000];
    for r in &layout.regions {
        let n = bytes.len().min(r.size as usize);
        r.file
            .write_all_at(&bytes[..n], 0)
            .expect("guest memory write");
        r.file
            .write_all_at(&ZEROS[..r.size as usize - n], n as u64)
            .expect("guest memory write");
        bytes = &bytes[n..];
    }
}

fn snapshot(layout: &Layout) -> Vec<Vec<u8>> {
    layout
        .regions
        .iter()
        .map(|r| {
            let mut b = vec![0u8; r.size as usize];
            r.file.read_exact_at(&mut b, 0).expect("guest memory read");
            b
        })
        .collect()
}

fuzz_target!(|input: Input| {
    let layout = &layouts()[usize::from(input.layout) % LAYOUTS.len()];
    fill(layout, &input.memory);
    let first = layout.regions[0].gpa;
    let addr = |a: &Addr| match *a {
        Addr::Near(off) => GuestAddress(first.wrapping_add(u64::from(off))),
        Addr::Raw(a) => GuestAddress(a),
    };
    let size = match input.size {
        Size::Pow(n) => 1u32 << (n % 16),
        Size::Raw(n) => n,
    };
    let cfg = RingConfig {
        size,
        desc: addr(&input.desc),
        avail: addr(&input.avail),
        used: addr(&input.used),
        event_idx: input.event_idx,
        packed: false,
    };
    let Ok(mut ring) = SplitRing::new(layout.table.clone(), cfg, input.base) else {
        return;
    };
    assert_eq!(ring.config(), cfg);
    if input.log {
        ring.set_log(Some(dirty_log()));
    }
    // The used ring's guest range: the only bytes a dequeue may write.
    let used_start = cfg.used.0;
    let used_end = used_start + used::ring_len(size);
    let mut cnt = RingCounters::default();
    PKTS.with_borrow_mut(|pkts| {
        for op in input.ops.iter().take(8) {
            run(
                &mut ring,
                op,
                pkts,
                &mut cnt,
                layout,
                (used_start, used_end),
            );
        }
    });
});

fn run(
    ring: &mut SplitRing,
    op: &Op,
    pkts: &mut [Packet],
    cnt: &mut RingCounters,
    layout: &Layout,
    used: (u64, u64),
) {
    let broken = ring.fault().is_some();
    let before = *cnt;
    match op {
        Op::Dequeue { room } => {
            let room = usize::from(*room).min(BURST);
            let memory = snapshot(layout);
            let (n, _notify) = ring.dequeue(&mut pkts[..room], cnt);
            assert!(n <= room, "dequeued {n} frames into room for {room}");
            assert_eq!(cnt.packets - before.packets, n as u64);
            let bytes: u64 = pkts[..n].iter().map(|p| p.len() as u64).sum();
            assert_eq!(cnt.bytes - before.bytes, bytes);
            assert!(pkts[..n].iter().all(|p| p.len() <= MAX_FRAME));
            if broken {
                assert_eq!(n, 0, "a broken ring moved frames");
            }
            for (r, old) in layout.regions.iter().zip(memory) {
                let mut now = vec![0u8; r.size as usize];
                r.file
                    .read_exact_at(&mut now, 0)
                    .expect("guest memory read");
                // Region offsets of the used ring (empty when it lies elsewhere).
                let lo = used.0.clamp(r.gpa, r.gpa + r.size) - r.gpa;
                let hi = used.1.clamp(r.gpa, r.gpa + r.size) - r.gpa;
                let (lo, hi) = (lo as usize, hi as usize);
                assert!(
                    old[..lo] == now[..lo] && old[hi..] == now[hi..],
                    "dequeue wrote guest memory outside the used ring {:#x}..{:#x}",
                    used.0,
                    used.1
                );
            }
        }
        Op::Enqueue { mrg, lens } => {
            let n = lens.len().min(BURST);
            for (p, &len) in pkts.iter_mut().zip(&lens[..n]) {
                // Up to 64 KiB frames (MAX_FRAME is a little more): a mergeable frame
                // over many chains.
                let len = usize::from(len).min(MAX_FRAME);
                let dst = p.prepare(len).expect("len <= MAX_FRAME");
                dst.fill(0xa5);
            }
            let (taken, _notify) = ring.enqueue(&pkts[..n], *mrg, cnt);
            assert!(taken <= n, "took {taken} of {n} frames");
            let sent = cnt.packets - before.packets;
            let small = cnt.dropped_too_small - before.dropped_too_small;
            let over = cnt.guest_errors - before.guest_errors;
            let none = cnt.dropped_no_buffers - before.dropped_no_buffers;
            assert_eq!(
                sent + small + over,
                taken as u64,
                "{cnt:?} after {before:?}"
            );
            // Frames not taken count as "no buffers", except when the burst did not start
            // (a broken ring, or one sitting out after a hostile burst): nothing counted.
            assert!(
                none == (n - taken) as u64 || (taken == 0 && none == 0),
                "{none} frames counted as no buffers, {taken} of {n} taken"
            );
            if broken {
                assert_eq!(taken, 0, "a broken ring took frames");
            }
        }
        Op::Write { at, value } => {
            let r = &layout.regions[0];
            let at = u64::from(*at) % (r.size - 1);
            r.file
                .write_all_at(&value.to_le_bytes(), at)
                .expect("guest memory write");
        }
        Op::Kicks { enable } => {
            if *enable {
                let _ = ring.enable_kicks();
            } else {
                ring.disable_kicks();
            }
            let _ = ring.has_pending();
        }
    }
}
