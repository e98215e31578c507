//! Run a frame's actions: outputs go to per-port tx batches, `normal` learns and forwards
//! within the frame's VLAN, VLAN push/pop edit the frame in place.
//!
//! The last output of a frame moves its buffer into the tx batch (a pointer swap); earlier
//! outputs (and all but the last port of a flood) copy it.

use std::borrow::Cow;
use std::time::Instant;

use flowtable::fdb::{L2Domain, Learned};
use flowtable::key::{VLAN_PCP_MASK, VLAN_PRESENT, VLAN_VID_MASK};
use flowtable::{Action, FlowKey, MacAddr, MacTable, PortNo, VlanId, Vni};
use ports::Packet;

use super::normal::{self, Forward, Frame, Ports};
use super::tx::TxPort;
use super::vlan::{self, PortVlan};
use crate::stats::{DropReason, PmdStats};
use crate::tunnel::encap;
use crate::tunnel::{Tunnel, TxCtx};

/// The action list of frames no rule matched.
pub(crate) const NORMAL: &[Action] = &[Action::Normal];

/// Everything an action may touch besides the frame itself.
pub(crate) struct Out<'a> {
    pub txs: &'a mut [Option<TxPort>],
    pub dirty: &'a mut Vec<PortNo>,
    pub flood: &'a [PortNo],
    pub vlans: &'a [PortVlan],
    pub tunnel: &'a mut Tunnel,
    pub fdb: &'a mut MacTable,
    pub announce: &'a mut Vec<(L2Domain, MacAddr, PortNo)>,
    pub stats: &'a mut PmdStats,
    pub now: Instant,
}

/// Applies `actions` to `pkt` (whose key is `key`) received on `in_port`.
pub(crate) fn execute(
    pkt: &mut Packet,
    key: &FlowKey,
    in_port: PortNo,
    actions: &[Action],
    out: &mut Out<'_>,
) {
    match actions {
        [] => {
            out.stats.drop(DropReason::Rule);
            return;
        }
        // The common list (port-to-port rules): no key copy, no search for the last output.
        [Action::Output(port)] => {
            emit(out, in_port, *port, key, None, pkt, true);
            return;
        }
        _ => {}
    }
    let last_out = actions
        .iter()
        .rposition(|a| matches!(a, Action::Output(_) | Action::Normal));
    // Copied only by the actions that change it (VLAN push/pop, set_tunnel): most frames
    // just output.
    let mut key = Cow::Borrowed(key);
    // The VNI a `set_tunnel` chose for later outputs to vxlan ports.
    let mut tun: Option<Vni> = None;
    for (i, action) in actions.iter().enumerate() {
        let mv = Some(i) == last_out;
        match *action {
            Action::Output(port) => {
                emit(out, in_port, port, &key, tun, pkt, mv);
            }
            Action::Normal => normal(out, in_port, &key, pkt, mv),
            Action::PushVlan { vid, pcp } => {
                // The logical tag (access port, native VLAN) goes into the bytes first, so
                // the new tag stacks on it as the key says.
                if !vlan::materialize(pkt, &key) || !push_vlan(pkt, key.to_mut(), vid, pcp) {
                    out.stats.drop(DropReason::Malformed);
                    return;
                }
            }
            Action::PopVlan => {
                if !vlan::materialize(pkt, &key) {
                    out.stats.drop(DropReason::Malformed);
                    return;
                }
                pop_vlan(pkt, key.to_mut())
            }
            Action::SetTunnel(vni) => {
                key.to_mut().set_tun_id(vni.get());
                tun = Some(vni);
            }
        }
        if mv {
            // The buffer now belongs to a tx batch; nothing after the last output can be
            // observed.
            return;
        }
    }
}

