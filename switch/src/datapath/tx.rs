//! Per-output-port transmit batches: frames gather during a burst and leave in one
//! `tx_burst` call per port.
//!
//! [`TxBatches`] is the one place that fills a batch (take a [`TxSlot`], fill it, commit it)
//! and flushes the ports that have frames waiting; [`TxCtx`] is what every sender (the actions,
//! the overlay's encapsulation, ARP, released frames) gets to reach it.

use std::time::Instant;

use flowtable::PortNo;
use ports::{Offload, Packet, TxQueue, BURST};

use crate::stats::{DropReason, PmdStats};

/// One output port as a PMD sees it: its tx queue handle and the batch being filled.
struct TxPort {
    port: PortNo,
    queue: Box<dyn TxQueue>,
    batch: Vec<Packet>,
    len: usize,
}

impl TxPort {
    fn new(port: PortNo, queue: Box<dyn TxQueue>) -> TxPort {
        TxPort {
            port,
            queue,
            batch: (0..BURST).map(|_| Packet::new()).collect(),
            len: 0,
        }
    }

    /// Makes room for one more frame: flushes the batch when it is full.
    #[inline]
    fn make_room(&mut self, stats: &mut PmdStats) {
        if self.len == BURST {
            self.flush(stats);
        }
    }

    /// Keeps the frame written into the next free slot (`batch[len]`).
    #[inline]
    fn commit(&mut self) {
        self.len += 1;
    }

    /// Sends the batch; what the queue refuses is counted as `tx_full`.
    fn flush(&mut self, stats: &mut PmdStats) {
        if self.len == 0 {
            return;
        }
        let n = self.len;
        self.len = 0;
        let sent = self.queue.tx_burst(&mut self.batch[..n]).min(n);
        let bytes: usize = self.batch[..sent].iter().map(Packet::len).sum();
        let refused = (n - sent) as u64;
        let pc = stats.port_mut(self.port);
        pc.tx_packets += sent as u64;
        pc.tx_bytes += bytes as u64;
        pc.tx_dropped += refused;
        stats.drops[DropReason::TxFull as usize] += refused;
    }
}

/// A PMD's transmit side: a batch per output port (indexed by port number) and the ports
/// whose batch has frames waiting (the dirty list), each flushed once per burst.
pub(crate) struct TxBatches {
    ports: Vec<Option<TxPort>>,
    dirty: Vec<PortNo>,
}

impl TxBatches {
    /// No ports yet.
    pub fn new() -> TxBatches {
        TxBatches {
            ports: Vec::new(),
            dirty: Vec::with_capacity(64),
        }
    }

    /// Transmits to `port` through `queue` from now on (replacing any earlier queue of that
    /// number).
    pub fn add(&mut self, port: PortNo, queue: Box<dyn TxQueue>) {
        if self.ports.len() <= port.index() {
            self.ports.resize_with(port.index() + 1, || None);
        }
        self.ports[port.index()] = Some(TxPort::new(port, queue));
    }

    /// True when `port`'s queue takes a frame with offload request `request` as it is; false for
    /// a port this PMD has no queue for (a vxlan port encapsulates: the frame must be
    /// finished first). Asked per frame that carries a request (a guest's peer may have
    /// connected or renegotiated since the last one), never for the others.
    #[inline]
    pub fn takes(&self, port: PortNo, request: &Offload) -> bool {
        match self.ports.get(port.index()) {
            Some(Some(tx)) => tx.queue.offloads().takes(request),
            _ => false,
        }
    }

    /// Stops transmitting to `port`, after sending what its batch holds.
    pub fn remove(&mut self, port: PortNo, stats: &mut PmdStats) {
        if let Some(mut tx) = self.ports.get_mut(port.index()).and_then(Option::take) {
            tx.flush(stats);
        }
    }

    /// The next free slot of `port`'s batch (flushing the batch first when it is full), and
    /// the port on the dirty list; `None` if this PMD has no such port. The caller writes
    /// the frame into [`TxSlot::packet`] and keeps it with [`TxSlot::commit`]; a slot not
    /// committed is reused by the next frame (a port left on the dirty list with an empty
    /// batch flushes nothing).
    #[inline(always)]
    pub fn slot(&mut self, port: PortNo, stats: &mut PmdStats) -> Option<TxSlot<'_>> {
        let Some(Some(tx)) = self.ports.get_mut(port.index()) else {
            return None;
        };
        if tx.len == 0 {
            self.dirty.push(port);
        }
        tx.make_room(stats);
        Some(TxSlot { tx })
    }

    /// Moves `pkt` into `port`'s batch (a buffer swap: `pkt` gets the slot's old buffer).
    /// False, with `pkt` untouched, if this PMD has no such port.
    #[inline]
    pub fn enqueue(&mut self, port: PortNo, pkt: &mut Packet, stats: &mut PmdStats) -> bool {
        let Some(mut slot) = self.slot(port, stats) else {
            return false;
        };
        std::mem::swap(slot.packet(), pkt);
        slot.commit();
        true
    }

    /// Sends every batch that has frames waiting, each in one `tx_burst`.
    pub fn flush(&mut self, stats: &mut PmdStats) {
        for port in self.dirty.drain(..) {
            if let Some(Some(tx)) = self.ports.get_mut(port.index()) {
                tx.flush(stats);
            }
        }
    }

    /// A context for sending at `now`, counting into `stats`.
    #[inline]
    pub fn cx<'a>(&'a mut self, stats: &'a mut PmdStats, now: Instant) -> TxCtx<'a> {
        TxCtx {
            tx: self,
            stats,
            now,
        }
    }
}

/// A free slot of one port's batch, from [`TxBatches::slot`].
pub(crate) struct TxSlot<'a> {
    tx: &'a mut TxPort,
}

impl TxSlot<'_> {
    /// The slot's buffer (holding some earlier frame's bytes until written).
    #[inline(always)]
    pub fn packet(&mut self) -> &mut Packet {
        &mut self.tx.batch[self.tx.len]
    }

    /// Keeps the frame written into the slot.
    #[inline(always)]
    pub fn commit(self) {
        self.tx.commit();
    }
}

/// Where frames a PMD sends go: its tx batches, its counters, and the time.
pub(crate) struct TxCtx<'a> {
    /// The PMD's tx batches.
    pub tx: &'a mut TxBatches,
    /// The PMD's counters.
    pub stats: &'a mut PmdStats,
    /// The time of the burst (or timer, or control message) that sends.
    pub now: Instant,
}

impl TxCtx<'_> {
    /// [`TxBatches::enqueue`] with this context's counters.
    #[inline]
    pub fn enqueue(&mut self, port: PortNo, pkt: &mut Packet) -> bool {
        self.tx.enqueue(port, pkt, self.stats)
    }
}
