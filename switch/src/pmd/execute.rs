//! Run a frame's actions: outputs go to per-port tx batches, `normal` learns and forwards
//! within the frame's VLAN, VLAN push/pop edit the frame in place.
//!
//! The last output of a frame moves its buffer into the tx batch (a pointer swap); earlier
//! outputs (and all but the last port of a flood) copy it.

use std::borrow::Cow;
use std::time::Instant;

use flowtable::fdb::{L2Domain, Learned};
use flowtable::{Action, FlowKey, MacAddr, MacTable, PortNo, Vni};
use ports::Packet;

use super::normal::{self, Forward, Ports};
use super::offload::{self, Finish};
use crate::datapath::tx::TxCtx;
use crate::datapath::vlan::{self, PortVlan};
use crate::stats::DropReason;
use crate::tunnel::encap;
use crate::tunnel::Tunnel;

/// The action list of frames no rule matched.
pub(crate) const NORMAL: &[Action] = &[Action::Normal];

/// Everything an action may touch besides the frame itself.
pub(crate) struct Out<'a> {
    /// The tx batches outputs go to, the counters, the burst's time.
    pub cx: TxCtx<'a>,
    /// The bridge ports, in flood order.
    pub flood: &'a [PortNo],
    /// Each port's VLAN mode, by port number.
    pub vlans: &'a [PortVlan],
    /// The vxlan ports and the underlay (outputs to a vxlan port encapsulate).
    pub tunnel: &'a mut Tunnel,
    /// The MAC table `normal` learns into and looks up.
    pub fdb: &'a mut MacTable,
    /// What `normal` learned, for the peer PMDs.
    pub announce: &'a mut Vec<(L2Domain, MacAddr, PortNo)>,
    /// Where software segmentation builds each segment.
    pub segment: &'a mut Packet,
    /// Some frame of the burst carries an offload request (checked at ingress): without
    /// one, outputs skip the per-frame question.
    pub offloads: bool,
}

impl Out<'_> {
    /// The ports `normal` chooses among.
    #[inline]
    fn ports(&self) -> Ports<'_> {
        Ports {
            flood: self.flood,
            vlans: self.vlans,
            tunnel: self.tunnel,
        }
    }

    /// The burst's time.
    #[inline]
    fn now(&self) -> Instant {
        self.cx.now
    }
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
            out.cx.stats.drop(DropReason::Rule);
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
            Action::PushVlan { .. } | Action::PopVlan | Action::SetTunnel(_) => {
                if !edit(pkt, &mut key, &mut tun, action) {
                    out.cx.stats.drop(DropReason::Malformed);
                    return;
                }
            }
        }
        if mv {
            // The buffer now belongs to a tx batch; nothing after the last output can be
            // observed.
            return;
        }
    }
}

