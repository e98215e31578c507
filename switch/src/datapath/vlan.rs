//! Port VLAN modes, resolved once when a port is added into a [`PortVlan`] the PMD keeps per
//! port number.
//!
//! The model (as in Open vSwitch):
//! - **access** (`tag`): frames arrive untagged and belong to VLAN `tag`; tagged frames are
//!   dropped (`vlan` drop reason); frames leave untagged.
//! - **trunk** (`allowed`, `native`): tagged frames of an allowed VLAN (or of the native
//!   one) are taken as they are; `allowed` omitted means every VLAN 1..=4094.
//!   Untagged frames belong to `native` (dropped without one); frames of `native` leave
//!   untagged, the others tagged.
//! - **no `vlan`** ([`PortVlan::Untagged`]): the port is in the untagged domain only.
//!   Untagged frames are taken; tagged frames are dropped (`vlan` drop reason), so a guest
//!   cannot inject into a tenant VLAN; `normal` sends it only untagged-domain frames. A
//!   frame an explicit rule tagged (`push_vlan` then `output:`) leaves as the rule made it.
//!   (Unlike OVS's default, which trunks every VLAN: that is `{ mode = "trunk" }` without
//!   `allowed` here.)
//!
//! The VLAN a frame belongs to is written into its key at ingress (`vlan_tci` with
//! `VLAN_PRESENT`), whatever its bytes carry: rules and `normal` see the logical VLAN. The
//! bytes are edited only on egress, where the output port's mode wants something else than
//! the frame carries ([`egress`]): the invariant is that a frame's bytes carry an outer tag
//! exactly when they did on the wire it came from, or an action put one there.

use flowtable::key::{VLAN_PCP_MASK, VLAN_PRESENT, VLAN_VID_MASK};
use flowtable::wire::{
    self, vlan::TAG_LEN, vlan::TAG_OFFSET, EtherType, EthernetPacket, VlanPacket,
};
use flowtable::{FlowKey, VlanId};
use ports::Packet;

use crate::config::{VlanConfig, VlanMode};
use crate::stats::{DropReason, PmdStats};

/// Words in a 4096-bit VLAN set.
const SET_WORDS: usize = 4096 / 64;

/// A port's VLAN mode as the PMD uses it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) enum PortVlan {
    /// No `vlan` setting: the untagged domain only; tagged frames are not taken.
    #[default]
    Untagged,
    /// Access port of one VLAN.
    Access(u16),
    /// Trunk: the allowed VLANs as a bit set, and the native VLAN.
    Trunk {
        /// Bit `v` set: VLAN `v` is carried.
        allowed: Box<[u64; SET_WORDS]>,
        /// The VLAN untagged frames belong to.
        native: Option<u16>,
    },
}

impl PortVlan {
    /// Resolves a validated config.
    pub fn from_config(cfg: Option<&VlanConfig>) -> PortVlan {
        let Some(cfg) = cfg else {
            return PortVlan::Untagged;
        };
        match cfg.mode {
            VlanMode::Access => PortVlan::Access(cfg.tag.unwrap_or(0) & VLAN_VID_MASK),
            VlanMode::Trunk => {
                let mut allowed = Box::new([0u64; SET_WORDS]);
                let mut add = |v: u16| {
                    let v = usize::from(v & VLAN_VID_MASK);
                    allowed[v / 64] |= 1 << (v % 64);
                };
                match &cfg.allowed {
                    Some(list) => list.iter().copied().for_each(&mut add),
                    // No list: every VLAN.
                    None => (1..=4094).for_each(&mut add),
                }
                // The native VLAN is carried too, listed or not.
                cfg.native.into_iter().for_each(add);
                PortVlan::Trunk {
                    allowed,
                    native: cfg.native.map(|n| n & VLAN_VID_MASK),
                }
            }
        }
    }

    /// Puts the frame's logical VLAN into `key`. False when the port does not take the
    /// frame (a tagged frame on an access port or a port without `vlan`, a VLAN the trunk
    /// does not allow, an untagged frame on a trunk without a native VLAN).
    #[inline]
    pub fn ingress(&self, key: &mut FlowKey) -> bool {
        match self {
            PortVlan::Untagged => key.vlan_vid().is_none(),
            PortVlan::Access(tag) => {
                if key.vlan_vid().is_some() {
                    return false;
                }
                key.set_vlan_tci(tag | VLAN_PRESENT);
                true
            }
            PortVlan::Trunk { allowed, native } => match key.vlan_vid() {
                Some(v) => in_set(allowed, v),
                None => match native {
                    Some(n) => {
                        key.set_vlan_tci(n | VLAN_PRESENT);
                        true
                    }
                    None => false,
                },
            },
        }
    }

    /// Whether `normal` may send a frame of VLAN `vid` (`None`: untagged) to this port.
    #[inline]
    pub fn carries(&self, vid: Option<u16>) -> bool {
        match (self, vid) {
            (PortVlan::Untagged, None) => true,
            (PortVlan::Access(tag), Some(v)) => *tag == v,
            (PortVlan::Trunk { allowed, .. }, Some(v)) => in_set(allowed, v),
            // Configured ports never take untagged-domain frames: those are of no VLAN.
            (_, None) => false,
            // A port without `vlan` takes no VLAN.
            (PortVlan::Untagged, Some(_)) => false,
        }
    }

