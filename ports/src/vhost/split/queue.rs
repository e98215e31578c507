//! The split ring itself (virtio 1.1 §2.6): placed and validated once when a vring starts,
//! then driven a burst at a time by the net paths ([`crate::vhost::net`]).
//!
//! [`SplitRing::new`] checks the size, the 16/2/4 alignment of the three rings and that each
//! lies inside one memory region, then keeps a view of exactly each ring's bytes, so every
//! later ring access is checked against the ring, not searched for in the memory table.
//!
//! A burst is [`SplitRing::begin_burst`] (one Acquire load of `avail.idx`, checked to be at
//! most the queue size ahead), then chain heads, chain walks ([`super::chain`]) and used
//! elements, then [`SplitRing::end_burst`]: one Release store of `used.idx` and at most one
//! notify decision. A ring that returned chains over the bound sits out the next
//! [`COOLDOWN_BURSTS`] bursts; a ring fault (or guest memory truncated under us) breaks the
//! ring until the frontend restarts it, and only this ring.

use std::cell::Cell;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use super::layout::{avail, desc, used, AVAIL_F_NO_INTERRUPT, MAX_QUEUE_SIZE, USED_F_NO_NOTIFY};
use crate::vhost::hostmem::HostRegion;
use crate::vhost::memory::{DirtyLog, GuestMemoryTable};
#[cfg(doc)]
use crate::vhost::virtq::COOLDOWN_BURSTS;
use crate::vhost::virtq::{
    place, Bounds, Chain, GuestIo, HeadDesc, QueueError, RingConfig, Seg, Virtq,
};

/// A started split ring. Owned by one PMD at a time (the vring's lock hands it over).
#[derive(Debug)]
pub struct SplitRing {
    /// Guest memory, and the dirty log while the frontend logs (LOG_ALL).
    pub(super) io: GuestIo,
    pub(super) cfg: RingConfig,
    /// The three rings, each a view of exactly its own bytes (validated in `new`): ring
    /// accesses are checked against the ring, not searched for in the memory table.
    pub(super) desc: HostRegion,
    avail: HostRegion,
    used: HostRegion,
    /// Region of the last indirect table read.
    pub(super) desc_hint: Cell<usize>,
    /// The next avail index to consume.
    last_avail: u16,
    /// The look-ahead: the next avail index `next_chain` reads (at or past `last_avail`).
    peek: u16,
    /// One past the last avail index of the current burst (`avail.idx` read at its start).
    avail_end: u16,
    /// `used.idx` as last published.
    used_idx: u16,
    /// Where the next used element goes (published by `end_burst`).
    used_next: u16,
    fault: Option<QueueError>,
    /// The burst and chain bounds.
    pub(super) bounds: Bounds,
    /// Scratch: the current chain's buffers (reused, so a burst does not allocate).
    pub(super) segs: Vec<Seg>,
    /// Scratch: chains of the current mergeable frame.
    chains: Vec<Chain<u16>>,
}

impl SplitRing {
    /// Validates `cfg` against `mem` and starts the ring at avail index `base`.
    ///
    /// Like DPDK, if `used.idx` in guest memory disagrees with `base`, the ring restarts at
    /// `used.idx` (buffers the old backend took but never completed are lost or resent).
    pub fn new(
        mem: Arc<GuestMemoryTable>,
        cfg: RingConfig,
        base: u16,
    ) -> Result<SplitRing, QueueError> {
        // §2.6: "Queue Size value is always a power of 2. The maximum Queue Size value is 32768."
        if cfg.size == 0 || !cfg.size.is_power_of_two() || cfg.size > u32::from(MAX_QUEUE_SIZE) {
            return Err(QueueError::BadSize(cfg.size));
        }
        // §2.6 alignment table: descriptor table 16, available ring 2, used ring 4; sizes
        // 16 * size, 6 + 2 * size and 6 + 8 * size (with the event index fields).
        let ([desc, avail, used], first_region) = place(
            &mem,
            [
                (
                    "descriptor",
                    cfg.desc,
                    desc::ALIGN,
                    desc::table_len(cfg.size),
                ),
                ("avail", cfg.avail, avail::ALIGN, avail::ring_len(cfg.size)),
                ("used", cfg.used, used::ALIGN, used::ring_len(cfg.size)),
            ],
        )?;
        let mut ring = SplitRing {
            io: GuestIo::new(mem, first_region),
            cfg,
            desc,
            avail,
            used,
            desc_hint: Cell::new(first_region),
            last_avail: base,
            peek: base,
            avail_end: base,
            used_idx: 0,
            used_next: 0,
            fault: None,
            bounds: Bounds::default(),
            // Grows (rarely, then stays) for longer chains.
            segs: Vec::with_capacity(64),
            chains: Vec::with_capacity(64),
        };
        ring.used_idx = ring.used.load_u16(used::IDX, Ordering::Acquire);
        if ring.used_idx != base {
            tracing::debug!(
                base,
                used = ring.used_idx,
                "vring base and used idx disagree; restarting at used idx"
            );
            ring.last_avail = ring.used_idx;
        }
        ring.used_next = ring.used_idx;
        // The PMD polls: no kicks until it asks for them (`enable_kicks`).
        ring.disable_kicks();
        Ok(ring)
    }

