//! Switch-owned frame buffers with headroom.

/// Bytes kept free in front of a received frame, so encapsulation (VLAN: 4 bytes, VXLAN: 50)
/// prepends without moving the frame.
pub const HEADROOM: usize = 128;
/// Capacity of a new buffer: headroom plus a standard 1518-byte frame, rounded up. A buffer
/// grows (once) when a larger frame lands in it and keeps that size.
pub const DEFAULT_CAPACITY: usize = 2048;
/// The largest frame a buffer holds (a 64 KiB TSO frame plus its Ethernet and VLAN headers).
pub const MAX_FRAME: usize = 65_535 + 18;

/// One frame in switch memory: `buf[start..end]`.
///
/// Buffers are allocated when a PMD starts and then reused burst after burst; moving a frame
/// between an rx burst and a tx batch swaps buffers instead of copying bytes.
#[derive(Clone)]
pub struct Packet {
    buf: Vec<u8>,
    start: usize,
    end: usize,
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
            start: HEADROOM,
            end: HEADROOM,
        }
    }

    /// The frame.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The frame, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }

    /// Frame length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when the packet holds no frame.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Makes room for a received frame of `len` bytes at the default headroom and returns it
    /// for the port to write into. Returns `None` (and leaves the packet empty) when `len`
    /// exceeds [`MAX_FRAME`]. Grows the buffer only when it is too small.
    #[inline]
    pub fn prepare(&mut self, len: usize) -> Option<&mut [u8]> {
        if len > MAX_FRAME {
            self.start = HEADROOM;
            self.end = HEADROOM;
            return None;
        }
        if self.buf.len() < HEADROOM + len {
            self.buf.resize(HEADROOM + len, 0);
        }
        self.start = HEADROOM;
        self.end = HEADROOM + len;
        Some(&mut self.buf[self.start..self.end])
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

    /// Shortens the frame to `len` bytes (no-op if already shorter).
    pub fn truncate(&mut self, len: usize) {
        self.end = self.start + len.min(self.len());
    }

    /// Opens a gap of `n` bytes at offset `off` of the frame by moving the first `off` bytes
    /// towards the headroom, and returns the gap. Used to push a VLAN tag (`off` = 12) or,
    /// with `off` = 0, to prepend an outer header. Returns `None` if `off` is past the end of
    /// the frame; moves the whole frame back only when the headroom is used up.
    pub fn insert(&mut self, off: usize, n: usize) -> Option<&mut [u8]> {
        if off > self.len() || self.len() + n > MAX_FRAME {
            return None;
        }
        if self.start < n {
            // Headroom exhausted (rare: nested encapsulation): shift the frame right.
            let len = self.len();
            let shift = HEADROOM.max(n) - self.start;
            if self.buf.len() < self.end + shift {
                self.buf.resize(self.end + shift, 0);
            }
            self.buf
                .copy_within(self.start..self.end, self.start + shift);
            self.start += shift;
            self.end = self.start + len;
        }
        let new_start = self.start - n;
        self.buf
            .copy_within(self.start..self.start + off, new_start);
        self.start = new_start;
        Some(&mut self.buf[self.start + off..self.start + off + n])
    }

    /// Removes `n` bytes at offset `off` by moving the first `off` bytes towards the end.
    /// Used to pop a VLAN tag (`off` = 12, `n` = 4) or, with `off` = 0, to strip an outer
    /// header. Returns false (frame unchanged) if the range is not inside the frame.
    pub fn remove(&mut self, off: usize, n: usize) -> bool {
        if off.checked_add(n).is_none_or(|e| e > self.len()) {
            return false;
        }
        self.buf
            .copy_within(self.start..self.start + off, self.start + n);
        self.start += n;
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
