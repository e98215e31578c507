//! The frontend's memory table: validating and mapping `SET_MEM_TABLE` regions, and translating
//! frontend virtual addresses (the vring addresses QEMU sends) to guest physical addresses.
//!
//! Every region is checked against its fd before it is mapped:
//! - the file must live in memory: tmpfs (memfds, `/dev/shm`) or hugetlbfs. A file on a disk
//!   or a FUSE file system would let a page fault in a PMD wait on I/O, or on a FUSE server the
//!   tenant runs;
//! - the bytes `[offset, offset + size)` must lie inside the file as `fstat` sees it;
//! - all regions together may not exceed the port's `max_guest_memory` (a sparse file of many
//!   TiB would otherwise be mapped as is, and our writes into its holes charged to us).
//!
//! Memfds get `F_SEAL_SHRINK` first (where the seal can still be added), so the size we
//! checked cannot shrink afterwards; the seal is added *before* the `fstat`, so there is no
//! window between check and seal. Files that cannot be sealed (hugetlbfs, unsealable memfds,
//! tmpfs files) can still be truncated under us: every mapping is registered with
//! [`super::sigbus`], whose handler turns the fault into a broken ring for that port alone.
//!
//! Packet-path accesses go through [`super::hostmem::HostRegion`]: one range check, then a
//! plain copy or an atomic (the only `unsafe` of the vhost path, kept in that file). Everything
//! else uses vm-memory's bounds-checked accessors.

