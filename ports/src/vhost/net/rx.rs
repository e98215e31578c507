//! The guest's receive queue (virtio-net `receiveq`, §5.1.6.3-4): the device writes frames
//! into it. [`SplitRing::enqueue`] writes a burst, each frame behind a virtio-net header,
//! into one chain each, or with `VIRTIO_NET_F_MRG_RXBUF` across as many chains as the frame
//! needs (`num_buffers` in the header says how many).
//!
//! The common chain, one writable descriptor with room for header and frame, takes a fast
//! path; whatever it declines, the general walk reads again and decides on its own read. The
//! chains of one mergeable frame share one [`MAX_CHAIN_DESCS`] bound, so a ring of empty
//! chains costs a bounded number of descriptor reads per frame.

use super::{header, RingCounters, NET_HDR_LEN};
use crate::packet::Packet;
use crate::vhost::split::chain::{Chain, Seg};
use crate::vhost::split::layout::{DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};
#[cfg(doc)]
use crate::vhost::split::MAX_CHAIN_DESCS;
use crate::vhost::split::{QueueError, SplitRing};

impl SplitRing {
    /// Writes `pkts` (header + frame) into a guest receive ring, with or without mergeable
    /// buffers. Returns how many frames were taken (sent, or dropped and counted because a
    /// chain was too small) and whether the driver must be notified. Stops early when the ring
    /// has no buffers left or breaks.
    pub fn enqueue(&mut self, pkts: &[Packet], mrg: bool, cnt: &mut RingCounters) -> (usize, bool) {
        let Some(pending) = self.begin_burst() else {
            return (0, false);
        };
        let over_cap = cnt.guest_errors;
        let avail_end = self.last_avail.wrapping_add(pending);
        let mut used = self.next_used();
        let mut taken = 0;
        for pkt in pkts {
            if self.last_avail != avail_end {
                let head = self.avail_entry(self.last_avail);
                // One descriptor, not counted (as on transmit).
                if let Some(written) = self.write_rx_fast(head, pkt.data()) {
                    self.write_used(used, head, written);
                    used = used.wrapping_add(1);
                    self.last_avail = self.last_avail.wrapping_add(1);
                    cnt.packets += 1;
                    cnt.bytes += pkt.len() as u64;
                    taken += 1;
                    continue;
                }
            }
            // The rest is not taken: the driver made this burst expensive.
            if !self.can_walk() {
                break;
            }
            let r = if mrg {
                self.enqueue_mergeable(pkt, avail_end, &mut used)
            } else {
                self.enqueue_single(pkt, avail_end, &mut used)
            };
            match r {
                Ok(Some(true)) => {
                    cnt.packets += 1;
                    cnt.bytes += pkt.len() as u64;
                    taken += 1;
                }
                Ok(Some(false)) => {
                    cnt.dropped_too_small += 1;
                    taken += 1;
                }
                // The chains were returned unused; the frame is dropped.
                Err(QueueError::ChainOverCap) => {
                    cnt.guest_errors += 1;
                    taken += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    self.set_fault(e);
                    break;
                }
            }
        }
        cnt.dropped_no_buffers += (pkts.len() - taken) as u64;
        // The buffers were a repaired page, not the guest's: nothing is handed back.
        let Some(notify) = self.end_burst(used, cnt.guest_errors != over_cap) else {
            return (taken, false);
        };
        cnt.notifications += u64::from(notify);
        (taken, notify)
    }

    /// The common receive chain: one writable descriptor with room for header and frame, in
    /// the region of the last buffer. Writes both (and logs them) and returns the used length;
    /// `None` hands the chain to the general path, which reads the descriptor again and decides
    /// on its own read (this one only picks the path).
    #[inline(always)]
    fn write_rx_fast(&self, head: u16, frame: &[u8]) -> Option<u32> {
        if u32::from(head) >= self.config().size {
            return None;
        }
        let d = self.table_desc(head).ok()?;
        if d.flags & (DESC_F_NEXT | DESC_F_INDIRECT | DESC_F_WRITE) != DESC_F_WRITE {
            return None;
        }
        // frame.len() <= MAX_FRAME, so this cannot overflow and fits in u32.
        let total = NET_HDR_LEN + frame.len();
        if (d.len as usize) < total {
            return None;
        }
        if !self.write_buf2(&header(1), frame, d.addr) {
            return None;
        }
        Some(total as u32)
    }

    /// One frame into one chain. `None`: no buffer left.
    fn enqueue_single(
        &mut self,
        pkt: &Packet,
        avail_end: u16,
        used: &mut u16,
    ) -> Result<Option<bool>, QueueError> {
        if self.last_avail == avail_end {
            return Ok(None);
        }
        let head = self.avail_entry(self.last_avail);
        self.start_gather();
        let cap = match self.collect(head, true) {
            Err(QueueError::ChainOverCap) => {
                self.return_unused(&[Chain { head, segs_end: 0 }], used);
                self.last_avail = self.last_avail.wrapping_add(1);
                return Err(QueueError::ChainOverCap);
            }
            r => r?,
        };
        self.last_avail = self.last_avail.wrapping_add(1);
        let need = (NET_HDR_LEN + pkt.len()) as u64;
        let sent = if cap < need {
            // §5.1.6.3.1 requires buffers big enough for a full frame without MRG_RXBUF; a
            // driver that posts less gets the buffer back empty.
            self.write_used(*used, head, 0);
            false
        } else {
            let mut src = Src::new(header(1), pkt.data());
            let written = self.write_segs(0, self.segs.len(), &mut src)?;
            self.write_used(*used, head, written);
            true
        };
        *used = used.wrapping_add(1);
        Ok(Some(sent))
    }

