//! Switch-owned frame buffers with headroom.

use crate::offload::{Offload, VirtioNetHdr};

/// Bytes kept free in front of a received frame, so encapsulation (VLAN: 4 bytes, VXLAN: 50)
/// prepends without moving the frame.
pub const HEADROOM: usize = 128;
/// Capacity of a new buffer: headroom plus a standard 1518-byte frame, rounded up. A buffer
/// grows (once) when a larger frame lands in it and keeps that size.
pub const DEFAULT_CAPACITY: usize = 2048;
/// The largest frame a buffer holds (a 64 KiB TSO frame plus its Ethernet and VLAN headers).
pub const MAX_FRAME: usize = 65_535 + 18;

/// One frame in switch memory: `buf[start..end]`, and the offload request its source left
/// with it (a guest's virtio-net header; none from any other port).
///
/// Buffers are allocated when a PMD starts and then reused burst after burst; moving a frame
/// between an rx burst and a tx batch swaps buffers instead of copying bytes.
#[derive(Clone)]
pub struct Packet {
    buf: Vec<u8>,
    // u32 (a frame is at most MAX_FRAME bytes): with the 8-byte request the packet stays 40
    // bytes, which every move between a burst and a tx batch swaps.
    start: u32,
    end: u32,
    offload: Offload,
}

impl Default for Packet {
    fn default() -> Self {
        Packet::new()
    }
}

impl core::fmt::Debug for Packet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Packet").field("len", &self.len()).finish()
    }
}

impl Packet {
    /// An empty packet with a [`DEFAULT_CAPACITY`] buffer.
    pub fn new() -> Packet {
        Packet {
            buf: vec![0; DEFAULT_CAPACITY],
            start: HEADROOM as u32,
            end: HEADROOM as u32,
            offload: Offload::NONE,
        }
    }

    /// A packet with no buffer, which allocates nothing: a placeholder while a real one is
    /// elsewhere. It grows a buffer the first time a frame is prepared in it.
    pub const fn empty() -> Packet {
        Packet {
            buf: Vec::new(),
            start: 0,
            end: 0,
            offload: Offload::NONE,
        }
    }

