//! The control handle: creates PMD threads, ports and rules, and sends each change to the
//! PMDs as a message they apply between bursts. Every mutating call returns once all PMDs
//! have applied it (a barrier), so "the call returned" means "the change is in effect"; if a
//! PMD does not answer in time the call fails with [`SwitchError::PmdTimeout`], the change
//! made but not confirmed.
//!
//! Two locks guard the control plane, and no PMD ever takes either:
//! - the *change* lock serializes the mutating calls and is held through each one's wait
//!   for the PMDs (so a port being deleted is closed before another call can reuse its name
//!   or socket);
//! - the *state* lock guards the tables readers need (ports, flows, memory peers) and is
//!   held only to read or update them, never while waiting for a PMD: a change sends its
//!   commands and its barrier under it, then waits outside it. A PMD slow to confirm stalls
//!   the next change, but never a read ([`Switch::ports`], [`Switch::stats`], ...).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};
use flowtable::fdb::L2Domain;
use flowtable::{MacAddr, PortNo, Rule, RuleId};
use nix::sys::eventfd::{EfdFlags, EventFd};
use ports::afxdp::AfXdpPort;
use ports::mem::{self, MemPeer};
use ports::tap::TapPort;
use ports::vhost::{VhostOptions, VhostUserPort};
use ports::{Port, PortError};
use tracing::{info, warn};

use crate::config::MatchValue;
use crate::config::{
    CompiledFlow, Config, FlowConfig, PathSeg, PortConfig, PortType, Problem, ProblemKind,
    SocketMode, SwitchConfig,
};
use crate::pmd::vlan::PortVlan;
use crate::pmd::{Pmd, PmdCmd, PmdConfig, RuleOp};

pub use crate::pmd::trace::{EmcProbe, NormalOutcome, Trace, TraceRequest};
use crate::stats::{PmdSnapshot, StatsMirror};
use crate::tunnel::{self, Underlay, VxlanPort};

