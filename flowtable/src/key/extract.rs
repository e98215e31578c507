//! Flow key extraction from a raw Ethernet frame: the per-packet hot path.
//!
//! Straight-line code over the frame: each layer takes a fixed-size array off the front of
//! what is left (`split_first_chunk`), which is its one bounds check; the fields are then read
//! at constant offsets from that array, so the compiler emits no further checks and there is
//! no panic path. Offsets are those of the `wire` views (`crate::wire::*::field`); the
//! tests cross-check against those views and against `etherparse`.
//!
//! "What parsed" rule: each layer's fields are written only once its header is complete and
//! sane; when a layer fails, the key holds the layers before it and nothing of that layer.
//! - Ethernet needs 14 bytes, else only `in_port` is set.
//! - A VLAN tag needs its 4 bytes after the TPID, else `eth_type` is the TPID. At most two
//!   tags are parsed (TPID 0x8100 or 0x88a8); a third leaves `eth_type` = its TPID.
//! - IPv4 needs version 4, IHL >= 5 and the IHL inside the frame. The L4 region ends at
//!   min(total length, frame); no L4 if total length < IHL or for a later fragment.
//! - IPv6 needs version 6 and 40 bytes. Up to 8 extension headers (hop-by-hop, routing,
//!   destination options, fragment) are skipped inside min(payload length, frame). When one
//!   does not fit, or the 8 are used up, `ip_proto` is the next header where the walk stopped
//!   and there are no L4 fields. A fragment header with a non-zero offset ends the walk (a
//!   later fragment: `ip_proto` is its next header, no L4 fields).
//! - L4 needs its whole fixed header in the region: TCP 20 bytes and a data offset of 5..=
//!   region words, UDP 8, SCTP 12, ICMP/ICMPv6 8; otherwise ports stay 0.

use super::{FlowKey, ETH_TYPE_NONE, FRAG_ANY, FRAG_LATER, VLAN_PRESENT};
use crate::types::{PortNo, Vni};
use crate::wire::{arp, vxlan, EtherType, IpProtocol};

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
    /// Length of the inner Ethernet frame: what the outer IPv4 total length leaves after the
    /// IPv4, UDP and VXLAN headers. Bytes past it (Ethernet padding, trailers) are not
    /// part of the inner frame.
    pub inner_len: usize,
}

/// How many IPv6 extension headers the walk skips at most.
const IPV6_MAX_EXT_HEADERS: usize = 8;

/// The `N` bytes of `b` at `off`, or zeros if they are not all there. Every caller passes a
/// fixed-size array and a constant offset inside it, so this folds to a plain load; the
/// fallback only keeps the source free of panic paths.
#[inline(always)]
fn at<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    match b.get(off..).and_then(|s| s.first_chunk::<N>()) {
        Some(a) => *a,
        None => [0; N],
    }
}

#[inline(always)]
fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes(at(b, off))
}

#[inline(always)]
fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes(at(b, off))
}

/// The MAC address at `b[off..off + 6]` as the low 48 bits of a `u64`. Loads 8 bytes (one
/// `bswap`), so `b[off + 6..off + 8]` must exist too: every caller has a field after it.
#[inline(always)]
fn mac(b: &[u8], off: usize) -> u64 {
    u64::from_be_bytes(at(b, off)) >> 16
}

/// Extracts the key of `frame`, which arrived on `in_port`. Never panics; a truncated or
/// malformed frame yields the key of what parsed (see the module doc for the exact rules).
#[inline]
pub fn extract(frame: &[u8], in_port: PortNo) -> FlowKey {
    let mut k = FlowKey::ZERO;
    extract_into(frame, in_port, &mut k);
    k
}

/// [`extract`] into `k` (all of it overwritten): the PMD fills its burst's key array in
/// place instead of copying each returned 104-byte key into it.
pub fn extract_into(frame: &[u8], in_port: PortNo, k: &mut FlowKey) {
    *k = FlowKey::ZERO;
    let Some((eth_type, rest)) = l2(frame, in_port, k) else {
        return;
    };
    match eth_type {
        EtherType::IPV4 => ipv4(k, rest),
        EtherType::IPV6 => ipv6(k, rest),
        EtherType::ARP => arp(k, rest),
        _ => {}
    }
}

/// The Ethernet and VLAN part of [`extract_into`] only: `in_port`, the MAC addresses, up to
/// two VLAN tags and `eth_type`; every L3 and L4 field is 0. For frames whose handling needs
/// nothing more (a port whose rule outputs every frame to plain ports: the VLAN edits on the
/// way are all that looks at the frame).
pub fn extract_l2_into(frame: &[u8], in_port: PortNo, k: &mut FlowKey) {
    // Built in a local and stored once (4 instructions a frame fewer than filling `k`).
    let mut key = FlowKey::ZERO;
    let _ = l2(frame, in_port, &mut key);
    *k = key;
}

