//! Our split-virtqueue fast path (virtio 1.1 §2.6), written for bursts and hostile drivers.
//!
//! A [`SplitRing`] is built once when a vring starts ([`SplitRing::new`] validates size,
//! alignment and placement) and then moves whole bursts: [`SplitRing::dequeue`] takes frames
//! from a guest's transmit ring, [`SplitRing::enqueue`] fills a guest's receive ring. Each burst
//! reads `avail.idx` once, writes its used elements, stores `used.idx` once (Release) and
//! decides once whether the driver wants an interrupt.
//!
//! Every walk the driver controls is bounded: the avail index may not run more than the queue
//! size ahead, a chain lives at most `size` descriptors (per table), indices are checked
//! against their table, lengths are summed with `checked_add`, and indirect tables nest at
//! most once. Any violation marks the ring broken ([`SplitRing::fault`]): it moves nothing
//! more until the frontend restarts it, and only this ring is affected.
//!
//! Work is bounded too, whatever the driver writes (zero-length descriptors, indirect tables
//! as long as the ring, mergeable frames over empty chains): a chain, and the chains of one
//! mergeable frame together, read at most [`MAX_CHAIN_DESCS`] descriptors, or they are
//! returned unused and counted; a burst reads at most about [`BURST_DESC_BUDGET`]
//! descriptors and leaves the rest in the ring; and a ring that returned such chains sits out
//! the next [`COOLDOWN_BURSTS`] bursts, so a driver that keeps doing it gets a fraction of its
//! PMD. `bench/benches/vring.rs` measures a hostile burst against a benign one.
//!
//! Guest memory is only touched through the memory table's range-checked accessors
//! ([`super::hostmem::HostRegion`]: one range check, then a copy or an atomic), so an address
//! outside the mapped regions is an error, never an access. Descriptors are copied into our
//! stack before they are used (no double fetch); the payload is copied exactly once. The
//! common chain, one plain descriptor holding header and frame, takes a fast path at the top
//! of each burst loop, with the same checks as the general walk; whatever it declines, the
//! general walk reads again and decides on its own read.
//!
//! The ring's own layout (offsets below) is little-endian, as virtio 1.x requires.

use std::cell::Cell;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use vm_memory::GuestAddress;

use super::hostmem::HostRegion;
use super::memory::{DirtyLog, GuestMemoryTable};
use crate::packet::{Packet, MAX_FRAME};

/// `VIRTQ_DESC_F_NEXT`: the chain continues in `next` (§2.6.5).
const DESC_F_NEXT: u16 = 1;
/// `VIRTQ_DESC_F_WRITE`: the buffer is device-writable (§2.6.5).
const DESC_F_WRITE: u16 = 2;
/// `VIRTQ_DESC_F_INDIRECT`: the buffer is a table of descriptors (§2.6.5.3).
const DESC_F_INDIRECT: u16 = 4;
/// `VIRTQ_USED_F_NO_NOTIFY`: the device does not want kicks (§2.6.10).
const USED_F_NO_NOTIFY: u16 = 1;
/// `VIRTQ_AVAIL_F_NO_INTERRUPT`: the driver does not want interrupts (§2.6.7).
const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Bytes of one descriptor (§2.6.5).
const DESC_LEN: u64 = 16;
/// The largest queue size (§2.6: "The maximum Queue Size value is 32768").
pub const MAX_QUEUE_SIZE: u16 = 32768;
/// `struct virtio_net_hdr_mrg_rxbuf` (§5.1.6): with VERSION_1 the header is always 12 bytes,
/// whether or not MRG_RXBUF was negotiated.
pub const NET_HDR_LEN: usize = 12;
/// Offset of `num_buffers` in the header (§5.1.6).
const NUM_BUFFERS_OFF: usize = 10;
/// The most descriptors one chain may have, and one mergeable frame across all its chains,
/// counting every descriptor read: zero-length ones and the indirect one too. DPDK's vhost
/// library caps a packet at the same 256 buffers (`BUF_VECTOR_MAX`); Linux drivers use at
/// most `MAX_SKB_FRAGS + 2`. A chain over the cap is returned to the driver unused (used
/// length 0), counted in [`RingCounters::guest_errors`], and never walked again.
pub const MAX_CHAIN_DESCS: u32 = 256;
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

