//! The frontend's memory table: validating and mapping `SET_MEM_TABLE` regions, and translating
//! frontend virtual addresses (the vring addresses QEMU sends) to guest physical addresses.
//!
//! Every region is checked against its fd before it is mapped: the bytes `[offset, offset +
//! size)` must lie inside the file as `fstat` sees it, or touching the tail of the mapping would
//! raise SIGBUS in a PMD. Memfds get `F_SEAL_SHRINK` first (where the seal can still be added),
//! so the size we checked cannot shrink afterwards; the seal is added *before* the `fstat`, so
//! there is no window between check and seal. For files that cannot be sealed (hugetlbfs,
//! unsealable memfds) a frontend that truncates its own memory can still crash us: DPDK and
//! OVS-DPDK share that risk, and only a SIGBUS handler could close it.
//!
//! Packet-path accesses go through [`super::hostmem::HostRegion`]: one range check, then a
//! plain copy or an atomic (the only `unsafe` of the vhost path, kept in that file). Everything
//! else uses vm-memory's bounds-checked accessors.

use std::cell::Cell;
use std::fs::File;
use std::os::fd::AsFd;
use std::sync::atomic::{fence, AtomicU8, Ordering};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use tracing::debug;

use super::hostmem::HostRegion;
use vhost::vhost_user::message::VhostUserMemoryRegion;
use vm_memory::{
    Bytes, FileOffset, GuestAddress, GuestMemoryMmap, GuestMemoryRegion, GuestRegionMmap,
    MmapRegion, VolatileMemory,
};

/// The most regions a table may hold (vhost-user sends at most 8 with `SET_MEM_TABLE`; QEMU
/// with memory hotplug can use more through other messages, which we do not offer).
pub const MAX_REGIONS: usize = 64;

/// Why a memory table was refused. Every variant is the frontend's fault except
/// [`MemoryError::Map`], which may also be a resource limit on our side.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The table has no region, or more than [`MAX_REGIONS`].
    #[error("memory table has {0} regions (1..={MAX_REGIONS} allowed)")]
    RegionCount(usize),
    /// The number of fds does not match the number of regions.
    #[error("memory table has {regions} regions but {fds} fds")]
    FdCount {
        /// Regions in the message.
        regions: usize,
        /// Fds attached.
        fds: usize,
    },
    /// A region has size 0, or one of its ranges wraps around the address space.
    #[error("region {0}: zero size or an address range that wraps")]
    BadRange(usize),
    /// `offset + size` goes past the end of the region's file.
    #[error("region {index}: offset {offset:#x} + size {size:#x} is past the end of its file ({file_len:#x} bytes)")]
    PastEof {
        /// Region index in the message.
        index: usize,
        /// Offset into the file.
        offset: u64,
        /// Region size.
        size: u64,
        /// File size per fstat.
        file_len: u64,
    },
    /// Two regions overlap in guest physical or frontend virtual address space.
    #[error("regions {0} and {1} overlap")]
    Overlap(usize, usize),
    /// `fstat` on a region's fd failed.
    #[error("region {index}: fstat failed: {source}")]
    Stat {
        /// Region index in the message.
        index: usize,
        /// The error.
        source: std::io::Error,
    },
    /// mmap failed.
    #[error("region {index}: mmap failed: {source}")]
    Map {
        /// Region index in the message.
        index: usize,
        /// The error.
        source: vm_memory::mmap::MmapRegionError,
    },
}

/// Why a dirty log area was refused.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Size 0, larger than [`MAX_LOG_SIZE`], or offset + size wraps.
    #[error("dirty log of {size:#x} bytes at offset {offset:#x} is invalid")]
    BadRange {
        /// Requested size.
        size: u64,
        /// Requested offset.
        offset: u64,
    },
    /// The area goes past the end of its file.
    #[error("dirty log ends past its file ({file_len:#x} bytes)")]
    PastEof {
        /// File size per fstat.
        file_len: u64,
    },
    /// fstat or mmap failed.
    #[error("mapping the dirty log failed: {0}")]
    Map(std::io::Error),
}

impl LogError {
    /// True when the frontend sent something invalid.
    pub fn is_guest_fault(&self) -> bool {
        !matches!(self, LogError::Map(_))
    }
}

/// Bytes of guest memory one bit of the dirty log covers (vhost-user `VHOST_LOG_PAGE`).
pub const LOG_PAGE: u64 = 0x1000;
/// The largest dirty log we map: 1 GiB covers 32 TiB of guest memory.
pub const MAX_LOG_SIZE: u64 = 1 << 30;

