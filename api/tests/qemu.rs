//! vhost-user against real Linux guests: two QEMU (TCG) VMs, each with a virtio-net-pci
//! device on a vhost-user port of the switch, ping each other through it. No flows: the
//! switch's default `normal` action (MAC learning, flooding unknown destinations) forwards.
//!
//! The guest is a Debian 12 kernel plus a busybox initramfs built by
//! `deploy/guest/build-image.sh` (cached in `target/guest-image`); its `/init` reads its role
//! from the kernel command line and reports on the serial console with `VSWITCH-TEST:` lines.
//! Runs with the switch as vhost-user server (QEMU connects), then as client (QEMU listens
//! with `server=on,wait=off`, the switch connects).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

const QEMU: &str = "qemu-system-x86_64";
/// Echo requests the pinger sends once the responder answers.
const PINGS: u64 = 5;
/// How long the pinger waits for the responder's first answer (the guests boot in parallel;
/// ~5-10 s each under TCG on this machine).
const PEER_WAIT_SECS: u64 = 60;

/// The cargo target directory this test runs from (`target/debug/deps/qemu-*` -> `target`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Builds (or finds up to date) the guest kernel and initramfs; returns their paths.
fn guest_image() -> (PathBuf, PathBuf) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/guest/build-image.sh");
    let out = target_dir().join("guest-image");
    let t = Instant::now();
    let res = Command::new(&script)
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(
        res.status.success(),
        "{} {} failed ({:?}):\n{log}",
        script.display(),
        out.display(),
        res.status
    );
    eprintln!("guest image ({:.1?}): {}", t.elapsed(), log.trim_end());
    let (kernel, initrd) = (out.join("vmlinuz"), out.join("initramfs.gz"));
    assert!(
        kernel.is_file() && initrd.is_file(),
        "{} did not leave vmlinuz and initramfs.gz in {}:\n{log}",
        script.display(),
        out.display()
    );
    (kernel, initrd)
}

/// One guest: 256 MiB of shared (memfd) memory, one virtio-net-pci device on the vhost-user
/// socket `sock`, serial console on stdio. `listen`: QEMU owns the socket (the switch is the
/// vhost-user client).
fn guest(
    image: &(PathBuf, PathBuf),
    sock: &Path,
    listen: bool,
    mac: &str,
    params: &str,
) -> Command {
    let mut c = Command::new(QEMU);
    c.args(["-accel", "tcg", "-m", "256", "-nographic", "-no-reboot"])
        .arg("-kernel")
        .arg(&image.0)
        .arg("-initrd")
        .arg(&image.1)
        .arg("-append")
        .arg(format!("console=ttyS0 panic=-1 {params}"))
        .args([
            "-object",
            "memory-backend-memfd,id=mem,size=256M,share=on",
            "-numa",
            "node,memdev=mem",
        ])
        .arg("-chardev")
        .arg(format!(
            "socket,id=c0,path={}{}",
            sock.display(),
            if listen { ",server=on,wait=off" } else { "" }
        ))
        .args(["-netdev", "vhost-user,id=n0,chardev=c0"])
        // vectors=0: no MSI-X, with which QEMU 7.2 under TCG segfaults when the driver starts.
        .args(["-device"])
        .arg(format!("virtio-net-pci,netdev=n0,mac={mac},vectors=0"));
    c
}

/// Everything the test has read from each process, for failure messages.
fn logs(procs: &[&Proc]) -> String {
    procs
        .iter()
        .map(|p| format!("===== {} =====\n{}", p.name, p.log))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads every process's output until `done` says `watched`'s log is complete, or panics
/// with all logs after `timeout`.
fn watch(
    procs: &mut [&mut Proc],
    watched: usize,
    what: &str,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        for p in procs.iter_mut() {
            p.drain_for(Duration::from_millis(50));
        }
        if done(&procs[watched].log) {
            return;
        }
        if Instant::now() >= deadline {
            let all: Vec<&Proc> = procs.iter().map(|p| &**p).collect();
            panic!("{what}: not seen within {timeout:?}\n{}", logs(&all));
        }
    }
}

fn verdict(log: &str) -> Option<&str> {
    log.lines()
        .map(str::trim)
        .find(|l| l.starts_with("VSWITCH-TEST: PASS") || l.starts_with("VSWITCH-TEST: FAIL"))
}

fn run(image: &(PathBuf, PathBuf), client_mode: bool) {
    let t = Instant::now();
    let tag = if client_mode { "qmc" } else { "qms" };
    let mode = if client_mode { "client" } else { "server" };
    let dir = Scratch::new(tag);
    let (s1, s2) = (dir.path("vm1.sock"), dir.path("vm2.sock"));
    let cfg = dir.file(
        "vswitch.toml",
        &format!(
            r#"
[switch]
pmd_cores = [{cpu}]
{socket_dir}

[[port]]
name = "vm1"
type = "vhost-user"
socket = "{s1}"
mode = "{mode}"

[[port]]
name = "vm2"
type = "vhost-user"
socket = "{s2}"
mode = "{mode}"
"#,
            cpu = last_cpu(),
            socket_dir = dir.socket_dir(),
            s1 = s1.display(),
            s2 = s2.display(),
        ),
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
        guest(
            image,
            &s2,
            client_mode,
            "52:54:00:12:00:02",
            "vs.role=responder vs.ip=198.18.0.2/24",
        ),
    );
    let mut pinger = Proc::spawn(
        "guest vm1 (pinger)",
        guest(
            image,
            &s1,
            client_mode,
            "52:54:00:12:00:01",
            &format!(
                "vs.role=pinger vs.ip=198.18.0.1/24 vs.peer=198.18.0.2 vs.count={PINGS} \
                 vs.wait={PEER_WAIT_SECS}"
            ),
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
    let image = guest_image();
    run(&image, false);
    run(&image, true);
}
