//! Overlay and underlay counters: plain `u64`s one PMD owns and bumps with `+= 1`, published
//! with the rest of its [`crate::stats::PmdSnapshot`].

/// One PMD's VXLAN, ARP and neighbour counters. Each field's doc line is its help text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TunnelStats {
    /// Frames encapsulated into VXLAN and handed to the uplink (or its resolution queue).
    pub encap_packets: u64,
    /// VXLAN frames to this node decapsulated to a vxlan port.
    pub decap_packets: u64,
    /// Inner frames too large for the underlay MTU, dropped (never fragmented).
    pub mtu_drops: u64,
    /// Frames to a VXLAN port while no uplink with an `ip` exists, dropped.
    pub no_underlay_drops: u64,
    /// Frames whose remote VTEP is off-link with no gateway configured, dropped.
    pub no_route_drops: u64,
    /// Next-hop lookups that found no usable neighbour entry (resolution started or pending).
    pub neigh_misses: u64,
    /// Frames held while their next hop was being resolved.
    pub neigh_queued: u64,
    /// Held frames sent once their next hop resolved.
    pub neigh_released: u64,
    /// Frames dropped because the resolution queue was full.
    pub neigh_queue_overflow: u64,
    /// Held frames dropped because their next hop never answered.
    pub neigh_timeout_drops: u64,
    /// Neighbour entries learned or changed (from ARP, here or announced by a peer PMD).
    pub neigh_updates: u64,
    /// Neighbour entries evicted from a full table to make room for a next hop in use.
    pub neigh_evictions: u64,
    /// Unsolicited neighbour mappings (ARP from an address without an entry, or a peer
    /// PMD's announcement) not learned because the table was full of live entries.
    pub neigh_refused: u64,
    /// ARP requests sent to resolve next hops.
    pub arp_requests_sent: u64,
    /// ARP replies sent for this node's underlay address.
    pub arp_replies_sent: u64,
    /// ARP replies received.
    pub arp_replies_received: u64,
    /// VXLAN frames from a remote/VNI pair no vxlan port is configured for, dropped.
    pub decap_unknown_vni: u64,
    /// VXLAN frames to an address that is not this node's, dropped.
    pub decap_not_local: u64,
    /// VXLAN-looking frames (UDP to 4789) whose outer headers do not parse, dropped.
    pub decap_malformed: u64,
    /// Frames on the uplink that are neither VXLAN to this node nor ARP for it, dropped.
    pub underlay_other: u64,
}

impl TunnelStats {
    /// Adds `o` into `self`, counter by counter (totals over PMDs).
    pub fn add(&mut self, o: &TunnelStats) {
        let TunnelStats {
            encap_packets,
            decap_packets,
            mtu_drops,
            no_underlay_drops,
            no_route_drops,
            neigh_misses,
            neigh_queued,
            neigh_released,
            neigh_queue_overflow,
            neigh_timeout_drops,
            neigh_updates,
            neigh_evictions,
            neigh_refused,
            arp_requests_sent,
            arp_replies_sent,
            arp_replies_received,
            decap_unknown_vni,
            decap_not_local,
            decap_malformed,
            underlay_other,
        } = o;
        self.encap_packets += encap_packets;
        self.decap_packets += decap_packets;
        self.mtu_drops += mtu_drops;
        self.no_underlay_drops += no_underlay_drops;
        self.no_route_drops += no_route_drops;
        self.neigh_misses += neigh_misses;
        self.neigh_queued += neigh_queued;
        self.neigh_released += neigh_released;
        self.neigh_queue_overflow += neigh_queue_overflow;
        self.neigh_timeout_drops += neigh_timeout_drops;
        self.neigh_updates += neigh_updates;
        self.neigh_evictions += neigh_evictions;
        self.neigh_refused += neigh_refused;
        self.arp_requests_sent += arp_requests_sent;
        self.arp_replies_sent += arp_replies_sent;
        self.arp_replies_received += arp_replies_received;
        self.decap_unknown_vni += decap_unknown_vni;
        self.decap_not_local += decap_not_local;
        self.decap_malformed += decap_malformed;
        self.underlay_other += underlay_other;
    }

    /// Every counter with its name and help text, in a fixed order (for exporters).
    pub fn fields(&self) -> [(&'static str, &'static str, u64); 20] {
        [
            (
                "encap_packets",
                "Frames encapsulated into VXLAN.",
                self.encap_packets,
            ),
            (
                "decap_packets",
                "VXLAN frames decapsulated to a vxlan port.",
                self.decap_packets,
            ),
            (
                "mtu_drops",
                "Inner frames too large for the underlay MTU, dropped.",
                self.mtu_drops,
            ),
            (
                "no_underlay_drops",
                "Frames to a VXLAN port without an underlay, dropped.",
                self.no_underlay_drops,
            ),
            (
                "no_route_drops",
                "Frames to an off-link VTEP without a gateway, dropped.",
                self.no_route_drops,
            ),
            (
                "neigh_misses",
                "Next-hop lookups without a usable neighbour entry.",
                self.neigh_misses,
            ),
            (
                "neigh_queued",
                "Frames held while their next hop was resolved.",
                self.neigh_queued,
            ),
            (
                "neigh_released",
                "Held frames sent once their next hop resolved.",
                self.neigh_released,
            ),
            (
                "neigh_queue_overflow",
                "Frames dropped because the resolution queue was full.",
                self.neigh_queue_overflow,
            ),
            (
                "neigh_timeout_drops",
                "Held frames dropped because the next hop never answered.",
                self.neigh_timeout_drops,
            ),
            (
                "neigh_updates",
                "Neighbour entries learned or changed.",
                self.neigh_updates,
            ),
            (
                "neigh_evictions",
                "Neighbour entries evicted from a full table for a next hop in use.",
                self.neigh_evictions,
            ),
            (
                "neigh_refused",
                "Unsolicited neighbour mappings not learned: the table was full.",
                self.neigh_refused,
            ),
            (
                "arp_requests_sent",
                "ARP requests sent to resolve next hops.",
                self.arp_requests_sent,
            ),
            (
                "arp_replies_sent",
                "ARP replies sent for the underlay address.",
                self.arp_replies_sent,
            ),
            (
                "arp_replies_received",
                "ARP replies received.",
                self.arp_replies_received,
            ),
            (
                "decap_unknown_vni",
                "VXLAN frames for no configured vxlan port, dropped.",
                self.decap_unknown_vni,
            ),
            (
                "decap_not_local",
                "VXLAN frames to another address, dropped.",
                self.decap_not_local,
            ),
            (
                "decap_malformed",
                "VXLAN frames whose outer headers do not parse, dropped.",
                self.decap_malformed,
            ),
            (
                "underlay_other",
                "Uplink frames neither VXLAN to us nor ARP, dropped.",
                self.underlay_other,
            ),
        ]
    }
}
