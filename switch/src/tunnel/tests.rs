//! Two PMDs' overlay state driven by hand, with the time injected: PMD A polls the uplink,
//! PMD B polls the guest and encapsulates. The test plays the remote VTEP (answering every
//! ARP request on the wire, which only A hears) and the PMD loop (delivering A's neighbour
//! announcements to B, running both timers), so minutes of neighbour life pass in
//! milliseconds.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use flowtable::key::extract;
use flowtable::wire::ArpOperation;
use flowtable::{MacAddr, PortNo, Vni};
use ports::mem::{self, MemPeer};
use ports::{Packet, Port};

use super::neigh::{MAX_ENTRIES, MAX_TRIES, REFRESH, RETRY};
use super::{arp, decap, encap, Tunnel, Underlay, VxlanPort, MAX_ANNOUNCE};
use crate::datapath::tx::{TxBatches, TxCtx};
use crate::datapath::vlan::PortVlan;
use crate::stats::PmdStats;

const UPLINK: PortNo = PortNo(0);
const VX: PortNo = PortNo(1);
const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const LOCAL_MAC: MacAddr = MacAddr([0x02, 0x76, 198, 18, 0, 1]);
const REMOTE_MAC: MacAddr = MacAddr([0x02, 0xee, 0, 0, 0, 2]);

/// One PMD's share: its tunnel state, its tx batch to the uplink, its counters.
struct FakePmd {
    t: Tunnel,
    tx: TxBatches,
    stats: PmdStats,
}

impl FakePmd {
    fn new(uplink: &mut mem::MemPort, index: usize) -> FakePmd {
        let mut t = Tunnel::new();
        t.underlay = Some(Underlay {
            port: UPLINK,
            ip: LOCAL,
            prefix_len: 24,
            gateway: None,
            mac: LOCAL_MAC,
            mtu: 1500,
        });
        t.add_vxlan(VxlanPort {
            port: VX,
            vni: Vni::new(100).unwrap(),
            remote: REMOTE,
            local: None,
        });
        let mut tx = TxBatches::new();
        tx.add(UPLINK, uplink.txq(index).unwrap());
        FakePmd {
            t,
            tx,
            stats: PmdStats::default(),
        }
    }

