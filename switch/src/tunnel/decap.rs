//! What arrives on the underlay: ARP is answered (for our address) or learned from; VXLAN
//! to our address is decapsulated and enters the pipeline from its vxlan port; everything
//! else is dropped and counted. Frames are from the wire: any of them may be truncated or
//! lie in a length field, and none of that may panic.

use std::net::Ipv4Addr;

use flowtable::key::{extract, extract_vxlan};
use flowtable::wire::{self, ArpOperation, EtherType, IpProtocol};
use flowtable::FlowKey;
use ports::Packet;

use super::{arp, Tunnel, Underlay};
use crate::datapath::tx::TxCtx;
use crate::datapath::vlan::PortVlan;
use crate::stats::DropReason;

/// Handles a burst received on the underlay port. Decapsulated frames are moved to the front
/// of `burst`, with their keys (in-port: their vxlan port; `tun_*` set; logical VLAN applied)
/// at the front of `keys`. Returns how many there are.
pub(crate) fn underlay_rx(
    t: &mut Tunnel,
    burst: &mut [Packet],
    keys: &mut [FlowKey],
    vlans: &[PortVlan],
    cx: &mut TxCtx<'_>,
) -> usize {
    let Some(u) = t.underlay else {
        return 0;
    };
    let n = burst.len().min(keys.len());
    let mut w = 0;
    for i in 0..n {
        let k = keys[i];
        if k.eth_type() == u16::from(EtherType::Arp) && k.vlan_tci() == 0 {
            arp_rx(t, &u, &mut burst[i], cx);
            continue;
        }
        if k.eth_type() == u16::from(EtherType::Ipv4)
            && k.ip_proto() == u8::from(IpProtocol::Udp)
            && k.tp_dst() == wire::vxlan::UDP_PORT
        {
            if let Some(inner) = decap(t, &u, &mut burst[i], vlans, cx) {
                keys[w] = inner;
                burst.swap(w, i);
                w += 1;
            }
            continue;
        }
        t.stats.underlay_other += 1;
        cx.stats.drop(DropReason::Tunnel);
    }
    w
}

/// Strips the outer headers of a VXLAN frame for us; returns the inner frame's key.
fn decap(
    t: &mut Tunnel,
    u: &Underlay,
    pkt: &mut Packet,
    vlans: &[PortVlan],
    cx: &mut TxCtx<'_>,
) -> Option<FlowKey> {
    let Some(outer) = extract_vxlan(pkt.data()) else {
        t.stats.decap_malformed += 1;
        cx.stats.drop(DropReason::Tunnel);
        return None;
    };
    let (src, dst) = (Ipv4Addr::from(outer.src), Ipv4Addr::from(outer.dst));
    let vx = match t.port_for(outer.vni, src) {
        Some(vx) if dst == u.ip || Some(dst) == vx.local => *vx,
        found => {
            if found.is_none() && dst == u.ip {
                t.stats.decap_unknown_vni += 1;
            } else {
                t.stats.decap_not_local += 1;
            }
            cx.stats.drop(DropReason::Tunnel);
            return None;
        }
    };
    if !pkt.remove(0, outer.inner_offset) {
        t.stats.decap_malformed += 1;
        cx.stats.drop(DropReason::Tunnel);
        return None;
    }
    pkt.truncate(outer.inner_len);
    let mut key = extract(pkt.data(), vx.port);
    key.set_tun_id(outer.vni.get());
    key.set_tun_src(outer.src);
    key.set_tun_dst(outer.dst);
    if !vlans
        .get(vx.port.index())
        .is_none_or(|v| v.ingress(&mut key))
    {
        cx.stats.drop(DropReason::Vlan);
        return None;
    }
    t.stats.decap_packets += 1;
    if let Some(pc) = cx.stats.ports.get_mut(vx.port.index()) {
        pc.rx_packets += 1;
        pc.rx_bytes += pkt.len() as u64;
    }
    Some(key)
}

/// Answers a request for our address (turning the frame into the reply) and learns
/// neighbours from what concerns us. Consumes the frame.
fn arp_rx(t: &mut Tunnel, u: &Underlay, pkt: &mut Packet, cx: &mut TxCtx<'_>) {
    let Some(a) = arp::parse(pkt.data()) else {
        t.stats.underlay_other += 1;
        cx.stats.drop(DropReason::Tunnel);
        return;
    };
    let spa = a.source_protocol_addr;
    let sha = a.source_hardware_addr;
    let for_us = t.is_local(a.target_protocol_addr);
    let usable = u.on_link(spa) && !spa.is_unspecified() && !sha.is_multicast();
    match a.operation {
        ArpOperation::Request if for_us => {
            if usable {
                // The asker is about to talk to us; we will answer it.
                t.learn(spa, sha, true, cx);
            }
            arp::reply(pkt, u.mac, a.target_protocol_addr, &a);
            if cx.enqueue(u.port, pkt) {
                t.stats.arp_replies_sent += 1;
            }
        }
        ArpOperation::Reply => {
            t.stats.arp_replies_received += 1;
            if usable && (for_us || t.neigh.knows(u32::from(spa))) {
                t.learn(spa, sha, true, cx);
            }
        }
        _ => {
            // Someone else's request (or a gratuitous one): refresh a neighbour we know.
            if usable && t.neigh.knows(u32::from(spa)) {
                t.learn(spa, sha, true, cx);
            }
            t.stats.underlay_other += 1;
            cx.stats.drop(DropReason::Tunnel);
        }
    }
}
