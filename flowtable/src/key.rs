//! The flow key: every header field the switch decides on, packed into [`KEY_WORDS`] `u64`s.
//!
//! A key is a plain array of words so that the hot operations are word loops the compiler
//! unrolls: masking is a word-wise AND, equality a word compare, and hashing is one
//! independent [`mix_word`] per word, summed and [`finish_hash`]ed (a classifier subtable
//! hashes only the words its mask keeps, with the same two functions). Field placement (word, shift, width) lives in
//! one table, the `layout` module below; accessors are generated from it.
//!
//! Conventions, as in Open vSwitch:
//! - `vlan_tci` and `vlan_inner_tci` hold the 802.1Q TCI with [`VLAN_PRESENT`] (the CFI bit)
//!   set when a tag is present, so "untagged" and "VLAN 0" differ.
//! - `eth_type` is the innermost EtherType after all tags; 802.3 length frames use
//!   [`ETH_TYPE_NONE`].
//! - `ip_src`/`ip_dst` hold IPv4 addresses, or ARP's sender/target protocol addresses;
//!   `ip_proto` holds the ARP opcode for ARP (0 if the opcode is above 255).
//! - `tp_src`/`tp_dst` hold TCP/UDP ports, or ICMP/ICMPv6 type and code.
//! - `ip_frag` holds [`FRAG_ANY`] | [`FRAG_LATER`]; later fragments carry no L4 fields.
//! - `tun_id`, `tun_src`, `tun_dst` are tunnel metadata set at VXLAN decap, zero otherwise.

mod extract;

pub use extract::{extract, extract_into, extract_l2_into, extract_vxlan, VxlanOuter};

use crate::types::{MacAddr, PortNo};

/// How many `u64` words a [`FlowKey`] holds.
pub const KEY_WORDS: usize = 13;

/// The TCI bit that marks a VLAN tag as present (the CFI/DEI bit position, as OVS does).
pub const VLAN_PRESENT: u16 = 0x1000;
/// The VLAN id bits of a TCI.
pub const VLAN_VID_MASK: u16 = 0x0fff;
/// The priority code point bits of a TCI.
pub const VLAN_PCP_MASK: u16 = 0xe000;
/// `eth_type` of an 802.3 frame whose type field is a length (< 0x600).
pub const ETH_TYPE_NONE: u16 = 0x05ff;
/// `ip_frag` bit: the packet is a fragment (MF set or offset non-zero).
pub const FRAG_ANY: u8 = 1;
/// `ip_frag` bit: the fragment is not the first one (offset non-zero).
pub const FRAG_LATER: u8 = 2;

/// A flow key: the parsed header fields of one frame, or (as a mask) which bits of them matter.
#[derive(Clone, Copy, Eq, Default)]
pub struct FlowKey {
    words: [u64; KEY_WORDS],
}

impl PartialEq for FlowKey {
    /// Word by word without early exit: the exact-match cache compares a whole key per frame,
    /// and a branch-free fold is cheaper than the `memcmp` call the derived comparison makes.
    #[inline]
    fn eq(&self, other: &FlowKey) -> bool {
        let mut diff = 0;
        for i in 0..KEY_WORDS {
            diff |= self.words[i] ^ other.words[i];
        }
        diff == 0
    }
}

impl std::hash::Hash for FlowKey {
    /// The words, as a derived `Hash` would (equal keys have equal words).
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.words.hash(state);
    }
}

