//! The queue handles a vhost-user port hands to PMDs.
//!
//! [`VhostRxq`] receives from one guest transmit ring (vrings 1, 3, 5, ...); [`VhostTxq`]
//! transmits into guest receive ring `pmd % queue_pairs` (vrings 0, 2, 4, ...). Each burst
//! takes the vring's lock once ([`super::vring`] explains why that is the snapshot handover);
//! nothing is locked per packet.
//!
//! Several PMDs may share a receive ring when there are more PMDs than queue pairs: the lock
//! then also serialises them, for one burst at a time. A transmit handle whose ring the guest
//! has not enabled (a multiqueue guest that uses fewer pairs) falls back to ring 0.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::virtq::QueueError;
use super::vring::{Notified, Vring, VringRun};
use super::PortShared;
use crate::offload::TxOffloads;
use crate::packet::Packet;
use crate::port::{RxQueue, TxQueue};

/// How often a transmit burst retries a busy receive ring before giving up on the burst. The
/// holder is another PMD in the middle of a burst (microseconds) or the connection thread
/// swapping a pointer; the bound keeps the PMD from ever waiting on the connection thread.
const TX_LOCK_SPINS: u32 = 4096;

/// Signals the driver. A frontend whose call fd blocked us (see [`super::fds`]) gets no
/// more interrupts on this port: its fd is gone and new ones are refused.
fn notify(shared: &PortShared, v: &Vring, run: &mut VringRun) {
    let r = run.notify();
    if r != Notified::Sent {
        shared.interrupts_lost.fetch_add(1, Ordering::Relaxed);
    }
    if r == Notified::Stalled {
        shared.mute_calls();
        super::warn_limited!(
            socket = %shared.socket.display(),
            vring = v.index,
            "the frontend's call eventfd blocked a write (O_NONBLOCK cleared behind our back); \
             no more interrupts for this port"
        );
    }
}

/// After a burst: counts chains over the bound (`over_cap_before`: the ring's count before
/// the burst) and a ring that just broke, and logs the break (rate-limited: the guest controls
/// how often).
fn note_faults(
    shared: &PortShared,
    v: &Vring,
    run: &mut VringRun,
    was_broken: bool,
    over_cap_before: u64,
) {
    let over_cap = run.counters.guest_errors - over_cap_before;
    if over_cap > 0 {
        shared
            .chains_over_cap
            .fetch_add(over_cap, Ordering::Relaxed);
    }
    if was_broken {
        return;
    }
    if let Some(e) = run.ring.as_ref().and_then(|r| r.fault()) {
        run.broken += 1;
        shared.rings_broken.fetch_add(1, Ordering::Relaxed);
        if *e == QueueError::MemoryFault {
            shared.memory_faults.fetch_add(1, Ordering::Relaxed);
            // Once per fault, not rate-limited away: it names the port that lost its memory.
            tracing::error!(
                socket = %shared.socket.display(),
                vring = v.index,
                "guest memory was truncated under the switch (SIGBUS survived); the port's \
                 rings stop until the frontend sets up its memory again"
            );
            return;
        }
        super::warn_limited!(
            socket = %shared.socket.display(),
            vring = v.index,
            "guest broke its vring: {e}; the vring stops until restarted"
        );
    }
}

/// A receive queue: one guest transmit ring.
pub(crate) struct VhostRxq {
    pub shared: Arc<PortShared>,
    pub vring: usize,
}

impl VhostRxq {
    fn vring(&self) -> &Vring {
        &self.shared.vrings[self.vring]
    }
}

impl RxQueue for VhostRxq {
    fn rx_burst(&mut self, pkts: &mut [Packet]) -> usize {
        let v = &self.shared.vrings[self.vring];
        // Busy: the connection thread is swapping this ring; try again next burst.
        let Some(mut g) = v.try_run() else { return 0 };
        let run = &mut *g;
        let Some(ring) = run.ring.as_mut() else {
            return 0;
        };
        let was_broken = ring.fault().is_some();
        let over_cap = run.counters.guest_errors;
        let (n, wanted) = ring.dequeue(pkts, &mut run.counters);
        if wanted {
            notify(&self.shared, v, run);
        }
        note_faults(&self.shared, v, run, was_broken, over_cap);
        n
    }

    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.vring().wake.0.as_fd())
    }

    fn enable_notify(&mut self) -> bool {
        let Some(mut g) = self.vring().try_run() else {
            return false;
        };
        match g.ring.as_mut() {
            Some(ring) => ring.enable_kicks(),
            // Stopped: nothing can arrive until the frontend restarts the ring, and the PMD's
            // bounded sleep picks that up.
            None => true,
        }
    }

    fn disable_notify(&mut self) {
        if let Some(mut g) = self.vring().try_run() {
            if let Some(ring) = g.ring.as_mut() {
                ring.disable_kicks();
            }
        }
    }

    fn ack_wakeup(&mut self) {
        self.vring().ack_kick();
    }
}

impl Drop for VhostRxq {
    fn drop(&mut self) {
        self.shared.release_rxq(self.vring);
    }
}

/// A transmit queue: a guest receive ring chosen by PMD number.
pub(crate) struct VhostTxq {
    pub shared: Arc<PortShared>,
    pub vring: usize,
}

impl VhostTxq {
    /// One burst into vring `i`; `None` if that ring is not running.
    fn burst_into(&self, i: usize, pkts: &[Packet]) -> Option<usize> {
        let v = &self.shared.vrings[i];
        let mut spins = 0;
        let mut g = loop {
            if let Some(g) = v.try_run() {
                break g;
            }
            spins += 1;
            if spins == TX_LOCK_SPINS {
                return Some(0);
            }
            std::hint::spin_loop();
        };
        let run = &mut *g;
        let mrg = run.mrg;
        // Requests the guest does not take (it renegotiated after this batch was filled): the
        // frames before the first such one go, the rest are refused.
        let guest = self.shared.guest_offloads();
        let pkts = match pkts
            .iter()
            .position(|p| p.offload().requests() && !guest.takes(p.offload()))
        {
            Some(cut) => &pkts[..cut],
            None => pkts,
        };
        let ring = run.ring.as_mut()?;
        let was_broken = ring.fault().is_some();
        if was_broken {
            return Some(0);
        }
        let over_cap = run.counters.guest_errors;
        let (n, wanted) = ring.enqueue(pkts, mrg, &mut run.counters);
        if wanted {
            notify(&self.shared, v, run);
        }
        note_faults(&self.shared, v, run, was_broken, over_cap);
        Some(n)
    }
}

impl TxQueue for VhostTxq {
    fn tx_burst(&mut self, pkts: &mut [Packet]) -> usize {
        if let Some(n) = self.burst_into(self.vring, pkts) {
            return n;
        }
        if self.vring != 0 {
            return self.burst_into(0, pkts).unwrap_or(0);
        }
        0
    }

    fn offloads(&self) -> TxOffloads {
        self.shared.guest_offloads()
    }
}
