//! Frames for `POST /v1/trace`: raw hex, or built from a few header fields (Ethernet, one
//! optional VLAN tag, IPv4 with TCP/UDP/ICMP, or ARP), padded to the 60-byte minimum. The
//! headers are written with `flowtable::wire`'s views (TCP and ICMP, which have no writer
//! there, by offset).

use std::net::Ipv4Addr;

use flowtable::wire::{
    ethernet, ipv4, tcp, udp, vlan, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetPacket,
    EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr, VlanPacket, VlanRepr,
};
use flowtable::{MacAddr, VlanId};
use serde::Deserialize;

use crate::error::ApiError;
use crate::server::limits::{MAX_TRACE_FRAME, MAX_TRACE_HEX};

/// Header fields of a frame to build. Unset fields take harmless defaults.
#[derive(Debug, Default, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FrameFields {
    /// Source MAC (default 02:00:00:00:00:01).
    pub eth_src: Option<String>,
    /// Destination MAC (default 02:00:00:00:00:02).
    pub eth_dst: Option<String>,
    /// 802.1Q VLAN id (no tag when unset).
    pub vlan_vid: Option<u16>,
    /// 802.1Q priority.
    pub vlan_pcp: Option<u8>,
    /// EtherType, e.g. `0x0800`; implied by IP or ARP fields.
    pub eth_type: Option<String>,
    /// IPv4 source (implies IPv4).
    #[schema(value_type = Option<String>)]
    pub ip_src: Option<Ipv4Addr>,
    /// IPv4 destination (implies IPv4).
    #[schema(value_type = Option<String>)]
    pub ip_dst: Option<Ipv4Addr>,
    /// `tcp`, `udp`, `icmp` or a number (implies IPv4).
    pub ip_proto: Option<String>,
    /// TCP/UDP source port.
    pub tp_src: Option<u16>,
    /// TCP/UDP destination port.
    pub tp_dst: Option<u16>,
    /// ARP opcode (1 request, 2 reply; implies ARP).
    pub arp_op: Option<u16>,
    /// ARP sender IPv4 address.
    #[schema(value_type = Option<String>)]
    pub arp_spa: Option<Ipv4Addr>,
    /// ARP target IPv4 address.
    #[schema(value_type = Option<String>)]
    pub arp_tpa: Option<Ipv4Addr>,
}

