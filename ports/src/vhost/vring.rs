//! One vring as the connection thread and the PMDs share it.
//!
//! The ring, its fds and counters sit behind a mutex that a PMD takes once per burst and the
//! connection thread takes only to swap prepared state in or out (a new ring after
//! `SET_MEM_TABLE`, none after `GET_VRING_BASE`). The lock is how a configuration change
//! reaches the PMD at a burst boundary, and how `GET_VRING_BASE` waits until the PMD has left
//! the ring: it cannot take the lock while a burst runs. The PMD never waits for the
//! connection thread ([`Vring::try_run`]); it skips a burst instead.
//!
//! Each vring also owns a small epoll set holding its current kick eventfd. That set is the
//! stable [`crate::RxQueue::wait_fd`]: the PMD registers it once, while the frontend may
//! replace the kick fd at any time.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::{Mutex, MutexGuard, TryLockError};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};

use super::queue::{RingCounters, SplitRing};

/// What the PMD touches per burst.
#[derive(Debug, Default)]
pub(crate) struct VringRun {
    /// The started ring, if the frontend has started it.
    pub ring: Option<SplitRing>,
    /// Interrupt eventfd (`SET_VRING_CALL`).
    pub call: Option<File>,
    /// Kick eventfd (`SET_VRING_KICK`), also registered in [`Vring::wake`].
    pub kick: Option<File>,
    /// VIRTIO_NET_F_MRG_RXBUF was negotiated (receive rings only).
    pub mrg: bool,
    /// Counters of this vring, across restarts.
    pub counters: RingCounters,
    /// How many times the ring broke or was refused at start.
    pub broken: u64,
}

impl VringRun {
    /// Signals the driver (one eventfd write). A full or closed eventfd only loses an
    /// interrupt the driver will recover from on its next poll.
    pub fn notify(&self) {
        if let Some(call) = &self.call {
            let _ = (&*call).write(&1u64.to_ne_bytes());
        }
    }
}

/// A vring: its run state and its wakeup set.
#[derive(Debug)]
pub(crate) struct Vring {
    /// Its index in the device (even: guest receive, odd: guest transmit).
    pub index: u16,
    run: Mutex<VringRun>,
    /// Epoll set holding the current kick fd (the PMD's wait fd for guest transmit rings).
    pub wake: Epoll,
}

impl Vring {
    /// A stopped vring.
    pub fn new(index: u16) -> std::io::Result<Vring> {
        Ok(Vring {
            index,
            run: Mutex::new(VringRun::default()),
            wake: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
        })
    }

    /// The run state, for the PMD: `None` while the connection thread holds it.
    pub fn try_run(&self) -> Option<MutexGuard<'_, VringRun>> {
        match self.run.try_lock() {
            Ok(g) => Some(g),
            // A PMD that panicked mid-burst aborts the process in release builds; in tests the
            // state is still consistent (every field is valid on its own).
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// The run state, for the connection thread (waits for a running burst to end).
    pub fn run(&self) -> MutexGuard<'_, VringRun> {
        self.run.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the kick fd, keeping the wakeup set in step. Returns the old one so the caller
    /// closes it outside the lock.
    pub fn set_kick(&self, run: &mut VringRun, kick: Option<File>) -> Option<File> {
        if let Some(old) = &run.kick {
            let _ = self.wake.delete(old.as_fd());
        }
        if let Some(new) = &kick {
            // Fails only on resource exhaustion; the PMD then wakes on its sleep timeout.
            let _ = self
                .wake
                .add(new.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, 0));
        }
        std::mem::replace(&mut run.kick, kick)
    }
}

/// Consumes a pending kick without blocking, whatever the fd's O_NONBLOCK state.
pub(crate) fn drain_eventfd(fd: &File) {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    if matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
        let mut buf = [0u8; 8];
        let _ = (&*fd).read(&mut buf);
    }
}
