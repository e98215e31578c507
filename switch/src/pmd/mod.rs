//! A poll-mode driver thread: owns its rx queues, tx batches, classifier, exact-match cache
//! and MAC table, and polls its rx queues in a loop, each burst through the pipeline
//! (`pipeline.rs`: rx, ingress VLAN/decap, decide, execute, flush).
//!
//! Control reaches a PMD only through [`PmdCmd`] messages (`command.rs`), drained with
//! `try_recv` between bursts: the PMD never waits for the control plane, and every table it
//! reads is its own. This file keeps the thread: its state, its loop, its timers and the
//! publication of its counters.

mod clock;
mod command;
mod execute;
mod idle;
mod lookup;
mod normal;
mod offload;
mod pipeline;
#[cfg(test)]
mod tests;
pub(crate) mod trace;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use flowtable::fdb::L2Domain;
use flowtable::{Classifier, Emc, FlowKey, MacAddr, MacTable, PortNo};
use nix::sys::eventfd::EventFd;
use ports::{Packet, RxQueue, BURST};
use tracing::{info, warn};

/// The VLAN modes, where the control plane has always found them.
pub(crate) use crate::datapath::vlan;
pub(crate) use command::{PmdCmd, RuleOp, RULE_OPS_PER_ITERATION};

use crate::datapath::log_limit::LogLimit;
use crate::datapath::tx::TxBatches;
use crate::stats::{PmdSnapshot, PmdStats, RxqCounters, StatsMirror};
use crate::tunnel::Tunnel;
use clock::Clock;
use command::Flow;
use idle::Sleeper;
use lookup::{Decision, EmcGate, Misses, PortDecision};
use vlan::PortVlan;

/// How often a PMD copies its counters into its mirror.
const PUBLISH_EVERY: Duration = Duration::from_millis(1);
/// How long a PMD calibrates its clock when it starts.
const CLOCK_CALIBRATION: Duration = Duration::from_millis(10);
/// How often a PMD sweeps expired MACs out of its table (lookups ignore them anyway).
const AGE_EVERY: Duration = Duration::from_secs(1);

/// Settings a PMD starts with.
pub(crate) struct PmdConfig {
    pub index: usize,
    pub core: usize,
    pub emc_entries: usize,
    pub emc_insert_inv_prob: u32,
    pub mac_table_size: usize,
    pub mac_aging: Duration,
    pub sleep_after: Option<Duration>,
}

/// An rx queue assigned to this PMD.
pub(crate) struct RxqEntry {
    pub port: PortNo,
    pub index: usize,
    pub queue: Box<dyn RxQueue>,
    /// This queue's counters (plain: only this PMD writes them).
    pub counters: RxqCounters,
}

/// One PMD's state: everything its loop reads and writes, owned by its thread alone.
pub(crate) struct Pmd {
    cfg: PmdConfig,
    cmds: Receiver<PmdCmd>,
    wake: Arc<EventFd>,
    peers: Vec<Sender<PmdCmd>>,
    peer_wakes: Vec<Arc<EventFd>>,
    mirror: StatsMirror,

    rxqs: Vec<RxqEntry>,
    /// A batch per output port.
    tx: TxBatches,
    /// Ports `normal` floods to (bridge ports: not the underlay; for a frame from a vxlan
    /// port, split horizon leaves out the vxlan ports).
    flood: Vec<PortNo>,
    /// Each port's VLAN mode, indexed by port number.
    vlans: Vec<PortVlan>,
    /// VXLAN ports, the underlay, neighbours.
    tunnel: Tunnel,
    sleeper: Sleeper,

    classifier: Classifier,
    /// The rest of a rule change being applied (`command.rs`), empty when none.
    rule_ops: std::vec::IntoIter<RuleOp>,
    /// Per port number: the decision all its frames get when the rules make it depend on the
    /// in-port alone (recomputed on every rule or port change), else `None`.
    port_decisions: Vec<Option<PortDecision>>,
    emc: Emc<Decision>,
    /// Whether the cache is asked at all (it sits out while it hits too rarely).
    emc_gate: EmcGate,
    fdb: MacTable,
    announce: Vec<(L2Domain, MacAddr, PortNo)>,