/// Applies one of the actions that edit a frame (`push_vlan`, `pop_vlan`, `set_tunnel`) to
/// the frame and its key, the key copied only then; other actions change nothing. False if
/// the frame is too short for the edit (the datapath drops it as `malformed`). `trace` runs
/// the actions before `normal` through this too, so it asks `normal` about the key the
/// datapath would.
#[inline]
pub(super) fn edit(
    pkt: &mut Packet,
    key: &mut Cow<'_, FlowKey>,
    tun: &mut Option<Vni>,
    action: &Action,
) -> bool {
    match *action {
        Action::PushVlan { vid, pcp } => {
            // The logical tag (access port, native VLAN) goes into the bytes first, so the new
            // tag stacks on it as the key says.
            vlan::materialize(pkt, key) && vlan::push(pkt, key.to_mut(), vid, pcp)
        }
        Action::PopVlan => {
            if !vlan::materialize(pkt, key) {
                return false;
            }
            vlan::pop(pkt, key.to_mut());
            true
        }
        Action::SetTunnel(vni) => {
            key.to_mut().set_tun_id(vni.get());
            *tun = Some(vni);
            true
        }
        Action::Output(_) | Action::Normal => true,
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
        out.cx.stats.drop(DropReason::InPort);
        return;
    }
    if out.offloads && pkt.offload().requests() {
        if !out.cx.tx.takes(port, pkt.offload()) {
            emit_finished(out, in_port, port, key, tun, pkt, mv);
            return;
        }
        out.cx.stats.port_mut(port).tx_offload += 1;
    }
    let port_vlan = out.vlans.get(port.index()).unwrap_or(&PortVlan::Untagged);
    if out.tunnel.vxlan_port(port).is_some() {
        emit_vxlan(out, port, port_vlan, key, tun, pkt, mv);
        return;
    }
    let Some(mut slot) = out.cx.tx.slot(port, out.cx.stats) else {
        out.cx.stats.drop(DropReason::NoPort);
        return;
    };
    let buf = slot.packet();
    if mv {
        std::mem::swap(buf, pkt);
    } else {
        buf.copy_packet(pkt);
    }
    if !vlan::egress(buf, key, port_vlan) {
        // Not committed: the slot is reused.
        out.cx.stats.drop(DropReason::Malformed);
        return;
    }
    slot.commit();
}

/// [`emit`] of a frame whose offload request `port` does not take (an uplink, a guest that
/// did not negotiate it, a vxlan port): its checksum filled, then sent as usual; or cut into
/// segments, each sent as a frame of its own (the frame itself is left for later outputs).
#[inline(never)]
fn emit_finished(
    out: &mut Out<'_>,
    in_port: PortNo,
    port: PortNo,
    key: &FlowKey,
    tun: Option<Vni>,
    pkt: &mut Packet,
    mv: bool,
) {
    match offload::finish(pkt) {
        Finish::Filled => {
            out.cx.stats.port_mut(port).tx_csum_filled += 1;
            emit(out, in_port, port, key, tun, pkt, mv);
        }
        Finish::Segment(gso) => {
            // Each segment is moved into a batch; the buffer it swaps for becomes the next
            // segment's. `Packet::empty` holds the place without allocating.
            let mut seg = std::mem::replace(out.segment, Packet::empty());
            for index in 0..gso.segment_count() {
                if !offload::build_segment(pkt.data(), &gso, index, &mut seg) {
                    out.cx.stats.drop(DropReason::BadOffload);
                    break;
                }
                out.cx.stats.port_mut(port).tx_segments += 1;
                emit(out, in_port, port, key, tun, &mut seg, true);
            }
            *out.segment = seg;
        }
        Finish::Unfit => out.cx.stats.drop(DropReason::BadOffload),
    }
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
    encap::output(out.tunnel, port, port_vlan, key, tun, pkt, mv, &mut out.cx);
}

/// `normal`: learn the source, then send the frame where [`Ports::forward`] says (the
/// learned port, a flood of the frame's VLAN, or nowhere: split horizon, no destination).
fn normal(out: &mut Out<'_>, in_port: PortNo, key: &FlowKey, pkt: &mut Packet, mv: bool) {
    let src = key.eth_src();
    if !src.is_multicast() {
        let dom = normal::domain(key);
        match out.fdb.learn(dom, src, in_port, out.now()) {
            Learned::Quiet | Learned::Full => {}
            Learned::New | Learned::Moved { .. } | Learned::Refresh => {
                out.announce.push((dom, src, in_port))
            }
        }
    }
    let (frame, forward) = out.ports().forward(out.fdb, key, in_port, out.now());
    match forward {
        Forward::Learned(port) => emit(out, in_port, port, key, None, pkt, mv),
        Forward::Drop { reason, .. } => out.cx.stats.drop(reason),
        Forward::Flood { copies } => {
            let flood = out.flood;
            let mut left = copies;
            for &port in flood {
                // Asked again per port (the outputs need the tunnel mutably in between).
                if !out.ports().floods_to(&frame, port) {
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
