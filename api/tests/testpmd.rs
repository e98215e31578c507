//! vhost-user against a real frontend: DPDK testpmd's `net_virtio_user` (DPDK 22.11 from
//! Debian's `dpdk-dev`). One testpmd sends with `txonly` into port p0; the switch forwards by
//! rule to p1, where a second testpmd receives with `rxonly`. Every frame is accounted for:
//! sent = received + dropped-and-counted by the switch. Runs with the switch as vhost-user
//! server (it owns the sockets) and as client (testpmd owns them, the switch connects), on
//! the split ring and on the packed ring (testpmd's `packed_vq=1`).

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;
use testkit::config::{packed_ring, switch_table, vhost_port};

fn run(client_mode: bool, packed: bool) {
    let tag = match (client_mode, packed) {
        (false, false) => "tps",
        (true, false) => "tpc",
        (false, true) => "tpps",
        (true, true) => "tppc",
    };
    let devargs = if packed { ",packed_vq=1" } else { "" };
    let dir = Scratch::new(tag);
    let (s0, s1) = (dir.path("p0.sock"), dir.path("p1.sock"));
    let mode = if client_mode { "client" } else { "server" };
    let cfg = dir.file(
        "vswitch.toml",
        // The switch offers the packed ring only when configured to.
        &(switch_table(last_cpu(), &(dir.socket_dir() + packed_ring(packed)))
            + &vhost_port("p0", &s0, mode)
            + &vhost_port("p1", &s1, mode)
            + r#"
[[flow]]
match = { in_port = "p0" }
actions = ["output:p1"]

[[flow]]
match = { in_port = "p1" }
actions = ["output:p0"]
"#),
    );

    let mut sw_cmd = Command::new(VSWITCHD);
    sw_cmd
        .arg("--config")
        .arg(&cfg)
        .args(API_ANY_PORT)
        // No state dir: keep the token the API creates in the scratch dir, not /run/vswitch.
        .arg("--api-token-file")
        .arg(dir.path("api-token"))
        .env("RUST_LOG", "info");
    let prefix = |p: &str| format!("vsw-{tag}-{p}-{}", std::process::id());
    // In client mode testpmd creates the sockets and the switch keeps retrying until they
    // exist, so the start order does not matter; start the switch first either way.
    let mut sw = Proc::spawn("vswitchd", sw_cmd);
    sw.wait_for("vswitchd running", Duration::from_secs(20));

    let mut rx = Proc::spawn(
        "testpmd-rx",
        testpmd_with(&prefix("rx"), &s1, client_mode, "rxonly", devargs),
    );
    // "Checking link statuses...", then "Done" once the vhost-user link is up (the prompt
    // itself ends no line).
    rx.wait_for("Done", Duration::from_secs(60));
    let mut tx = Proc::spawn(
        "testpmd-tx",
        testpmd_with(&prefix("tx"), &s0, client_mode, "txonly", devargs),
    );
    tx.wait_for("Done", Duration::from_secs(60));
    rx.send("start");
    rx.wait_for("rxonly packet forwarding", Duration::from_secs(10));
    tx.send("start");
    tx.wait_for("txonly packet forwarding", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));

    let (_, sent) = stop_forwarding(&mut tx);
    // Let the switch move what is still in the sender's ring, and the receiver take it.
    std::thread::sleep(Duration::from_secs(1));
    let (received, _) = stop_forwarding(&mut rx);
    rx.send("quit");
    tx.send("quit");
    let _ = rx.stop(Signal::SIGTERM, Duration::from_secs(20));
    let _ = tx.stop(Signal::SIGTERM, Duration::from_secs(20));
    // DPDK leaves its runtime directory (named by --file-prefix) behind.
    for p in ["rx", "tx"] {
        remove_dpdk_runtime(&prefix(p));
    }

    let status = sw.stop(Signal::SIGTERM, Duration::from_secs(20));
    assert!(status.success(), "vswitchd exit {status:?}\n{}", sw.log);
    let (switch_rx, _) = port_totals(&sw.log, "p0");
    let (_, switch_tx) = port_totals(&sw.log, "p1");
    let drops = drop_total(&sw.log);

    // Both ports negotiated the ring asked for (the switch logs each connection's features).
    let ring = if packed { "packed" } else { "split" };
    let acked = sw
        .log
        .lines()
        .filter(|l| l.contains("vhost-user features acked"))
        .collect::<Vec<_>>();
    assert_eq!(acked.len(), 2, "one features line per port:\n{}", sw.log);
    for l in &acked {
        assert!(
            l.contains(&format!("ring=\"{ring}\"")) || l.contains(&format!("ring={ring}")),
            "{ring} ring negotiated: {l}"
        );
    }

    eprintln!(
        "{mode} mode, {ring} ring: testpmd sent {sent}, switch read {switch_rx}, forwarded {switch_tx}, \
         dropped {drops}; testpmd received {received}"
    );
    assert!(sent > 10_000, "traffic flowed: {sent} frames");
    assert_eq!(switch_rx, sent, "the switch read every frame testpmd sent");
    assert_eq!(
        switch_tx + drops,
        switch_rx,
        "every frame read was sent or counted"
    );
    assert_eq!(
        received, switch_tx,
        "testpmd received every frame the switch sent"
    );
}

#[test]
fn testpmd_virtio_user_every_frame_accounted_for() {
    if !require_peer(TESTPMD, "dpdk-dev", "VSWITCH_SKIP_DPDK") {
        return;
    }
    run(false, false);
    run(true, false);
}

#[test]
fn testpmd_virtio_user_packed_ring_every_frame_accounted_for() {
    if !require_peer(TESTPMD, "dpdk-dev", "VSWITCH_SKIP_DPDK") {
        return;
    }
    run(false, true);
    run(true, true);
}
