//! Per-output-port transmit batches: frames gather during a burst and leave in one
//! `tx_burst` call per port.
//!
//! [`TxBatches`] is the one place that fills a batch (take a slot, fill it, keep it) and
//! flushes the ports that have frames waiting; [`TxCtx`] is what every sender (the actions,
//! the overlay's encapsulation, ARP, released frames) gets to reach it.

use std::time::Instant;

use flowtable::PortNo;
use ports::{Packet, TxQueue, BURST};

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

    /// The next free slot, flushing first when the batch is full. The caller fills it and
    /// calls [`TxPort::commit`].
    #[inline]
    fn slot(&mut self, stats: &mut PmdStats) -> &mut Packet {
        if self.len == BURST {
            self.flush(stats);
        }
        &mut self.batch[self.len]
    }

    /// Keeps the slot returned by [`TxPort::slot`].
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

    /// Stops transmitting to `port`, after sending what its batch holds.
    pub fn remove(&mut self, port: PortNo, stats: &mut PmdStats) {
        if let Some(mut tx) = self.ports.get_mut(port.index()).and_then(Option::take) {
            tx.flush(stats);
        }
    }

    /// Adds a frame to `port`'s batch: `fill` writes it into the batch's next slot (a copy,
    /// or a buffer swap) and may refuse it by returning the drop reason; the slot is then
    /// not kept (the next frame reuses it). `Err(NoPort)` if this PMD has no such port.
    #[inline(always)]
    pub fn enqueue_with(
        &mut self,
        port: PortNo,
        stats: &mut PmdStats,
        fill: impl FnOnce(&mut Packet) -> Result<(), DropReason>,
    ) -> Result<(), DropReason> {
        let Some(Some(tx)) = self.ports.get_mut(port.index()) else {
            return Err(DropReason::NoPort);
        };
        if tx.len == 0 {
            // A refused frame leaves the port on the list with an empty batch: its flush
            // sends nothing.
            self.dirty.push(port);
        }
        fill(tx.slot(stats))?;
        tx.commit();
        Ok(())
    }

    /// Moves `pkt` into `port`'s batch (a buffer swap: `pkt` gets the slot's old buffer).
    /// False, with `pkt` untouched, if this PMD has no such port.
    #[inline]
    pub fn enqueue(&mut self, port: PortNo, pkt: &mut Packet, stats: &mut PmdStats) -> bool {
        self.enqueue_with(port, stats, |slot| {
            std::mem::swap(slot, pkt);
            Ok(())
        })
        .is_ok()
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
