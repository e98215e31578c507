//! Matches: values + masks over a [`FlowKey`], and their text syntax.
//!
//! A [`Match`] is a `(value, mask)` pair of flow keys with `value & mask == value`; a key
//! matches when `key & mask == value` (a word-wise compare, the hot path).
//!
//! # Text syntax
//!
//! The syntax follows `ovs-ofctl` where one exists: a comma-separated list of `field=value`
//! (`in_port=1,eth_type=0x0800,ip_dst=10.0.0.0/24`), or `any` for the match that matches
//! everything. The `ovs-ofctl` shorthands `ip`, `ipv6`, `arp`, `tcp`, `udp`, `sctp`, `icmp`,
//! `tcp6`, `udp6`, `sctp6` and `icmp6` are accepted as entries too. See [`Field`] for the
//! fields and the value syntax of each.
//!
//! Some fields share key storage, as in Open vSwitch (see [`crate::key`]): ARP's `arp_spa`,
//! `arp_tpa` and `arp_op` live in `ip_src`, `ip_dst` and `ip_proto`, and `icmp_type`/`icmp_code`
//! in `tp_src`/`tp_dst`. Which name a set of mask bits has is decided by the match's
//! `eth_type` and `ip_proto` (ARP names when `eth_type=0x0806`, ICMP names when `ip_proto` is 1
//! or 58), so [`Match::fields`], [`Display`](fmt::Display) and
//! [`Match::check_prerequisites`] derive everything from the mask bits alone.
//!
//! Parsing does not check prerequisites (so that any match renders and parses back); callers
//! installing a rule call [`Match::check_prerequisites`].

pub(crate) mod parse;

use core::fmt;
use core::str::FromStr;

use crate::key::{FlowKey, FRAG_ANY, FRAG_LATER, VLAN_PCP_MASK, VLAN_PRESENT, VLAN_VID_MASK};
use crate::types::PortNo;
use crate::wire::{EtherType, IpProtocol};

use self::parse::Suggestion;

const TOS_DSCP: u8 = 0xfc;
const TOS_ECN: u8 = 0x03;
const VNI_FULL: u64 = 0x00ff_ffff;

macro_rules! fields {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// A field a rule can match on. The doc of each variant gives its text syntax.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Field {
            $($(#[$doc])* $variant,)*
        }

        impl Field {
            /// Every field, in the order [`Match`]'s text form lists them.
            pub const ALL: &'static [Field] = &[$(Field::$variant,)*];

            /// The field's canonical text name.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Field::$variant => $name,)*
                }
            }
        }
    };
}

