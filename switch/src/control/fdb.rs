//! The learned MACs: each PMD learns its own, so reading them merges the PMDs' tables, and
//! flushing them asks every PMD.

use std::collections::BTreeMap;

use flowtable::fdb::L2Domain;
use flowtable::{MacAddr, PortNo};

use super::{Switch, SwitchError};
use crate::pmd::PmdCmd;

/// A learned MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdbEntry {
    /// The VLAN or VNI domain.
    pub domain: L2Domain,
    /// The address.
    pub mac: MacAddr,
    /// Where it was seen.
    pub port: PortNo,
    /// Seconds since it was last seen (the freshest PMD's view).
    pub age_secs: u64,
}

impl Switch {
    /// Learned MACs, merged over PMDs (the freshest sighting wins).
    pub fn fdb(&self) -> Result<Vec<FdbEntry>, SwitchError> {
        let mut merged: BTreeMap<(L2Domain, MacAddr), FdbEntry> = BTreeMap::new();
        for r in self.ask(PmdCmd::Report)? {
            for (domain, mac, port, age_secs) in r.fdb {
                let e = merged.entry((domain, mac)).or_insert(FdbEntry {
                    domain,
                    mac,
                    port,
                    age_secs,
                });
                if age_secs < e.age_secs {
                    e.port = port;
                    e.age_secs = age_secs;
                }
            }
        }
        Ok(merged.into_values().collect())
    }

    /// Forgets every learned MAC.
    pub fn flush_fdb(&self) -> Result<(), SwitchError> {
        self.broadcast(|| PmdCmd::FlushFdb);
        self.barrier()
    }
}
