//! MAC learning table (the forwarding database of the `NORMAL` action).
//!
//! Each PMD owns its own table as plain mutable data. When a PMD learns something other PMDs
//! should know ([`Learned::New`], [`Learned::Moved`], [`Learned::Refresh`]) the switch
//! announces it, and the other PMDs apply it with [`MacTable::insert_remote`].
//!
//! Entries expire `aging` after they were last seen. The table never holds more than
//! `max_entries`: when full, expired entries are evicted first, else the new MAC is refused
//! ([`Learned::Full`]). Group (multicast/broadcast) source addresses are never learned.

use std::time::{Duration, Instant};

use hashbrown::HashMap;

use crate::types::{MacAddr, PortNo, VlanId, Vni};

/// The L2 domain a MAC is learned in: untagged, a VLAN, or a VXLAN VNI.
///
/// Encoding: the top byte is the kind (0 untagged, 1 VLAN, 2 VNI), the low 24 bits the id,
/// so the three spaces never collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct L2Domain(pub u32);

const KIND_SHIFT: u32 = 24;
const KIND_VLAN: u32 = 1;
const KIND_VNI: u32 = 2;
const ID_MASK: u32 = (1 << KIND_SHIFT) - 1;

impl L2Domain {
    /// Untagged frames.
    pub const fn untagged() -> L2Domain {
        L2Domain(0)
    }

    /// A VLAN.
    pub const fn vlan(vid: VlanId) -> L2Domain {
        L2Domain(KIND_VLAN << KIND_SHIFT | vid.get() as u32)
    }

    /// A VXLAN network.
    pub const fn vni(vni: Vni) -> L2Domain {
        L2Domain(KIND_VNI << KIND_SHIFT | vni.get())
    }

    /// The VLAN, for a VLAN domain.
    pub const fn as_vlan(self) -> Option<VlanId> {
        if self.0 >> KIND_SHIFT == KIND_VLAN {
            VlanId::new((self.0 & ID_MASK) as u16)
        } else {
            None
        }
    }

    /// The VNI, for a VXLAN domain.
    pub const fn as_vni(self) -> Option<Vni> {
        if self.0 >> KIND_SHIFT == KIND_VNI {
            Vni::new(self.0 & ID_MASK)
        } else {
            None
        }
    }
}

impl core::fmt::Display for L2Domain {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if let Some(v) = self.as_vlan() {
            write!(f, "vlan {v}")
        } else if let Some(v) = self.as_vni() {
            write!(f, "vni {v}")
        } else if self.0 == 0 {
            f.write_str("untagged")
        } else {
            write!(f, "domain {:#x}", self.0)
        }
    }
}

/// What `learn` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// Nothing worth telling other PMDs (known, same port, announced recently; or a group
    /// address, which is never learned).
    Quiet,
    /// A MAC not known before (or known but expired).
    New,
    /// The MAC moved to another port.
    Moved {
        /// Where it was.
        from: PortNo,
    },
    /// Known on the same port, but last announced more than `aging / 4` ago: announce it
    /// again so other PMDs' copies do not age out.
    Refresh,
    /// The table is full of live entries: not learned.
    Full,
}

/// A live entry, as [`MacTable::iter`] yields it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacEntry {
    /// The L2 domain.
    pub domain: L2Domain,
    /// The MAC address.
    pub mac: MacAddr,
    /// The port it is behind.
    pub port: PortNo,
    /// Time since a frame from it was last seen (or announced by another PMD).
    pub age: Duration,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    port: PortNo,
    /// Last time a frame from this MAC was seen (or announced to us).
    seen: Instant,
    /// Last time it was announced (by us or, for remote inserts, by the announcer).
    announced: Instant,
}

/// MAC learning table with aging.
pub struct MacTable {
    map: HashMap<(L2Domain, u64), Slot>,
    max_entries: usize,
    aging: Duration,
    /// No entry can expire before this instant (skip eviction scans until then).
    no_expiry_before: Option<Instant>,
}

impl MacTable {
    /// A table holding at most `max_entries`, forgetting entries idle for `aging`.
    pub fn new(max_entries: usize, aging: Duration) -> MacTable {
        MacTable {
            map: HashMap::with_capacity(max_entries.min(1 << 16)),
            max_entries,
            aging,
            no_expiry_before: None,
        }
    }

    /// The aging time.
    pub fn aging(&self) -> Duration {
        self.aging
    }

