//! DPDK's testpmd (Debian's `dpdk-dev`) as a vhost-user "guest": its `net_virtio_user`
//! port is a real virtio frontend, driven from its interactive prompt.

use std::ffi::OsStr;
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
    testpmd_ports(
        prefix,
        [virtio_user_vdev(0, sock, server, devargs)],
        [
            "--total-num-mbufs=8192".to_string(),
            format!("--forward-mode={mode}"),
        ],
    )
}

/// testpmd with the ports `eal` names (`--vdev=...` arguments, from [`virtio_user_vdev`] or
/// [`pcap_vdev`]: testpmd numbers the ports 0, 1, ... in the order given), and any other EAL
/// options in `eal`; then, after `--`, interactive mode, one forwarding core and `app`.
/// Otherwise as [`testpmd`]: forwarding lcore on CPU 0, no hugepages, runtime files under
/// `/var/run/dpdk/{prefix}`.
pub fn testpmd_ports<E, A>(prefix: &str, eal: E, app: A) -> Command
where
    E: IntoIterator,
    E::Item: AsRef<OsStr>,
    A: IntoIterator,
    A::Item: AsRef<OsStr>,
{
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
    .args(eal)
    .args(["--", "-i", "--nb-cores=1"])
    .args(app);
    c
}

/// The `--vdev` argument for port `net_virtio_user{n}`: a virtio-net frontend on vhost-user
/// socket `sock` with one queue pair (`server`: testpmd owns the socket), and `devargs`
/// (each starting with a comma).
pub fn virtio_user_vdev(n: usize, sock: &Path, server: bool, devargs: &str) -> String {
    format!(
        "--vdev=net_virtio_user{n},path={},queues=1{}{devargs}",
        sock.display(),
        if server { ",server=1" } else { "" }
    )
}

/// The `--vdev` argument for port `net_pcap{n}`: it receives each frame of pcap file `file`
/// once, in order (see [`crate::pcap`]); with no `tx_pcap`, frames sent to it are dropped.
/// testpmd reads (and drops) whatever its ports hold when forwarding starts, so a test
/// replaying a file passes `--no-flush-rx`.
pub fn pcap_vdev(n: usize, file: &Path) -> String {
    format!("--vdev=net_pcap{n},rx_pcap={}", file.display())
}

/// The EAL option that makes the virtio PMD log, at each negotiation, the features it
/// settled on (a line with [`NEGOTIATED`]).
pub const VIRTIO_INIT_DEBUG: &str = "--log-level=pmd.net.virtio.init:debug";

/// What the virtio PMD (DPDK 22.11) logs with [`VIRTIO_INIT_DEBUG`] before the features a
/// negotiation settled on, in hex: `virtio_ethdev_negotiate_features(): features after
/// negotiate = 910019801`. It negotiates when a port is probed, and again when a port is
/// configured with offloads that need other features (`port start` after `tso set`, `port
/// config N rx_offload ...`); the line does not name the port.
pub const NEGOTIATED: &str = "features after negotiate = ";

/// The features in a [`NEGOTIATED`] line.
pub fn negotiated_features(line: &str) -> u64 {
    let at = line
        .find(NEGOTIATED)
        .unwrap_or_else(|| panic!("no {NEGOTIATED:?} in {line:?}"))
        + NEGOTIATED.len();
    let hex: String = line[at..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    u64::from_str_radix(&hex, 16).unwrap_or_else(|e| panic!("bad features in {line:?}: {e}"))
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

/// Sends `command` (if any) to testpmd and reads its output until, counted from then on, it
/// has printed a line containing `done` and logged `n` [`NEGOTIATED`] lines (panicking
/// after `timeout`); returns their features, in order. The two may come in either order:
/// the virtio PMD logs to stderr and testpmd replies on stdout, two pipes that [`Proc`]
/// reads on two threads, so a reply can overtake a log line written before it.
pub fn negotiations(
    p: &mut Proc,
    command: Option<&str>,
    n: usize,
    done: &str,
    timeout: Duration,
) -> Vec<u64> {
    let mark = p.log.len();
    if let Some(c) = command {
        p.send(c);
    }
    let what = format!("{n} negotiations and {done:?} after {command:?}");
    crate::process::watch(&mut [&mut *p], 0, &what, timeout, |log| {
        log[mark..].contains(done) && log[mark..].matches(NEGOTIATED).count() >= n
    });
    p.log[mark..]
        .lines()
        .filter(|l| l.contains(NEGOTIATED))
        .map(negotiated_features)
        .collect()
}

/// Stops testpmd's forwarding and returns each port's (RX-packets, TX-packets) from the
/// statistics it prints, for ports `0..ports` (all forwarding ports, in port order).
pub fn stop_forwarding_per_port(p: &mut Proc, ports: usize) -> Vec<(u64, u64)> {
    p.send("stop");
    let per_port = (0..ports)
        .map(|n| {
            p.wait_for(
                &format!("Forward statistics for port {n} "),
                Duration::from_secs(20),
            );
            let rx = p.wait_for("RX-packets:", Duration::from_secs(5));
            let tx = p.wait_for("TX-packets:", Duration::from_secs(5));
            (
                number_after(&rx, "RX-packets:"),
                number_after(&tx, "TX-packets:"),
            )
        })
        .collect();
    p.wait_for(
        "Accumulated forward statistics for all ports",
        Duration::from_secs(5),
    );
    per_port
}

/// A `--file-prefix` for one testpmd, unique to this test process; DPDK's runtime
/// directory for it is removed on drop, also when the test fails. Declare it before the
/// [`Proc`] that uses it, so that the process is gone (dropped first) by then.
#[derive(Debug)]
pub struct DpdkRuntime {
    /// The `--file-prefix` value.
    pub prefix: String,
}

impl DpdkRuntime {
    /// The prefix `vsw-{tag}-{pid}`.
    pub fn new(tag: &str) -> DpdkRuntime {
        DpdkRuntime {
            prefix: format!("vsw-{tag}-{}", std::process::id()),
        }
    }
}

impl Drop for DpdkRuntime {
    fn drop(&mut self) {
        remove_dpdk_runtime(&self.prefix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiated_features_reads_the_hex() {
        let line = "virtio_ethdev_negotiate_features(): features after negotiate = 910019801";
        assert_eq!(negotiated_features(line), 0x9_1001_9801);
    }

    #[test]
    fn vdev_arguments() {
        let sock = Path::new("/tmp/s.sock");
        assert_eq!(
            virtio_user_vdev(1, sock, true, ",packed_vq=1"),
            "--vdev=net_virtio_user1,path=/tmp/s.sock,queues=1,server=1,packed_vq=1"
        );
        assert_eq!(
            pcap_vdev(0, Path::new("/tmp/in.pcap")),
            "--vdev=net_pcap0,rx_pcap=/tmp/in.pcap"
        );
    }
}
