//! Per-PMD counters: plain integers the owning PMD bumps with `+= 1`, copied about once a
//! millisecond into a mirror that other threads read. No atomic is shared per packet.

use std::sync::{Arc, Mutex};

use flowtable::PortNo;

/// Why a frame (or one copy of it) was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// A rule's action list was empty (`drop`).
    Rule,
    /// Output to a port that does not exist (deleted, or never created).
    NoPort,
    /// The output port's queue did not take the frame.
    TxFull,
    /// Output to the port the frame came in on (skipped, as in OpenFlow).
    InPort,
    /// `normal` found nowhere to send the frame.
    NoDestination,
    /// A VLAN push or pop could not be applied (frame too short or too long).
    Malformed,
    /// The in-port does not carry the frame's VLAN (a tagged frame on an access port, a
    /// VLAN a trunk does not allow, an untagged frame on a trunk without a native VLAN).
    Vlan,
    /// Overlay or underlay: see the tunnel counters for which (MTU, neighbour queue full or
    /// unanswered, unknown VNI, not for this node, no underlay or route).
    Tunnel,
    /// Split horizon: `normal` never sends a frame that came from a vxlan port to a vxlan
    /// port; this one had nowhere else to go (its destination is learned behind another
    /// vxlan port, or the only ports carrying its VLAN are vxlan ports).
    SplitHorizon,
    /// The frame's virtio-net header asked for an offload the frame does not fit (a lying
    /// header: see the in-port's `rx_offload_bad`).
    BadOffload,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 10] = [
        DropReason::Rule,
        DropReason::NoPort,
        DropReason::TxFull,
        DropReason::InPort,
        DropReason::NoDestination,
        DropReason::Malformed,
        DropReason::Vlan,
        DropReason::Tunnel,
        DropReason::SplitHorizon,
        DropReason::BadOffload,
    ];
    /// How many reasons there are.
    pub const COUNT: usize = Self::ALL.len();

    /// The label used in metrics and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Rule => "rule",
            DropReason::NoPort => "no_port",
            DropReason::TxFull => "tx_full",
            DropReason::InPort => "in_port",
            DropReason::NoDestination => "no_destination",
            DropReason::Malformed => "malformed",
            DropReason::Vlan => "vlan",
            DropReason::Tunnel => "tunnel",
            DropReason::SplitHorizon => "split_horizon",
            DropReason::BadOffload => "bad_offload",
        }
    }
}

/// One port's counters as seen by one PMD.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortCounters {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames the port's tx queue took.
    pub tx_packets: u64,
    /// Bytes the port's tx queue took.
    pub tx_bytes: u64,
    /// Frames the port's tx queue refused.
    pub tx_dropped: u64,
    /// Frames received with an offload request (a partial checksum or TSO) that checked out.
    pub rx_offload: u64,
    /// Frames received with an offload request that lied about the frame (dropped).
    pub rx_offload_bad: u64,
    /// Frames handed to the port with their offload request kept (a guest that negotiated
    /// it gets the large frame as it is); a full ring may still refuse some (`tx_dropped`).
    pub tx_offload: u64,
    /// Segments made in software for the port (frames it could not take as they were).
    pub tx_segments: u64,
    /// Partial checksums filled in software for the port.
    pub tx_csum_filled: u64,
}

impl PortCounters {
    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &PortCounters) {
        self.rx_packets += o.rx_packets;
        self.rx_bytes += o.rx_bytes;
        self.tx_packets += o.tx_packets;
        self.tx_bytes += o.tx_bytes;
        self.tx_dropped += o.tx_dropped;
        self.rx_offload += o.rx_offload;
        self.rx_offload_bad += o.rx_offload_bad;
        self.tx_offload += o.tx_offload;
        self.tx_segments += o.tx_segments;
        self.tx_csum_filled += o.tx_csum_filled;
    }

    /// Port `port`'s counters summed over the PMDs' snapshots `pmds` (each PMD counts the
    /// frames it moved).
    pub fn total(pmds: &[PmdSnapshot], port: PortNo) -> PortCounters {
        let mut total = PortCounters::default();
        for s in pmds {
            if let Some(c) = s.stats.ports.get(port.index()) {
                total.add(c);
            }
        }
        total
    }
}

/// One rx queue's counters, kept by the PMD polling it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxqCounters {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
}

