//! Actions a rule applies. (Stub: the match helper fills this in.)

use crate::types::{PortNo, VlanId, Vni};

/// One action. A rule's action list runs in order; an empty list drops the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Send the frame (as it is now) out of a port.
    Output(PortNo),
    /// L2 learning switch within the frame's VLAN/VNI.
    Normal,
    /// Push an 802.1Q tag.
    PushVlan {
        /// The tag's VLAN id.
        vid: VlanId,
        /// The tag's priority code point.
        pcp: u8,
    },
    /// Pop the outer 802.1Q tag, if any.
    PopVlan,
    /// Set the tunnel id used by a later output to a VXLAN port.
    SetTunnel(Vni),
}

/// Why an action list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ActionError(pub String);

/// Parses an action list (stub).
pub fn parse_actions<S: AsRef<str>>(
    list: &[S],
    resolve: &dyn Fn(&str) -> Option<PortNo>,
) -> Result<Vec<Action>, ActionError> {
    let mut out = Vec::new();
    for s in list {
        let s = s.as_ref();
        if s == "drop" {
            continue;
        }
        if s == "normal" {
            out.push(Action::Normal);
        } else if let Some(p) = s.strip_prefix("output:") {
            out.push(Action::Output(resolve(p).ok_or_else(|| ActionError(format!("no port named {p:?}")))?));
        } else {
            return Err(ActionError(format!("unknown action {s:?}")));
        }
    }
    let _ = (VlanId::new(0), Vni::new(0));
    Ok(out)
}
