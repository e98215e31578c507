//! One vring as the connection thread and the PMDs share it.
//!
//! The ring, its fds and counters sit behind a mutex that a PMD takes once per burst and the
//! connection thread takes only to swap prepared state in or out (a new ring after
//! `SET_MEM_TABLE`, none after `GET_VRING_BASE`). The lock is how a configuration change
//! reaches the PMD at a burst boundary, and how `GET_VRING_BASE` waits until the PMD has left
//! the ring: it cannot take the lock while a burst runs. The PMD never waits for the
//! connection thread ([`Vring::try_run`]); it skips a burst instead.
//!
//! Each vring also owns a small epoll set holding its current kick eventfd, edge-triggered.
//! That set is the stable [`crate::RxQueue::wait_fd`]: the PMD registers it once, while the
//! frontend may replace the kick fd at any time. A wakeup is consumed from the set
//! ([`Vring::ack_kick`]), never by reading the frontend's eventfd, so nothing the frontend
//! does to that fd can make a PMD wait (see [`super::fds`]).

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::sync::{Mutex, MutexGuard, TryLockError};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::net::RingCounters;
use super::virtq::Virtqueue;

/// What the PMD touches per burst.
#[derive(Debug, Default)]
pub(crate) struct VringRun {
    /// The started ring, if the frontend has started it.
    pub ring: Option<Virtqueue>,
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

/// What became of one interrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notified {
    /// Written (or no call fd: the driver polls).
    Sent,
    /// The eventfd was full (or closed): this interrupt is lost, counted.
    Lost,
    /// The frontend made its fd blocking again (seen before the write, or the write blocked
    /// until the watchdog interrupted it). The call fd was dropped; the caller stops taking
    /// new ones from this frontend.
    Stalled,
}

impl VringRun {
    /// Signals the driver: one non-blocking eventfd write, under the watchdog. A full eventfd
    /// loses an interrupt the driver recovers from on its next poll.
    ///
    /// The frontend shares the fd's `O_NONBLOCK` flag and can clear it: the flag is checked
    /// first (`F_GETFL` never blocks), so a frontend that did is caught without a write; only
    /// one that clears it in the instant between the check and the write can make the write
    /// wait, until the watchdog interrupts it.
    pub fn notify(&mut self) -> Notified {
        let Some(call) = &self.call else {
            return Notified::Sent;
        };
        let blocking = fcntl(call.as_fd(), FcntlArg::F_GETFL)
            .map(|f| !OFlag::from_bits_truncate(f).contains(OFlag::O_NONBLOCK))
            .unwrap_or(true);
        let outcome = if blocking {
            Notified::Stalled
        } else {
            match crate::watchdog::guarded(|| (&*call).write(&1u64.to_ne_bytes())) {
                Ok(_) => return Notified::Sent,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Notified::Stalled,
                Err(_) => Notified::Lost,
            }
        };
        self.counters.interrupts_lost += 1;
        if outcome == Notified::Stalled {
            self.call = None;
        }
        outcome
    }
}

/// A vring: its run state and its wakeup set.
#[derive(Debug)]
pub(crate) struct Vring {
    /// Its index in the device (even: guest receive, odd: guest transmit).
    pub index: u16,
    run: Mutex<VringRun>,
    /// Epoll set holding the current kick fd (the PMD's wait fd for guest transmit rings)
    /// and [`Vring::restarted`].
    pub wake: Epoll,
    /// The connection thread's own wakeup in [`Vring::wake`]: written when a ring (re)starts.
    restarted: EventFd,
}

impl Vring {
    /// A stopped vring.
    pub fn new(index: u16) -> std::io::Result<Vring> {
        let wake = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let restarted = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?;
        // Edge-triggered like the kick fd: each write queues one wakeup, never read.
        wake.add(
            restarted.as_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, 1),
        )?;
        Ok(Vring {
            index,
            run: Mutex::new(VringRun::default()),
            wake,
            restarted,
        })
    }

    /// Wakes a PMD sleeping on this vring after the ring (re)started. A new ring starts with
    /// kicks disabled (the PMD polls), so a PMD that went to sleep before the ring existed
    /// would otherwise miss its first frames until its sleep timed out: woken, it polls the
    /// ring and arms its kicks before sleeping again.
    pub fn wake_pmd(&self) {
        // Fails only when the count would overflow: a wakeup is pending anyway.
        let _ = self.restarted.write(1);
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
            // Edge-triggered: the counter is never read, and each kick (every eventfd
            // write) still queues one wakeup in this set.
            let _ = self.wake.add(
                new.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, 0),
            );
        }
        std::mem::replace(&mut run.kick, kick)
    }

    /// Consumes a pending kick from the vring's own epoll set (zero timeout), so the set stops
    /// reporting readable until the next kick. The frontend's eventfd is not touched.
    pub fn ack_kick(&self) {
        // Both members at once: a kick and a restart.
        let mut events = [EpollEvent::empty(); 2];
        let _ = self.wake.wait(&mut events, EpollTimeout::ZERO);
    }
}