    /// Whether a frame of VLAN `vid` leaves this port with a tag.
    #[inline]
    fn tagged_on_egress(&self, vid: u16) -> bool {
        match self {
            // Only a rule sends a VLAN's frame here (`normal` never does): as it says.
            PortVlan::Untagged => true,
            PortVlan::Access(tag) => *tag != vid,
            PortVlan::Trunk { native, .. } => *native != Some(vid),
        }
    }
}

/// Applies `port`'s mode to a burst from it: frames it does not take are counted (`vlan`)
/// and the rest, with their keys, moved to the front. Returns how many are left.
pub(crate) fn ingress_burst(
    port: &PortVlan,
    burst: &mut [Packet],
    keys: &mut [FlowKey],
    stats: &mut PmdStats,
) -> usize {
    let n = burst.len().min(keys.len());
    // The common case, a port without `vlan` receiving untagged frames: nothing to do.
    if matches!(port, PortVlan::Untagged) && keys[..n].iter().all(|k| k.vlan_vid().is_none()) {
        return n;
    }
    let mut w = 0;
    for i in 0..n {
        let mut k = keys[i];
        if port.ingress(&mut k) {
            keys[w] = k;
            burst.swap(w, i);
            w += 1;
        } else {
            stats.drop(DropReason::Vlan);
        }
    }
    w
}

#[inline]
fn in_set(set: &[u64; SET_WORDS], v: u16) -> bool {
    let v = usize::from(v & VLAN_VID_MASK);
    set[v / 64] & (1 << (v % 64)) != 0
}

/// True when the frame's bytes carry an outer 802.1Q or 802.1ad tag.
#[inline]
pub(crate) fn wire_tagged(frame: &[u8]) -> bool {
    wire::vlan::is_tagged(frame)
}

/// Writes the key's logical outer tag into the bytes if they do not carry it yet (a frame
/// from an access port or a trunk's native VLAN). False if the frame is too short.
pub(crate) fn materialize(pkt: &mut Packet, key: &FlowKey) -> bool {
    if key.vlan_vid().is_none() || wire_tagged(pkt.data()) {
        return true;
    }
    push_tag(pkt, key.vlan_tci())
}

/// Makes `pkt`'s bytes what `port` wants for a frame whose logical VLAN is the key's: pops
/// the tag on an access port or the trunk's native VLAN, pushes it where the frame arrived
/// untagged and leaves tagged. False if the frame is too short to edit.
#[inline(always)]
pub(crate) fn egress(pkt: &mut Packet, key: &FlowKey, port: &PortVlan) -> bool {
    let Some(vid) = key.vlan_vid() else {
        return true;
    };
    let want = port.tagged_on_egress(vid);
    let has = wire_tagged(pkt.data());
    if want && !has {
        push_tag(pkt, key.vlan_tci())
    } else if !want && has {
        strip_tag(pkt)
    } else {
        true
    }
}

/// The `push_vlan` action: stacks an 802.1Q tag of `vid` and `pcp` on the frame, and makes
/// it the key's outer VLAN (the old one becomes the inner). False if the frame has no
/// Ethernet header.
pub(crate) fn push(pkt: &mut Packet, key: &mut FlowKey, vid: VlanId, pcp: u8) -> bool {
    let tci = (u16::from(pcp & 7) << 13) | vid.get();
    if !push_tag(pkt, tci) {
        return false;
    }
    key.set_vlan_inner_tci(key.vlan_tci());
    key.set_vlan_tci(tci & (VLAN_PCP_MASK | VLAN_VID_MASK) | VLAN_PRESENT);
    true
}

/// The `pop_vlan` action: removes the outer 802.1Q/802.1ad tag, if the frame carries one,
/// and makes the inner VLAN the key's outer one.
pub(crate) fn pop(pkt: &mut Packet, key: &mut FlowKey) {
    if wire_tagged(pkt.data()) && strip_tag(pkt) {
        key.set_vlan_tci(key.vlan_inner_tci());
        key.set_vlan_inner_tci(0);
    }
}

/// Inserts an 802.1Q tag with `tci`'s priority and VLAN id after the MAC addresses. False
/// if the frame has no Ethernet header (or no room).
fn push_tag(pkt: &mut Packet, tci: u16) -> bool {
    if pkt.len() < wire::ethernet::HEADER_LEN || pkt.insert(TAG_OFFSET, TAG_LEN).is_none() {
        return false;
    }
    let frame = pkt.data_mut();
    EthernetPacket::new_unchecked(&mut *frame).set_ethertype(EtherType::Vlan);
    let tag = &mut frame[wire::ethernet::HEADER_LEN..];
    VlanPacket::new_unchecked(tag).set_tci(tci & (VLAN_PCP_MASK | VLAN_VID_MASK));
    true
}

