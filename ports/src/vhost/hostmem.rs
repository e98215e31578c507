//! Raw, bounds-checked access to one mapped guest memory region: with the packed ring's
//! descriptor view (`packed::ring`), built on it, the only `unsafe` on the vhost-user
//! packet path.
//!
//! vm-memory's accessors are safe but cost 40-70 instructions per call (a region iterator or
//! slice construction, bitmap hooks, an alignment-dispatched loop for small copies); the split
//! ring makes five to eight such calls per frame (descriptors, header, payload, used element).
//! A [`HostRegion`] keeps what a copy needs (guest start, length, host base) in 24 bytes and
//! does one range check per access before a plain copy or an atomic load/store.
//!
//! What the guest may do concurrently: rewrite any byte of its memory at any time. We never
//! form a Rust reference (`&[u8]`, `&T`) into guest memory; data is copied out with
//! `copy_nonoverlapping` into switch memory before anything looks at it, exactly as
//! vm-memory's own `read_slice` does, and ring indices are read with atomic loads. A torn or
//! changing value is the guest's problem, never ours: every value read is validated before use.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use vm_memory::{GuestMemoryRegion, GuestRegionMmap, MemoryRegionAddress};

/// One mapped region: guest physical `[gpa, gpa + len)` at host address `base`.
#[derive(Debug, Clone, Copy)]
pub struct HostRegion {
    gpa: u64,
    len: u64,
    base: NonNull<u8>,
}

// SAFETY: `base` points into a shared mapping that the memory table owns (it holds the
// `GuestRegionMmap` in an `Arc` for as long as this copy of the pointer lives in the table) and
// every access through it is a copy or an atomic operation, never a reference: sending the
// address to or sharing it with another thread is as safe as sharing `GuestRegionMmap`, which is
// `Send + Sync`.
unsafe impl Send for HostRegion {}
// SAFETY: as for `Send` above.
unsafe impl Sync for HostRegion {}

impl HostRegion {
    /// The raw view of `r`. The caller keeps `r` mapped for as long as the view is used (the
    /// memory table stores both side by side).
    pub fn new(r: &GuestRegionMmap) -> Option<HostRegion> {
        let base = r.get_host_address(MemoryRegionAddress(0)).ok()?;
        Some(HostRegion {
            gpa: r.start_addr().0,
            len: r.len(),
            base: NonNull::new(base)?,
        })
    }

    /// The view of `[off, off + len)` of this region alone (a ring: its accesses are then
    /// checked against the ring's own bounds), or `None` if that range is not inside it.
    pub fn sub(&self, off: u64, len: u64) -> Option<HostRegion> {
        if !self.fits(off, len) {
            return None;
        }
        // `off <= self.len`, which fits in usize: the region is mapped in this process.
        let base = self.base.as_ptr().wrapping_add(off as usize);
        Some(HostRegion {
            gpa: self.gpa.checked_add(off)?,
            len,
            base: NonNull::new(base)?,
        })
    }

    /// Guest physical start.
    #[inline]
    pub fn gpa(&self) -> u64 {
        self.gpa
    }

    /// Bytes in the view.
    #[inline]
    pub fn byte_len(&self) -> u64 {
        self.len
    }

