//! Test frames, built with the `flowtable::wire` reprs the switch itself emits with
//! (Ethernet, ARP, IPv4, UDP, VXLAN) rather than with bytes written by hand. Tests that
//! check the switch's parsing against an outside oracle build with `etherparse` instead.
//!
//! Addresses are plain arrays, as tests write them; every IPv4 address a helper makes lies
//! in 198.18.0.0/15.

use std::net::Ipv4Addr;

use flowtable::wire::{
    ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetPacket, EthernetRepr, IpProtocol,
    Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr, VxlanPacket, VxlanRepr,
};
use flowtable::{MacAddr, Vni};

/// An EtherType from the IEEE "local experimental" range: nothing else on a link uses it,
/// so a test can tell its own frames from the kernel's.
pub const TEST_ETHERTYPE: u16 = 0x88b5;

/// The shortest Ethernet frame without its FCS: shorter ones are padded with zeros.
pub const MIN_FRAME_LEN: usize = 60;

/// The UDP port VXLAN uses (IANA).
pub const VXLAN_PORT: u16 = 4789;

/// A locally administered unicast MAC whose last octet is `n`: `02:00:00:00:00:nn`.
pub fn mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, n]
}

/// Host `n` of the benchmarking range: 198.18.0.n.
pub fn ip(n: u8) -> [u8; 4] {
    [198, 18, 0, n]
}

/// An Ethernet frame from `src` to `dst` with `ethertype` and `payload`, padded with zeros
/// to [`MIN_FRAME_LEN`].
pub fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let eth = EthernetRepr {
        src_addr: MacAddr(src),
        dst_addr: MacAddr(dst),
        ethertype: EtherType::from(ethertype),
    };
    let mut f = vec![0u8; (eth.header_len() + payload.len()).max(MIN_FRAME_LEN)];
    let mut packet = EthernetPacket::new_unchecked(&mut f[..]);
    eth.emit(&mut packet);
    packet.payload_mut()[..payload.len()].copy_from_slice(payload);
    f
}

/// A [`TEST_ETHERTYPE`] frame from `src` to `dst` with a payload of `len` bytes: `seq`
/// (big endian), then bytes derived from `seq`, so that frames differ all along.
pub fn test_frame(src: [u8; 6], dst: [u8; 6], seq: u32, len: usize) -> Vec<u8> {
    let mut payload = Vec::with_capacity(len);
    payload.extend_from_slice(&seq.to_be_bytes());
    payload.extend((4..len).map(|i| (i as u32).wrapping_mul(31).wrapping_add(seq) as u8));
    ethernet(dst, src, TEST_ETHERTYPE, &payload)
}

/// An Ethernet/IPv4 ARP frame (padded to [`MIN_FRAME_LEN`]): a request is broadcast, a
/// reply goes to the target's MAC `tha`.
pub fn arp(op: ArpOperation, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Vec<u8> {
    let repr = ArpRepr {
        operation: op,
        source_hardware_addr: MacAddr(sha),
        source_protocol_addr: Ipv4Addr::from(spa),
        target_hardware_addr: MacAddr(tha),
        target_protocol_addr: Ipv4Addr::from(tpa),
    };
    let dst = if op == ArpOperation::Request {
        [0xff; 6]
    } else {
        tha
    };
    let mut body = vec![0u8; repr.header_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut body[..]));
    ethernet(dst, sha, EtherType::Arp.into(), &body)
}

/// The outer headers of a VXLAN frame: Ethernet, then IPv4 (TTL 64, don't fragment) and
/// UDP from `src_port` to [`VXLAN_PORT`] (no UDP checksum, as RFC 7348 allows).
#[derive(Debug, Clone, Copy)]
pub struct Underlay {
    /// Outer source MAC.
    pub src_mac: [u8; 6],
    /// Outer destination MAC.
    pub dst_mac: [u8; 6],
    /// Outer source address (the sending VTEP).
    pub src_ip: [u8; 4],
    /// Outer destination address (the receiving VTEP).
    pub dst_ip: [u8; 4],
    /// UDP source port.
    pub src_port: u16,
}