    /// The maximum number of entries.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    fn expired(&self, e: &Slot, now: Instant) -> bool {
        now.saturating_duration_since(e.seen) > self.aging
    }

    /// Learns that `mac` in `dom` is behind `port` (a frame from it arrived there at `now`).
    pub fn learn(&mut self, dom: L2Domain, mac: MacAddr, port: PortNo, now: Instant) -> Learned {
        if mac.is_multicast() {
            return Learned::Quiet;
        }
        let aging = self.aging;
        if let Some(e) = self.map.get_mut(&(dom, mac.to_u64())) {
            if now.saturating_duration_since(e.seen) > aging {
                *e = Slot {
                    port,
                    seen: now,
                    announced: now,
                };
                return Learned::New;
            }
            e.seen = now;
            if e.port != port {
                let from = e.port;
                e.port = port;
                e.announced = now;
                return Learned::Moved { from };
            }
            if now.saturating_duration_since(e.announced) > aging / 4 {
                e.announced = now;
                return Learned::Refresh;
            }
            return Learned::Quiet;
        }
        if !self.make_room(now) {
            return Learned::Full;
        }
        self.map.insert(
            (dom, mac.to_u64()),
            Slot {
                port,
                seen: now,
                announced: now,
            },
        );
        Learned::New
    }

    /// Applies another PMD's announcement that `mac` in `dom` is behind `port`, without
    /// producing an announcement. Returns false when it was not stored (a group address, or
    /// the table is full of live entries).
    pub fn insert_remote(
        &mut self,
        dom: L2Domain,
        mac: MacAddr,
        port: PortNo,
        now: Instant,
    ) -> bool {
        if mac.is_multicast() {
            return false;
        }
        let e = Slot {
            port,
            seen: now,
            announced: now,
        };
        if let Some(old) = self.map.get_mut(&(dom, mac.to_u64())) {
            *old = e;
            return true;
        }
        if !self.make_room(now) {
            return false;
        }
        self.map.insert((dom, mac.to_u64()), e);
        true
    }

    /// True when there is room for one more entry, after evicting expired ones if needed.
    fn make_room(&mut self, now: Instant) -> bool {
        if self.map.len() < self.max_entries {
            return true;
        }
        if self.no_expiry_before.is_some_and(|t| now < t) {
            return false;
        }
        self.age(now);
        if self.map.len() < self.max_entries {
            return true;
        }
        // Everything is live: nothing can expire before the oldest entry does.
        self.no_expiry_before = self.map.values().map(|e| e.seen + self.aging).min();
        false
    }

    /// Where `mac` in `dom` is, if known and not expired.
    pub fn lookup(&self, dom: L2Domain, mac: MacAddr, now: Instant) -> Option<PortNo> {
        let e = self.map.get(&(dom, mac.to_u64()))?;
        (!self.expired(e, now)).then_some(e.port)
    }

    /// Removes expired entries; returns how many.
    pub fn age(&mut self, now: Instant) -> usize {
        let before = self.map.len();
        let aging = self.aging;
        self.map
            .retain(|_, e| now.saturating_duration_since(e.seen) <= aging);
        before - self.map.len()
    }

    /// Removes every entry.
    pub fn flush(&mut self) {
        self.map.clear();
        self.no_expiry_before = None;
    }

    /// Removes the entries behind `port` (the port went away or down).
    pub fn flush_port(&mut self, port: PortNo) {
        self.map.retain(|_, e| e.port != port);
        self.no_expiry_before = None;
    }

    /// Removes the entries of `dom`.
    pub fn flush_domain(&mut self, dom: L2Domain) {
        self.map.retain(|&(d, _), _| d != dom);
        self.no_expiry_before = None;
    }

    /// Live entries, in no particular order.
    pub fn iter(&self, now: Instant) -> impl Iterator<Item = MacEntry> + '_ {
        self.map
            .iter()
            .filter(move |(_, e)| !self.expired(e, now))
            .map(move |(&(domain, mac), e)| MacEntry {
                domain,
                mac: MacAddr::from_u64(mac),
                port: e.port,
                age: now.saturating_duration_since(e.seen),
            })
    }

    /// Number of stored entries (expired ones count until [`MacTable::age`] removes them).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no entry is stored.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    const AGING: Duration = Duration::from_secs(300);

    fn mac(i: u8) -> MacAddr {
        MacAddr([0x52, 0x54, 0, 0, 0, i])
    }

    fn vlan(v: u16) -> L2Domain {
        L2Domain::vlan(VlanId::new(v).unwrap())
    }

    #[test]
    fn domains_are_disjoint() {
        let u = L2Domain::untagged();
        let v0 = vlan(0);
        let n0 = L2Domain::vni(Vni::new(0).unwrap());
        assert_ne!(u, v0);
        assert_ne!(u, n0);
        assert_ne!(v0, n0);
        assert_ne!(vlan(4095), L2Domain::vni(Vni::new(4095).unwrap()));
        assert_eq!(vlan(10).as_vlan().unwrap().get(), 10);
        assert_eq!(vlan(10).as_vni(), None);
        assert_eq!(
            L2Domain::vni(Vni::new(0xff_ffff).unwrap())
                .as_vni()
                .unwrap()
                .get(),
            0xff_ffff
        );
        assert_eq!(u.to_string(), "untagged");
        assert_eq!(vlan(7).to_string(), "vlan 7");
    }

    #[test]
    fn learn_move_refresh_quiet() {
        let t0 = Instant::now();
        let mut t = MacTable::new(16, AGING);
        let d = vlan(10);
        assert_eq!(t.learn(d, mac(1), PortNo(1), t0), Learned::New);
        assert_eq!(
            t.learn(d, mac(1), PortNo(1), t0 + Duration::from_secs(1)),
            Learned::Quiet
        );
        assert_eq!(t.lookup(d, mac(1), t0), Some(PortNo(1)));
        assert_eq!(t.lookup(vlan(11), mac(1), t0), None);
        assert_eq!(
            t.learn(d, mac(1), PortNo(2), t0 + Duration::from_secs(2)),
            Learned::Moved { from: PortNo(1) }
        );
        assert_eq!(t.lookup(d, mac(1), t0), Some(PortNo(2)));
        // Seen continuously, announced at t0+2: quiet until aging/4 (75 s) later.
        assert_eq!(
            t.learn(d, mac(1), PortNo(2), t0 + Duration::from_secs(70)),
            Learned::Quiet
        );
        assert_eq!(
            t.learn(d, mac(1), PortNo(2), t0 + Duration::from_secs(78)),
            Learned::Refresh
        );
        assert_eq!(
            t.learn(d, mac(1), PortNo(2), t0 + Duration::from_secs(79)),
            Learned::Quiet
        );
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn multicast_never_learned() {
        let mut t = MacTable::new(16, AGING);
        let now = Instant::now();
        assert_eq!(
            t.learn(L2Domain::untagged(), MacAddr::BROADCAST, PortNo(1), now),
            Learned::Quiet
        );
        let mc = MacAddr([0x01, 0x00, 0x5e, 0, 0, 1]);
        assert_eq!(
            t.learn(L2Domain::untagged(), mc, PortNo(1), now),
            Learned::Quiet
        );
        assert!(!t.insert_remote(L2Domain::untagged(), mc, PortNo(1), now));
        assert!(t.is_empty());
    }

    #[test]
    fn aging() {
        let t0 = Instant::now();
        let mut t = MacTable::new(16, AGING);
        let d = L2Domain::untagged();
        t.learn(d, mac(1), PortNo(1), t0);
        t.learn(d, mac(2), PortNo(1), t0 + Duration::from_secs(100));
        let t1 = t0 + Duration::from_secs(301);
        assert_eq!(t.lookup(d, mac(1), t1), None);
        assert_eq!(t.lookup(d, mac(2), t1), Some(PortNo(1)));
        assert_eq!(t.iter(t1).count(), 1);
        assert_eq!(t.len(), 2);
        // An expired entry re-learned is new again.
        assert_eq!(t.learn(d, mac(1), PortNo(3), t1), Learned::New);
        assert_eq!(t.age(t0 + Duration::from_secs(401)), 1);
        assert_eq!(t.len(), 1);
        let e = t.iter(t0 + Duration::from_secs(401)).next().unwrap();
        assert_eq!(
            (e.domain, e.mac, e.port, e.age),
            (d, mac(1), PortNo(3), Duration::from_secs(100))
        );
    }

    #[test]
    fn full_evicts_expired_else_refuses() {
        let t0 = Instant::now();
        let mut t = MacTable::new(2, AGING);
        let d = L2Domain::untagged();
        assert_eq!(t.learn(d, mac(1), PortNo(1), t0), Learned::New);
        assert_eq!(
            t.learn(d, mac(2), PortNo(1), t0 + Duration::from_secs(10)),
            Learned::New
        );
        assert_eq!(
            t.learn(d, mac(3), PortNo(1), t0 + Duration::from_secs(20)),
            Learned::Full
        );
        assert!(!t.insert_remote(d, mac(3), PortNo(1), t0 + Duration::from_secs(20)));
        // Known entries still refresh while full.
        assert_eq!(
            t.learn(d, mac(2), PortNo(2), t0 + Duration::from_secs(30)),
            Learned::Moved { from: PortNo(1) }
        );
        // mac(1) expires at t0+300.
        assert_eq!(
            t.learn(d, mac(3), PortNo(1), t0 + Duration::from_secs(299)),
            Learned::Full
        );
        assert_eq!(
            t.learn(d, mac(3), PortNo(1), t0 + Duration::from_secs(301)),
            Learned::New
        );
        assert_eq!(t.len(), 2);
        assert_eq!(t.lookup(d, mac(1), t0 + Duration::from_secs(301)), None);
    }

    #[test]
    fn remote_and_flush() {
        let t0 = Instant::now();
        let mut t = MacTable::new(16, AGING);
        let (a, b) = (vlan(1), vlan(2));
        assert!(t.insert_remote(a, mac(1), PortNo(1), t0));
        assert!(t.insert_remote(a, mac(2), PortNo(2), t0));
        assert!(t.insert_remote(b, mac(1), PortNo(2), t0));
        // A remote announcement counts as announced: learning it here soon after is quiet.
        assert_eq!(
            t.learn(a, mac(1), PortNo(1), t0 + Duration::from_secs(1)),
            Learned::Quiet
        );
        t.flush_port(PortNo(2));
        assert_eq!(t.len(), 1);
        t.insert_remote(b, mac(3), PortNo(3), t0);
        t.flush_domain(a);
        assert_eq!(t.lookup(b, mac(3), t0), Some(PortNo(3)));
        assert_eq!(t.len(), 1);
        t.flush();
        assert!(t.is_empty());
    }
}
