//! The packed ring itself (virtio 1.1 §2.7): placed and validated once when a vring starts,
//! then driven a burst at a time by the net paths ([`crate::vhost::net`]).
//!
//! The device keeps three positions, each a descriptor index and the wrap counter of its
//! lap: where the next chain starts (`avail`), how far the current burst looked ahead
//! (`peek`), and where the next used descriptor goes (`used`). Chains are taken and completed
//! in order, so `used` catches up with `avail` at the end of every burst, and each used
//! descriptor overwrites its own chain's first descriptor.
//!
//! A burst writes every used descriptor but the first in full, and the first one's flags
//! last ([`PackedRing`]'s `end_burst`, one Release store): the driver, which waits on that
//! descriptor, sees the whole burst at once (DPDK's vhost library does the same). Then at
//! most one notify decision, from the driver's event suppression structure (§2.7.10).

use std::cell::Cell;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use super::layout::{desc, event, used_flags, PackedDesc, DESC_F_WRITE, MAX_QUEUE_SIZE, WRAP_BIT};
use super::ring::DescRing;
use crate::vhost::hostmem::HostRegion;
use crate::vhost::memory::{DirtyLog, GuestMemoryTable};
use crate::vhost::virtq::{
    place, Bounds, Chain, GuestIo, HeadDesc, QueueError, RingConfig, Seg, Virtq,
};

/// A position in the ring: a descriptor index below the queue size and the wrap counter of
/// its lap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pos {
    pub idx: u16,
    pub wrap: bool,
}

impl Pos {
    /// From the vhost-user encoding (`SET_VRING_BASE`): index in bits 0-14, wrap in bit 15.
    fn from_base(v: u16) -> Pos {
        Pos {
            idx: v & !WRAP_BIT,
            wrap: v & WRAP_BIT != 0,
        }
    }

    /// The vhost-user encoding (`GET_VRING_BASE`), also the driver's event offset encoding.
    fn to_base(self) -> u16 {
        self.idx | if self.wrap { WRAP_BIT } else { 0 }
    }

    /// `n` descriptors further (`n <= size`), flipping the wrap counter past the end.
    #[inline(always)]
    pub fn advance(self, n: u16, size: u16) -> Pos {
        let i = u32::from(self.idx) + u32::from(n);
        if i >= u32::from(size) {
            Pos {
                idx: (i - u32::from(size)) as u16,
                wrap: !self.wrap,
            }
        } else {
            Pos {
                idx: i as u16,
                wrap: self.wrap,
            }
        }
    }
}

/// A chain the driver made available: its first descriptor, and, once walked, the buffer id
/// to return and how many ring descriptors it spans.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PackedHead {
    /// Where the chain starts.
    pub(super) at: Pos,
    /// Its first descriptor (flags as loaded with Acquire).
    pub(super) first: PackedDesc,
    /// The buffer id of its last descriptor (what the used descriptor returns).
    pub(super) id: u16,
    /// Ring descriptors it spans (the used position moves on by as many).
    pub(super) ndescs: u16,
}

/// A started packed ring. Owned by one PMD at a time (the vring's lock hands it over).
#[derive(Debug)]
pub struct PackedRing {
    /// Guest memory, and the dirty log while the frontend logs (LOG_ALL).
    pub(super) io: GuestIo,
    cfg: RingConfig,
    /// The queue size (at most 32768).
    pub(super) size: u16,
    /// The descriptor ring, the driver's and the device's event suppression structures, each
    /// a view of exactly its own bytes (validated in `new`).
    desc: DescRing,
    driver: HostRegion,
    device: HostRegion,
    /// Region of the last indirect table read.
    pub(super) desc_hint: Cell<usize>,
    /// Where the next chain starts.
    avail: Pos,
    /// The look-ahead of the current burst (at or past `avail`).
    peek: Pos,
    /// Where the next used descriptor goes.
    used: Pos,
    /// The burst's first used descriptor, index and flags, whose flags `end_burst` stores.
    held: Option<(u16, u16)>,
    /// One used descriptor per burst (VIRTIO_F_IN_ORDER on a transmit ring, see
    /// [`PackedRing::set_batch_used`]): the burst's chains are returned by one used
    /// descriptor at the first one's place, carrying the last one's buffer id.
    batch_used: bool,
    /// The buffer id of the burst's last chain, for the batch's used descriptor.
    last_id: u16,
    /// The used position at the last notify decision; `None` until the first (§2.7.10).
    signalled: Option<Pos>,
    fault: Option<QueueError>,
    /// The burst and chain bounds.
    pub(super) bounds: Bounds,
    /// Scratch: the current chain's buffers (reused, so a burst does not allocate).
    pub(super) segs: Vec<Seg>,
    /// Scratch: chains of the current mergeable frame.
    chains: Vec<Chain<PackedHead>>,
}

