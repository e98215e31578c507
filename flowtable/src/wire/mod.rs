//! Typed, zero-copy views of the headers the switch parses and builds.
//!
//! Each header has its own module with two levels, as in smoltcp:
//! - `Packet<T: AsRef<[u8]>>` wraps a borrowed buffer and has one getter per field (and a
//!   setter per field when `T: AsMut<[u8]>`). Nothing is copied.
//! - `Repr` holds only the values that make sense, with `parse(&Packet)`, `emit(&mut Packet)`
//!   and `header_len()`. Only the headers the switch builds have one: Ethernet, the 802.1Q
//!   tag, Ethernet/IPv4 ARP, IPv4, UDP and VXLAN.
//!
//! Field offsets live in a private `mod field` per module; `HEADER_LEN` is derived from the
//! last fixed field. What every view shares is written once: the `Packet<T>` wrapper, the
//! `check_len` of a fixed-length header or of one whose own field gives its length, the
//! payload after it and one getter and setter per fixed-offset field, each read and written
//! the one way `bytes.rs` says (`packet_view!`, which each module calls with the list of its
//! fields); and the accessors of flag bits (`flag_getters!`, `flag_setters!`). Each module
//! writes out what is its own: a `check_len` that reads more than one length (IPv4, IPv6),
//! other derived fields, and its `Repr`.
//!
//! # The no-panic contract
//!
//! - `Packet::new_unchecked` never panics, and neither does `check_len`.
//! - Once `check_len` has returned `Ok` (as `new_checked` does), no getter panics, and
//!   neither does any setter of a fixed-offset field. Each `check_len` doc lists the setters
//!   that can break its guarantee (for example, a length field set larger than the buffer).
//! - Untrusted input (anything a guest or the wire sent) goes through `new_checked`. Buffers
//!   being emitted into are the switch's own and use `new_unchecked`.
//! - `Repr::emit` into a buffer of at least `Repr::header_len()` bytes never panics; the
//!   payload, where the `Repr` has one, is the caller's to write after it.
//!
//! The flow key extractor ([`crate::key::extract`]) does not build `Packet`s: it is the hot
//! path and reads the same fields straight from the frame, with one bounds check per layer.
//! It follows the same offsets and is tested against these views and against `etherparse`.
//!
//! # Protocol numbers
//!
//! Every EtherType and IP protocol number the switch knows is written once, here:
//! [`EtherType`] and [`IpProtocol`], each variant with an associated `const` of its raw value
//! (`EtherType::IPV4`, `IpProtocol::UDP`) for code that matches raw numbers read from a frame.
//! The rest of the crate names them through these types and defines none of its own.

mod bytes;
mod macros;

pub mod arp;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;
pub mod vlan;
pub mod vxlan;

pub use arp::{Operation as ArpOperation, Packet as ArpPacket, Repr as ArpRepr};
pub use ethernet::{Packet as EthernetPacket, Repr as EthernetRepr};
pub use icmp::Packet as IcmpPacket;
pub use ipv4::{Packet as Ipv4Packet, Repr as Ipv4Repr};
pub use ipv6::{
    ExtHeader as Ipv6ExtHeader, FragmentHeader as Ipv6FragmentHeader, Packet as Ipv6Packet,
};
pub use tcp::Packet as TcpPacket;
pub use udp::{Packet as UdpPacket, Repr as UdpRepr};
pub use vlan::{Packet as VlanPacket, Repr as VlanRepr};
pub use vxlan::{Packet as VxlanPacket, Repr as VxlanRepr};

pub(crate) use bytes::array;
#[cfg(test)]
pub(crate) use macros::header_tests;
pub(crate) use macros::{enum_with_unknown, flag_getters, flag_setters, packet_view};

/// Why a buffer could not be viewed or parsed as a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the header (or than a length field says).
    #[error("buffer too short for the header")]
    Truncated,
    /// A field holds a value the header cannot have (a length below the minimum, a wrong
    /// version, a required flag clear).
    #[error("malformed header")]
    Malformed,
    /// The header is well formed but uses a feature the `Repr` cannot express (for example an
    /// IPv4 fragment, or ARP for a protocol other than Ethernet/IPv4).
    #[error("header valid but not supported")]
    Unsupported,
}

/// The result type of this module.
pub type Result<T> = core::result::Result<T, Error>;

/// The `check_len` of a header whose own field says how long it is (UDP's length, TCP's data
/// offset): `Err(Truncated)` when the buffer is shorter than the fixed part `min`, or than
/// `declared` says; `Err(Malformed)` when `declared` is below `min`. `declared` is read only
/// once the fixed part is known to be in the buffer.
pub(crate) fn check_declared_len(
    buffer_len: usize,
    min: usize,
    declared: impl FnOnce() -> usize,
) -> Result<()> {
    if buffer_len < min {
        return Err(Error::Truncated);
    }
    let declared = declared();
    if declared < min {
        Err(Error::Malformed)
    } else if declared > buffer_len {
        Err(Error::Truncated)
    } else {
        Ok(())
    }
}

