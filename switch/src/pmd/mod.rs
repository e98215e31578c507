//! A poll-mode driver thread: owns its rx queues, tx batches, classifier, exact-match cache
//! and MAC table, and runs the per-burst pipeline:
//!
//! 1. `rx_burst` up to [`BURST`] frames from each assigned rx queue into switch buffers;
//! 2. extract each frame's [`FlowKey`] (from the switch's private copy);
//! 3. [`lookup::decide`]: EMC, then the classifier on a miss, `normal` when nothing matches;
//! 4. [`execute::execute`] the actions into per-output-port tx batches;
//! 5. flush each dirty tx batch once.
//!
//! Control reaches a PMD only through [`PmdCmd`] messages, drained with `try_recv` between
//! bursts: the PMD never waits for the control plane, and every table it reads is its own.

mod clock;
mod execute;
mod idle;
mod lookup;
mod normal;
pub(crate) mod trace;
pub(crate) mod tx;
pub(crate) mod vlan;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use flowtable::fdb::L2Domain;
use flowtable::key::{extract_into, extract_l2_into};
use flowtable::{Action, Classifier, Emc, FlowKey, MacAddr, MacTable, PortNo, Rule, RuleId};
use nix::sys::eventfd::EventFd;
use ports::{Packet, RxQueue, TxQueue, BURST};
use tracing::{debug, error, info, warn};

use crate::stats::{PmdSnapshot, PmdStats, RxqCounters, StatsMirror};
use crate::tunnel::{decap, Tunnel, TxCtx, Underlay, VxlanPort};
use clock::Clock;
use execute::{execute, Out, NORMAL};
use idle::Sleeper;
use lookup::{Decision, Misses};
use tx::TxPort;
use vlan::PortVlan;

/// How often a PMD copies its counters into its mirror.
const PUBLISH_EVERY: Duration = Duration::from_millis(1);
/// How long a PMD calibrates its clock when it starts.
const CLOCK_CALIBRATION: Duration = Duration::from_millis(10);
/// How often a PMD sweeps expired MACs out of its table (lookups ignore them anyway).
const AGE_EVERY: Duration = Duration::from_secs(1);

/// A change to a PMD's rule table.
pub(crate) enum RuleOp {
    /// Install a rule (boxed: a rule is much larger than a removal).
    Insert(Box<Rule>),
    /// Remove a rule.
    Remove(RuleId),
}

/// What a PMD reports on request (data too big to publish every millisecond).
#[derive(Debug, Default)]
pub(crate) struct PmdReport {
    /// Hits per rule since it was installed.
    pub rule_hits: Vec<(RuleId, u64)>,
    /// Live MAC table entries: domain, MAC, port, seconds idle.
    pub fdb: Vec<(L2Domain, MacAddr, PortNo, u64)>,
}

/// A message from the control plane (or a peer PMD) to a PMD.
pub(crate) enum PmdCmd {
    /// Start polling `rxqs` of `port` and transmit to it through `txq`. `vlan` is its VLAN
    /// mode; `underlay` is set when the port is the uplink (then it is not a bridge port).
    AddPort {
        port: PortNo,
        rxqs: Vec<(usize, Box<dyn RxQueue>)>,
        txq: Box<dyn TxQueue>,
        vlan: PortVlan,
        underlay: Option<Underlay>,
    },
    /// Add a vxlan port: a bridge port without queues whose output is encapsulated.
    AddVxlan {
        port: PortNo,
        vlan: PortVlan,
        vxlan: VxlanPort,
    },
    /// Neighbours (underlay IPv4 to MAC) another PMD learned.
    Neighbours(Vec<(Ipv4Addr, MacAddr)>),
    /// Forget a port: its queues are dropped and its MACs flushed.
    DelPort(PortNo),
    /// Apply rule changes, all at once between two bursts.
    Rules(Vec<RuleOp>),
    /// MACs another PMD learned.
    Learned(Vec<(L2Domain, MacAddr, PortNo)>),
    /// Forget every learned MAC.
    FlushFdb,
    /// The other PMDs, for MAC announcements (applied between their bursts; a sleeping
    /// peer applies them when traffic wakes it, before deciding that traffic).
    Peers(Vec<Sender<PmdCmd>>),
    /// The other PMDs' wake eventfds, so urgent announcements (neighbours that release
    /// held frames) wake a sleeping peer.
    PeerWakes(Vec<Arc<EventFd>>),
    /// Reply with a [`PmdReport`].
    Report(Sender<PmdReport>),
    /// Reply once everything sent before has been applied.
    Barrier(Sender<()>),
    /// Reply with what this PMD would do with a frame (see `trace`), without forwarding it.
    Trace(Box<trace::TraceRequest>, Sender<trace::Trace>),
    /// Exit the thread.
    Shutdown,
}

