//! `[switch]`: datapath settings (PMD cores, table sizes, sleep, the vhost-user socket
//! directory and guest memory limit), their defaults and their checks.

use std::collections::HashSet;
use std::path::{Component, PathBuf};

use serde::{Deserialize, Serialize};

use super::problem::{key, problem, Problem};

/// Where vhost-user sockets go unless `switch.socket_dir` says otherwise.
pub const DEFAULT_SOCKET_DIR: &str = "/run/vswitch";

/// `[switch]`: datapath settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchConfig {
    /// CPUs that run PMD threads, one thread each (default: the last CPU).
    #[serde(default = "default_pmd_cores")]
    pub pmd_cores: Vec<usize>,
    /// Exact-match cache entries per PMD (a power of two).
    #[serde(default = "default_emc_entries")]
    pub emc_entries: usize,
    /// A new flow evicts a cached one once in this many misses (OVS's `emc-insert-inv-prob`;
    /// 1: every miss). Free entries are always filled.
    #[serde(default = "default_emc_insert_inv_prob")]
    pub emc_insert_inv_prob: u32,
    /// MAC learning table size per PMD.
    #[serde(default = "default_mac_table_size")]
    pub mac_table_size: usize,
    /// Seconds a learned MAC lives without traffic.
    #[serde(default = "default_mac_aging_secs")]
    pub mac_aging_secs: u64,
    /// Microseconds without traffic after which a PMD sleeps until a port signals traffic
    /// (0: never sleep, busy-poll like OVS-DPDK).
    #[serde(default = "default_pmd_sleep_after_us")]
    pub pmd_sleep_after_us: u64,
    /// The directory vhost-user sockets live in: a port's `socket`, server or client mode,
    /// must be an absolute path inside it (no `..`; a subdirectory that is a symlink out
    /// of it is refused too). `"/"` allows any absolute path. Default `/run/vswitch`.
    #[serde(default = "default_socket_dir")]
    pub socket_dir: PathBuf,
    /// The most guest memory (bytes, all regions together) one vhost-user frontend may
    /// share with a port; a larger memory table is refused. Default 4 TiB (4398046511104),
    /// more than any VM a compute node runs; 1 MiB at least.
    #[serde(default = "default_max_guest_memory")]
    pub max_guest_memory: u64,
    /// Offer vhost-user frontends the packed ring (VIRTIO_F_RING_PACKED). Off by default:
    /// measured end to end it is not yet faster than the split ring (`bench/RESULTS.md`);
    /// a frontend that asks for it falls back to split.
    #[serde(default)]
    pub packed_ring: bool,
    /// Offer vhost-user frontends checksum and TCP segmentation offloads (VIRTIO_NET_F_CSUM,
    /// GUEST_CSUM, HOST_TSO4/6, GUEST_TSO4/6, HOST_ECN, GUEST_ECN). On by default: a guest
    /// hands the switch 64 KiB TCP frames, which go to a guest that takes them as they are
    /// and are segmented in software for every other output. A frontend connected before a
    /// change keeps what it negotiated until it reconnects.
    #[serde(default = "default_offloads")]
    pub offloads: bool,
}

fn default_pmd_cores() -> Vec<usize> {
    vec![online_cpus().last().copied().unwrap_or(0)]
}

/// The machine's online CPUs (from `/sys/devices/system/cpu/online`, e.g. `0-3,6`), whatever
/// this process's own affinity mask is; falls back to `0..available_parallelism`.
pub fn online_cpus() -> Vec<usize> {
    let parsed = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|text| parse_cpu_list(text.trim()));
    parsed.unwrap_or_else(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        (0..n).collect()
    })
}

/// Parses a kernel CPU list such as `0-3,6`.
fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if b < a || b - a > 4096 {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}
fn default_emc_entries() -> usize {
    8192
}
fn default_emc_insert_inv_prob() -> u32 {
    100
}
fn default_mac_table_size() -> usize {
    65_536
}
fn default_mac_aging_secs() -> u64 {
    300
}
fn default_pmd_sleep_after_us() -> u64 {
    200
}
fn default_max_guest_memory() -> u64 {
    ports::vhost::memory::DEFAULT_MAX_GUEST_MEMORY
}
fn default_offloads() -> bool {
    true
}
fn default_socket_dir() -> PathBuf {
    PathBuf::from(DEFAULT_SOCKET_DIR)
}

impl Default for SwitchConfig {
    fn default() -> Self {
        SwitchConfig {
            pmd_cores: default_pmd_cores(),
            emc_entries: default_emc_entries(),
            emc_insert_inv_prob: default_emc_insert_inv_prob(),
            mac_table_size: default_mac_table_size(),
            mac_aging_secs: default_mac_aging_secs(),
            pmd_sleep_after_us: default_pmd_sleep_after_us(),
            socket_dir: default_socket_dir(),
            max_guest_memory: default_max_guest_memory(),
            packed_ring: false,
            offloads: default_offloads(),
        }
    }
}

impl SwitchConfig {
    pub(super) fn validate(&self) -> Result<(), Problem> {
        let cores = vec![key("pmd_cores")];
        if self.pmd_cores.is_empty() {
            return Err(problem(cores, "at least one PMD core is needed"));
        }
        let online = online_cpus();
        let mut seen = HashSet::new();
        for &c in &self.pmd_cores {
            if !online.contains(&c) {
                let list: Vec<String> = online.iter().map(|c| c.to_string()).collect();
                return Err(problem(
                    cores,
                    format!(
                        "CPU {c} does not exist or is offline (online: {})",
                        list.join(",")
                    ),
                ));
            }
            if !seen.insert(c) {
                return Err(problem(cores, format!("CPU {c} is listed twice")));
            }
        }
        if !self.emc_entries.is_power_of_two() || !(256..=1 << 20).contains(&self.emc_entries) {
            return Err(problem(
                vec![key("emc_entries")],
                format!(
                    "{} must be a power of two in 256..=1048576",
                    self.emc_entries
                ),
            ));
        }
        if !(1..=1 << 20).contains(&self.emc_insert_inv_prob) {
            return Err(problem(
                vec![key("emc_insert_inv_prob")],
                format!("{} must be in 1..=1048576", self.emc_insert_inv_prob),
            ));
        }
        if !(1..=1 << 24).contains(&self.mac_table_size) {
            return Err(problem(
                vec![key("mac_table_size")],
                format!("{} is out of range 1..=16777216", self.mac_table_size),
            ));
        }
        if self.max_guest_memory < 1 << 20 {
            return Err(problem(
                vec![key("max_guest_memory")],
                format!("{} bytes is less than 1 MiB", self.max_guest_memory),
            ));
        }
        if self.mac_aging_secs == 0 {
            return Err(problem(vec![key("mac_aging_secs")], "must be at least 1"));
        }
        let dir = &self.socket_dir;
        if !dir.is_absolute() || dir.components().any(|c| c == Component::ParentDir) {
            return Err(problem(
                vec![key("socket_dir")],
                format!(
                    "{dir:?} must be an absolute path without `..` (\"/\" allows any socket path)"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod test {
    use super::parse_cpu_list;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0-2,5,7-8"), Some(vec![0, 1, 2, 5, 7, 8]));
        assert_eq!(parse_cpu_list("3"), Some(vec![3]));
        assert_eq!(parse_cpu_list("2-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }
}
