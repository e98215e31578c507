//! vswitchd with uplink ports bridging two namespaces: each namespace holds one host, the
//! switch's ports are the other ends (an AF_XDP socket on a veth, or a tap), no flows are
//! configured, so `normal` learns the MACs, and `ping` must succeed both ways. Needs root.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{require_tool, Netns, Proc, Scratch, Veth, VSWITCHD};
use nix::sys::signal::Signal;

const HOST_A: &str = "198.18.20.1";
const HOST_B: &str = "198.18.20.2";

fn start(dir: &Scratch, ports: &str) -> Proc {
    let cfg = dir.file(
        "vswitch.toml",
        &format!("[switch]\npmd_cores = [{}]\n{ports}", common::last_cpu()),
    );
    let mut cmd = Command::new(VSWITCHD);
    cmd.arg("--config")
        .arg(&cfg)
        .arg("--state-dir")
        .arg(dir.path("state"))
        .args(["--api-listen", "off"])
        .env("RUST_LOG", "info");
    let mut p = Proc::spawn("vswitchd", cmd);
    p.wait_for("vswitchd running", Duration::from_secs(30));
    p
}

/// `ping -c 3` from `ns` to `to` succeeds (3 replies within a 20 s deadline: a guard
/// against hanging, not a timing check).
fn ping(ns: &Netns, to: &str, sw: &mut Proc) {
    let (ok, out) = ns.try_exec(&["ping", "-c", "3", "-i", "0.2", "-w", "20", to]);
    if !ok {
        sw.drain_for(Duration::from_millis(200));
        panic!(
            "ping {to} from {} failed:\n{out}\nvswitchd:\n{}",
            ns.name, sw.log
        );
    }
}

#[test]
fn two_afxdp_uplinks_bridge_two_namespaces() {
    require_tool("ping", "iputils-ping");
    let (na, nb) = (Netns::new(), Netns::new());
    let (va, vb) = (Veth::new(&na), Veth::new(&nb));
    na.addr(&va.peer, &format!("{HOST_A}/24"));
    nb.addr(&vb.peer, &format!("{HOST_B}/24"));
    let dir = Scratch::new("uplinks-afxdp");
    let mut sw = start(
        &dir,
        &format!(
            "[[port]]\nname = \"up-a\"\ntype = \"afxdp\"\ninterface = \"{}\"\n\n\
             [[port]]\nname = \"up-b\"\ntype = \"afxdp\"\ninterface = \"{}\"\nqueues = 1\n",
            va.host, vb.host
        ),
    );
    ping(&na, HOST_B, &mut sw);
    ping(&nb, HOST_A, &mut sw);
    let status = sw.stop(Signal::SIGTERM, Duration::from_secs(20));
    assert!(status.success(), "vswitchd exit: {status}\n{}", sw.log);
    let (rx_a, tx_a) = common::port_totals(&sw.log, "up-a");
    let (rx_b, tx_b) = common::port_totals(&sw.log, "up-b");
    // Six echo requests and six replies crossed each port (plus ARP and the like).
    assert!(
        rx_a >= 6 && tx_a >= 6 && rx_b >= 6 && tx_b >= 6,
        "{}",
        sw.log
    );
}

#[test]
fn afxdp_uplink_and_tap_bridge_two_namespaces() {
    require_tool("ping", "iputils-ping");
    let (na, nb) = (Netns::new(), Netns::new());
    let va = Veth::new(&na);
    na.addr(&va.peer, &format!("{HOST_A}/24"));
    let tap = common::unique_name("vht");
    let dir = Scratch::new("uplinks-tap");
    let mut sw = start(
        &dir,
        &format!(
            "[[port]]\nname = \"up-a\"\ntype = \"afxdp\"\ninterface = \"{}\"\n\n\
             [[port]]\nname = \"host\"\ntype = \"tap\"\ninterface = \"{tap}\"\n",
            va.host
        ),
    );
    // The switch created the tap; the far host uses it from its own namespace. (It is not
    // persistent: it goes away with vswitchd, and with it from the namespace.)
    common::ip(&["link", "set", &tap, "netns", &nb.name]);
    nb.addr(&tap, &format!("{HOST_B}/24"));
    ping(&na, HOST_B, &mut sw);
    ping(&nb, HOST_A, &mut sw);
    let status = sw.stop(Signal::SIGTERM, Duration::from_secs(20));
    assert!(status.success(), "vswitchd exit: {status}\n{}", sw.log);
    let (rx, tx) = common::port_totals(&sw.log, "host");
    assert!(rx >= 6 && tx >= 6, "{}", sw.log);
}

#[test]
fn missing_interface_is_refused_with_its_name() {
    let dir = Scratch::new("uplinks-bad");
    let cfg = dir.file(
        "vswitch.toml",
        &format!(
            "[switch]\npmd_cores = [{}]\n[[port]]\nname = \"up\"\ntype = \"afxdp\"\ninterface = \"vsw-nosuch0\"\n",
            common::last_cpu()
        ),
    );
    let out = Command::new(VSWITCHD)
        .arg("--config")
        .arg(&cfg)
        .args(["--api-listen", "off"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("vsw-nosuch0"), "{err}");
}