/// Decodes hex (ASCII whitespace and `:` separators allowed, anywhere) into a frame of 14
/// (an Ethernet header) to [`MAX_TRACE_FRAME`] bytes; the text may be at most
/// [`MAX_TRACE_HEX`] characters (two digits and a separator per byte).
pub fn from_hex(text: &str) -> Result<Vec<u8>, ApiError> {
    if text.len() > MAX_TRACE_HEX {
        return Err(ApiError::bad(
            "hex",
            format!(
                "{} characters is longer than the {MAX_TRACE_HEX} a frame of at most \
                 {MAX_TRACE_FRAME} bytes needs",
                text.len()
            ),
        ));
    }
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b':')
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(ApiError::bad("hex", "odd number of hex digits"));
    }
    let nibble = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = digits
        .chunks(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| ApiError::bad("hex", "not hexadecimal"))?;
    if bytes.len() < 14 {
        return Err(ApiError::bad(
            "hex",
            format!(
                "{} bytes is shorter than an Ethernet header (14)",
                bytes.len()
            ),
        ));
    }
    if bytes.len() > MAX_TRACE_FRAME {
        return Err(ApiError::bad(
            "hex",
            format!(
                "{} bytes is longer than the largest frame ({MAX_TRACE_FRAME} bytes)",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

fn mac(field: &str, text: Option<&str>, default: [u8; 6]) -> Result<[u8; 6], ApiError> {
    let Some(text) = text else { return Ok(default) };
    let parts: Vec<&str> = text.split(':').collect();
    let mut out = [0u8; 6];
    if parts.len() != 6 {
        return Err(ApiError::bad(
            field,
            format!("{text:?} is not a MAC address"),
        ));
    }
    for (o, p) in out.iter_mut().zip(parts) {
        *o = u8::from_str_radix(p, 16)
            .map_err(|_| ApiError::bad(field, format!("{text:?} is not a MAC address")))?;
    }
    Ok(out)
}

fn number(field: &str, text: &str) -> Result<u64, ApiError> {
    let t = text.trim();
    let v = match t.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse(),
    };
    v.map_err(|_| ApiError::bad(field, format!("{text:?} is not a number")))
}

/// The smallest Ethernet frame (without its FCS): shorter frames are padded with zeros.
const MIN_FRAME: usize = 60;

/// Builds the frame the fields describe.
pub fn build(f: &FrameFields) -> Result<Vec<u8>, ApiError> {
    let src = MacAddr(mac(
        "fields.eth_src",
        f.eth_src.as_deref(),
        [2, 0, 0, 0, 0, 1],
    )?);
    let dst = MacAddr(mac(
        "fields.eth_dst",
        f.eth_dst.as_deref(),
        [2, 0, 0, 0, 0, 2],
    )?);
    let proto = match f.ip_proto.as_deref() {
        None => None,
        Some("tcp") => Some(IpProtocol::Tcp),
        Some("udp") => Some(IpProtocol::Udp),
        Some("icmp") => Some(IpProtocol::Icmp),
        Some(t) => Some(IpProtocol::from(
            u8::try_from(number("fields.ip_proto", t)?).map_err(|_| {
                ApiError::bad("fields.ip_proto", format!("{t:?} is out of range 0..=255"))
            })?,
        )),
    };
    let ipv4 = f.ip_src.is_some() || f.ip_dst.is_some() || proto.is_some();
    let arp = f.arp_op.is_some() || f.arp_spa.is_some() || f.arp_tpa.is_some();
    if ipv4 && arp {
        return Err(ApiError::bad(
            "fields",
            "IP and ARP fields cannot be combined",
        ));
    }
    let implied = if ipv4 {
        Some(EtherType::Ipv4)
    } else if arp {
        Some(EtherType::Arp)
    } else {
        None
    };
    let eth_type = match (&f.eth_type, implied) {
        (Some(t), imp) => {
            let v = u16::try_from(number("fields.eth_type", t)?)
                .map_err(|_| ApiError::bad("fields.eth_type", format!("{t:?} is out of range")))?;
            let v = EtherType::from(v);
            if imp.is_some_and(|i| i != v) {
                return Err(ApiError::bad(
                    "fields.eth_type",
                    format!("{t:?} contradicts the IP/ARP fields given"),
                ));
            }
            v
        }
        (None, Some(i)) => i,
        (None, None) => EtherType::Ipv4,
    };
    let tag = match f.vlan_vid {
        None => None,
        Some(vid) => Some(VlanRepr {
            pcp: f.vlan_pcp.unwrap_or(0).min(7),
            dei: false,
            vid: VlanId::new(vid).ok_or_else(|| {
                ApiError::bad("fields.vlan_vid", format!("{vid} is out of range 0..=4095"))
            })?,
            ethertype: eth_type,
        }),
    };
    let payload = match eth_type {
        EtherType::Ipv4 => ipv4_packet(f, proto.unwrap_or(IpProtocol::Udp)),
        EtherType::Arp => arp_packet(f, src),
        _ => Vec::new(),
    };
    let eth = EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype: if tag.is_some() {
            EtherType::Vlan
        } else {
            eth_type
        },
    };
    let mut out = vec![0u8; ethernet::HEADER_LEN];
    eth.emit(&mut EthernetPacket::new_unchecked(&mut out[..]));
    if let Some(tag) = tag {
        let mut t = [0u8; vlan::HEADER_LEN];
        tag.emit(&mut VlanPacket::new_unchecked(&mut t[..]));
        out.extend_from_slice(&t);
    }
    out.extend_from_slice(&payload);
    if out.len() < MIN_FRAME {
        out.resize(MIN_FRAME, 0);
    }
    Ok(out)
}

/// An IPv4 packet (TTL 64, no options) carrying a minimal `proto` header: a TCP SYN, a UDP
/// header with no payload, an ICMP echo request, or nothing for other protocols.
fn ipv4_packet(f: &FrameFields, proto: IpProtocol) -> Vec<u8> {
    let l4: Vec<u8> = match proto {
        IpProtocol::Tcp => {
            // The wire view of TCP reads only: the fields are written by offset.
            let mut t = vec![0u8; tcp::HEADER_LEN];
            t[0..2].copy_from_slice(&f.tp_src.unwrap_or(40000).to_be_bytes());
            t[2..4].copy_from_slice(&f.tp_dst.unwrap_or(80).to_be_bytes());
            // Data offset: 5 words (no options); flags: SYN; window: 65535.
            let off_flags = (5u16 << 12) | tcp::FLAG_SYN;
            t[12..14].copy_from_slice(&off_flags.to_be_bytes());
            t[14..16].copy_from_slice(&65535u16.to_be_bytes());
            t
        }
        IpProtocol::Udp => {
            let mut u = vec![0u8; udp::HEADER_LEN];
            UdpRepr {
                src_port: f.tp_src.unwrap_or(40000),
                dst_port: f.tp_dst.unwrap_or(4000),
                payload_len: 0,
            }
            .emit(&mut UdpPacket::new_unchecked(&mut u[..]));
            u
        }
        // Echo request (type 8, code 0), identifier 1, sequence 1.
        IpProtocol::Icmp => vec![8, 0, 0, 0, 0, 1, 0, 1],
        _ => Vec::new(),
    };
    let ip = Ipv4Repr {
        src_addr: f.ip_src.unwrap_or(Ipv4Addr::new(198, 18, 0, 1)),
        dst_addr: f.ip_dst.unwrap_or(Ipv4Addr::new(198, 18, 0, 2)),
        protocol: proto,
        payload_len: l4.len(),
        ttl: 64,
        tos: 0,
        ident: 0,
        dont_frag: false,
    };
    let mut out = vec![0u8; ip.buffer_len()];
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]));
    out[ipv4::HEADER_LEN..].copy_from_slice(&l4);
    out
}

