//! Newtypes that keep the switch's number spaces apart.

use core::fmt;
use core::str::FromStr;

/// A switch port number: the datapath's name for a port. Assigned by the switch, never reused
/// while a rule or cache entry can still refer to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PortNo(pub u32);

impl PortNo {
    /// The raw number as an index into per-port tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for PortNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An 802.1Q VLAN identifier, 0..=4095 (0 means priority-tagged only, 4095 is reserved).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct VlanId(u16);

impl VlanId {
    /// The largest VLAN id a tag can carry.
    pub const MAX: u16 = 4095;

    /// A VLAN id, or `None` when `vid` does not fit in 12 bits.
    pub const fn new(vid: u16) -> Option<VlanId> {
        if vid <= Self::MAX {
            Some(VlanId(vid))
        } else {
            None
        }
    }

    /// The 12-bit value.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for VlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A VXLAN network identifier (24 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Vni(u32);

impl Vni {
    /// The largest VNI the 24-bit field can carry.
    pub const MAX: u32 = 0x00ff_ffff;

    /// A VNI, or `None` when `vni` does not fit in 24 bits.
    pub const fn new(vni: u32) -> Option<Vni> {
        if vni <= Self::MAX {
            Some(Vni(vni))
        } else {
            None
        }
    }

    /// The 24-bit value.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Vni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A 48-bit Ethernet address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// True for group (multicast and broadcast) addresses: the I/G bit is set.
    pub const fn is_multicast(self) -> bool {
        self.0[0] & 1 != 0
    }

    /// The address as the low 48 bits of a `u64`, first octet most significant.
    pub const fn to_u64(self) -> u64 {
        let b = self.0;
        (b[0] as u64) << 40
            | (b[1] as u64) << 32
            | (b[2] as u64) << 24
            | (b[3] as u64) << 16
            | (b[4] as u64) << 8
            | b[5] as u64
    }

    /// The inverse of [`MacAddr::to_u64`]; bits above 48 are ignored.
    pub const fn from_u64(v: u64) -> MacAddr {
        MacAddr([
            (v >> 40) as u8,
            (v >> 32) as u8,
            (v >> 24) as u8,
            (v >> 16) as u8,
            (v >> 8) as u8,
            v as u8,
        ])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// Why a MAC address string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}: expected six hex octets like 52:54:00:12:34:56")]
pub struct ParseMacError(pub String);

impl FromStr for MacAddr {
    type Err = ParseMacError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for b in out.iter_mut() {
            let p = parts.next().ok_or_else(|| ParseMacError(s.to_string()))?;
            if p.is_empty() || p.len() > 2 {
                return Err(ParseMacError(s.to_string()));
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| ParseMacError(s.to_string()))?;
        }
        if parts.next().is_some() {
            return Err(ParseMacError(s.to_string()));
        }
        Ok(MacAddr(out))
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn mac_round_trips() {
        let m: MacAddr = "52:54:00:ab:cd:ef".parse().unwrap();
        assert_eq!(m.to_string(), "52:54:00:ab:cd:ef");
        assert_eq!(MacAddr::from_u64(m.to_u64()), m);
        assert!(!m.is_multicast());
        assert!(MacAddr::BROADCAST.is_multicast());
    }

    #[test]
    fn mac_rejects_garbage() {
        for bad in [
            "",
            "52:54:00:ab:cd",
            "52:54:00:ab:cd:ef:01",
            "5x:54:00:ab:cd:ef",
            "525:4:00:ab:cd:ef",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges() {
        assert!(VlanId::new(4095).is_some());
        assert!(VlanId::new(4096).is_none());
        assert!(Vni::new(0xff_ffff).is_some());
        assert!(Vni::new(0x100_0000).is_none());
    }
}