impl PackedRing {
    /// Validates `cfg` against `mem` and starts the ring at `base` (vhost-user's encoding:
    /// the descriptor index in bits 0-14, the driver's wrap counter in bit 15; a fresh ring is
    /// `0x8000`, §2.7.1: the wrap counters start at 1).
    pub fn new(
        mem: Arc<GuestMemoryTable>,
        cfg: RingConfig,
        base: u16,
    ) -> Result<PackedRing, QueueError> {
        // §2.7: any size from 1 to 32768 (no power of two needed).
        if cfg.size == 0 || cfg.size > u32::from(MAX_QUEUE_SIZE) {
            return Err(QueueError::BadSize(cfg.size));
        }
        let size = cfg.size as u16;
        let start = Pos::from_base(base);
        if start.idx >= size {
            return Err(QueueError::BadBase(base));
        }
        // §2.7.10.1: descriptor ring 16-aligned, 16 * size bytes; each event suppression
        // structure 4-aligned, 4 bytes.
        let ([desc, driver, device], first_region) = place(
            &mem,
            [
                (
                    "descriptor",
                    cfg.desc,
                    desc::ALIGN,
                    desc::ring_len(cfg.size),
                ),
                ("driver event", cfg.avail, event::ALIGN, event::SIZE),
                ("device event", cfg.used, event::ALIGN, event::SIZE),
            ],
        )?;
        let desc = DescRing::new(desc, size).ok_or(QueueError::Misaligned {
            ring: "descriptor",
            addr: cfg.desc.0,
        })?;
        let mut ring = PackedRing {
            io: GuestIo::new(mem, first_region),
            cfg,
            size,
            desc,
            driver,
            device,
            desc_hint: Cell::new(first_region),
            avail: start,
            peek: start,
            used: start,
            held: None,
            batch_used: false,
            last_id: 0,
            signalled: None,
            fault: None,
            bounds: Bounds::default(),
            segs: Vec::with_capacity(64),
            chains: Vec::with_capacity(64),
        };
        // The PMD polls: no kicks until it asks for them (`enable_kicks`).
        ring.disable_kicks();
        Ok(ring)
    }

    /// Where the next chain starts, in vhost-user's encoding (what `GET_VRING_BASE` reports).
    pub fn last_avail(&self) -> u16 {
        self.avail.to_base()
    }

    /// The configuration the ring was started with.
    pub fn config(&self) -> RingConfig {
        self.cfg
    }

    /// Starts (`Some`) or stops (`None`) marking writes in a dirty log. A new log gets the
    /// device event structure marked at once (written before any log was attached).
    pub fn set_log(&mut self, log: Option<Arc<DirtyLog>>) {
        if let Some(log) = &log {
            log.mark(self.device.gpa(), event::SIZE);
        }
        self.io.log = log;
    }

    /// Reads (`true`) or skips the offload request in the header of each frame the driver
    /// sends ([`GuestIo::tx_offloads`]).
    pub fn set_tx_offloads(&mut self, on: bool) {
        self.io.tx_offloads = on;
    }

    /// Returns each burst's chains with one used descriptor (`true`) or one each. §2.7.9:
    /// with VIRTIO_F_IN_ORDER "devices [can] notify the use of a batch of buffers to the
    /// driver by only writing out a single used descriptor with the Buffer ID corresponding to
    /// the last descriptor in the batch"; the driver walks its chains up to that id (DPDK's
    /// `virtio_xmit_cleanup_inorder_packed`; DPDK's vhost does the same on dequeue). Only for
    /// a transmit ring: every chain there is returned with length 0, where a receive ring's
    /// driver needs each chain's length.
    pub fn set_batch_used(&mut self, on: bool) {
        self.batch_used = on;
    }

    /// True when the ring reads and writes through `mem`.
    pub fn uses(&self, mem: &Arc<GuestMemoryTable>) -> bool {
        Arc::ptr_eq(&self.io.mem, mem)
    }

    /// Bursts the ring still sits out after one that returned chains over the cap or spent
    /// its descriptor budget ([`crate::vhost::virtq::COOLDOWN_BURSTS`]).
    pub fn sitting_out(&self) -> u32 {
        self.bounds.sitting_out()
    }

    /// Why the ring is broken, if it is.
    pub fn fault(&self) -> Option<&QueueError> {
        self.fault.as_ref()
    }

