//! The reference the switch's output is checked against: etherparse's parsing and checksums.

use etherparse::checksum::Sum16BitWords;
use etherparse::{
    Ipv4Header, Ipv6Header, LinkExtSlice, LinkSlice, NetSlice, SingleVlanHeader, SlicedPacket,
    TcpHeader, TransportSlice, UdpHeader,
};

/// An IP header as etherparse reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ip {
    V4(Ipv4Header),
    V6(Ipv6Header),
}

/// A transport header as etherparse reads it (options and checksum included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum L4 {
    Tcp(TcpHeader),
    Udp(UdpHeader),
}

/// A frame taken apart by etherparse.
#[derive(Clone, Debug)]
pub struct Dissected {
    pub vlans: Vec<SingleVlanHeader>,
    /// Ethernet header and VLAN tags.
    pub l2_len: usize,
    pub ip: Ip,
    pub l4: L4,
    pub payload: Vec<u8>,
}

/// Parses an Ethernet, VLAN, IP, TCP or UDP frame with etherparse; panics if it cannot, or
/// if the IP header says the packet is shorter than the frame (no padding is expected).
pub fn dissect(frame: &[u8]) -> Dissected {
    let packet = SlicedPacket::from_ethernet(frame).expect("etherparse parses the frame");
    let Some(LinkSlice::Ethernet2(ethernet)) = &packet.link else {
        panic!("not Ethernet II");
    };
    let mut l2_len = ethernet.header_slice().len();
    let mut vlans = Vec::new();
    for ext in &packet.link_exts {
        let LinkExtSlice::Vlan(vlan) = ext else {
            panic!("not a VLAN tag");
        };
        vlans.push(vlan.to_header());
        l2_len += vlan.header_len();
    }
    let (ip, ip_len) = match &packet.net {
        Some(NetSlice::Ipv4(ipv4)) => {
            let header = ipv4.header().to_header();
            (Ip::V4(header.clone()), usize::from(header.total_len))
        }
        Some(NetSlice::Ipv6(ipv6)) => {
            let header = ipv6.header().to_header();
            (
                Ip::V6(header.clone()),
                40 + usize::from(header.payload_length),
            )
        }
        other => panic!("not IP: {other:?}"),
    };
    assert_eq!(
        l2_len + ip_len,
        frame.len(),
        "IP length covers the frame exactly"
    );
    let (l4, payload) = match &packet.transport {
        Some(TransportSlice::Tcp(tcp)) => (L4::Tcp(tcp.to_header()), tcp.payload().to_vec()),
        Some(TransportSlice::Udp(udp)) => (L4::Udp(udp.to_header()), udp.payload().to_vec()),
        other => panic!("neither TCP nor UDP: {other:?}"),
    };
    Dissected {
        vlans,
        l2_len,
        ip,
        l4,
        payload,
    }
}

impl L4 {
    pub fn checksum(&self) -> u16 {
        match self {
            L4::Tcp(tcp) => tcp.checksum,
            L4::Udp(udp) => udp.checksum,
        }
    }

    fn set_checksum(&mut self, checksum: u16) {
        match self {
            L4::Tcp(tcp) => tcp.checksum = checksum,
            L4::Udp(udp) => udp.checksum = checksum,
        }
    }

    /// The checksum etherparse computes for this header (its checksum field ignored) over
    /// `ip`'s addresses and `payload`.
    pub fn expected_checksum(&self, ip: &Ip, payload: &[u8]) -> u16 {
        match (self, ip) {
            (L4::Tcp(tcp), Ip::V4(ip)) => tcp.calc_checksum_ipv4(ip, payload),
            (L4::Tcp(tcp), Ip::V6(ip)) => tcp.calc_checksum_ipv6(ip, payload),
            (L4::Udp(udp), Ip::V4(ip)) => udp.calc_checksum_ipv4(ip, payload),
            (L4::Udp(udp), Ip::V6(ip)) => udp.calc_checksum_ipv6(ip, payload),
        }
        .expect("transport length fits")
    }
}

/// Whether `ours` is the TCP checksum `expected`: etherparse gives 0 where Linux's
/// `skb_checksum_help` (and `fill_partial`) store 0xffff, the same value in ones' complement.
pub fn same_tcp_checksum(ours: u16, expected: u16) -> bool {
    ours == expected || (ours == 0xffff && expected == 0)
}

