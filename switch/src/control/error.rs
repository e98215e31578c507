//! [`SwitchError`]: why a control call failed, and how a clash between ports is reported
//! to a live caller.

use ports::PortError;

use super::PMD_TIMEOUT;
use crate::config::{PathSeg, PortClash, Problem, ProblemKind};

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

/// A port added live that clashes with one the switch has: a taken name is
/// [`SwitchError::PortExists`], the others conflicts whose message names what clashes.
impl From<PortClash> for SwitchError {
    fn from(clash: PortClash) -> SwitchError {
        match clash {
            PortClash::Name { name } => SwitchError::PortExists(name),
            PortClash::Underlay { .. } => SwitchError::Invalid(clash.problem()),
            PortClash::Tunnel { other, vni, remote } => SwitchError::Invalid(Problem {
                path: vec![PathSeg::Key("vni".into())],
                message: format!("port {other:?} already carries VNI {vni} to {remote}"),
                kind: ProblemKind::Conflict,
            }),
        }
    }
}