/// The frontend's dirty-page bitmap (`SET_LOG_BASE` with LOG_SHMFD): bit `n` says guest page
/// `n` (of [`LOG_PAGE`] bytes, by guest physical address) was written by the backend. While
/// the frontend has acked `VHOST_F_LOG_ALL`, every byte the switch writes into guest memory is
/// marked, so live migration copies it again.
#[derive(Debug)]
pub struct DirtyLog {
    map: MmapRegion,
}

impl DirtyLog {
    /// Checks the area against its file (like a memory region) and maps it.
    pub fn map(size: u64, offset: u64, file: File) -> Result<DirtyLog, LogError> {
        let bad = LogError::BadRange { size, offset };
        if size == 0 || size > MAX_LOG_SIZE {
            return Err(bad);
        }
        let end = offset.checked_add(size).ok_or(bad)?;
        seal_shrink(&file);
        let file_len = file.metadata().map_err(LogError::Map)?.len();
        if end > file_len {
            return Err(LogError::PastEof { file_len });
        }
        let map = MmapRegion::from_file(FileOffset::new(file, offset), size as usize)
            .map_err(|e| LogError::Map(std::io::Error::other(e)))?;
        Ok(DirtyLog { map })
    }

    /// Marks the pages of `[gpa, gpa + len)` dirty. Pages past the end of the log are ignored
    /// (the frontend sized it for the memory it migrates).
    pub fn mark(&self, gpa: u64, len: u64) {
        if len == 0 {
            return;
        }
        // Release: the guest-memory writes being logged are visible before their bits (a
        // migration thread that sees the bit and copies the page copies the new bytes).
        fence(Ordering::Release);
        let first = gpa / LOG_PAGE;
        let last = gpa.saturating_add(len - 1) / LOG_PAGE;
        for page in first..=last {
            let Ok(byte) = usize::try_from(page / 8) else {
                return;
            };
            match self.map.get_atomic_ref::<AtomicU8>(byte) {
                Ok(b) => {
                    b.fetch_or(1 << (page % 8), Ordering::Relaxed);
                }
                Err(_) => return,
            }
        }
    }
}

impl MemoryError {
    /// True when the frontend sent something invalid (as opposed to a failure on our side).
    pub fn is_guest_fault(&self) -> bool {
        !matches!(self, MemoryError::Map { .. } | MemoryError::Stat { .. })
    }
}

/// One region's place in the frontend's virtual address space.
#[derive(Debug, Clone, Copy)]
struct VaRange {
    va: u64,
    size: u64,
    gpa: u64,
}

/// A mapped, validated memory table. Immutable: a new `SET_MEM_TABLE` builds a new one.
///
/// Besides vm-memory's general accessors ([`GuestMemoryTable::mem`]), it offers a faster path
/// for the packet loop: [`GuestMemoryTable::read`]/[`GuestMemoryTable::write`] try the region of
/// the previous access first (a caller-held hint) and then copy through that region's
/// [`HostRegion`] view, skipping vm-memory's per-access machinery.
#[derive(Debug)]
pub struct GuestMemoryTable {
    mem: GuestMemoryMmap,
    /// The same regions, sorted by guest physical address. Kept alive here: `hosts` points
    /// into their mappings.
    regions: Vec<Arc<GuestRegionMmap>>,
    /// Raw views of `regions`, same order.
    hosts: Vec<HostRegion>,
    vas: Vec<VaRange>,
}