/// Settings a PMD starts with.
pub(crate) struct PmdConfig {
    pub index: usize,
    pub core: usize,
    pub emc_entries: usize,
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

pub(crate) struct Pmd {
    cfg: PmdConfig,
    cmds: Receiver<PmdCmd>,
    wake: Arc<EventFd>,
    peers: Vec<Sender<PmdCmd>>,
    peer_wakes: Vec<Arc<EventFd>>,
    mirror: StatsMirror,

    rxqs: Vec<RxqEntry>,
    /// Indexed by port number.
    txs: Vec<Option<TxPort>>,
    /// Ports `normal` floods to (bridge ports: not the underlay; for a frame from a vxlan
    /// port, split horizon leaves out the vxlan ports).
    flood: Vec<PortNo>,
    /// Each port's VLAN mode, indexed by port number.
    vlans: Vec<PortVlan>,
    /// VXLAN ports, the underlay, neighbours.
    tunnel: Tunnel,
    dirty: Vec<PortNo>,
    sleeper: Sleeper,

    classifier: Classifier,
    /// Per port number: the decision all its frames get when the rules make it depend on the
    /// in-port alone (recomputed on every rule or port change), else `None`.
    port_decisions: Vec<Option<PortDecision>>,
    emc: Emc<Decision>,
    fdb: MacTable,
    announce: Vec<(L2Domain, MacAddr, PortNo)>,

