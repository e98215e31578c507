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
//!
//! One file per resource, each adding its calls to [`Switch`]:
//! - `pmds.rs`: the PMD threads, and sending them commands and barriers;
//! - `ports.rs`: adding, attaching and deleting ports, and reading the port table;
//!   `open.rs` opens a port from its config, `rxq.rs` places its rx queues on PMDs,
//!   `underlay.rs` says what the PMDs need of the underlay port;
//! - `flows.rs`: installing, restoring and removing rules, and their hit counts;
//! - `fdb.rs`: the learned MACs;
//! - `trace.rs`: what the datapath would do with a frame;
//! - `error.rs`: [`SwitchError`].

mod error;
mod fdb;
mod flows;
mod open;
mod pmds;
mod ports;
mod rxq;
#[cfg(test)]
mod tests;
mod trace;
mod underlay;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use ::ports::mem::MemPeer;
use ::ports::vhost::VhostOptions;
use ::ports::Port;
use flowtable::{PortNo, RuleId};

use crate::config::{Config, FlowConfig, SwitchConfig};

pub use self::ports::PortInfo;
pub use crate::pmd::trace::{EmcProbe, NormalOutcome, Trace, TraceRequest};
pub use error::SwitchError;
pub use fdb::FdbEntry;
pub use flows::FlowInfo;

use pmds::{PmdHandle, PMD_TIMEOUT};
use rxq::RxqLoad;

/// A port in the table: what readers see, and the open port.
struct PortEntry {
    info: PortInfo,
    /// The open port; `None` for virtual ports (vxlan).
    port: Option<Box<dyn Port>>,
}

/// A flow in the table.
struct FlowEntry {
    config: FlowConfig,
}

/// The control plane's tables, behind the state lock.
#[derive(Default)]
struct State {
    ports: Vec<PortEntry>,
    flows: BTreeMap<RuleId, FlowEntry>,
    next_rule: u64,
    peers: BTreeMap<String, MemPeer>,
    rxq_load: RxqLoad,
}

impl State {
    /// The number of the port named `name`.
    fn port_no(&self, name: &str) -> Option<PortNo> {
        self.ports
            .iter()
            .find(|p| p.info.config.name == name)
            .map(|p| p.info.no)
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
        let pmds = pmds::spawn(cfg)?;
        let sw = Switch {
            change: Mutex::new(()),
            state: Mutex::new(State {
                next_rule: 1,
                rxq_load: RxqLoad::new(pmds.len()),
                ..Default::default()
            }),
            pmds,
            socket_dir: cfg.socket_dir.clone(),
            vhost: VhostOptions {
                max_guest_memory: cfg.max_guest_memory,
                packed_ring: cfg.packed_ring,
                offloads: cfg.offloads,
            },
        };
        sw.barrier()?;
        Ok(sw)
    }

    /// Takes the state lock (see the module doc).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the change lock (see the module doc). Taken before the state lock, never after.
    fn changing(&self) -> MutexGuard<'_, ()> {
        self.change.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the PMDs and closes every port.
    pub fn shutdown(mut self) {
        self.stop();
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.stop();
    }
}
