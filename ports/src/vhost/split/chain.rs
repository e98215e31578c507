//! The descriptor chain walk (virtio 1.1 §2.6.5): from a head in the available ring through
//! the descriptor table and at most one indirect table, into the ring's scratch list of
//! buffers ([`Seg`]). Every step the driver controls is bounded and checked here:
//!
//! - the head and every `next` index lie inside their table (§2.6.6, §2.6.5);
//! - a chain visits each descriptor of its table at most once (a ttl of the table's length:
//!   a longer chain loops, §2.6.5.3.1);
//! - an indirect descriptor has no `NEXT`, does not nest, and its table has a length that is
//!   a non-zero multiple of 16 and at most the queue size (§2.6.5.3, §2.6.5.3.1);
//! - every buffer has the direction of its ring, and the chain's lengths add up, with
//!   `checked_add`, to at most 2^32 bytes (§2.6.5.1, §2.6.5.2);
//! - a chain, and the chains of one mergeable frame together, read at most
//!   [`MAX_CHAIN_DESCS`] descriptors (not a ring fault: the chain goes back unused), and each
//!   read spends the burst's budget ([`crate::vhost::virtq::BURST_DESC_BUDGET`]).
//!
//! Descriptors are copied onto our stack before anything looks at them: every decision is
//! made on one read (no double fetch).

use super::layout::{desc, Descriptor, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};
use super::queue::SplitRing;
#[cfg(doc)]
use crate::vhost::virtq::MAX_CHAIN_DESCS;
use crate::vhost::virtq::{table_inside, take_buf, QueueError, Seg};

impl SplitRing {
    /// Walks the chain at `head`, appending its non-empty buffers to `self.segs`, and returns
    /// its total length. `writable`: the direction every buffer must have.
    pub(super) fn collect_at(&mut self, head: u16, writable: bool) -> Result<u64, QueueError> {
        // §2.6.6: ring entries index the descriptor table.
        if u32::from(head) >= self.cfg.size {
            return Err(QueueError::HeadOutOfRange(head));
        }
        // The common chain: one plain descriptor (virtio-net drivers put header and frame in
        // one buffer). Same checks as the general walk below, without its bookkeeping.
        self.bounds.step()?;
        let d = self.table_desc(head)?;
        if d.flags & (DESC_F_NEXT | DESC_F_INDIRECT) == 0 {
            if (d.flags & DESC_F_WRITE != 0) != writable {
                return Err(QueueError::WrongDirection);
            }
            if d.len > 0 {
                self.segs.push(Seg {
                    addr: d.addr,
                    len: u64::from(d.len),
                });
            }
            return Ok(u64::from(d.len));
        }
        self.collect_chain(head, d, writable)
    }

    /// The general walk of [`SplitRing::collect_at`]: chains and indirect tables. `first` is the
    /// head descriptor, already read.
    #[inline(never)]
    fn collect_chain(
        &mut self,
        head: u16,
        first: Descriptor,
        writable: bool,
    ) -> Result<u64, QueueError> {
        let mut pending = Some(first);
        let mut table = 0;
        let mut table_len = self.cfg.size;
        let mut idx = head;
        // ttl: a chain visits each descriptor of its table at most once, so one that is still
        // going after `table_len` steps loops (§2.6.5.3.1, §2.6.5.2).
        let mut ttl = table_len;
        let mut indirect = false;
        let mut total = 0u64;
        loop {
            if ttl == 0 {
                return Err(QueueError::ChainTooLong);
            }
            ttl -= 1;
            // idx < table_len (checked before every step) and the table lies in memory, so
            // this is in range; table + 16 * idx cannot overflow (the table's range was checked).
            let d = match pending.take() {
                Some(d) => d,
                None if indirect => {
                    self.bounds.step()?;
                    self.read_desc(table + desc::entry(idx))?
                }
                None => {
                    self.bounds.step()?;
                    self.table_desc(idx)?
                }
            };
            if d.flags & DESC_F_INDIRECT != 0 {
                // §2.6.5.3.1: one level of indirection only, and never with NEXT.
                if indirect {
                    return Err(QueueError::NestedIndirect);
                }
                if d.flags & DESC_F_NEXT != 0 {
                    return Err(QueueError::IndirectWithNext);
                }
                // §2.6.5.3: the table is len / 16 descriptors; we allow at most the queue size.
                let n = d.len / desc::SIZE as u32;
                if d.len == 0 || d.len % desc::SIZE as u32 != 0 || n > self.cfg.size {
                    return Err(QueueError::BadIndirectLen(d.len));
                }
                if !table_inside(&self.io.mem, d.addr, d.len, &self.desc_hint) {
                    return Err(QueueError::BufferOutsideMemory {
                        addr: d.addr,
                        len: u64::from(d.len),
                    });
                }
                table = d.addr;
                table_len = n;
                ttl = n;
                idx = 0;
                indirect = true;
                continue;
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
                return Ok(total);
            }
            // §2.6.5: next indexes the same table.
            if u32::from(d.next) >= table_len {
                return Err(QueueError::NextOutOfRange(d.next));
            }
            idx = d.next;
        }
    }

    /// Copies descriptor `idx` out of the ring's descriptor table (`idx` is checked against
    /// the table's size by the caller; the view checks it again).
    #[inline(always)]
    pub(crate) fn table_desc(&self, idx: u16) -> Result<Descriptor, QueueError> {
        let mut b = [0u8; desc::SIZE as usize];
        if !self.desc.read(desc::entry(idx), &mut b) {
            return Err(QueueError::HeadOutOfRange(idx));
        }
        Ok(Descriptor::from_bytes(&b))
    }

    /// Copies one descriptor of an indirect table out of guest memory.
    fn read_desc(&self, addr: u64) -> Result<Descriptor, QueueError> {
        let mut b = [0u8; desc::SIZE as usize];
        if !self.io.mem.read(&mut b, addr, &self.desc_hint) {
            return Err(QueueError::BufferOutsideMemory {
                addr,
                len: desc::SIZE,
            });
        }
        Ok(Descriptor::from_bytes(&b))
    }
}