    burst: Vec<Packet>,
    keys: Vec<FlowKey>,
    decisions: Vec<Decision>,
    misses: Box<Misses>,
    /// Where software segmentation builds each segment before it joins a tx batch.
    segment: Packet,
    /// Frames dropped for a lying virtio-net header, logged at most every few seconds.
    offload_log: LogLimit,
    stats: PmdStats,
}

impl Pmd {
    /// A PMD with no ports and no rules, reading its commands from `cmds`, woken from sleep
    /// through `wake`, publishing its counters into `mirror`.
    pub fn new(
        cfg: PmdConfig,
        cmds: Receiver<PmdCmd>,
        wake: Arc<EventFd>,
        mirror: StatsMirror,
    ) -> Pmd {
        let sleeper = Sleeper::new(&[], &wake);
        Pmd {
            emc: Emc::with_insert_inv_prob(cfg.emc_entries, cfg.emc_insert_inv_prob),
            fdb: MacTable::new(cfg.mac_table_size, cfg.mac_aging),
            cfg,
            cmds,
            wake,
            peers: Vec::new(),
            peer_wakes: Vec::new(),
            mirror,
            rxqs: Vec::new(),
            tx: TxBatches::new(),
            flood: Vec::new(),
            vlans: Vec::new(),
            tunnel: Tunnel::new(),
            sleeper,
            classifier: Classifier::new(),
            rule_ops: Vec::new().into_iter(),
            port_decisions: Vec::new(),
            announce: Vec::with_capacity(BURST),
            burst: (0..BURST).map(|_| Packet::new()).collect(),
            keys: vec![FlowKey::ZERO; BURST],
            decisions: vec![None; BURST],
            misses: Misses::new(),
            emc_gate: EmcGate::default(),
            segment: Packet::new(),
            offload_log: LogLimit::default(),
            stats: PmdStats::default(),
        }
    }

    /// The thread body: pin, then loop until [`PmdCmd::Shutdown`].
    pub fn run(mut self) {
        let pinned = core_affinity::set_for_current(core_affinity::CoreId { id: self.cfg.core });
        if !pinned {
            warn!(
                pmd = self.cfg.index,
                core = self.cfg.core,
                "could not pin PMD thread"
            );
        }
        // Pinned first, so the counter read below is the core's own.
        let mut clock = Clock::new(CLOCK_CALIBRATION);
        info!(pmd = self.cfg.index, core = self.cfg.core, "PMD started");
        let publish_every = PUBLISH_EVERY.as_nanos() as u64;
        let age_every = AGE_EVERY.as_nanos() as u64;
        let sleep_after = self.cfg.sleep_after.map(|d| d.as_nanos() as u64);
        // Nanoseconds on `clock`: one counter read per iteration.
        let mut now = clock.now_ns();
        let mut last_rx = now;
        let mut last_publish = now;
        let mut last_age = now;
        loop {
            if let Flow::Stop = self.drain_commands() {
                break;
            }
            let got = self.poll(|| clock.instant(now));
            self.send_announcements();
            let end = clock.now_ns();
            let spent = end.saturating_sub(now);
            self.stats.count_iteration(spent);
            if got > 0 {
                self.stats.busy_iterations += 1;
                self.stats.busy_ns += spent;
                last_rx = end;
            } else {
                self.stats.idle_iterations += 1;
                self.stats.idle_ns += spent;
                // An empty poll re-reads the guests' avail indices; a pause between polls
                // leaves their cache lines to the guest's writes a little longer.
                std::hint::spin_loop();
                if let Some(after) = sleep_after {
                    if end.saturating_sub(last_rx) >= after {
                        self.publish();
                        let (cmds, busy) = (&self.cmds, self.rules_pending());
                        if self
                            .sleeper
                            .sleep(&mut self.rxqs, &self.wake, || busy || !cmds.is_empty())
                        {
                            self.stats.sleeps += 1;
                        }
                        // `last_rx` stays: if this wake brought no traffic (a timeout or a
                        // command), the next idle iteration goes straight back to sleep.
                        let woke = clock.now_ns();
                        self.stats.idle_ns += woke.saturating_sub(end);
                        now = woke;
                        // Timers run while idle too (ARP retries for held frames).
                        self.timers(&mut clock, now, &mut last_age, age_every);
                        continue;
                    }
                }
            }
            // One clock read per iteration: this iteration's end is the next one's start.
            now = end;
            if now.saturating_sub(last_publish) >= publish_every {
                self.publish();
                last_publish = now;
                self.timers(&mut clock, now, &mut last_age, age_every);
            }
        }
        self.publish();
        info!(pmd = self.cfg.index, "PMD stopped");
    }