fields! {
    /// `in_port`: a decimal port number (port names are mapped by the switch).
    InPort = "in_port",
    /// `eth_src`: `52:54:00:12:34:56`, optionally `/ff:ff:ff:00:00:00`.
    EthSrc = "eth_src",
    /// `eth_dst`: as `eth_src`.
    EthDst = "eth_dst",
    /// `eth_type`: `0x0800`, `2048`, or `ipv4`/`ip`, `ipv6`, `arp`.
    EthType = "eth_type",
    /// `vlan_vid`: `0..=4095` (tagged with that VID), `none` (untagged), `any` (any tag), or a
    /// masked VID `0x100/0xf00` (tagged).
    VlanVid = "vlan_vid",
    /// `vlan_pcp`: `0..=7`; implies tagged.
    VlanPcp = "vlan_pcp",
    /// `ip_src`: `198.18.0.1`, `198.18.0.0/15` or `198.18.0.0/255.254.0.0`. Needs IPv4.
    IpSrc = "ip_src",
    /// `ip_dst`: as `ip_src`. Needs IPv4.
    IpDst = "ip_dst",
    /// `ipv6_src`: `2001:db8::1` or `2001:db8::/32`. Needs IPv6.
    Ipv6Src = "ipv6_src",
    /// `ipv6_dst`: as `ipv6_src`. Needs IPv6.
    Ipv6Dst = "ipv6_dst",
    /// `ip_proto`: `0..=255` or `tcp`, `udp`, `icmp`, `icmpv6`, `sctp`. Needs IPv4 or IPv6.
    IpProto = "ip_proto",
    /// `ip_dscp`: `0..=63` (TOS >> 2). Needs IPv4 or IPv6.
    IpDscp = "ip_dscp",
    /// `ip_ecn`: `0..=3`. Needs IPv4 or IPv6.
    IpEcn = "ip_ecn",
    /// `ip_ttl`: `0..=255`. Needs IPv4 or IPv6.
    IpTtl = "ip_ttl",
    /// `ip_frag`: `no`, `yes`, `first`, `later`, `not_later` (OVS `nw_frag`). Needs IPv4 or IPv6.
    IpFrag = "ip_frag",
    /// `tp_src`: `0..=65535`, or masked `0x1000/0xf000`. Needs `ip_proto` tcp, udp or sctp.
    TpSrc = "tp_src",
    /// `tp_dst`: as `tp_src`.
    TpDst = "tp_dst",
    /// `icmp_type`: `0..=255`. Needs `ip_proto=1` with IPv4 or `ip_proto=58` with IPv6.
    IcmpType = "icmp_type",
    /// `icmp_code`: as `icmp_type`.
    IcmpCode = "icmp_code",
    /// `arp_op`: `0..=255`. Needs `eth_type=0x0806`.
    ArpOp = "arp_op",
    /// `arp_spa`: an IPv4 address or prefix, as `ip_src`. Needs `eth_type=0x0806`.
    ArpSpa = "arp_spa",
    /// `arp_tpa`: as `arp_spa`.
    ArpTpa = "arp_tpa",
    /// `arp_sha`: a MAC address, optionally masked. Needs `eth_type=0x0806`.
    ArpSha = "arp_sha",
    /// `arp_tha`: as `arp_sha`.
    ArpTha = "arp_tha",
    /// `tun_id`: a VNI `0..=16777215`, optionally masked (`0x100/0xf00`).
    TunId = "tun_id",
    /// `tun_src`: an IPv4 address or prefix (outer source of a decapsulated frame).
    TunSrc = "tun_src",
    /// `tun_dst`: as `tun_src`.
    TunDst = "tun_dst",
}

impl Field {
    /// The field named `name`: a canonical name, or one of the older `ovs-ofctl` aliases
    /// (`dl_src`, `dl_dst`, `dl_type`, `nw_src`, `nw_dst`, `nw_proto`, `nw_ttl`, `nw_ecn`,
    /// `nw_frag`, `icmpv6_type`, `icmpv6_code`, `tunnel_id`).
    pub fn from_name(name: &str) -> Option<Field> {
        if let Some(&f) = Field::ALL.iter().find(|f| f.name() == name) {
            return Some(f);
        }
        Some(match name {
            "dl_src" => Field::EthSrc,
            "dl_dst" => Field::EthDst,
            "dl_type" => Field::EthType,
            "nw_src" => Field::IpSrc,
            "nw_dst" => Field::IpDst,
            "nw_proto" => Field::IpProto,
            "nw_ttl" => Field::IpTtl,
            "nw_ecn" => Field::IpEcn,
            "nw_frag" => Field::IpFrag,
            "icmpv6_type" => Field::IcmpType,
            "icmpv6_code" => Field::IcmpCode,
            "tunnel_id" => Field::TunId,
            _ => return None,
        })
    }

    /// The canonical field name closest to `name` (within edit distance 2), if any.
    pub fn suggest(name: &str) -> Option<&'static str> {
        parse::did_you_mean(name, Field::ALL.iter().map(|f| f.name()))
    }

    /// The error for an unknown field name.
    fn unknown(name: &str) -> MatchError {
        MatchError::UnknownField(name.to_string())
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a match was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// A field name that is not a [`Field`]. The message suggests a field name within edit
    /// distance 2, if there is one.
    #[error("unknown match field {name:?}{hint}", name = .0, hint = Suggestion(Field::suggest(.0)))]
    UnknownField(String),
    /// A value the field's syntax refuses.
    #[error("{field}: {text:?}: {reason}")]
    InvalidValue {
        /// The field being set.
        field: Field,
        /// The value as written.
        text: String,
        /// Why it was refused.
        reason: String,
    },
    /// Match text that is not a `field=value` list.
    #[error("{text:?}: {reason}")]
    Syntax {
        /// The offending text (the whole match, or one entry).
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A field is set without the fields it depends on (e.g. `ip_dst` without IPv4).
    #[error("{field} requires {needs}")]
    Prerequisite {
        /// The field whose prerequisite is missing.
        field: Field,
        /// What it needs, e.g. `eth_type=0x0800 (ipv4)`.
        needs: &'static str,
    },
}

/// What a rule matches: `key & mask == value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Match {
    value: FlowKey,
    mask: FlowKey,
}