    /// The next avail index we will consume (what `GET_VRING_BASE` reports).
    pub fn last_avail(&self) -> u16 {
        self.last_avail
    }

    /// The configuration the ring was started with.
    pub fn config(&self) -> RingConfig {
        self.cfg
    }

    /// Starts (`Some`) or stops (`None`) marking writes in a dirty log. A new log gets the
    /// used ring's flags and index marked at once: they were written (when the ring started,
    /// or moved to new memory) before any log was attached.
    pub fn set_log(&mut self, log: Option<Arc<DirtyLog>>) {
        if let Some(log) = &log {
            log.mark(self.used.gpa() + used::FLAGS, used::RING);
        }
        self.io.log = log;
    }

    /// Reads (`true`) or skips the offload request in the header of each frame the driver
    /// sends ([`GuestIo::tx_offloads`]).
    pub fn set_tx_offloads(&mut self, on: bool) {
        self.io.tx_offloads = on;
    }

    /// True when the ring reads and writes through `mem`.
    pub fn uses(&self, mem: &Arc<GuestMemoryTable>) -> bool {
        Arc::ptr_eq(&self.io.mem, mem)
    }

    /// Why the ring is broken, if it is.
    pub fn fault(&self) -> Option<&QueueError> {
        self.fault.as_ref()
    }

    /// Moves the ring onto a new memory table (same configuration and indices).
    pub fn remap(
        self,
        mem: Arc<GuestMemoryTable>,
        cfg: RingConfig,
    ) -> Result<SplitRing, QueueError> {
        let last = self.last_avail;
        let mut ring = SplitRing::new(mem, cfg, last)?;
        ring.fault = self.fault;
        ring.set_log(self.io.log);
        Ok(ring)
    }

    // ----- notification suppression -----

    /// Asks the driver for kicks again (§2.6.10): with EVENT_IDX by writing `avail_event`,
    /// otherwise by clearing `VIRTQ_USED_F_NO_NOTIFY`. Returns true when the ring is still
    /// empty afterwards (the caller may sleep), false when buffers arrived meanwhile.
    pub fn enable_kicks(&mut self) -> bool {
        if self.fault.is_some() {
            return true;
        }
        if self.cfg.event_idx {
            let field = used::avail_event(self.cfg.size);
            self.store_used_u16(field, self.last_avail, Ordering::Relaxed);
        } else {
            self.store_used_u16(used::FLAGS, 0, Ordering::Relaxed);
        }
        // Orders the store above before the avail.idx load below. The driver does the mirror
        // image (store avail.idx, barrier, read the suppression field): with both fences, at
        // least one side sees the other's write, so a buffer added now is either seen here or
        // kicked (§2.6.10.2).
        fence(Ordering::SeqCst);
        self.avail.load_u16(avail::IDX, Ordering::Acquire) == self.last_avail
    }

    /// Stops kicks while the PMD polls: sets `VIRTQ_USED_F_NO_NOTIFY`. With EVENT_IDX nothing is
    /// written: `avail_event` stays behind, so the driver kicks at most once per index wrap.
    pub fn disable_kicks(&mut self) {
        if !self.cfg.event_idx && self.fault.is_none() {
            self.store_used_u16(used::FLAGS, USED_F_NO_NOTIFY, Ordering::Relaxed);
        }
    }

    /// Frames waiting in the avail ring (0 when broken).
    pub fn has_pending(&mut self) -> bool {
        self.pending().is_some_and(|n| n > 0)
    }

    /// Buffers the driver made available since our last burst, or `None` when the ring is
    /// (now) broken. One Acquire load of `avail.idx` per burst.
    fn pending(&mut self) -> Option<u16> {
        if self.fault.is_some() || self.memory_fault() {
            return None;
        }
        // Acquire: the ring entries and descriptors the driver wrote before publishing this
        // index are visible to the reads that follow (pairs with the driver's write barrier
        // before it updates avail.idx, §2.6.13.3).
        let avail = self.avail.load_u16(avail::IDX, Ordering::Acquire);
        let pending = avail.wrapping_sub(self.last_avail);
        // §2.6.6: the ring holds `size` entries, so a driver can be at most `size` ahead.
        if u32::from(pending) > self.cfg.size {
            self.fault = Some(QueueError::AvailIdxJump {
                avail,
                last: self.last_avail,
            });
            return None;
        }
        Some(pending)
    }

