//! DPDK's testpmd (Debian's `dpdk-dev`) as a vhost-user "guest": its `net_virtio_user`
//! port is a real virtio frontend, driven from its interactive prompt.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::process::{number_after, Proc};

/// The testpmd binary.
pub const TESTPMD: &str = "dpdk-testpmd";

/// A testpmd "guest": one virtio-user port on `sock` (`server`: testpmd owns the socket),
/// forwarding lcore on CPU 0 (the switch's PMD has the last CPU to itself), no hugepages,
/// runtime files under `/var/run/dpdk/{prefix}` (remove them with [`remove_dpdk_runtime`]),
/// interactive, in forwarding mode `mode` (`txonly`, `rxonly`, ...).
pub fn testpmd(prefix: &str, sock: &Path, server: bool, mode: &str) -> Command {
    testpmd_with(prefix, sock, server, mode, "")
}

/// [`testpmd`] with more `net_virtio_user` device arguments (`devargs`, each starting with a
/// comma: `",packed_vq=1"` asks for the packed ring).
pub fn testpmd_with(prefix: &str, sock: &Path, server: bool, mode: &str, devargs: &str) -> Command {
    // Line-buffered stdout: testpmd's replies must reach us as they are printed, not when a
    // pipe buffer fills.
    let mut c = Command::new("stdbuf");
    c.arg("-oL").arg(TESTPMD);
    c.args([
        "--lcores",
        "0@0,1@0",
        "--main-lcore",
        "0",
        "-n",
        "1",
        "--no-pci",
    ])
    .args([
        "--single-file-segments",
        "--iova-mode=va",
        "--no-huge",
        "-m",
        "256",
    ])
    .arg(format!("--file-prefix={prefix}"))
    .arg(format!(
        "--vdev=net_virtio_user0,path={},queues=1{}{devargs}",
        sock.display(),
        if server { ",server=1" } else { "" }
    ))
    .args(["--", "-i", "--nb-cores=1", "--total-num-mbufs=8192"])
    .arg(format!("--forward-mode={mode}"));
    c
}

/// Stops testpmd's forwarding and returns the accumulated (RX-packets, TX-packets) it prints.
pub fn stop_forwarding(p: &mut Proc) -> (u64, u64) {
    p.send("stop");
    p.wait_for(
        "Accumulated forward statistics for all ports",
        Duration::from_secs(20),
    );
    let rx = p.wait_for("RX-packets:", Duration::from_secs(5));
    let tx = p.wait_for("TX-packets:", Duration::from_secs(5));
    (
        number_after(&rx, "RX-packets:"),
        number_after(&tx, "TX-packets:"),
    )
}

/// Removes the runtime directory DPDK leaves behind for `--file-prefix={prefix}`.
pub fn remove_dpdk_runtime(prefix: &str) {
    let _ = std::fs::remove_dir_all(Path::new("/var/run/dpdk").join(prefix));
}