use std::cell::Cell;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{fence, AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use tracing::debug;

use super::hostmem::HostRegion;
use super::sigbus::{self, Registration};
use nix::sys::statfs::{fstatfs, HUGETLBFS_MAGIC, TMPFS_MAGIC};
use vhost::vhost_user::message::VhostUserMemoryRegion;
use vm_memory::{
    Bytes, FileOffset, GuestAddress, GuestMemoryMmap, GuestMemoryRegion, GuestRegionMmap,
    MmapRegion, VolatileMemory,
};

/// The most regions a table may hold (vhost-user sends at most 8 with `SET_MEM_TABLE`; QEMU
/// with memory hotplug can use more through other messages, which we do not offer).
pub const MAX_REGIONS: usize = 64;
/// The default bound on one port's guest memory (all regions together): 4 TiB, more than
/// any VM a compute node runs.
pub const DEFAULT_MAX_GUEST_MEMORY: u64 = 4 << 40;

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
    /// The regions add up to more than the port allows.
    #[error("memory table maps {total:#x} bytes, over this port's max_guest_memory ({max:#x})")]
    TooLarge {
        /// Bytes the table asks for.
        total: u64,
        /// The port's bound.
        max: u64,
    },
    /// A region's file is not in memory (tmpfs or hugetlbfs).
    #[error("region {index}: its file is on a {fs} file system, not tmpfs or hugetlbfs")]
    NotInMemory {
        /// Region index in the message.
        index: usize,
        /// The file system's magic number, in hex.
        fs: String,
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
    /// The log's file is not in memory (tmpfs or hugetlbfs).
    #[error("dirty log's file is on a {0} file system, not tmpfs or hugetlbfs")]
    NotInMemory(String),
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
    /// Dropped before `map`: unregistered while still mapped.
    _fault: Option<Registration>,
    map: MmapRegion,
    poison: Arc<AtomicBool>,
}

impl DirtyLog {
    /// Checks the area against its file (like a memory region) and maps it.
    pub fn map(size: u64, offset: u64, file: File) -> Result<DirtyLog, LogError> {
        let bad = LogError::BadRange { size, offset };
        if size == 0 || size > MAX_LOG_SIZE {
            return Err(bad);
        }
        let end = offset.checked_add(size).ok_or(bad)?;
        in_memory(&file)
            .map_err(|e| LogError::Map(e.into()))?
            .map_or(Ok(()), |fs| Err(LogError::NotInMemory(fs)))?;
        seal_shrink(&file);
        let meta = file.metadata().map_err(LogError::Map)?;
        let file_len = meta.len();
        if end > file_len {
            return Err(LogError::PastEof { file_len });
        }
        let page = sigbus::page_size(meta.blksize());
        let map = MmapRegion::from_file(FileOffset::new(file, offset), size as usize)
            .map_err(|e| LogError::Map(std::io::Error::other(e)))?;
        let poison = Arc::new(AtomicBool::new(false));
        let fault = sigbus::register(map.as_ptr(), map.size(), page, &poison);
        Ok(DirtyLog {
            _fault: fault,
            map,
            poison,
        })
    }

    /// True once the log's file was truncated under us (see [`super::sigbus`]).
    #[inline]
    pub fn poisoned(&self) -> bool {
        self.poison.load(Ordering::Relaxed)
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

/// `None` when `file` lives in memory (tmpfs, which holds memfds, or hugetlbfs); otherwise
/// the file system's magic number, in hex.
fn in_memory(file: &File) -> nix::Result<Option<String>> {
    let fs = fstatfs(file.as_fd())?.filesystem_type();
    Ok((fs != TMPFS_MAGIC && fs != HUGETLBFS_MAGIC).then(|| format!("{:#x}", fs.0)))
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
    /// Dropped first: the regions are unregistered from the SIGBUS handler while mapped.
    _faults: Vec<Registration>,
    /// Raised by the SIGBUS handler when a region's file was truncated under us.
    poison: Arc<AtomicBool>,
    mem: GuestMemoryMmap,
    /// The same regions, sorted by guest physical address. Kept alive here: `hosts` points
    /// into their mappings.
    regions: Vec<Arc<GuestRegionMmap>>,
    /// Raw views of `regions`, same order.
    hosts: Vec<HostRegion>,
    vas: Vec<VaRange>,
}

impl GuestMemoryTable {
    /// Validates `regions` against `files` (one fd per region, in order) and maps them, up to
    /// [`DEFAULT_MAX_GUEST_MEMORY`] in all.
    pub fn map(
        regions: &[VhostUserMemoryRegion],
        files: Vec<File>,
    ) -> Result<GuestMemoryTable, MemoryError> {
        GuestMemoryTable::map_limited(regions, files, DEFAULT_MAX_GUEST_MEMORY)
    }

    /// [`GuestMemoryTable::map`] with at most `max_total` bytes in all regions together.
    pub fn map_limited(
        regions: &[VhostUserMemoryRegion],
        files: Vec<File>,
        max_total: u64,
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
        let total = descs
            .iter()
            .try_fold(0u64, |t, d| t.checked_add(d.1))
            .unwrap_or(u64::MAX);
        if total > max_total {
            return Err(MemoryError::TooLarge {
                total,
                max: max_total,
            });
        }

        let poison = Arc::new(AtomicBool::new(false));
        let mut mapped = Vec::with_capacity(descs.len());
        // Declared after `mapped`, so dropped before it on an early return: a region is
        // unregistered while it is still mapped.
        let mut faults = Vec::with_capacity(descs.len());
        for (i, (file, &(gpa, size, _, off))) in files.into_iter().zip(&descs).enumerate() {
            match in_memory(&file) {
                Ok(None) => {}
                Ok(Some(fs)) => return Err(MemoryError::NotInMemory { index: i, fs }),
                Err(e) => {
                    return Err(MemoryError::Stat {
                        index: i,
                        source: e.into(),
                    })
                }
            }
            seal_shrink(&file);
            let meta = file
                .metadata()
                .map_err(|source| MemoryError::Stat { index: i, source })?;
            let file_len = meta.len();
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
            let page = sigbus::page_size(meta.blksize());
            faults.extend(sigbus::register(
                region.as_ptr(),
                region.size(),
                page,
                &poison,
            ));
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
            _faults: faults,
            poison,
            mem,
            regions: mapped,
            hosts,
            vas,
        })
    }

    /// True once a region's file was truncated under us (see [`super::sigbus`]): every ring
    /// on this table must stop.
    #[inline]
    pub fn poisoned(&self) -> bool {
        self.poison.load(Ordering::Relaxed)
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
pub(crate) mod test {
    use super::*;
    use std::io::Write;

    fn file(len: usize) -> File {
        let mut f = memfd();
        f.write_all(&vec![0u8; len]).unwrap();
        f
    }

    /// An empty memfd (guest memory lives in memory; see `in_memory`).
    pub(crate) fn memfd() -> File {
        use nix::sys::memfd::{memfd_create, MFdFlags};
        File::from(memfd_create(c"vswitch-test", MFdFlags::MFD_ALLOW_SEALING).unwrap())
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
        let big =
            GuestMemoryTable::map_limited(&[region(0, 0x2000, 0, 0)], vec![file(0x2000)], 0x1000);
        assert!(matches!(
            big,
            Err(MemoryError::TooLarge {
                total: 0x2000,
                max: 0x1000
            })
        ));
    }

    /// Guest memory must live in memory: a file on a disk file system is refused (a page fault
    /// there would make a PMD wait on I/O).
    #[test]
    fn refuses_files_outside_memory() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let mut f = tempfile::tempfile_in(dir.path()).unwrap();
        f.write_all(&[0u8; 0x1000]).unwrap();
        let fs = fstatfs(f.as_fd()).unwrap().filesystem_type();
        let r = GuestMemoryTable::map(&[region(0, 0x1000, 0, 0)], vec![f]);
        if fs == TMPFS_MAGIC {
            // The checkout itself is on tmpfs: nothing to refuse here.
            assert!(r.is_ok());
        } else {
            assert!(
                matches!(r, Err(MemoryError::NotInMemory { index: 0, .. })),
                "{r:?}"
            );
        }
    }
}
