//! Frames for `POST /v1/trace`: raw hex, or built from a few header fields (Ethernet, one
//! optional VLAN tag, IPv4 with TCP/UDP/ICMP, or ARP), padded to the 60-byte minimum.

use std::net::Ipv4Addr;

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

/// Builds the frame the fields describe.
pub fn build(f: &FrameFields) -> Result<Vec<u8>, ApiError> {
    let src = mac("fields.eth_src", f.eth_src.as_deref(), [2, 0, 0, 0, 0, 1])?;
    let dst = mac("fields.eth_dst", f.eth_dst.as_deref(), [2, 0, 0, 0, 0, 2])?;
    let proto = match f.ip_proto.as_deref() {
        None => None,
        Some("tcp") => Some(6u8),
        Some("udp") => Some(17),
        Some("icmp") => Some(1),
        Some(t) => Some(u8::try_from(number("fields.ip_proto", t)?).map_err(|_| {
            ApiError::bad("fields.ip_proto", format!("{t:?} is out of range 0..=255"))
        })?),
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
        Some(0x0800)
    } else if arp {
        Some(0x0806)
    } else {
        None
    };
    let eth_type = match (&f.eth_type, implied) {
        (Some(t), imp) => {
            let v = u16::try_from(number("fields.eth_type", t)?)
                .map_err(|_| ApiError::bad("fields.eth_type", format!("{t:?} is out of range")))?;
            if imp.is_some_and(|i| i != v) {
                return Err(ApiError::bad(
                    "fields.eth_type",
                    format!("{t:?} contradicts the IP/ARP fields given"),
                ));
            }
            v
        }
        (None, Some(i)) => i,
        (None, None) => 0x0800,
    };
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&dst);
    out.extend_from_slice(&src);
    if let Some(vid) = f.vlan_vid {
        if vid > 4095 {
            return Err(ApiError::bad(
                "fields.vlan_vid",
                format!("{vid} is out of range 0..=4095"),
            ));
        }
        let pcp = u16::from(f.vlan_pcp.unwrap_or(0).min(7));
        out.extend_from_slice(&0x8100u16.to_be_bytes());
        out.extend_from_slice(&(pcp << 13 | vid).to_be_bytes());
    }
    out.extend_from_slice(&eth_type.to_be_bytes());
    if eth_type == 0x0800 {
        let proto = proto.unwrap_or(17);
        let l4: Vec<u8> = match proto {
            6 => {
                let mut t = vec![0u8; 20];
                t[0..2].copy_from_slice(&f.tp_src.unwrap_or(40000).to_be_bytes());
                t[2..4].copy_from_slice(&f.tp_dst.unwrap_or(80).to_be_bytes());
                t[12] = 5 << 4;
                t[13] = 0x02; // SYN
                t[14..16].copy_from_slice(&65535u16.to_be_bytes());
                t
            }
            17 => {
                let mut u = vec![0u8; 8];
                u[0..2].copy_from_slice(&f.tp_src.unwrap_or(40000).to_be_bytes());
                u[2..4].copy_from_slice(&f.tp_dst.unwrap_or(4000).to_be_bytes());
                u[4..6].copy_from_slice(&8u16.to_be_bytes());
                u
            }
            1 => vec![8, 0, 0, 0, 0, 1, 0, 1], // echo request
            _ => Vec::new(),
        };
        let mut ip = vec![0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = proto;
        ip[12..16].copy_from_slice(&f.ip_src.unwrap_or(Ipv4Addr::new(198, 18, 0, 1)).octets());
        ip[16..20].copy_from_slice(&f.ip_dst.unwrap_or(Ipv4Addr::new(198, 18, 0, 2)).octets());
        let sum = checksum(&ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        out.extend_from_slice(&ip);
        out.extend_from_slice(&l4);
    } else if eth_type == 0x0806 {
        out.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
        out.extend_from_slice(&f.arp_op.unwrap_or(1).to_be_bytes());
        out.extend_from_slice(&src);
        out.extend_from_slice(&f.arp_spa.unwrap_or(Ipv4Addr::new(198, 18, 0, 1)).octets());
        out.extend_from_slice(&[0; 6]);
        out.extend_from_slice(&f.arp_tpa.unwrap_or(Ipv4Addr::new(198, 18, 0, 2)).octets());
    }
    if out.len() < 60 {
        out.resize(60, 0);
    }
    Ok(out)
}

/// The IPv4 header checksum.
fn checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod test {
    use super::*;

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