    /// One frame across as many chains as it needs, `num_buffers` set (§5.1.6.4). `None`: not
    /// enough buffers for the whole frame (nothing consumed). The chains of one frame share
    /// one [`MAX_CHAIN_DESCS`] bound: chains that reach it without room for the frame are
    /// returned unused ([`QueueError::ChainOverCap`]), so a ring of empty chains costs at most
    /// that many descriptor reads per frame, and the same chains are never walked again.
    fn enqueue_mergeable(
        &mut self,
        pkt: &Packet,
        avail_end: u16,
        used: &mut u16,
    ) -> Result<Option<bool>, QueueError> {
        let need = (NET_HDR_LEN + pkt.len()) as u64;
        self.start_gather();
        self.chains.clear();
        let mut cap = 0u64;
        let mut next = self.last_avail;
        while cap < need {
            if next == avail_end {
                return Ok(None);
            }
            let head = self.avail_entry(next);
            next = next.wrapping_add(1);
            // Bounded: at most MAX_CHAIN_DESCS descriptors for the whole frame, each of at
            // most 2^32 bytes.
            let r = self.collect(head, true);
            self.chains.push(Chain {
                head,
                segs_end: self.segs.len(),
            });
            match r {
                Ok(c) => cap += c,
                Err(QueueError::ChainOverCap) => {
                    self.return_unused(&self.chains, used);
                    self.last_avail = next;
                    return Err(QueueError::ChainOverCap);
                }
                Err(e) => return Err(e),
            }
        }
        // chains.len() <= MAX_CHAIN_DESCS, so it fits num_buffers (u16).
        let mut src = Src::new(header(self.chains.len() as u16), pkt.data());
        let mut start = 0;
        for i in 0..self.chains.len() {
            let c = self.chains[i];
            let written = self.write_segs(start, c.segs_end, &mut src)?;
            self.write_used(*used, c.head, written);
            *used = used.wrapping_add(1);
            start = c.segs_end;
        }
        self.last_avail = next;
        Ok(Some(true))
    }

    /// Completes `chains` with used length 0 (the driver gets its buffers back, nothing in
    /// them).
    fn return_unused(&self, chains: &[Chain], used: &mut u16) {
        for c in chains {
            self.write_used(*used, c.head, 0);
            *used = used.wrapping_add(1);
        }
    }

    /// Writes from `src` into `self.segs[from..to]` until either runs out; returns the bytes
    /// written (at most 2^32: the chain was checked when collected).
    fn write_segs(&self, from: usize, to: usize, src: &mut Src<'_>) -> Result<u32, QueueError> {
        let mut written = 0u64;
        for seg in &self.segs[from..to] {
            // Each segment takes at most the rest of the header and then frame bytes: at most
            // two copies per segment (one for a segment that starts past the header).
            let mut off = 0u64;
            while off < seg.len && !src.is_empty() {
                let chunk = src.chunk((seg.len - off).min(usize::MAX as u64) as usize);
                let n = self.write_at(seg, off, chunk)?;
                off += n as u64;
                written += n as u64;
                src.advance(n);
            }
            if src.is_empty() {
                break;
            }
        }
        Ok(written as u32)
    }

    /// Writes `bytes` at `off` into `seg` (the caller checked that they fit the segment) and
    /// marks them in the dirty log; returns their length.
    #[inline]
    fn write_at(&self, seg: &Seg, off: u64, bytes: &[u8]) -> Result<usize, QueueError> {
        let addr = seg.addr_at(off)?;
        if !self.write_buf(bytes, addr) {
            return Err(QueueError::BufferOutsideMemory {
                addr,
                len: bytes.len() as u64,
            });
        }
        Ok(bytes.len())
    }
}

/// The byte stream written into a receive chain: header, then frame.
struct Src<'a> {
    hdr: [u8; NET_HDR_LEN],
    frame: &'a [u8],
    pos: usize,
}

impl<'a> Src<'a> {
    fn new(hdr: [u8; NET_HDR_LEN], frame: &'a [u8]) -> Src<'a> {
        Src { hdr, frame, pos: 0 }
    }

    /// The next at most `max` contiguous bytes (empty when done).
    #[inline]
    fn chunk(&self, max: usize) -> &[u8] {
        let s: &[u8] = match self.hdr.get(self.pos..) {
            Some(h) if !h.is_empty() => h,
            _ => self.frame.get(self.pos - NET_HDR_LEN..).unwrap_or(&[]),
        };
        &s[..s.len().min(max)]
    }

    /// True when every byte was taken.
    #[inline]
    fn is_empty(&self) -> bool {
        self.pos >= NET_HDR_LEN + self.frame.len()
    }

    #[inline]
    fn advance(&mut self, n: usize) {
        self.pos += n;
    }
}
