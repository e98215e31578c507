//! The packed ring's chain walk (virtio 1.1 §2.7.6, §2.7.7): from the chain's first
//! descriptor through the ring's next ones while `NEXT` is set, and at most one indirect
//! table, into the ring's scratch list of buffers. Every step the driver controls is bounded
//! and checked here:
//!
//! - a chain spans at most `min(queue size, MAX_CHAIN_DESCS)` ring descriptors (a longer one
//!   breaks the ring: [`QueueError::RingChainOverCap`]);
//! - an indirect descriptor has no `NEXT` (§2.7.7: so it ends the chain), and its table has a
//!   length that is a non-zero multiple of 16 and at most the queue size; inside the table
//!   only `WRITE` means anything (§2.7.7), and an `INDIRECT` there breaks the ring;
//! - every buffer has the direction of its ring, and the chain's lengths add up to at most
//!   2^32 bytes;
//! - a chain, and the chains of one mergeable frame together, read at most
//!   [`MAX_CHAIN_DESCS`] descriptors (not a ring fault: the chain goes back unused, so its
//!   end in the ring is found first, reading at most its remaining ring descriptors), and
//!   each read spends the burst's budget ([`BURST_DESC_BUDGET`]).
//!
//! Descriptors are copied onto our stack before anything looks at them, and the chain's
//! descriptors after the first are ordered by the Acquire load of the first one's flags (the
//! driver writes them before it flips those, §2.7.21.3).

use super::layout::{desc, PackedDesc, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};
use super::queue::{PackedHead, PackedRing, Pos};
#[cfg(doc)]
use crate::vhost::virtq::BURST_DESC_BUDGET;
use crate::vhost::virtq::{table_inside, take_buf, QueueError, MAX_CHAIN_DESCS};

impl PackedRing {
    /// Ring descriptors one chain may span.
    #[inline(always)]
    fn max_ring_descs(&self) -> u16 {
        self.size.min(MAX_CHAIN_DESCS as u16)
    }

    /// Walks the chain `head` starts, appending its non-empty buffers to `self.segs`, and
    /// returns its total length; fills in `head`'s buffer id and ring descriptor count, also
    /// when the chain is over the cap ([`QueueError::ChainOverCap`]: it goes back unused).
    pub(super) fn collect_chain(
        &mut self,
        head: &mut PackedHead,
        writable: bool,
    ) -> Result<u64, QueueError> {
        let mut d = head.first;
        let mut at = head.at;
        let mut n: u16 = 1;
        let mut total = 0u64;
        loop {
            if let Err(e) = self.bounds.step() {
                self.find_end(head, at, d, n)?;
                return Err(e);
            }
            if d.flags & DESC_F_INDIRECT != 0 {
                // §2.7.7: "A driver MUST NOT set both VIRTQ_DESC_F_INDIRECT and
                // VIRTQ_DESC_F_NEXT": the table is the chain's last ring descriptor.
                if d.flags & DESC_F_NEXT != 0 {
                    return Err(QueueError::IndirectWithNext);
                }
                head.id = d.id;
                head.ndescs = n;
                return self.collect_indirect(d, total, writable);
            }
            total = take_buf(
                &mut self.segs,
                total,
                d.addr,
                d.len,
                d.flags & DESC_F_WRITE != 0,
                writable,
            )?;
            if d.flags & DESC_F_NEXT == 0 {
                head.id = d.id;
                head.ndescs = n;
                return Ok(total);
            }
            if n >= self.max_ring_descs() {
                return Err(QueueError::RingChainOverCap);
            }
            at = at.advance(1, self.size);
            n += 1;
            d = self.ring_desc(at.idx);
        }
    }

    /// The buffers of an indirect table (§2.7.7), after the `total` bytes of the chain's ring
    /// descriptors before it.
    fn collect_indirect(
        &mut self,
        d: PackedDesc,
        mut total: u64,
        writable: bool,
    ) -> Result<u64, QueueError> {
        let n = d.len / desc::SIZE as u32;
        if d.len == 0 || !d.len.is_multiple_of(desc::SIZE as u32) || n > u32::from(self.size) {
            return Err(QueueError::BadIndirectLen(d.len));
        }
        if !table_inside(&self.io.mem, d.addr, d.len, &self.desc_hint) {
            return Err(QueueError::BufferOutsideMemory {
                addr: d.addr,
                len: u64::from(d.len),
            });
        }
        for i in 0..n as u16 {
            self.bounds.step()?;
            // The table lies in memory (checked above) and i < n: no overflow.
            let e = self.read_desc(d.addr + desc::entry(i))?;
            if e.flags & DESC_F_INDIRECT != 0 {
                return Err(QueueError::NestedIndirect);
            }
            total = take_buf(
                &mut self.segs,
                total,
                e.addr,
                e.len,
                e.flags & DESC_F_WRITE != 0,
                writable,
            )?;
        }
        Ok(total)
    }

    /// Finds where a chain that goes back unused ends: from descriptor `d` at `at` (its
    /// `n`th), reading only ring descriptors, at most up to the chain bound.
    fn find_end(
        &self,
        head: &mut PackedHead,
        mut at: Pos,
        mut d: PackedDesc,
        mut n: u16,
    ) -> Result<(), QueueError> {
        while d.flags & DESC_F_NEXT != 0 && d.flags & DESC_F_INDIRECT == 0 {
            if n >= self.max_ring_descs() {
                return Err(QueueError::RingChainOverCap);
            }
            at = at.advance(1, self.size);
            n += 1;
            d = self.ring_desc(at.idx);
        }
        head.id = d.id;
        head.ndescs = n;
        Ok(())
    }

    /// Copies one descriptor of an indirect table out of guest memory.
    fn read_desc(&self, addr: u64) -> Result<PackedDesc, QueueError> {
        let mut b = [0u8; desc::SIZE as usize];
        if !self.io.mem.read(&mut b, addr, &self.desc_hint) {
            return Err(QueueError::BufferOutsideMemory {
                addr,
                len: desc::SIZE,
            });
        }
        Ok(PackedDesc::from_bytes(&b))
    }
}
