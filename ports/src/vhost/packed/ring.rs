//! The packed ring's descriptors as the device reaches them ([`DescRing`]): one check that
//! the view is exactly the ring (16-aligned, `size` descriptors) when the ring starts, then
//! each access by index with one comparison, where going through [`HostRegion`]'s byte
//! offsets checked the range and the alignment again at every load and store (four times a
//! frame; `bench/RESULTS.md` has what it saved).
//!
//! As everywhere in guest memory, no reference to guest bytes is formed: descriptors are
//! copied out, flags are loaded and stored as atomics (§2.7.21: the flags are how driver and
//! device hand a descriptor over).

use std::sync::atomic::{AtomicU16, Ordering};

use super::layout::{desc, is_avail, PackedDesc};
use crate::vhost::hostmem::HostRegion;

/// A started ring's descriptors: `size` entries of 16 bytes at a 16-aligned host address.
#[derive(Debug, Clone, Copy)]
pub(super) struct DescRing {
    region: HostRegion,
    size: u16,
}

impl DescRing {
    /// The view of `region` as a ring of `size` descriptors; `None` unless it is exactly that
    /// long and 16-aligned (as `place` puts it, §2.7.10.1).
    pub fn new(region: HostRegion, size: u16) -> Option<DescRing> {
        let fits = region.byte_len() == desc::ring_len(size.into());
        let aligned = (region.as_ptr() as usize).is_multiple_of(desc::ALIGN as usize);
        (fits && aligned).then_some(DescRing { region, size })
    }

    /// Guest physical address of descriptor `idx` (for the dirty log).
    #[inline(always)]
    pub fn gpa(&self, idx: u16) -> u64 {
        self.region.gpa() + desc::entry(idx)
    }

    /// Host address of descriptor `idx`; `None` past the ring's end (never for a position
    /// the ring keeps: those stay below the size).
    #[inline(always)]
    fn slot(&self, idx: u16) -> Option<*mut u8> {
        // `idx < size`: the 16 bytes lie inside the view (see `new`).
        (idx < self.size).then(|| self.region.as_ptr().wrapping_add(desc::entry(idx) as usize))
    }

    /// The flags field of the descriptor at `slot` (from [`DescRing::slot`]), as an atomic.
    #[inline(always)]
    fn flags_at(&self, slot: *mut u8) -> &AtomicU16 {
        // SAFETY: `slot` is a descriptor inside the live ring view (`slot` checked the index;
        // the view outlives the ring, see `HostRegion::as_ptr`), 16-aligned, so its flags at
        // byte 14 are 2-aligned. Any bit pattern is a valid u16 and the guest accesses flags
        // atomically too (§2.7.21). The reference lives no longer than `&self`.
        unsafe { AtomicU16::from_ptr(slot.add(desc::FLAGS).cast::<u16>()) }
    }

    /// Descriptor `idx` if the driver made it available in the lap whose wrap counter is
    /// `wrap`: its flags loaded with Acquire (pairs with the driver's barrier before it
    /// flips them, §2.7.13.3), then the rest copied; the copy keeps the flags checked.
    #[inline(always)]
    pub fn avail(&self, idx: u16, wrap: bool) -> Option<PackedDesc> {
        let slot = self.slot(idx)?;
        let flags = u16::from_le(self.flags_at(slot).load(Ordering::Acquire));
        if !is_avail(flags, wrap) {
            return None;
        }
        let mut d = Self::copy(slot);
        d.flags = flags;
        Some(d)
    }

    /// Descriptor `idx` as it is now (a chain's later descriptors, ordered by the Acquire
    /// load of its first one's flags); `None` past the end.
    #[inline(always)]
    pub fn read(&self, idx: u16) -> Option<PackedDesc> {
        self.slot(idx).map(Self::copy)
    }

    #[inline(always)]
    fn copy(slot: *mut u8) -> PackedDesc {
        let mut b = [0u8; desc::SIZE as usize];
        // SAFETY: `slot` is a descriptor inside the live ring view (see `flags_at`) and `b` is
        // switch memory: no overlap, no reference into guest memory.
        unsafe { std::ptr::copy_nonoverlapping(slot, b.as_mut_ptr(), b.len()) };
        PackedDesc::from_bytes(&b)
    }

