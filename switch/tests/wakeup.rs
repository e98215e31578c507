//! A sleeping PMD and vhost-user guests: a guest is heard at once, even when its rings start
//! while the PMD sleeps. (Memory ports' wakeups: `datapath.rs`; the latency distribution:
//! `bench/e2e/latency.sh`.)

mod common;

use std::time::{Duration, Instant};

use common::*;
use ports::vhost::test_utils::{Guest, SockDir};
use switch::config::{Config, PortConfig, PortType};
use switch::Switch;

/// A new ring starts with kicks disabled (the PMD polls), so a PMD that went to sleep before
/// the guest started its rings must be told, or the guest's first frames wait for the PMD's
/// 100 ms sleep timeout: a guest driver that honours `VIRTQ_USED_F_NO_NOTIFY` (as Linux and
/// DPDK do) does not kick. Measured before the fix: about 90 ms for the first frame of every
/// connection.
#[test]
fn a_ring_started_while_the_pmd_sleeps_is_heard_at_once() {
    let dir = SockDir::new();
    let mut switch = switch_cfg(&[last_cpu()]);
    switch.socket_dir = dir.dir.path().to_path_buf();
    let vm = PortConfig {
        kind: PortType::VhostUser,
        socket: Some(dir.path("vm.sock")),
        ..mem_port("vm")
    };
    let cfg = Config {
        switch,
        ports: vec![vm, mem_port("out")],
        flows: vec![flow(100, &[("in_port", "vm")], &["output:out"])],
    };
    let sw = Switch::start(&cfg).expect("switch starts");
    let out = sw.mem_peer("out").unwrap();

    const CONNECTIONS: u32 = 5;
    let mut delays = Vec::new();
    for seq in 0..CONNECTIONS {
        // Far longer than pmd_sleep_after_us (200 µs): the PMD sleeps.
        std::thread::sleep(Duration::from_millis(30));
        sw.barrier().unwrap();
        let before = sw.stats()[0].stats.sleeps;
        let mut g = Guest::connect(&dir.path("vm.sock"), 1, 0);
        // The rings are running; the PMD has had time to go back to sleep.
        std::thread::sleep(Duration::from_millis(5));
        let (addr, len) = g.tx_buffer(&unicast(1, 2, seq));
        g.add_chain(1, &[(addr, len, 0)]);
        let sent = Instant::now();
        g.publish_as_driver(1);
        let got = out
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("connection {seq}: frame lost"));
        delays.push(sent.elapsed());
        assert_eq!(seq_of(&got), seq);
        sw.barrier().unwrap();
        assert!(
            sw.stats()[0].stats.sleeps > before,
            "the PMD did not sleep: this connection tested no wakeup"
        );
        drop(g);
    }
    delays.sort();
    let median = delays[delays.len() / 2];
    assert!(
        median < Duration::from_millis(20),
        "median first frame {median:?} (all, sorted: {delays:?}): the frames waited for the \
         PMD's 100 ms sleep timeout"
    );
}
