//! Ports: adding one from its config (opened by `open.rs`, checked against the others by
//! the config's cross-port rules, its rx queues placed by `rxq.rs`), attaching an open one,
//! deleting one, and reading the port table.

use flowtable::PortNo;
use ports::mem::MemPeer;
use ports::Port;
use tracing::info;

use super::open::{self, Opened};
use super::underlay::underlay_of;
use super::{PortEntry, State, Switch, SwitchError};
use crate::config::{check_port_fits, PathSeg, PortConfig, Problem, ProblemKind};
use crate::pmd::vlan::PortVlan;
use crate::pmd::PmdCmd;
use crate::tunnel::VxlanPort;

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

impl State {
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

    /// Checks `cfg` against the ports there with the rules a config file obeys
    /// ([`check_port_fits`]).
    fn check_fits(&self, cfg: &PortConfig) -> Result<(), SwitchError> {
        Ok(check_port_fits(
            cfg,
            self.ports.iter().map(|p| &p.info.config),
        )?)
    }
}

impl Switch {
    /// Creates a port from its config and starts forwarding on it. A vhost-user socket must
    /// be inside the switch's `socket_dir` (see [`PortConfig::validate`]).
    pub fn add_port(&self, cfg: PortConfig) -> Result<PortNo, SwitchError> {
        cfg.validate(&self.socket_dir)?;
        // Held from before the port is opened: a port being deleted releases its socket or
        // interface first.
        let _change = self.changing();
        let opened = open::open(&cfg, self.vhost).map_err(|source| SwitchError::Port {
            name: cfg.name.clone(),
            source,
        })?;
        match opened {
            Opened::Virtual => self.add_vxlan(cfg),
            Opened::Port(port, None) => self.attach_changing(cfg, port),
            Opened::Port(port, Some(peer)) => {
                let name = cfg.name.clone();
                let added = self.attach_changing(cfg, port);
                // Unconfirmed, the port is added all the same: so is its test side.
                if matches!(added, Ok(_) | Err(SwitchError::PmdTimeout(_))) {
                    self.lock().peers.insert(name, peer);
                }
                added
            }
        }
    }

    /// Adds a vxlan port: a bridge port without queues whose frames go out of the uplink
    /// encapsulated (the uplink may be added before or after it). The caller holds the
    /// change lock.
    fn add_vxlan(&self, cfg: PortConfig) -> Result<PortNo, SwitchError> {
        let mut st = self.lock();
        st.check_fits(&cfg)?;
        // `validate` guarantees both are set for this type.
        let (Some(vni), Some(remote)) = (cfg.vni.and_then(flowtable::Vni::new), cfg.remote_ip)
        else {
            return Err(SwitchError::Invalid(Problem {
                path: vec![PathSeg::Key("vni".into())],
                message: "a vxlan port needs `vni` and `remote_ip`".into(),
                kind: ProblemKind::Invalid,
            }));
        };
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
        self.confirm(st)?;
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
        st.check_fits(&cfg)?;
        let port_err = |source| SwitchError::Port {
            name: cfg.name.clone(),
            source,
        };
        // Take every queue before touching the PMDs, so a failure changes nothing.
        let (rxq_pmds, load) = st.rxq_load.place(port.n_rxq());
        let mut rxqs: Vec<Vec<(usize, Box<dyn ports::RxQueue>)>> =
            (0..self.pmds.len()).map(|_| Vec::new()).collect();
        for (q, &pmd) in rxq_pmds.iter().enumerate() {
            rxqs[pmd].push((q, port.take_rxq(q).map_err(port_err)?));
        }
        let mut txqs = Vec::new();
        for pmd in 0..self.pmds.len() {
            txqs.push(port.txq(pmd).map_err(port_err)?);
        }
        let no = st.free_port_no();
        st.rxq_load = load;
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
        self.confirm(st)?;
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
        st.rxq_load.release(&entry.info.rxq_pmds);
        st.peers.remove(name);
        let no = entry.info.no;
        self.broadcast(|| PmdCmd::DelPort(no));
        let confirmed = self.confirm(st);
        // Close the port only after every PMD let go of its queues.
        drop(entry);
        info!(port = name, "port deleted");
        confirmed
    }

    /// The number of the port named `name`.
    pub fn port_no(&self, name: &str) -> Option<PortNo> {
        self.lock().port_no(name)
    }

    /// The name of port number `no`, if it exists.
    pub fn port_name(&self, no: PortNo) -> Option<String> {
        self.lock()
            .ports
            .iter()
            .find(|p| p.info.no == no)
            .map(|p| p.info.config.name.clone())
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

    /// The test side of a `memory` port.
    pub fn mem_peer(&self, name: &str) -> Option<MemPeer> {
        self.lock().peers.get(name).cloned()
    }
}
