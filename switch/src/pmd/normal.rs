//! Where `normal` sends a frame: one pure function ([`Ports::forward`]) that the datapath
//! ([`super::execute`]) and the tracer ([`super::trace`]) both ask, so they cannot disagree.
//! It reads the MAC table and the port tables and changes nothing (learning is the
//! datapath's own step, before it asks).
//!
//! - A unicast destination learned (in the frame's L2 domain) on a port that carries the
//!   frame's VLAN: that port.
//! - Anything else (a group address, an unknown destination, or one learned on a port that
//!   does not carry the VLAN): flood to the bridge ports that carry the VLAN, never back out
//!   of the in-port.
//! - **Split horizon.** A frame whose in-port is a vxlan port came from the overlay: the VTEP
//!   that sent it sent a copy to every VTEP it had to reach (head-end replication), so
//!   `normal` never sends it to a vxlan port, of any VNI. A flood leaves such a frame on the
//!   local ports only; a destination learned behind another vxlan port is dropped
//!   ([`DropReason::SplitHorizon`]), as is a flood whose only candidates were vxlan ports.
//!   Without it, a full mesh of three or more switches sends every broadcast round the mesh
//!   for ever, each lap a copy to every guest and a MAC move on every switch. With it, a
//!   remote MAC arrives only from the VTEP it lives behind, so it stays learned on that
//!   vxlan port. Explicit rules (`output:` a vxlan port) are not affected: they are the
//!   operator's choice.

use std::time::Instant;

use flowtable::fdb::L2Domain;
use flowtable::{FlowKey, MacTable, PortNo, VlanId};

use crate::datapath::vlan::PortVlan;
use crate::stats::DropReason;
use crate::tunnel::Tunnel;

/// The L2 domain of a frame: its outer VLAN, or the untagged domain.
pub(crate) fn domain(key: &FlowKey) -> L2Domain {
    match key.vlan_vid().and_then(VlanId::new) {
        Some(vid) => L2Domain::vlan(vid),
        None => L2Domain::untagged(),
    }
}

/// The port `normal` finds the frame's destination learned on: `None` for a group address
/// or an unknown (or expired) one.
pub(crate) fn learned_port(fdb: &MacTable, key: &FlowKey, now: Instant) -> Option<PortNo> {
    let dst = key.eth_dst();
    if dst.is_multicast() {
        return None;
    }
    fdb.lookup(domain(key), dst, now)
}

/// One frame, as far as the choice of its ports goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    /// The port it arrived on (a decapsulated frame's: its vxlan port).
    pub in_port: PortNo,
    /// Its VLAN (`None`: the untagged domain).
    pub vid: Option<u16>,
    /// It came from the overlay (its in-port is a vxlan port): split horizon applies.
    pub from_overlay: bool,
}

impl Frame {
    /// The frame with key `key` arriving on `in_port`.
    #[inline]
    pub fn new(key: &FlowKey, in_port: PortNo, tunnel: &Tunnel) -> Frame {
        Frame {
            in_port,
            vid: key.vlan_vid(),
            from_overlay: tunnel.vxlan_port(in_port).is_some(),
        }
    }
}

/// What `normal` does with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Forward {
    /// Send it to the port its destination is learned on. (That may be its in-port: the
    /// output then drops it as `in_port`, as any output there.)
    Learned(PortNo),
    /// Send a copy to each of the `copies` (at least one) ports of the flood list that
    /// [`Ports::floods_to`] accepts.
    Flood {
        /// How many ports get a copy.
        copies: usize,
    },
    /// Send it nowhere: `no_destination` (no port carries its VLAN but the in-port) or
    /// `split_horizon` (it came from the overlay, and its learned port, or every flood
    /// candidate, is a vxlan port).
    Drop {
        /// The drop reason to count.
        reason: DropReason,
        /// The vxlan port its destination is learned on, when split horizon refused that.
        learned: Option<PortNo>,
    },
}

/// The ports `normal` chooses among.
#[derive(Clone, Copy)]
pub(crate) struct Ports<'a> {
    /// The bridge ports, in flood order (not the underlay).
    pub flood: &'a [PortNo],
    /// Each port's VLAN mode, by port number (a port past the end carries every VLAN).
    pub vlans: &'a [PortVlan],
    /// Which ports are vxlan ports.
    pub tunnel: &'a Tunnel,
}