/// Why a ring was refused at start or broken later. Every variant is a driver (guest or
/// frontend) error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The queue size is 0, not a power of two, or above 32768 (§2.6).
    #[error("queue size {0} is not a power of two in 1..=32768")]
    BadSize(u32),
    /// A ring is not aligned as §2.6 requires (descriptors 16, avail 2, used 4).
    #[error("{ring} ring at {addr:#x} is misaligned")]
    Misaligned {
        /// Which ring.
        ring: &'static str,
        /// Its guest physical address.
        addr: u64,
    },
    /// A ring does not lie inside one mapped region.
    #[error("{ring} ring at {addr:#x} is not inside one memory region")]
    RingOutsideMemory {
        /// Which ring.
        ring: &'static str,
        /// Its guest physical address.
        addr: u64,
    },
    /// `avail.idx` ran more than the queue size ahead of what we consumed (§2.6.6).
    #[error("avail idx {avail} is more than the queue size ahead of {last}")]
    AvailIdxJump {
        /// The driver's avail index.
        avail: u16,
        /// Our next avail index.
        last: u16,
    },
    /// An avail ring entry names a descriptor past the table (§2.6.6).
    #[error("chain head {0} is outside the descriptor table")]
    HeadOutOfRange(u16),
    /// A `next` field points past its table (§2.6.5).
    #[error("descriptor next {0} is outside its table")]
    NextOutOfRange(u16),
    /// A chain is longer than its table: a loop, or a chain longer than the queue
    /// (§2.6.5.3.1: "A driver MUST NOT create a descriptor chain longer than the Queue Size").
    #[error("descriptor chain longer than its table (a loop?)")]
    ChainTooLong,
    /// An indirect descriptor inside an indirect table (§2.6.5.3.1).
    #[error("indirect descriptor inside an indirect table")]
    NestedIndirect,
    /// An indirect descriptor with `NEXT` set (§2.6.5.3.1).
    #[error("indirect descriptor with VIRTQ_DESC_F_NEXT")]
    IndirectWithNext,
    /// An indirect table whose length is 0, not a multiple of 16, or over the queue size
    /// (§2.6.5.3).
    #[error("indirect table length {0} is invalid")]
    BadIndirectLen(u32),
    /// A chain (or the chains of one mergeable frame) has more than [`MAX_CHAIN_DESCS`]
    /// descriptors. Not a ring fault: the chain is returned unused and counted.
    #[error("descriptor chain over {MAX_CHAIN_DESCS} descriptors")]
    ChainOverCap,
    /// A chain adds up to more than 2^32 bytes (§2.6.5.2).
    #[error("descriptor chain longer than 2^32 bytes")]
    ChainTooLarge,
    /// A device-writable buffer on a transmit chain or a read-only one on a receive chain
    /// (§2.6.5.1: "A device MUST NOT write to a device-readable buffer").
    #[error("buffer with the wrong direction for this ring")]
    WrongDirection,
    /// The guest's memory file was truncated under the switch (a SIGBUS on one of its
    /// regions, repaired by [`super::sigbus`]): the ring stops until the frontend sets its
    /// memory up again.
    #[error("guest memory was truncated under the switch")]
    MemoryFault,
    /// A buffer or an indirect table lies (partly) outside the mapped memory.
    #[error("buffer at {addr:#x} (+{len}) is outside guest memory")]
    BufferOutsideMemory {
        /// Guest physical address.
        addr: u64,
        /// Length.
        len: u64,
    },
}

impl QueueError {
    /// True when the driver caused it. Always true today; kept so callers branch the same way
    /// on every module's error.
    pub fn is_guest_fault(&self) -> bool {
        true
    }
}

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

/// Per-vring counters, updated by the PMD that owns the ring.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RingCounters {
    /// Frames moved.
    pub packets: u64,
    /// Bytes moved (frames, without the virtio-net header).
    pub bytes: u64,
    /// Transmit chains dropped: shorter than the header or longer than a frame may be.
    pub dropped_bad_length: u64,
    /// Frames for the guest dropped because the receive chain was too small (no MRG_RXBUF).
    pub dropped_too_small: u64,
    /// Frames for the guest not sent because its receive ring had no buffers.
    pub dropped_no_buffers: u64,
    /// Interrupts sent to the driver.
    pub notifications: u64,
    /// Interrupts not delivered: the driver's call eventfd was full, closed, or made
    /// blocking behind our back.
    pub interrupts_lost: u64,
    /// Chains returned to the driver unused because they broke a per-chain bound
    /// ([`MAX_CHAIN_DESCS`] descriptors per chain or per mergeable frame).
    pub guest_errors: u64,
}

#[derive(Debug, Clone, Copy)]
struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

impl Desc {
    /// A descriptor as the driver wrote it (little-endian, §2.6.5).
    #[inline(always)]
    fn from_bytes(b: &[u8; DESC_LEN as usize]) -> Desc {
        Desc {
            addr: u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            len: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            flags: u16::from_le_bytes([b[12], b[13]]),
            next: u16::from_le_bytes([b[14], b[15]]),
        }
    }
}