/// Removes the outer tag, which the caller saw (see [`wire_tagged`]).
#[inline]
fn strip_tag(pkt: &mut Packet) -> bool {
    pkt.remove(TAG_OFFSET, TAG_LEN)
}

#[cfg(test)]
mod test {
    use super::*;
    use flowtable::key::extract;
    use flowtable::PortNo;

    fn trunk(allowed: &[u16], native: Option<u16>) -> PortVlan {
        PortVlan::from_config(Some(&VlanConfig {
            mode: VlanMode::Trunk,
            tag: None,
            allowed: Some(allowed.to_vec()),
            native,
        }))
    }

    fn frame(tag: Option<u16>) -> Packet {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        if let Some(v) = tag {
            f.extend_from_slice(&[0x81, 0x00, (v >> 8) as u8, v as u8]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&[0u8; 46]);
        let mut p = Packet::new();
        p.copy_from(&f);
        p
    }

    #[test]
    fn access_takes_untagged_only() {
        let a = PortVlan::Access(10);
        let mut k = extract(frame(None).data(), PortNo(1));
        assert!(a.ingress(&mut k));
        assert_eq!(k.vlan_vid(), Some(10));
        let mut k = extract(frame(Some(10)).data(), PortNo(1));
        assert!(!a.ingress(&mut k));
        assert!(a.carries(Some(10)) && !a.carries(Some(11)) && !a.carries(None));
    }

    #[test]
    fn trunk_native_and_allowed() {
        let t = trunk(&[10, 20], Some(20));
        let mut k = extract(frame(None).data(), PortNo(1));
        assert!(t.ingress(&mut k));
        assert_eq!(k.vlan_vid(), Some(20));
        let mut k = extract(frame(Some(10)).data(), PortNo(1));
        assert!(t.ingress(&mut k));
        assert_eq!(k.vlan_vid(), Some(10));
        let mut k = extract(frame(Some(30)).data(), PortNo(1));
        assert!(!t.ingress(&mut k));
        let no_native = trunk(&[10], None);
        let mut k = extract(frame(None).data(), PortNo(1));
        assert!(!no_native.ingress(&mut k));
        assert!(t.carries(Some(4094 & 20)) && !t.carries(Some(30)));
    }

    #[test]
    fn no_vlan_is_the_untagged_domain_only() {
        let u = PortVlan::from_config(None);
        assert_eq!(u, PortVlan::Untagged);
        let mut k = extract(frame(None).data(), PortNo(1));
        assert!(u.ingress(&mut k));
        assert_eq!(k.vlan_vid(), None);
        for tag in [0, 1, 10, 4094] {
            let mut k = extract(frame(Some(tag)).data(), PortNo(1));
            assert!(!u.ingress(&mut k), "tagged {tag} taken");
            assert!(!u.carries(Some(tag)));
        }
        assert!(u.carries(None));
    }

    #[test]
    fn trunk_without_allowed_carries_every_vlan() {
        let all = PortVlan::from_config(Some(&VlanConfig {
            mode: VlanMode::Trunk,
            tag: None,
            allowed: None,
            native: None,
        }));
        for v in [1, 10, 2000, 4094] {
            let mut k = extract(frame(Some(v)).data(), PortNo(1));
            assert!(all.ingress(&mut k));
            assert_eq!(k.vlan_vid(), Some(v));
            assert!(all.carries(Some(v)));
        }
        assert!(!all.carries(None), "no native: not the untagged domain");
        let mut k = extract(frame(None).data(), PortNo(1));
        assert!(!all.ingress(&mut k));
    }

    #[test]
    fn egress_pushes_and_pops() {
        // Untagged from an access port of VLAN 10, out of a trunk: tag pushed.
        let mut p = frame(None);
        let mut k = extract(p.data(), PortNo(1));
        PortVlan::Access(10).ingress(&mut k);
        assert!(egress(&mut p, &k, &trunk(&[10], None)));
        assert_eq!(p.data()[12..16], [0x81, 0x00, 0x00, 10]);
        // Back out of an access port of VLAN 10: popped.
        assert!(egress(&mut p, &k, &PortVlan::Access(10)));
        assert_eq!(p.data()[..], frame(None).data()[..]);
        // The trunk's native VLAN leaves untagged.
        assert!(egress(&mut p, &k, &trunk(&[10], Some(10))));
        assert_eq!(p.data()[..], frame(None).data()[..]);
        // Tagged (by a rule), out of an unconfigured port: untouched.
        let mut p = frame(Some(10));
        let k = extract(p.data(), PortNo(1));
        assert!(egress(&mut p, &k, &PortVlan::Untagged));
        assert_eq!(p.data()[..], frame(Some(10)).data()[..]);
        // materialize writes the logical tag once.
        let mut p = frame(None);
        let mut k = extract(p.data(), PortNo(1));
        PortVlan::Access(7).ingress(&mut k);
        assert!(materialize(&mut p, &k));
        assert!(materialize(&mut p, &k));
        assert_eq!(p.data()[12..16], [0x81, 0x00, 0x00, 7]);
        assert_eq!(p.len(), frame(None).len() + 4);
    }
}