impl Match {
    /// The match that matches everything.
    pub fn any() -> Match {
        Match::default()
    }

    /// A match from a value and a mask; the value is masked (`value & mask`) so the invariant
    /// holds whatever bits the caller left outside the mask.
    pub fn from_parts(value: FlowKey, mask: FlowKey) -> Match {
        Match {
            value: value.masked(&mask),
            mask,
        }
    }

    /// The (already masked) values.
    pub fn value(&self) -> &FlowKey {
        &self.value
    }

    /// The mask.
    pub fn mask(&self) -> &FlowKey {
        &self.mask
    }

    /// True for the match that matches everything (an all-zero mask).
    pub fn is_any(&self) -> bool {
        self.mask == FlowKey::ZERO
    }

    /// Matches frames that arrived on `port`.
    pub fn set_in_port(&mut self, port: PortNo) {
        self.value.set_in_port(port);
        self.mask.set_in_port_raw(u32::MAX);
    }

    /// Sets `field` from its text form (e.g. `"10.0.0.0/24"`, `"0x0800"`; see [`Field`]),
    /// replacing any earlier setting of the same field. On error the match is unchanged.
    /// Prerequisites are not checked here: see [`Match::check_prerequisites`].
    pub fn set(&mut self, field: Field, text: &str) -> Result<(), MatchError> {
        let err = |reason: String| MatchError::InvalidValue {
            field,
            text: text.to_string(),
            reason,
        };
        let t = text.trim();
        let (v, m) = (&mut self.value, &mut self.mask);
        match field {
            Field::InPort => {
                let p = parse::decimal(t, u32::MAX as u64, "port number").map_err(err)?;
                v.set_in_port_raw(p as u32);
                m.set_in_port_raw(u32::MAX);
            }
            Field::EthSrc | Field::EthDst | Field::ArpSha | Field::ArpTha => {
                let (val, msk) = parse::mac_masked(t).map_err(err)?;
                let set: fn(&mut FlowKey, u64) = match field {
                    Field::EthSrc => FlowKey::set_eth_src_raw,
                    Field::EthDst => FlowKey::set_eth_dst_raw,
                    Field::ArpSha => FlowKey::set_arp_sha_raw,
                    _ => FlowKey::set_arp_tha_raw,
                };
                set(v, val);
                set(m, msk);
            }
            Field::EthType => {
                let et = match t {
                    "ipv4" | "ip" => EtherType::IPV4,
                    "ipv6" => EtherType::IPV6,
                    "arp" => EtherType::ARP,
                    _ => parse::number(t, 0xffff, "eth_type").map_err(|r| {
                        err(if r.starts_with("expected") {
                            "expected a number 0..=0xffff or ipv4, ip, ipv6, arp".to_string()
                        } else {
                            r
                        })
                    })? as u16,
                };
                v.set_eth_type(et);
                m.set_eth_type(0xffff);
            }
            Field::VlanVid => {
                let (vt, mt) = (v.vlan_tci(), m.vlan_tci());
                let (nv, nm) = match t {
                    "none" => (0, VLAN_PRESENT),
                    "any" => (
                        vt & VLAN_PCP_MASK | VLAN_PRESENT,
                        mt & VLAN_PCP_MASK | VLAN_PRESENT,
                    ),
                    _ if t.contains('/') => {
                        let (vid, vm) = parse::masked_number(t, VLAN_VID_MASK as u64, "VLAN id")
                            .map_err(err)?;
                        (
                            vt & VLAN_PCP_MASK | VLAN_PRESENT | vid as u16,
                            mt & VLAN_PCP_MASK | VLAN_PRESENT | vm as u16,
                        )
                    }
                    _ => {
                        let vid =
                            parse::number(t, VLAN_VID_MASK as u64, "VLAN id").map_err(|r| {
                                err(if r.starts_with("expected") {
                                    "expected a VLAN id 0..=4095, none or any".to_string()
                                } else {
                                    r
                                })
                            })?;
                        (
                            vt & VLAN_PCP_MASK | VLAN_PRESENT | vid as u16,
                            mt & VLAN_PCP_MASK | VLAN_PRESENT | VLAN_VID_MASK,
                        )
                    }
                };
                v.set_vlan_tci(nv);
                m.set_vlan_tci(nm);
            }
            Field::VlanPcp => {
                let pcp = parse::number(t, 7, "VLAN priority").map_err(err)? as u16;
                let (vt, mt) = (v.vlan_tci(), m.vlan_tci());
                v.set_vlan_tci(vt & !VLAN_PCP_MASK | pcp << 13 | VLAN_PRESENT);
                m.set_vlan_tci(mt | VLAN_PCP_MASK | VLAN_PRESENT);
            }
            Field::IpSrc
            | Field::IpDst
            | Field::ArpSpa
            | Field::ArpTpa
            | Field::TunSrc
            | Field::TunDst => {
                let (val, msk) = parse::ipv4_masked(t).map_err(err)?;
                let set: fn(&mut FlowKey, u32) = match field {
                    Field::IpSrc | Field::ArpSpa => FlowKey::set_ip_src,
                    Field::IpDst | Field::ArpTpa => FlowKey::set_ip_dst,
                    Field::TunSrc => FlowKey::set_tun_src,
                    _ => FlowKey::set_tun_dst,
                };
                set(v, val);
                set(m, msk);
            }
            Field::Ipv6Src | Field::Ipv6Dst => {
                let (val, msk) = parse::ipv6_masked(t).map_err(err)?;
                let set: fn(&mut FlowKey, u128) = if field == Field::Ipv6Src {
                    FlowKey::set_ipv6_src
                } else {
                    FlowKey::set_ipv6_dst
                };
                set(v, val);
                set(m, msk);
            }
            Field::IpProto | Field::ArpOp => {
                let p = match (field, t) {
                    (Field::IpProto, "tcp") => IpProtocol::TCP,
                    (Field::IpProto, "udp") => IpProtocol::UDP,
                    (Field::IpProto, "icmp") => IpProtocol::ICMP,
                    (Field::IpProto, "icmpv6") => IpProtocol::ICMPV6,
                    (Field::IpProto, "sctp") => IpProtocol::SCTP,
                    (Field::IpProto, _) => parse::number(t, 255, "ip_proto").map_err(|r| {
                        err(if r.starts_with("expected") {
                            "expected a number 0..=255 or tcp, udp, icmp, icmpv6, sctp".to_string()
                        } else {
                            r
                        })
                    })? as u8,
                    _ => parse::number(t, 255, "ARP opcode").map_err(err)? as u8,
                };
                v.set_ip_proto(p);
                m.set_ip_proto(0xff);
            }
            Field::IpDscp | Field::IpEcn => {
                let (bits, max, shift, what) = if field == Field::IpDscp {
                    (TOS_DSCP, 63, 2, "DSCP")
                } else {
                    (TOS_ECN, 3, 0, "ECN")
                };
                let x = parse::number(t, max, what).map_err(err)? as u8;
                v.set_ip_tos(v.ip_tos() & !bits | x << shift);
                m.set_ip_tos(m.ip_tos() | bits);
            }
            Field::IpTtl => {
                let ttl = parse::number(t, 255, "TTL").map_err(err)? as u8;
                v.set_ip_ttl(ttl);
                m.set_ip_ttl(0xff);
            }
            Field::IpFrag => {
                let (fv, fm) = match t {
                    "no" => (0, FRAG_ANY),
                    "yes" => (FRAG_ANY, FRAG_ANY),
                    "first" => (FRAG_ANY, FRAG_ANY | FRAG_LATER),
                    "later" => (FRAG_ANY | FRAG_LATER, FRAG_ANY | FRAG_LATER),
                    "not_later" => (0, FRAG_LATER),
                    _ => return Err(err("expected no, yes, first, later or not_later".into())),
                };
                v.set_ip_frag(fv);
                m.set_ip_frag(fm);
            }
            Field::TpSrc | Field::TpDst | Field::IcmpType | Field::IcmpCode => {
                let (val, msk) = match field {
                    Field::TpSrc | Field::TpDst => {
                        parse::masked_number(t, 0xffff, "port").map_err(err)?
                    }
                    Field::IcmpType => (parse::number(t, 255, "ICMP type").map_err(err)?, 0xffff),
                    _ => (parse::number(t, 255, "ICMP code").map_err(err)?, 0xffff),
                };
                let set: fn(&mut FlowKey, u16) = match field {
                    Field::TpSrc | Field::IcmpType => FlowKey::set_tp_src,
                    _ => FlowKey::set_tp_dst,
                };
                set(v, val as u16);
                set(m, msk as u16);
            }
            Field::TunId => {
                let (val, msk) = parse::masked_number(t, VNI_FULL, "VNI").map_err(err)?;
                v.set_tun_id(val as u32);
                m.set_tun_id(msk as u32);
            }
        }
        self.value = self.value.masked(&self.mask);
        Ok(())
    }

