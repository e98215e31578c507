//! The headers of a frame a guest asked to offload, parsed from its bytes: Ethernet, up to
//! two VLAN tags, IPv4 (options included) or IPv6 (no extension headers), TCP (options
//! included) or UDP.
//!
//! Every length here comes from the frame, and every read is checked against the frame's
//! length first: a hostile frame gives an [`OffloadError`], never a panic.

use std::fmt;

use super::error::{FrameMismatch, OffloadError};

/// Ethernet header: two MAC addresses and the ethertype.
const ETHERNET_HEADER_LEN: usize = 14;
/// An 802.1Q / 802.1ad tag: TPID (read as the ethertype before it) and TCI, then the next
/// ethertype.
const VLAN_TAG_LEN: usize = 4;
/// Tags a frame may carry (QinQ).
const MAX_VLAN_TAGS: usize = 2;
/// 802.1Q customer VLAN tag.
const ETHERTYPE_VLAN: u16 = 0x8100;
/// 802.1ad service VLAN tag (QinQ outer).
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;

const IPV4_MIN_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;
/// The IPv4 flags and fragment offset field, without DF: MF and the offset.
const IPV4_FRAGMENT_MASK: u16 = 0x3fff;

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
/// IPv6 extension headers (IANA "IPv6 Extension Header Types"): hop-by-hop, routing,
/// fragment, ESP, AH, destination options, mobility, HIP, shim6, and the two experimental.
const IPV6_EXTENSION_HEADERS: [u8; 11] = [0, 43, 44, 50, 51, 60, 135, 139, 140, 253, 254];

const TCP_MIN_HEADER_LEN: usize = 20;
const UDP_HEADER_LEN: usize = 8;

/// The IP version of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpVersion {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl fmt::Display for IpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpVersion::V4 => "IPv4",
            IpVersion::V6 => "IPv6",
        })
    }
}

/// The transport protocol of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Transport {
    /// Where the checksum field is in the transport header: `csum_offset`.
    pub fn csum_offset(self) -> usize {
        match self {
            Transport::Tcp => 16,
            Transport::Udp => 6,
        }
    }

    /// The IP protocol number.
    pub fn protocol(self) -> u8 {
        match self {
            Transport::Tcp => IPPROTO_TCP,
            Transport::Udp => IPPROTO_UDP,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "TCP",
            Transport::Udp => "UDP",
        })
    }
}

/// A header of a frame, to say which one was cut short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// The Ethernet header.
    Ethernet,
    /// A VLAN tag.
    Vlan,
    /// The IPv4 header, options included.
    Ipv4,
    /// The IPv6 header.
    Ipv6,
    /// The TCP header, options included.
    Tcp,
    /// The UDP header.
    Udp,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Ethernet => "Ethernet",
            Layer::Vlan => "VLAN",
            Layer::Ipv4 => "IPv4",
            Layer::Ipv6 => "IPv6",
            Layer::Tcp => "TCP",
            Layer::Udp => "UDP",
        })
    }
}

/// Where the headers of a TCP or UDP frame are, as parsed from the frame by
/// [`Headers::parse`].
///
/// Layout: `[0, l2_len)` Ethernet and VLAN tags, `[l3_offset, l4_offset)` IP,
/// `[l4_offset, header_len)` TCP or UDP, then the payload to the end of the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headers {
    l2_len: usize,
    ip: IpVersion,
    l3_len: usize,
    transport: Transport,
    l4_len: usize,
    frame_len: usize,
}

impl Headers {
    /// Parses a TCP or UDP frame: Ethernet, up to two VLAN tags, IPv4 (not a fragment) or
    /// IPv6 (no extension header), TCP or UDP. The IP (and UDP) length fields must give the
    /// frame's length exactly.
    pub fn parse(frame: &[u8]) -> Result<Self, OffloadError> {
        let (l2_len, ethertype) = parse_link(frame)?;
        let network = parse_network(frame, l2_len, ethertype)?;
        let transport = network
            .transport()?
            .ok_or(OffloadError::UnsupportedTransport {
                protocol: network.protocol,
            })?;
        let l4_offset = l2_len + network.header_len;
        let l4_len = parse_transport(frame, l4_offset, transport)?;
        Ok(Headers {
            l2_len,
            ip: network.ip,
            l3_len: network.header_len,
            transport,
            l4_len,
            frame_len: frame.len(),
        })
    }

