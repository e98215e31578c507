//! Flow key extraction from a raw Ethernet frame. (Stub: the wire helper fills this in.)

use super::FlowKey;
use crate::types::{PortNo, Vni};

/// What the outer headers of a VXLAN frame (UDP to port 4789) say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VxlanOuter {
    /// The VNI from the VXLAN header.
    pub vni: Vni,
    /// Outer IPv4 source.
    pub src: u32,
    /// Outer IPv4 destination.
    pub dst: u32,
    /// Outer UDP source port (the sender's flow entropy).
    pub src_port: u16,
    /// Offset of the inner Ethernet frame within the outer frame.
    pub inner_offset: usize,
}

/// Extracts the key of `frame`, which arrived on `in_port`. Never panics; a truncated or
/// malformed frame yields the key of what parsed.
pub fn extract(frame: &[u8], in_port: PortNo) -> FlowKey {
    let _ = frame;
    let mut k = FlowKey::ZERO;
    k.set_in_port(in_port);
    k
}

/// Recognises an untagged Ethernet/IPv4/UDP frame to port 4789 with a valid VXLAN header
/// (I flag set) and returns its outer fields. Never panics.
pub fn extract_vxlan(frame: &[u8]) -> Option<VxlanOuter> {
    let _ = frame;
    None
}
