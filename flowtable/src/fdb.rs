//! MAC learning table. (Stub: the classifier helper fills this in.)

use std::time::{Duration, Instant};

use crate::types::{MacAddr, PortNo};

/// The L2 domain a MAC is learned in: a VLAN, or a VXLAN VNI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct L2Domain(pub u32);

/// MAC learning table with aging.
pub struct MacTable {
    _aging: Duration,
}

/// What `learn` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// Nothing worth telling other PMDs.
    Quiet,
}

impl MacTable {
    /// A table holding at most `max_entries`, forgetting entries idle for `aging`.
    pub fn new(max_entries: usize, aging: Duration) -> MacTable {
        let _ = max_entries;
        MacTable { _aging: aging }
    }
    /// Learns that `mac` in `dom` is behind `port`.
    pub fn learn(&mut self, dom: L2Domain, mac: MacAddr, port: PortNo, now: Instant) -> Learned {
        let _ = (dom, mac, port, now);
        Learned::Quiet
    }
    /// Where `mac` in `dom` is, if known and not expired.
    pub fn lookup(&self, dom: L2Domain, mac: MacAddr, now: Instant) -> Option<PortNo> {
        let _ = (dom, mac, now);
        None
    }
}