/// A device-side buffer: a validated-length slice of a chain, in guest physical addresses.
#[derive(Debug, Clone, Copy)]
struct Seg {
    addr: u64,
    len: u64,
}

impl Seg {
    /// The guest address `off` bytes into the segment. The driver chose `addr`: a sum that
    /// wraps is the guest's fault (the buffer lies outside memory), not an overflow.
    fn addr_at(&self, off: u64) -> Result<u64, QueueError> {
        self.addr
            .checked_add(off)
            .ok_or(QueueError::BufferOutsideMemory {
                addr: self.addr,
                len: self.len,
            })
    }
}

/// One receive chain gathered for a mergeable frame.
#[derive(Debug, Clone, Copy)]
struct RxChain {
    head: u16,
    segs_end: usize,
}

/// A started split ring. Owned by one PMD at a time (the vring's lock hands it over).
#[derive(Debug)]
pub struct SplitRing {
    mem: Arc<GuestMemoryTable>,
    cfg: RingConfig,
    /// The three rings, each a view of exactly its own bytes (validated in `new`): ring
    /// accesses are checked against the ring, not searched for in the memory table.
    desc: HostRegion,
    avail: HostRegion,
    used: HostRegion,
    /// Region of the last indirect table read and of the last buffer access.
    desc_hint: Cell<usize>,
    buf_hint: Cell<usize>,
    /// The dirty log, while the frontend logs (LOG_ALL): every write into guest memory is
    /// marked in it.
    log: Option<Arc<DirtyLog>>,
    last_avail: u16,
    used_idx: u16,
    fault: Option<QueueError>,
    /// Descriptor reads left in the current burst ([`BURST_DESC_BUDGET`]).
    budget: u32,
    /// Descriptors the chain being collected may still read ([`MAX_CHAIN_DESCS`]).
    chain_left: u32,
    /// Bursts left to sit out ([`COOLDOWN_BURSTS`]).
    cooldown: u32,
    /// Scratch: the current chain's buffers (reused, so a burst does not allocate).
    segs: Vec<Seg>,
    /// Scratch: chains of the current mergeable frame.
    chains: Vec<RxChain>,
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
        let size = u64::from(cfg.size);
        // §2.6 alignment table: descriptor table 16, available ring 2, used ring 4; sizes
        // 16 * size, 6 + 2 * size and 6 + 8 * size (with the event index fields).
        let hint = Cell::new(0);
        let mut views = [None; 3];
        let mut first_region = 0;
        for (k, (ring, addr, align, len)) in [
            ("descriptor", cfg.desc, 16, DESC_LEN * size),
            ("avail", cfg.avail, 2, 6 + 2 * size),
            ("used", cfg.used, 4, 6 + 8 * size),
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
        ring.used_idx = ring.used.load_u16(2, Ordering::Acquire);
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
            log.mark(self.used.gpa(), 4);
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

    // ----- guest transmit ring -> switch -----

    /// Takes up to `pkts.len()` frames from a guest transmit ring into `pkts[..n]`, strips the
    /// virtio-net header, completes the chains (used length 0) and returns `n` and whether the
    /// driver must be notified. Bad chains are dropped and counted; ring faults break the ring.
    pub fn dequeue(&mut self, pkts: &mut [Packet], cnt: &mut RingCounters) -> (usize, bool) {
        if self.sits_out() {
            return (0, false);
        }
        let Some(pending) = self.pending() else {
            return (0, false);
        };
        let over_cap = cnt.guest_errors;
        let n = usize::from(pending).min(pkts.len());
        let mut got = 0;
        let mut used = self.used_idx;
        self.budget = BURST_DESC_BUDGET;
        for _ in 0..n {
            let head = self.avail_entry(self.last_avail);
            let pkt = &mut pkts[got];
            // The fast path reads one descriptor (at most 32 a burst) and is not counted;
            // the general walk spends the budget.
            let r = if self.read_tx_fast(head, pkt) {
                Ok(true)
            } else if self.budget < MAX_CHAIN_DESCS {
                // The rest waits for the next burst: the driver made this one expensive.
                break;
            } else {
                self.read_tx_chain(head, pkt)
            };
            match r {
                Ok(true) => {
                    cnt.packets += 1;
                    cnt.bytes += pkts[got].len() as u64;
                    got += 1;
                }
                Ok(false) => cnt.dropped_bad_length += 1,
                // Returned unused below, like a chain of bad length.
                Err(QueueError::ChainOverCap) => cnt.guest_errors += 1,
                Err(e) => {
                    self.fault = Some(e);
                    break;
                }
            }
            self.write_used(used, head, 0);
            used = used.wrapping_add(1);
            self.last_avail = self.last_avail.wrapping_add(1);
        }
        if self.memory_fault() {
            // Frames read from a repaired page are zeros, not the guest's: none goes on.
            return (0, false);
        }
        self.cool_down_if(cnt.guest_errors != over_cap);
        let notify = self.publish_used(used);
        cnt.notifications += u64::from(notify);
        (got, notify)
    }

    /// The common transmit chain: one read-only descriptor holding header and frame, in the
    /// region of the last buffer. True when the frame was copied into `pkt`; false hands the
    /// chain to [`SplitRing::read_tx_chain`], which reads the descriptor again and checks and
    /// reports everything (this one only picks the path, so that is no double fetch: every
    /// decision is made on one read).
    #[inline(always)]
    fn read_tx_fast(&self, head: u16, pkt: &mut Packet) -> bool {
        if u32::from(head) >= self.cfg.size {
            return false;
        }
        let Ok(d) = self.table_desc(head) else {
            return false;
        };
        if d.flags & (DESC_F_NEXT | DESC_F_INDIRECT | DESC_F_WRITE) != 0 {
            return false;
        }
        let Some(frame_len) = (d.len as usize).checked_sub(NET_HDR_LEN) else {
            return false;
        };
        let Some(addr) = d.addr.checked_add(NET_HDR_LEN as u64) else {
            return false;
        };
        match pkt.prepare(frame_len) {
            Some(dst) => self.mem.read(dst, addr, &self.buf_hint),
            None => false,
        }
    }

    /// Gathers one transmit chain into `pkt` (one copy, header skipped). `Ok(false)`: the
    /// chain's length is unusable and it is dropped.
    fn read_tx_chain(&mut self, head: u16, pkt: &mut Packet) -> Result<bool, QueueError> {
        self.segs.clear();
        self.chain_left = MAX_CHAIN_DESCS;
        let total = self.collect(head, false)?;
        // The header is not interpreted: no offload feature is offered, so it carries nothing
        // the switch needs (§5.1.6.2).
        let Some(frame_len) = total.checked_sub(NET_HDR_LEN as u64) else {
            return Ok(false);
        };
        if frame_len > MAX_FRAME as u64 {
            return Ok(false);
        }
        let Some(dst) = pkt.prepare(frame_len as usize) else {
            return Ok(false);
        };
        let mut skip = NET_HDR_LEN as u64;
        let mut off = 0usize;
        for seg in &self.segs {
            let s = skip.min(seg.len);
            skip -= s;
            let len = seg.len - s;
            if len == 0 {
                continue;
            }
            let addr = seg.addr_at(s)?;
            // len <= frame_len - off by construction (the segments add up to `total`).
            let end = off + len as usize;
            // Double-fetch note: this is the only read of these bytes; the frame is switch
            // memory from here on, so a guest rewriting its buffer cannot change what the
            // pipeline parses (the TOCTOU Firecracker documents does not arise).
            if !self.mem.read(&mut dst[off..end], addr, &self.buf_hint) {
                return Err(QueueError::BufferOutsideMemory { addr, len });
            }
            off = end;
        }
        Ok(true)
    }

    // ----- switch -> guest receive ring -----

    /// Writes `pkts` (header + frame) into a guest receive ring, with or without mergeable
    /// buffers. Returns how many frames were taken (sent, or dropped and counted because a
    /// chain was too small) and whether the driver must be notified. Stops early when the ring
    /// has no buffers left or breaks.
    pub fn enqueue(&mut self, pkts: &[Packet], mrg: bool, cnt: &mut RingCounters) -> (usize, bool) {
        if self.sits_out() {
            return (0, false);
        }
        let Some(pending) = self.pending() else {
            return (0, false);
        };
        let over_cap = cnt.guest_errors;
        let avail_end = self.last_avail.wrapping_add(pending);
        let mut used = self.used_idx;
        let mut taken = 0;
        self.budget = BURST_DESC_BUDGET;
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
            if self.budget < MAX_CHAIN_DESCS {
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
                    self.fault = Some(e);
                    break;
                }
            }
        }
        cnt.dropped_no_buffers += (pkts.len() - taken) as u64;
        if self.memory_fault() {
            // The buffers were a repaired page, not the guest's: nothing is handed back.
            return (taken, false);
        }
        self.cool_down_if(cnt.guest_errors != over_cap);
        let notify = self.publish_used(used);
        cnt.notifications += u64::from(notify);
        (taken, notify)
    }

    /// The common receive chain: one writable descriptor with room for header and frame, in
    /// the region of the last buffer. Writes both (and logs them) and returns the used length;
    /// `None` hands the chain to the general path, which reads the descriptor again and decides
    /// on its own read (this one only picks the path).
    #[inline(always)]
    fn write_rx_fast(&self, head: u16, frame: &[u8]) -> Option<u32> {
        if u32::from(head) >= self.cfg.size {
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
        if !self.mem.write2(&header(1), frame, d.addr, &self.buf_hint) {
            return None;
        }
        if let Some(log) = &self.log {
            log.mark(d.addr, total as u64);
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
        self.segs.clear();
        self.chain_left = MAX_CHAIN_DESCS;
        let cap = match self.collect(head, true) {
            Err(QueueError::ChainOverCap) => {
                self.return_unused(&[RxChain { head, segs_end: 0 }], used);
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
        self.segs.clear();
        self.chains.clear();
        self.chain_left = MAX_CHAIN_DESCS;
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
            self.chains.push(RxChain {
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
    fn return_unused(&self, chains: &[RxChain], used: &mut u16) {
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
        let written = self.mem.write(bytes, addr, &self.buf_hint);
        // Marked even when the write failed part way: the bytes inside guest memory may have
        // been written, and marking more than was written is harmless.
        if let Some(log) = &self.log {
            log.mark(addr, bytes.len() as u64);
        }
        if !written {
            return Err(QueueError::BufferOutsideMemory {
                addr,
                len: bytes.len() as u64,
            });
        }
        Ok(bytes.len())
    }

    // ----- notification suppression -----

    /// Asks the driver for kicks again (§2.6.10): with EVENT_IDX by writing `avail_event`,
    /// otherwise by clearing `VIRTQ_USED_F_NO_NOTIFY`. Returns true when the ring is still
    /// empty afterwards (the caller may sleep), false when buffers arrived meanwhile.
    pub fn enable_kicks(&mut self) -> bool {
        if self.fault.is_some() {
            return true;
        }
        let size = u64::from(self.cfg.size);
        if self.cfg.event_idx {
            self.store_used_u16(4 + 8 * size, self.last_avail, Ordering::Relaxed);
        } else {
            self.store_used_u16(0, 0, Ordering::Relaxed);
        }
        // Orders the store above before the avail.idx load below. The driver does the mirror
        // image (store avail.idx, barrier, read the suppression field): with both fences, at
        // least one side sees the other's write, so a buffer added now is either seen here or
        // kicked (§2.6.10.2).
        fence(Ordering::SeqCst);
        self.avail.load_u16(2, Ordering::Acquire) == self.last_avail
    }

    /// Stops kicks while the PMD polls: sets `VIRTQ_USED_F_NO_NOTIFY`. With EVENT_IDX nothing is
    /// written: `avail_event` stays behind, so the driver kicks at most once per index wrap.
    pub fn disable_kicks(&mut self) {
        if !self.cfg.event_idx && self.fault.is_none() {
            self.store_used_u16(0, USED_F_NO_NOTIFY, Ordering::Relaxed);
        }
    }

    /// Frames waiting in the avail ring (0 when broken).
    pub fn has_pending(&mut self) -> bool {
        self.pending().is_some_and(|n| n > 0)
    }

    // ----- ring primitives -----

    /// Buffers the driver made available since our last burst, or `None` when the ring is
    /// (now) broken. One Acquire load of `avail.idx` per burst.
    fn pending(&mut self) -> Option<u16> {
        if self.fault.is_some() || self.memory_fault() {
            return None;
        }
        // Acquire: the ring entries and descriptors the driver wrote before publishing this
        // index are visible to the reads that follow (pairs with the driver's write barrier
        // before it updates avail.idx, §2.6.13.3).
        let avail = self.avail.load_u16(2, Ordering::Acquire);
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

    /// The chain head at avail position `idx` (not yet checked against the table).
    fn avail_entry(&self, idx: u16) -> u16 {
        let slot = u64::from(idx) & u64::from(self.cfg.size - 1);
        self.avail.load_u16(4 + 2 * slot, Ordering::Relaxed)
    }

    /// Writes used element `idx` (not yet published).
    fn write_used(&self, idx: u16, head: u16, len: u32) {
        let slot = u64::from(idx) & u64::from(self.cfg.size - 1);
        let mut elem = [0u8; 8];
        elem[..4].copy_from_slice(&u32::from(head).to_le_bytes());
        elem[4..].copy_from_slice(&len.to_le_bytes());
        // Inside the used ring, validated in `new`: cannot fail.
        let field = 4 + 8 * slot;
        let _ = self.used.write(field, &elem);
        if let Some(log) = &self.log {
            log.mark(self.used.gpa() + field, 8);
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
        self.store_used_u16(2, new, Ordering::Release);
        self.used_idx = new;
        // Orders the used.idx store before reading used_event / avail.flags. The driver writes
        // used_event, fences and re-reads used.idx; without this fence both sides could miss
        // each other's update and the driver would sleep on a full used ring (§2.6.7.2).
        fence(Ordering::SeqCst);
        let size = u64::from(self.cfg.size);
        if self.cfg.event_idx {
            // §2.6.7.2: notify iff used_event lies in (old, new] (vring_need_event).
            let event = self.avail.load_u16(4 + 2 * size, Ordering::Relaxed);
            new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
        } else {
            self.avail.load_u16(0, Ordering::Relaxed) & AVAIL_F_NO_INTERRUPT == 0
        }
    }

    /// Walks the chain at `head`, appending its non-empty buffers to `self.segs`, and returns
    /// its total length. `writable`: the direction every buffer must have.
    fn collect(&mut self, head: u16, writable: bool) -> Result<u64, QueueError> {
        // §2.6.6: ring entries index the descriptor table.
        if u32::from(head) >= self.cfg.size {
            return Err(QueueError::HeadOutOfRange(head));
        }
        // The common chain: one plain descriptor (virtio-net drivers put header and frame in
        // one buffer). Same checks as the general walk below, without its bookkeeping.
        self.step()?;
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

    /// The general walk of [`SplitRing::collect`]: chains and indirect tables. `first` is the
    /// head descriptor, already read.
    #[inline(never)]
    fn collect_chain(&mut self, head: u16, first: Desc, writable: bool) -> Result<u64, QueueError> {
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
                    self.step()?;
                    self.read_desc(table + DESC_LEN * u64::from(idx))?
                }
                None => {
                    self.step()?;
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
                let n = d.len / DESC_LEN as u32;
                if d.len == 0 || d.len % DESC_LEN as u32 != 0 || n > self.cfg.size {
                    return Err(QueueError::BadIndirectLen(d.len));
                }
                let inside = self
                    .mem
                    .region_of(d.addr, u64::from(d.len), &self.desc_hint)
                    .is_some()
                    || vm_memory::GuestMemoryBackend::check_range(
                        self.mem.mem(),
                        GuestAddress(d.addr),
                        d.len as usize,
                    );
                if !inside {
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
            if (d.flags & DESC_F_WRITE != 0) != writable {
                return Err(QueueError::WrongDirection);
            }
            // §2.6.5.2: "Drivers MUST NOT add a descriptor chain longer than 2^32 bytes".
            total = total
                .checked_add(u64::from(d.len))
                .filter(|&t| t <= u64::from(u32::MAX))
                .ok_or(QueueError::ChainTooLarge)?;
            if d.len > 0 {
                self.segs.push(Seg {
                    addr: d.addr,
                    len: u64::from(d.len),
                });
            }
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

    /// Accounts for one more descriptor read by the chain being collected: fails once the
    /// chain (or mergeable frame) has read [`MAX_CHAIN_DESCS`], and spends the burst's budget.
    #[inline(always)]
    fn step(&mut self) -> Result<(), QueueError> {
        if self.chain_left == 0 {
            return Err(QueueError::ChainOverCap);
        }
        self.chain_left -= 1;
        self.budget = self.budget.saturating_sub(1);
        Ok(())
    }

    /// Copies descriptor `idx` out of the ring's descriptor table (`idx` is checked against
    /// the table's size by the caller; the view checks it again).
    #[inline(always)]
    fn table_desc(&self, idx: u16) -> Result<Desc, QueueError> {
        let mut b = [0u8; DESC_LEN as usize];
        if !self.desc.read(DESC_LEN * u64::from(idx), &mut b) {
            return Err(QueueError::HeadOutOfRange(idx));
        }
        Ok(Desc::from_bytes(&b))
    }

    /// Copies one descriptor of an indirect table out of guest memory.
    fn read_desc(&self, addr: u64) -> Result<Desc, QueueError> {
        let mut b = [0u8; DESC_LEN as usize];
        if !self.mem.read(&mut b, addr, &self.desc_hint) {
            return Err(QueueError::BufferOutsideMemory {
                addr,
                len: DESC_LEN,
            });
        }
        Ok(Desc::from_bytes(&b))
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
}

/// The virtio-net header we write on receive: no checksum or GSO information (none offered),
/// `num_buffers` set (1 without MRG_RXBUF, §5.1.6.4).
fn header(num_buffers: u16) -> [u8; NET_HDR_LEN] {
    let mut h = [0u8; NET_HDR_LEN];
    h[NUM_BUFFERS_OFF..].copy_from_slice(&num_buffers.to_le_bytes());
    h
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

#[cfg(test)]
mod test {
    use super::*;
    use std::io::Write;
    use vhost::vhost_user::message::VhostUserMemoryRegion;
    use vm_memory::Bytes;

    const MEM: u64 = 1 << 20;

    fn table() -> Arc<GuestMemoryTable> {
        let mut f = crate::vhost::memory::test::memfd();
        f.write_all(&vec![0u8; MEM as usize]).unwrap();
        let r = VhostUserMemoryRegion::new(0, MEM, 0, 0);
        Arc::new(GuestMemoryTable::map(&[r], vec![f]).unwrap())
    }

    fn cfg(size: u32, event_idx: bool) -> RingConfig {
        RingConfig {
            size,
            desc: GuestAddress(0),
            avail: GuestAddress(0x10000),
            used: GuestAddress(0x20000),
            event_idx,
        }
    }

    #[test]
    fn start_checks_size_alignment_and_placement() {
        let mem = table();
        for size in [0, 3, 65536] {
            let e = SplitRing::new(mem.clone(), cfg(size, false), 0).unwrap_err();
            assert_eq!(e, QueueError::BadSize(size));
        }
        let mut c = cfg(8, false);
        c.desc = GuestAddress(8);
        assert!(matches!(
            SplitRing::new(mem.clone(), c, 0),
            Err(QueueError::Misaligned { .. })
        ));
        let mut c = cfg(8, false);
        c.used = GuestAddress(MEM - 8);
        assert!(matches!(
            SplitRing::new(mem.clone(), c, 0),
            Err(QueueError::RingOutsideMemory { .. })
        ));
        // The largest size fits (overlapping its own rings only hurts the guest itself).
        assert!(SplitRing::new(mem, cfg(MAX_QUEUE_SIZE.into(), true), 0).is_ok());
    }

    /// Buffers alternating between two regions: the fast paths (which try the region of the
    /// last buffer only) hand every other chain to the general path, and frames still arrive
    /// intact both ways, with their used lengths.
    #[test]
    fn buffers_in_two_regions() {
        let mut files = Vec::new();
        for _ in 0..2 {
            let mut f = crate::vhost::memory::test::memfd();
            f.write_all(&vec![0u8; MEM as usize]).unwrap();
            files.push(f);
        }
        let regions = [
            VhostUserMemoryRegion::new(0, MEM, 0, 0),
            VhostUserMemoryRegion::new(MEM, MEM, MEM, 0),
        ];
        let mem = Arc::new(GuestMemoryTable::map(&regions, files).unwrap());
        let m = mem.mem();
        let n = 8u16;
        // Transmit ring at 0 (rings in region 0), receive ring at 0x8000.
        let (tx, rx) = (0u64, 0x8000u64);
        let ring = |base: u64| RingConfig {
            size: 16,
            desc: GuestAddress(base),
            avail: GuestAddress(base + 0x1000),
            used: GuestAddress(base + 0x2000),
            event_idx: false,
        };
        let buf =
            |i: u16, dir: u64| (u64::from(i % 2)) * MEM + 0x40000 + dir + u64::from(i) * 0x800;
        for i in 0..n {
            let frame: Vec<u8> = (0..60 + usize::from(i))
                .map(|b| b as u8 ^ i as u8)
                .collect();
            let mut chain = vec![0u8; NET_HDR_LEN];
            chain.extend_from_slice(&frame);
            m.write_slice(&chain, GuestAddress(buf(i, 0))).unwrap();
            for (base, addr, len, flags) in [
                (tx, buf(i, 0), chain.len() as u32, 0u16),
                (rx, buf(i, 0x20000), 2048, DESC_F_WRITE),
            ] {
                let mut d = [0u8; 16];
                d[..8].copy_from_slice(&addr.to_le_bytes());
                d[8..12].copy_from_slice(&len.to_le_bytes());
                d[12..14].copy_from_slice(&flags.to_le_bytes());
                m.write_slice(&d, GuestAddress(base + 16 * u64::from(i)))
                    .unwrap();
                m.write_obj(i, GuestAddress(base + 0x1004 + 2 * u64::from(i)))
                    .unwrap();
            }
        }
        m.write_obj(n, GuestAddress(tx + 0x1002)).unwrap();
        m.write_obj(n, GuestAddress(rx + 0x1002)).unwrap();
        let mut txr = SplitRing::new(mem.clone(), ring(tx), 0).unwrap();
        let mut pkts = vec![Packet::new(); 32];
        let mut cnt = RingCounters::default();
        let (got, _) = txr.dequeue(&mut pkts, &mut cnt);
        assert_eq!(got, usize::from(n), "{:?}", txr.fault());
        for (i, p) in pkts[..got].iter().enumerate() {
            let want: Vec<u8> = (0..60 + i).map(|b| b as u8 ^ i as u8).collect();
            assert_eq!(p.data(), &want[..], "frame {i} out of region {}", i % 2);
        }
        for mrg in [false, true] {
            // A fresh start of the receive ring each round (used idx back to 0).
            m.write_obj(0u16, GuestAddress(rx + 0x2002)).unwrap();
            let mut rxr = SplitRing::new(mem.clone(), ring(rx), 0).unwrap();
            let (taken, _) = rxr.enqueue(&pkts[..got], mrg, &mut cnt);
            assert_eq!(taken, got, "{:?}", rxr.fault());
            for i in 0..n {
                let mut b = vec![0u8; NET_HDR_LEN + 60 + usize::from(i)];
                m.read_slice(&mut b, GuestAddress(buf(i, 0x20000))).unwrap();
                assert_eq!(&b[NET_HDR_LEN..], pkts[usize::from(i)].data());
                assert_eq!(u16::from_le_bytes([b[10], b[11]]), 1, "num_buffers");
                let used: u32 = m
                    .read_obj(GuestAddress(rx + 0x2004 + 8 * u64::from(i) + 4))
                    .unwrap();
                assert_eq!(used as usize, b.len(), "used length of chain {i}");
            }
            assert!(rxr.fault().is_none());
        }
        assert!(txr.fault().is_none());
        assert_eq!(cnt.dropped_bad_length + cnt.dropped_too_small, 0);
    }

    /// A tiny xorshift generator: reproducible garbage without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Random descriptor tables, avail rings and indices: the ring moves frames or breaks,
    /// but never panics, and every frame it produces has a sane length.
    #[test]
    fn garbage_rings_never_panic() {
        let mem = table();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut pkts = vec![Packet::new(); 32];
        let out: Vec<Packet> = (0..32)
            .map(|i| {
                let mut p = Packet::new();
                p.copy_from(&vec![i as u8; 60 + 50 * i]);
                p
            })
            .collect();
        let mut broken = 0;
        for round in 0..300 {
            let size = 1u32 << (rng.next() % 5 + 2);
            // Descriptors pointing mostly into memory, sometimes anywhere.
            for i in 0..u64::from(size) {
                let mut d = [0u8; 16];
                let addr = if rng.next().is_multiple_of(8) {
                    rng.next()
                } else {
                    0x30000 + rng.next() % (MEM - 0x30000)
                };
                let len = match rng.next() % 4 {
                    0 => rng.next() as u32,
                    1 => 0,
                    _ => (rng.next() % 3000) as u32,
                };
                d[..8].copy_from_slice(&addr.to_le_bytes());
                d[8..12].copy_from_slice(&len.to_le_bytes());
                d[12..14].copy_from_slice(&((rng.next() % 8) as u16).to_le_bytes());
                d[14..].copy_from_slice(&((rng.next() % u64::from(size + 2)) as u16).to_le_bytes());
                mem.mem().write_slice(&d, GuestAddress(16 * i)).unwrap();
            }
            for i in 0..u64::from(size) {
                let head = (rng.next() % u64::from(size + 1)) as u16;
                mem.mem()
                    .write_obj(head, GuestAddress(0x10000 + 4 + 2 * i))
                    .unwrap();
            }
            let avail = (rng.next() % u64::from(2 * size)) as u16;
            mem.mem().write_obj(avail, GuestAddress(0x10002)).unwrap();
            mem.mem().write_obj(0u16, GuestAddress(0x20002)).unwrap();
            let mut ring = SplitRing::new(mem.clone(), cfg(size, round % 2 == 0), 0).unwrap();
            let mut cnt = RingCounters::default();
            if round % 3 == 0 {
                ring.enqueue(&out, round % 4 == 0, &mut cnt);
            } else {
                let (n, _) = ring.dequeue(&mut pkts, &mut cnt);
                assert!(pkts[..n].iter().all(|p| p.len() <= MAX_FRAME));
            }
            broken += usize::from(ring.fault().is_some());
            assert!(u32::from(ring.last_avail()) <= size);
        }
        assert!(
            broken > 0 && broken < 300,
            "both outcomes exercised: {broken}"
        );
    }
}
