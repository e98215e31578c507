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
    let _ = l2(frame, in_port, k);
}

/// Resets `k` and fills its L2 fields; returns the EtherType and what follows the L2 headers
/// when there is an L3 header to parse.
#[inline(always)]
fn l2<'a>(frame: &'a [u8], in_port: PortNo, k: &mut FlowKey) -> Option<(u16, &'a [u8])> {
    *k = FlowKey::ZERO;
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
mod test {
    use super::*;
    use crate::key::KEY_WORDS;
    use crate::types::MacAddr;
    use crate::wire::{
        EtherType, EthernetPacket, IpProtocol, Ipv4Packet, TcpPacket, VlanPacket, VxlanPacket,
    };

    const DST: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x02];
    const SRC: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x01];
    const PORT: PortNo = PortNo(7);

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// An IPv4 header without options (checksum left zero: the extractor ignores it).
    fn ipv4_header(proto: u8, total_len: u16, flg_off: u16) -> [u8; 20] {
        let [l0, l1] = total_len.to_be_bytes();
        let [f0, f1] = flg_off.to_be_bytes();
        [
            0x45, 0xb8, l0, l1, 0x12, 0x34, f0, f1, 0x40, proto, 0x00, 0x00, // ...
            10, 0, 0, 1, // source 10.0.0.1
            10, 0, 0, 2, // destination 10.0.0.2
        ]
    }

    /// An IPv6 header: traffic class 0xb8, flow label 0x12345, hop limit 64, fe80::1 ->
    /// fe80::2.
    fn ipv6_header(next: u8, payload_len: u16) -> [u8; 40] {
        let mut h = [0u8; 40];
        h[..4].copy_from_slice(&[0x6b, 0x81, 0x23, 0x45]);
        h[4..6].copy_from_slice(&payload_len.to_be_bytes());
        h[6] = next;
        h[7] = 64;
        h[8] = 0xfe;
        h[9] = 0x80;
        h[23] = 1;
        h[24] = 0xfe;
        h[25] = 0x80;
        h[39] = 2;
        h
    }

    const FE80_1: u128 = 0xfe80_0000_0000_0000_0000_0000_0000_0001;
    const FE80_2: u128 = 0xfe80_0000_0000_0000_0000_0000_0000_0002;

    static VLAN_IPV4_TCP: [u8; 62] = [
        // Ethernet
        0x52, 0x54, 0x00, 0x00, 0x00, 0x02, // destination
        0x52, 0x54, 0x00, 0x00, 0x00, 0x01, // source
        0x81, 0x00, // TPID 802.1Q
        // VLAN tag
        0xb0, 0x64, // PCP 5, DEI 1, VID 100
        0x08, 0x00, // EtherType IPv4
        // IPv4
        0x45, // version 4, IHL 5
        0x10, // TOS
        0x00, 0x2c, // total length 44
        0x00, 0x01, // identification
        0x40, 0x00, // DF
        0x3f, // TTL 63
        0x06, // protocol TCP
        0x00, 0x00, // checksum (not checked)
        0xc0, 0xa8, 0x01, 0x01, // source 192.168.1.1
        0xc0, 0xa8, 0x01, 0x02, // destination 192.168.1.2
        // TCP
        0xbf, 0x00, // source port 48896
        0x01, 0xbb, // destination port 443
        0x00, 0x00, 0x00, 0x01, // sequence number
        0x00, 0x00, 0x00, 0x00, // acknowledgement number
        0x50, 0x02, // data offset 5, SYN
        0xff, 0xff, // window
        0x00, 0x00, // checksum
        0x00, 0x00, // urgent pointer
        // payload
        0xde, 0xad, 0xbe, 0xef,
    ];

    /// The key of `VLAN_IPV4_TCP` truncated to `len` bytes, by the module doc's rules.
    fn vlan_ipv4_tcp_key(len: usize) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.set_in_port(PORT);
        if len < 14 {
            return k;
        }
        k.set_eth_dst(MacAddr(DST));
        k.set_eth_src(MacAddr(SRC));
        k.set_eth_type(0x8100);
        if len < 18 {
            return k;
        }
        k.set_vlan_tci(0xa064 | VLAN_PRESENT); // DEI dropped, present bit set
        k.set_eth_type(0x0800);
        if len < 38 {
            return k;
        }
        k.set_ip_src(0xc0a8_0101);
        k.set_ip_dst(0xc0a8_0102);
        k.set_ip_proto(6);
        k.set_ip_tos(0x10);
        k.set_ip_ttl(63);
        if len < 58 {
            return k;
        }
        k.set_tp_src(48896);
        k.set_tp_dst(443);
        k
    }

    #[test]
    fn vlan_ipv4_tcp_matches_wire_views() {
        let k = extract(&VLAN_IPV4_TCP, PORT);
        assert_eq!(k, vlan_ipv4_tcp_key(VLAN_IPV4_TCP.len()));

        // The same fields through the wire views.
        let eth = EthernetPacket::new_checked(&VLAN_IPV4_TCP[..]).unwrap();
        assert_eq!(eth.ethertype(), EtherType::Vlan);
        assert_eq!(k.eth_dst(), eth.dst_addr());
        assert_eq!(k.eth_src(), eth.src_addr());
        let vlan = VlanPacket::new_checked(eth.payload()).unwrap();
        assert_eq!(k.vlan_vid(), Some(vlan.vid().get()));
        assert_eq!(k.vlan_tci() >> 13, u16::from(vlan.pcp()));
        assert_eq!(vlan.ethertype(), EtherType::Ipv4);
        assert_eq!(k.eth_type(), u16::from(vlan.ethertype()));
        let ip = Ipv4Packet::new_checked(vlan.payload()).unwrap();
        assert_eq!(k.ip_src(), u32::from(ip.src_addr()));
        assert_eq!(k.ip_dst(), u32::from(ip.dst_addr()));
        assert_eq!(ip.protocol(), IpProtocol::Tcp);
        assert_eq!((k.ip_tos(), k.ip_ttl()), (ip.tos(), ip.ttl()));
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((k.tp_src(), k.tp_dst()), (tcp.src_port(), tcp.dst_port()));
    }

    #[test]
    fn every_truncation_keeps_what_parsed() {
        for len in 0..=VLAN_IPV4_TCP.len() {
            assert_eq!(
                extract(&VLAN_IPV4_TCP[..len], PORT),
                vlan_ipv4_tcp_key(len),
                "truncated to {len} bytes"
            );
        }
    }

    #[test]
    fn untagged_ipv4_udp() {
        let frame = cat(&[
            &DST,
            &SRC,
            &[0x08, 0x00],
            &ipv4_header(17, 28, 0x4000),
            &[0x30, 0x39, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00], // UDP 12345 -> 53
        ]);
        let k = extract(&frame, PORT);
        assert_eq!(k.in_port(), PORT);
        assert_eq!((k.vlan_tci(), k.vlan_inner_tci()), (0, 0));
        assert_eq!(k.eth_type(), 0x0800);
        assert_eq!((k.ip_src(), k.ip_dst()), (0x0a00_0001, 0x0a00_0002));
        assert_eq!((k.ip_proto(), k.ip_tos(), k.ip_ttl()), (17, 0xb8, 64));
        assert_eq!(k.ip_frag(), 0);
        assert_eq!((k.tp_src(), k.tp_dst()), (12345, 53));
        assert_eq!((k.ipv6_src(), k.ipv6_dst()), (0, 0));
    }

    #[test]
    fn qinq_ipv6_udp() {
        let frame = cat(&[
            &DST,
            &SRC,
            &[0x88, 0xa8],             // TPID 802.1ad
            &[0x20, 0x0a, 0x81, 0x00], // PCP 1, VID 10; TPID 802.1Q
            &[0xf1, 0x2c, 0x86, 0xdd], // PCP 7, DEI, VID 300; IPv6
            &ipv6_header(17, 8),
            &[0x00, 0x44, 0x00, 0x43, 0x00, 0x08, 0x00, 0x00], // UDP 68 -> 67
        ]);
        let k = extract(&frame, PORT);
        assert_eq!(k.vlan_tci(), 0x200a | VLAN_PRESENT);
        assert_eq!(k.vlan_inner_tci(), 0xe12c | VLAN_PRESENT);
        assert_eq!(k.eth_type(), 0x86dd);
        assert_eq!((k.ipv6_src(), k.ipv6_dst()), (FE80_1, FE80_2));
        assert_eq!((k.ip_proto(), k.ip_tos(), k.ip_ttl()), (17, 0xb8, 64));
        assert_eq!((k.ip_src(), k.ip_dst()), (0, 0));
        assert_eq!((k.tp_src(), k.tp_dst()), (68, 67));
    }

    #[test]
    fn third_tag_is_not_parsed() {
        let frame = cat(&[
            &DST,
            &SRC,
            &[0x88, 0xa8, 0x00, 0x01, 0x81, 0x00, 0x00, 0x02, 0x81, 0x00], // two tags, a third TPID
            &[0x00, 0x03, 0x08, 0x00],
            &ipv4_header(17, 28, 0),
            &[0; 8],
        ]);
        let k = extract(&frame, PORT);
        assert_eq!(k.vlan_tci(), 1 | VLAN_PRESENT);
        assert_eq!(k.vlan_inner_tci(), 2 | VLAN_PRESENT);
        assert_eq!(k.eth_type(), 0x8100);
        assert_eq!((k.ip_src(), k.ip_proto()), (0, 0));
    }

    #[test]
    fn other_tpids_are_not_tags() {
        let frame = cat(&[&DST, &SRC, &[0x91, 0x00, 0x00, 0x01, 0x08, 0x00]]);
        let k = extract(&frame, PORT);
        assert_eq!((k.vlan_tci(), k.eth_type()), (0, 0x9100));
    }

    #[test]
    fn ieee_802_3_length_frame() {
        // 802.3 with LLC (STP BPDU): the type field is a length.
        let frame = cat(&[&DST, &SRC, &[0x00, 0x26, 0x42, 0x42, 0x03], &[0; 35]]);
        let k = extract(&frame, PORT);
        assert_eq!(k.eth_type(), ETH_TYPE_NONE);
        assert_eq!(k.eth_src(), MacAddr(SRC));
        // Tagged too.
        let frame = cat(&[&DST, &SRC, &[0x81, 0x00, 0x00, 0x05, 0x05, 0xff], &[0; 8]]);
        let k = extract(&frame, PORT);
        assert_eq!((k.vlan_vid(), k.eth_type()), (Some(5), ETH_TYPE_NONE));
        // 0x0600 is the first EtherType.
        let frame = cat(&[&DST, &SRC, &[0x06, 0x00]]);
        assert_eq!(extract(&frame, PORT).eth_type(), 0x0600);
    }

    static ARP_REQUEST: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination broadcast
        0x52, 0x54, 0x00, 0x00, 0x00, 0x01, // source
        0x08, 0x06, // EtherType ARP
        0x00, 0x01, // hardware type Ethernet
        0x08, 0x00, // protocol type IPv4
        0x06, 0x04, // lengths
        0x00, 0x01, // operation: request
        0x52, 0x54, 0x00, 0x00, 0x00, 0x01, // sender hardware address
        0x0a, 0x00, 0x00, 0x01, // sender protocol address
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target hardware address
        0x0a, 0x00, 0x00, 0x02, // target protocol address
    ];

    #[test]
    fn arp() {
        let k = extract(&ARP_REQUEST, PORT);
        assert_eq!(k.eth_dst(), MacAddr::BROADCAST);
        assert_eq!(k.eth_type(), 0x0806);
        assert_eq!(k.ip_proto(), 1);
        assert_eq!((k.ip_src(), k.ip_dst()), (0x0a00_0001, 0x0a00_0002));
        assert_eq!(k.arp_sha_raw(), MacAddr(SRC).to_u64());
        assert_eq!(k.arp_tha_raw(), 0);
        assert_eq!((k.tp_src(), k.tp_dst(), k.ip_ttl()), (0, 0, 0));

        // An opcode above 255 is kept as 0.
        let mut frame = ARP_REQUEST;
        frame[20..22].copy_from_slice(&[0x01, 0x02]);
        let k = extract(&frame, PORT);
        assert_eq!((k.ip_proto(), k.ip_src()), (0, 0x0a00_0001));

        // Not Ethernet/IPv4, or truncated: only the Ethernet fields.
        let mut frame = ARP_REQUEST;
        frame[18] = 8;
        let eth_only = {
            let mut k = FlowKey::ZERO;
            k.set_in_port(PORT);
            k.set_eth_dst(MacAddr::BROADCAST);
            k.set_eth_src(MacAddr(SRC));
            k.set_eth_type(0x0806);
            k
        };
        assert_eq!(extract(&frame, PORT), eth_only);
        assert_eq!(extract(&ARP_REQUEST[..41], PORT), eth_only);
    }

    fn ipv4_udp_frame(flg_off: u16) -> Vec<u8> {
        cat(&[
            &DST,
            &SRC,
            &[0x08, 0x00],
            &ipv4_header(17, 28, flg_off),
            &[0x30, 0x39, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00],
        ])
    }

    #[test]
    fn ipv4_fragments() {
        // First fragment: MF set, offset 0. Ports are there.
        let k = extract(&ipv4_udp_frame(0x2000), PORT);
        assert_eq!(k.ip_frag(), FRAG_ANY);
        assert_eq!((k.tp_src(), k.tp_dst()), (12345, 53));
        // Later fragment (offset 185 * 8, MF clear): no ports.
        let k = extract(&ipv4_udp_frame(0x00b9), PORT);
        assert_eq!(k.ip_frag(), FRAG_ANY | FRAG_LATER);
        assert_eq!((k.ip_proto(), k.ip_src()), (17, 0x0a00_0001));
        assert_eq!((k.tp_src(), k.tp_dst()), (0, 0));
        // DF alone is not a fragment.
        assert_eq!(extract(&ipv4_udp_frame(0x4000), PORT).ip_frag(), 0);
    }

    #[test]
    fn ipv4_bounds() {
        // Total length shorter than IP + UDP: no ports.
        let mut frame = ipv4_udp_frame(0);
        frame[16..18].copy_from_slice(&27u16.to_be_bytes());
        let k = extract(&frame, PORT);
        assert_eq!((k.ip_proto(), k.tp_src()), (17, 0));
        // Total length below the IHL: IP fields, no ports.
        frame[16..18].copy_from_slice(&10u16.to_be_bytes());
        let k = extract(&frame, PORT);
        assert_eq!((k.ip_dst(), k.tp_src()), (0x0a00_0002, 0));
        // Total length above the frame: bounded by the frame.
        frame[16..18].copy_from_slice(&1500u16.to_be_bytes());
        assert_eq!(extract(&frame, PORT).tp_dst(), 53);
        // Trailing padding after the total length is not L4.
        let mut frame = ipv4_udp_frame(0);
        frame[16..18].copy_from_slice(&20u16.to_be_bytes());
        assert_eq!(extract(&frame, PORT).tp_src(), 0);
    }

    #[test]
    fn ipv4_bad_headers_stop_after_eth_type() {
        for (byte, value) in [(14, 0x65), (14, 0x44), (14, 0x4f)] {
            let mut frame = ipv4_udp_frame(0);
            frame[byte] = value;
            let k = extract(&frame, PORT);
            assert_eq!(k.eth_type(), 0x0800);
            assert_eq!(
                (k.ip_src(), k.ip_proto(), k.ip_ttl(), k.tp_src()),
                (0, 0, 0, 0)
            );
        }
    }

    #[test]
    fn ipv4_options_and_tcp_data_offset() {
        let mut ip = ipv4_header(6, 44, 0);
        ip[0] = 0x46; // IHL 6: one option word
        let tcp = |doff: u8| {
            [
                0x00,
                0x16,
                0x04,
                0x00,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                doff << 4,
                0x10,
                0,
                0,
                0,
                0,
                0,
                0,
            ]
        };
        let frame = cat(&[&DST, &SRC, &[0x08, 0x00], &ip, &[1, 1, 0, 0], &tcp(5)]);
        let k = extract(&frame, PORT);
        assert_eq!((k.tp_src(), k.tp_dst()), (22, 1024));
        // A data offset below 5 words, or past the segment: no ports.
        for doff in [4, 6] {
            let frame = cat(&[&DST, &SRC, &[0x08, 0x00], &ip, &[1, 1, 0, 0], &tcp(doff)]);
            let k = extract(&frame, PORT);
            assert_eq!(
                (k.ip_proto(), k.tp_src(), k.tp_dst()),
                (6, 0, 0),
                "doff {doff}"
            );
        }
    }

    #[test]
    fn icmp_and_sctp() {
        let frame = cat(&[
            &DST,
            &SRC,
            &[0x08, 0x00],
            &ipv4_header(1, 28, 0),
            &[0x03, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // destination host unreachable
        ]);
        let k = extract(&frame, PORT);
        assert_eq!((k.ip_proto(), k.tp_src(), k.tp_dst()), (1, 3, 1));
        // ICMP truncated below 8 bytes: no type/code.
        assert_eq!(extract(&frame[..frame.len() - 1], PORT).tp_src(), 0);

        let frame = cat(&[
            &DST,
            &SRC,
            &[0x08, 0x00],
            &ipv4_header(132, 32, 0),
            &[0x0b, 0x59, 0x0b, 0x5a, 0, 0, 0, 1, 0, 0, 0, 0], // SCTP 2905 -> 2906
        ]);
        let k = extract(&frame, PORT);
        assert_eq!((k.ip_proto(), k.tp_src(), k.tp_dst()), (132, 2905, 2906));
    }

    #[test]
    fn icmpv6() {
        let frame = cat(&[
            &DST,
            &SRC,
            &[0x86, 0xdd],
            &ipv6_header(58, 8),
            &[0x80, 0x00, 0x12, 0x34, 0x00, 0x01, 0x00, 0x01], // echo request
        ]);
        let k = extract(&frame, PORT);
        assert_eq!((k.ip_proto(), k.tp_src(), k.tp_dst()), (58, 128, 0));
        // ICMP (1) over IPv6 is not ICMPv6: no type/code.
        let mut frame = frame;
        frame[20] = 1;
        let k = extract(&frame, PORT);
        assert_eq!((k.ip_proto(), k.tp_src()), (1, 0));
    }

    /// Hop-by-hop (8 bytes, PadN), fragment header with `off_m`, UDP 5353 -> 5353.
    fn ipv6_fragment_frame(off_m: u16) -> Vec<u8> {
        let [o0, o1] = off_m.to_be_bytes();
        cat(&[
            &DST,
            &SRC,
            &[0x86, 0xdd],
            &ipv6_header(0, 24),
            &[44, 0, 0x01, 0x04, 0, 0, 0, 0], // hop-by-hop: next fragment
            &[17, 0, o0, o1, 0xde, 0xad, 0xbe, 0xef], // fragment: next UDP
            &[0x14, 0xe9, 0x14, 0xe9, 0x00, 0x08, 0x00, 0x00], // UDP
        ])
    }

    #[test]
    fn ipv6_fragment_extension_header() {
        // First fragment (M set): ports, FRAG_ANY.
        let k = extract(&ipv6_fragment_frame(0x0001), PORT);
        assert_eq!((k.ip_proto(), k.ip_frag()), (17, FRAG_ANY));
        assert_eq!((k.tp_src(), k.tp_dst()), (5353, 5353));
        // Later fragment (offset 1448): no ports.
        let k = extract(&ipv6_fragment_frame(0x05a8), PORT);
        assert_eq!((k.ip_proto(), k.ip_frag()), (17, FRAG_ANY | FRAG_LATER));
        assert_eq!((k.tp_src(), k.tp_dst()), (0, 0));
        assert_eq!((k.ipv6_src(), k.ip_ttl()), (FE80_1, 64));
        // Atomic fragment (offset 0, M clear) is not a fragment (RFC 6946).
        let k = extract(&ipv6_fragment_frame(0), PORT);
        assert_eq!((k.ip_frag(), k.tp_src()), (0, 5353));
    }

    /// Found by the `frame_key` fuzz target: a later fragment whose data starts like a
    /// second fragment header (offset 0, M set) and a UDP header. The walk used to go on into
    /// the data: the second header cleared FRAG_LATER and the "UDP ports" reached the key, so
    /// a rule on ports could match a later fragment. The data is not headers; the walk stops.
    #[test]
    fn ipv6_later_fragment_ends_the_walk() {
        let frame = cat(&[
            &DST,
            &SRC,
            &[0x86, 0xdd],
            &ipv6_header(44, 24),
            &[44, 0, 0x05, 0xa8, 0, 0, 0, 1], // fragment, offset 1448: next "fragment"
            &[17, 0, 0x00, 0x01, 0, 0, 0, 2], // fragment data: offset 0, M, next UDP
            &[0x00, 0x35, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00], // fragment data: "UDP 53"
        ]);
        let k = extract(&frame, PORT);
        assert_eq!(k.ip_frag(), FRAG_ANY | FRAG_LATER);
        assert_eq!(k.ip_proto(), 44, "the later fragment's next header");
        assert_eq!((k.tp_src(), k.tp_dst()), (0, 0));
    }

    #[test]
    fn ipv6_extension_walk_is_bounded() {
        // Routing and destination options headers, then UDP: skipped.
        let frame = cat(&[
            &DST,
            &SRC,
            &[0x86, 0xdd],
            &ipv6_header(43, 40),
            &[60, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // routing, 16 bytes
            &[17, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // dst options, 16 bytes
            &[0x00, 0x01, 0x00, 0x02, 0x00, 0x08, 0x00, 0x00],
        ]);
        let k = extract(&frame, PORT);
        assert_eq!((k.ip_proto(), k.tp_src(), k.tp_dst()), (17, 1, 2));

        // Nine destination options headers: the walk stops after eight.
        let mut parts: Vec<Vec<u8>> = vec![
            cat(&[&DST, &SRC, &[0x86, 0xdd]]),
            ipv6_header(60, 9 * 8 + 8).to_vec(),
        ];
        for i in 0..9 {
            parts.push(vec![if i == 8 { 17 } else { 60 }, 0, 0, 0, 0, 0, 0, 0]);
        }
        parts.push(vec![0x00, 0x01, 0x00, 0x02, 0x00, 0x08, 0x00, 0x00]);
        let frame = parts.concat();
        let k = extract(&frame, PORT);
        assert_eq!((k.ip_proto(), k.tp_src()), (60, 0));
        assert_eq!(k.ipv6_dst(), FE80_2);

        // An extension header longer than the payload length: stops there.
        let mut frame = ipv6_fragment_frame(1);
        frame[14 + 40 + 1] = 200; // hop-by-hop claims 1608 bytes
        let k = extract(&frame, PORT);
        assert_eq!((k.ip_proto(), k.ip_frag(), k.tp_src()), (0, 0, 0));
    }

    #[test]
    fn ipv6_payload_length_bounds_l4() {
        let frame = cat(&[
            &DST,
            &SRC,
            &[0x86, 0xdd],
            &ipv6_header(17, 7), // one byte short of the UDP header
            &[0x00, 0x01, 0x00, 0x02, 0x00, 0x08, 0x00, 0x00],
        ]);
        let k = extract(&frame, PORT);
        assert_eq!((k.ip_proto(), k.tp_src()), (17, 0));
        // Wrong version: only the Ethernet fields.
        let mut frame = frame;
        frame[14] = 0x4b;
        let k = extract(&frame, PORT);
        assert_eq!((k.eth_type(), k.ipv6_src(), k.ip_proto()), (0x86dd, 0, 0));
    }

    #[test]
    fn garbage_never_panics() {
        // Every short prefix of every header shape, and an all-ones / all-zeros frame.
        let frames = [
            VLAN_IPV4_TCP.to_vec(),
            ARP_REQUEST.to_vec(),
            ipv6_fragment_frame(1),
            vec![0xff; 128],
            vec![0; 128],
        ];
        for f in &frames {
            for len in 0..=f.len() {
                let k = extract(&f[..len], PORT);
                assert_eq!(k.in_port(), PORT);
                let _ = extract_vxlan(&f[..len]);
            }
        }
        assert_eq!(extract(&[], PORT).words()[1..], [0; KEY_WORDS - 1]);
    }

    // VXLAN

    static VXLAN_FRAME: [u8; 64] = [
        // outer Ethernet
        0x52, 0x54, 0x00, 0x00, 0x00, 0x02, // destination
        0x52, 0x54, 0x00, 0x00, 0x00, 0x01, // source
        0x08, 0x00, // EtherType IPv4
        // outer IPv4
        0x45, 0x00, // version 4, IHL 5, TOS 0
        0x00, 0x32, // total length 50
        0x00, 0x00, 0x40, 0x00, // identification, DF
        0x40, 0x11, 0x00, 0x00, // TTL 64, UDP, checksum
        0xc0, 0x00, 0x02, 0x01, // source 192.0.2.1
        0xc0, 0x00, 0x02, 0x02, // destination 192.0.2.2
        // outer UDP
        0xd4, 0x31, // source port 54321
        0x12, 0xb5, // destination port 4789
        0x00, 0x1e, // length 30
        0x00, 0x00, // checksum: none
        // VXLAN
        0x08, 0x00, 0x00, 0x00, // flags I, reserved
        0x00, 0x10, 0x01, 0x00, // VNI 4097, reserved
        // inner Ethernet (14 bytes)
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // destination
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source
        0x08, 0x06, // EtherType ARP
    ];

    fn vxlan_outer(inner_offset: usize) -> VxlanOuter {
        VxlanOuter {
            vni: Vni::new(4097).unwrap(),
            src: 0xc000_0201,
            dst: 0xc000_0202,
            src_port: 54321,
            inner_offset,
            inner_len: 14,
        }
    }

    #[test]
    fn vxlan_untagged() {
        let outer = extract_vxlan(&VXLAN_FRAME).unwrap();
        assert_eq!(outer, vxlan_outer(50));
        // Same as the wire view.
        let vx = VxlanPacket::new_checked(&VXLAN_FRAME[42..]).unwrap();
        assert_eq!(outer.vni, vx.vni());
        assert_eq!(&VXLAN_FRAME[outer.inner_offset..], vx.payload());
        assert_eq!(outer.inner_len, VXLAN_FRAME.len() - outer.inner_offset);
        // The inner frame's key.
        let k = extract(&VXLAN_FRAME[outer.inner_offset..], PORT);
        assert_eq!(
            (k.eth_type(), k.eth_src()),
            (0x0806, MacAddr([2, 0, 0, 0, 0, 1]))
        );
        // A plain extract of the outer frame sees UDP to 4789.
        let k = extract(&VXLAN_FRAME, PORT);
        assert_eq!((k.ip_proto(), k.tp_src(), k.tp_dst()), (17, 54321, 4789));
    }

    #[test]
    fn vxlan_tagged() {
        let frame = cat(&[
            &VXLAN_FRAME[..12],
            &[0x81, 0x00, 0x00, 0x64], // 802.1Q, VID 100
            &VXLAN_FRAME[12..],
        ]);
        assert_eq!(extract_vxlan(&frame), Some(vxlan_outer(54)));
        // Not with an 802.1ad tag, nor two tags.
        let mut frame = frame;
        frame[12..14].copy_from_slice(&[0x88, 0xa8]);
        assert_eq!(extract_vxlan(&frame), None);
        let frame = cat(&[
            &VXLAN_FRAME[..12],
            &[0x81, 0x00, 0x00, 0x64, 0x81, 0x00, 0x00, 0x65],
            &VXLAN_FRAME[12..],
        ]);
        assert_eq!(extract_vxlan(&frame), None);
    }

    #[test]
    fn vxlan_rejects() {
        let with = |at: usize, bytes: &[u8]| {
            let mut f = VXLAN_FRAME;
            f[at..at + bytes.len()].copy_from_slice(bytes);
            extract_vxlan(&f)
        };
        assert_eq!(with(12, &[0x86, 0xdd]), None); // not IPv4
        assert_eq!(with(14, &[0x44]), None); // IHL 4
        assert_eq!(with(14, &[0x65]), None); // version 6
        assert_eq!(with(20, &[0x20, 0x00]), None); // MF
        assert_eq!(with(20, &[0x00, 0x01]), None); // later fragment
        assert_eq!(with(23, &[6]), None); // TCP
        assert_eq!(with(36, &[0x12, 0xb6]), None); // port 4790
        assert_eq!(with(42, &[0x00]), None); // I flag clear
        assert_eq!(with(16, &[0x00, 0x33]), None); // total length past the frame
        assert_eq!(with(16, &[0x00, 0x31]), None); // 13 bytes of inner frame
        assert_eq!(with(16, &[0x00, 0x10]), None); // total length < IHL + UDP
        assert_eq!(with(16, &[0x00, 0x05]), None); // total length < IHL
                                                   // Other flags and reserved bits are ignored.
        assert_eq!(with(42, &[0xff, 0xff]), Some(vxlan_outer(50)));
        // Every truncation.
        for len in 0..VXLAN_FRAME.len() {
            assert_eq!(extract_vxlan(&VXLAN_FRAME[..len]), None, "len {len}");
        }
        // IPv4 options move the inner frame.
        let frame = cat(&[
            &VXLAN_FRAME[..14],
            &[0x46, 0x00, 0x00, 0x36],
            &VXLAN_FRAME[18..34],
            &[0x01, 0x01, 0x01, 0x00], // options: NOP NOP NOP EOL
            &VXLAN_FRAME[34..],
        ]);
        assert_eq!(extract_vxlan(&frame), Some(vxlan_outer(54)));
    }

    #[test]
    fn vxlan_inner_len_stops_at_total_length() {
        // Trailing bytes (padding, a trailer) after the outer IPv4 packet are not inner frame.
        let frame = cat(&[&VXLAN_FRAME, &[0xee; 10]]);
        let outer = extract_vxlan(&frame).unwrap();
        assert_eq!(outer, vxlan_outer(50));
        assert_eq!(outer.inner_offset + outer.inner_len, VXLAN_FRAME.len());
    }
}
