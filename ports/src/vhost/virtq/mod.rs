//! What the two virtqueue formats share: how a ring is configured ([`RingConfig`]), why one
//! breaks ([`QueueError`]), the bounds on a burst's work ([`MAX_CHAIN_DESCS`],
//! [`BURST_DESC_BUDGET`], [`COOLDOWN_BURSTS`]), the primitives the virtio-net paths drive a
//! ring through (`Virtq`, implemented by [`SplitRing`] and [`PackedRing`]) and the ring a
//! vring runs, whichever format the frontend negotiated ([`Virtqueue`]).
//!
//! The net paths ([`crate::vhost::net`]) are written once over `Virtq` and compiled for each
//! format; a burst dispatches on the format once, never per frame.

mod bounds;
mod error;
mod io;
mod place;
mod virtqueue;

use vm_memory::GuestAddress;

pub(crate) use bounds::Bounds;
pub use bounds::{BURST_DESC_BUDGET, COOLDOWN_BURSTS, MAX_CHAIN_DESCS};
pub use error::QueueError;
pub(crate) use io::GuestIo;
pub(crate) use place::{place, table_inside, take_buf};
pub use virtqueue::Virtqueue;

#[cfg(doc)]
use crate::vhost::{packed::PackedRing, split::SplitRing};

/// Where a ring lives and how it was negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingConfig {
    /// Queue size (number of descriptors).
    pub size: u32,
    /// Descriptor table (split) or descriptor ring (packed), guest physical.
    pub desc: GuestAddress,
    /// Available ring (split) or driver event suppression area (packed), guest physical.
    pub avail: GuestAddress,
    /// Used ring (split) or device event suppression area (packed), guest physical.
    pub used: GuestAddress,
    /// VIRTIO_F_RING_EVENT_IDX was negotiated.
    pub event_idx: bool,
    /// VIRTIO_F_RING_PACKED was negotiated: the ring is a [`PackedRing`].
    pub packed: bool,
}

/// A device-side buffer: a validated-length slice of a chain, in guest physical addresses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seg {
    /// Guest physical address (the driver's, not yet checked against memory).
    pub addr: u64,
    /// Length in bytes, never 0.
    pub len: u64,
}

impl Seg {
    /// The guest address `off` bytes into the segment. The driver chose `addr`: a sum that
    /// wraps is the guest's fault (the buffer lies outside memory), not an overflow.
    pub fn addr_at(&self, off: u64) -> Result<u64, QueueError> {
        self.addr
            .checked_add(off)
            .ok_or(QueueError::BufferOutsideMemory {
                addr: self.addr,
                len: self.len,
            })
    }
}

/// One chain gathered into a ring's scratch list: its head (what completing it needs) and
/// where its buffers end in the ring's segment list (they start where the previous chain's
/// end).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chain<H> {
    /// The chain's head.
    pub head: H,
    /// One past its last buffer in the segment list.
    pub segs_end: usize,
}

/// A chain's first descriptor as the fast paths see it (the flag bits `NEXT`, `WRITE` and
/// `INDIRECT` are the same in both formats).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadDesc {
    /// Guest physical address of the buffer.
    pub addr: u64,
    /// Its length.
    pub len: u32,
    /// Its flags.
    pub flags: u16,
}

/// The burst and chain primitives the net paths drive a ring through. A burst is
/// `begin_burst`, then chains taken in order (`next_chain`, a fast-path look at its first
/// descriptor or a `collect` walk, `push_used`, `consume`), then `end_burst`, which
/// publishes what was used and says whether to notify the driver.
///
/// Chains are taken in the order the driver made them available and completed in that
/// order, one used element each (which is why VIRTIO_F_IN_ORDER can be offered).
pub(crate) trait Virtq {
    /// What completing a chain needs (the split ring: the head index; the packed ring: the
    /// buffer id and how many ring descriptors the chain spans).
    type Head: Copy;

    /// Starts a burst; false when the ring sits out this burst or is (now) broken.
    fn begin_burst(&mut self) -> bool;
    /// The next chain the driver made available, not yet taken; `None` when there is none.
    fn next_chain(&mut self) -> Option<Self::Head>;
    /// The chain's first descriptor, for the fast paths (which only pick the path: the
    /// general walk reads again and decides on its own read). `None`: take the general walk.
    fn head_desc(&self, head: &Self::Head) -> Option<HeadDesc>;
    /// True while the burst's budget still covers a whole chain walk.
    fn can_walk(&self) -> bool;
    /// Starts the gathering of one chain (or one mergeable frame's chains).
    fn start_gather(&mut self);
    /// Walks the chain, appending its non-empty buffers to the segment list, and returns its
    /// total length; `writable` is the direction every buffer must have. Completes `head`
    /// (even when the chain is over the cap, so that it can be returned).
    fn collect(&mut self, head: &mut Self::Head, writable: bool) -> Result<u64, QueueError>;
    /// The segments gathered since `start_gather`.
    fn segs(&self) -> &[Seg];
    /// The scratch list of one mergeable frame's chains.
    fn chains(&mut self) -> &mut Vec<Chain<Self::Head>>;
    /// Moves the look-ahead past `head`: the next `next_chain` looks after it.
    fn skip(&mut self, head: &Self::Head);
    /// Takes everything the look-ahead passed.
    fn commit(&mut self);
    /// Forgets what the look-ahead passed since the last commit.
    fn rewind(&mut self);
    /// Takes `head`: `skip` then `commit`.
    #[inline(always)]
    fn consume(&mut self, head: &Self::Head) {
        self.skip(head);
        self.commit();
    }
    /// Completes a taken chain with `len` bytes written (published by `end_burst`).
    fn push_used(&mut self, head: &Self::Head, len: u32);
    /// Completes `head` with `len` bytes written and takes it (`push_used` then `consume`):
    /// a chain taken alone, as every transmit chain and every single-chain receive is.
    #[inline(always)]
    fn complete(&mut self, head: &Self::Head, len: u32) {
        self.push_used(head, len);
        self.consume(head);
    }
    /// Ends a burst: publishes the used chains and says whether to notify the driver;
    /// `hostile` (the burst returned chains over the cap) makes the ring sit out the next
    /// bursts. `None`, with nothing published and the ring broken, when guest memory or the
    /// dirty log was truncated under the burst.
    fn end_burst(&mut self, hostile: bool) -> Option<bool>;
    /// Breaks the ring: it moves nothing more until the frontend restarts it.
    fn set_fault(&mut self, e: QueueError);
    /// The ring's way into guest memory.
    fn io(&self) -> &GuestIo;
    /// Copies guest bytes at `addr` into `dst`; false when they are not inside guest memory.
    #[inline(always)]
    fn read_buf(&self, dst: &mut [u8], addr: u64) -> bool {
        self.io().read(dst, addr)
    }
    /// Copies `bytes` into guest memory at `addr` and marks them dirty; false when they are
    /// not inside guest memory.
    #[inline(always)]
    fn write_buf(&self, bytes: &[u8], addr: u64) -> bool {
        self.io().write(bytes, addr)
    }
    /// Copies `a` then `b` into guest memory at `addr` when both fit in the region of the
    /// last buffer (and marks them dirty); false, nothing written, otherwise.
    #[inline(always)]
    fn write_buf2(&self, a: &[u8], b: &[u8], addr: u64) -> bool {
        self.io().write2(a, b, addr)
    }
}