    /// Moves the ring onto a new memory table (same configuration and position).
    pub fn remap(
        self,
        mem: Arc<GuestMemoryTable>,
        cfg: RingConfig,
    ) -> Result<PackedRing, QueueError> {
        let mut ring = PackedRing::new(mem, cfg, self.avail.to_base())?;
        ring.fault = self.fault;
        ring.set_log(self.io.log);
        Ok(ring)
    }

    // ----- notification suppression (§2.7.10) -----

    /// Asks the driver for kicks again: with EVENT_IDX a kick when it makes the descriptor at
    /// our position available (`RING_EVENT_FLAGS_DESC`), otherwise any kick. Returns true when
    /// the ring is still empty afterwards (the caller may sleep).
    pub fn enable_kicks(&mut self) -> bool {
        if self.fault.is_some() {
            return true;
        }
        if self.cfg.event_idx {
            self.store_device(event::OFF_WRAP, self.avail.to_base());
            self.store_device(event::FLAGS, event::FLAG_DESC);
        } else {
            self.store_device(event::FLAGS, event::FLAG_ENABLE);
        }
        // Orders the stores above before the flags load below; the driver does the mirror
        // image (make a descriptor available, barrier, read our flags), so a chain made
        // available now is either seen here or kicked.
        fence(Ordering::SeqCst);
        self.avail_at(self.avail).is_none()
    }

    /// Stops kicks while the PMD polls (`RING_EVENT_FLAGS_DISABLE`).
    pub fn disable_kicks(&mut self) {
        if self.fault.is_none() {
            self.store_device(event::FLAGS, event::FLAG_DISABLE);
        }
    }

    /// True when the driver made a chain available (false when broken).
    pub fn has_pending(&mut self) -> bool {
        if self.fault.is_some() || self.memory_fault() {
            return false;
        }
        self.avail_at(self.avail).is_some()
    }

    // ----- ring primitives -----

    /// Writes the used descriptor for `head` at the used position, without moving it (see
    /// `push_used`): the burst's first one's flags wait for `end_burst`, and with
    /// `batch_used` nothing is written until then.
    #[inline(always)]
    fn write_used(&mut self, head: &PackedHead, len: u32) {
        let idx = self.used.idx;
        let written = if len > 0 { DESC_F_WRITE } else { 0 };
        let flags = used_flags(self.used.wrap) | written;
        let first = self.held.is_none();
        if first {
            self.held = Some((idx, flags));
        }
        if self.batch_used {
            // A transmit ring's chains all go back with length 0: one used descriptor for
            // the whole burst, written by `end_burst`.
            self.last_id = head.id;
            return;
        }
        // The flags (Release: after id, len and the buffer's bytes) now, but the first's.
        self.desc
            .put_used(idx, head.id, len, (!first).then_some(flags));
        self.io.mark(self.desc.gpa(idx), desc::SIZE);
    }

    /// The descriptor at `at` if the driver made it available in `at`'s lap
    /// ([`DescRing::avail`]).
    #[inline(always)]
    fn avail_at(&self, at: Pos) -> Option<PackedDesc> {
        self.desc.avail(at.idx, at.wrap)
    }

    /// Copies descriptor `idx` (below the queue size) out of the ring.
    #[inline(always)]
    pub(super) fn ring_desc(&self, idx: u16) -> PackedDesc {
        // Positions stay below the size: never the empty descriptor (which ends a chain).
        self.desc.read(idx).unwrap_or(PackedDesc {
            addr: 0,
            len: 0,
            id: 0,
            flags: 0,
        })
    }

    /// Stores a field of the device event suppression structure and marks it dirty.
    fn store_device(&self, field: u64, v: u16) {
        self.device.store_u16(field, v, Ordering::Relaxed);
        self.io.mark(self.device.gpa() + field, 2);
    }

    /// True (and the ring broken) once guest memory or the dirty log was truncated under us.
    #[inline]
    fn memory_fault(&mut self) -> bool {
        if self.io.poisoned() {
            self.fault = Some(QueueError::MemoryFault);
            return true;
        }
        false
    }