/// One PMD's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PmdStats {
    /// Loop iterations that received at least one frame.
    pub busy_iterations: u64,
    /// Loop iterations that received nothing.
    pub idle_iterations: u64,
    /// Nanoseconds spent in busy iterations.
    pub busy_ns: u64,
    /// Nanoseconds spent in idle iterations (polling or asleep).
    pub idle_ns: u64,
    /// Times the PMD went to sleep waiting for traffic.
    pub sleeps: u64,
    /// Loop iterations by how long each took (commands, polling, forwarding; a sleep is not
    /// part of one): bucket `k` counts those shorter than [`iteration_bucket_le_ns`]`(k)`, the
    /// last bucket the longer ones. Whatever stalls the PMD (a long command, the host taking
    /// its CPU) shows as an iteration in a high bucket.
    pub iterations_by_time: [u64; ITERATION_BUCKETS],
    /// The summed duration of those iterations, nanoseconds.
    pub iteration_ns: u64,
    /// Frames received on all of this PMD's rx queues.
    pub rx_packets: u64,
    /// Frames decided by their in-port alone, without a cache or classifier lookup: the
    /// rules give every frame of that port one decision ([`flowtable::Classifier::port_decision`],
    /// OVS's "simple match"). The frames of other ports go to the exact-match cache.
    pub port_decided: u64,
    /// Exact-match cache hits.
    pub emc_hits: u64,
    /// Exact-match cache misses (each one a classifier lookup), frames decided while the
    /// cache sits out for hitting too rarely included (`pmd::lookup::EmcGate`).
    pub emc_misses: u64,
    /// Classifier lookups that matched a rule.
    pub classifier_hits: u64,
    /// Classifier lookups that matched no rule (the frame took `normal`).
    pub classifier_misses: u64,
    /// Subtables probed by classifier lookups.
    pub classifier_probes: u64,
    /// Dropped frames (or copies), by [`DropReason`] in `DropReason::ALL` order.
    pub drops: [u64; DropReason::COUNT],
    /// Per-port counters, indexed by port number.
    pub ports: Vec<PortCounters>,
}

/// Buckets of [`PmdStats::iterations_by_time`]: 1.024 µs doubling up to 67 ms, then the rest.
pub const ITERATION_BUCKETS: usize = 18;
/// The smallest bucket's bound: 2^10 ns, so a bucket is a bit count of the duration.
const ITERATION_BUCKET_SHIFT: u32 = 10;

/// The upper bound (exclusive) of iteration bucket `k` in nanoseconds; `None` for the last
/// bucket (unbounded) or past it.
pub const fn iteration_bucket_le_ns(k: usize) -> Option<u64> {
    if k + 1 >= ITERATION_BUCKETS {
        None
    } else {
        Some(1 << (ITERATION_BUCKET_SHIFT as usize + k))
    }
}

impl PmdStats {
    /// Counts one loop iteration that took `ns`.
    #[inline]
    pub fn count_iteration(&mut self, ns: u64) {
        let k = (u64::BITS - (ns >> ITERATION_BUCKET_SHIFT).leading_zeros()) as usize;
        self.iterations_by_time[k.min(ITERATION_BUCKETS - 1)] += 1;
        self.iteration_ns += ns;
    }

    /// Counts one drop.
    #[inline]
    pub fn drop(&mut self, why: DropReason) {
        self.drops[why as usize] += 1;
    }

    /// The counters of `port`, growing the table if needed (only on port add).
    pub fn port_mut(&mut self, port: PortNo) -> &mut PortCounters {
        let i = port.index();
        if self.ports.len() <= i {
            self.ports.resize(i + 1, PortCounters::default());
        }
        &mut self.ports[i]
    }

    /// Drops of one reason.
    pub fn drops_of(&self, why: DropReason) -> u64 {
        self.drops[why as usize]
    }
}

/// What a PMD publishes: its counters plus who it is.
#[derive(Clone, Debug, Default)]
pub struct PmdSnapshot {
    /// PMD index.
    pub pmd: usize,
    /// The CPU it is pinned to.
    pub core: usize,
    /// Rules installed in its classifier.
    pub rules: usize,
    /// Classifier subtables.
    pub subtables: usize,
    /// MAC table entries.
    pub mac_entries: usize,
    /// Rx queues it polls: (port, queue).
    pub rxqs: Vec<(PortNo, usize)>,
    /// Counters of each rx queue, in the order of `rxqs`.
    pub rxq_counters: Vec<RxqCounters>,
    /// Counters.
    pub stats: PmdStats,
    /// VXLAN, ARP and neighbour counters.
    pub tunnel: crate::tunnel::stats::TunnelStats,
}

/// The mirror a PMD publishes into and readers copy out of.
pub type StatsMirror = Arc<Mutex<PmdSnapshot>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterations_land_in_the_bucket_of_their_duration() {
        let mut s = PmdStats::default();
        for ns in [
            0,
            1023,
            1024,
            2047,
            2048,
            1_000_000,
            67_108_863,
            67_108_864,
            u64::MAX / 2,
        ] {
            s.count_iteration(ns);
        }
        let mut want = [0u64; ITERATION_BUCKETS];
        want[0] = 2; // < 1024
        want[1] = 2; // < 2048
        want[2] = 1; // 2048
        want[10] = 1; // 1 ms: < 2^20 ns
        want[16] = 1; // just under 2^26 ns
        want[17] = 2; // 2^26 ns and beyond: the unbounded bucket
        assert_eq!(s.iterations_by_time, want);
        for k in 0..ITERATION_BUCKETS {
            match iteration_bucket_le_ns(k) {
                Some(le) => assert_eq!(le, 1024 << k),
                None => assert_eq!(k, ITERATION_BUCKETS - 1),
            }
        }
    }
}
