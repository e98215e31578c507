//! The UMEM: one anonymous mapping cut into fixed-size frames that the kernel and the switch
//! hand back and forth through the fill/rx and tx/completion rings.
//!
//! Ownership of a frame is decided by the ring protocol, never by a Rust reference: a frame
//! offered on the fill or tx ring belongs to the kernel until it comes back on the rx or
//! completion ring. The switch only touches frames it owns, and only through
//! [`UmemArea::read`] / [`UmemArea::write`], which bounds-check every access and copy with raw
//! pointers (no `&[u8]` into kernel-shared memory is ever formed).

use std::io;
use std::ptr::NonNull;

/// Bytes per frame. A power of two (aligned chunk mode), so a frame's base is `addr & !(size-1)`.
pub const FRAME_SIZE: u32 = 4096;

/// An anonymous, page-aligned mapping used as the UMEM of one socket.
pub(crate) struct UmemArea {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; it is not tied to a thread. Access
// goes through `read`/`write`, which only touch frames the caller owns per the ring protocol
// (the rx side owns rx frames, the tx side tx frames), so two threads never copy into the same
// bytes at once.
unsafe impl Send for UmemArea {}
// SAFETY: see `Send`: shared access only copies through raw pointers into disjoint frames.
unsafe impl Sync for UmemArea {}

impl UmemArea {
    /// Maps `frames` frames of [`FRAME_SIZE`] bytes, zeroed and populated.
    pub fn new(frames: u32) -> io::Result<UmemArea> {
        let len = frames as usize * FRAME_SIZE as usize;
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty UMEM"));
        }
        // SAFETY: an anonymous private mapping at an address the kernel picks; no existing
        // memory is affected. The result is checked against MAP_FAILED below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave NULL"))?;
        Ok(UmemArea { ptr, len })
    }

    /// The whole area, for registering it with the kernel.
    pub fn as_slice_ptr(&self) -> NonNull<[u8]> {
        NonNull::slice_from_raw_parts(self.ptr, self.len)
    }

    /// Copies `dst.len()` bytes starting at UMEM offset `addr` into `dst`. False (nothing
    /// copied) when the range is not inside one frame of the area: a descriptor from the
    /// kernel is checked before it is trusted.
    pub fn read(&self, addr: u64, dst: &mut [u8]) -> bool {
        let Some(off) = self.check(addr, dst.len()) else {
            return false;
        };
        // SAFETY: `check` proved `off + dst.len()` lies inside the mapping (alive while
        // `self` is); the caller owns this frame per the ring protocol, so the kernel is not
        // writing it; `dst` is a distinct Rust buffer, so the ranges do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), dst.as_mut_ptr(), dst.len())
        };
        true
    }

    /// Copies `src` to UMEM offset `addr`. False (nothing copied) when it does not fit in one
    /// frame of the area.
    pub fn write(&self, addr: u64, src: &[u8]) -> bool {
        let Some(off) = self.check(addr, src.len()) else {
            return false;
        };
        // SAFETY: as in `read`: in bounds (checked), a frame the caller owns, and `src` is a
        // Rust buffer outside the mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.as_ptr().add(off), src.len())
        };
        true
    }

    /// `addr` as a byte offset if `[addr, addr+len)` stays inside one frame of the area.
    fn check(&self, addr: u64, len: usize) -> Option<usize> {
        let off = usize::try_from(addr).ok()?;
        let end = off.checked_add(len)?;
        let frame_end = (off & !(FRAME_SIZE as usize - 1)) + FRAME_SIZE as usize;
        (end <= self.len && end <= frame_end).then_some(off)
    }
}

impl Drop for UmemArea {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping made in `new`, unmapped once here. The
        // sockets and rings that used it are dropped first (they are declared before the area
        // in every owner), and the kernel holds its own page references for a registered UMEM.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// The frame containing UMEM offset `addr`.
#[inline]
pub fn frame_base(addr: u64) -> u64 {
    addr & !(u64::from(FRAME_SIZE) - 1)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn read_write_within_frames_only() {
        let area = UmemArea::new(2).unwrap();
        assert_eq!(area.as_slice_ptr().len(), 2 * FRAME_SIZE as usize);
        let data: Vec<u8> = (0..100).collect();
        assert!(area.write(4096 + 10, &data));
        let mut back = vec![0; 100];
        assert!(area.read(4096 + 10, &mut back));
        assert_eq!(back, data);
        // Crossing a frame boundary, past the end, or overflowing: refused.
        assert!(!area.write(4096 - 50, &data));
        assert!(!area.read(2 * 4096 - 10, &mut back));
        assert!(!area.read(u64::MAX - 5, &mut back));
        assert!(!area.write(3 * 4096, &[1]));
        // A full frame fits exactly.
        let full = vec![0xa5; FRAME_SIZE as usize];
        assert!(area.write(0, &full));
        let mut out = vec![0; FRAME_SIZE as usize];
        assert!(area.read(0, &mut out));
        assert_eq!(out, full);
        assert_eq!(frame_base(4096 + 300), 4096);
    }
}