/// A VXLAN frame over `underlay` carrying `inner` in VNI `vni`.
pub fn vxlan(underlay: &Underlay, vni: u32, inner: &[u8]) -> Vec<u8> {
    let vx = VxlanRepr {
        vni: Vni::new(vni).expect("a VNI fits in 24 bits"),
    };
    let udp = UdpRepr {
        src_port: underlay.src_port,
        dst_port: VXLAN_PORT,
        payload_len: vx.header_len() + inner.len(),
    };
    let ipv4 = Ipv4Repr {
        src_addr: Ipv4Addr::from(underlay.src_ip),
        dst_addr: Ipv4Addr::from(underlay.dst_ip),
        protocol: IpProtocol::Udp,
        payload_len: udp.header_len() + udp.payload_len,
        ttl: 64,
        tos: 0,
        ident: 0,
        dont_frag: true,
    };
    let mut l3 = vec![0u8; ipv4.buffer_len()];
    let (ip_hdr, rest) = l3.split_at_mut(ipv4.header_len());
    let (udp_hdr, rest) = rest.split_at_mut(udp.header_len());
    let (vx_hdr, payload) = rest.split_at_mut(vx.header_len());
    payload.copy_from_slice(inner);
    vx.emit(&mut VxlanPacket::new_unchecked(vx_hdr));
    udp.emit(&mut UdpPacket::new_unchecked(udp_hdr));
    ipv4.emit(&mut Ipv4Packet::new_unchecked(ip_hdr));
    ethernet(
        underlay.dst_mac,
        underlay.src_mac,
        EtherType::Ipv4.into(),
        &l3,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_frames_are_padded_and_long_ones_kept() {
        let f = ethernet(mac(2), mac(1), TEST_ETHERTYPE, &[1, 2, 3]);
        assert_eq!(f.len(), MIN_FRAME_LEN);
        assert_eq!(&f[..14], &[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xb5]);
        assert_eq!(&f[14..18], &[1, 2, 3, 0]);
        assert_eq!(test_frame(mac(1), mac(2), 7, 1500).len(), 1514);
    }

    #[test]
    fn an_arp_request_is_broadcast_and_a_reply_is_not() {
        let req = arp(ArpOperation::Request, mac(1), ip(1), [0; 6], ip(2));
        assert_eq!(req.len(), MIN_FRAME_LEN);
        assert_eq!(&req[..6], &[0xff; 6]);
        assert_eq!(&req[12..22], &[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        let rep = arp(ArpOperation::Reply, mac(2), ip(2), mac(1), ip(1));
        assert_eq!(&rep[..6], &mac(1));
        assert_eq!(&rep[12..22], &[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
        assert_eq!(&rep[22..28], &mac(2));
        assert_eq!(&rep[38..42], &ip(1));
    }

    #[test]
    fn a_vxlan_frame_has_consistent_outer_headers() {
        let inner = test_frame(mac(7), mac(8), 1, 46);
        let u = Underlay {
            src_mac: mac(1),
            dst_mac: mac(2),
            src_ip: ip(1),
            dst_ip: ip(2),
            src_port: 54321,
        };
        let f = vxlan(&u, 0x12_3456, &inner);
        assert_eq!(f.len(), 14 + 20 + 8 + 8 + inner.len());
        let ip4 = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert!(ip4.checksum_valid());
        assert_eq!(usize::from(ip4.total_len()), f.len() - 14);
        let udp = UdpPacket::new_checked(ip4.payload()).unwrap();
        assert_eq!((udp.src_port(), udp.dst_port()), (54321, VXLAN_PORT));
        assert_eq!(usize::from(udp.len()), f.len() - 34);
        assert_eq!(&f[42..50], &[0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
        assert_eq!(&f[50..], &inner[..]);
    }
}