    /// Runs `f` with this PMD's tx context at `now`, then flushes what it queued.
    fn with_cx(&mut self, now: Instant, f: impl FnOnce(&mut Tunnel, &mut TxCtx<'_>)) {
        f(&mut self.t, &mut self.tx.cx(&mut self.stats, now));
        self.tx.flush(&mut self.stats);
    }

    /// A guest frame out of the vxlan port.
    fn send(&mut self, seq: u32, now: Instant) {
        self.send_to(VX, seq, now);
    }

    /// A guest frame out of vxlan port `port`.
    fn send_to(&mut self, port: PortNo, seq: u32, now: Instant) {
        let mut inner = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        inner.resize(60, 0);
        inner[56..60].copy_from_slice(&seq.to_be_bytes());
        let mut pkt = Packet::new();
        pkt.copy_from(&inner);
        let key = extract(&inner, PortNo(2));
        self.with_cx(now, |t, cx| {
            encap::output(
                t,
                port,
                &PortVlan::default(),
                &key,
                None,
                &mut pkt,
                true,
                cx,
            )
        });
    }
}

/// What the remote VTEP does with the frames on the wire: answers ARP requests for its
/// address into PMD A (which polls the uplink); returns how many VXLAN frames it received.
fn remote(wire: &MemPeer, a: &mut FakePmd, now: Instant) -> u32 {
    let mut vxlan = 0;
    for frame in wire.drain() {
        match arp::parse(&frame) {
            Some(req)
                if req.operation == ArpOperation::Request && req.target_protocol_addr == REMOTE =>
            {
                let mut reply = Packet::new();
                arp::reply(&mut reply, REMOTE_MAC, REMOTE, &req);
                let mut key = [extract(reply.data(), UPLINK)];
                a.with_cx(now, |t, cx| {
                    let n =
                        decap::underlay_rx(t, std::slice::from_mut(&mut reply), &mut key, &[], cx);
                    assert_eq!(n, 0, "ARP is consumed");
                });
            }
            Some(_) => {}
            None => {
                assert_eq!(
                    &frame[..6],
                    &REMOTE_MAC.0,
                    "encapsulated to the remote's MAC"
                );
                vxlan += 1;
            }
        }
    }
    vxlan
}

/// Frames from the wire into the PMD polling the uplink, as one burst; all must be consumed
/// (ARP).
fn underlay_in(a: &mut FakePmd, burst: &mut [Packet], now: Instant) {
    let mut keys: Vec<_> = burst.iter().map(|p| extract(p.data(), UPLINK)).collect();
    a.with_cx(now, |t, cx| {
        assert_eq!(decap::underlay_rx(t, burst, &mut keys, &[], cx), 0);
    });
}

/// The answer of `ip` at `mac` to our request for it among `frames`.
fn answer(frames: &[Vec<u8>], ip: Ipv4Addr, mac: MacAddr) -> Packet {
    let req = frames
        .iter()
        .filter_map(|f| arp::parse(f))
        .find(|r| r.operation == ArpOperation::Request && r.target_protocol_addr == ip)
        .unwrap_or_else(|| panic!("no ARP request for {ip}"));
    let mut reply = Packet::new();
    arp::reply(&mut reply, mac, ip, &req);
    reply
}

/// What the PMD loop does between bursts: A's announcements reach B.
fn announce(a: &mut FakePmd, b: &mut FakePmd, now: Instant) {
    let news: Vec<_> = a.t.announce.drain(..).collect();
    b.with_cx(now, |t, cx| {
        for (ip, mac) in news {
            t.learn(ip, mac, false, cx);
        }
    });
}

/// B sends a frame a second for ten minutes (over three times the 180 s expiry, ten times
/// the 60 s re-probe age);
/// every answer lands on A. Every frame must be delivered, none dropped, and B must not
/// spend the time asking.
#[test]
fn a_pmd_that_does_not_poll_the_uplink_keeps_its_neighbour_fresh() {
    let (mut uplink, wire) = mem::pair(4096).unwrap();
    let mut a = FakePmd::new(&mut uplink, 0);
    let mut b = FakePmd::new(&mut uplink, 1);
    let t0 = Instant::now();
    let secs = 600u32;
    let mut delivered = 0;
    for s in 0..=secs {
        let now = t0 + Duration::from_secs(u64::from(s));
        b.send(s, now);
        delivered += remote(&wire, &mut a, now);
        announce(&mut a, &mut b, now);
        delivered += remote(&wire, &mut a, now);
        // The once-a-second timers, on both PMDs.
        a.with_cx(now, |t, cx| t.tick(cx));
        b.with_cx(now, |t, cx| t.tick(cx));
        delivered += remote(&wire, &mut a, now);
        announce(&mut a, &mut b, now);
        delivered += remote(&wire, &mut a, now);
    }
    let st = &b.t.stats;
    assert_eq!(st.neigh_timeout_drops, 0, "B dropped held frames: {st:?}");
    assert_eq!(delivered, secs + 1, "every frame arrived: {st:?}");
    // One resolution, then one probe per REFRESH period (answered, announced by A).
    let periods = u64::from(secs) / REFRESH.as_secs();
    assert!(st.arp_requests_sent <= 1 + periods, "B kept asking: {st:?}");
    assert_eq!(st.neigh_misses, 1, "B missed only the first frame: {st:?}");
}

/// B's entry is gone (expired while B was idle, say) but A's is fresh: B's retries are
/// answered on A, and A tells B before B gives up.
#[test]
fn a_resolution_on_one_pmd_is_answered_through_another_that_already_knows() {
    let (mut uplink, wire) = mem::pair(4096).unwrap();
    let mut a = FakePmd::new(&mut uplink, 0);
    let mut b = FakePmd::new(&mut uplink, 1);
    let t0 = Instant::now();
    // A learns the remote on its own (the remote asked for us), just now.
    let mut req = Packet::new();
    arp::request(&mut req, REMOTE_MAC, REMOTE, LOCAL);
    let mut key = [extract(req.data(), UPLINK)];
    a.with_cx(t0, |t, cx| {
        decap::underlay_rx(t, std::slice::from_mut(&mut req), &mut key, &[], cx);
    });
    let _ = wire.drain(); // our ARP reply
    a.t.announce.clear(); // lost on the way to B (B did not exist yet, say)
    let mut delivered = 0;
    let mut now = t0;
    b.send(0, now);
    for _ in 0..=MAX_TRIES {
        delivered += remote(&wire, &mut a, now);
        announce(&mut a, &mut b, now);
        delivered += remote(&wire, &mut a, now);
        now += RETRY;
        b.with_cx(now, |t, cx| t.tick(cx));
    }
    assert_eq!(delivered, 1, "{:?}", b.t.stats);
    assert_eq!(b.t.stats.neigh_timeout_drops, 0);
    assert_eq!(b.t.stats.neigh_released, 1);
}

/// The underlay MTU: `mtu` if set, else the interface's (clamped to what the port type
/// carries), else 1500. `lo` (MTU 65536) stands for a jumbo interface.
#[test]
fn the_underlay_mtu_comes_from_the_config_or_the_interface() {
    use crate::config::{PortConfig, PortType};
    let port = |kind: PortType, interface: Option<&str>, mtu: Option<u16>| PortConfig {
        name: "up".into(),
        kind,
        socket: None,
        mode: None,
        queues: None,
        interface: interface.map(str::to_string),
        ip: Some("198.18.0.1/24".into()),
        gateway: None,
        mtu,
        vni: None,
        remote_ip: None,
        local_ip: None,
        vlan: None,
    };
    let lo: u32 = std::fs::read_to_string("/sys/class/net/lo/mtu")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(lo > 9216, "lo's MTU is {lo}");
    assert_eq!(
        super::underlay_mtu(&port(PortType::Memory, None, None)),
        1500
    );
    assert_eq!(
        super::underlay_mtu(&port(PortType::Afxdp, Some("lo"), None)),
        ports::afxdp::MAX_MTU,
        "clamped to what 4 KiB UMEM frames carry"
    );
    assert_eq!(ports::afxdp::MAX_MTU, 3826);
    assert_eq!(
        super::underlay_mtu(&port(PortType::Tap, Some("lo"), None)),
        9216
    );
    assert_eq!(
        super::underlay_mtu(&port(PortType::Afxdp, Some("lo"), Some(1400))),
        1400
    );
    assert_eq!(
        super::underlay_mtu(&port(PortType::Tap, Some("vsw-nosuch9"), None)),
        1500,
        "unreadable: the default"
    );
}

/// A flood of ARP from thousands of addresses on the underlay (requests for our address,
/// and replies to it that nobody asked for) leaves the neighbour table at its bound, in the
/// storage it was given at start, with the refusals counted. A next hop being resolved
/// meanwhile (a frame held for it) still resolves, and a next hop first used after the
/// flood takes the place of a flooded entry.
#[test]
fn an_arp_flood_keeps_the_neighbour_table_at_its_bound() {
    let (mut uplink, wire) = mem::pair(4096).unwrap();
    let mut a = FakePmd::new(&mut uplink, 0);
    // A /15 underlay: 198.18.0.0-198.19.255.255 are all on-link, so all are learnable.
    if let Some(u) = &mut a.t.underlay {
        u.prefix_len = 15;
    }
    let footprint = a.t.neigh.footprint();
    let t0 = Instant::now();
    a.send(0, t0);
    assert_eq!(a.t.neigh.held(), 1, "held while the remote is resolved");
    let asked = wire.drain();

    let flood = 6000u32;
    let first = u32::from(Ipv4Addr::new(198, 18, 1, 0));
    let mut burst: Vec<Packet> = (0..32).map(|_| Packet::new()).collect();
    let mut from_us = Packet::new();
    let mut i = 0;
    while i < flood {
        let n = 32.min(flood - i);
        for (k, pkt) in burst[..n as usize].iter_mut().enumerate() {
            let j = i + k as u32;
            let ip = Ipv4Addr::from(first + j);
            let b = j.to_be_bytes();
            let mac = MacAddr([0x02, 0xaa, b[0], b[1], b[2], b[3]]);
            if j.is_multiple_of(2) {
                arp::request(pkt, mac, ip, LOCAL);
            } else {
                arp::request(&mut from_us, LOCAL_MAC, LOCAL, ip);
                arp::reply(pkt, mac, ip, &arp::parse(from_us.data()).unwrap());
            }
        }
        underlay_in(&mut a, &mut burst[..n as usize], t0);
        assert!(a.t.announce.len() <= MAX_ANNOUNCE);
        assert_eq!(a.t.announce.capacity(), MAX_ANNOUNCE, "announcements grew");
        // What the PMD loop does after each round: send the announcements.
        a.t.announce.clear();
        let _ = wire.drain(); // our ARP replies
        i += n;
    }
    let st = &a.t.stats;
    assert_eq!(a.t.neigh.len(), MAX_ENTRIES, "{st:?}");
    assert_eq!(
        a.t.neigh.footprint(),
        footprint,
        "the table's storage moved or grew"
    );
    assert_eq!(st.neigh_updates, MAX_ENTRIES as u64 - 1, "{st:?}");
    assert_eq!(
        st.neigh_refused,
        u64::from(flood) - st.neigh_updates,
        "{st:?}"
    );
    assert_eq!(
        st.arp_replies_sent,
        u64::from(flood / 2),
        "every request answered"
    );

    // The remote's answer to the request sent before the flood releases the held frame.
    underlay_in(&mut a, &mut [answer(&asked, REMOTE, REMOTE_MAC)], t0);
    assert_eq!(a.t.stats.neigh_released, 1);
    assert_eq!(remote(&wire, &mut a, t0), 1, "the held frame went out");

    // A next hop first used now takes a flooded entry's place and resolves.
    const VX2: PortNo = PortNo(3);
    let remote2 = Ipv4Addr::new(198, 18, 0, 3);
    let remote2_mac = MacAddr([0x02, 0xee, 0, 0, 0, 3]);
    a.t.add_vxlan(VxlanPort {
        port: VX2,
        vni: Vni::new(200).unwrap(),
        remote: remote2,
        local: None,
    });
    a.send_to(VX2, 1, t0);
    assert_eq!(a.t.stats.neigh_evictions, 1);
    assert_eq!(a.t.neigh.held(), 1);
    let asked = wire.drain();
    underlay_in(&mut a, &mut [answer(&asked, remote2, remote2_mac)], t0);
    assert_eq!(a.t.stats.neigh_released, 2);
    let out = wire.drain();
    assert_eq!(out.len(), 1);
    assert_eq!(
        &out[0][..6],
        &remote2_mac.0,
        "encapsulated to the new next hop"
    );
    assert_eq!(a.t.neigh.len(), MAX_ENTRIES);
    assert_eq!(a.t.neigh.footprint(), footprint);
}
