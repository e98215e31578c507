//! MAC learning table. (Stub.)

use std::time::{Duration, Instant};

use crate::types::{MacAddr, PortNo, VlanId, Vni};

/// The L2 domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct L2Domain(pub u32);

impl L2Domain {
    /// Untagged.
    pub fn untagged() -> L2Domain {
        L2Domain(0)
    }
    /// A VLAN.
    pub fn vlan(v: VlanId) -> L2Domain {
        L2Domain(v.get() as u32)
    }
    /// A VNI.
    pub fn vni(v: Vni) -> L2Domain {
        L2Domain(0x1000_0000 | v.get())
    }
}

/// An entry.
pub struct Entry {
    /// Domain.
    pub domain: L2Domain,
    /// MAC.
    pub mac: MacAddr,
    /// Port.
    pub port: PortNo,
    /// Idle time.
    pub age: Duration,
}

/// MAC learning table with aging.
pub struct MacTable {
    map: std::collections::HashMap<(L2Domain, MacAddr), (PortNo, Instant)>,
}

/// What `learn` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// New.
    New,
    /// Moved.
    Moved {
        /// From.
        from: PortNo,
    },
    /// Refresh.
    Refresh,
    /// Quiet.
    Quiet,
    /// Full.
    Full,
}

impl MacTable {
    /// New.
    pub fn new(max_entries: usize, aging: Duration) -> MacTable {
        let _ = (max_entries, aging);
        MacTable {
            map: Default::default(),
        }
    }
    /// Learn.
    pub fn learn(&mut self, dom: L2Domain, mac: MacAddr, port: PortNo, now: Instant) -> Learned {
        match self.map.insert((dom, mac), (port, now)) {
            None => Learned::New,
            Some((p, _)) if p != port => Learned::Moved { from: p },
            _ => Learned::Quiet,
        }
    }
    /// Remote.
    pub fn insert_remote(&mut self, dom: L2Domain, mac: MacAddr, port: PortNo, now: Instant) {
        self.map.insert((dom, mac), (port, now));
    }
    /// Lookup.
    pub fn lookup(&self, dom: L2Domain, mac: MacAddr, now: Instant) -> Option<PortNo> {
        let _ = now;
        self.map.get(&(dom, mac)).map(|e| e.0)
    }
    /// Flush.
    pub fn flush(&mut self) {
        self.map.clear()
    }
    /// Flush port.
    pub fn flush_port(&mut self, port: PortNo) {
        self.map.retain(|_, v| v.0 != port)
    }
    /// Len.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// Empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Iter.
    pub fn iter(&self, now: Instant) -> impl Iterator<Item = Entry> + '_ {
        self.map.iter().map(move |(k, v)| Entry {
            domain: k.0,
            mac: k.1,
            port: v.0,
            age: now.duration_since(v.1),
        })
    }
}