    /// Length of the Ethernet header and VLAN tags.
    pub fn l2_len(&self) -> usize {
        self.l2_len
    }

    /// The IP version.
    pub fn ip(&self) -> IpVersion {
        self.ip
    }

    /// Length of the IP header (IPv4 options included).
    pub fn l3_len(&self) -> usize {
        self.l3_len
    }

    /// The transport protocol.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Length of the transport header (TCP options included).
    pub fn l4_len(&self) -> usize {
        self.l4_len
    }

    /// Where the IP header starts.
    pub fn l3_offset(&self) -> usize {
        self.l2_len
    }

    /// Where the transport header starts.
    pub fn l4_offset(&self) -> usize {
        self.l2_len + self.l3_len
    }

    /// Length of all the headers, Ethernet to transport: where the payload starts.
    pub fn header_len(&self) -> usize {
        self.l4_offset() + self.l4_len
    }

    /// Length of the payload after the transport header.
    pub fn payload_len(&self) -> usize {
        self.frame_len - self.header_len()
    }

    /// Length of the frame the headers were parsed from.
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// Checks that `frame` can be the frame these headers were parsed from (it has its
    /// length), so that every offset above is inside it.
    pub(super) fn check_frame(&self, frame: &[u8]) -> Result<(), FrameMismatch> {
        if frame.len() == self.frame_len {
            Ok(())
        } else {
            Err(FrameMismatch {
                len: frame.len(),
                expected: self.frame_len,
            })
        }
    }
}

/// The IP header of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Network {
    /// The IP version.
    pub ip: IpVersion,
    /// Its length, options included.
    pub header_len: usize,
    /// The IPv4 protocol or IPv6 next header field.
    pub protocol: u8,
}

impl Network {
    /// The transport protocol after the IP header: TCP, UDP, or `None` for another one. An
    /// IPv6 extension header is an error: the protocol after it is not looked for.
    pub fn transport(&self) -> Result<Option<Transport>, OffloadError> {
        match self.protocol {
            IPPROTO_TCP => Ok(Some(Transport::Tcp)),
            IPPROTO_UDP => Ok(Some(Transport::Udp)),
            next_header
                if self.ip == IpVersion::V6 && IPV6_EXTENSION_HEADERS.contains(&next_header) =>
            {
                Err(OffloadError::Ipv6ExtensionHeader { next_header })
            }
            _ => Ok(None),
        }
    }
}

/// Reads the big-endian 16-bit word at `at`; the caller has checked the bounds.
fn be16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

/// Fails with [`OffloadError::Truncated`] unless `frame` has at least `need` bytes.
fn need(frame: &[u8], need: usize, layer: Layer) -> Result<(), OffloadError> {
    if frame.len() >= need {
        Ok(())
    } else {
        Err(OffloadError::Truncated {
            layer,
            need,
            have: frame.len(),
        })
    }
}

fn is_vlan_tpid(ethertype: u16) -> bool {
    ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ
}

/// Parses the Ethernet header and up to two VLAN tags (0x8100 or 0x88a8, in any order):
/// their length and the ethertype after them.
pub(super) fn parse_link(frame: &[u8]) -> Result<(usize, u16), OffloadError> {
    need(frame, ETHERNET_HEADER_LEN, Layer::Ethernet)?;
    let mut len = ETHERNET_HEADER_LEN;
    let mut ethertype = be16(frame, len - 2);
    for _ in 0..MAX_VLAN_TAGS {
        if !is_vlan_tpid(ethertype) {
            break;
        }
        need(frame, len + VLAN_TAG_LEN, Layer::Vlan)?;
        len += VLAN_TAG_LEN;
        ethertype = be16(frame, len - 2);
    }
    if is_vlan_tpid(ethertype) {
        return Err(OffloadError::TooManyVlanTags);
    }
    Ok((len, ethertype))
}

