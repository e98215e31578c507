//! Test frames, built with etherparse's `PacketBuilder`, and the virtio-net headers a Linux
//! guest would put in front of them.

use etherparse::checksum::Sum16BitWords;
use etherparse::{IpHeaders, Ipv4Header, Ipv6Header, PacketBuilder, TcpHeader, TcpOptions, VlanId};
use proptest::prelude::*;

use crate::offload::{IpVersion, Transport, VirtioNetHdr};

pub const SRC_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
pub const DST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef];
pub const SRC_V4: [u8; 4] = [10, 0, 0, 1];
pub const DST_V4: [u8; 4] = [192, 168, 200, 254];
pub const SRC_V6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const DST_V6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0xfe, 0xdc,
];
/// Outer and inner VLAN ids.
pub const VLAN_IDS: [u16; 2] = [100, 4000];

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;
pub const TCP_URG: u8 = 0x20;
pub const TCP_ECE: u8 = 0x40;
pub const TCP_CWR: u8 = 0x80;

/// A TCP or UDP frame to build.
#[derive(Clone, Debug)]
pub struct FrameSpec {
    /// VLAN tags: 0, 1 (0x8100) or 2 (0x88a8 then 0x8100).
    pub vlans: usize,
    pub ip: IpVersion,
    /// IPv4 options, a multiple of 4 bytes up to 40.
    pub ipv4_options: Vec<u8>,
    pub ip_id: u16,
    pub transport: Transport,
    /// TCP options, a multiple of 4 bytes up to 40.
    pub tcp_options: Vec<u8>,
    /// TCP flag bits (`TCP_*`).
    pub tcp_flags: u8,
    pub seq: u32,
    pub payload_len: usize,
    pub payload_seed: u64,
}

impl FrameSpec {
    /// An untagged frame without options.
    pub fn simple(ip: IpVersion, transport: Transport, payload_len: usize) -> Self {
        FrameSpec {
            vlans: 0,
            ip,
            ipv4_options: Vec::new(),
            ip_id: 0x1234,
            transport,
            tcp_options: Vec::new(),
            tcp_flags: TCP_ACK | TCP_PSH,
            seq: 1_000_000,
            payload_len,
            payload_seed: 7,
        }
    }

    pub fn l2_len(&self) -> usize {
        14 + 4 * self.vlans
    }

    pub fn l3_len(&self) -> usize {
        match self.ip {
            IpVersion::V4 => 20 + self.ipv4_options.len(),
            IpVersion::V6 => 40,
        }
    }

    pub fn l4_len(&self) -> usize {
        match self.transport {
            Transport::Tcp => 20 + self.tcp_options.len(),
            Transport::Udp => 8,
        }
    }

    pub fn l4_offset(&self) -> usize {
        self.l2_len() + self.l3_len()
    }

    pub fn header_len(&self) -> usize {
        self.l4_offset() + self.l4_len()
    }

    /// Where the transport checksum field is in the frame.
    pub fn csum_field(&self) -> usize {
        self.l4_offset() + self.csum_offset()
    }

    pub fn csum_offset(&self) -> usize {
        match self.transport {
            Transport::Tcp => 16,
            Transport::Udp => 6,
        }
    }

    /// The largest payload the IP length field allows with these headers.
    pub fn max_payload_len(&self) -> usize {
        match self.ip {
            IpVersion::V4 => 65_535 - self.l3_len() - self.l4_len(),
            IpVersion::V6 => 65_535 - self.l4_len(),
        }
    }

    pub fn payload(&self) -> Vec<u8> {
        pseudo_random_bytes(self.payload_len, self.payload_seed)
    }

    /// The frame with every checksum correct, as etherparse writes it.
    pub fn build(&self) -> Vec<u8> {
        let ip = match self.ip {
            IpVersion::V4 => {
                let mut header = Ipv4Header::new(0, 64, etherparse::IpNumber::TCP, SRC_V4, DST_V4)
                    .expect("empty payload");
                header.identification = self.ip_id;
                header.options = self.ipv4_options[..].try_into().expect("IPv4 options");
                IpHeaders::Ipv4(header, Default::default())
            }
            IpVersion::V6 => IpHeaders::Ipv6(
                Ipv6Header {
                    hop_limit: 64,
                    source: SRC_V6,
                    destination: DST_V6,
                    ..Default::default()
                },
                Default::default(),
            ),
        };
        let ethernet = PacketBuilder::ethernet2(SRC_MAC, DST_MAC);
        let [outer, inner] = VLAN_IDS.map(|id| VlanId::try_new(id).expect("VLAN id"));
        let builder = match self.vlans {
            0 => ethernet.ip(ip),
            1 => ethernet.single_vlan(outer).ip(ip),
            _ => ethernet.double_vlan(outer, inner).ip(ip),
        };
        let payload = self.payload();
        let mut frame = Vec::with_capacity(self.header_len() + payload.len());
        match self.transport {
            Transport::Tcp => {
                let tcp = self.tcp_header();
                builder.tcp_header(tcp).write(&mut frame, &payload)
            }
            Transport::Udp => builder.udp(5353, 4789).write(&mut frame, &payload),
        }
        .expect("etherparse builds the frame");
        assert_eq!(frame.len(), self.header_len() + payload.len());
        frame
    }

