//! The port contract: queues handed to PMD threads, moved in bursts.

use std::os::fd::BorrowedFd;

use crate::packet::Packet;

/// The largest burst a queue is asked to move at once.
pub const BURST: usize = 32;

/// A receive queue, owned by one PMD thread.
pub trait RxQueue: Send {
    /// Receives up to `pkts.len()` frames into `pkts[..n]` (overwriting what they held) and
    /// returns `n`. Never blocks.
    fn rx_burst(&mut self, pkts: &mut [Packet]) -> usize;

    /// A file descriptor that becomes readable when frames arrive while notifications are
    /// enabled, so an idle PMD can sleep in `epoll_wait` instead of spinning. `None`: the PMD
    /// must poll this queue (it then sleeps at most a short timeout).
    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    /// Asks to be woken through [`RxQueue::wait_fd`] when frames arrive. Returns false when
    /// frames are already waiting (the PMD must not sleep). Reading the fd is the caller's job
    /// ([`RxQueue::ack_wakeup`]).
    fn enable_notify(&mut self) -> bool {
        false
    }

    /// Stops notifications again (the PMD is polling).
    fn disable_notify(&mut self) {}

    /// Consumes the wakeup signalled on [`RxQueue::wait_fd`].
    fn ack_wakeup(&mut self) {}
}

/// A transmit queue, owned by one PMD thread.
pub trait TxQueue: Send {
    /// Transmits `pkts` in order and returns how many were taken (a prefix); the caller counts
    /// the rest as dropped. The packets stay the caller's: a port copies what it sends.
    fn tx_burst(&mut self, pkts: &mut [Packet]) -> usize;
}

/// A port as the control plane sees it: something that can hand out queues.
pub trait Port: Send {
    /// The port type as written in the config (`"memory"`, `"vhost-user"`, ...).
    fn kind(&self) -> &'static str;

    /// Number of receive queues.
    fn n_rxq(&self) -> usize;

    /// Takes receive queue `q` (each queue can be taken once; it is handed to one PMD).
    fn take_rxq(&mut self, q: usize) -> Result<Box<dyn RxQueue>, PortError>;

    /// A transmit queue for PMD number `pmd` (each PMD gets its own handle).
    fn txq(&mut self, pmd: usize) -> Result<Box<dyn TxQueue>, PortError>;

    /// Whether the port's peer is attached: `Some(true)` while a vhost-user frontend is
    /// connected, `None` for ports that have no peer to wait for. Cheap (no queue lock):
    /// metrics and the API read it on every request.
    fn connected(&self) -> Option<bool> {
        None
    }
}

/// Why a port operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The rx queue does not exist or was already taken.
    #[error("rx queue {0} does not exist or is already in use")]
    NoSuchRxq(usize),
    /// An OS call failed.
    #[error("{what}: {source}")]
    Os {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
}