    /// Host address of the view's first byte, for a view with a fixed layout of its own that
    /// checks it once and then reaches records by index (the packed descriptor ring,
    /// `packed::ring`). Valid for [`HostRegion::byte_len`] bytes while the memory table lives.
    #[inline]
    pub fn as_ptr(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// The offset of `gpa` in this region if all of `[gpa, gpa + len)` lies inside it.
    #[inline]
    pub fn offset(&self, gpa: u64, len: u64) -> Option<u64> {
        let off = gpa.checked_sub(self.gpa)?;
        (off.checked_add(len)? <= self.len).then_some(off)
    }

    /// Copies `dst.len()` bytes at guest address `gpa` out of the region. False (nothing
    /// copied) unless the whole range lies inside this region.
    #[inline(always)]
    pub fn read_gpa(&self, gpa: u64, dst: &mut [u8]) -> bool {
        match self.offset(gpa, dst.len() as u64) {
            // SAFETY: `offset` checked that `[off, off + dst.len())` lies inside the mapping,
            // which is live (see `new`); `dst` is switch memory, so the ranges cannot overlap.
            // No reference into guest memory is formed.
            Some(off) => unsafe {
                std::ptr::copy_nonoverlapping(
                    self.base.as_ptr().add(off as usize),
                    dst.as_mut_ptr(),
                    dst.len(),
                );
                true
            },
            None => false,
        }
    }

    /// Copies `src` into the region at guest address `gpa`. False (nothing written) unless
    /// the whole range lies inside this region.
    #[inline(always)]
    pub fn write_gpa(&self, gpa: u64, src: &[u8]) -> bool {
        self.write_gpa2(gpa, src, &[])
    }

    /// Copies `a` and then `b` right after it into the region at guest address `gpa` (a
    /// header and a frame): one range check for both. False (nothing written) unless all of
    /// `a.len() + b.len()` bytes lie inside this region.
    #[inline(always)]
    pub fn write_gpa2(&self, gpa: u64, a: &[u8], b: &[u8]) -> bool {
        let Some(total) = a.len().checked_add(b.len()) else {
            return false;
        };
        match self.offset(gpa, total as u64) {
            // SAFETY: `offset` checked that `[off, off + a.len() + b.len())` lies inside the
            // live mapping (see `new`); `a` and `b` are switch memory, so no range overlaps
            // guest memory. Plain byte writes into guest memory, as a device does.
            Some(off) => unsafe {
                let dst = self.base.as_ptr().add(off as usize);
                std::ptr::copy_nonoverlapping(a.as_ptr(), dst, a.len());
                std::ptr::copy_nonoverlapping(b.as_ptr(), dst.add(a.len()), b.len());
                true
            },
            None => false,
        }
    }

    /// Copies `dst.len()` bytes at offset `off` out of the region. False (nothing copied) if
    /// the range is not inside the region.
    #[inline]
    pub fn read(&self, off: u64, dst: &mut [u8]) -> bool {
        if !self.fits(off, dst.len() as u64) {
            return false;
        }
        // SAFETY: `[off, off + dst.len())` lies inside the mapping (checked just above), the
        // mapping is live (see `new`), and `dst` is switch memory, so the ranges cannot
        // overlap. No reference into guest memory is formed; bytes the guest changes during
        // the copy are copied as found (the caller validates what it parses).
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.as_ptr().add(off as usize),
                dst.as_mut_ptr(),
                dst.len(),
            );
        }
        true
    }

    /// Copies `src` into the region at offset `off`. False (nothing written) if the range is
    /// not inside the region.
    #[inline]
    pub fn write(&self, off: u64, src: &[u8]) -> bool {
        if !self.fits(off, src.len() as u64) {
            return false;
        }
        // SAFETY: in range (checked above), live mapping, and `src` is switch memory: the
        // ranges cannot overlap. The region is guest memory shared writable with the guest;
        // writing plain bytes into it is what a device does.
        unsafe {
            std::ptr::copy_nonoverlapping(
                src.as_ptr(),
                self.base.as_ptr().add(off as usize),
                src.len(),
            );
        }
        true
    }

    /// Atomically loads the little-endian `u16` at offset `off` (0 if it is out of range or
    /// misaligned: ring fields never are, their placement is checked when the ring starts).
    #[inline]
    pub fn load_u16(&self, off: u64, order: Ordering) -> u16 {
        match self.atomic_u16(off) {
            Some(a) => u16::from_le(a.load(order)),
            None => 0,
        }
    }

    /// Atomically stores `v` little-endian at offset `off` (ignored when out of range or
    /// misaligned, see [`HostRegion::load_u16`]).
    #[inline]
    pub fn store_u16(&self, off: u64, v: u16, order: Ordering) {
        if let Some(a) = self.atomic_u16(off) {
            a.store(v.to_le(), order);
        }
    }

    #[inline]
    fn atomic_u16(&self, off: u64) -> Option<&AtomicU16> {
        if !self.fits(off, 2) || !(self.base.as_ptr() as usize + off as usize).is_multiple_of(2) {
            return None;
        }
        // SAFETY: the two bytes lie inside the live mapping and are 2-aligned (checked just
        // above); the mapping outlives `&self` (see `new`). Guest memory is shared with the
        // guest, which accesses ring indices atomically too (virtio §2.6.13: the driver and
        // device exchange them with memory barriers), and `AtomicU16` has no invariant a guest
        // could break: any bit pattern is a valid u16.
        Some(unsafe { AtomicU16::from_ptr(self.base.as_ptr().add(off as usize).cast::<u16>()) })
    }

    #[inline]
    fn fits(&self, off: u64, len: u64) -> bool {
        off.checked_add(len).is_some_and(|end| end <= self.len)
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::io::Write;
    use vm_memory::{FileOffset, GuestAddress, MmapRegion};

    fn region(len: usize, gpa: u64) -> GuestRegionMmap {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&vec![0u8; len]).unwrap();
        let r = MmapRegion::from_file(FileOffset::new(f, 0), len).unwrap();
        GuestRegionMmap::new(r, GuestAddress(gpa)).unwrap()
    }

    #[test]
    fn copies_inside_and_refuses_outside() {
        let r = region(4096, 0x10000);
        let h = HostRegion::new(&r).unwrap();
        assert_eq!(h.gpa(), 0x10000);
        assert_eq!(h.offset(0x10ff0, 16), Some(0xff0));
        assert_eq!(h.offset(0x10ff1, 16), None, "crosses the end");
        assert_eq!(h.offset(0xffff, 1), None, "below the start");
        assert_eq!(h.offset(0x10000, u64::MAX), None, "length overflows");

        assert!(h.write(4090, &[1, 2, 3, 4, 5, 6]));
        let mut b = [0u8; 6];
        assert!(h.read(4090, &mut b));
        assert_eq!(b, [1, 2, 3, 4, 5, 6]);
        // vm-memory sees the same bytes.
        let mut v = [0u8; 6];
        vm_memory::Bytes::read_slice(&r, &mut v, MemoryRegionAddress(4090)).unwrap();
        assert_eq!(v, b);

        assert!(!h.write(4091, &[0; 6]));
        assert!(!h.read(4091, &mut b));
        assert!(!h.read(u64::MAX, &mut b));
        assert!(!h.write(u64::MAX - 2, &[0; 6]));
        assert!(h.read(4096, &mut []), "an empty copy at the end is fine");

        assert!(h.write_gpa(0x10ffa, &[9, 8, 7, 6, 5, 4]));
        assert!(h.read_gpa(0x10ffa, &mut b));
        assert_eq!(b, [9, 8, 7, 6, 5, 4]);
        assert!(!h.write_gpa(0x10ffb, &[0; 6]), "crosses the end");
        assert!(h.write_gpa2(0x10ff8, &[1, 2], &[3, 4, 5, 6, 7, 8]));
        let mut e = [0u8; 8];
        assert!(h.read_gpa(0x10ff8, &mut e));
        assert_eq!(
            e,
            [1, 2, 3, 4, 5, 6, 7, 8],
            "header then frame, back to back"
        );
        assert!(
            !h.write_gpa2(0x10ff9, &[0; 2], &[0; 6]),
            "the pair crosses the end"
        );
        assert!(!h.write_gpa2(0xfff0, &[0; 2], &[]), "below the region");
        assert!(!h.read_gpa(0xfffe, &mut b), "starts below the region");
        assert!(!h.read_gpa(u64::MAX, &mut b));
    }

    #[test]
    fn sub_views_are_bounded_by_their_own_range() {
        let r = region(4096, 0x10000);
        let h = HostRegion::new(&r).unwrap();
        assert!(h.sub(4000, 97).is_none(), "past the end");
        assert!(h.sub(u64::MAX, 2).is_none());
        let v = h.sub(1024, 64).unwrap();
        assert_eq!(v.gpa(), 0x10400);
        assert!(v.write(60, &[7, 8, 9, 10]));
        assert!(
            !v.write(61, &[0; 4]),
            "past the view, though inside the region"
        );
        let mut b = [0u8; 4];
        assert!(h.read(1084, &mut b));
        assert_eq!(b, [7, 8, 9, 10], "the view writes the region's bytes");
        assert!(v.read_gpa(0x1043c, &mut b));
        assert!(!v.read_gpa(0x103ff, &mut [0u8; 1]), "below the view");
    }

    #[test]
    fn atomics_check_range_and_alignment() {
        let r = region(4096, 0);
        let h = HostRegion::new(&r).unwrap();
        h.store_u16(10, 0xbeef, Ordering::Release);
        assert_eq!(h.load_u16(10, Ordering::Acquire), 0xbeef);
        let mut b = [0u8; 2];
        assert!(h.read(10, &mut b));
        assert_eq!(b, 0xbeefu16.to_le_bytes(), "stored little-endian");
        h.store_u16(11, 1, Ordering::Relaxed);
        assert_eq!(h.load_u16(11, Ordering::Relaxed), 0, "misaligned: refused");
        h.store_u16(4095, 1, Ordering::Relaxed);
        assert_eq!(
            h.load_u16(4095, Ordering::Relaxed),
            0,
            "past the end: refused"
        );
        assert_eq!(h.load_u16(u64::MAX, Ordering::Relaxed), 0);
    }
}