/// Checks the segments `original` was cut into with segment size `gso_size`, every header
/// field against the original's as etherparse reads them:
///
/// - there are ceil(payload / gso_size) segments, all full but the last, and their payloads
///   put together are the original payload;
/// - the Ethernet header and VLAN tags are the original's, byte for byte;
/// - IPv4: the original header but for the total length, an id the segment's index above the
///   original's, and a valid header checksum; IPv6: the original but for the payload length;
/// - TCP: the original header but for the sequence number (advanced by the payload before),
///   FIN and PSH (last segment only), CWR (first only) and a valid checksum; UDP: the
///   original but for its length and a valid checksum.
pub fn check_segments(original: &[u8], segments: &[Vec<u8>], gso_size: usize) {
    let orig = dissect(original);
    let header_len = original.len() - orig.payload.len();
    assert_eq!(
        segments.len(),
        orig.payload.len().div_ceil(gso_size).max(1),
        "segment count"
    );
    let mut offset = 0;
    for (index, segment) in segments.iter().enumerate() {
        let (first, last) = (index == 0, index + 1 == segments.len());
        assert!(
            segment.len() <= header_len + gso_size,
            "segment {index} too long"
        );
        let got = dissect(segment);
        assert_eq!(
            &segment[..orig.l2_len],
            &original[..orig.l2_len],
            "segment {index} L2"
        );
        assert_eq!(got.vlans, orig.vlans);

        let chunk_len = got.payload.len();
        assert_eq!(
            got.payload,
            orig.payload[offset..offset + chunk_len],
            "segment {index}"
        );
        if !last {
            assert_eq!(chunk_len, gso_size, "segment {index} is not full");
        }

        let mut ip = orig.ip.clone();
        match &mut ip {
            Ip::V4(ip) => {
                ip.total_len = (segment.len() - orig.l2_len) as u16;
                ip.identification = ip.identification.wrapping_add(index as u16);
                ip.header_checksum = ip.calc_header_checksum();
            }
            Ip::V6(ip) => ip.payload_length = (segment.len() - orig.l2_len - 40) as u16,
        }
        assert_eq!(got.ip, ip, "segment {index} IP header");

        let mut l4 = orig.l4.clone();
        match &mut l4 {
            L4::Tcp(tcp) => {
                tcp.sequence_number = tcp.sequence_number.wrapping_add(offset as u32);
                tcp.fin &= last;
                tcp.psh &= last;
                tcp.cwr &= first;
            }
            L4::Udp(udp) => udp.length = (8 + chunk_len) as u16,
        }
        l4.set_checksum(l4.expected_checksum(&ip, &got.payload));
        assert_eq!(got.l4, l4, "segment {index} transport header");

        offset += chunk_len;
    }
    assert_eq!(offset, orig.payload.len(), "payload bytes");
}

/// Whether `frame`'s IPv4 header checksum (if IPv4) and transport checksum verify over its
/// raw bytes, summed by etherparse: bits etherparse's header types do not model (the IPv4
/// reserved flag, TCP's reserved bits) count too.
pub fn raw_checksums_ok(frame: &[u8]) -> bool {
    let d = dissect(frame);
    let l3 = d.l2_len;
    let (ip_ok, l4, pseudo) = match &d.ip {
        Ip::V4(ip) => {
            let l4 = l3 + ip.header_len();
            let header_ok = Sum16BitWords::new()
                .add_slice(&frame[l3..l4])
                .ones_complement()
                == 0;
            let pseudo = Sum16BitWords::new()
                .add_4bytes(ip.source)
                .add_4bytes(ip.destination)
                .add_2bytes([0, ip.protocol.0])
                .add_2bytes(((frame.len() - l4) as u16).to_be_bytes());
            (header_ok, l4, pseudo)
        }
        Ip::V6(ip) => {
            let l4 = l3 + 40;
            let pseudo = Sum16BitWords::new()
                .add_16bytes(ip.source)
                .add_16bytes(ip.destination)
                .add_4bytes(((frame.len() - l4) as u32).to_be_bytes())
                .add_2bytes([0, ip.next_header.0]);
            (true, l4, pseudo)
        }
    };
    ip_ok && pseudo.add_slice(&frame[l4..]).ones_complement() == 0
}
