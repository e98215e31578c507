//! The configuration model: one serde shape for the config file, the REST API and the state
//! directory. [`Config::from_toml`] parses and validates a whole file and reports the first
//! problem with its line, column and field path; nothing is applied until all of it is valid.
//!
//! One file per section: [`switch`](SwitchConfig), [`port`](PortConfig) and its
//! [`vlan`](VlanConfig), [`flow`](FlowConfig); each type checks itself. The rules between
//! ports (unique names, one underlay, one vxlan port per VNI and remote) are one function,
//! [`check_port_fits`], which [`Config::validate`] and the live control calls both use.
//! [`Problem`] says what is wrong and where; the file format (TOML, line and column) is in
//! `file.rs`.

mod cross_port;
mod file;
mod flow;
mod port;
mod problem;
mod switch;
mod vlan;

use flowtable::PortNo;
use serde::{Deserialize, Serialize};

pub use cross_port::{check_port_fits, PortClash};
pub use file::ConfigError;
pub use flow::{CompiledFlow, FlowConfig, MatchValue, DEFAULT_PRIORITY, MAX_PRIORITY};
pub use port::{parse_cidr, PortConfig, PortType, SocketMode};
pub use problem::{render_path, PathSeg, Problem, ProblemKind};
pub use switch::{online_cpus, SwitchConfig, DEFAULT_SOCKET_DIR};
pub use vlan::{VlanConfig, VlanMode};

use problem::key;

/// A whole switch configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Datapath settings.
    #[serde(default)]
    pub switch: SwitchConfig,
    /// Ports, in the order they are created (and numbered, from 1).
    #[serde(default, rename = "port", skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortConfig>,
    /// Flow rules.
    #[serde(default, rename = "flow", skip_serializing_if = "Vec::is_empty")]
    pub flows: Vec<FlowConfig>,
}

impl Config {
    /// Checks everything: switch settings, each port, unique port names, and that every flow
    /// compiles against the configured ports. The first problem wins.
    pub fn validate(&self) -> Result<(), Problem> {
        self.switch
            .validate()
            .map_err(|p| p.within([key("switch")]))?;
        for (i, port) in self.ports.iter().enumerate() {
            let at = |p: Problem| p.within([key("port"), PathSeg::Index(i)]);
            port.validate(&self.switch.socket_dir).map_err(at)?;
            check_port_fits(port, &self.ports[..i]).map_err(|c| at(c.problem()))?;
        }
        let resolve = |name: &str| {
            self.ports
                .iter()
                .position(|p| p.name == name)
                .map(|i| PortNo(i as u32 + 1))
        };
        for (i, flow) in self.flows.iter().enumerate() {
            flow.compile(&resolve)
                .map_err(|p| p.within([key("flow"), PathSeg::Index(i)]))?;
        }
        Ok(())
    }
}