/// How long a control call waits for the PMDs to apply a change.
const PMD_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a control operation failed. Nothing was changed when an error is returned, except
/// for [`SwitchError::PmdTimeout`].
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    /// The request is invalid.
    #[error("{0}")]
    Invalid(#[from] Problem),
    /// No port has that name.
    #[error("no port named {0:?}")]
    NoSuchPort(String),
    /// A port with that name exists.
    #[error("a port named {0:?} already exists")]
    PortExists(String),
    /// No flow has that id.
    #[error("no flow with id {0}")]
    NoSuchFlow(u64),
    /// The port type exists in the model but this build cannot create it yet.
    #[error("port {name:?}: type {kind:?} is not supported by this build yet")]
    Unsupported {
        /// The port.
        name: String,
        /// Its type.
        kind: &'static str,
    },
    /// The port could not be opened.
    #[error("port {name:?}: {source}")]
    Port {
        /// The port.
        name: String,
        /// What failed.
        source: PortError,
    },
    /// A PMD did not answer in time. From a mutating call this means the change is made but
    /// not confirmed: the control plane holds it whole and it is queued to every PMD in
    /// order, so each PMD applies it when it works through its queue.
    #[error("PMD {0} did not apply the change within {PMD_TIMEOUT:?}")]
    PmdTimeout(usize),
    /// A thread or OS resource could not be created.
    #[error("{what}: {source}")]
    Os {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

/// A port as the control plane knows it.
#[derive(Debug, Clone)]
pub struct PortInfo {
    /// Datapath port number.
    pub no: PortNo,
    /// Its configuration.
    pub config: PortConfig,
    /// For each rx queue, the PMD polling it.
    pub rxq_pmds: Vec<usize>,
}

/// A flow as the control plane knows it.
#[derive(Debug, Clone)]
pub struct FlowInfo {
    /// Its id.
    pub id: RuleId,
    /// As configured.
    pub config: FlowConfig,
    /// Frames that matched it, summed over PMDs.
    pub hits: u64,
}

/// A learned MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdbEntry {
    /// The VLAN or VNI domain.
    pub domain: L2Domain,
    /// The address.
    pub mac: MacAddr,
    /// Where it was seen.
    pub port: PortNo,
    /// Seconds since it was last seen (the freshest PMD's view).
    pub age_secs: u64,
}

struct PortEntry {
    info: PortInfo,
    /// The open port; `None` for virtual ports (vxlan).
    port: Option<Box<dyn Port>>,
}

struct FlowEntry {
    config: FlowConfig,
}

#[derive(Default)]
struct State {
    ports: Vec<PortEntry>,
    flows: BTreeMap<RuleId, FlowEntry>,
    next_rule: u64,
    peers: BTreeMap<String, MemPeer>,
    rxqs_per_pmd: Vec<usize>,
}

impl State {
    fn port_no(&self, name: &str) -> Option<PortNo> {
        self.ports
            .iter()
            .find(|p| p.info.config.name == name)
            .map(|p| p.info.no)
    }

    /// The lowest port number no port has (from 1). Numbers are reused, as OVS reuses
    /// OpenFlow port numbers: the PMDs' per-port tables are indexed by number, so numbers
    /// that only grew would make them grow with every port ever created (a node whose
    /// containers come and go would copy an ever longer counter table every millisecond).
    /// A reused number starts clean: no flow can name a deleted port, the PMDs flush its MAC
    /// entries and reset its counters, and ignore MAC announcements for ports they do not
    /// have (one sent for the old port arrives before the new one is added: announcements
    /// and commands share each PMD's one queue, and the delete waited for every PMD).
    fn free_port_no(&self) -> PortNo {
        let mut used: Vec<u32> = self.ports.iter().map(|p| p.info.no.0).collect();
        used.sort_unstable();
        let mut n = 1;
        for u in used {
            if u == n {
                n += 1;
            } else if u > n {
                break;
            }
        }
        PortNo(n)
    }
}

struct PmdHandle {
    tx: Sender<PmdCmd>,
    wake: Arc<EventFd>,
    mirror: StatsMirror,
    thread: Option<JoinHandle<()>>,
}

/// Requests sent to every PMD, whose answers are not collected yet. A change sends its
/// barrier under the state lock, right behind its commands, and waits outside it.
#[must_use = "the PMDs' answers must be waited for"]
struct Replies<T>(Vec<Receiver<T>>);

impl<T> Replies<T> {
    /// Collects the answers, in PMD order, waiting up to [`PMD_TIMEOUT`] for each.
    fn wait(self) -> Result<Vec<T>, SwitchError> {
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
    fn confirmed(self) -> Result<(), SwitchError> {
        self.wait().map(drop)
    }
}

/// A running switch.
pub struct Switch {
    /// Serializes mutating calls; held while they wait for the PMDs. Readers never take it.
    change: Mutex<()>,
    /// The control plane's tables; never held while waiting for a PMD.
    state: Mutex<State>,
    pmds: Vec<PmdHandle>,
    /// `switch.socket_dir`: where vhost-user sockets may be.
    socket_dir: std::path::PathBuf,
    /// Limits every vhost-user port gets (`switch.max_guest_memory`).
    vhost: VhostOptions,
}

impl Switch {
    /// Validates `cfg` whole, then starts the PMDs and creates its ports and flows. On any
    /// error the PMDs are stopped again: nothing runs half-configured.
    pub fn start(cfg: &Config) -> Result<Switch, SwitchError> {
        cfg.validate()?;
        let sw = Switch::new(&cfg.switch)?;
        for port in &cfg.ports {
            sw.add_port(port.clone())?;
        }
        sw.add_flows(&cfg.flows)?;
        Ok(sw)
    }

    /// Starts one PMD thread per configured core, with no ports and no flows.
    pub fn new(cfg: &SwitchConfig) -> Result<Switch, SwitchError> {
        let mut pmds = Vec::new();
        for (index, &core) in cfg.pmd_cores.iter().enumerate() {
            let (tx, rx) = unbounded();
            let wake = Arc::new(
                EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC).map_err(
                    |e| SwitchError::Os {
                        what: "eventfd",
                        source: e.into(),
                    },
                )?,
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
        let sw = Switch {
            change: Mutex::new(()),
            state: Mutex::new(State {
                next_rule: 1,
                rxqs_per_pmd: vec![0; pmds.len()],
                ..Default::default()
            }),
            pmds,
            socket_dir: cfg.socket_dir.clone(),
            vhost: VhostOptions {
                max_guest_memory: cfg.max_guest_memory,
            },
        };
        for (i, p) in sw.pmds.iter().enumerate() {
            let peers = sw
                .pmds
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, q)| q.tx.clone())
                .collect();
            let _ = p.tx.send(PmdCmd::Peers(peers));
            let wakes = sw
                .pmds
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, q)| q.wake.clone())
                .collect();
            let _ = p.tx.send(PmdCmd::PeerWakes(wakes));
        }
        sw.barrier()?;
        Ok(sw)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the change lock (see the module doc). Taken before the state lock, never after.
    fn changing(&self) -> MutexGuard<'_, ()> {
        self.change.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, pmd: usize, cmd: PmdCmd) {
        let h = &self.pmds[pmd];
        // The PMD owns the receiver until it exits; a send after that is moot.
        let _ = h.tx.send(cmd);
        // Wake it if it sleeps; a nonblocking eventfd write of 1 cannot fail in practice.
        let _ = h.wake.write(1);
    }

    fn broadcast(&self, mut make: impl FnMut() -> PmdCmd) {
        for i in 0..self.pmds.len() {
            self.send(i, make());
        }
    }

    /// Sends every PMD a request carrying a reply channel, without waiting.
    fn request<T>(&self, request: impl Fn(Sender<T>) -> PmdCmd) -> Replies<T> {
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
    fn ask<T>(&self, request: impl Fn(Sender<T>) -> PmdCmd) -> Result<Vec<T>, SwitchError> {
        self.request(request).wait()
    }

    /// Waits until every PMD has applied everything sent before.
    pub fn barrier(&self) -> Result<(), SwitchError> {
        self.request(PmdCmd::Barrier).confirmed()
    }

    /// Creates a port from its config and starts forwarding on it. A vhost-user socket must
    /// be inside the switch's `socket_dir` (see [`PortConfig::validate`]).
    pub fn add_port(&self, cfg: PortConfig) -> Result<PortNo, SwitchError> {
        cfg.validate(&self.socket_dir)?;
        // Held from before the port is opened: a port being deleted releases its socket or
        // interface first.
        let _change = self.changing();
        match cfg.kind {
            PortType::Memory => {
                let (port, peer) =
                    mem::pair(mem::DEFAULT_QUEUE_LEN).map_err(|source| SwitchError::Port {
                        name: cfg.name.clone(),
                        source,
                    })?;
                let name = cfg.name.clone();
                let added = self.attach_changing(cfg, Box::new(port));
                // Unconfirmed, the port is added all the same: so is its test side.
                if matches!(added, Ok(_) | Err(SwitchError::PmdTimeout(_))) {
                    self.lock().peers.insert(name, peer);
                }
                added
            }
            PortType::VhostUser => {
                let port =
                    open_vhost_user(&cfg, self.vhost).map_err(|source| SwitchError::Port {
                        name: cfg.name.clone(),
                        source,
                    })?;
                self.attach_changing(cfg, Box::new(port))
            }
            PortType::Vxlan => self.add_vxlan(cfg),
            PortType::Afxdp | PortType::Tap => {
                let port = open_uplink(&cfg).map_err(|source| SwitchError::Port {
                    name: cfg.name.clone(),
                    source,
                })?;
                self.attach_changing(cfg, port)
            }
        }
    }

    /// Adds a vxlan port: a bridge port without queues whose frames go out of the uplink
    /// encapsulated (the uplink may be added before or after it). The caller holds the
    /// change lock.
    fn add_vxlan(&self, cfg: PortConfig) -> Result<PortNo, SwitchError> {
        let mut st = self.lock();
        if st.port_no(&cfg.name).is_some() {
            return Err(SwitchError::PortExists(cfg.name));
        }
        // `validate` guarantees both are set for this type.
        let (Some(vni), Some(remote)) = (cfg.vni.and_then(flowtable::Vni::new), cfg.remote_ip)
        else {
            return Err(SwitchError::Invalid(crate::config::Problem {
                path: vec![PathSeg::Key("vni".into())],
                message: "a vxlan port needs `vni` and `remote_ip`".into(),
                kind: ProblemKind::Invalid,
            }));
        };
        if let Some(other) = st.ports.iter().find(|p| {
            let c = &p.info.config;
            c.kind == PortType::Vxlan && c.vni == cfg.vni && c.remote_ip == cfg.remote_ip
        }) {
            return Err(SwitchError::Invalid(crate::config::Problem {
                path: vec![PathSeg::Key("vni".into())],
                message: format!(
                    "port {:?} already carries VNI {} to {remote}",
                    other.info.config.name,
                    vni.get()
                ),
                kind: ProblemKind::Conflict,
            }));
        }
        let no = st.free_port_no();
        let vxlan = VxlanPort {
            port: no,
            vni,
            remote,
            local: cfg.local_ip,
        };
        let vlan = PortVlan::from_config(cfg.vlan.as_ref());
        self.broadcast(|| PmdCmd::AddVxlan {
            port: no,
            vlan: vlan.clone(),
            vxlan,
        });
        info!(port = %cfg.name, no = no.0, vni = vni.get(), %remote, "vxlan port added");
        st.ports.push(PortEntry {
            info: PortInfo {
                no,
                config: cfg,
                rxq_pmds: Vec::new(),
            },
            port: None,
        });
        let confirm = self.request(PmdCmd::Barrier);
        drop(st);
        confirm.confirmed()?;
        Ok(no)
    }

    /// Adds an already-open port: its rx queues are spread over the PMDs (each to the PMD
    /// polling the fewest), and every PMD gets a tx queue to it.
    pub fn attach(&self, cfg: PortConfig, port: Box<dyn Port>) -> Result<PortNo, SwitchError> {
        let _change = self.changing();
        self.attach_changing(cfg, port)
    }

    /// [`Switch::attach`], for a caller that holds the change lock.
    fn attach_changing(
        &self,
        cfg: PortConfig,
        mut port: Box<dyn Port>,
    ) -> Result<PortNo, SwitchError> {
        let mut st = self.lock();
        if st.port_no(&cfg.name).is_some() {
            return Err(SwitchError::PortExists(cfg.name));
        }
        if cfg.ip.is_some() {
            if let Some(other) = st.ports.iter().find(|p| p.info.config.ip.is_some()) {
                return Err(SwitchError::Invalid(crate::config::Problem {
                    path: vec![PathSeg::Key("ip".into())],
                    message: format!(
                        "port {:?} is already the underlay (only one port may have an ip)",
                        other.info.config.name
                    ),
                    kind: ProblemKind::Conflict,
                }));
            }
        }
        let port_err = |source| SwitchError::Port {
            name: cfg.name.clone(),
            source,
        };
        // Take every queue before touching the PMDs, so a failure changes nothing.
        let mut rxqs: Vec<Vec<(usize, Box<dyn ports::RxQueue>)>> =
            (0..self.pmds.len()).map(|_| Vec::new()).collect();
        let mut load = st.rxqs_per_pmd.clone();
        let mut rxq_pmds = Vec::new();
        for q in 0..port.n_rxq() {
            let pmd = (0..load.len()).min_by_key(|&i| (load[i], i)).unwrap_or(0);
            load[pmd] += 1;
            rxqs[pmd].push((q, port.take_rxq(q).map_err(port_err)?));
            rxq_pmds.push(pmd);
        }
        let mut txqs = Vec::new();
        for pmd in 0..self.pmds.len() {
            txqs.push(port.txq(pmd).map_err(port_err)?);
        }
        let no = st.free_port_no();
        st.rxqs_per_pmd = load;
        let vlan = PortVlan::from_config(cfg.vlan.as_ref());
        let underlay = underlay_of(&cfg, no);
        for (pmd, (rxqs, txq)) in rxqs.into_iter().zip(txqs).enumerate() {
            self.send(
                pmd,
                PmdCmd::AddPort {
                    port: no,
                    rxqs,
                    txq,
                    vlan: vlan.clone(),
                    underlay,
                },
            );
        }
        info!(port = %cfg.name, no = no.0, kind = port.kind(), "port added");
        st.ports.push(PortEntry {
            info: PortInfo {
                no,
                config: cfg,
                rxq_pmds,
            },
            port: Some(port),
        });
        let confirm = self.request(PmdCmd::Barrier);
        drop(st);
        confirm.confirmed()?;
        Ok(no)
    }

    /// Removes a port. Flows that name it stay; output to it then counts `no_port` drops.
    ///
    /// The port leaves the tables at once (readers no longer see it), but it is closed only
    /// once every PMD has let go of its queues (or the wait timed out), and until then no
    /// other change can start: a port re-created under its name or socket finds it closed.
    pub fn del_port(&self, name: &str) -> Result<(), SwitchError> {
        let _change = self.changing();
        let mut st = self.lock();
        let i = st
            .ports
            .iter()
            .position(|p| p.info.config.name == name)
            .ok_or_else(|| SwitchError::NoSuchPort(name.to_string()))?;
        let entry = st.ports.remove(i);
        for &pmd in &entry.info.rxq_pmds {
            st.rxqs_per_pmd[pmd] -= 1;
        }
        st.peers.remove(name);
        let no = entry.info.no;
        self.broadcast(|| PmdCmd::DelPort(no));
        let confirm = self.request(PmdCmd::Barrier);
        drop(st);
        let confirmed = confirm.confirmed();
        // Close the port only after every PMD let go of its queues.
        drop(entry);
        info!(port = name, "port deleted");
        confirmed
    }

    /// The number of the port named `name`.
    pub fn port_no(&self, name: &str) -> Option<PortNo> {
        self.lock().port_no(name)
    }

    /// All ports, in creation order.
    pub fn ports(&self) -> Vec<PortInfo> {
        self.lock().ports.iter().map(|p| p.info.clone()).collect()
    }

    /// Each port's connection state, in creation order: `Some(true)` while a vhost-user
    /// frontend is attached, `None` for ports with no peer to wait for (memory). Cheap: no
    /// PMD and no queue is involved.
    pub fn port_connections(&self) -> Vec<(PortNo, Option<bool>)> {
        self.lock()
            .ports
            .iter()
            .map(|p| (p.info.no, p.port.as_ref().and_then(|port| port.connected())))
            .collect()
    }

    /// Each port's tenant faults, in creation order: `Some` for ports whose peer is a tenant
    /// (vhost-user), `None` for the others. Cheap like [`Switch::port_connections`].
    pub fn port_faults(&self) -> Vec<(PortNo, Option<ports::GuestFaults>)> {
        self.lock()
            .ports
            .iter()
            .map(|p| {
                (
                    p.info.no,
                    p.port.as_ref().and_then(|port| port.guest_faults()),
                )
            })
            .collect()
    }

    /// The number of installed flows (no PMD is asked).
    pub fn flow_count(&self) -> usize {
        self.lock().flows.len()
    }

    /// The test side of a `memory` port.
    pub fn mem_peer(&self, name: &str) -> Option<MemPeer> {
        self.lock().peers.get(name).cloned()
    }

    /// Installs `flows`, all or nothing: if any is invalid, none is installed and the error
    /// names it (`flow[i]....`). Returns the new ids in order.
    pub fn add_flows(&self, flows: &[FlowConfig]) -> Result<Vec<RuleId>, SwitchError> {
        let _change = self.changing();
        let mut st = self.lock();
        let mut compiled: Vec<CompiledFlow> = Vec::with_capacity(flows.len());
        {
            let resolve = |name: &str| st.port_no(name);
            for (i, f) in flows.iter().enumerate() {
                compiled.push(f.compile(&resolve).map_err(|mut p| {
                    p.path
                        .splice(0..0, [PathSeg::Key("flow".into()), PathSeg::Index(i)]);
                    p
                })?);
            }
        }
        if flows.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids = Vec::with_capacity(flows.len());
        let mut rules = Vec::with_capacity(flows.len());
        for (f, c) in flows.iter().zip(compiled) {
            let id = RuleId(st.next_rule);
            st.next_rule += 1;
            ids.push(id);
            rules.push(Rule {
                id,
                priority: c.priority,
                matches: c.matches,
                actions: c.actions.into(),
            });
            st.flows.insert(id, FlowEntry { config: f.clone() });
        }
        self.broadcast(|| {
            PmdCmd::Rules(
                rules
                    .iter()
                    .map(|r| RuleOp::Insert(Box::new(r.clone())))
                    .collect(),
            )
        });
        let confirm = self.request(PmdCmd::Barrier);
        drop(st);
        confirm.confirmed()?;
        Ok(ids)
    }

    /// Removes one flow.
    pub fn del_flow(&self, id: RuleId) -> Result<(), SwitchError> {
        let _change = self.changing();
        let mut st = self.lock();
        if st.flows.remove(&id).is_none() {
            return Err(SwitchError::NoSuchFlow(id.0));
        }
        self.broadcast(|| PmdCmd::Rules(vec![RuleOp::Remove(id)]));
        let confirm = self.request(PmdCmd::Barrier);
        drop(st);
        confirm.confirmed()
    }

    /// Removes every flow.
    pub fn del_all_flows(&self) -> Result<(), SwitchError> {
        let _change = self.changing();
        let mut st = self.lock();
        let ids: Vec<RuleId> = st.flows.keys().copied().collect();
        st.flows.clear();
        self.broadcast(|| PmdCmd::Rules(ids.iter().map(|&id| RuleOp::Remove(id)).collect()));
        let confirm = self.request(PmdCmd::Barrier);
        drop(st);
        confirm.confirmed()
    }

    /// All flows with their hit counts.
    pub fn flows(&self) -> Result<Vec<FlowInfo>, SwitchError> {
        let reports = self.ask(PmdCmd::Report)?;
        let mut hits: BTreeMap<RuleId, u64> = BTreeMap::new();
        for r in &reports {
            for &(id, h) in &r.rule_hits {
                *hits.entry(id).or_default() += h;
            }
        }
        let st = self.lock();
        Ok(st
            .flows
            .iter()
            .map(|(&id, f)| FlowInfo {
                id,
                config: f.config.clone(),
                hits: hits.get(&id).copied().unwrap_or(0),
            })
            .collect())
    }

    /// Learned MACs, merged over PMDs (the freshest sighting wins).
    pub fn fdb(&self) -> Result<Vec<FdbEntry>, SwitchError> {
        let mut merged: BTreeMap<(L2Domain, MacAddr), FdbEntry> = BTreeMap::new();
        for r in self.ask(PmdCmd::Report)? {
            for (domain, mac, port, age_secs) in r.fdb {
                let e = merged.entry((domain, mac)).or_insert(FdbEntry {
                    domain,
                    mac,
                    port,
                    age_secs,
                });
                if age_secs < e.age_secs {
                    e.port = port;
                    e.age_secs = age_secs;
                }
            }
        }
        Ok(merged.into_values().collect())
    }

    /// Forgets every learned MAC.
    pub fn flush_fdb(&self) -> Result<(), SwitchError> {
        self.broadcast(|| PmdCmd::FlushFdb);
        self.barrier()
    }

    /// Each PMD's last published counters (at most about a millisecond old).
    pub fn stats(&self) -> Vec<PmdSnapshot> {
        self.pmds
            .iter()
            .map(|p| p.mirror.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect()
    }

    /// Stops the PMDs and closes every port.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
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

/// The underlay a port with an `ip` provides: its address, subnet, gateway and MTU, and the
/// MAC the switch uses on it (the interface's own for AF_XDP, where the switch is the
/// interface; otherwise one derived from the address, since the kernel side of a tap or
/// the test side of a memory port has its own).
fn underlay_of(cfg: &PortConfig, no: PortNo) -> Option<Underlay> {
    let (ip, prefix_len) = crate::config::parse_cidr(cfg.ip.as_deref()?).ok()?;
    let interface_mac = match (cfg.kind, cfg.interface.as_deref()) {
        (PortType::Afxdp, Some(ifname)) => interface_mac(ifname),
        _ => None,
    };
    let o = ip.octets();
    Some(Underlay {
        port: no,
        ip,
        prefix_len,
        gateway: cfg.gateway,
        mac: interface_mac.unwrap_or(MacAddr([0x02, 0x76, o[0], o[1], o[2], o[3]])),
        mtu: tunnel::underlay_mtu(cfg),
    })
}

/// A kernel interface's MAC address, from sysfs.
fn interface_mac(ifname: &str) -> Option<MacAddr> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{ifname}/address")).ok()?;
    text.trim().parse().ok()
}

/// Opens a vhost-user port: the switch owns the socket (server, the default) or connects to
/// the VM's (client, retried forever so a restarted switch finds its VMs again).
fn open_vhost_user(cfg: &PortConfig, opts: VhostOptions) -> Result<VhostUserPort, PortError> {
    // `validate` guarantees the socket is set for this type.
    let path = cfg.socket.as_deref().unwrap_or(std::path::Path::new(""));
    let queues = cfg.queues.unwrap_or(1);
    let port = match cfg.mode.unwrap_or(SocketMode::Server) {
        SocketMode::Server => VhostUserPort::server_with(path, queues, opts),
        SocketMode::Client => VhostUserPort::client_with(path, queues, opts),
    };
    port.map_err(PortError::from)
}

/// Control-plane calls for the REST API and persisted state: restoring flows with their ids,
/// deleting flows by match, and tracing a frame. Additive to the calls above.
impl Switch {
    /// Every flow's id and config, in id order, without asking the PMDs.
    pub fn flow_configs(&self) -> Vec<(RuleId, FlowConfig)> {
        self.lock()
            .flows
            .iter()
            .map(|(&id, f)| (id, f.config.clone()))
            .collect()
    }

    /// The id the next added flow gets.
    pub fn next_flow_id(&self) -> u64 {
        self.lock().next_rule
    }

    /// Installs flows with given ids (restoring saved state), all or nothing, and makes the
    /// next new id at least `next_id` (and above every given id). An id in use is refused.
    pub fn restore_flows(
        &self,
        flows: &[(RuleId, FlowConfig)],
        next_id: u64,
    ) -> Result<(), SwitchError> {
        let _change = self.changing();
        let mut st = self.lock();
        let mut rules = Vec::with_capacity(flows.len());
        {
            let resolve = |name: &str| st.port_no(name);
            let mut seen = std::collections::BTreeSet::new();
            for (i, (id, f)) in flows.iter().enumerate() {
                let at = |mut p: Problem| {
                    p.path
                        .splice(0..0, [PathSeg::Key("flow".into()), PathSeg::Index(i)]);
                    p
                };
                if id.0 == 0 || st.flows.contains_key(id) || !seen.insert(*id) {
                    return Err(at(Problem {
                        path: vec![PathSeg::Key("id".into())],
                        message: format!("flow id {} is zero or already in use", id.0),
                        kind: ProblemKind::Conflict,
                    })
                    .into());
                }
                let c = f.compile(&resolve).map_err(at)?;
                rules.push(Rule {
                    id: *id,
                    priority: c.priority,
                    matches: c.matches,
                    actions: c.actions.into(),
                });
            }
        }
        let max = flows.iter().map(|(id, _)| id.0 + 1).max().unwrap_or(0);
        st.next_rule = st.next_rule.max(next_id).max(max);
        if flows.is_empty() {
            return Ok(());
        }
        for (id, f) in flows {
            st.flows.insert(*id, FlowEntry { config: f.clone() });
        }
        self.broadcast(|| {
            PmdCmd::Rules(
                rules
                    .iter()
                    .map(|r| RuleOp::Insert(Box::new(r.clone())))
                    .collect(),
            )
        });
        let confirm = self.request(PmdCmd::Barrier);
        drop(st);
        confirm.confirmed()
    }

    /// Removes every flow whose match equals `matches` (compared compiled, so
    /// `198.18.0.0/24` equals `198.18.0.0/255.255.255.0`) and, when given, whose priority is
    /// `priority`. Returns the removed ids (possibly none). An invalid match is an error
    /// whose path starts at `match`.
    pub fn del_flows_matching(
        &self,
        matches: &BTreeMap<String, MatchValue>,
        priority: Option<u32>,
    ) -> Result<Vec<RuleId>, SwitchError> {
        let _change = self.changing();
        let mut st = self.lock();
        let wanted = {
            let resolve = |name: &str| st.port_no(name);
            let probe = FlowConfig {
                priority: priority.unwrap_or(crate::config::DEFAULT_PRIORITY),
                matches: matches.clone(),
                actions: vec!["drop".into()],
            };
            let c = probe.compile(&resolve)?;
            let ids: Vec<RuleId> = st
                .flows
                .iter()
                .filter(|(_, f)| priority.is_none_or(|p| p == f.config.priority))
                .filter(|(_, f)| {
                    // A flow naming a deleted port no longer compiles: it is not this match.
                    f.config
                        .compile(&resolve)
                        .is_ok_and(|fc| fc.matches == c.matches)
                })
                .map(|(&id, _)| id)
                .collect();
            ids
        };
        if wanted.is_empty() {
            return Ok(wanted);
        }
        for id in &wanted {
            st.flows.remove(id);
        }
        self.broadcast(|| PmdCmd::Rules(wanted.iter().map(|&id| RuleOp::Remove(id)).collect()));
        let confirm = self.request(PmdCmd::Barrier);
        drop(st);
        confirm.confirmed()?;
        Ok(wanted)
    }

    /// What the datapath would do with `frame` arriving on the port named `in_port`, asked
    /// of the PMD polling that port's first rx queue (its cache is the one the frame would
    /// meet). The frame is not forwarded, learned or counted.
    pub fn trace(&self, in_port: &str, frame: Vec<u8>) -> Result<Trace, SwitchError> {
        let (port, pmd) = {
            let st = self.lock();
            let p = st
                .ports
                .iter()
                .find(|p| p.info.config.name == in_port)
                .ok_or_else(|| SwitchError::NoSuchPort(in_port.to_string()))?;
            (p.info.no, p.info.rxq_pmds.first().copied().unwrap_or(0))
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(
            pmd,
            PmdCmd::Trace(
                Box::new(TraceRequest {
                    in_port: port,
                    frame,
                }),
                tx,
            ),
        );
        rx.recv_timeout(PMD_TIMEOUT)
            .map_err(|_| SwitchError::PmdTimeout(pmd))
    }

    /// The name of port number `no`, if it exists.
    pub fn port_name(&self, no: PortNo) -> Option<String> {
        self.lock()
            .ports
            .iter()
            .find(|p| p.info.no == no)
            .map(|p| p.info.config.name.clone())
    }
}

/// Opens an `afxdp` or `tap` port on its kernel interface.
fn open_uplink(cfg: &PortConfig) -> Result<Box<dyn Port>, PortError> {
    // `validate` guarantees the interface is set for these types.
    let interface = cfg.interface.as_deref().unwrap_or("");
    Ok(match cfg.kind {
        PortType::Tap => Box::new(TapPort::open(interface)?),
        _ => Box::new(AfXdpPort::open(interface, cfg.queues.unwrap_or(1))?),
    })
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::{Duration, Instant};

    use crossbeam_channel::{bounded, Receiver, Sender};
    use ports::mem::{self, MemPort};
    use ports::{Packet, Port, PortError, RxQueue, TxQueue};

    use super::*;
    use crate::config::{MatchValue, PortConfig};

    /// Closed: a PMD polling a [`GatedRxq`] blocks inside `rx_burst` until it opens.
    #[derive(Clone, Default)]
    struct Gate(Arc<(Mutex<bool>, Condvar)>);

    impl Gate {
        fn set_closed(&self, closed: bool) {
            *self.0 .0.lock().unwrap() = closed;
            self.0 .1.notify_all();
        }
    }

    /// An rx queue that blocks its PMD while the gate is closed (a PMD slow to confirm),
    /// saying so on `blocked` when it starts to.
    struct GatedRxq {
        inner: Box<dyn RxQueue>,
        gate: Gate,
        blocked: Sender<()>,
    }

    impl RxQueue for GatedRxq {
        fn rx_burst(&mut self, pkts: &mut [Packet]) -> usize {
            let (closed, cv) = &*self.gate.0;
            let mut c = closed.lock().unwrap();
            if *c {
                let _ = self.blocked.try_send(());
            }
            while *c {
                c = cv.wait(c).unwrap();
            }
            drop(c);
            self.inner.rx_burst(pkts)
        }
    }

    struct GatedPort {
        inner: MemPort,
        gate: Gate,
        blocked: Sender<()>,
    }

    impl Port for GatedPort {
        fn kind(&self) -> &'static str {
            "memory"
        }
        fn n_rxq(&self) -> usize {
            self.inner.n_rxq()
        }
        fn take_rxq(&mut self, q: usize) -> Result<Box<dyn RxQueue>, PortError> {
            Ok(Box::new(GatedRxq {
                inner: self.inner.take_rxq(q)?,
                gate: self.gate.clone(),
                blocked: self.blocked.clone(),
            }))
        }
        fn txq(&mut self, pmd: usize) -> Result<Box<dyn TxQueue>, PortError> {
            self.inner.txq(pmd)
        }
    }

    fn mem_port(name: &str) -> PortConfig {
        let text = format!("name = {name:?}\ntype = \"memory\"\n");
        toml::from_str(&text).unwrap()
    }

    fn flow(in_port: &str, out: &str) -> FlowConfig {
        FlowConfig {
            priority: 100,
            matches: [("in_port".to_string(), MatchValue::Text(in_port.into()))].into(),
            actions: vec![format!("output:{out}")],
        }
    }

    /// One PMD that busy-polls (never sleeps), so it reaches the gated queue at once.
    fn one_pmd() -> Switch {
        let cfg = SwitchConfig {
            pmd_cores: vec![crate::config::online_cpus().last().copied().unwrap_or(0)],
            pmd_sleep_after_us: 0,
            ..SwitchConfig::default()
        };
        Switch::new(&cfg).unwrap()
    }

    /// Runs `f` on a thread and gives its answer if it comes within `within`.
    fn answers_within<T: Send + 'static>(
        within: Duration,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = bounded(1);
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(within).ok()
    }

    /// Every read the API and the metrics make while `sw` waits for a change: none may
    /// wait with it.
    fn read_all(sw: &Switch) -> Vec<String> {
        let _ = (sw.stats(), sw.port_connections(), sw.flow_count());
        let _ = (sw.flow_configs(), sw.next_flow_id(), sw.port_no("a"));
        let _ = (sw.mem_peer("a"), sw.port_name(PortNo(1)));
        sw.ports().into_iter().map(|p| p.config.name).collect()
    }

    /// While the only PMD cannot confirm a change (it is blocked polling a queue), each
    /// mutating call waits for it, but the reads do not wait with it: they answer at once
    /// and already show the change. Once the PMD runs again every call is confirmed.
    #[test]
    fn reads_do_not_wait_for_a_change_the_pmds_have_not_confirmed() {
        let sw = Arc::new(one_pmd());
        let gate = Gate::default();
        let (blocked_tx, blocked): (Sender<()>, Receiver<()>) = bounded(1);
        let (port, _peer) = mem::pair(mem::DEFAULT_QUEUE_LEN).unwrap();
        sw.attach(
            mem_port("a"),
            Box::new(GatedPort {
                inner: port,
                gate: gate.clone(),
                blocked: blocked_tx,
            }),
        )
        .unwrap();
        sw.add_port(mem_port("b")).unwrap();
        sw.add_port(mem_port("c")).unwrap();

        type Change = fn(&Switch) -> Result<(), SwitchError>;
        let changes: [(&str, Change, &[&str]); 4] = [
            (
                "add_flows",
                |sw| sw.add_flows(&[flow("a", "b")]).map(drop),
                &["a", "b", "c"],
            ),
            ("del_flow", |sw| sw.del_flow(RuleId(1)), &["a", "b", "c"]),
            (
                "add_port",
                |sw| sw.add_port(mem_port("d")).map(drop),
                &["a", "b", "c", "d"],
            ),
            ("del_port", |sw| sw.del_port("c"), &["a", "b", "d"]),
        ];
        for (what, change, ports_during) in changes {
            gate.set_closed(true);
            blocked
                .recv_timeout(Duration::from_secs(5))
                .expect("the PMD polls the gated queue");
            let started = Instant::now();
            let changing = {
                let sw = sw.clone();
                std::thread::spawn(move || change(&sw))
            };
            // Let the change send its commands and start waiting.
            std::thread::sleep(Duration::from_millis(100));
            assert!(!changing.is_finished(), "{what} returned unconfirmed");
            let read = {
                let sw = sw.clone();
                answers_within(Duration::from_secs(1), move || read_all(&sw))
            };
            gate.set_closed(false);
            let read = read.unwrap_or_else(|| panic!("reads waited for {what}"));
            assert_eq!(read, ports_during, "{what}: the tables show the change");
            changing
                .join()
                .unwrap()
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(started.elapsed() < PMD_TIMEOUT, "{what} was confirmed");
        }
        assert_eq!(sw.flow_count(), 0);
    }
}
