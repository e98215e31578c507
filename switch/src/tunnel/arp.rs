//! ARP on the underlay: requests for next hops, replies for this node's address, built with
//! the `wire` views into switch buffers.

use std::net::Ipv4Addr;

use flowtable::wire::{
    ethernet, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetPacket, EthernetRepr,
};
use flowtable::MacAddr;
use ports::Packet;

/// An Ethernet frame carrying ARP, padded to the 60-byte minimum.
const FRAME_LEN: usize = 60;

/// Writes an Ethernet/ARP frame into `pkt`.
fn build(pkt: &mut Packet, eth_dst: MacAddr, src_mac: MacAddr, arp: &ArpRepr) {
    let Some(buf) = pkt.prepare(FRAME_LEN) else {
        return;
    };
    buf.fill(0);
    EthernetRepr {
        src_addr: src_mac,
        dst_addr: eth_dst,
        ethertype: EtherType::Arp,
    }
    .emit(&mut EthernetPacket::new_unchecked(
        &mut buf[..ethernet::HEADER_LEN],
    ));
    arp.emit(&mut ArpPacket::new_unchecked(
        &mut buf[ethernet::HEADER_LEN..],
    ));
}

/// A broadcast "who has `target`" from `(mac, ip)`.
pub(crate) fn request(pkt: &mut Packet, mac: MacAddr, ip: Ipv4Addr, target: Ipv4Addr) {
    build(
        pkt,
        MacAddr([0xff; 6]),
        mac,
        &ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: mac,
            source_protocol_addr: ip,
            target_hardware_addr: MacAddr([0; 6]),
            target_protocol_addr: target,
        },
    );
}

/// Turns `pkt` into the reply to `req`: "`ip` is at `mac`", sent to the asker.
pub(crate) fn reply(pkt: &mut Packet, mac: MacAddr, ip: Ipv4Addr, req: &ArpRepr) {
    build(
        pkt,
        req.source_hardware_addr,
        mac,
        &ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: mac,
            source_protocol_addr: ip,
            target_hardware_addr: req.source_hardware_addr,
            target_protocol_addr: req.source_protocol_addr,
        },
    );
}

/// Parses an untagged Ethernet/IPv4 ARP frame; `None` for anything else or malformed.
pub(crate) fn parse(frame: &[u8]) -> Option<ArpRepr> {
    let eth = EthernetPacket::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::Arp {
        return None;
    }
    ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).ok()?).ok()
}

#[cfg(test)]
mod test {
    use super::*;

    const MAC: MacAddr = MacAddr([2, 0x76, 0x73, 0, 0, 1]);
    const IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

    #[test]
    fn request_and_reply_round_trip() {
        let mut p = Packet::new();
        request(&mut p, MAC, IP, Ipv4Addr::new(198, 18, 0, 2));
        assert_eq!(p.len(), FRAME_LEN);
        assert_eq!(&p.data()[..6], &[0xff; 6]);
        let req = parse(p.data()).unwrap();
        assert_eq!(req.operation, ArpOperation::Request);
        assert_eq!(req.target_protocol_addr, Ipv4Addr::new(198, 18, 0, 2));
        let peer = MacAddr([2, 0, 0, 0, 0, 2]);
        let asked = ArpRepr {
            source_hardware_addr: peer,
            source_protocol_addr: Ipv4Addr::new(198, 18, 0, 2),
            ..req
        };
        reply(&mut p, MAC, IP, &asked);
        let rep = parse(p.data()).unwrap();
        assert_eq!(rep.operation, ArpOperation::Reply);
        assert_eq!(
            (rep.source_hardware_addr, rep.source_protocol_addr),
            (MAC, IP)
        );
        assert_eq!(rep.target_hardware_addr, peer);
        assert_eq!(&p.data()[..6], &peer.0);
        // Truncated or non-ARP frames parse to nothing.
        for len in 0..42 {
            assert_eq!(parse(&p.data()[..len]), None, "len {len}");
        }
    }
}
