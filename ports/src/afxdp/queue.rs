//! The burst paths: rx ring -> switch packets -> fill ring, and switch packets -> tx ring,
//! completion ring -> free tx frames. One acquire and one release per ring per burst.

use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex, MutexGuard};

use xdpilone::xdp::XdpDesc;

use super::socket::{statistics, RxSide, TxSide, XskStats};
use super::umem::{frame_base, FRAME_SIZE};
use crate::packet::Packet;
use crate::port::{RxQueue, TxQueue};
use crate::vhost::warn_limited;

/// Receive queue `queue` of an AF_XDP port: owns its socket's rx and fill rings.
pub(crate) struct AfXdpRxq {
    pub rx: RxSide,
    pub interface: Arc<str>,
}

impl AfXdpRxq {
    /// Hands every frame we hold back to the kernel, and wakes it if it asked.
    fn refill(&mut self) {
        let rx = &mut self.rx;
        if !rx.free.is_empty() {
            let mut w = rx.fill.fill(rx.free.len() as u32);
            let n = w.insert(rx.free.iter().rev().copied());
            w.commit();
            drop(w);
            let keep = rx.free.len() - n as usize;
            rx.free.truncate(keep);
        }
        // need_wakeup: only when the kernel says so (a driver that ran out of fill buffers).
        if rx.fill.needs_wakeup() {
            rx.fill.wake();
        }
    }
}

impl AfXdpRxq {
    /// The kernel's counters for this queue's socket.
    pub fn kernel_stats(&self) -> std::io::Result<XskStats> {
        statistics(self.rx.ring.as_raw_fd())
    }
}

impl Drop for AfXdpRxq {
    fn drop(&mut self) {
        // The kernel's own drop counters (a full rx ring means the PMD fell behind), logged
        // once when the queue goes away.
        if let Ok(st) = self.kernel_stats() {
            tracing::info!(
                interface = %self.interface,
                rx_dropped = st.rx_dropped,
                rx_ring_full = st.rx_ring_full,
                rx_fill_ring_empty = st.rx_fill_ring_empty_descs,
                rx_invalid = st.rx_invalid_descs,
                tx_invalid = st.tx_invalid_descs,
                bad_desc = self.rx.bad_desc,
                "afxdp queue closed: kernel socket totals"
            );
        }
    }
}

impl RxQueue for AfXdpRxq {
    fn rx_burst(&mut self, pkts: &mut [Packet]) -> usize {
        let rx = &mut self.rx;
        let mut n = 0;
        let mut bad = 0u64;
        {
            let mut rd = rx.ring.receive(pkts.len() as u32);
            while let Some(desc) = rd.read() {
                let ok = match pkts[n].prepare(desc.len as usize) {
                    Some(dst) => rx.area.read(desc.addr, dst),
                    None => false,
                };
                if ok {
                    n += 1;
                } else {
                    pkts[n].truncate(0);
                    bad += 1;
                }
                // The frame is ours again whatever it held; `free` has room for every rx
                // frame, so the check only guards against a kernel returning one twice.
                if rx.free.len() < rx.free.capacity() {
                    rx.free.push(frame_base(desc.addr));
                }
            }
            rd.release();
        }
        if bad > 0 {
            rx.bad_desc += bad;
            warn_limited!(
                interface = %self.interface,
                total = rx.bad_desc,
                "afxdp: dropped rx descriptors outside the UMEM or too large"
            );
        }
        self.refill();
        n
    }

    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.rx.fd())
    }

    fn enable_notify(&mut self) -> bool {
        // The socket's fd polls readable while the rx ring is non-empty (level triggered),
        // so there is nothing to arm: just refuse to sleep when frames already wait. Frames
        // that land after this check make the fd readable and end the sleep.
        self.rx.ring.available() == 0
    }
}

/// The shared transmit half of one socket.
pub(crate) type SharedTx = Arc<Mutex<TxSide>>;

/// A PMD's transmit handle: the tx half of socket `pmd % queues`, locked once per burst
/// (uncontended unless PMDs outnumber queues).
pub(crate) struct AfXdpTxq {
    pub tx: SharedTx,
    pub interface: Arc<str>,
}

impl AfXdpTxq {
    fn lock(&self) -> MutexGuard<'_, TxSide> {
        // Release builds abort on panic; elsewhere the ring state is still consistent.
        self.tx.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Takes back frames the kernel finished sending.
fn reap(tx: &mut TxSide) {
    let room = tx.free.capacity() - tx.free.len();
    if room == 0 {
        return;
    }
    let mut c = tx.comp.complete(room as u32);
    while let Some(addr) = c.read() {
        tx.free.push(frame_base(addr));
    }
    c.release();
}

/// Copies `pkts` into free tx frames and onto the tx ring; returns how many of them were
/// dealt with (a prefix: sent, or passed over as unsendable) and how many were passed over.
fn enqueue(tx: &mut TxSide, pkts: &[Packet]) -> (usize, u64) {
    let want = pkts.len().min(tx.free.len()) as u32;
    if want == 0 {
        return (0, 0);
    }
    let TxSide {
        ring, free, area, ..
    } = tx;
    let mut taken = 0;
    let mut dropped = 0;
    let mut w = ring.transmit(want);
    let cap = w.capacity() as usize;
    for p in pkts.iter().take(cap) {
        let frame = p.data();
        if !sendable(p) {
            // Passed over (the caller learns it was not sent: see `tx_burst`).
            dropped += 1;
            taken += 1;
            continue;
        }
        let Some(addr) = free.pop() else { break };
        if !area.write(addr, frame) {
            // Cannot happen for a frame base and a length within FRAME_SIZE; stop here and
            // let the caller count the rest as not sent.
            free.push(addr);
            break;
        }
        let desc = XdpDesc {
            addr,
            len: frame.len() as u32,
            options: 0,
        };
        if !w.insert_once(desc) {
            // Cannot happen within `capacity`; keep the frame and stop.
            free.push(addr);
            break;
        }
        taken += 1;
    }
    w.commit();
    (taken, dropped)
}

/// True for a frame the tx path can put in one UMEM frame.
fn sendable(p: &Packet) -> bool {
    !p.is_empty() && p.len() <= FRAME_SIZE as usize
}

impl TxQueue for AfXdpTxq {
    fn tx_burst(&mut self, pkts: &mut [Packet]) -> usize {
        let mut guard = self.lock();
        let tx = &mut *guard;
        reap(tx);
        let (taken, dropped) = enqueue(tx, pkts);
        let mut sent = taken;
        if dropped > 0 {
            tx.oversize += dropped;
            warn_limited!(
                interface = %self.interface,
                total = tx.oversize,
                "afxdp: dropped empty frames or frames larger than a UMEM frame"
            );
            // Move the frames that went out to the front, in order, so the caller counts
            // the unsendable ones as dropped (and their bytes as not sent).
            let mut w = 0;
            for i in 0..taken {
                if sendable(&pkts[i]) {
                    pkts.swap(w, i);
                    w += 1;
                }
            }
            sent = w;
        }
        // need_wakeup: kick with sendto only when the kernel asks (copy mode always does,
        // zero-copy drivers when idle) and descriptors wait in the ring.
        if tx.ring.pending() > 0 && tx.ring.needs_wakeup() {
            tx.ring.wake();
        }
        sent
    }
}