impl GuestMemoryTable {
    /// Validates `regions` against `files` (one fd per region, in order) and maps them.
    pub fn map(
        regions: &[VhostUserMemoryRegion],
        files: Vec<File>,
    ) -> Result<GuestMemoryTable, MemoryError> {
        if regions.is_empty() || regions.len() > MAX_REGIONS {
            return Err(MemoryError::RegionCount(regions.len()));
        }
        if files.len() != regions.len() {
            return Err(MemoryError::FdCount {
                regions: regions.len(),
                fds: files.len(),
            });
        }
        // Copy the packed fields out once; the message buffer is ours, but read each once.
        let descs: Vec<(u64, u64, u64, u64)> = regions
            .iter()
            .map(|r| (r.guest_phys_addr, r.memory_size, r.user_addr, r.mmap_offset))
            .collect();
        for (i, &(gpa, size, va, off)) in descs.iter().enumerate() {
            let fits = size != 0
                && usize::try_from(size).is_ok()
                && gpa.checked_add(size).is_some()
                && va.checked_add(size).is_some()
                && off.checked_add(size).is_some();
            if !fits {
                return Err(MemoryError::BadRange(i));
            }
        }
        check_disjoint(&descs, |d| (d.0, d.1))?;
        check_disjoint(&descs, |d| (d.2, d.1))?;

        let mut mapped = Vec::with_capacity(descs.len());
        for (i, (file, &(gpa, size, _, off))) in files.into_iter().zip(&descs).enumerate() {
            seal_shrink(&file);
            let file_len = file
                .metadata()
                .map_err(|source| MemoryError::Stat { index: i, source })?
                .len();
            // Cannot overflow: checked in the loop above.
            if off + size > file_len {
                return Err(MemoryError::PastEof {
                    index: i,
                    offset: off,
                    size,
                    file_len,
                });
            }
            let region = MmapRegion::from_file(FileOffset::new(file, off), size as usize)
                .map_err(|source| MemoryError::Map { index: i, source })?;
            // `GuestRegionMmap::new` fails only if gpa + size overflows: checked above.
            let region =
                GuestRegionMmap::new(region, GuestAddress(gpa)).ok_or(MemoryError::BadRange(i))?;
            mapped.push(Arc::new(region));
        }
        mapped.sort_by_key(|r| r.start_addr());
        let hosts = mapped
            .iter()
            .enumerate()
            .map(|(i, r)| HostRegion::new(r).ok_or(MemoryError::BadRange(i)))
            .collect::<Result<Vec<_>, _>>()?;
        // Disjointness was checked above, so this only fails on an internal error.
        let mem = GuestMemoryMmap::from_arc_regions(mapped.clone())
            .map_err(|_| MemoryError::Overlap(0, 0))?;
        let mut vas: Vec<VaRange> = descs
            .iter()
            .map(|&(gpa, size, va, _)| VaRange { va, size, gpa })
            .collect();
        vas.sort_by_key(|r| r.va);
        Ok(GuestMemoryTable {
            mem,
            regions: mapped,
            hosts,
            vas,
        })
    }

    /// The region holding all of `[gpa, gpa + len)` and the offset of `gpa` in it, trying
    /// region `hint` first (and updating it).
    #[inline]
    pub fn region_of(&self, gpa: u64, len: u64, hint: &Cell<usize>) -> Option<(usize, u64)> {
        let h = hint.get();
        if let Some(off) = self.hosts.get(h).and_then(|r| r.offset(gpa, len)) {
            return Some((h, off));
        }
        let i = self
            .hosts
            .partition_point(|r| r.gpa() <= gpa)
            .checked_sub(1)?;
        let off = self.hosts[i].offset(gpa, len)?;
        hint.set(i);
        Some((i, off))
    }

    /// Region `i` (an index from [`GuestMemoryTable::region_of`]).
    #[inline]
    pub fn region(&self, i: usize) -> &GuestRegionMmap {
        &self.regions[i]
    }

    /// The raw view of region `i` (an index from [`GuestMemoryTable::region_of`]).
    #[inline]
    pub fn host(&self, i: usize) -> &HostRegion {
        &self.hosts[i]
    }

    /// Copies guest memory at `gpa` into `buf`. False if any byte is outside the mapped
    /// regions.
    #[inline(always)]
    pub fn read(&self, buf: &mut [u8], gpa: u64, hint: &Cell<usize>) -> bool {
        // The hinted region first: one range check and a copy, inlined into the ring code.
        if let Some(r) = self.hosts.get(hint.get()) {
            if r.read_gpa(gpa, buf) {
                return true;
            }
        }
        self.read_slow(buf, gpa, hint)
    }

    #[cold]
    #[inline(never)]
    fn read_slow(&self, buf: &mut [u8], gpa: u64, hint: &Cell<usize>) -> bool {
        match self.region_of(gpa, buf.len() as u64, hint) {
            Some((i, off)) => self.hosts[i].read(off, buf),
            // Crossing into an adjacent region (rare): vm-memory's general path.
            None => self.mem.read_slice(buf, GuestAddress(gpa)).is_ok(),
        }
    }

    /// Copies `buf` into guest memory at `gpa`. False if any byte is outside the mapped
    /// regions (bytes inside them may have been written).
    #[inline(always)]
    pub fn write(&self, buf: &[u8], gpa: u64, hint: &Cell<usize>) -> bool {
        if let Some(r) = self.hosts.get(hint.get()) {
            if r.write_gpa(gpa, buf) {
                return true;
            }
        }
        self.write_slow(buf, gpa, hint)
    }

    /// Copies `a` then `b` into guest memory at `gpa`, if all of it lies inside the hinted
    /// region; false (nothing written) otherwise, and the caller takes a general path.
    #[inline(always)]
    pub fn write2(&self, a: &[u8], b: &[u8], gpa: u64, hint: &Cell<usize>) -> bool {
        self.hosts
            .get(hint.get())
            .is_some_and(|r| r.write_gpa2(gpa, a, b))
    }