    /// `eth_type`, when matched exactly.
    fn eth_type(&self) -> Option<u16> {
        (self.mask.eth_type() == 0xffff).then(|| self.value.eth_type())
    }

    /// `ip_proto`, when matched exactly.
    fn ip_proto(&self) -> Option<u8> {
        (self.mask.ip_proto() == 0xff).then(|| self.value.ip_proto())
    }

    fn is_ip(&self) -> bool {
        matches!(self.eth_type(), Some(EtherType::IPV4 | EtherType::IPV6))
    }

    /// ARP names for the shared `ip_src`/`ip_dst`/`ip_proto` storage.
    fn is_arp(&self) -> bool {
        self.eth_type() == Some(EtherType::ARP)
    }

    /// ICMP names for the shared `tp_src`/`tp_dst` storage.
    fn names_icmp(&self) -> bool {
        !self.is_arp() && matches!(self.ip_proto(), Some(IpProtocol::ICMP | IpProtocol::ICMPV6))
    }

    /// `tp_src`/`tp_dst` bits rendered as an ICMP type/code, if they are one.
    fn icmp_text(&self, v: u16, m: u16) -> Option<String> {
        (self.names_icmp() && m == 0xffff && v <= 0xff).then(|| v.to_string())
    }

    /// The canonical text of `field`, if its mask bits are set (under its name: see the module
    /// doc for fields that share storage).
    fn field_text(&self, field: Field) -> Option<String> {
        let (v, m) = (&self.value, &self.mask);
        let mac = |vv: u64, mm: u64| (mm != 0).then(|| parse::fmt_mac(vv, mm));
        let ip4 = |vv: u32, mm: u32| (mm != 0).then(|| parse::fmt_ipv4(vv, mm));
        let ip6 = |vv: u128, mm: u128| (mm != 0).then(|| parse::fmt_ipv6(vv, mm));
        match field {
            Field::InPort => (m.in_port_raw() != 0).then(|| v.in_port_raw().to_string()),
            Field::EthSrc => mac(v.eth_src_raw(), m.eth_src_raw()),
            Field::EthDst => mac(v.eth_dst_raw(), m.eth_dst_raw()),
            Field::EthType => (m.eth_type() != 0).then(|| format!("{:#06x}", v.eth_type())),
            Field::VlanVid => {
                let (vt, mt) = (v.vlan_tci(), m.vlan_tci());
                let (vid, vid_mask) = (vt & VLAN_VID_MASK, mt & VLAN_VID_MASK);
                if mt & VLAN_PRESENT == 0 {
                    None
                } else if vt & VLAN_PRESENT == 0 {
                    Some("none".to_string())
                } else if vid_mask == VLAN_VID_MASK {
                    Some(vid.to_string())
                } else if vid_mask != 0 {
                    Some(format!("{vid:#x}/{vid_mask:#x}"))
                } else if mt & VLAN_PCP_MASK == 0 {
                    Some("any".to_string())
                } else {
                    None // vlan_pcp implies tagged.
                }
            }
            Field::VlanPcp => {
                let tagged = v.vlan_tci() & VLAN_PRESENT != 0;
                (tagged && m.vlan_tci() & VLAN_PCP_MASK != 0)
                    .then(|| (v.vlan_tci() >> 13).to_string())
            }
            Field::IpSrc if !self.is_arp() => ip4(v.ip_src(), m.ip_src()),
            Field::IpDst if !self.is_arp() => ip4(v.ip_dst(), m.ip_dst()),
            Field::ArpSpa if self.is_arp() => ip4(v.ip_src(), m.ip_src()),
            Field::ArpTpa if self.is_arp() => ip4(v.ip_dst(), m.ip_dst()),
            Field::IpProto if !self.is_arp() => {
                (m.ip_proto() != 0).then(|| v.ip_proto().to_string())
            }
            Field::ArpOp if self.is_arp() => (m.ip_proto() != 0).then(|| v.ip_proto().to_string()),
            Field::IpSrc | Field::IpDst | Field::ArpSpa | Field::ArpTpa => None,
            Field::IpProto | Field::ArpOp => None,
            Field::Ipv6Src => ip6(v.ipv6_src(), m.ipv6_src()),
            Field::Ipv6Dst => ip6(v.ipv6_dst(), m.ipv6_dst()),
            Field::IpDscp => (m.ip_tos() & TOS_DSCP != 0).then(|| (v.ip_tos() >> 2).to_string()),
            Field::IpEcn => (m.ip_tos() & TOS_ECN != 0).then(|| (v.ip_tos() & TOS_ECN).to_string()),
            Field::IpTtl => (m.ip_ttl() != 0).then(|| v.ip_ttl().to_string()),
            Field::IpFrag => {
                const BOTH: u8 = FRAG_ANY | FRAG_LATER;
                let (fv, fm) = (v.ip_frag() & BOTH, m.ip_frag() & BOTH);
                let name = match (fm, fv) {
                    (0, _) => return None,
                    (FRAG_ANY, 0) | (BOTH, 0) => "no",
                    (FRAG_ANY, _) => "yes",
                    (FRAG_LATER, 0) => "not_later",
                    (BOTH, FRAG_ANY) => "first",
                    _ => "later",
                };
                Some(name.to_string())
            }
            Field::TpSrc | Field::TpDst | Field::IcmpType | Field::IcmpCode => {
                let (tv, tm) = match field {
                    Field::TpSrc | Field::IcmpType => (v.tp_src(), m.tp_src()),
                    _ => (v.tp_dst(), m.tp_dst()),
                };
                if tm == 0 {
                    return None;
                }
                let icmp = self.icmp_text(tv, tm);
                match field {
                    Field::TpSrc | Field::TpDst if icmp.is_none() => {
                        Some(parse::fmt_masked_number(tv as u64, tm as u64, 0xffff))
                    }
                    Field::IcmpType | Field::IcmpCode => icmp,
                    _ => None,
                }
            }
            Field::ArpSha => mac(v.arp_sha_raw(), m.arp_sha_raw()),
            Field::ArpTha => mac(v.arp_tha_raw(), m.arp_tha_raw()),
            Field::TunId => (m.tun_id() != 0)
                .then(|| parse::fmt_masked_number(v.tun_id() as u64, m.tun_id() as u64, VNI_FULL)),
            Field::TunSrc => ip4(v.tun_src(), m.tun_src()),
            Field::TunDst => ip4(v.tun_dst(), m.tun_dst()),
        }
    }