/// Parses the IP header at `l3_offset`, under `ethertype`.
pub(super) fn parse_network(
    frame: &[u8],
    l3_offset: usize,
    ethertype: u16,
) -> Result<Network, OffloadError> {
    match ethertype {
        ETHERTYPE_IPV4 => parse_ipv4(frame, l3_offset),
        ETHERTYPE_IPV6 => parse_ipv6(frame, l3_offset),
        ethertype => Err(OffloadError::NotIp { ethertype }),
    }
}

fn parse_ipv4(frame: &[u8], l3_offset: usize) -> Result<Network, OffloadError> {
    need(frame, l3_offset + IPV4_MIN_HEADER_LEN, Layer::Ipv4)?;
    let packet = &frame[l3_offset..];
    let version = packet[0] >> 4;
    if version != 4 {
        return Err(OffloadError::IpVersionMismatch {
            ethertype: ETHERTYPE_IPV4,
            version,
        });
    }
    let ihl = packet[0] & 0x0f;
    if usize::from(ihl) * 4 < IPV4_MIN_HEADER_LEN {
        return Err(OffloadError::Ipv4IhlTooShort { ihl });
    }
    let header_len = usize::from(ihl) * 4;
    need(frame, l3_offset + header_len, Layer::Ipv4)?;
    let total_len = usize::from(be16(packet, 2));
    if total_len != packet.len() {
        return Err(OffloadError::IpLengthMismatch {
            header: total_len,
            frame: packet.len(),
        });
    }
    if be16(packet, 6) & IPV4_FRAGMENT_MASK != 0 {
        return Err(OffloadError::Ipv4Fragment);
    }
    Ok(Network {
        ip: IpVersion::V4,
        header_len,
        protocol: packet[9],
    })
}

fn parse_ipv6(frame: &[u8], l3_offset: usize) -> Result<Network, OffloadError> {
    need(frame, l3_offset + IPV6_HEADER_LEN, Layer::Ipv6)?;
    let packet = &frame[l3_offset..];
    let version = packet[0] >> 4;
    if version != 6 {
        return Err(OffloadError::IpVersionMismatch {
            ethertype: ETHERTYPE_IPV6,
            version,
        });
    }
    let total_len = IPV6_HEADER_LEN + usize::from(be16(packet, 4));
    if total_len != packet.len() {
        return Err(OffloadError::IpLengthMismatch {
            header: total_len,
            frame: packet.len(),
        });
    }
    Ok(Network {
        ip: IpVersion::V6,
        header_len: IPV6_HEADER_LEN,
        protocol: packet[6],
    })
}

/// Parses the transport header at `l4_offset`: its length.
pub(super) fn parse_transport(
    frame: &[u8],
    l4_offset: usize,
    transport: Transport,
) -> Result<usize, OffloadError> {
    match transport {
        Transport::Tcp => {
            need(frame, l4_offset + TCP_MIN_HEADER_LEN, Layer::Tcp)?;
            let data_offset = frame[l4_offset + 12] >> 4;
            let header_len = usize::from(data_offset) * 4;
            if header_len < TCP_MIN_HEADER_LEN {
                return Err(OffloadError::TcpDataOffsetTooShort { data_offset });
            }
            need(frame, l4_offset + header_len, Layer::Tcp)?;
            Ok(header_len)
        }
        Transport::Udp => {
            need(frame, l4_offset + UDP_HEADER_LEN, Layer::Udp)?;
            let udp_len = usize::from(be16(frame, l4_offset + 4));
            let datagram_len = frame.len() - l4_offset;
            if udp_len != datagram_len {
                return Err(OffloadError::UdpLengthMismatch {
                    header: udp_len,
                    frame: datagram_len,
                });
            }
            Ok(UDP_HEADER_LEN)
        }
    }
}