/// Appends `pkt` to `port`'s tx batch: moves it when `mv`, copies it otherwise. The bytes
/// then get the tag (or lose it) as `port`'s VLAN mode wants for the key's VLAN; a vxlan
/// port encapsulates towards the uplink instead.
#[inline(always)]
fn emit(
    out: &mut Out<'_>,
    in_port: PortNo,
    port: PortNo,
    key: &FlowKey,
    tun: Option<Vni>,
    pkt: &mut Packet,
    mv: bool,
) {
    if port == in_port {
        out.stats.drop(DropReason::InPort);
        return;
    }
    let port_vlan = out.vlans.get(port.index()).unwrap_or(&PortVlan::Untagged);
    if out.tunnel.vxlan_port(port).is_some() {
        emit_vxlan(out, port, port_vlan, key, tun, pkt, mv);
        return;
    }
    let Some(Some(tx)) = out.txs.get_mut(port.index()) else {
        out.stats.drop(DropReason::NoPort);
        return;
    };
    if !tx.is_pending() {
        out.dirty.push(port);
    }
    let slot = tx.slot(out.stats);
    if mv {
        std::mem::swap(slot, pkt);
    } else {
        slot.copy_from(pkt.data());
    }
    if !vlan::egress(slot, key, port_vlan) {
        // Not committed: the slot is reused; a dirty port with an empty batch flushes nothing.
        out.stats.drop(DropReason::Malformed);
        return;
    }
    tx.commit();
}

/// [`emit`] to a vxlan port: encapsulated towards the uplink (kept out of line, so the plain
/// output stays small where it is inlined).
#[inline(never)]
fn emit_vxlan(
    out: &mut Out<'_>,
    port: PortNo,
    port_vlan: &PortVlan,
    key: &FlowKey,
    tun: Option<Vni>,
    pkt: &mut Packet,
    mv: bool,
) {
    let mut cx = TxCtx {
        txs: out.txs,
        dirty: out.dirty,
        stats: out.stats,
        now: out.now,
    };
    encap::output(out.tunnel, port, port_vlan, key, tun, pkt, mv, &mut cx);
}

/// `normal`: learn the source, then send the frame where [`Ports::decide`] says (the learned
/// port, a flood of the frame's VLAN, or nowhere: split horizon, no destination).
fn normal(out: &mut Out<'_>, in_port: PortNo, key: &FlowKey, pkt: &mut Packet, mv: bool) {
    let src = key.eth_src();
    if !src.is_multicast() {
        let dom = normal::domain(key);
        match out.fdb.learn(dom, src, in_port, out.now) {
            Learned::Quiet | Learned::Full => {}
            Learned::New | Learned::Moved { .. } | Learned::Refresh => {
                out.announce.push((dom, src, in_port))
            }
        }
    }
    let (flood, vlans) = (out.flood, out.vlans);
    let frame = Frame::new(key, in_port, out.tunnel);
    let learned = normal::learned_port(out.fdb, key, out.now);
    let ports = Ports {
        flood,
        vlans,
        tunnel: out.tunnel,
    };
    match ports.decide(&frame, learned) {
        Forward::Learned(port) => emit(out, in_port, port, key, None, pkt, mv),
        Forward::Drop { reason, .. } => out.stats.drop(reason),
        Forward::Flood { copies } => {
            let mut left = copies;
            for &port in flood {
                // Asked again per port (the outputs need the tunnel mutably in between).
                let ports = Ports {
                    flood,
                    vlans,
                    tunnel: out.tunnel,
                };
                if !ports.floods_to(&frame, port) {
                    continue;
                }
                left -= 1;
                emit(out, in_port, port, key, None, pkt, mv && left == 0);
                if left == 0 {
                    break;
                }
            }
        }
    }
}

/// Inserts an 802.1Q tag after the MAC addresses. False if the frame has no Ethernet header.
fn push_vlan(pkt: &mut Packet, key: &mut FlowKey, vid: VlanId, pcp: u8) -> bool {
    if pkt.len() < 14 {
        return false;
    }
    let tci = (u16::from(pcp & 7) << 13) | vid.get();
    let Some(tag) = pkt.insert(12, 4) else {
        return false;
    };
    tag.copy_from_slice(&[0x81, 0x00, (tci >> 8) as u8, tci as u8]);
    key.set_vlan_inner_tci(key.vlan_tci());
    key.set_vlan_tci(tci & (VLAN_PCP_MASK | VLAN_VID_MASK) | VLAN_PRESENT);
    true
}

/// Removes the outer 802.1Q/802.1ad tag, if there is one.
fn pop_vlan(pkt: &mut Packet, key: &mut FlowKey) {
    let d = pkt.data();
    if d.len() >= 18
        && matches!(u16::from_be_bytes([d[12], d[13]]), 0x8100 | 0x88a8)
        && pkt.remove(12, 4)
    {
        key.set_vlan_tci(key.vlan_inner_tci());
        key.set_vlan_inner_tci(0);
    }
}