    /// The set fields with their canonical text, in [`Field::ALL`] order. Which fields are set
    /// is derived from the mask bits (see the module doc for fields that share storage).
    pub fn fields(&self) -> Vec<(Field, String)> {
        Field::ALL
            .iter()
            .filter_map(|&f| self.field_text(f).map(|t| (f, t)))
            .collect()
    }

    /// Checks OpenFlow-style prerequisites (IP fields need `eth_type`, ports need `ip_proto`).
    /// The first unmet one, in [`Field::ALL`] order, is reported.
    pub fn check_prerequisites(&self) -> Result<(), MatchError> {
        const IPV4: &str = "eth_type=0x0800 (ipv4)";
        const IPV6: &str = "eth_type=0x86dd (ipv6)";
        const IP: &str = "eth_type=0x0800 (ipv4) or eth_type=0x86dd (ipv6)";
        const ARP: &str = "eth_type=0x0806 (arp)";
        const L4: &str = "ip_proto=6 (tcp), 17 (udp) or 132 (sctp)";
        const ICMP: &str = "ip_proto=1 (icmp) with eth_type=0x0800 (ipv4), \
                            or ip_proto=58 (icmpv6) with eth_type=0x86dd (ipv6)";
        let et = self.eth_type();
        let icmp = matches!(
            (et, self.ip_proto()),
            (Some(EtherType::IPV4), Some(IpProtocol::ICMP))
                | (Some(EtherType::IPV6), Some(IpProtocol::ICMPV6))
        );
        for (field, _) in self.fields() {
            let (ok, needs) = match field {
                Field::IpSrc | Field::IpDst => (et == Some(EtherType::IPV4), IPV4),
                Field::Ipv6Src | Field::Ipv6Dst => (et == Some(EtherType::IPV6), IPV6),
                Field::IpProto | Field::IpDscp | Field::IpEcn | Field::IpTtl | Field::IpFrag => {
                    (self.is_ip(), IP)
                }
                Field::TpSrc | Field::TpDst => {
                    let l4 = matches!(
                        self.ip_proto(),
                        Some(IpProtocol::TCP | IpProtocol::UDP | IpProtocol::SCTP)
                    );
                    (self.is_ip() && l4 || icmp, L4)
                }
                Field::IcmpType | Field::IcmpCode => (icmp, ICMP),
                Field::ArpOp | Field::ArpSpa | Field::ArpTpa | Field::ArpSha | Field::ArpTha => {
                    (self.is_arp(), ARP)
                }
                Field::InPort
                | Field::EthSrc
                | Field::EthDst
                | Field::EthType
                | Field::VlanVid
                | Field::VlanPcp
                | Field::TunId
                | Field::TunSrc
                | Field::TunDst => (true, ""),
            };
            if !ok {
                return Err(MatchError::Prerequisite { field, needs });
            }
        }
        Ok(())
    }