    /// The frame.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start as usize..self.end as usize]
    }

    /// The frame, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start as usize..self.end as usize]
    }

    /// Frame length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    /// True when the packet holds no frame.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// The offload request the frame's source left (none unless a port set one).
    #[inline(always)]
    pub fn offload(&self) -> &Offload {
        &self.offload
    }

    /// Replaces the frame's offload request.
    #[inline]
    pub fn set_offload(&mut self, offload: Offload) {
        self.offload = offload;
    }

    /// Forgets the offload request (the work it asked for is done).
    #[inline]
    pub fn clear_offload(&mut self) {
        self.offload = Offload::NONE;
    }

    /// Makes room for a received frame of `len` bytes at the default headroom and returns it
    /// for the port to write into, with no offload request. Returns `None` (and leaves the
    /// packet empty) when `len` exceeds [`MAX_FRAME`]. Grows the buffer only when it is too
    /// small.
    #[inline]
    pub fn prepare(&mut self, len: usize) -> Option<&mut [u8]> {
        self.make_room(len)?;
        Some(&mut self.buf[HEADROOM..HEADROOM + len])
    }

    /// [`Packet::prepare`] for a frame of `len` bytes that comes behind a virtio-net header:
    /// returns room for both, the header in the headroom just in front of the frame, so a
    /// port copies them in one go and then sets the request the header holds
    /// ([`Packet::set_offload`], [`Offload::from_header_bytes`]).
    #[inline]
    pub fn prepare_with_header(&mut self, len: usize) -> Option<&mut [u8]> {
        self.make_room(len)?;
        Some(&mut self.buf[HEADROOM - VirtioNetHdr::LEN..HEADROOM + len])
    }

    /// The frame placed at `HEADROOM..HEADROOM + len`, the buffer grown if needed, no offload
    /// request; `None` (packet left empty) past [`MAX_FRAME`].
    #[inline(always)]
    fn make_room(&mut self, len: usize) -> Option<()> {
        self.offload = Offload::NONE;
        if len > MAX_FRAME {
            self.set_range(HEADROOM, HEADROOM);
            return None;
        }
        if self.buf.len() < HEADROOM + len {
            self.buf.resize(HEADROOM + len, 0);
        }
        self.set_range(HEADROOM, HEADROOM + len);
        Some(())
    }

    /// Replaces the frame with a copy of `frame`; false (packet left empty) if it is too large.
    #[inline]
    pub fn copy_from(&mut self, frame: &[u8]) -> bool {
        match self.prepare(frame.len()) {
            Some(dst) => {
                dst.copy_from_slice(frame);
                true
            }
            None => false,
        }
    }

    /// Replaces the frame and its offload request with copies of `other`'s; false (packet
    /// left empty) if it is too large.
    #[inline]
    pub fn copy_packet(&mut self, other: &Packet) -> bool {
        let copied = self.copy_from(other.data());
        if copied {
            self.offload = other.offload;
        }
        copied
    }

    /// The frame's place in the buffer (both at most `buf.len()`, which a frame of at most
    /// [`MAX_FRAME`] bytes behind the headroom keeps far below `u32::MAX`).
    #[inline(always)]
    fn set_range(&mut self, start: usize, end: usize) {
        self.start = start as u32;
        self.end = end as u32;
    }

    /// Moves a partial checksum's start with the bytes it points at: `n` bytes were added
    /// (`grew`) or removed in front of `off`.
    #[inline]
    fn shift_offload(&mut self, off: usize, n: usize, grew: bool) {
        let o = &mut self.offload;
        if o.flags & VirtioNetHdr::F_NEEDS_CSUM == 0 || usize::from(o.csum_start) < off {
            return;
        }
        let start = usize::from(o.csum_start);
        let moved = if grew {
            start + n
        } else {
            start.saturating_sub(n)
        };
        // Past u16 only for a frame of more than 64 KiB of headers: the request no longer
        // describes the frame, and an output checks it against the frame again.
        o.csum_start = u16::try_from(moved).unwrap_or(u16::MAX);
    }

    /// Shortens the frame to `len` bytes (no-op if already shorter).
    pub fn truncate(&mut self, len: usize) {
        let start = self.start as usize;
        self.set_range(start, start + len.min(self.len()));
    }

    /// Opens a gap of `n` bytes at offset `off` of the frame by moving the first `off` bytes
    /// towards the headroom, and returns the gap. Used to push a VLAN tag (`off` = 12) or,
    /// with `off` = 0, to prepend an outer header. Returns `None` if `off` is past the end of
    /// the frame; moves the whole frame back only when the headroom is used up. The offload
    /// request's offsets at or after `off` move with their bytes.
    pub fn insert(&mut self, off: usize, n: usize) -> Option<&mut [u8]> {
        if off > self.len() || self.len() + n > MAX_FRAME {
            return None;
        }
        self.shift_offload(off, n, true);
        let (mut start, mut end) = (self.start as usize, self.end as usize);
        if start < n {
            // Headroom exhausted (rare: nested encapsulation): shift the frame right.
            let shift = HEADROOM.max(n) - start;
            if self.buf.len() < end + shift {
                self.buf.resize(end + shift, 0);
            }
            self.buf.copy_within(start..end, start + shift);
            start += shift;
            end += shift;
        }
        let new_start = start - n;
        self.buf.copy_within(start..start + off, new_start);
        self.set_range(new_start, end);
        Some(&mut self.buf[new_start + off..new_start + off + n])
    }

    /// Removes `n` bytes at offset `off` by moving the first `off` bytes towards the end.
    /// Used to pop a VLAN tag (`off` = 12, `n` = 4) or, with `off` = 0, to strip an outer
    /// header. Returns false (frame unchanged) if the range is not inside the frame. The
    /// offload request's offsets after the range move with their bytes.
    pub fn remove(&mut self, off: usize, n: usize) -> bool {
        if off.checked_add(n).is_none_or(|e| e > self.len()) {
            return false;
        }
        self.shift_offload(off + n, n, false);
        let start = self.start as usize;
        self.buf.copy_within(start..start + off, start + n);
        self.start += n as u32;
        true
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn prepare_and_copy() {
        let mut p = Packet::new();
        assert!(p.is_empty());
        assert!(p.copy_from(&[1, 2, 3]));
        assert_eq!(p.data(), &[1, 2, 3]);
        assert!(p.prepare(MAX_FRAME + 1).is_none());
        assert!(p.is_empty());
        // A jumbo frame grows the buffer once.
        let big = vec![7u8; 9000];
        assert!(p.copy_from(&big));
        assert_eq!(p.data(), &big[..]);
    }

    #[test]
    fn insert_and_remove_vlan_sized_gap() {
        let mut p = Packet::new();
        let frame: Vec<u8> = (0..20).collect();
        p.copy_from(&frame);
        p.insert(12, 4)
            .unwrap()
            .copy_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
        let mut want = frame[..12].to_vec();
        want.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
        want.extend_from_slice(&frame[12..]);
        assert_eq!(p.data(), &want[..]);
        assert!(p.remove(12, 4));
        assert_eq!(p.data(), &frame[..]);
        assert!(!p.remove(18, 4));
        assert!(p.insert(21, 1).is_none());
    }

    #[test]
    fn the_header_lands_in_the_headroom_and_becomes_the_request() {
        assert_eq!(std::mem::size_of::<Packet>(), 40, "what a swap moves");
        let mut p = Packet::new();
        let hdr = VirtioNetHdr {
            flags: VirtioNetHdr::F_NEEDS_CSUM,
            hdr_len: 54,
            csum_start: 34,
            csum_offset: 16,
            ..Default::default()
        };
        let want = Offload::from_header(&hdr);
        let dst = p.prepare_with_header(60).unwrap();
        assert_eq!(dst.len(), VirtioNetHdr::LEN + 60);
        dst[..VirtioNetHdr::LEN].copy_from_slice(&hdr.to_bytes());
        dst[VirtioNetHdr::LEN..].fill(7);
        let header = *dst.first_chunk().unwrap();
        p.set_offload(Offload::from_header_bytes(&header));
        assert_eq!(*p.offload(), want);
        assert_eq!(p.data(), &[7; 60]);
        // A copy carries it; a frame prepared anew has none.
        let mut q = Packet::new();
        assert!(q.copy_packet(&p));
        assert_eq!(*q.offload(), want);
        assert!(q.copy_from(&[1, 2, 3]));
        assert!(!q.offload().requests());
        assert!(p.prepare(10).is_some());
        assert!(!p.offload().requests());
        // The placeholder grows a buffer when used.
        let mut e = Packet::empty();
        assert!(e.is_empty());
        assert!(e.copy_from(&[5; 100]));
        assert_eq!(e.data(), &[5; 100]);
    }

    #[test]
    fn a_vlan_tag_moves_the_request_offsets_with_the_headers() {
        let mut p = Packet::new();
        p.copy_from(&[0; 100]);
        let o = Offload {
            flags: VirtioNetHdr::F_NEEDS_CSUM,
            gso_type: VirtioNetHdr::GSO_TCPV4,
            gso_size: 10,
            csum_start: 34,
            csum_offset: 16,
        };
        p.set_offload(o);
        p.insert(12, 4).unwrap();
        assert_eq!(p.offload().csum_start, 38);
        assert!(p.remove(12, 4));
        assert_eq!(*p.offload(), o);
        // Bytes added behind the checksum's start leave it where it is.
        p.insert(40, 4).unwrap();
        assert_eq!(p.offload().csum_start, 34);
        // No request: nothing to move.
        p.clear_offload();
        p.insert(0, 50).unwrap();
        assert_eq!(*p.offload(), Offload::NONE);
    }

    #[test]
    fn insert_past_headroom_moves_frame() {
        let mut p = Packet::new();
        p.copy_from(&[9; 10]);
        for _ in 0..5 {
            p.insert(0, 50).unwrap().fill(1);
        }
        assert_eq!(p.len(), 260);
        assert_eq!(&p.data()[250..], &[9; 10]);
        assert!(p.data()[..250].iter().all(|&b| b == 1));
    }
}