    /// About once per [`AGE_EVERY`] (`age_every` ns on `clock`): MAC aging and the overlay's
    /// timers.
    fn timers(&mut self, clock: &mut Clock, now: u64, last_age: &mut u64, age_every: u64) {
        if now.saturating_sub(*last_age) >= age_every {
            // Once a second: the counter's rate from everything since start, so PMD time
            // keeps agreeing with `Instant` (which control messages and peers use).
            clock.recalibrate();
            let t = clock.instant(now);
            self.fdb.age(t);
            self.tunnel_tick(t);
            *last_age = now;
        }
    }

    /// Overlay timer work: ARP retries, giving up on silent next hops.
    fn tunnel_tick(&mut self, now: Instant) {
        self.tunnel.tick(&mut self.tx.cx(&mut self.stats, now));
        self.flush();
    }

    /// Tells the other PMDs what this burst learned, so their MAC tables agree.
    fn send_announcements(&mut self) {
        if !self.tunnel.announce.is_empty() {
            for peer in &self.peers {
                let _ = peer.try_send(PmdCmd::Neighbours(self.tunnel.announce.clone()));
            }
            // A peer may hold frames for these neighbours: wake it if it sleeps.
            for wake in &self.peer_wakes {
                let _ = wake.write(1);
            }
            self.tunnel.announce.clear();
        }
        if self.announce.is_empty() {
            return;
        }
        for peer in &self.peers {
            // A full peer queue loses an announcement; the MAC is re-announced later (on
            // refresh), and until then the peer floods.
            let _ = peer.try_send(PmdCmd::Learned(self.announce.clone()));
        }
        self.announce.clear();
    }

    /// Copies the counters into the mirror, unless a reader holds it right now (then the
    /// next publish catches up): the PMD never waits.
    fn publish(&self) {
        let Ok(mut m) = self.mirror.try_lock() else {
            return;
        };
        self.fill_snapshot(&mut m);
    }

    /// Publishes even if a reader holds the mirror (it does so only to clone it). Used on
    /// control requests, never per burst.
    fn publish_now(&self) {
        let mut m = self.mirror.lock().unwrap_or_else(|e| e.into_inner());
        self.fill_snapshot(&mut m);
    }

    fn fill_snapshot(&self, snap: &mut PmdSnapshot) {
        snap.pmd = self.cfg.index;
        snap.core = self.cfg.core;
        snap.rules = self.classifier.len();
        snap.subtables = self.classifier.n_subtables();
        snap.mac_entries = self.fdb.len();
        snap.rxqs.clear();
        snap.rxqs
            .extend(self.rxqs.iter().map(|r| (r.port, r.index)));
        snap.rxq_counters.clear();
        snap.rxq_counters
            .extend(self.rxqs.iter().map(|r| r.counters));
        snap.stats.clone_from(&self.stats);
        snap.tunnel.clone_from(&self.tunnel.stats);
        snap.stats.classifier_probes = self.classifier.stats().subtable_probes;
    }
}