    /// True when `key` matches.
    #[inline]
    pub fn matches(&self, key: &FlowKey) -> bool {
        key.matches(&self.value, &self.mask)
    }
}

impl fmt::Display for Match {
    /// `field=value,field=value` in [`Field::ALL`] order, or `any`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields = self.fields();
        if fields.is_empty() {
            return f.write_str("any");
        }
        for (i, (field, text)) in fields.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{field}={text}")?;
        }
        Ok(())
    }
}

/// `ovs-ofctl` protocol shorthands: `(name, eth_type, ip_proto)`.
const SHORTHANDS: &[(&str, u16, Option<u8>)] = &[
    ("ip", EtherType::IPV4, None),
    ("ipv6", EtherType::IPV6, None),
    ("arp", EtherType::ARP, None),
    ("tcp", EtherType::IPV4, Some(IpProtocol::TCP)),
    ("udp", EtherType::IPV4, Some(IpProtocol::UDP)),
    ("sctp", EtherType::IPV4, Some(IpProtocol::SCTP)),
    ("icmp", EtherType::IPV4, Some(IpProtocol::ICMP)),
    ("tcp6", EtherType::IPV6, Some(IpProtocol::TCP)),
    ("udp6", EtherType::IPV6, Some(IpProtocol::UDP)),
    ("sctp6", EtherType::IPV6, Some(IpProtocol::SCTP)),
    ("icmp6", EtherType::IPV6, Some(IpProtocol::ICMPV6)),
];

