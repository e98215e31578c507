//! Shared test fixtures: frames built with etherparse (hosts' MACs and addresses from
//! `testkit::frames`), switches with memory ports.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use etherparse::PacketBuilder;
use ports::mem::MemPeer;
use ports::VirtioNetHdr;
use switch::config::{Config, FlowConfig, MatchValue, PortConfig, PortType, SwitchConfig};
use switch::Switch;

pub use testkit::frames::{ip, mac};
pub use testkit::last_cpu;

/// An IPv4/UDP frame from host `src` to host `dst`; `seq` goes into the payload so frames
/// can be told apart.
pub fn udp_frame(src: u8, dst: [u8; 6], dst_ip: u8, vlan: Option<u16>, seq: u32) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(mac(src), dst);
    let payload = seq.to_be_bytes();
    let mut out = Vec::new();
    match vlan {
        Some(vid) => eth
            .single_vlan(etherparse::VlanId::try_new(vid).unwrap())
            .ipv4(ip(src), ip(dst_ip), 64)
            .udp(1000, 2000)
            .write(&mut out, &payload)
            .unwrap(),
        None => eth
            .ipv4(ip(src), ip(dst_ip), 64)
            .udp(1000, 2000)
            .write(&mut out, &payload)
            .unwrap(),
    }
    out
}

/// A TCP/IPv4 frame from host 1 to host 2 with `payload`, its checksum left partial (the
/// pseudo-header sum, as a guest's stack leaves it), and the virtio-net header asking the
/// switch to finish it (and to cut it into `mss` segments when `mss` is given).
pub fn partial_tcp(payload: &[u8], mss: Option<u16>, seq: u32) -> (VirtioNetHdr, Vec<u8>) {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(mac(1), mac(2))
        .ipv4(ip(1), ip(2), 64)
        .tcp(40000, 5001, seq, 65535)
        .ack(7)
        .psh()
        .write(&mut frame, payload)
        .unwrap();
    let tcp_len = u16::try_from(frame.len() - 34).expect("an IPv4 packet");
    let partial = switch::offload::csum::pseudo_header_v4(ip(1), ip(2), 6, tcp_len);
    frame[50..52].copy_from_slice(&partial.to_be_bytes());
    let hdr = VirtioNetHdr {
        flags: VirtioNetHdr::F_NEEDS_CSUM,
        csum_start: 34,
        csum_offset: 16,
        gso_type: if mss.is_some() {
            VirtioNetHdr::GSO_TCPV4
        } else {
            0
        },
        gso_size: mss.unwrap_or(0),
        ..Default::default()
    };
    (hdr, frame)
}

/// Unicast frame from host `src` to host `dst`.
pub fn unicast(src: u8, dst: u8, seq: u32) -> Vec<u8> {
    udp_frame(src, mac(dst), dst, None, seq)
}

/// Broadcast frame from host `src`.
pub fn broadcast(src: u8, seq: u32) -> Vec<u8> {
    udp_frame(src, [0xff; 6], 255, None, seq)
}

/// The `seq` a frame from [`udp_frame`] carries.
pub fn seq_of(frame: &[u8]) -> u32 {
    let n = frame.len();
    u32::from_be_bytes(frame[n - 4..].try_into().unwrap())
}

/// A memory port config.
pub fn mem_port(name: &str) -> PortConfig {
    PortConfig {
        name: name.to_string(),
        kind: PortType::Memory,
        socket: None,
        mode: None,
        queues: None,
        interface: None,
        ip: None,
        gateway: None,
        mtu: None,
        vni: None,
        remote_ip: None,
        local_ip: None,
        vlan: None,
    }
}

/// A flow from (field, value) pairs and action strings.
pub fn flow(priority: u32, m: &[(&str, &str)], actions: &[&str]) -> FlowConfig {
    FlowConfig {
        priority,
        matches: m
            .iter()
            .map(|(k, v)| (k.to_string(), MatchValue::Text(v.to_string())))
            .collect(),
        actions: actions.iter().map(|a| a.to_string()).collect(),
    }
}

/// Switch settings for tests: PMDs on the given cores, quick to sleep.
pub fn switch_cfg(cores: &[usize]) -> SwitchConfig {
    SwitchConfig {
        pmd_cores: cores.to_vec(),
        ..SwitchConfig::default()
    }
}

