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

use vm_memory::GuestAddress;

use super::chain::{Chain, Seg, MAX_CHAIN_DESCS};
use super::error::QueueError;
use super::layout::{avail, desc, used, AVAIL_F_NO_INTERRUPT, MAX_QUEUE_SIZE, USED_F_NO_NOTIFY};
use crate::vhost::hostmem::HostRegion;
use crate::vhost::memory::{DirtyLog, GuestMemoryTable};

/// Descriptor reads the general walk may make in one burst. A chain is walked only while at
/// least [`MAX_CHAIN_DESCS`] of the budget is left, so a burst reads fewer than
/// `BURST_DESC_BUDGET + MAX_CHAIN_DESCS` descriptors (plus one per frame for the common
/// one-descriptor chains, which the fast paths take without counting) whatever the driver
/// wrote, and a benign burst (32 frames of up to 24 descriptors each) never meets the bound.
/// What is left waits in the ring for the next burst.
pub const BURST_DESC_BUDGET: u32 = 1024;
/// Bursts a ring sits out after one that returned a chain over the bound. A benign driver
/// never meets the bound; a hostile one that keeps the whole ring full of such chains costs
/// its PMD one bounded burst in `COOLDOWN_BURSTS + 1`, about what a benign full burst costs
/// (`bench/benches/vring.rs`, `vring_hostile`).
pub const COOLDOWN_BURSTS: u32 = 15;

/// Where a ring lives and how it was negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingConfig {
    /// Queue size (number of descriptors).
    pub size: u32,
    /// Descriptor table, guest physical.
    pub desc: GuestAddress,
    /// Available ring, guest physical.
    pub avail: GuestAddress,
    /// Used ring, guest physical.
    pub used: GuestAddress,
    /// VIRTIO_RING_F_EVENT_IDX was negotiated.
    pub event_idx: bool,
}

/// A started split ring. Owned by one PMD at a time (the vring's lock hands it over).
#[derive(Debug)]
pub struct SplitRing {
    pub(super) mem: Arc<GuestMemoryTable>,
    pub(super) cfg: RingConfig,
    /// The three rings, each a view of exactly its own bytes (validated in `new`): ring
    /// accesses are checked against the ring, not searched for in the memory table.
    pub(super) desc: HostRegion,
    avail: HostRegion,
    used: HostRegion,
    /// Region of the last indirect table read and of the last buffer access.
    pub(super) desc_hint: Cell<usize>,
    buf_hint: Cell<usize>,
    /// The dirty log, while the frontend logs (LOG_ALL): every write into guest memory is
    /// marked in it.
    log: Option<Arc<DirtyLog>>,
    /// The next avail index to consume; the net paths move it past each chain they take.
    pub(crate) last_avail: u16,
    used_idx: u16,
    fault: Option<QueueError>,
    /// Descriptor reads left in the current burst ([`BURST_DESC_BUDGET`]).
    pub(super) budget: u32,
    /// Descriptors the chain being collected may still read ([`MAX_CHAIN_DESCS`]).
    pub(super) chain_left: u32,
    /// Bursts left to sit out ([`COOLDOWN_BURSTS`]).
    cooldown: u32,
    /// Scratch: the current chain's buffers (reused, so a burst does not allocate).
    pub(crate) segs: Vec<Seg>,
    /// Scratch: chains of the current mergeable frame.
    pub(crate) chains: Vec<Chain>,
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
        let hint = Cell::new(0);
        let mut views = [None; 3];
        let mut first_region = 0;
        for (k, (ring, addr, align, len)) in [
            (
                "descriptor",
                cfg.desc,
                desc::ALIGN,
                desc::table_len(cfg.size),
            ),
            ("avail", cfg.avail, avail::ALIGN, avail::ring_len(cfg.size)),
            ("used", cfg.used, used::ALIGN, used::ring_len(cfg.size)),
        ]
        .into_iter()
        .enumerate()
        {
            if addr.0 % align != 0 {
                return Err(QueueError::Misaligned { ring, addr: addr.0 });
            }
            // Each ring must lie inside one region: every later ring access uses that
            // region's slice at an offset below `len`.
            let outside = QueueError::RingOutsideMemory { ring, addr: addr.0 };
            let (region, off) = mem.region_of(addr.0, len, &hint).ok_or(outside.clone())?;
            views[k] = Some(mem.host(region).sub(off, len).ok_or(outside)?);
            if k == 0 {
                first_region = region;
            }
        }
        let [Some(desc), Some(avail), Some(used)] = views else {
            unreachable!("every ring was placed above");
        };
        let mut ring = SplitRing {
            mem,
            cfg,
            desc,
            avail,
            used,
            desc_hint: Cell::new(first_region),
            buf_hint: Cell::new(first_region),
            log: None,
            last_avail: base,
            used_idx: 0,
            fault: None,
            budget: 0,
            chain_left: 0,
            cooldown: 0,
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
        self.log = log;
    }

