//! What the ring targets (`split_ring`, `packed_ring`) share: guest memory in four layouts,
//! a dirty log, snapshots and guest writes, and the burst checks both ring formats must meet.
//! Each target includes this file with `#[path]`, so it is compiled into both and is not a
//! target itself.

use std::cell::RefCell;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, OnceLock};

use nix::sys::memfd::{memfd_create, MFdFlags};
use ports::packet::MAX_FRAME;
use ports::vhost::memory::{DirtyLog, GuestMemoryTable};
use ports::vhost::RingCounters;
use ports::{Packet, BURST};
use vhost::vhost_user::message::VhostUserMemoryRegion;

/// One guest memory region: its file, guest physical address and size.
pub struct Region {
    pub file: File,
    pub gpa: u64,
    pub size: u64,
}

impl Region {
    /// The offset of `gpa` in this region if all of `[gpa, gpa + len)` lies inside it.
    pub fn offset(&self, gpa: u64, len: u64) -> Option<usize> {
        let off = gpa.checked_sub(self.gpa)?;
        (off.checked_add(len)? <= self.size).then_some(off as usize)
    }
}

/// A mapped memory table and its regions, in guest address order.
pub struct Layout {
    pub table: Arc<GuestMemoryTable>,
    pub regions: Vec<Region>,
}

/// The layouts an input picks from: one region at 0; two adjacent regions (a buffer may
/// straddle them); one region ending a page below the top of the address space (a region
/// cannot end at 2^64; buffer sums near it wrap); two regions far apart.
pub const LAYOUTS: [&[(u64, u64)]; 4] = [
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

/// The [`LAYOUTS`], each mapped once per process.
pub fn layouts() -> &'static [Layout] {
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
pub fn dirty_log() -> Arc<DirtyLog> {
    static L: OnceLock<Arc<DirtyLog>> = OnceLock::new();
    L.get_or_init(|| Arc::new(DirtyLog::map(0x1000, 0, memfd(0x1000)).expect("log maps")))
        .clone()
}

thread_local! {
    /// The switch's frame buffers, one burst's worth, reused across inputs.
    pub static PKTS: RefCell<Vec<Packet>> = RefCell::new((0..BURST).map(|_| Packet::new()).collect());
}

/// Rewrites every region: `bytes` from the start of the first one on, zeros after them.
pub fn fill(layout: &Layout, mut bytes: &[u8]) {
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

/// Every region's bytes, in order.
pub fn snapshot(layout: &Layout) -> Vec<Vec<u8>> {
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

/// `len` bytes at `gpa` in a snapshot, if they lie inside one region.
#[allow(dead_code)] // `packed_ring` reads descriptors back; `split_ring` does not.
pub fn snapshot_at<'a>(
    layout: &Layout,
    snap: &'a [Vec<u8>],
    gpa: u64,
    len: u64,
) -> Option<&'a [u8]> {
    let (r, bytes) = layout
        .regions
        .iter()
        .zip(snap)
        .find(|(r, _)| r.offset(gpa, len).is_some())?;
    let off = r.offset(gpa, len)?;
    Some(&bytes[off..off + len as usize])
}

/// The guest writes `bytes` at `gpa`: the bytes that fall inside a region land, the others
/// are dropped (the guest cannot write outside its memory either).
pub fn write_guest(layout: &Layout, gpa: u64, bytes: &[u8]) {
    if let Some(r) = layout
        .regions
        .iter()
        .find(|r| r.offset(gpa, bytes.len() as u64).is_some())
    {
        let off = r.offset(gpa, bytes.len() as u64).unwrap_or(0);
        r.file
            .write_all_at(bytes, off as u64)
            .expect("guest memory write");
        return;
    }
    // Straddling two regions, or partly outside: byte by byte.
    for (i, b) in bytes.iter().enumerate() {
        let Some(at) = gpa.checked_add(i as u64) else {
            break;
        };
        if let Some(r) = layout.regions.iter().find(|r| r.offset(at, 1).is_some()) {
            let off = r.offset(at, 1).unwrap_or(0);
            r.file
                .write_all_at(&[*b], off as u64)
                .expect("guest memory write");
        }
    }
}

/// Asserts that every guest byte that differs from `old` (a [`snapshot`]) lies where
/// `allowed` says the operation `what` may write; returns the guest addresses that changed.
pub fn assert_writes_within(
    layout: &Layout,
    old: &[Vec<u8>],
    allowed: impl Fn(u64) -> bool,
    what: &str,
) -> Vec<u64> {
    let mut changed = Vec::new();
    for (r, old) in layout.regions.iter().zip(old) {
        let mut now = vec![0u8; r.size as usize];
        r.file
            .read_exact_at(&mut now, 0)
            .expect("guest memory read");
        if now == *old {
            continue;
        }
        for (off, _) in now.iter().zip(old).enumerate().filter(|(_, (a, b))| a != b) {
            let gpa = r.gpa + off as u64;
            assert!(allowed(gpa), "{what} wrote guest memory at {gpa:#x}");
            changed.push(gpa);
        }
    }
    changed
}

/// Checks a dequeue of `n` frames into room for `room` (at most [`BURST`]): no more frames
/// than room, each at most [`MAX_FRAME`] bytes, and `packets`/`bytes` moved by exactly the
/// frames returned.
pub fn check_dequeue(
    n: usize,
    room: usize,
    pkts: &[Packet],
    before: &RingCounters,
    cnt: &RingCounters,
) {
    assert!(room <= BURST);
    assert!(n <= room, "dequeued {n} frames into room for {room}");
    assert_eq!(cnt.packets - before.packets, n as u64);
    let bytes: u64 = pkts[..n].iter().map(|p| p.len() as u64).sum();
    assert_eq!(cnt.bytes - before.bytes, bytes);
    assert!(pkts[..n].iter().all(|p| p.len() <= MAX_FRAME));
}

/// Fills the first `lens.len()` (at most [`BURST`]) packets with frames of these lengths
/// (capped at [`MAX_FRAME`]: up to 64 KiB frames, a mergeable frame over many chains) and
/// returns how many.
pub fn frames(pkts: &mut [Packet], lens: &[u16]) -> usize {
    let n = lens.len().min(BURST);
    for (p, &len) in pkts.iter_mut().zip(&lens[..n]) {
        let len = usize::from(len).min(MAX_FRAME);
        let dst = p.prepare(len).expect("len <= MAX_FRAME");
        dst.fill(0xa5);
    }
    n
}

/// Checks an enqueue of `n` frames that took `taken`: each frame taken was sent, too small
/// or over the cap; the others count as "no buffers", except when the burst did not start (a
/// broken ring, or one sitting out after a hostile burst): nothing counted.
pub fn check_enqueue(n: usize, taken: usize, before: &RingCounters, cnt: &RingCounters) {
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
    assert!(
        none == (n - taken) as u64 || (taken == 0 && none == 0),
        "{none} frames counted as no buffers, {taken} of {n} taken"
    );
}
