//! Tracing a frame through one PMD's tables without forwarding it: the frame's key, whether
//! the PMD's exact-match cache holds a decision for it, which rule the classifier would pick,
//! and where `normal` would send it. Nothing is executed, learned or counted in the
//! datapath's counters (the cache's own probe counter aside).

use std::borrow::Cow;
use std::time::Instant;

use flowtable::action::Action;
use flowtable::fdb::L2Domain;
use flowtable::key::extract;
use flowtable::{FlowKey, PortNo, RuleId};

use ports::Packet;

use super::execute;
use super::lookup::decided_for;
use super::normal::{self, Forward};
use super::Pmd;

/// A frame to trace and where it enters.
#[derive(Debug, Clone)]
pub struct TraceRequest {
    /// The port the frame arrives on.
    pub in_port: PortNo,
    /// The whole Ethernet frame.
    pub frame: Vec<u8>,
}

/// Where the exact-match cache stands on the frame's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmcProbe {
    /// No cached decision: the classifier would be asked.
    Miss,
    /// A cached decision: this rule (or `None`: no rule, `normal`).
    Hit(Option<RuleId>),
}

/// Where `normal` would send the frame (the datapath's own decision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NormalOutcome {
    /// The destination MAC is learned on this port (in the frame's L2 domain).
    Learned(PortNo),
    /// Flood to these ports: every port carrying the frame's VLAN but the in-port, and, for
    /// a frame from a vxlan port, no vxlan port (split horizon). Empty: dropped (drop reason
    /// `split_horizon` when vxlan ports were the only candidates, else `no_destination`).
    Flood(Vec<PortNo>),
    /// The destination MAC is learned on this vxlan port, but the frame came from a vxlan
    /// port: split horizon drops it (drop reason `split_horizon`).
    SplitHorizon(PortNo),
}

/// What one PMD would do with a frame.
#[derive(Debug, Clone)]
pub struct Trace {
    /// The PMD that answered.
    pub pmd: usize,
    /// The frame's flow key.
    pub key: FlowKey,
    /// True when the rules give every frame of the in-port one decision: the datapath then
    /// skips the cache and the classifier for that port ([`flowtable::Classifier::port_decision`]).
    pub port_decided: bool,
    /// The cache's view.
    pub emc: EmcProbe,
    /// The rule the classifier picks (highest priority match, the same one its lookup
    /// picks among equal priorities), with its priority.
    pub rule: Option<(RuleId, u32)>,
    /// The actions that would run: the rule's (after the cache's decision when it holds
    /// one), or `normal`.
    pub actions: Vec<Action>,
    /// The frame's L2 domain, for `normal`.
    pub domain: L2Domain,
    /// Where `normal` would send it, when the actions include `normal`.
    pub normal: Option<NormalOutcome>,
}

impl Pmd {
    /// Traces `req` through this PMD's cache, classifier and MAC table.
    pub(super) fn trace(&mut self, req: &TraceRequest) -> Trace {
        let mut key = extract(&req.frame, req.in_port);
        // The in-port's VLAN mode puts the frame's logical VLAN into the key (a frame the
        // port would refuse keeps its key as parsed; the datapath drops it as `vlan`).
        if let Some(v) = self.vlans.get(req.in_port.index()) {
            let mut k = key;
            if v.ingress(&mut k) {
                key = k;
            }
        }
        let emc = match self.emc.lookup(&key, key.hash()) {
            Some(d) => EmcProbe::Hit(d.map(|idx| self.classifier.rule(idx).id)),
            None => EmcProbe::Miss,
        };
        // The classifier's own probe, minus the counting and re-ranking: the very rule its
        // next lookup would pick, equal-priority ties included.
        let best = self
            .classifier
            .lookup_quiet(&key)
            .map(|idx| self.classifier.rule(idx))
            .map(|r| (r.id, r.priority));
        let decided = match emc {
            EmcProbe::Hit(id) => id,
            EmcProbe::Miss => best.map(|b| b.0),
        };
        let actions = match decided {
            Some(id) => self
                .classifier
                .get(id)
                .map(|idx| self.classifier.rule(idx).actions.to_vec())
                .unwrap_or_default(),
            None => vec![Action::Normal],
        };
        // The key `normal` sees: the frame's, edited by the actions before it (VLAN push and
        // pop, set_tunnel) as the datapath edits it. None: no `normal`, or the datapath drops
        // the frame as malformed before reaching it.
        let normal_key = actions
            .iter()
            .position(|a| *a == Action::Normal)
            .and_then(|at| {
                let mut pkt = Packet::new();
                let mut edited = Cow::Borrowed(&key);
                let mut tun = None;
                (pkt.copy_from(&req.frame)
                    && actions[..at]
                        .iter()
                        .all(|a| execute::edit(&mut pkt, &mut edited, &mut tun, a)))
                .then(|| edited.into_owned())
            });
        let domain = normal::domain(normal_key.as_ref().unwrap_or(&key));
        let normal = normal_key.map(|key| {
            // The datapath's own decision (`normal` asks the same function after learning
            // the source, which a trace does not do).
            let ports = normal::Ports {
                flood: &self.flood,
                vlans: &self.vlans,
                tunnel: &self.tunnel,
            };
            let (frame, forward) = ports.forward(&self.fdb, &key, req.in_port, Instant::now());
            match forward {
                Forward::Learned(port) => NormalOutcome::Learned(port),
                Forward::Drop {
                    learned: Some(port),
                    ..
                } => NormalOutcome::SplitHorizon(port),
                Forward::Flood { .. } | Forward::Drop { learned: None, .. } => {
                    NormalOutcome::Flood(
                        self.flood
                            .iter()
                            .copied()
                            .filter(|&p| ports.floods_to(&frame, p))
                            .collect(),
                    )
                }
            }
        });
        let port_decided = decided_for(&self.port_decisions, &self.tunnel, req.in_port).is_some();
        Trace {
            pmd: self.cfg.index,
            key,
            port_decided,
            emc,
            rule: best,
            actions,
            domain,
            normal,
        }
    }
}
