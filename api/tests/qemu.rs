//! vhost-user against real Linux guests: two QEMU (TCG) VMs, each with a virtio-net-pci
//! device on a vhost-user port of the switch, ping each other through it. No flows: the
//! switch's default `normal` action (MAC learning, flooding unknown destinations) forwards.
//!
//! The guest is a Debian 12 kernel plus a busybox initramfs built by
//! `deploy/guest/build-image.sh` (cached in `target/guest-image`); its `/init` reads its role
//! from the kernel command line and reports on the serial console with `VSWITCH-TEST:` lines.
//! Runs with the switch as vhost-user server (QEMU connects), then as client (QEMU listens
//! with `server=on,wait=off`, the switch connects), then on the packed ring (`packed=on`).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;
use testkit::config::{packed_ring, switch_table, vhost_port};
use testkit::process::{logs, watch};
use testkit::qemu::{self, verdict, QEMU};

/// Echo requests the pinger sends once the responder answers.
const PINGS: u64 = 5;
/// How long the pinger waits for the responder's first answer (the guests boot in parallel;
/// ~5-10 s each under TCG on this machine).
const PEER_WAIT_SECS: u64 = 60;

fn run(image: &(PathBuf, PathBuf), client_mode: bool, packed: bool) {
    let t = Instant::now();
    let tag = match (client_mode, packed) {
        (false, false) => "qms",
        (true, false) => "qmc",
        (false, true) => "qmps",
        (true, true) => "qmpc",
    };
    let ring = if packed { "packed" } else { "split" };
    let vhost_mode = if client_mode { "client" } else { "server" };
    let mode = match (client_mode, packed) {
        (false, false) => "server",
        (true, false) => "client",
        (false, true) => "server, packed ring,",
        (true, true) => "client, packed ring,",
    };
    let device = if packed { ",packed=on" } else { "" };
    let dir = Scratch::new(tag);
    let (s1, s2) = (dir.path("vm1.sock"), dir.path("vm2.sock"));
    let cfg = dir.file(
        "vswitch.toml",
        // The switch offers the packed ring only when configured to.
        &(switch_table(last_cpu(), &(dir.socket_dir() + packed_ring(packed)))
            + &vhost_port("vm1", &s1, vhost_mode)
            + &vhost_port("vm2", &s2, vhost_mode)),
    );

    let mut sw_cmd = Command::new(VSWITCHD);
    // No API: parallel tests must not compete for its default port.
    sw_cmd
        .arg("--config")
        .arg(&cfg)
        .args(["--api-listen", "off"])
        .env("RUST_LOG", "info");
    // Server mode: the sockets exist once vswitchd runs. Client mode: the switch retries
    // until QEMU has created them (QEMU waits at start-up until the backend connects).
    let mut sw = Proc::spawn("vswitchd", sw_cmd);
    sw.wait_for("vswitchd running", Duration::from_secs(20));

    let mut responder = Proc::spawn(
        "guest vm2 (responder)",
        qemu::command_with(
            image,
            &s2,
            client_mode,
            "52:54:00:12:00:02",
            "vs.role=responder vs.ip=198.18.0.2/24",
            device,
        ),
    );
    let mut pinger = Proc::spawn(
        "guest vm1 (pinger)",
        qemu::command_with(
            image,
            &s1,
            client_mode,
            "52:54:00:12:00:01",
            &format!(
                "vs.role=pinger vs.ip=198.18.0.1/24 vs.peer=198.18.0.2 vs.count={PINGS} \
                 vs.wait={PEER_WAIT_SECS}"
            ),
            device,
        ),
    );

    {
        let mut procs = [&mut sw, &mut responder, &mut pinger];
        watch(
            &mut procs,
            1,
            "responder's VSWITCH-TEST: READY",
            Duration::from_secs(90),
            |log| log.contains("VSWITCH-TEST: READY") || log.contains("VSWITCH-TEST: FAIL"),
        );
        if let Some(l) = procs[1]
            .log
            .lines()
            .find(|l| l.contains("VSWITCH-TEST: FAIL"))
        {
            let all: Vec<&Proc> = procs.iter().map(|p| &**p).collect();
            panic!("{mode} mode: the responder says {l:?}\n{}", logs(&all));
        }
        watch(
            &mut procs,
            2,
            "pinger's verdict",
            Duration::from_secs(PEER_WAIT_SECS + 60),
            |log| verdict(log).is_some(),
        );
    }
    let v = verdict(&pinger.log).unwrap().to_string();
    let up_in = t.elapsed();

    // The pinger powers itself off after its verdict; the responder runs until stopped.
    let _ = pinger.stop(Signal::SIGTERM, Duration::from_secs(20));
    let _ = responder.stop(Signal::SIGTERM, Duration::from_secs(20));
    let status = sw.stop(Signal::SIGTERM, Duration::from_secs(20));
    let all = logs(&[&sw, &responder, &pinger]);
    assert!(
        v == format!("VSWITCH-TEST: PASS {PINGS}/{PINGS}"),
        "{mode} mode: the pinger says {v:?}\n{all}"
    );
    assert!(status.success(), "vswitchd exit {status:?}\n{all}");
    for l in pinger.log.lines().chain(responder.log.lines()) {
        if l.starts_with("VSWITCH-TEST: features") {
            eprintln!("{mode} mode: guest virtio-net {l}");
        }
    }

    // Both guests' drivers ran the ring asked for (the switch logs each connection's
    // features; QEMU may connect more than once while the guest driver starts).
    let acked: Vec<&str> = sw
        .log
        .lines()
        .filter(|l| l.contains("vhost-user features acked"))
        .collect();
    assert!(
        acked.len() >= 2,
        "{mode} mode: features acked on both ports\n{all}"
    );
    let last_two = &acked[acked.len() - 2..];
    for l in last_two {
        assert!(
            l.contains(&format!("ring={ring}")) || l.contains(&format!("ring=\"{ring}\"")),
            "{mode} mode: {ring} ring negotiated: {l}"
        );
    }

    // Frames went through both ports: at least every echo request one way and every reply
    // the other (plus ARP, the first probe and whatever else the kernels sent).
    let (vm1_rx, vm1_tx) = port_totals(&sw.log, "vm1");
    let (vm2_rx, vm2_tx) = port_totals(&sw.log, "vm2");
    eprintln!(
        "{mode} mode: {v} in {up_in:.1?}; switch vm1 rx {vm1_rx} tx {vm1_tx}, \
         vm2 rx {vm2_rx} tx {vm2_tx}"
    );
    for (what, n) in [
        ("read from vm1", vm1_rx),
        ("sent to vm1", vm1_tx),
        ("read from vm2", vm2_rx),
        ("sent to vm2", vm2_tx),
    ] {
        assert!(
            n >= PINGS,
            "{mode} mode: only {n} frames {what} (expected >= {PINGS})\n{all}"
        );
    }
    // A real virtio-net driver must not trip anything: a protocol error, a refused request
    // or a broken ring is logged as a warning.
    let bad: Vec<&str> = sw
        .log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert!(
        bad.is_empty(),
        "{mode} mode: vswitchd warned:\n{}\n{all}",
        bad.join("\n")
    );
}

#[test]
fn qemu_guests_ping_each_other_through_the_switch() {
    if !require_peer(QEMU, "qemu-system-x86", "VSWITCH_SKIP_QEMU") {
        return;
    }
    let image = qemu::image();
    run(&image, false, false);
    run(&image, true, false);
    run(&image, false, true);
}
