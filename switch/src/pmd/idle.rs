//! Sleeping when idle: instead of spinning at 100% CPU with no traffic (the OVS-DPDK
//! complaint), a PMD that saw nothing for a while arms each rx queue's notification and waits
//! in `epoll_wait` on their fds and on its own command eventfd.

use std::os::fd::AsFd;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::EventFd;
use tracing::warn;

use super::RxqEntry;

/// Data tag of the command eventfd in the epoll set.
const CMD_TAG: u64 = u64::MAX;
/// Longest sleep when every queue can wake us (bounds stats staleness).
const MAX_SLEEP_MS: u16 = 100;
/// Longest sleep when a queue has no wakeup fd and must be polled.
const POLL_SLEEP_MS: u16 = 1;

/// The PMD's epoll set over its rx queues' wakeup fds and its command eventfd.
pub(crate) struct Sleeper {
    epoll: Option<Epoll>,
    all_wakeable: bool,
}

impl Sleeper {
    /// Builds the set for `rxqs` and `cmd`. Rebuilt whenever the rx queues change.
    pub fn new(rxqs: &[RxqEntry], cmd: &EventFd) -> Sleeper {
        let epoll = match Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC) {
            Ok(e) => e,
            Err(e) => {
                warn!("epoll_create failed ({e}); this PMD will busy-poll");
                return Sleeper {
                    epoll: None,
                    all_wakeable: false,
                };
            }
        };
        let mut all_wakeable = true;
        let _ = epoll.add(cmd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, CMD_TAG));
        for (i, r) in rxqs.iter().enumerate() {
            match r.queue.wait_fd() {
                Some(fd) => {
                    if epoll
                        .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, i as u64))
                        .is_err()
                    {
                        all_wakeable = false;
                    }
                }
                None => all_wakeable = false,
            }
        }
        Sleeper {
            epoll: Some(epoll),
            all_wakeable,
        }
    }

    /// Sleeps until traffic or a command arrives (or a timeout). Returns false without
    /// sleeping when a queue already holds frames or `commands_waiting` says a command is
    /// queued.
    ///
    /// The wakeups left from before (kicks that raced with disabling them, the command
    /// eventfd's count) are consumed here, before arming, not after waking: the way back to
    /// the first poll after a wakeup makes no system call but the `epoll_wait` returning,
    /// however many queues the PMD serves. A kick consumed here that was not stale finds its
    /// frames by the ring check in `enable_notify`; a command, by `commands_waiting`, asked
    /// after the command eventfd was read (the control side queues the command, then writes
    /// the eventfd).
    pub fn sleep(
        &self,
        rxqs: &mut [RxqEntry],
        cmd: &EventFd,
        commands_waiting: impl FnOnce() -> bool,
    ) -> bool {
        let Some(epoll) = &self.epoll else {
            return false;
        };
        for r in rxqs.iter_mut() {
            r.queue.ack_wakeup();
        }
        let _ = cmd.read();
        if commands_waiting() {
            return false;
        }
        for i in 0..rxqs.len() {
            if !rxqs[i].queue.enable_notify() {
                for r in &mut rxqs[..=i] {
                    r.queue.disable_notify();
                }
                return false;
            }
        }
        let ms = if self.all_wakeable {
            MAX_SLEEP_MS
        } else {
            POLL_SLEEP_MS
        };
        let mut events = [EpollEvent::empty(); 8];
        // EINTR and friends just end the sleep early.
        let _ = epoll.wait(&mut events, EpollTimeout::from(ms));
        for r in rxqs.iter_mut() {
            r.queue.disable_notify();
        }
        true
    }
}