/// An Ethernet/IPv4 ARP packet from `src` (a request unless `arp_op` says otherwise).
fn arp_packet(f: &FrameFields, src: MacAddr) -> Vec<u8> {
    let repr = ArpRepr {
        operation: ArpOperation::from(f.arp_op.unwrap_or(1)),
        source_hardware_addr: src,
        source_protocol_addr: f.arp_spa.unwrap_or(Ipv4Addr::new(198, 18, 0, 1)),
        target_hardware_addr: MacAddr([0; 6]),
        target_protocol_addr: f.arp_tpa.unwrap_or(Ipv4Addr::new(198, 18, 0, 2)),
    };
    let mut out = vec![0u8; repr.header_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
    out
}

#[cfg(test)]
mod test {
    use super::*;

    /// The IPv4 header checksum over `h`: 0 when `h` holds a correct one.
    fn checksum(h: &[u8]) -> u16 {
        !flowtable::wire::checksum::sum(h)
    }

    #[test]
    fn udp_frame_has_a_valid_ip_checksum() {
        let f = build(&FrameFields {
            vlan_vid: Some(10),
            ip_proto: Some("udp".into()),
            tp_dst: Some(53),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(&f[12..14], &[0x81, 0x00]);
        assert_eq!(&f[16..18], &[0x08, 0x00]);
        assert_eq!(checksum(&f[18..38]), 0);
        assert_eq!(&f[38 + 2..38 + 4], &53u16.to_be_bytes());
    }

    #[test]
    fn hex_needs_whole_bytes_and_a_header() {
        assert!(from_hex("abc").is_err());
        assert!(from_hex("zz").is_err());
        assert!(from_hex("00").is_err());
        assert_eq!(from_hex(&"ab".repeat(14)).unwrap().len(), 14);
        assert_eq!(
            from_hex("ab:cd ef\t01\n02\r03\x0c04 0506070809 0a0b")
                .unwrap()
                .len(),
            14
        );
    }

    #[test]
    fn hex_is_at_most_the_largest_frame() {
        let max = "ab".repeat(MAX_TRACE_FRAME);
        assert_eq!(from_hex(&max).unwrap().len(), MAX_TRACE_FRAME);
        let spaced = "ab ".repeat(MAX_TRACE_FRAME);
        assert_eq!(spaced.len(), MAX_TRACE_HEX);
        assert_eq!(from_hex(&spaced).unwrap().len(), MAX_TRACE_FRAME);
        let e = from_hex(&"ab".repeat(MAX_TRACE_FRAME + 1)).unwrap_err();
        assert!(
            e.body.error.contains("largest frame (65553 bytes)"),
            "{}",
            e.body.error
        );
        let e = from_hex(&format!("{spaced} ")).unwrap_err();
        assert!(
            e.body.error.contains("longer than the 196659"),
            "{}",
            e.body.error
        );
    }
}