    burst: Vec<Packet>,
    keys: Vec<FlowKey>,
    decisions: Vec<Decision>,
    misses: Box<Misses>,
    stats: PmdStats,
}

/// What the rules decide for every frame of one rx port.
#[derive(Clone, Copy)]
struct PortDecision {
    decision: Decision,
    /// The decision's actions look at nothing past the L2 header (outputs to plain ports, or
    /// a drop): the frames' L3 and L4 fields are not parsed. `normal` and vxlan outputs need
    /// them (learning, the encapsulation's flow hash).
    l2_only: bool,
}

/// The decision every frame from `port` takes, if the rules make it one. Never the
/// underlay's: its frames are decapsulated, each then with its vxlan port as in-port.
fn decided_for(
    decisions: &[Option<PortDecision>],
    tunnel: &Tunnel,
    port: PortNo,
) -> Option<PortDecision> {
    match decisions.get(port.index()) {
        Some(&Some(d)) if !tunnel.is_underlay(port) => Some(d),
        _ => None,
    }
}

/// What the loop should do after draining commands.
enum Flow {
    Continue,
    Stop,
}

impl Pmd {
    pub fn new(
        cfg: PmdConfig,
        cmds: Receiver<PmdCmd>,
        wake: Arc<EventFd>,
        mirror: StatsMirror,
    ) -> Pmd {
        let sleeper = Sleeper::new(&[], &wake);
        Pmd {
            emc: Emc::new(cfg.emc_entries),
            fdb: MacTable::new(cfg.mac_table_size, cfg.mac_aging),
            cfg,
            cmds,
            wake,
            peers: Vec::new(),
            peer_wakes: Vec::new(),
            mirror,
            rxqs: Vec::new(),
            txs: Vec::new(),
            flood: Vec::new(),
            vlans: Vec::new(),
            tunnel: Tunnel::new(),
            dirty: Vec::with_capacity(64),
            sleeper,
            classifier: Classifier::new(),
            port_decisions: Vec::new(),
            announce: Vec::with_capacity(BURST),
            burst: (0..BURST).map(|_| Packet::new()).collect(),
            keys: vec![FlowKey::ZERO; BURST],
            decisions: vec![None; BURST],
            misses: Misses::new(),
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
            let mut got = 0;
            for r in 0..self.rxqs.len() {
                let n = self.rxqs[r].queue.rx_burst(&mut self.burst);
                if n > 0 {
                    got += n;
                    let n = n.min(BURST);
                    let port = self.rxqs[r].port;
                    let bytes = self.process(port, n, clock.instant(now));
                    let c = &mut self.rxqs[r].counters;
                    c.rx_packets += n as u64;
                    c.rx_bytes += bytes;
                }
            }
            self.send_announcements();
            let end = clock.now_ns();
            let spent = end.saturating_sub(now);
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
                        if self.sleeper.sleep(&mut self.rxqs, &self.wake) {
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

    /// Runs one rx burst of `n` frames from `in_port` through the pipeline; returns the
    /// burst's bytes.
    fn process(&mut self, in_port: PortNo, n: usize, now: Instant) -> u64 {
        let Pmd {
            burst,
            keys,
            decisions,
            misses,
            emc,
            classifier,
            port_decisions,
            fdb,
            txs,
            dirty,
            flood,
            vlans,
            tunnel,
            announce,
            stats,
            ..
        } = self;
        let underlay = tunnel.is_underlay(in_port);
        // A port whose frames all take one decision skips the cache and the classifier.
        let decided = decided_for(port_decisions, tunnel, in_port);
        let l2_only = decided.is_some_and(|d| d.l2_only);
        let mut bytes = 0;
        for (pkt, key) in burst[..n].iter().zip(keys.iter_mut()) {
            // `pkt` is switch memory: the port copied the frame out of the guest (or NIC)
            // before we look at it, so no decision below can be raced.
            if l2_only {
                extract_l2_into(pkt.data(), in_port, key);
            } else {
                extract_into(pkt.data(), in_port, key);
            }
            bytes += pkt.len();
        }
        stats.rx_packets += n as u64;
        let pc = stats.port_mut(in_port);
        pc.rx_packets += n as u64;
        pc.rx_bytes += bytes as u64;

        // Overlay hook: the underlay's frames are consumed (ARP) or decapsulated, each then
        // with its vxlan port as in-port; other ports apply their VLAN mode. Either way the
        // frames left are moved to the front.
        let n = if underlay {
            let mut cx = TxCtx {
                txs,
                dirty,
                stats,
                now,
            };
            decap::underlay_rx(tunnel, &mut burst[..n], &mut keys[..n], vlans, &mut cx)
        } else {
            match vlans.get(in_port.index()) {
                Some(v) => vlan::ingress_burst(v, &mut burst[..n], &mut keys[..n], stats),
                None => n,
            }
        };

        match decided {
            Some(PortDecision { decision: d, .. }) => {
                decisions[..n].fill(d);
                if let Some(idx) = d {
                    classifier.count_hits(idx, n as u64);
                }
                stats.port_decided += n as u64;
            }
            _ => lookup::decide(
                &keys[..n],
                &mut decisions[..n],
                emc,
                classifier,
                misses,
                stats,
            ),
        }

        let mut out = Out {
            txs,
            dirty,
            flood,
            vlans,
            tunnel,
            fdb,
            announce,
            stats,
            now,
        };
        for i in 0..n {
            let actions = match decisions[i] {
                Some(idx) => classifier.actions(idx),
                None => NORMAL,
            };
            // Per frame: a decapsulated frame's in-port is its vxlan port.
            execute(
                &mut burst[i],
                &keys[i],
                keys[i].in_port(),
                actions,
                &mut out,
            );
        }
        for port in out.dirty.drain(..) {
            if let Some(Some(tx)) = out.txs.get_mut(port.index()) {
                tx.flush(out.stats);
            }
        }
        bytes as u64
    }

    /// Flushes the tx batches filled outside a burst (ARP requests, released frames).
    fn flush_dirty(&mut self) {
        for port in self.dirty.drain(..) {
            if let Some(Some(tx)) = self.txs.get_mut(port.index()) {
                tx.flush(&mut self.stats);
            }
        }
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
        self.tunnel.tick(&mut TxCtx {
            txs: &mut self.txs,
            dirty: &mut self.dirty,
            stats: &mut self.stats,
            now,
        });
        self.flush_dirty();
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

    fn drain_commands(&mut self) -> Flow {
        loop {
            match self.cmds.try_recv() {
                Ok(cmd) => {
                    if let Flow::Stop = self.apply(cmd) {
                        return Flow::Stop;
                    }
                }
                Err(TryRecvError::Empty) => return Flow::Continue,
                Err(TryRecvError::Disconnected) => return Flow::Stop,
            }
        }
    }

    fn apply(&mut self, cmd: PmdCmd) -> Flow {
        match cmd {
            PmdCmd::AddPort {
                port,
                rxqs,
                txq,
                vlan,
                underlay,
            } => {
                for (index, queue) in rxqs {
                    self.rxqs.push(RxqEntry {
                        port,
                        index,
                        queue,
                        counters: RxqCounters::default(),
                    });
                }
                if self.txs.len() <= port.index() {
                    self.txs.resize_with(port.index() + 1, || None);
                }
                self.txs[port.index()] = Some(TxPort::new(port, txq));
                self.set_vlan(port, vlan);
                match underlay {
                    Some(u) => self.tunnel.underlay = Some(u),
                    None => self.flood.push(port),
                }
                // The number may have been another port's: start clean.
                *self.stats.port_mut(port) = Default::default();
                self.fdb.flush_port(port);
                self.sleeper = Sleeper::new(&self.rxqs, &self.wake);
                self.refresh_port_decisions();
                debug!(pmd = self.cfg.index, %port, "port added");
            }
            PmdCmd::AddVxlan { port, vlan, vxlan } => {
                self.set_vlan(port, vlan);
                self.tunnel.add_vxlan(vxlan);
                self.flood.push(port);
                *self.stats.port_mut(port) = Default::default();
                self.fdb.flush_port(port);
                // An output to this port now encapsulates (it needs the full key).
                self.refresh_port_decisions();
                debug!(pmd = self.cfg.index, %port, "vxlan port added");
            }
            PmdCmd::Neighbours(entries) => {
                let now = Instant::now();
                let mut cx = TxCtx {
                    txs: &mut self.txs,
                    dirty: &mut self.dirty,
                    stats: &mut self.stats,
                    now,
                };
                for (ip, mac) in entries {
                    self.tunnel.learn(ip, mac, false, &mut cx);
                }
                self.flush_dirty();
            }
            PmdCmd::DelPort(port) => {
                let dropped = self.tunnel.del_port(port);
                self.stats.drops[crate::stats::DropReason::Tunnel as usize] += dropped;
                self.set_vlan(port, PortVlan::default());
                self.rxqs.retain(|r| r.port != port);
                if let Some(slot) = self.txs.get_mut(port.index()) {
                    if let Some(mut tx) = slot.take() {
                        tx.flush(&mut self.stats);
                    }
                }
                self.flood.retain(|&p| p != port);
                self.fdb.flush_port(port);
                self.sleeper = Sleeper::new(&self.rxqs, &self.wake);
                self.refresh_port_decisions();
                debug!(pmd = self.cfg.index, %port, "port deleted");
            }
            PmdCmd::Rules(ops) => {
                for op in ops {
                    match op {
                        RuleOp::Insert(rule) => {
                            if let Err(e) = self.classifier.insert(*rule) {
                                error!(pmd = self.cfg.index, "rule insert refused: {e}");
                            }
                        }
                        RuleOp::Remove(id) => {
                            self.classifier.remove(id);
                        }
                    }
                }
                self.emc.invalidate();
                self.refresh_port_decisions();
            }
            PmdCmd::Learned(entries) => {
                let now = Instant::now();
                for (dom, mac, port) in entries {
                    // A peer may have learned on a port just deleted (its announcement sent
                    // before it saw the delete): never on a port this PMD does not have,
                    // whose number a new port may get.
                    if self.flood.contains(&port) {
                        self.fdb.insert_remote(dom, mac, port, now);
                    }
                }
            }
            PmdCmd::FlushFdb => self.fdb.flush(),
            PmdCmd::Peers(peers) => self.peers = peers,
            PmdCmd::PeerWakes(wakes) => self.peer_wakes = wakes,
            PmdCmd::Report(reply) => {
                let now = Instant::now();
                let report = PmdReport {
                    rule_hits: self.classifier.rule_hits().collect(),
                    fdb: self
                        .fdb
                        .iter(now)
                        .map(|e| (e.domain, e.mac, e.port, e.age.as_secs()))
                        .collect(),
                };
                let _ = reply.send(report);
            }
            PmdCmd::Barrier(reply) => {
                // Publish first, so counters read after a barrier include everything the
                // barrier covers.
                self.publish_now();
                let _ = reply.send(());
            }
            PmdCmd::Trace(req, reply) => {
                let _ = reply.send(self.trace(&req));
            }
            PmdCmd::Shutdown => return Flow::Stop,
        }
        Flow::Continue
    }

    /// Recomputes which of this PMD's rx ports have all their frames decided by the in-port
    /// alone. At most one probe per subtable per port, on rule and port changes only.
    fn refresh_port_decisions(&mut self) {
        self.port_decisions.clear();
        for r in &self.rxqs {
            let i = r.port.index();
            if self.port_decisions.len() <= i {
                self.port_decisions.resize(i + 1, None);
            }
            self.port_decisions[i] = self.classifier.port_decision(r.port).map(|decision| {
                let l2_only = decision.is_some_and(|idx| {
                    self.classifier.actions(idx).iter().all(|a| match a {
                        Action::Output(p) => self.tunnel.vxlan_port(*p).is_none(),
                        _ => false,
                    })
                });
                PortDecision { decision, l2_only }
            });
        }
    }

    fn set_vlan(&mut self, port: PortNo, vlan: PortVlan) {
        if self.vlans.len() <= port.index() {
            self.vlans.resize_with(port.index() + 1, PortVlan::default);
        }
        self.vlans[port.index()] = vlan;
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