    #[cold]
    #[inline(never)]
    fn write_slow(&self, buf: &[u8], gpa: u64, hint: &Cell<usize>) -> bool {
        match self.region_of(gpa, buf.len() as u64, hint) {
            Some((i, off)) => self.hosts[i].write(off, buf),
            None => self.mem.write_slice(buf, GuestAddress(gpa)).is_ok(),
        }
    }

    /// The mapped guest memory, addressed by guest physical address.
    pub fn mem(&self) -> &GuestMemoryMmap {
        &self.mem
    }

    /// Translates the frontend virtual range `[va, va + len)` to a guest physical address.
    /// `None` unless the whole range lies inside one region.
    pub fn va_to_gpa(&self, va: u64, len: u64) -> Option<GuestAddress> {
        let end = va.checked_add(len)?;
        let i = self.vas.partition_point(|r| r.va <= va).checked_sub(1)?;
        let r = self.vas[i];
        // r.va <= va by the partition; r.va + r.size cannot overflow (checked at map time).
        (end <= r.va + r.size).then(|| GuestAddress(r.gpa + (va - r.va)))
    }
}

/// Fails with the first pair of overlapping `(start, size)` ranges; sizes are non-zero and
/// `start + size` does not overflow (checked by the caller).
fn check_disjoint<T>(descs: &[T], range: impl Fn(&T) -> (u64, u64)) -> Result<(), MemoryError> {
    let mut idx: Vec<usize> = (0..descs.len()).collect();
    idx.sort_by_key(|&i| range(&descs[i]).0);
    for w in idx.windows(2) {
        let (a_start, a_size) = range(&descs[w[0]]);
        let (b_start, _) = range(&descs[w[1]]);
        if a_start + a_size > b_start {
            return Err(MemoryError::Overlap(w[0], w[1]));
        }
    }
    Ok(())
}

/// Adds `F_SEAL_SHRINK` so the file cannot shrink under our mapping. Files that are not
/// sealable memfds (EINVAL) or whose seals are sealed (EPERM) are left as they are.
fn seal_shrink(file: &File) {
    match fcntl(file.as_fd(), FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK)) {
        Ok(_) => {}
        Err(Errno::EINVAL | Errno::EPERM) => {}
        Err(e) => debug!("F_ADD_SEALS(F_SEAL_SHRINK) failed: {e}"),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::io::Write;

    fn file(len: usize) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&vec![0u8; len]).unwrap();
        f
    }

    fn region(gpa: u64, size: u64, va: u64, off: u64) -> VhostUserMemoryRegion {
        VhostUserMemoryRegion::new(gpa, size, va, off)
    }

    #[test]
    fn maps_and_translates() {
        let t = GuestMemoryTable::map(
            &[
                region(0, 0x1000, 0x7000_0000, 0),
                region(0x10_0000, 0x2000, 0x6000_0000, 0x1000),
            ],
            vec![file(0x1000), file(0x3000)],
        )
        .unwrap();
        assert_eq!(t.va_to_gpa(0x7000_0010, 16), Some(GuestAddress(0x10)));
        assert_eq!(t.va_to_gpa(0x6000_1ff0, 16), Some(GuestAddress(0x10_1ff0)));
        assert_eq!(t.va_to_gpa(0x6000_1ff8, 16), None, "crosses the region end");
        assert_eq!(t.va_to_gpa(0x5fff_ffff, 1), None);
        assert_eq!(t.va_to_gpa(u64::MAX, 2), None);
    }

    #[test]
    fn refuses_bad_tables() {
        let past_eof = GuestMemoryTable::map(&[region(0, 0x2000, 0, 0)], vec![file(0x1000)]);
        assert!(matches!(past_eof, Err(MemoryError::PastEof { .. })));
        let overlap = GuestMemoryTable::map(
            &[region(0, 0x2000, 0, 0), region(0x1000, 0x1000, 0x10000, 0)],
            vec![file(0x2000), file(0x2000)],
        );
        assert!(matches!(overlap, Err(MemoryError::Overlap(..))));
        let va_overlap = GuestMemoryTable::map(
            &[region(0, 0x1000, 0, 0), region(0x10000, 0x1000, 0x800, 0)],
            vec![file(0x1000), file(0x1000)],
        );
        assert!(matches!(va_overlap, Err(MemoryError::Overlap(..))));
        let wrap = GuestMemoryTable::map(&[region(u64::MAX, 2, 0, 0)], vec![file(0x1000)]);
        assert!(matches!(wrap, Err(MemoryError::BadRange(0))));
        let zero = GuestMemoryTable::map(&[region(0, 0, 0, 0)], vec![file(0x1000)]);
        assert!(matches!(zero, Err(MemoryError::BadRange(0))));
        assert!(GuestMemoryTable::map(&[], vec![]).is_err());
        assert!(past_eof.unwrap_err().is_guest_fault());
    }
}
