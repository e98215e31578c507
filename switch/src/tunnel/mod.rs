//! VXLAN over an IPv4 underlay, per PMD.
//!
//! - The **underlay** is the one port configured with an `ip` (an AF_XDP or tap uplink, or a
//!   memory port in tests). It is not a bridge port: `normal` never floods to it, and what
//!   arrives on it is either ARP (answered for our address, learned when it answers us),
//!   VXLAN to our address (decapsulated, [`decap`]), or dropped and counted.
//! - A **vxlan port** is a virtual bridge port (no queues): output to it encapsulates the
//!   frame ([`encap`]) towards its `remote_ip` and puts it on the uplink's tx batch, or holds
//!   it in the [`neigh`] queue until the next hop's MAC is known. A frame that arrived on
//!   one is never sent to one by `normal` (split horizon, see `pmd/normal.rs`).
//!
//! Each PMD owns a [`Tunnel`]: its port tables (sent with the port-add messages), its
//! neighbour cache, held frames, scratch buffer and counters. Neighbours one PMD learns are
//! announced to the others as messages, like MACs: no lock and no shared atomic per packet.

pub(crate) mod arp;
pub(crate) mod decap;
pub(crate) mod encap;
pub(crate) mod neigh;
pub mod stats;
#[cfg(test)]
mod tests;

use std::net::Ipv4Addr;

use flowtable::wire::{ethernet, ipv4, udp, vxlan};
use flowtable::{MacAddr, PortNo, Vni};
use ports::Packet;

use crate::config::{PortConfig, PortType};
use crate::datapath::log_limit::LogLimit;
use crate::datapath::tx::TxCtx;
use crate::stats::DropReason;
use neigh::NeighCache;
use stats::TunnelStats;
use tracing::{info, warn};

/// The underlay MTU when the uplink does not set one and has no interface to ask (a memory
/// port), or the interface's cannot be read.
pub const DEFAULT_MTU: u16 = 1500;
/// Underlay MTUs a config may set; an interface's own MTU above the top is clamped to it.
pub const MTU_RANGE: std::ops::RangeInclusive<u16> = 576..=9216;
/// Bytes VXLAN adds in front of the inner frame: Ethernet 14, IPv4 20, UDP 8, VXLAN 8.
pub const ENCAP_LEN: usize =
    ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN + vxlan::HEADER_LEN;
const _: () = assert!(ENCAP_LEN == 50);

/// The uplink as the PMD uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Underlay {
    /// Its port number.
    pub port: PortNo,
    /// This node's underlay address (the VTEP).
    pub ip: Ipv4Addr,
    /// Prefix length of the on-link subnet.
    pub prefix_len: u8,
    /// The gateway for off-link VTEPs.
    pub gateway: Option<Ipv4Addr>,
    /// The MAC the switch uses on the underlay.
    pub mac: MacAddr,
    /// The largest IPv4 packet the underlay carries.
    pub mtu: u16,
}

impl Underlay {
    /// The next hop towards `dst`: itself when on-link, else the gateway.
    pub fn next_hop(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0);
        if (u32::from(dst) ^ u32::from(self.ip)) & mask == 0 {
            Some(dst)
        } else {
            self.gateway
        }
    }

    /// Whether `ip` is on the underlay's subnet.
    pub fn on_link(&self, ip: Ipv4Addr) -> bool {
        self.next_hop(ip) == Some(ip)
    }
}

/// The MTU of underlay port `cfg`, decided when it is opened: its `mtu` if set (validated:
/// within [`MTU_RANGE`], and for `afxdp` at most [`ports::afxdp::MAX_MTU`]); else, for an
/// `afxdp` or `tap` port, the interface's own MTU from sysfs, clamped (with a warning) to
/// what the port carries; else [`DEFAULT_MTU`].
pub(crate) fn underlay_mtu(cfg: &PortConfig) -> u16 {
    if let Some(mtu) = cfg.mtu {
        return mtu;
    }
    let (interface, cap) = match (cfg.kind, cfg.interface.as_deref()) {
        (PortType::Afxdp, Some(i)) => (i, ports::afxdp::MAX_MTU.min(*MTU_RANGE.end())),
        (PortType::Tap, Some(i)) => (i, *MTU_RANGE.end()),
        _ => return DEFAULT_MTU,
    };
    match ports::link::mtu(interface) {
        Ok(mtu) if mtu > u32::from(cap) => {
            warn!(
                port = %cfg.name,
                interface,
                interface_mtu = mtu,
                mtu = cap,
                "the interface's MTU is more than this port carries: the underlay MTU is \
                 clamped (larger inner frames are dropped and counted; set `mtu` to choose)"
            );
            cap
        }
        Ok(mtu) => {
            info!(port = %cfg.name, interface, mtu, "underlay MTU from the interface");
            mtu as u16
        }
        Err(error) => {
            warn!(
                port = %cfg.name,
                interface,
                %error,
                mtu = DEFAULT_MTU,
                "cannot read the interface's MTU; using the default"
            );
            DEFAULT_MTU
        }
    }
}

/// A vxlan port as the PMD uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct VxlanPort {
    /// Its port number.
    pub port: PortNo,
    /// The VNI its frames carry (unless a rule sets another).
    pub vni: Vni,
    /// The remote VTEP.
    pub remote: Ipv4Addr,
    /// The outer source address, if not the underlay's.
    pub local: Option<Ipv4Addr>,
}

/// Most neighbours announced to the peer PMDs at once (the PMD sends them after each round
/// of bursts). More in one round (a flood of ARP) are not announced: a peer waiting for one
/// of them asks again, and the answer to that is announced.
pub(crate) const MAX_ANNOUNCE: usize = 64;

