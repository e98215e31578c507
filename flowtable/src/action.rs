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
