//! What the control plane (or a peer PMD) tells a PMD, and how the PMD applies it between
//! two bursts: ports added and deleted, rule changes, MACs and neighbours its peers learned,
//! reports, barriers and traces. After every port or rule change the per-port decisions
//! (ports whose frames all take one decision) are recomputed here, never per burst.
//!
//! The packet loop itself is in `pipeline.rs`; nothing here runs per frame.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Sender, TryRecvError};
use flowtable::fdb::L2Domain;
use flowtable::{Action, FlowKey, MacAddr, PortNo, Rule, RuleId};
use nix::sys::eventfd::EventFd;
use ports::{RxQueue, TxQueue};
use tracing::{debug, error};

use super::idle::Sleeper;
use super::lookup::PortDecision;
use super::{trace, Pmd, RxqEntry};
use crate::datapath::vlan::PortVlan;
use crate::stats::{DropReason, RxqCounters};
use crate::tunnel::{Underlay, VxlanPort};

/// Rule changes applied per loop iteration: a slice of a large change costs the PMD about
/// as long as a few bursts (see `apply_rule_slice`).
pub(crate) const RULE_OPS_PER_ITERATION: usize = 256;

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
    /// Make room for the rules of the next [`PmdCmd::Rules`]: how many have each mask
    /// (`Classifier::reserve`), counted once by the control plane for every PMD.
    Reserve(Arc<[(FlowKey, usize)]>),
    /// Apply rule changes, in order, in slices between bursts (`Pmd::drain_commands`).
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

/// What the loop should do after draining commands.
pub(super) enum Flow {
    Continue,
    Stop,
}

impl Pmd {
    /// Applies the commands waiting, without blocking, and at most [`RULE_OPS_PER_ITERATION`]
    /// rule changes: a large rule change (a bulk install of 100k rules) is applied over
    /// several iterations, so forwarding goes on between its slices instead of stopping for
    /// the whole change. Commands behind an unfinished change wait for it (they are applied
    /// in order: a barrier still answers only once everything before it is in).
    pub(super) fn drain_commands(&mut self) -> Flow {
        if self.rules_pending() {
            self.apply_rule_slice();
            return Flow::Continue;
        }
        loop {
            match self.cmds.try_recv() {
                Ok(cmd) => {
                    if let Flow::Stop = self.apply(cmd) {
                        return Flow::Stop;
                    }
                    if self.rules_pending() {
                        return Flow::Continue;
                    }
                }
                Err(TryRecvError::Empty) => return Flow::Continue,
                Err(TryRecvError::Disconnected) => return Flow::Stop,
            }
        }
    }

    /// A rule change is partly applied.
    pub(super) fn rules_pending(&self) -> bool {
        self.rule_ops.len() > 0
    }

    /// Applies the next slice of the pending rule change. Between slices frames see the rules
    /// as far as applied (a prefix of the change, in order): the exact-match cache is
    /// invalidated and the per-port decisions recomputed after each slice.
    fn apply_rule_slice(&mut self) {
        for op in self.rule_ops.by_ref().take(RULE_OPS_PER_ITERATION) {
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

    /// Applies one command.
    pub(super) fn apply(&mut self, cmd: PmdCmd) -> Flow {
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
                self.tx.add(port, txq);
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
                let mut cx = self.tx.cx(&mut self.stats, Instant::now());
                for (ip, mac) in entries {
                    self.tunnel.learn(ip, mac, false, &mut cx);
                }
                self.flush();
            }
            PmdCmd::DelPort(port) => {
                let dropped = self.tunnel.del_port(port);
                self.stats.drops[DropReason::Tunnel as usize] += dropped;
                self.set_vlan(port, PortVlan::default());
                self.rxqs.retain(|r| r.port != port);
                self.tx.remove(port, &mut self.stats);
                self.flood.retain(|&p| p != port);
                self.fdb.flush_port(port);
                self.sleeper = Sleeper::new(&self.rxqs, &self.wake);
                self.refresh_port_decisions();
                debug!(pmd = self.cfg.index, %port, "port deleted");
            }
            PmdCmd::Reserve(per_mask) => self.classifier.reserve(&per_mask),
            PmdCmd::Rules(ops) => {
                self.rule_ops = ops.into_iter();
                self.apply_rule_slice();
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
}
