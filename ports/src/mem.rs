//! An in-memory port pair: the switch side is a [`Port`], the test side a [`MemPeer`] that
//! injects frames and collects what the switch sends. Like smoltcp's `Loopback` device, it
//! needs no root, NIC or VM.
//!
//! Each direction is a bounded queue behind a mutex, taken once per burst. Frames cross as
//! owned `Vec<u8>`s, so this port allocates per frame on the peer side: it is for tests, not
//! for measuring the datapath.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::packet::Packet;
use crate::port::{Port, PortError, RxQueue, TxQueue};

/// Frames a direction holds before it drops (counted in [`MemPeer::dropped_to_switch`] /
/// [`MemPeer::dropped_from_switch`]).
pub const DEFAULT_QUEUE_LEN: usize = 4096;

struct Ring {
    frames: Mutex<VecDeque<Vec<u8>>>,
    cap: usize,
    /// Signals the consumer that `frames` became non-empty.
    ready: Condvar,
    drops: AtomicU64,
}

impl Ring {
    fn new(cap: usize) -> Ring {
        Ring {
            frames: Mutex::new(VecDeque::with_capacity(cap)),
            cap,
            ready: Condvar::new(),
            drops: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Vec<u8>>> {
        // A poisoned lock only means a test thread panicked while holding it; the queue of
        // plain byte vectors is still consistent.
        self.frames.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The switch's receive side: the ring the peer fills, plus the PMD's wakeup.
struct Inbound {
    ring: Ring,
    armed: AtomicBool,
    wake: EventFd,
}

/// The switch side of an in-memory port: one rx queue, a tx queue per PMD.
pub struct MemPort {
    to_switch: Arc<Inbound>,
    from_switch: Arc<Ring>,
    rxq_taken: bool,
}

/// The test side of an in-memory port.
#[derive(Clone)]
pub struct MemPeer {
    to_switch: Arc<Inbound>,
    from_switch: Arc<Ring>,
}

/// Creates a connected port and peer, each direction holding up to `queue_len` frames.
pub fn pair(queue_len: usize) -> Result<(MemPort, MemPeer), PortError> {
    let wake =
        EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC).map_err(|e| {
            PortError::Os {
                what: "eventfd for memory port",
                source: e.into(),
            }
        })?;
    let to_switch = Arc::new(Inbound {
        ring: Ring::new(queue_len),
        armed: AtomicBool::new(false),
        wake,
    });
    let from_switch = Arc::new(Ring::new(queue_len));
    Ok((
        MemPort {
            to_switch: to_switch.clone(),
            from_switch: from_switch.clone(),
            rxq_taken: false,
        },
        MemPeer {
            to_switch,
            from_switch,
        },
    ))
}

impl Port for MemPort {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn n_rxq(&self) -> usize {
        1
    }

    fn take_rxq(&mut self, q: usize) -> Result<Box<dyn RxQueue>, PortError> {
        if q != 0 || self.rxq_taken {
            return Err(PortError::NoSuchRxq(q));
        }
        self.rxq_taken = true;
        Ok(Box::new(MemRxq {
            inbound: self.to_switch.clone(),
        }))
    }

    fn txq(&mut self, _pmd: usize) -> Result<Box<dyn TxQueue>, PortError> {
        Ok(Box::new(MemTxq {
            ring: self.from_switch.clone(),
        }))
    }
}

struct MemRxq {
    inbound: Arc<Inbound>,
}

impl RxQueue for MemRxq {
    fn rx_burst(&mut self, pkts: &mut [Packet]) -> usize {
        let mut q = self.inbound.ring.lock();
        let mut n = 0;
        while n < pkts.len() {
            let Some(frame) = q.pop_front() else { break };
            if pkts[n].copy_from(&frame) {
                n += 1;
            } else {
                self.inbound.ring.drops.fetch_add(1, Ordering::Relaxed);
            }
        }
        n
    }

    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.inbound.wake.as_fd())
    }

    fn enable_notify(&mut self) -> bool {
        self.inbound.armed.store(true, Ordering::SeqCst);
        // Re-check after arming: a frame injected before `armed` was visible sent no wakeup.
        let empty = self.inbound.ring.lock().is_empty();
        if !empty {
            self.inbound.armed.store(false, Ordering::SeqCst);
        }
        empty
    }

    fn disable_notify(&mut self) {
        self.inbound.armed.store(false, Ordering::SeqCst);
    }

    fn ack_wakeup(&mut self) {
        // EAGAIN just means no wakeup was pending.
        let _ = self.inbound.wake.read();
    }
}

struct MemTxq {
    ring: Arc<Ring>,
}

impl TxQueue for MemTxq {
    fn tx_burst(&mut self, pkts: &mut [Packet]) -> usize {
        let mut q = self.ring.lock();
        let room = self.ring.cap.saturating_sub(q.len());
        let n = pkts.len().min(room);
        for p in &pkts[..n] {
            q.push_back(p.data().to_vec());
        }
        drop(q);
        if n > 0 {
            self.ring.ready.notify_all();
        }
        n
    }
}

impl MemPeer {
    /// Sends `frame` into the switch. Returns false (and counts a drop) if the queue is full.
    pub fn inject(&self, frame: &[u8]) -> bool {
        let ring = &self.to_switch.ring;
        {
            let mut q = ring.lock();
            if q.len() >= ring.cap {
                ring.drops.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            q.push_back(frame.to_vec());
        }
        if self.to_switch.armed.swap(false, Ordering::SeqCst) {
            // Nonblocking eventfd: fails only if the counter would overflow, which cannot
            // happen with writes of 1 that the PMD reads back.
            let _ = self.to_switch.wake.write(1);
        }
        true
    }

    /// Takes one frame the switch sent, if any.
    pub fn try_recv(&self) -> Option<Vec<u8>> {
        self.from_switch.lock().pop_front()
    }

    /// Waits up to `timeout` for a frame from the switch.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut q = self.from_switch.lock();
        loop {
            if let Some(f) = q.pop_front() {
                return Some(f);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            q = self
                .from_switch
                .ready
                .wait_timeout(q, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Takes every frame the switch has sent so far.
    pub fn drain(&self) -> Vec<Vec<u8>> {
        self.from_switch.lock().drain(..).collect()
    }

    /// Frames waiting to be read by the switch.
    pub fn pending_to_switch(&self) -> usize {
        self.to_switch.ring.lock().len()
    }

    /// Frames the switch sent that this peer has not taken yet.
    pub fn pending_from_switch(&self) -> usize {
        self.from_switch.lock().len()
    }

    /// Frames refused on the way in (queue full or too large).
    pub fn dropped_to_switch(&self) -> u64 {
        self.to_switch.ring.drops.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn frames_cross_both_ways() {
        let (mut port, peer) = pair(4).unwrap();
        let mut rxq = port.take_rxq(0).unwrap();
        assert!(port.take_rxq(0).is_err());
        let mut txq = port.txq(0).unwrap();

        assert!(peer.inject(&[1; 60]));
        assert!(peer.inject(&[2; 61]));
        let mut pkts = vec![Packet::new(); 32];
        assert_eq!(rxq.rx_burst(&mut pkts), 2);
        assert_eq!(pkts[0].data(), &[1; 60]);
        assert_eq!(pkts[1].data(), &[2; 61]);

        assert_eq!(txq.tx_burst(&mut pkts[..2]), 2);
        assert_eq!(peer.drain(), vec![vec![1; 60], vec![2; 61]]);
    }

    #[test]
    fn bounded_and_counted() {
        let (mut port, peer) = pair(2).unwrap();
        assert!(peer.inject(&[0; 60]));
        assert!(peer.inject(&[0; 60]));
        assert!(!peer.inject(&[0; 60]));
        assert_eq!(peer.dropped_to_switch(), 1);
        let mut txq = port.txq(0).unwrap();
        let mut pkts = vec![Packet::new(); 3];
        for p in &mut pkts {
            p.copy_from(&[5; 64]);
        }
        assert_eq!(txq.tx_burst(&mut pkts), 2, "tx takes only what fits");
    }

    #[test]
    fn notify_wakes_only_when_armed() {
        let (mut port, peer) = pair(8).unwrap();
        let mut rxq = port.take_rxq(0).unwrap();
        assert!(rxq.enable_notify(), "empty queue: may sleep");
        peer.inject(&[0; 60]);
        assert_eq!(port_wakeups(&*rxq), 1);
        rxq.ack_wakeup();
        assert!(!rxq.enable_notify(), "a frame is pending: must not sleep");
        peer.inject(&[0; 60]);
        assert_eq!(port_wakeups(&*rxq), 0, "not armed, no wakeup");
    }

    fn port_wakeups(rxq: &dyn RxQueue) -> usize {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let fd = rxq.wait_fd().unwrap();
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::ZERO).unwrap() as usize
    }
}