enum_with_unknown! {
    /// An Ethernet type: the protocol of what follows an Ethernet header or VLAN tag.
    pub enum EtherType(u16), displayed as "{:#06x}" {
        /// IPv4.
        Ipv4 = IPV4 = 0x0800,
        /// ARP.
        Arp = ARP = 0x0806,
        /// An 802.1Q VLAN tag (C-tag).
        Vlan = VLAN = 0x8100,
        /// An 802.1ad service tag (S-tag, QinQ outer tag).
        QinQ = QINQ = 0x88a8,
        /// IPv6.
        Ipv6 = IPV6 = 0x86dd,
    }
}

impl EtherType {
    /// The smallest EtherType: a type field below it is an 802.3 length (IEEE 802.3 clause
    /// 3.2.6).
    pub const MIN: u16 = 0x0600;

    /// True for the TPIDs that introduce a VLAN tag: 0x8100 and 0x88a8.
    pub fn is_vlan(self) -> bool {
        matches!(self, EtherType::Vlan | EtherType::QinQ)
    }

    /// True for the raw TPIDs that introduce a VLAN tag: [`EtherType::VLAN`] and
    /// [`EtherType::QINQ`]. For code that keeps the raw value (the key extractor).
    #[inline(always)]
    pub const fn is_vlan_raw(raw: u16) -> bool {
        matches!(raw, EtherType::VLAN | EtherType::QINQ)
    }
}

enum_with_unknown! {
    /// An IP protocol number (IPv4 protocol, IPv6 next header).
    pub enum IpProtocol(u8), displayed as "{}" {
        /// IPv6 hop-by-hop options.
        HopByHop = HOP_BY_HOP = 0,
        /// ICMP (for IPv4).
        Icmp = ICMP = 1,
        /// TCP.
        Tcp = TCP = 6,
        /// UDP.
        Udp = UDP = 17,
        /// IPv6 routing header.
        Ipv6Route = IPV6_ROUTE = 43,
        /// IPv6 fragment header.
        Ipv6Frag = IPV6_FRAG = 44,
        /// ICMPv6.
        Icmpv6 = ICMPV6 = 58,
        /// IPv6 "no next header".
        Ipv6NoNxt = IPV6_NO_NXT = 59,
        /// IPv6 destination options.
        Ipv6Opts = IPV6_OPTS = 60,
        /// SCTP.
        Sctp = SCTP = 132,
    }
}

/// The Internet checksum (RFC 1071).
pub mod checksum {
    /// The ones'-complement sum of `data` as 16-bit big-endian words (an odd last byte is
    /// padded with zero), folded to 16 bits, not yet complemented.
    pub fn sum(data: &[u8]) -> u16 {
        let mut acc: u64 = 0;
        let mut chunks = data.chunks_exact(2);
        for c in &mut chunks {
            acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            acc += u64::from(*last) << 8;
        }
        fold(acc)
    }

    /// Adds partial sums (ones'-complement).
    pub fn combine(sums: &[u16]) -> u16 {
        fold(sums.iter().map(|&s| u64::from(s)).sum())
    }

    /// The partial sum of the IPv4 pseudo-header for TCP/UDP.
    pub fn pseudo_header_v4(
        src: core::net::Ipv4Addr,
        dst: core::net::Ipv4Addr,
        protocol: u8,
        length: u16,
    ) -> u16 {
        let s = src.octets();
        let d = dst.octets();
        combine(&[
            u16::from_be_bytes([s[0], s[1]]),
            u16::from_be_bytes([s[2], s[3]]),
            u16::from_be_bytes([d[0], d[1]]),
            u16::from_be_bytes([d[2], d[3]]),
            u16::from(protocol),
            length,
        ])
    }

    fn fold(mut acc: u64) -> u16 {
        while acc >> 16 != 0 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn ether_type_round_trips() {
        assert_eq!(EtherType::from(0x0800), EtherType::Ipv4);
        assert_eq!(EtherType::from(0x1234), EtherType::Unknown(0x1234));
        assert_eq!(u16::from(EtherType::QinQ), 0x88a8);
        assert_eq!(u16::from(EtherType::Unknown(0x1234)), 0x1234);
        assert!(EtherType::Vlan.is_vlan() && EtherType::QinQ.is_vlan());
        assert!(!EtherType::Ipv4.is_vlan());
        assert_eq!(EtherType::Arp.to_string(), "0x0806");
        assert_eq!(EtherType::from(EtherType::IPV6), EtherType::Ipv6);
        assert!(EtherType::is_vlan_raw(EtherType::VLAN) && EtherType::is_vlan_raw(0x88a8));
        assert!(!EtherType::is_vlan_raw(EtherType::IPV4));
    }

    #[test]
    fn ip_protocol_round_trips() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(IpProtocol::from(v)), v);
        }
        assert_eq!(IpProtocol::from(17), IpProtocol::Udp);
        assert_eq!(IpProtocol::from(200), IpProtocol::Unknown(200));
        assert_eq!(u8::from(IpProtocol::Sctp), IpProtocol::SCTP);
    }

    #[test]
    fn checksum_rfc1071_example() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2.
        assert_eq!(
            checksum::sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
        assert_eq!(checksum::sum(&[0xff]), 0xff00);
        assert_eq!(checksum::combine(&[0xffff, 0x0001]), 0x0001);
    }
}