/// Fills the L2 fields of `k` (all zero before); returns the EtherType and what follows the
/// L2 headers when there is an L3 header to parse.
#[inline(always)]
fn l2<'a>(frame: &'a [u8], in_port: PortNo, k: &mut FlowKey) -> Option<(u16, &'a [u8])> {
    k.set_in_port(in_port);

    let (eth, mut rest) = frame.split_first_chunk::<14>()?;
    k.set_eth_dst_raw(mac(eth, 0));
    k.set_eth_src_raw(mac(eth, 6));
    let mut eth_type = be16(eth, 12);

    // Up to two VLAN tags. The DEI bit's position is VLAN_PRESENT, so `tci | VLAN_PRESENT`
    // both drops DEI and marks the tag present.
    if EtherType::is_vlan_raw(eth_type) {
        let Some((tag, r)) = rest.split_first_chunk::<4>() else {
            k.set_eth_type(eth_type);
            return None;
        };
        k.set_vlan_tci(be16(tag, 0) | VLAN_PRESENT);
        eth_type = be16(tag, 2);
        rest = r;
        if EtherType::is_vlan_raw(eth_type) {
            let Some((tag, r)) = rest.split_first_chunk::<4>() else {
                k.set_eth_type(eth_type);
                return None;
            };
            k.set_vlan_inner_tci(be16(tag, 0) | VLAN_PRESENT);
            eth_type = be16(tag, 2);
            rest = r;
        }
    }

    if eth_type < EtherType::MIN {
        k.set_eth_type(ETH_TYPE_NONE);
        return None;
    }
    k.set_eth_type(eth_type);
    Some((eth_type, rest))
}

#[inline(always)]
fn ipv4(k: &mut FlowKey, p: &[u8]) {
    let Some(h) = p.first_chunk::<20>() else {
        return;
    };
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if h[0] >> 4 != 4 || ihl < 20 || ihl > p.len() {
        return;
    }
    let proto = h[9];
    k.set_ip_tos(h[1]);
    k.set_ip_ttl(h[8]);
    k.set_ip_proto(proto);
    k.set_ip_src(be32(h, 12));
    k.set_ip_dst(be32(h, 16));

    let flg_off = be16(h, 6);
    if flg_off & 0x3fff != 0 {
        // MF (0x2000) or a non-zero offset (0x1fff).
        if flg_off & 0x1fff != 0 {
            k.set_ip_frag(FRAG_ANY | FRAG_LATER);
            return;
        }
        k.set_ip_frag(FRAG_ANY);
    }

    let total = usize::from(be16(h, 2));
    let end = total.min(p.len());
    // `None` when total < ihl: no L4.
    if let Some(l4) = p.get(ihl..end) {
        transport(k, proto, IpProtocol::ICMP, l4);
    }
}

#[inline(always)]
fn ipv6(k: &mut FlowKey, p: &[u8]) {
    let Some((h, rest)) = p.split_first_chunk::<40>() else {
        return;
    };
    if h[0] >> 4 != 6 {
        return;
    }
    k.set_ip_tos(((h[0] & 0x0f) << 4) | (h[1] >> 4));
    k.set_ip_ttl(h[7]);
    k.set_ipv6_src(u128::from_be_bytes(at(h, 8)));
    k.set_ipv6_dst(u128::from_be_bytes(at(h, 24)));

    let plen = usize::from(be16(h, 4));
    let mut payload = rest.get(..plen).unwrap_or(rest);
    let mut nh = h[6];
    let mut frag = 0u8;
    for _ in 0..IPV6_MAX_EXT_HEADERS {
        match nh {
            IpProtocol::HOP_BY_HOP | IpProtocol::IPV6_ROUTE | IpProtocol::IPV6_OPTS => {
                // Next header, then the length in 8-octet units beyond the first 8.
                let Some(e) = payload.first_chunk::<8>() else {
                    break;
                };
                let len = (usize::from(e[1]) + 1) * 8;
                let Some(r) = payload.get(len..) else {
                    break;
                };
                nh = e[0];
                payload = r;
            }
            IpProtocol::IPV6_FRAG => {
                let Some((f, r)) = payload.split_first_chunk::<8>() else {
                    break;
                };
                let off_m = be16(f, 2);
                nh = f[0];
                payload = r;
                if off_m & 0xfff8 != 0 {
                    // A later fragment: what follows is fragment data, not headers (RFC 8200
                    // §4.5). Walking on would let a second "fragment header" in that data
                    // clear FRAG_LATER and put ports read from the data into the key.
                    frag = FRAG_ANY | FRAG_LATER;
                    break;
                } else if off_m & 1 != 0 {
                    frag = FRAG_ANY;
                }
            }
            _ => break,
        }
    }
    k.set_ip_proto(nh);
    k.set_ip_frag(frag);
    if frag & FRAG_LATER != 0 {
        return;
    }
    // An extension header left unparsed (truncated, or past the 8) is not an L4 protocol,
    // so `transport` ignores it.
    transport(k, nh, IpProtocol::ICMPV6, payload);
}