    /// Whether the driver wants an interrupt for the used descriptors published since the
    /// last decision (§2.7.10; DPDK's `vhost_vring_call_packed`).
    fn need_notify(&mut self) -> bool {
        // Orders the used flags stored before the driver's flags loaded after; the driver
        // stores its event structure, fences and re-checks the used flags.
        fence(Ordering::SeqCst);
        let old = self.signalled.replace(self.used);
        let flags = self.driver.load_u16(event::FLAGS, Ordering::Acquire);
        if !self.cfg.event_idx || flags != event::FLAG_DESC {
            return flags != event::FLAG_DISABLE;
        }
        let Some(old) = old else {
            return true;
        };
        let off_wrap = self.driver.load_u16(event::OFF_WRAP, Ordering::Relaxed);
        let size = i32::from(self.size);
        // Indices on one line: the old position a lap back if we passed it, the event a lap
        // back if it belongs to the previous lap; then `vring_need_event` on 16 bits.
        let new = i32::from(self.used.idx);
        let mut old = i32::from(old.idx);
        if new <= old {
            old -= size;
        }
        let mut off = i32::from(off_wrap & !WRAP_BIT);
        if (off_wrap & WRAP_BIT != 0) != self.used.wrap {
            off -= size;
        }
        let (new, old, off) = (new as u16, old as u16, off as u16);
        new.wrapping_sub(off).wrapping_sub(1) < new.wrapping_sub(old)
    }
}

impl Virtq for PackedRing {
    type Head = PackedHead;

    #[inline(always)]
    fn begin_burst(&mut self) -> bool {
        if self.fault.is_some() || self.memory_fault() || !self.bounds.begin_burst() {
            return false;
        }
        self.peek = self.avail;
        true
    }

    #[inline(always)]
    fn next_chain(&mut self) -> Option<PackedHead> {
        let first = self.avail_at(self.peek)?;
        Some(PackedHead {
            at: self.peek,
            first,
            id: first.id,
            ndescs: 1,
        })
    }

    #[inline(always)]
    fn head_desc(&self, head: &PackedHead) -> Option<HeadDesc> {
        Some(HeadDesc {
            addr: head.first.addr,
            len: head.first.len,
            flags: head.first.flags,
        })
    }

    #[inline(always)]
    fn can_walk(&self) -> bool {
        self.bounds.can_walk()
    }

    #[inline(always)]
    fn start_gather(&mut self) {
        self.segs.clear();
        self.bounds.start_chain();
    }

    #[inline(always)]
    fn collect(&mut self, head: &mut PackedHead, writable: bool) -> Result<u64, QueueError> {
        self.collect_chain(head, writable)
    }

    #[inline(always)]
    fn segs(&self) -> &[Seg] {
        &self.segs
    }

    #[inline(always)]
    fn chains(&mut self) -> &mut Vec<Chain<PackedHead>> {
        &mut self.chains
    }

    #[inline(always)]
    fn skip(&mut self, head: &PackedHead) {
        self.peek = head.at.advance(head.ndescs, self.size);
    }

    #[inline(always)]
    fn commit(&mut self) {
        self.avail = self.peek;
    }

    #[inline(always)]
    fn rewind(&mut self) {
        self.peek = self.avail;
    }

    /// Writes the used descriptor (§2.7.8): buffer id and length, then flags with AVAIL and
    /// USED equal to the used wrap counter, and WRITE when bytes were written into the
    /// buffers (§2.7.4: "In a used descriptor, this bit is used to specify whether any data
    /// has been written by the device"; without it the length is reserved and a driver may
    /// ignore it). The burst's first one's flags wait for `end_burst`.
    #[inline(always)]
    fn push_used(&mut self, head: &PackedHead, len: u32) {
        self.write_used(head, len);
        self.used = self.used.advance(head.ndescs, self.size);
    }

    /// `push_used` then `consume`, with the position past the chain computed once: a chain
    /// taken alone is completed where it starts (chains are completed in order, so the used
    /// position is the chain's own), and all three positions move past it together.
    #[inline(always)]
    fn complete(&mut self, head: &PackedHead, len: u32) {
        debug_assert_eq!(self.used, head.at, "completed in order");
        self.write_used(head, len);
        let next = head.at.advance(head.ndescs, self.size);
        self.used = next;
        self.peek = next;
        self.avail = next;
    }

    #[inline(always)]
    fn end_burst(&mut self, hostile: bool) -> Option<bool> {
        if self.memory_fault() {
            self.held = None;
            return None;
        }
        self.bounds.end_burst(hostile);
        let Some((idx, flags)) = self.held.take() else {
            return Some(false);
        };
        // Release: every used descriptor of the burst, and what was written into the
        // buffers, before the flags the driver waits on.
        if self.batch_used {
            self.desc.put_used(idx, self.last_id, 0, Some(flags));
            self.io.mark(self.desc.gpa(idx), desc::SIZE);
        } else {
            self.desc.store_flags(idx, flags);
            self.io.mark(self.desc.gpa(idx) + desc::FLAGS as u64, 2);
        }
        Some(self.need_notify())
    }

    #[inline]
    fn set_fault(&mut self, e: QueueError) {
        self.fault = Some(e);
    }

    #[inline(always)]
    fn io(&self) -> &GuestIo {
        &self.io
    }
}