/// Field placement: `(word, shift, bits)`. The only place offsets are written down.
mod layout {
    pub const IN_PORT: (usize, u32, u32) = (0, 0, 32);
    pub const ETH_TYPE: (usize, u32, u32) = (0, 32, 16);
    pub const VLAN_TCI: (usize, u32, u32) = (0, 48, 16);
    pub const ETH_DST: (usize, u32, u32) = (1, 0, 48);
    pub const VLAN_INNER_TCI: (usize, u32, u32) = (1, 48, 16);
    pub const ETH_SRC: (usize, u32, u32) = (2, 0, 48);
    pub const IP_PROTO: (usize, u32, u32) = (2, 48, 8);
    pub const IP_FRAG: (usize, u32, u32) = (2, 56, 8);
    pub const IP_SRC: (usize, u32, u32) = (3, 0, 32);
    pub const IP_DST: (usize, u32, u32) = (3, 32, 32);
    pub const TP_SRC: (usize, u32, u32) = (4, 0, 16);
    pub const TP_DST: (usize, u32, u32) = (4, 16, 16);
    pub const IP_TOS: (usize, u32, u32) = (4, 32, 8);
    pub const IP_TTL: (usize, u32, u32) = (4, 40, 8);
    // word 4 bits 48..64 reserved (zero).
    pub const IPV6_SRC: usize = 5; // words 5 (high) and 6 (low)
    pub const IPV6_DST: usize = 7; // words 7 (high) and 8 (low)
    pub const ARP_SHA: (usize, u32, u32) = (9, 0, 48);
    pub const ARP_THA: (usize, u32, u32) = (10, 0, 48);
    pub const TUN_ID: (usize, u32, u32) = (11, 0, 32);
    pub const TUN_SRC: (usize, u32, u32) = (12, 0, 32);
    pub const TUN_DST: (usize, u32, u32) = (12, 32, 32);
}

