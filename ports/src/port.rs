//! The port contract: queues handed to PMD threads, moved in bursts.

use std::os::fd::BorrowedFd;

use crate::offload::TxOffloads;
use crate::packet::Packet;

/// The largest burst a queue is asked to move at once.
pub const BURST: usize = 32;

/// The most work one receive burst hands a PMD, in bytes: a receive queue whose frames may
/// be large (a guest's 64 KiB TSO frames) stops taking frames once those it took amount to
/// this much, counting [`SEGMENT_WORK`] for each segment a frame's offload request asks
/// for. The rest wait in the queue for the next burst, after the PMD's other queues had
/// theirs: a guest that sends the largest frames, or asks for the most segments, holds the
/// PMD about as long per turn as one sending 32 full-size frames and cutting them, and
/// never 32 times its worst frame. A burst of 64 KiB TSO frames stops after six to eight;
/// 32 frames of 9000 bytes fit.
pub const BURST_WORK: usize = 512 * 1024;

/// What one segment of a software-segmented frame counts against [`BURST_WORK`], in bytes:
/// beyond its payload, a segment costs its headers, checksums and transmit slot (measured:
/// about 40 ns of a PMD per segment of 64 payload bytes, of the order of copying and
/// summing 512 bytes).
pub const SEGMENT_WORK: usize = 512;

/// A receive queue, owned by one PMD thread.
pub trait RxQueue: Send {
    /// Receives up to `pkts.len()` frames into `pkts[..n]` (overwriting what they held) and
    /// returns `n`, stopping early past [`BURST_WORK`]. Never blocks.
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
    ///
    /// A frame may carry an offload request ([`Packet::offload`]) only where
    /// [`TxQueue::offloads`] takes it; a port that finds one it cannot take (its peer just
    /// renegotiated) takes the frames before it and no more.
    fn tx_burst(&mut self, pkts: &mut [Packet]) -> usize;

    /// The offload requests this queue takes unfinished, asked before each batch is filled;
    /// the switch finishes the others first (fills checksums, segments). The default takes
    /// none.
    fn offloads(&self) -> TxOffloads {
        TxOffloads::default()
    }
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

    /// What the port's tenant did wrong, for ports whose peer is a tenant (vhost-user):
    /// `None` for the others. Cheap like [`Port::connected`].
    fn guest_faults(&self) -> Option<GuestFaults> {
        None
    }
}

/// A tenant's faults on its port, since the port was created. Each costs that port only.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GuestFaults {
    /// Rings that broke on a driver fault (bad index, address, loop, ...) or were refused at
    /// start. A broken ring moves nothing until the frontend restarts it.
    pub rings_broken: u64,
    /// Of those, rings stopped because the guest's memory file was truncated under the switch
    /// (a SIGBUS, survived): every ring on that memory stops, each counted once.
    pub memory_faults: u64,
    /// Descriptor chains returned unused because they were over the per-chain bound.
    pub chains_over_cap: u64,
    /// Interrupts not delivered: the call eventfd was full or made blocking.
    pub interrupts_lost: u64,
    /// Protocol messages refused (bad memory table, fd of the wrong kind, ...).
    pub refused_messages: u64,
    /// A frontend made its call eventfd block a PMD: the port signals no frontend any more.
    pub interrupts_muted: bool,
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