/// One PMD's overlay state.
pub(crate) struct Tunnel {
    pub underlay: Option<Underlay>,
    /// Indexed by port number.
    vxlan: Vec<Option<VxlanPort>>,
    /// The same ports, for decap lookups by (VNI, remote).
    by_vni: Vec<VxlanPort>,
    pub neigh: NeighCache,
    /// The frame being encapsulated.
    scratch: Packet,
    /// IPv4 identification of the next outer header.
    ident: u16,
    /// Next hops to ask again (filled by the timer).
    retry: Vec<u32>,
    /// Neighbours learned since the last announcement to peer PMDs (at most
    /// [`MAX_ANNOUNCE`]).
    pub announce: Vec<(Ipv4Addr, MacAddr)>,
    mtu_log: LogLimit,
    pub stats: TunnelStats,
}

impl Tunnel {
    pub fn new() -> Tunnel {
        Tunnel {
            underlay: None,
            vxlan: Vec::new(),
            by_vni: Vec::new(),
            neigh: NeighCache::new(),
            scratch: Packet::new(),
            ident: 0,
            retry: Vec::with_capacity(neigh::MAX_ENTRIES),
            announce: Vec::with_capacity(MAX_ANNOUNCE),
            mtu_log: LogLimit::default(),
            stats: TunnelStats::default(),
        }
    }

    /// True if `port` is the underlay.
    #[inline]
    pub fn is_underlay(&self, port: PortNo) -> bool {
        self.underlay.is_some_and(|u| u.port == port)
    }

    /// The vxlan port numbered `port`, if it is one.
    #[inline]
    pub fn vxlan_port(&self, port: PortNo) -> Option<&VxlanPort> {
        self.vxlan.get(port.index()).and_then(Option::as_ref)
    }

    /// Adds a vxlan port.
    pub fn add_vxlan(&mut self, vx: VxlanPort) {
        let i = vx.port.index();
        if self.vxlan.len() <= i {
            self.vxlan.resize(i + 1, None);
        }
        self.vxlan[i] = Some(vx);
        self.by_vni.retain(|p| p.port != vx.port);
        self.by_vni.push(vx);
    }

    /// Forgets `port` (vxlan or underlay). Losing the underlay drops the held frames and the
    /// neighbours (they were resolved on that link); returns how many frames were dropped.
    pub fn del_port(&mut self, port: PortNo) -> u64 {
        if let Some(slot) = self.vxlan.get_mut(port.index()) {
            *slot = None;
        }
        self.by_vni.retain(|p| p.port != port);
        if self.is_underlay(port) {
            self.underlay = None;
            return self.neigh.clear();
        }
        0
    }

    /// Whether `ip` is one of this node's VTEP addresses (the underlay's, or a vxlan port's
    /// `local_ip`): ARP for it is answered.
    pub fn is_local(&self, ip: Ipv4Addr) -> bool {
        self.underlay.is_some_and(|u| u.ip == ip) || self.by_vni.iter().any(|p| p.local == Some(ip))
    }

    /// The vxlan port for frames from `remote` with `vni`.
    #[inline]
    pub fn port_for(&self, vni: Vni, remote: Ipv4Addr) -> Option<&VxlanPort> {
        self.by_vni
            .iter()
            .find(|p| p.vni == vni && p.remote == remote)
    }

    /// Records `ip` at `mac` and sends what was held for it. `announce` when learned here
    /// (not from a peer's announcement): then new mappings, and confirmations of known ones
    /// (rate-limited, see [`neigh::Learn::Refresh`]), are queued for the peer PMDs. A
    /// mapping the full table refused is counted, and still announced: it may answer a
    /// peer's request (the answers reach whichever PMD polls the uplink).
    pub fn learn(&mut self, ip: Ipv4Addr, mac: MacAddr, announce: bool, cx: &mut TxCtx<'_>) {
        let Some(u) = self.underlay else {
            return;
        };
        let tell = match self.neigh.learn(u32::from(ip), mac, cx.now) {
            neigh::Learn::New => {
                self.stats.neigh_updates += 1;
                true
            }
            neigh::Learn::Refresh => true,
            neigh::Learn::Quiet => false,
            neigh::Learn::Refused => {
                self.stats.neigh_refused += 1;
                true
            }
        };
        if tell && announce && self.announce.len() < MAX_ANNOUNCE {
            self.announce.push((ip, mac));
        }
        let released = &mut self.stats.neigh_released;
        self.neigh.release(u32::from(ip), |pkt| {
            if let Some(eth) = pkt.data_mut().get_mut(..6) {
                eth.copy_from_slice(&mac.0);
            }
            if cx.enqueue(u.port, pkt) {
                *released += 1;
            } else {
                cx.stats.drop(DropReason::NoPort);
            }
        });
    }

    /// Timer work (about once a second): repeats ARP requests for unresolved next hops and
    /// drops frames held for those that never answered.
    pub fn tick(&mut self, cx: &mut TxCtx<'_>) {
        let Some(u) = self.underlay else {
            return;
        };
        let dropped = self.neigh.tick(cx.now, &mut self.retry);
        self.stats.neigh_timeout_drops += dropped;
        cx.stats.drops[DropReason::Tunnel as usize] += dropped;
        for i in 0..self.retry.len() {
            let target = Ipv4Addr::from(self.retry[i]);
            self.send_request(&u, target, cx);
        }
    }

    /// Sends an ARP request for `target` out of the underlay.
    fn send_request(&mut self, u: &Underlay, target: Ipv4Addr, cx: &mut TxCtx<'_>) {
        arp::request(&mut self.scratch, u.mac, u.ip, target);
        if cx.enqueue(u.port, &mut self.scratch) {
            self.stats.arp_requests_sent += 1;
        }
    }
}
