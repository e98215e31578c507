//! Per-output-port transmit batches: frames gather during a burst and leave in one
//! `tx_burst` call per port.

use ports::{Packet, TxQueue, BURST};

use crate::stats::{DropReason, PmdStats};
use flowtable::PortNo;

/// One output port as a PMD sees it: its tx queue handle and the batch being filled.
pub(crate) struct TxPort {
    pub port: PortNo,
    queue: Box<dyn TxQueue>,
    batch: Vec<Packet>,
    len: usize,
}

impl TxPort {
    pub fn new(port: PortNo, queue: Box<dyn TxQueue>) -> TxPort {
        TxPort {
            port,
            queue,
            batch: (0..BURST).map(|_| Packet::new()).collect(),
            len: 0,
        }
    }

    /// True when the batch holds frames (the port is on the dirty list).
    pub fn is_pending(&self) -> bool {
        self.len > 0
    }

    /// The next free slot, flushing first when the batch is full. The caller fills it and
    /// calls [`TxPort::commit`].
    #[inline]
    pub fn slot(&mut self, stats: &mut PmdStats) -> &mut Packet {
        if self.len == BURST {
            self.flush(stats);
        }
        &mut self.batch[self.len]
    }

    /// Keeps the slot returned by [`TxPort::slot`].
    #[inline]
    pub fn commit(&mut self) {
        self.len += 1;
    }

    /// Sends the batch; what the queue refuses is counted as `tx_full`.
    pub fn flush(&mut self, stats: &mut PmdStats) {
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

/// Moves `pkt` into `port`'s batch (a buffer swap: `pkt` gets the slot's old buffer) and
/// puts the port on the dirty list. False, with `pkt` untouched, if this PMD has no such
/// port.
pub(crate) fn enqueue(
    txs: &mut [Option<TxPort>],
    dirty: &mut Vec<PortNo>,
    stats: &mut PmdStats,
    port: PortNo,
    pkt: &mut Packet,
) -> bool {
    let Some(Some(tx)) = txs.get_mut(port.index()) else {
        return false;
    };
    if !tx.is_pending() {
        dirty.push(port);
    }
    std::mem::swap(tx.slot(stats), pkt);
    tx.commit();
    true
}
