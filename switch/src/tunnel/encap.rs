//! Output to a vxlan port: VLAN egress, MTU check, outer Ethernet/IPv4/UDP/VXLAN written
//! into the buffer's headroom, next-hop resolution, then the uplink's tx batch (or the
//! resolution queue).

use std::net::Ipv4Addr;

use flowtable::wire::{
    ethernet, ipv4, udp, vxlan, EtherType, EthernetPacket, EthernetRepr, IpProtocol, Ipv4Packet,
    Ipv4Repr, UdpPacket, UdpRepr, VxlanPacket, VxlanRepr,
};
use flowtable::{FlowKey, MacAddr, PortNo, Vni};
use ports::Packet;
use tracing::warn;

use super::neigh::Lookup;
use super::{Tunnel, ENCAP_LEN};
use crate::datapath::tx::TxCtx;
use crate::datapath::vlan::{self, PortVlan};
use crate::stats::DropReason;

/// TTL of the outer IPv4 header.
const OUTER_TTL: u8 = 64;

/// The outer UDP source port for a flow: from its key's hash, in 49152..=65535 (RFC 7348
/// section 5), so one flow keeps one port and different flows spread over underlay paths.
#[inline]
pub(crate) fn source_port(key: &FlowKey) -> u16 {
    0xc000 | (key.hash() >> 48) as u16
}

/// Sends `pkt` (whose logical VLAN is `key`'s) out of vxlan port `port`, with `vni` if a
/// rule set one. Moves the buffer when `mv`, else copies it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn output(
    t: &mut Tunnel,
    port: PortNo,
    port_vlan: &PortVlan,
    key: &FlowKey,
    vni: Option<Vni>,
    pkt: &mut Packet,
    mv: bool,
    cx: &mut TxCtx<'_>,
) {
    let (Some(vx), Some(u)) = (t.vxlan_port(port).copied(), t.underlay) else {
        t.stats.no_underlay_drops += 1;
        cx.stats.drop(DropReason::Tunnel);
        return;
    };
    if mv {
        std::mem::swap(pkt, &mut t.scratch);
    } else if !t.scratch.copy_from(pkt.data()) {
        cx.stats.drop(DropReason::Malformed);
        return;
    }
    if !vlan::egress(&mut t.scratch, key, port_vlan) {
        cx.stats.drop(DropReason::Malformed);
        return;
    }
    let inner_len = t.scratch.len();
    // The underlay MTU bounds the outer IPv4 packet: IPv4, UDP and VXLAN headers plus the
    // inner frame (the outer Ethernet header is not part of it).
    if inner_len + ENCAP_LEN - ethernet::HEADER_LEN > usize::from(u.mtu) {
        t.stats.mtu_drops += 1;
        cx.stats.drop(DropReason::Tunnel);
        if let Some(suppressed) = t.mtu_log.allow(cx.now) {
            warn!(
                port = %port,
                inner_len,
                mtu = u.mtu,
                suppressed,
                "inner frame too large for the underlay MTU; dropped (not fragmented)"
            );
        }
        return;
    }
    let Some(next_hop) = u.next_hop(vx.remote) else {
        t.stats.no_route_drops += 1;
        cx.stats.drop(DropReason::Tunnel);
        return;
    };
    let ident = t.ident;
    t.ident = t.ident.wrapping_add(1);
    let Some(hdr) = t.scratch.insert(0, ENCAP_LEN) else {
        cx.stats.drop(DropReason::Malformed);
        return;
    };
    write_headers(
        hdr,
        &Outer {
            mac: u.mac,
            src: vx.local.unwrap_or(u.ip),
            dst: vx.remote,
            src_port: source_port(key),
            vni: vni.unwrap_or(vx.vni),
            inner_len,
            ident,
        },
    );
    t.stats.encap_packets += 1;
    if let Some(pc) = cx.stats.ports.get_mut(port.index()) {
        pc.tx_packets += 1;
        pc.tx_bytes += inner_len as u64;
    }
    match t.neigh.lookup(u32::from(next_hop), cx.now) {
        Lookup::Mac { mac, probe } => {
            set_dst(&mut t.scratch, mac);
            if !cx.enqueue(u.port, &mut t.scratch) {
                cx.stats.drop(DropReason::NoPort);
            }
            if probe {
                t.send_request(&u, next_hop, cx);
            }
        }
        Lookup::Pending { request, evicted } => {
            t.stats.neigh_misses += 1;
            if evicted {
                t.stats.neigh_evictions += 1;
            }
            if t.neigh.hold(u32::from(next_hop), &mut t.scratch) {
                t.stats.neigh_queued += 1;
            } else {
                t.stats.neigh_queue_overflow += 1;
                cx.stats.drop(DropReason::Tunnel);
            }
            if request {
                t.send_request(&u, next_hop, cx);
            }
        }
        Lookup::Full => {
            t.stats.neigh_misses += 1;
            t.stats.neigh_queue_overflow += 1;
            cx.stats.drop(DropReason::Tunnel);
        }
    }
}

/// The values of one outer header stack.
pub(crate) struct Outer {
    pub mac: MacAddr,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub src_port: u16,
    pub vni: Vni,
    pub inner_len: usize,
    pub ident: u16,
}

/// Writes Ethernet (destination left zero until resolved), IPv4 (with checksum), UDP
/// (checksum 0, as RFC 7348 allows over IPv4) and VXLAN into the first [`ENCAP_LEN`] bytes.
pub(crate) fn write_headers(hdr: &mut [u8], o: &Outer) {
    let Some(hdr) = hdr.get_mut(..ENCAP_LEN) else {
        return;
    };
    let (eth, rest) = hdr.split_at_mut(ethernet::HEADER_LEN);
    let (ip, rest) = rest.split_at_mut(ipv4::HEADER_LEN);
    let (udp_hdr, vx) = rest.split_at_mut(udp::HEADER_LEN);
    EthernetRepr {
        src_addr: o.mac,
        dst_addr: MacAddr([0; 6]),
        ethertype: EtherType::Ipv4,
    }
    .emit(&mut EthernetPacket::new_unchecked(eth));
    Ipv4Repr {
        src_addr: o.src,
        dst_addr: o.dst,
        protocol: IpProtocol::Udp,
        payload_len: udp::HEADER_LEN + vxlan::HEADER_LEN + o.inner_len,
        ttl: OUTER_TTL,
        tos: 0,
        ident: o.ident,
        dont_frag: true,
    }
    .emit(&mut Ipv4Packet::new_unchecked(ip));
    UdpRepr {
        src_port: o.src_port,
        dst_port: vxlan::UDP_PORT,
        payload_len: vxlan::HEADER_LEN + o.inner_len,
    }
    .emit(&mut UdpPacket::new_unchecked(udp_hdr));
    VxlanRepr { vni: o.vni }.emit(&mut VxlanPacket::new_unchecked(vx));
}

/// Sets the outer Ethernet destination.
#[inline]
fn set_dst(pkt: &mut Packet, mac: MacAddr) {
    if let Some(d) = pkt.data_mut().get_mut(..6) {
        d.copy_from_slice(&mac.0);
    }
}