impl FromStr for Match {
    type Err = MatchError;

    /// Parses `field=value,...` (as [`Display`](fmt::Display) renders it) or `any`. Later
    /// settings of a field replace earlier ones. Prerequisites are not checked.
    fn from_str(s: &str) -> Result<Match, MatchError> {
        let s = s.trim();
        let mut out = Match::any();
        if s == "any" {
            return Ok(out);
        }
        if s.is_empty() {
            return Err(MatchError::Syntax {
                text: s.to_string(),
                reason: "empty match: use \"any\" to match everything",
            });
        }
        for entry in s.split(',') {
            let entry = entry.trim();
            if let Some((name, value)) = entry.split_once('=') {
                let name = name.trim();
                let field = Field::from_name(name).ok_or_else(|| Field::unknown(name))?;
                out.set(field, value)?;
            } else if let Some(&(_, et, proto)) = SHORTHANDS.iter().find(|s| s.0 == entry) {
                out.value.set_eth_type(et);
                out.mask.set_eth_type(0xffff);
                if let Some(p) = proto {
                    out.value.set_ip_proto(p);
                    out.mask.set_ip_proto(0xff);
                }
            } else {
                let reason = if entry.is_empty() {
                    "empty entry in match (stray comma?)"
                } else if entry == "any" {
                    "\"any\" cannot be combined with other fields"
                } else if Field::from_name(entry).is_some() {
                    "expected field=value"
                } else {
                    return Err(Field::unknown(entry));
                };
                return Err(MatchError::Syntax {
                    text: if entry.is_empty() { s } else { entry }.to_string(),
                    reason,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