    /// True (and the ring broken) once guest memory or the dirty log was truncated under us:
    /// whatever the last accesses read or wrote was a repaired page, not the guest's.
    #[inline]
    fn memory_fault(&mut self) -> bool {
        if self.io.poisoned() {
            self.fault = Some(QueueError::MemoryFault);
            return true;
        }
        false
    }

    // ----- ring primitives -----

    /// The chain head at avail position `idx` (not yet checked against the table).
    pub(crate) fn avail_entry(&self, idx: u16) -> u16 {
        let slot = u64::from(idx) & u64::from(self.cfg.size - 1);
        self.avail.load_u16(avail::entry(slot), Ordering::Relaxed)
    }

    /// Writes used element `idx` (not yet published).
    pub(crate) fn write_used(&self, idx: u16, head: u16, len: u32) {
        let slot = u64::from(idx) & u64::from(self.cfg.size - 1);
        // Inside the used ring, validated in `new`: cannot fail.
        let field = used::entry(slot);
        let _ = self.used.write(field, &used::elem(head, len));
        self.io.mark(self.used.gpa() + field, used::ELEM_SIZE);
    }

    /// Publishes used elements up to `new` with one store and says whether to notify.
    #[inline]
    fn publish_used(&mut self, new: u16) -> bool {
        let old = self.used_idx;
        if new == old {
            return false;
        }
        // Release: the used elements (and the buffer contents) written above become visible
        // before the index that hands them to the driver (§2.6.8.2: the device sets len before
        // updating idx).
        self.store_used_u16(used::IDX, new, Ordering::Release);
        self.used_idx = new;
        // Orders the used.idx store before reading used_event / avail.flags. The driver writes
        // used_event, fences and re-reads used.idx; without this fence both sides could miss
        // each other's update and the driver would sleep on a full used ring (§2.6.7.2).
        fence(Ordering::SeqCst);
        if self.cfg.event_idx {
            // §2.6.7.2: notify iff used_event lies in (old, new] (vring_need_event).
            let field = avail::used_event(self.cfg.size);
            let event = self.avail.load_u16(field, Ordering::Relaxed);
            new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
        } else {
            self.avail.load_u16(avail::FLAGS, Ordering::Relaxed) & AVAIL_F_NO_INTERRUPT == 0
        }
    }

    /// Stores the used ring's field at `field` bytes (inside the ring and aligned, checked in
    /// `new`) and marks it in the dirty log.
    #[inline]
    fn store_used_u16(&self, field: u64, v: u16, order: Ordering) {
        self.used.store_u16(field, v, order);
        self.io.mark(self.used.gpa() + field, 2);
    }
}

impl Virtq for SplitRing {
    /// The chain's head index (not yet checked against the table).
    type Head = u16;

    #[inline(always)]
    fn begin_burst(&mut self) -> bool {
        if !self.bounds.begin_burst() {
            return false;
        }
        let Some(pending) = self.pending() else {
            return false;
        };
        self.peek = self.last_avail;
        self.avail_end = self.last_avail.wrapping_add(pending);
        true
    }

    #[inline(always)]
    fn next_chain(&mut self) -> Option<u16> {
        (self.peek != self.avail_end).then(|| self.avail_entry(self.peek))
    }

    #[inline(always)]
    fn head_desc(&self, head: &u16) -> Option<HeadDesc> {
        if u32::from(*head) >= self.cfg.size {
            return None;
        }
        let d = self.table_desc(*head).ok()?;
        Some(HeadDesc {
            addr: d.addr,
            len: d.len,
            flags: d.flags,
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
    fn collect(&mut self, head: &mut u16, writable: bool) -> Result<u64, QueueError> {
        self.collect_at(*head, writable)
    }

    #[inline(always)]
    fn segs(&self) -> &[Seg] {
        &self.segs
    }

    #[inline(always)]
    fn chains(&mut self) -> &mut Vec<Chain<u16>> {
        &mut self.chains
    }

    #[inline(always)]
    fn skip(&mut self, _head: &u16) {
        self.peek = self.peek.wrapping_add(1);
    }

    #[inline(always)]
    fn commit(&mut self) {
        self.last_avail = self.peek;
    }

    #[inline(always)]
    fn rewind(&mut self) {
        self.peek = self.last_avail;
    }

    #[inline(always)]
    fn push_used(&mut self, head: &u16, len: u32) {
        self.write_used(self.used_next, *head, len);
        self.used_next = self.used_next.wrapping_add(1);
    }

    #[inline(always)]
    fn end_burst(&mut self, hostile: bool) -> Option<bool> {
        if self.memory_fault() {
            return None;
        }
        self.bounds.end_burst(hostile);
        Some(self.publish_used(self.used_next))
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
