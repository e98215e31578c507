//! The rules between ports: what a port may not share with the ports already there. One
//! function, [`check_port_fits`], decides them for a config file ([`Config::validate`], each
//! port against the ones before it) and for a port added live (`Switch::add_port`, against
//! the switch's ports), so a file and the API cannot disagree on what is allowed.
//!
//! The rules, in the order they are checked:
//! 1. no two ports have one name;
//! 2. at most one port has an `ip` (it is the underlay VXLAN runs over);
//! 3. no two vxlan ports carry one VNI to one `remote_ip`.
//!
//! Each caller reports a clash in its own terms (a config file at the port's line, the API
//! as a conflict), so [`PortClash`] carries the facts, not a message.
//!
//! [`Config::validate`]: super::Config::validate

use std::net::Ipv4Addr;

use super::port::{PortConfig, PortType};
use super::problem::{key, problem, problem_of, Problem, ProblemKind};

/// How a port clashes with one already there (see the module doc for the rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortClash {
    /// Another port has this port's name.
    Name {
        /// The name.
        name: String,
    },
    /// This port has an `ip`, and another port is already the underlay.
    Underlay {
        /// The port that is the underlay.
        other: String,
    },
    /// This vxlan port's VNI and remote VTEP are another vxlan port's.
    Tunnel {
        /// The port that carries them.
        other: String,
        /// The VNI.
        vni: u32,
        /// The remote VTEP.
        remote: Ipv4Addr,
    },
}

/// Checks `port` against `others` (the ports already there, or before it in a file): the
/// first rule it breaks, against the first port it breaks it with, is the error. `port`
/// must already be valid on its own ([`PortConfig::validate`]).
pub fn check_port_fits<'a, I>(port: &PortConfig, others: I) -> Result<(), PortClash>
where
    I: IntoIterator<Item = &'a PortConfig>,
    I::IntoIter: Clone,
{
    let others = others.into_iter();
    if others.clone().any(|o| o.name == port.name) {
        return Err(PortClash::Name {
            name: port.name.clone(),
        });
    }
    if port.ip.is_some() {
        if let Some(u) = others.clone().find(|o| o.ip.is_some()) {
            return Err(PortClash::Underlay {
                other: u.name.clone(),
            });
        }
    }
    if let (PortType::Vxlan, Some(vni), Some(remote)) = (port.kind, port.vni, port.remote_ip) {
        let mut carriers = others.filter(|o| o.kind == PortType::Vxlan);
        if let Some(o) = carriers.find(|o| o.vni == Some(vni) && o.remote_ip == Some(remote)) {
            return Err(PortClash::Tunnel {
                other: o.name.clone(),
                vni,
                remote,
            });
        }
    }
    Ok(())
}

impl PortClash {
    /// The clash as a config file reports it, with a path relative to the port.
    pub fn problem(&self) -> Problem {
        match self {
            PortClash::Name { name } => problem(
                vec![key("name")],
                format!("{name:?} is already the name of another port"),
            ),
            PortClash::Underlay { other } => problem_of(
                ProblemKind::Conflict,
                vec![key("ip")],
                format!("port {other:?} is already the underlay (only one port may have an ip)"),
            ),
            PortClash::Tunnel { other, .. } => problem_of(
                ProblemKind::Conflict,
                vec![key("vni")],
                format!("port {other:?} already carries this VNI to this remote_ip"),
            ),
        }
    }
}