    /// True when the ring reads and writes through `mem`.
    pub fn uses(&self, mem: &Arc<GuestMemoryTable>) -> bool {
        Arc::ptr_eq(&self.mem, mem)
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
        ring.set_log(self.log);
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

    // ----- a burst, for the net paths -----

    /// Starts a burst: the buffers the driver made available since the last one, or `None`
    /// when the ring sits out this burst or is (now) broken. Refills the burst's descriptor
    /// budget ([`BURST_DESC_BUDGET`]).
    #[inline(always)]
    pub(crate) fn begin_burst(&mut self) -> Option<u16> {
        if self.sits_out() {
            return None;
        }
        let pending = self.pending()?;
        self.budget = BURST_DESC_BUDGET;
        Some(pending)
    }

    /// The used index the burst starts from: its used elements go at `next_used()`,
    /// `next_used() + 1`, ... until [`SplitRing::end_burst`] publishes them.
    #[inline(always)]
    pub(crate) fn next_used(&self) -> u16 {
        self.used_idx
    }

    /// True while the burst's budget still covers a whole chain walk ([`MAX_CHAIN_DESCS`]);
    /// once false, the rest of the ring waits for the next burst.
    #[inline(always)]
    pub(crate) fn can_walk(&self) -> bool {
        self.budget >= MAX_CHAIN_DESCS
    }

    /// Ends a burst: publishes the used elements up to `used` and says whether to notify the
    /// driver; `hostile` (the burst returned chains over the bound) makes the ring sit out
    /// the next [`COOLDOWN_BURSTS`] bursts. `None`, with nothing published and the ring
    /// broken, when guest memory or the dirty log was truncated under the burst: what it read
    /// or wrote was a repaired page, not the guest's.
    #[inline(always)]
    pub(crate) fn end_burst(&mut self, used: u16, hostile: bool) -> Option<bool> {
        if self.memory_fault() {
            return None;
        }
        self.cool_down_if(hostile);
        Some(self.publish_used(used))
    }

    /// Breaks the ring: it moves nothing more until the frontend restarts it.
    #[inline]
    pub(crate) fn set_fault(&mut self, e: QueueError) {
        self.fault = Some(e);
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

    /// True while the ring sits out bursts after returning chains over the bound (and counts
    /// one off).
    #[inline(always)]
    fn sits_out(&mut self) -> bool {
        if self.cooldown == 0 {
            return false;
        }
        self.cooldown -= 1;
        true
    }

    /// Makes the ring sit out the next [`COOLDOWN_BURSTS`] bursts if `hostile`.
    #[inline(always)]
    fn cool_down_if(&mut self, hostile: bool) {
        if hostile {
            self.cooldown = COOLDOWN_BURSTS;
        }
    }

    /// True (and the ring broken) once guest memory or the dirty log was truncated under us:
    /// whatever the last accesses read or wrote was a repaired page, not the guest's.
    #[inline]
    fn memory_fault(&mut self) -> bool {
        if self.mem.poisoned() || self.log.as_ref().is_some_and(|l| l.poisoned()) {
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
        if let Some(log) = &self.log {
            log.mark(self.used.gpa() + field, used::ELEM_SIZE);
        }
    }

    /// Publishes used elements up to `new` with one store and says whether to notify.
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
        if let Some(log) = &self.log {
            log.mark(self.used.gpa() + field, 2);
        }
    }

    // ----- guest buffers -----

    /// Copies guest bytes at `addr` into `dst` (the region of the last buffer first). False
    /// when they do not lie inside guest memory.
    #[inline(always)]
    pub(crate) fn read_buf(&self, dst: &mut [u8], addr: u64) -> bool {
        self.mem.read(dst, addr, &self.buf_hint)
    }

    /// Copies `bytes` into guest memory at `addr` and marks them in the dirty log, even when
    /// the write failed part way (the bytes inside guest memory may have been written, and
    /// marking more than was written is harmless). False when they do not lie inside guest
    /// memory.
    #[inline]
    pub(crate) fn write_buf(&self, bytes: &[u8], addr: u64) -> bool {
        let written = self.mem.write(bytes, addr, &self.buf_hint);
        if let Some(log) = &self.log {
            log.mark(addr, bytes.len() as u64);
        }
        written
    }

    /// Copies `a` then `b` into guest memory at `addr` when both fit in the region of the last
    /// buffer, and marks them in the dirty log; false (nothing written) otherwise.
    #[inline(always)]
    pub(crate) fn write_buf2(&self, a: &[u8], b: &[u8], addr: u64) -> bool {
        if !self.mem.write2(a, b, addr, &self.buf_hint) {
            return false;
        }
        if let Some(log) = &self.log {
            log.mark(addr, (a.len() + b.len()) as u64);
        }
        true
    }
}