/// Ports (or ICMP type and code) of the L4 header at the start of `l4`. `icmp` is the ICMP
/// protocol number of this IP version.
#[inline(always)]
fn transport(k: &mut FlowKey, proto: u8, icmp: u8, l4: &[u8]) {
    match proto {
        IpProtocol::TCP => {
            if let Some(t) = l4.first_chunk::<20>() {
                let doff = usize::from(t[12] >> 4) * 4;
                if doff >= 20 && doff <= l4.len() {
                    k.set_tp_src(be16(t, 0));
                    k.set_tp_dst(be16(t, 2));
                }
            }
        }
        IpProtocol::UDP => {
            if let Some(u) = l4.first_chunk::<8>() {
                k.set_tp_src(be16(u, 0));
                k.set_tp_dst(be16(u, 2));
            }
        }
        IpProtocol::SCTP => {
            if let Some(s) = l4.first_chunk::<12>() {
                k.set_tp_src(be16(s, 0));
                k.set_tp_dst(be16(s, 2));
            }
        }
        _ if proto == icmp => {
            if let Some(i) = l4.first_chunk::<8>() {
                k.set_tp_src(u16::from(i[0]));
                k.set_tp_dst(u16::from(i[1]));
            }
        }
        _ => {}
    }
}

#[inline(always)]
fn arp(k: &mut FlowKey, p: &[u8]) {
    let Some(a) = p.first_chunk::<28>() else {
        return;
    };
    if a[..6] != arp::ETHERNET_IPV4 {
        return;
    }
    let op = be16(a, 6);
    k.set_ip_proto(if op <= 0xff { op as u8 } else { 0 });
    k.set_arp_sha_raw(mac(a, 8));
    k.set_ip_src(be32(a, 14));
    k.set_arp_tha_raw(mac(a, 18));
    k.set_ip_dst(be32(a, 24));
}

/// Recognises a VXLAN frame and returns its outer fields: Ethernet (untagged or with one
/// 802.1Q tag), IPv4 (version 4, IHL >= 5, not a fragment, total length within the frame),
/// UDP to port 4789, a VXLAN header with the I flag set, and at least 14 bytes of inner
/// frame before the IPv4 total length. Checksums are not verified. Never panics.
///
/// The inner frame is `frame[inner_offset..inner_offset + inner_len]`; bytes past the outer
/// IPv4 total length (Ethernet padding, trailers) are not part of it.
pub fn extract_vxlan(frame: &[u8]) -> Option<VxlanOuter> {
    let (eth, mut rest) = frame.split_first_chunk::<14>()?;
    let mut eth_type = be16(eth, 12);
    let mut l3_offset = 14;
    if eth_type == EtherType::VLAN {
        let (tag, r) = rest.split_first_chunk::<4>()?;
        eth_type = be16(tag, 2);
        rest = r;
        l3_offset = 18;
    }
    if eth_type != EtherType::IPV4 {
        return None;
    }

    let h = rest.first_chunk::<20>()?;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(be16(h, 2));
    if h[0] >> 4 != 4
        || ihl < 20
        || total > rest.len()
        || be16(h, 6) & 0x3fff != 0
        || h[9] != IpProtocol::UDP
    {
        return None;
    }
    // ihl <= total is checked by `get`.
    let l4 = rest.get(ihl..total)?;
    let (udp, l4) = l4.split_first_chunk::<8>()?;
    if be16(udp, 2) != vxlan::UDP_PORT {
        return None;
    }
    let (vx, inner) = l4.split_first_chunk::<8>()?;
    if vx[0] & vxlan::FLAG_I == 0 || inner.len() < 14 {
        return None;
    }
    Some(VxlanOuter {
        vni: Vni::new(u32::from_be_bytes([0, vx[4], vx[5], vx[6]]))?,
        src: be32(h, 12),
        dst: be32(h, 16),
        src_port: be16(udp, 0),
        inner_offset: l3_offset + ihl + 16,
        inner_len: inner.len(),
    })
}

#[cfg(test)]
mod tests;