    /// Writes the used descriptor `idx`'s buffer id and length (§2.7.8), and its flags with
    /// Release when `flags` is given (after the id and length, and whatever was written
    /// into the buffers: the driver reads them once it sees the flags).
    #[inline(always)]
    pub fn put_used(&self, idx: u16, id: u16, len: u32, flags: Option<u16>) {
        let Some(slot) = self.slot(idx) else {
            return;
        };
        let mut b = [0u8; 6];
        b[..4].copy_from_slice(&len.to_le_bytes());
        b[4..].copy_from_slice(&id.to_le_bytes());
        // SAFETY: `len` and `id` are bytes 8-13 of a descriptor inside the live ring view (see
        // `flags_at`); `b` is switch memory. Plain writes, as a device does.
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), slot.add(desc::LEN), b.len()) };
        if let Some(flags) = flags {
            self.flags_at(slot).store(flags.to_le(), Ordering::Release);
        }
    }

    /// Stores descriptor `idx`'s flags with Release (the burst's first used descriptor, last).
    #[inline(always)]
    pub fn store_flags(&self, idx: u16, flags: u16) {
        if let Some(slot) = self.slot(idx) {
            self.flags_at(slot).store(flags.to_le(), Ordering::Release);
        }
    }
}

#[cfg(test)]
mod test {
    use std::io::Write;

    use vm_memory::{FileOffset, GuestAddress, GuestRegionMmap, MmapRegion};

    use super::*;
    use crate::vhost::packed::layout::{used_flags, DESC_F_AVAIL, DESC_F_NEXT, DESC_F_USED};

    fn region(len: usize) -> GuestRegionMmap {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&vec![0u8; len]).unwrap();
        let r = MmapRegion::from_file(FileOffset::new(f, 0), len).unwrap();
        GuestRegionMmap::new(r, GuestAddress(0x10000)).unwrap()
    }

    /// Only a view of exactly `size` descriptors at a 16-aligned host address is a ring
    /// (a frontend chooses where its regions map; the guest address alone proves nothing).
    #[test]
    fn a_ring_is_exactly_its_descriptors_16_aligned() {
        let r = region(4096);
        let h = HostRegion::new(&r).unwrap();
        assert!(DescRing::new(h.sub(16, 64).unwrap(), 4).is_some());
        assert!(
            DescRing::new(h.sub(8, 64).unwrap(), 4).is_none(),
            "misaligned"
        );
        assert!(
            DescRing::new(h.sub(16, 48).unwrap(), 4).is_none(),
            "too short"
        );
        assert!(
            DescRing::new(h.sub(16, 80).unwrap(), 4).is_none(),
            "too long"
        );
    }

    /// What the driver writes is read back by index; what the device writes lands in the
    /// descriptor's bytes (id, length, flags) and nowhere else; past the end nothing is read
    /// or written.
    #[test]
    fn descriptors_by_index_both_ways() {
        let r = region(4096);
        let h = HostRegion::new(&r).unwrap();
        let ring = DescRing::new(h.sub(64, 64).unwrap(), 4).unwrap();
        let d = PackedDesc {
            addr: 0x1122_3344_5566_7788,
            len: 1500,
            id: 3,
            flags: DESC_F_AVAIL | DESC_F_NEXT,
        };
        assert!(h.write_gpa(0x10000 + 64 + 32, &d.to_bytes()));
        assert_eq!(ring.avail(2, true), Some(d));
        assert_eq!(ring.avail(2, false), None, "the other lap's");
        assert_eq!(ring.avail(1, false), None, "flags 0: not made available");
        assert_eq!(ring.read(2), Some(d));
        assert_eq!(ring.read(4), None);
        assert_eq!(ring.avail(4, true), None);
        assert_eq!(ring.gpa(2), 0x10000 + 64 + 32);

        ring.put_used(2, 9, 60, None);
        let after = ring.read(2).unwrap();
        assert_eq!(
            (after.addr, after.len, after.id, after.flags),
            (d.addr, 60, 9, d.flags)
        );
        ring.store_flags(2, used_flags(true));
        assert_eq!(ring.read(2).unwrap().flags, DESC_F_AVAIL | DESC_F_USED);
        ring.put_used(1, 7, 0, Some(used_flags(true)));
        let one = ring.read(1).unwrap();
        assert_eq!(
            (one.addr, one.len, one.id, one.flags),
            (0, 0, 7, used_flags(true))
        );
        ring.put_used(4, 7, 0, Some(0xffff));
        ring.store_flags(4, 0xffff);
        let mut rest = [0u8; 64];
        assert!(h.read_gpa(0x10000 + 128, &mut rest));
        assert_eq!(rest, [0u8; 64], "nothing written past the ring");
        let mut before = [0u8; 64];
        assert!(h.read_gpa(0x10000, &mut before));
        assert_eq!(before, [0u8; 64], "nothing written before it");
    }
}