    fn tcp_header(&self) -> TcpHeader {
        let mut tcp = TcpHeader::new(40_000, 5201, self.seq, 64_240);
        let flag = |bit: u8| self.tcp_flags & bit != 0;
        tcp.fin = flag(TCP_FIN);
        tcp.syn = flag(TCP_SYN);
        tcp.rst = flag(TCP_RST);
        tcp.psh = flag(TCP_PSH);
        tcp.ack = flag(TCP_ACK);
        tcp.urg = flag(TCP_URG);
        tcp.ece = flag(TCP_ECE);
        tcp.cwr = flag(TCP_CWR);
        tcp.acknowledgment_number = 0x0102_0304;
        tcp.urgent_pointer = if tcp.urg { 3 } else { 0 };
        tcp.options = TcpOptions::try_from_slice(&self.tcp_options).expect("TCP options");
        tcp
    }

    /// The frame as a Linux guest hands it over with `CHECKSUM_PARTIAL`: the transport
    /// checksum field holds the pseudo-header sum (folded, not complemented).
    pub fn guest_frame(&self) -> Vec<u8> {
        let mut frame = self.build();
        let field = self.csum_field();
        let pseudo = self.pseudo_header_sum(frame.len() - self.l4_offset());
        frame[field..field + 2].copy_from_slice(&pseudo);
        frame
    }

    /// The pseudo-header sum for a transport length, computed with etherparse, as the bytes
    /// a guest stores.
    fn pseudo_header_sum(&self, l4_len: usize) -> [u8; 2] {
        let protocol = match self.transport {
            Transport::Tcp => 6,
            Transport::Udp => 17,
        };
        let sum = match self.ip {
            IpVersion::V4 => Sum16BitWords::new()
                .add_4bytes(SRC_V4)
                .add_4bytes(DST_V4)
                .add_2bytes([0, protocol])
                .add_2bytes((l4_len as u16).to_be_bytes()),
            IpVersion::V6 => Sum16BitWords::new()
                .add_16bytes(SRC_V6)
                .add_16bytes(DST_V6)
                .add_4bytes((l4_len as u32).to_be_bytes())
                .add_2bytes([0, protocol]),
        };
        // etherparse sums native-endian words: the folded sum's native bytes are the
        // big-endian field.
        (!sum.ones_complement()).to_ne_bytes()
    }

    /// `NEEDS_CSUM` at the transport checksum, no segmentation.
    pub fn csum_hdr(&self) -> VirtioNetHdr {
        VirtioNetHdr {
            flags: VirtioNetHdr::F_NEEDS_CSUM,
            csum_start: self.l4_offset() as u16,
            csum_offset: self.csum_offset() as u16,
            ..Default::default()
        }
    }

    /// The header a Linux guest sends with this frame as a GSO burst: `hdr_len` as Linux
    /// sets it (the linear part, here the whole frame), ECN with CWR.
    pub fn gso_hdr(&self, gso_size: u16) -> VirtioNetHdr {
        let gso_type = match (self.transport, self.ip) {
            (Transport::Tcp, IpVersion::V4) => VirtioNetHdr::GSO_TCPV4,
            (Transport::Tcp, IpVersion::V6) => VirtioNetHdr::GSO_TCPV6,
            (Transport::Udp, _) => VirtioNetHdr::GSO_UDP_L4,
        };
        let ecn = self.transport == Transport::Tcp && self.tcp_flags & TCP_CWR != 0;
        VirtioNetHdr {
            gso_type: gso_type | if ecn { VirtioNetHdr::GSO_ECN } else { 0 },
            gso_size,
            hdr_len: (self.header_len() + self.payload_len).min(0xffff) as u16,
            ..self.csum_hdr()
        }
    }
}

/// Deterministic bytes from a seed (xorshift64*), so that a 64 KiB payload shrinks as two
/// numbers.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        bytes.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// Options of 0 to 40 bytes, a multiple of 4, arbitrary content.
fn options() -> impl Strategy<Value = Vec<u8>> {
    (0..=10usize, any::<u64>()).prop_map(|(words, seed)| pseudo_random_bytes(4 * words, seed))
}

/// Any TCP or UDP frame: 0 to 2 VLAN tags, IPv4 with options or IPv6, TCP with options or
/// UDP, any flags, and a payload from `min_payload` bytes up to the IP maximum (small ones
/// often, to hit the edges).
pub fn frame_spec(min_payload: usize) -> impl Strategy<Value = FrameSpec> {
    let ip = prop_oneof![Just(IpVersion::V4), Just(IpVersion::V6)];
    let transport = prop_oneof![Just(Transport::Tcp), Just(Transport::Udp)];
    (
        0..=2usize,
        ip,
        options(),
        any::<u16>(),
        transport,
        options(),
        any::<u8>(),
        any::<u32>(),
        any::<u64>(),
    )
        .prop_flat_map(
            move |(
                vlans,
                ip,
                ipv4_options,
                ip_id,
                transport,
                tcp_options,
                tcp_flags,
                seq,
                seed,
            )| {
                let spec = FrameSpec {
                    vlans,
                    ip,
                    ipv4_options: if ip == IpVersion::V4 {
                        ipv4_options
                    } else {
                        Vec::new()
                    },
                    ip_id,
                    transport,
                    tcp_options: if transport == Transport::Tcp {
                        tcp_options
                    } else {
                        Vec::new()
                    },
                    tcp_flags,
                    seq,
                    payload_len: 0,
                    payload_seed: seed,
                };
                let max = spec.max_payload_len();
                let payload_len = prop_oneof![
                    min_payload..=min_payload + 64,
                    min_payload..=3000,
                    min_payload..=max,
                    Just(max),
                ];
                (Just(spec), payload_len)
            },
        )
        .prop_map(|(spec, payload_len)| FrameSpec {
            payload_len,
            ..spec
        })
}
