//! The PMD threads as the control plane holds them: spawning one per configured core,
//! sending them commands (each send wakes a sleeping PMD), collecting their answers and
//! barriers, reading their published counters, and stopping them.

use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};
use nix::sys::eventfd::{EfdFlags, EventFd};
use tracing::warn;

use super::{State, Switch, SwitchError};
use crate::config::SwitchConfig;
use crate::pmd::{Pmd, PmdCmd, PmdConfig};
use crate::stats::{PmdSnapshot, StatsMirror};

/// How long a control call waits for the PMDs to apply a change.
pub(super) const PMD_TIMEOUT: Duration = Duration::from_secs(5);

/// One PMD thread: its command queue, its wake-up eventfd and its published counters.
pub(super) struct PmdHandle {
    tx: Sender<PmdCmd>,
    wake: Arc<EventFd>,
    mirror: StatsMirror,
    thread: Option<JoinHandle<()>>,
}

/// Starts one PMD thread per core of `cfg.pmd_cores` and gives each the others' queues and
/// wake-up fds (for the MAC and neighbour announcements they send each other).
pub(super) fn spawn(cfg: &SwitchConfig) -> Result<Vec<PmdHandle>, SwitchError> {
    let mut pmds = Vec::new();
    for (index, &core) in cfg.pmd_cores.iter().enumerate() {
        let (tx, rx) = unbounded();
        let wake = Arc::new(
            EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC).map_err(|e| {
                SwitchError::Os {
                    what: "eventfd",
                    source: e.into(),
                }
            })?,
        );
        let mirror: StatsMirror = Arc::new(Mutex::new(PmdSnapshot {
            pmd: index,
            core,
            ..Default::default()
        }));
        let pmd = Pmd::new(
            PmdConfig {
                index,
                core,
                emc_entries: cfg.emc_entries,
                emc_insert_inv_prob: cfg.emc_insert_inv_prob,
                mac_table_size: cfg.mac_table_size,
                mac_aging: Duration::from_secs(cfg.mac_aging_secs),
                sleep_after: (cfg.pmd_sleep_after_us > 0)
                    .then(|| Duration::from_micros(cfg.pmd_sleep_after_us)),
            },
            rx,
            wake.clone(),
            mirror.clone(),
        );
        let thread = std::thread::Builder::new()
            .name(format!("pmd{index}"))
            .spawn(move || pmd.run())
            .map_err(|source| SwitchError::Os {
                what: "spawning a PMD thread",
                source,
            })?;
        pmds.push(PmdHandle {
            tx,
            wake,
            mirror,
            thread: Some(thread),
        });
    }
    for (i, p) in pmds.iter().enumerate() {
        let others = || pmds.iter().enumerate().filter(move |(j, _)| *j != i);
        let peers = others().map(|(_, q)| q.tx.clone()).collect();
        let _ = p.tx.send(PmdCmd::Peers(peers));
        let wakes = others().map(|(_, q)| q.wake.clone()).collect();
        let _ = p.tx.send(PmdCmd::PeerWakes(wakes));
    }
    Ok(pmds)
}

/// Requests sent to every PMD, whose answers are not collected yet. A change sends its
/// barrier under the state lock, right behind its commands, and waits outside it.
#[must_use = "the PMDs' answers must be waited for"]
pub(super) struct Replies<T>(Vec<Receiver<T>>);

impl<T> Replies<T> {
    /// Collects the answers, in PMD order, waiting up to [`PMD_TIMEOUT`] for each.
    pub(super) fn wait(self) -> Result<Vec<T>, SwitchError> {
        self.0
            .iter()
            .enumerate()
            .map(|(i, rx)| {
                rx.recv_timeout(PMD_TIMEOUT)
                    .map_err(|_| SwitchError::PmdTimeout(i))
            })
            .collect()
    }

    /// Waits for barrier answers: every PMD has applied everything sent before.
    pub(super) fn confirmed(self) -> Result<(), SwitchError> {
        self.wait().map(drop)
    }
}

impl Switch {
    /// Sends PMD `pmd` a command and wakes it.
    pub(super) fn send(&self, pmd: usize, cmd: PmdCmd) {
        let h = &self.pmds[pmd];
        // The PMD owns the receiver until it exits; a send after that is moot.
        let _ = h.tx.send(cmd);
        // Wake it if it sleeps; a nonblocking eventfd write of 1 cannot fail in practice.
        let _ = h.wake.write(1);
    }

    /// Sends every PMD a command made by `make`.
    pub(super) fn broadcast(&self, mut make: impl FnMut() -> PmdCmd) {
        for i in 0..self.pmds.len() {
            self.send(i, make());
        }
    }

    /// Sends every PMD a request carrying a reply channel, without waiting.
    pub(super) fn request<T>(&self, request: impl Fn(Sender<T>) -> PmdCmd) -> Replies<T> {
        let mut replies = Vec::with_capacity(self.pmds.len());
        for i in 0..self.pmds.len() {
            let (tx, rx) = crossbeam_channel::bounded(1);
            self.send(i, request(tx));
            replies.push(rx);
        }
        Replies(replies)
    }

    /// Sends every PMD a request carrying a reply channel and collects the answers, in PMD
    /// order. All requests go out before waiting, so the PMDs answer in parallel.
    pub(super) fn ask<T>(
        &self,
        request: impl Fn(Sender<T>) -> PmdCmd,
    ) -> Result<Vec<T>, SwitchError> {
        self.request(request).wait()
    }

    /// Ends a change: sends the barrier behind its commands while `st` is still held, lets
    /// go of the state lock, then waits for every PMD to confirm.
    pub(super) fn confirm(&self, st: MutexGuard<'_, State>) -> Result<(), SwitchError> {
        let confirm = self.request(PmdCmd::Barrier);
        drop(st);
        confirm.confirmed()
    }

    /// Waits until every PMD has applied everything sent before.
    pub fn barrier(&self) -> Result<(), SwitchError> {
        self.request(PmdCmd::Barrier).confirmed()
    }

    /// Each PMD's last published counters (at most about a millisecond old).
    pub fn stats(&self) -> Vec<PmdSnapshot> {
        self.pmds
            .iter()
            .map(|p| p.mirror.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect()
    }

    /// Tells every PMD to stop, and joins them.
    pub(super) fn stop(&mut self) {
        for i in 0..self.pmds.len() {
            self.send(i, PmdCmd::Shutdown);
        }
        for p in &mut self.pmds {
            if let Some(t) = p.thread.take() {
                if t.join().is_err() {
                    warn!("a PMD thread panicked");
                }
            }
        }
    }
}