impl Ports<'_> {
    /// Whether `port` carries the frame's VLAN.
    #[inline]
    fn carries(&self, f: &Frame, port: PortNo) -> bool {
        self.vlans
            .get(port.index())
            .is_none_or(|v| v.carries(f.vid))
    }

    /// Whether split horizon keeps the frame from `port`: it came from the overlay, and
    /// `port` leads back into it.
    #[inline]
    fn split(&self, f: &Frame, port: PortNo) -> bool {
        f.from_overlay && self.tunnel.vxlan_port(port).is_some()
    }

    /// Whether a flood of the frame sends a copy to `port`: not its in-port, a port that
    /// carries its VLAN, and not a vxlan port when the frame came from the overlay.
    #[inline]
    pub fn floods_to(&self, f: &Frame, port: PortNo) -> bool {
        port != f.in_port && self.carries(f, port) && !self.split(f, port)
    }

    /// `normal`'s decision for the frame with key `key` arriving on `in_port` at `now`: the
    /// frame as the choice of its ports sees it (for [`Ports::floods_to`]), and where it
    /// goes. The datapath asks after learning the frame's source; the tracer asks without.
    #[inline]
    pub fn forward(
        &self,
        fdb: &MacTable,
        key: &FlowKey,
        in_port: PortNo,
        now: Instant,
    ) -> (Frame, Forward) {
        let frame = Frame::new(key, in_port, self.tunnel);
        (frame, self.decide(&frame, learned_port(fdb, key, now)))
    }

    /// Where `normal` sends the frame `f` whose destination is learned on `learned` (see
    /// [`learned_port`]). No allocation: a flood is a count, its ports are the flood list's
    /// that [`Ports::floods_to`] accepts.
    #[inline]
    pub fn decide(&self, f: &Frame, learned: Option<PortNo>) -> Forward {
        // Learned where a rule moved the frame into another VLAN: not a port of this one.
        if let Some(port) = learned.filter(|&p| self.carries(f, p)) {
            if port != f.in_port && self.split(f, port) {
                return Forward::Drop {
                    reason: DropReason::SplitHorizon,
                    learned: Some(port),
                };
            }
            return Forward::Learned(port);
        }
        let mut copies = 0;
        let mut split = false;
        for &port in self.flood {
            if port == f.in_port || !self.carries(f, port) {
                continue;
            }
            if self.split(f, port) {
                split = true;
            } else {
                copies += 1;
            }
        }
        match copies {
            0 => Forward::Drop {
                reason: if split {
                    DropReason::SplitHorizon
                } else {
                    DropReason::NoDestination
                },
                learned: None,
            },
            copies => Forward::Flood { copies },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use flowtable::key::VLAN_PRESENT;
    use flowtable::{MacAddr, Vni};

    use super::*;
    use crate::tunnel::VxlanPort;

    /// Ports 1, 2: local, access VLAN 10; 3: local, access VLAN 20; 4, 5: vxlan, VNI 100
    /// <-> VLAN 10; 6: vxlan, VNI 200 <-> VLAN 20.
    fn bridge() -> (Vec<PortNo>, Vec<PortVlan>, Tunnel) {
        let flood: Vec<PortNo> = (1..=6).map(PortNo).collect();
        let mut vlans = vec![PortVlan::Untagged];
        vlans.extend([10, 10, 20, 10, 10, 20].map(PortVlan::Access));
        let mut tunnel = Tunnel::new();
        for (port, vni, last) in [(4, 100, 4), (5, 100, 5), (6, 200, 4)] {
            tunnel.add_vxlan(VxlanPort {
                port: PortNo(port),
                vni: Vni::new(vni).unwrap(),
                remote: Ipv4Addr::new(198, 18, 0, last),
                local: None,
            });
        }
        (flood, vlans, tunnel)
    }

    fn key(vlan: u16, dst: MacAddr) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.set_vlan_tci(vlan | VLAN_PRESENT);
        k.set_eth_dst(dst);
        k
    }

    /// The ports a flood of `f` reaches, as the datapath walks them.
    fn flood_of(p: &Ports<'_>, f: &Frame) -> Vec<u32> {
        p.flood
            .iter()
            .filter(|&&q| p.floods_to(f, q))
            .map(|q| q.0)
            .collect()
    }

    #[test]
    fn a_local_frame_floods_to_every_port_of_its_vlan_vxlan_ports_included() {
        let (flood, vlans, tunnel) = bridge();
        let p = Ports {
            flood: &flood,
            vlans: &vlans,
            tunnel: &tunnel,
        };
        let f = Frame::new(&key(10, MacAddr::BROADCAST), PortNo(1), &tunnel);
        assert!(!f.from_overlay);
        assert_eq!(p.decide(&f, None), Forward::Flood { copies: 3 });
        assert_eq!(flood_of(&p, &f), [2, 4, 5]);
        // Learned behind a vxlan port: sent there.
        assert_eq!(p.decide(&f, Some(PortNo(5))), Forward::Learned(PortNo(5)));
    }

    #[test]
    fn a_frame_from_the_overlay_never_goes_back_into_it() {
        let (flood, vlans, tunnel) = bridge();
        let p = Ports {
            flood: &flood,
            vlans: &vlans,
            tunnel: &tunnel,
        };
        let f = Frame::new(&key(10, MacAddr::BROADCAST), PortNo(4), &tunnel);
        assert!(f.from_overlay);
        assert_eq!(p.decide(&f, None), Forward::Flood { copies: 2 });
        assert_eq!(flood_of(&p, &f), [1, 2]);
        // Learned behind the other vxlan port: dropped, saying where it was learned.
        assert_eq!(
            p.decide(&f, Some(PortNo(5))),
            Forward::Drop {
                reason: DropReason::SplitHorizon,
                learned: Some(PortNo(5)),
            }
        );
        // Learned locally: sent there; learned on its own in-port: the output drops it as
        // `in_port`, as for any port.
        assert_eq!(p.decide(&f, Some(PortNo(2))), Forward::Learned(PortNo(2)));
        assert_eq!(p.decide(&f, Some(PortNo(4))), Forward::Learned(PortNo(4)));
        // Learned on a port outside the frame's VLAN: flooded, as before.
        assert_eq!(p.decide(&f, Some(PortNo(6))), Forward::Flood { copies: 2 });
    }

    #[test]
    fn nowhere_to_go_is_split_horizon_only_when_vxlan_ports_were_left_out() {
        let (flood, vlans, tunnel) = bridge();
        let p = Ports {
            flood: &flood,
            vlans: &vlans,
            tunnel: &tunnel,
        };
        // VLAN 20 from vxlan port 6: port 3 takes it.
        let f = Frame::new(&key(20, MacAddr::BROADCAST), PortNo(6), &tunnel);
        assert_eq!(flood_of(&p, &f), [3]);
        // A transit node: VLAN 20 has vxlan ports 6 and 7 only (4 and 5 are plain VLAN-10
        // ports there): nothing is left for a frame from 6.
        let mut transit = vec![PortNo(6), PortNo(4), PortNo(5)];
        let mut tunnel2 = Tunnel::new();
        for (port, last) in [(6, 2), (7, 3)] {
            tunnel2.add_vxlan(VxlanPort {
                port: PortNo(port),
                vni: Vni::new(200).unwrap(),
                remote: Ipv4Addr::new(198, 18, 0, last),
                local: None,
            });
        }
        transit.push(PortNo(7));
        let mut vlans2 = vlans.clone();
        vlans2.push(PortVlan::Access(20));
        let p2 = Ports {
            flood: &transit,
            vlans: &vlans2,
            tunnel: &tunnel2,
        };
        let f = Frame::new(&key(20, MacAddr::BROADCAST), PortNo(6), &tunnel2);
        assert_eq!(
            p2.decide(&f, None),
            Forward::Drop {
                reason: DropReason::SplitHorizon,
                learned: None,
            }
        );
        // A local frame with no other port in its VLAN: no destination.
        let f = Frame::new(&key(20, MacAddr::BROADCAST), PortNo(3), &tunnel);
        let only3 = [PortNo(3)];
        let p3 = Ports { flood: &only3, ..p };
        assert_eq!(
            p3.decide(&f, None),
            Forward::Drop {
                reason: DropReason::NoDestination,
                learned: None,
            }
        );
    }

    #[test]
    fn group_addresses_are_never_looked_up() {
        let mut fdb = MacTable::new(16, Duration::from_secs(300));
        let now = Instant::now();
        let host = MacAddr([2, 0, 0, 0, 0, 8]);
        let k = key(10, host);
        fdb.learn(domain(&k), host, PortNo(5), now);
        assert_eq!(learned_port(&fdb, &k, now), Some(PortNo(5)));
        // Another VLAN is another domain.
        assert_eq!(learned_port(&fdb, &key(20, host), now), None);
        assert_eq!(learned_port(&fdb, &key(10, MacAddr::BROADCAST), now), None);
    }
}