macro_rules! scalar_field {
    ($(#[$doc:meta])* $get:ident, $set:ident, $ty:ty, $loc:expr) => {
        $(#[$doc])*
        #[inline]
        pub fn $get(&self) -> $ty {
            let (w, shift, bits) = $loc;
            ((self.words[w] >> shift) & mask_bits(bits)) as $ty
        }

        #[doc = concat!("Sets the field read by [`FlowKey::", stringify!($get), "`].")]
        #[inline]
        pub fn $set(&mut self, v: $ty) {
            let (w, shift, bits) = $loc;
            let m = mask_bits(bits) << shift;
            self.words[w] = (self.words[w] & !m) | (((v as u64) << shift) & m);
        }
    };
}

#[inline]
const fn mask_bits(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

impl FlowKey {
    /// The all-zero key (also the empty mask: matches everything).
    pub const ZERO: FlowKey = FlowKey {
        words: [0; KEY_WORDS],
    };
    /// The all-ones mask: every bit matters (an exact match).
    pub const EXACT: FlowKey = FlowKey {
        words: [u64::MAX; KEY_WORDS],
    };

    /// The raw words.
    #[inline]
    pub fn words(&self) -> &[u64; KEY_WORDS] {
        &self.words
    }

    /// A key from raw words (tests, benchmarks, and masks built word by word).
    pub fn from_words(words: [u64; KEY_WORDS]) -> FlowKey {
        FlowKey { words }
    }

    /// `self & mask`, word by word.
    #[inline]
    pub fn masked(&self, mask: &FlowKey) -> FlowKey {
        let mut out = FlowKey::ZERO;
        for i in 0..KEY_WORDS {
            out.words[i] = self.words[i] & mask.words[i];
        }
        out
    }

    /// True when `self & mask == value` (`value` already masked).
    #[inline]
    pub fn matches(&self, value: &FlowKey, mask: &FlowKey) -> bool {
        let mut diff = 0;
        for i in 0..KEY_WORDS {
            diff |= (self.words[i] & mask.words[i]) ^ value.words[i];
        }
        diff == 0
    }

    /// The hash of the whole key (the EMC's hash).
    ///
    /// The 13 words are first folded into 5 lanes, each lane XORing words that rarely carry
    /// data in the same frame (IPv4 addresses with IPv6 ones, Ethernet with ARP and tunnel
    /// fields), every word but a lane's first rotated by its own amount so that equal fields
    /// in different places do not cancel (an IPv6 source and destination in one /64, a flow
    /// and its reverse). The lanes are then mixed in pairs, each pair by one folded multiply
    /// of its two (position-keyed) values, as wyhash does: 3 multiplies per key. Every bit of
    /// the key reaches the hash. A pair whose first value equals its position constant
    /// contributes 0 whatever the second is; that makes such keys collide in the cache (a
    /// miss, never a wrong hit: the EMC compares whole keys), the trade wyhash makes.
    #[inline]
    pub fn hash(&self) -> u64 {
        let w = &self.words;
        let l0 = w[0] ^ w[9].rotate_left(21) ^ w[11].rotate_left(42);
        let l1 = w[1] ^ w[10].rotate_left(21);
        let l2 = w[2] ^ w[12].rotate_left(21);
        let l3 = w[3] ^ w[5].rotate_left(21) ^ w[7].rotate_left(42);
        let l4 = w[4] ^ w[6].rotate_left(21) ^ w[8].rotate_left(42);
        let fold = |a: u64, b: u64| {
            let m = a as u128 * b as u128;
            (m >> 64) as u64 ^ m as u64
        };
        let acc = fold(l0 ^ POSITION[0], l1 ^ POSITION[1])
            .wrapping_add(fold(l2 ^ POSITION[2], l3 ^ POSITION[3]))
            .wrapping_add(mix_word(l4, 4));
        finish_hash(acc)
    }

    /// Indices of the words that are non-zero (for a mask: the words a subtable must hash).
    pub fn nonzero_words(&self) -> Vec<u8> {
        (0..KEY_WORDS)
            .filter(|&i| self.words[i] != 0)
            .map(|i| i as u8)
            .collect()
    }

    scalar_field!(
        /// The port the frame arrived on.
        in_port_raw, set_in_port_raw, u32, layout::IN_PORT);
    scalar_field!(
        /// Innermost EtherType (see module doc).
        eth_type, set_eth_type, u16, layout::ETH_TYPE);
    scalar_field!(
        /// Outer 802.1Q TCI with [`VLAN_PRESENT`] set when tagged.
        vlan_tci, set_vlan_tci, u16, layout::VLAN_TCI);
    scalar_field!(
        /// Inner (QinQ) 802.1Q TCI with [`VLAN_PRESENT`] set when double tagged.
        vlan_inner_tci, set_vlan_inner_tci, u16, layout::VLAN_INNER_TCI);
    scalar_field!(
        /// Destination MAC as 48 bits, first octet most significant.
        eth_dst_raw, set_eth_dst_raw, u64, layout::ETH_DST);
    scalar_field!(
        /// Source MAC as 48 bits, first octet most significant.
        eth_src_raw, set_eth_src_raw, u64, layout::ETH_SRC);
    scalar_field!(
        /// IP protocol, or the ARP opcode (0 if above 255).
        ip_proto, set_ip_proto, u8, layout::IP_PROTO);
    scalar_field!(
        /// Fragment flags: [`FRAG_ANY`] | [`FRAG_LATER`].
        ip_frag, set_ip_frag, u8, layout::IP_FRAG);
    scalar_field!(
        /// IPv4 source, or ARP sender protocol address.
        ip_src, set_ip_src, u32, layout::IP_SRC);
    scalar_field!(
        /// IPv4 destination, or ARP target protocol address.
        ip_dst, set_ip_dst, u32, layout::IP_DST);
    scalar_field!(
        /// TCP/UDP source port, or ICMP/ICMPv6 type.
        tp_src, set_tp_src, u16, layout::TP_SRC);
    scalar_field!(
        /// TCP/UDP destination port, or ICMP/ICMPv6 code.
        tp_dst, set_tp_dst, u16, layout::TP_DST);
    scalar_field!(
        /// IPv4 TOS / IPv6 traffic class (DSCP << 2 | ECN).
        ip_tos, set_ip_tos, u8, layout::IP_TOS);
    scalar_field!(
        /// IPv4 TTL / IPv6 hop limit.
        ip_ttl, set_ip_ttl, u8, layout::IP_TTL);
    scalar_field!(
        /// ARP sender hardware address as 48 bits.
        arp_sha_raw, set_arp_sha_raw, u64, layout::ARP_SHA);
    scalar_field!(
        /// ARP target hardware address as 48 bits.
        arp_tha_raw, set_arp_tha_raw, u64, layout::ARP_THA);
    scalar_field!(
        /// Tunnel id (the VNI) of a decapsulated frame.
        tun_id, set_tun_id, u32, layout::TUN_ID);
    scalar_field!(
        /// Outer IPv4 source of a decapsulated frame.
        tun_src, set_tun_src, u32, layout::TUN_SRC);
    scalar_field!(
        /// Outer IPv4 destination of a decapsulated frame.
        tun_dst, set_tun_dst, u32, layout::TUN_DST);

    /// The port the frame arrived on.
    #[inline]
    pub fn in_port(&self) -> PortNo {
        PortNo(self.in_port_raw())
    }

    /// Sets the in-port.
    #[inline]
    pub fn set_in_port(&mut self, p: PortNo) {
        self.set_in_port_raw(p.0)
    }

    /// Destination MAC.
    #[inline]
    pub fn eth_dst(&self) -> MacAddr {
        MacAddr::from_u64(self.eth_dst_raw())
    }

    /// Sets the destination MAC.
    #[inline]
    pub fn set_eth_dst(&mut self, m: MacAddr) {
        self.set_eth_dst_raw(m.to_u64())
    }

    /// Source MAC.
    #[inline]
    pub fn eth_src(&self) -> MacAddr {
        MacAddr::from_u64(self.eth_src_raw())
    }

    /// Sets the source MAC.
    #[inline]
    pub fn set_eth_src(&mut self, m: MacAddr) {
        self.set_eth_src_raw(m.to_u64())
    }

    /// IPv6 source address.
    #[inline]
    pub fn ipv6_src(&self) -> u128 {
        self.get_u128(layout::IPV6_SRC)
    }

    /// Sets the IPv6 source address.
    #[inline]
    pub fn set_ipv6_src(&mut self, v: u128) {
        self.set_u128(layout::IPV6_SRC, v)
    }

    /// IPv6 destination address.
    #[inline]
    pub fn ipv6_dst(&self) -> u128 {
        self.get_u128(layout::IPV6_DST)
    }

    /// Sets the IPv6 destination address.
    #[inline]
    pub fn set_ipv6_dst(&mut self, v: u128) {
        self.set_u128(layout::IPV6_DST, v)
    }

    #[inline]
    fn get_u128(&self, w: usize) -> u128 {
        (self.words[w] as u128) << 64 | self.words[w + 1] as u128
    }

    #[inline]
    fn set_u128(&mut self, w: usize, v: u128) {
        self.words[w] = (v >> 64) as u64;
        self.words[w + 1] = v as u64;
    }

    /// VLAN id of the outer tag, if the frame is tagged.
    pub fn vlan_vid(&self) -> Option<u16> {
        let tci = self.vlan_tci();
        (tci & VLAN_PRESENT != 0).then_some(tci & VLAN_VID_MASK)
    }
}

/// One odd 64-bit constant per word position, so equal values in different words hash
/// differently (digits of pi and e, forced odd).
const POSITION: [u64; KEY_WORDS] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7345,
    0xa409_3822_299f_31d1,
    0x082e_fa98_ec4e_6c89,
    0x4528_21e6_38d0_1377,
    0xbe54_66cf_34e9_0c6d,
    0xc0ac_29b7_c97c_50dd,
    0x3f84_d5b5_b547_0917,
    0x9216_d5d9_8979_fb1b,
    0xb7e1_5162_8aed_2a6b,
    0xbf71_5880_9cf4_f3c7,
    0x6a09_e667_f3bc_c909,
    0xbb67_ae85_84ca_a73b,
];

/// Mixes word number `pos` (0..[`KEY_WORDS`]) of a key on its own: each word's multiply is independent of the others, so the 13
/// words of a key hash in parallel instead of as one dependency chain (a folded multiply, as
/// in foldhash and wyhash).
///
/// The constants are fixed, so a sender who knows them could search offline for keys that
/// collide (hash flooding: longer probes, EMC thrash for its own flows). A per-process random
/// seed folded into `POSITION` is the planned mitigation.
#[inline(always)]
pub fn mix_word(w: u64, pos: usize) -> u64 {
    let m = (w ^ POSITION[pos]) as u128 * 0x9e37_79b9_7f4a_7c15u128;
    (m >> 64) as u64 ^ m as u64
}

/// Finishes a hash: mixes the sum of [`mix_word`]s once more.
#[inline(always)]
pub fn finish_hash(h: u64) -> u64 {
    let m = (h ^ 0x5851_f42d_4c95_7f2d) as u128 * 0xff51_afd7_ed55_8ccdu128;
    (m >> 64) as u64 ^ m as u64
}

impl core::fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FlowKey")
            .field("in_port", &self.in_port_raw())
            .field("eth_src", &format_args!("{}", self.eth_src()))
            .field("eth_dst", &format_args!("{}", self.eth_dst()))
            .field("eth_type", &format_args!("{:#06x}", self.eth_type()))
            .field("vlan_tci", &format_args!("{:#06x}", self.vlan_tci()))
            .field(
                "vlan_inner_tci",
                &format_args!("{:#06x}", self.vlan_inner_tci()),
            )
            .field("ip_src", &core::net::Ipv4Addr::from(self.ip_src()))
            .field("ip_dst", &core::net::Ipv4Addr::from(self.ip_dst()))
            .field("ipv6_src", &core::net::Ipv6Addr::from(self.ipv6_src()))
            .field("ipv6_dst", &core::net::Ipv6Addr::from(self.ipv6_dst()))
            .field("ip_proto", &self.ip_proto())
            .field("ip_frag", &self.ip_frag())
            .field("ip_tos", &self.ip_tos())
            .field("ip_ttl", &self.ip_ttl())
            .field("tp_src", &self.tp_src())
            .field("tp_dst", &self.tp_dst())
            .field(
                "arp_sha",
                &format_args!("{}", MacAddr::from_u64(self.arp_sha_raw())),
            )
            .field(
                "arp_tha",
                &format_args!("{}", MacAddr::from_u64(self.arp_tha_raw())),
            )
            .field("tun_id", &self.tun_id())
            .field("tun_src", &core::net::Ipv4Addr::from(self.tun_src()))
            .field("tun_dst", &core::net::Ipv4Addr::from(self.tun_dst()))
            .finish()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn equality_sees_every_bit_of_every_word() {
        let base = FlowKey::from_words(std::array::from_fn(|i| i as u64 * 0x0101_0101));
        assert_eq!(base, base.clone());
        for w in 0..KEY_WORDS {
            for bit in [0, 17, 63] {
                let mut words = *base.words();
                words[w] ^= 1 << bit;
                assert_ne!(FlowKey::from_words(words), base, "word {w} bit {bit}");
            }
        }
    }

    #[test]
    fn fields_do_not_overlap() {
        // Set every field to all ones, one at a time, and check that no other field moved.
        let mut k = FlowKey::ZERO;
        k.set_in_port_raw(u32::MAX);
        assert_eq!(k.eth_type(), 0);
        assert_eq!(k.vlan_tci(), 0);
        k.set_eth_type(0xffff);
        k.set_vlan_tci(0xffff);
        assert_eq!(k.words()[0], u64::MAX);
        k.set_eth_dst_raw(u64::MAX);
        assert_eq!(k.eth_dst_raw(), 0xffff_ffff_ffff);
        assert_eq!(k.vlan_inner_tci(), 0);
        k.set_ip_src(0x0102_0304);
        k.set_ip_dst(0x0a0b_0c0d);
        assert_eq!(k.ip_src(), 0x0102_0304);
        assert_eq!(k.ip_dst(), 0x0a0b_0c0d);
        k.set_tp_src(80);
        k.set_tp_dst(443);
        k.set_ip_tos(0xb8);
        k.set_ip_ttl(64);
        assert_eq!(
            (k.tp_src(), k.tp_dst(), k.ip_tos(), k.ip_ttl()),
            (80, 443, 0xb8, 64)
        );
        k.set_ipv6_src(u128::MAX - 1);
        k.set_ipv6_dst(7);
        assert_eq!(k.ipv6_src(), u128::MAX - 1);
        assert_eq!(k.ipv6_dst(), 7);
        k.set_tun_id(0xff_ffff);
        k.set_tun_src(1);
        k.set_tun_dst(2);
        assert_eq!((k.tun_id(), k.tun_src(), k.tun_dst()), (0xff_ffff, 1, 2));
    }

    #[test]
    fn single_bit_changes_change_the_hash() {
        // Every one-bit difference from a typical key moves the hash, and the low bits a
        // table indexes by spread out. (Two such keys that differ from it in two words of one
        // lane can collide with each other: a bit of w9 lands where a bit of w0 does. Such
        // words do not both vary in real traffic, and a collision is only a cache miss.)
        let mut base = FlowKey::ZERO;
        base.set_eth_type(0x0800);
        base.set_ip_src(0xc612_0001);
        base.set_ip_dst(0xc612_0002);
        base.set_tp_src(1000);
        base.set_tp_dst(2000);
        let h0 = base.hash();
        for w in 0..KEY_WORDS {
            let mut buckets = std::collections::HashSet::new();
            for b in 0..64 {
                let mut k = base;
                k.words[w] ^= 1 << b;
                let h = k.hash();
                assert_ne!(h, h0, "word {w} bit {b}");
                buckets.insert(h & 0xfff);
            }
            assert!(
                buckets.len() > 56,
                "word {w}: 64 keys fill {} of 4096 buckets",
                buckets.len()
            );
        }
    }

    #[test]
    fn reverse_flows_and_one_prefix_spread() {
        // A flow and its reverse, IPv4 and IPv6 (same /64), hash apart; so do the flows of
        // many hosts of one IPv6 /64 to one server.
        let mut v4 = FlowKey::ZERO;
        v4.set_eth_type(0x0800);
        v4.set_ip_src(0xc612_0001);
        v4.set_ip_dst(0xc612_0002);
        v4.set_tp_src(1000);
        v4.set_tp_dst(2000);
        let mut r4 = v4;
        r4.set_ip_src(0xc612_0002);
        r4.set_ip_dst(0xc612_0001);
        r4.set_tp_src(2000);
        r4.set_tp_dst(1000);
        assert_ne!(v4.hash(), r4.hash());
        let prefix = 0x2001_0db8_0000_0001u64;
        let v6 = |src: u64, dst: u64, sp: u16, dp: u16| {
            let mut w = [0u64; KEY_WORDS];
            w[0] = 0x86dd << 32;
            w[5] = prefix;
            w[6] = src;
            w[7] = prefix;
            w[8] = dst;
            w[4] = u64::from(sp) | u64::from(dp) << 16;
            FlowKey::from_words(w)
        };
        assert_ne!(v6(1, 2, 1000, 2000).hash(), v6(2, 1, 2000, 1000).hash());
        let buckets: std::collections::HashSet<u64> = (0..2048)
            .map(|h| v6(h, 1, 40000, 443).hash() & 0xfff)
            .collect();
        assert!(
            buckets.len() > 1500,
            "2048 hosts fill {} of 4096 buckets",
            buckets.len()
        );
    }

    #[test]
    fn masked_keys_match_regardless_of_masked_bits() {
        let mut a = FlowKey::ZERO;
        a.set_ip_dst(0x0a00_0001);
        let mut b = a;
        b.set_tp_dst(22);
        let mut mask = FlowKey::ZERO;
        mask.set_ip_dst(0xffff_ff00);
        assert_eq!(mask.nonzero_words(), vec![3]);
        assert_eq!(a.masked(&mask), b.masked(&mask));
        assert!(b.matches(&a.masked(&mask), &mask));
        assert_ne!(a.hash(), b.hash());
    }
}