/// A switch with one PMD on the last CPU and memory ports `names`.
pub fn switch_with(names: &[&str], flows: &[FlowConfig]) -> (Switch, Vec<MemPeer>) {
    let cfg = Config {
        switch: switch_cfg(&[last_cpu()]),
        ports: names.iter().map(|n| mem_port(n)).collect(),
        flows: flows.to_vec(),
    };
    let sw = Switch::start(&cfg).expect("switch starts");
    let peers = names.iter().map(|n| sw.mem_peer(n).unwrap()).collect();
    (sw, peers)
}

/// Waits until the switch has read everything injected so far and processed it.
pub fn settle(sw: &Switch, peers: &[MemPeer]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while peers.iter().any(|p| p.pending_to_switch() > 0) {
        assert!(
            Instant::now() < deadline,
            "switch did not drain its rx queues"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // A barrier is answered at the top of a PMD iteration: the second one is answered only
    // after the iteration that read the last frames has finished.
    sw.barrier().unwrap();
    sw.barrier().unwrap();
}

/// Everything each peer received, after settling.
pub fn collect(sw: &Switch, peers: &[MemPeer]) -> Vec<Vec<Vec<u8>>> {
    settle(sw, peers);
    peers.iter().map(|p| p.drain()).collect()
}

/// Asserts `got` is exactly `0..n`, reporting the first difference (not the whole list).
pub fn assert_sequence(got: &[u32], n: u32, what: &str) {
    if let Some(i) = (0..got.len().max(n as usize)).find(|&i| got.get(i) != Some(&(i as u32))) {
        panic!(
            "{what}: expected 0..{n}, got {} frames; first difference at index {i}: {:?}",
            got.len(),
            got.get(i)
        );
    }
}

/// Drains `peer` on a thread until `stop`, returning what it received.
pub fn drain_thread(
    peer: MemPeer,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<Vec<u8>>> {
    std::thread::spawn(move || {
        let mut got = Vec::new();
        loop {
            let done = stop.load(std::sync::atomic::Ordering::Relaxed);
            match peer.recv_timeout(Duration::from_millis(5)) {
                Some(f) => got.push(f),
                None if done => return got,
                None => {}
            }
        }
    })
}

/// Sends numbered unicast frames from host 1 to host 2 into `peer` until `stop`, keeping at
/// most 1000 in flight (not yet taken from `to`, the port they go out of), so that a
/// receiving thread the machine starves for a while never makes the switch's queue to `to`
/// overflow; never drops one. Returns how many it sent.
pub fn send_thread(
    peer: MemPeer,
    to: MemPeer,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u32> {
    std::thread::spawn(move || {
        let mut sent = 0u32;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if peer.pending_to_switch() + to.pending_from_switch() < 1000 {
                assert!(peer.inject(&unicast(1, 2, sent)), "frame {sent} refused");
                sent += 1;
            } else {
                std::thread::yield_now();
            }
        }
        sent
    })
}

/// An access VLAN setting.
pub fn access(tag: u16) -> switch::config::VlanConfig {
    switch::config::VlanConfig {
        mode: switch::config::VlanMode::Access,
        tag: Some(tag),
        allowed: None,
        native: None,
    }
}

/// A trunk VLAN setting.
pub fn trunk(allowed: &[u16], native: Option<u16>) -> switch::config::VlanConfig {
    switch::config::VlanConfig {
        mode: switch::config::VlanMode::Trunk,
        tag: None,
        allowed: Some(allowed.to_vec()),
        native,
    }
}

/// A trunk of every VLAN (`allowed` omitted).
pub fn trunk_all() -> switch::config::VlanConfig {
    switch::config::VlanConfig {
        mode: switch::config::VlanMode::Trunk,
        tag: None,
        allowed: None,
        native: None,
    }
}

/// A memory port with a VLAN setting.
pub fn mem_port_vlan(name: &str, vlan: Option<switch::config::VlanConfig>) -> PortConfig {
    PortConfig {
        vlan,
        ..mem_port(name)
    }
}

/// A switch with one PMD on the last CPU and `ports`; returns the memory peers in port order
/// (`None` for ports that are not memory ports).
pub fn switch_from(ports: Vec<PortConfig>, flows: &[FlowConfig]) -> (Switch, Vec<Option<MemPeer>>) {
    let cfg = Config {
        switch: switch_cfg(&[last_cpu()]),
        ports,
        flows: flows.to_vec(),
    };
    let sw = Switch::start(&cfg).expect("switch starts");
    let peers = cfg.ports.iter().map(|p| sw.mem_peer(&p.name)).collect();
    (sw, peers)
}
