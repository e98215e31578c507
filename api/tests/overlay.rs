//! The overlay against real peers, in network namespaces: `vswitchd` processes with AF_XDP
//! uplinks on veth pairs, the Linux kernel's own vxlan devices as remote VTEPs, and "guests"
//! that are network namespaces behind a veth pair whose switch end is an AF_XDP port (the
//! guest's kernel stack pings; no VM).
//!
//! Every namespace and interface is created per test with names made unique by the test's
//! tag and this process's pid, and removed on drop (deleting a namespace deletes the veths
//! in it). IPv6 is disabled in every namespace, so the only frames are the ones the test
//! causes. Addresses: underlay 198.18.0.0/24, overlay 198.19.0.0/24.
//!
//! Needs root, `ip` (iproute2), `ping` (iputils-ping) and `sysctl` (procps).

mod common;
// The full-mesh tests, in a file of their own (a crate root finds its modules beside it).
#[path = "overlay/mesh.rs"]
mod mesh;
// Guest offloads through the overlay (issue 13): a QEMU guest's TCP stream to the kernel VTEP.
#[path = "overlay/offload.rs"]
mod offload;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;
use testkit::netns::{ping_replies, veth_between};
use testkit::process::require_tool;
use testkit::qemu;

/// One test at a time: each starts one to three switches and several namespaces, and the
/// machine has two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn require_tools() {
    for (tool, package) in [
        ("ip", "iproute2"),
        ("ping", "iputils-ping"),
        ("sysctl", "procps"),
    ] {
        require_tool(tool, package);
    }
}

/// Names unique to one test in this process: `tag` (one letter) and the pid.
struct Names {
    tag: &'static str,
    pid: u32,
}

impl Names {
    fn new(tag: &'static str) -> Names {
        Names {
            tag,
            pid: std::process::id() % 1_000_000,
        }
    }

    /// A namespace name.
    fn ns(&self, what: &str) -> String {
        format!("vsw-{}{}-{what}", self.tag, self.pid)
    }

    /// The namespace [`Names::ns`] names, with IPv6 off (so the only frames are the ones the
    /// test causes); deleted, with every interface in it, on drop.
    fn netns(&self, what: &str) -> Netns {
        Netns::named_ipv4_only(self.ns(what))
    }

    /// An interface name (at most 15 bytes).
    fn ifname(&self, what: &str) -> String {
        let n = format!("{}{}{what}", self.tag, self.pid);
        assert!(n.len() <= 15, "interface name {n:?} too long");
        n
    }
}

/// A guest: a namespace with `addr/24` and `mac` on a veth whose other end (`sw_if`, in
/// `sw`) becomes an AF_XDP switch port.
struct Guest {
    ns: Netns,
    ifname: String,
}

fn guest(names: &Names, what: &str, sw: &Netns, addr: &str, mac: &str) -> (Guest, String) {
    let ns = names.netns(what);
    let sw_if = names.ifname(&format!("{what}s"));
    let ifname = names.ifname(&format!("{what}k"));
    veth_between(sw, &sw_if, &ns, &ifname);
    ns.ip(&["link", "set", &ifname, "address", mac]);
    ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", &ifname]);
    (Guest { ns, ifname }, sw_if)
}

/// The kernel's vxlan device `name` in `ns`: VNI `vni`, from `local` to `remote` over `dev`,
/// overlay address `addr/24` and MAC `mac`.
#[allow(clippy::too_many_arguments)]
fn kernel_vxlan(
    ns: &Netns,
    name: &str,
    vni: u32,
    local: &str,
    remote: &str,
    dev: &str,
    addr: &str,
    mac: &str,
) {
    ns.ip(&[
        "link",
        "add",
        name,
        "address",
        mac,
        "type",
        "vxlan",
        "id",
        &vni.to_string(),
        "local",
        local,
        "remote",
        remote,
        "dstport",
        "4789",
        "dev",
        dev,
    ]);
    ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", name]);
    ns.ip(&["link", "set", name, "up"]);
}

/// A `vswitchd` running inside namespace `ns` from `config`; stopped with SIGTERM by
/// [`Switchd::stop`] (or killed by PID on drop).
struct Switchd {
    proc: Proc,
}

impl Switchd {
    fn start(ns: &Netns, dir: &Scratch, name: &str, config: &str) -> Switchd {
        Switchd::start_with_api(ns, dir, name, config, None)
    }

    /// [`Switchd::start`], with the REST API on unix socket `api_socket` when given (a
    /// socket file is reachable from the test's own namespace; TCP on the namespace's
    /// loopback would not be). Its token file goes into `dir` too.
    fn start_with_api(
        ns: &Netns,
        dir: &Scratch,
        name: &str,
        config: &str,
        api_socket: Option<&Path>,
    ) -> Switchd {
        let path = dir.file(&format!("{name}.toml"), config);
        let mut cmd = Command::new("ip");
        // No TCP API: each namespace has its own loopback.
        cmd.args(["netns", "exec", &ns.name, VSWITCHD, "--api-listen", "off"]);
        if let Some(sock) = api_socket {
            cmd.arg("--api-socket")
                .arg(sock)
                .arg("--api-token-file")
                .arg(dir.path(&format!("{name}.token")));
        }
        cmd.arg("--config").arg(&path).env("RUST_LOG", "info");
        let mut proc = Proc::spawn(name, cmd);
        proc.wait_for("vswitchd running", Duration::from_secs(30));
        Switchd { proc }
    }

    /// Stops it and returns its log (with the totals it prints on the way out).
    fn stop(mut self) -> String {
        let status = self.proc.stop(Signal::SIGTERM, Duration::from_secs(20));
        assert!(
            status.success(),
            "{} exited with {status}:\n{}",
            self.proc.name,
            self.proc.log
        );
        std::mem::take(&mut self.proc.log)
    }
}

/// Overlay counter `counter`, from the `tunnel totals: name=N ...` line `vswitchd` logs
/// when it stops (summed over its PMDs).
fn tunnel_total(log: &str, counter: &str) -> u64 {
    let line = log
        .lines()
        .find(|l| l.contains("tunnel totals:"))
        .unwrap_or_else(|| panic!("no tunnel totals in the log:\n{log}"));
    number_after(line, &format!(" {counter}="))
}

fn afxdp_port(name: &str, ifname: &str, extra: &str) -> String {
    format!("[[port]]\nname = \"{name}\"\ntype = \"afxdp\"\ninterface = \"{ifname}\"\n{extra}\n")
}

fn vxlan_port(name: &str, vni: u32, remote: &str, tag: u16) -> String {
    format!(
        "[[port]]\nname = \"{name}\"\ntype = \"vxlan\"\nvni = {vni}\nremote_ip = \"{remote}\"\nvlan = {{ mode = \"access\", tag = {tag} }}\n"
    )
}

fn switch_section(dir: &Scratch) -> String {
    format!(
        "[switch]\npmd_cores = [{}]\n{}\n",
        last_cpu(),
        dir.socket_dir()
    )
}

const GUEST_MAC: &str = "02:00:00:00:01:01";
const FAR_MAC: &str = "02:00:00:00:01:02";

/// One switch with an AF_XDP uplink to a namespace whose kernel vxlan device (VNI 100) holds
/// 198.19.0.2, and one guest (198.19.0.1, VLAN 10 <-> VNI 100).
struct KernelPeer {
    guest: Guest,
    far: Netns,
    far_vx: String,
    _sw_ns: Netns,
    _dir: Scratch,
    switchd: Switchd,
}

/// The far side of the underlay: namespace `far` with 198.18.0.2 on the veth peer of the
/// switch's uplink (returned: the uplink's name) and the kernel vxlan device (VNI 100,
/// 198.19.0.2) whose name is returned too.
fn far_vtep(names: &Names, sw_ns: &Netns) -> (Netns, String, String) {
    let far = names.netns("far");
    let (up, upk) = (names.ifname("up"), names.ifname("upk"));
    veth_between(sw_ns, &up, &far, &upk);
    far.ip(&["addr", "add", "198.18.0.2/24", "dev", &upk]);
    let far_vx = names.ifname("vx");
    kernel_vxlan(
        &far,
        &far_vx,
        100,
        "198.18.0.2",
        "198.18.0.1",
        &upk,
        "198.19.0.2",
        FAR_MAC,
    );
    (far, far_vx, up)
}

fn kernel_peer(tag: &'static str) -> KernelPeer {
    kernel_peer_with_mtu(tag, None)
}

/// [`kernel_peer`], with the underlay veth's MTU (both ends) set to `mtu` before the switch
/// starts; its config sets no `mtu`.
fn kernel_peer_with_mtu(tag: &'static str, mtu: Option<u16>) -> KernelPeer {
    require_tools();
    let names = Names::new(tag);
    let dir = Scratch::new(&format!("overlay-{tag}"));
    let sw_ns = names.netns("sw");
    let (far, far_vx, up) = far_vtep(&names, &sw_ns);
    if let Some(mtu) = mtu {
        let mtu = mtu.to_string();
        sw_ns.ip(&["link", "set", &up, "mtu", &mtu]);
        far.ip(&["link", "set", &names.ifname("upk"), "mtu", &mtu]);
    }
    let (guest, g_sw) = guest(&names, "g", &sw_ns, "198.19.0.1", GUEST_MAC);
    let config = format!(
        "{}\n{}\n{}\n{}",
        switch_section(&dir),
        afxdp_port("uplink", &up, "ip = \"198.18.0.1/24\""),
        afxdp_port("vm", &g_sw, "vlan = { mode = \"access\", tag = 10 }"),
        vxlan_port("vx100", 100, "198.18.0.2", 10),
    );
    let switchd = Switchd::start(&sw_ns, &dir, &format!("vswitchd-{tag}"), &config);
    KernelPeer {
        guest,
        far,
        far_vx,
        _sw_ns: sw_ns,
        _dir: dir,
        switchd,
    }
}

/// Issue test 1: a guest behind the switch pings an address on the kernel's vxlan device in
/// another namespace, through the AF_XDP uplink (ARP for the overlay address crosses the
/// tunnel too).
#[test]
fn guest_pings_kernel_vxlan_through_afxdp_uplink() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t = kernel_peer("k");
    let replies = t.guest.ns.ping("198.19.0.2", 3);
    let log = t.switchd.stop();
    assert_eq!(
        replies, 3,
        "echo replies from the kernel vxlan peer; vswitchd log:
{log}"
    );
    // The far side really received VXLAN: its vxlan device counted frames.
    assert!(t.far.rx_packets(&t.far_vx) >= 3);
}

/// Issue test 1 with a real Linux guest: a QEMU (TCG) VM on a vhost-user port of the switch
/// (VLAN 10 <-> VNI 100) pings the kernel vxlan device's address through the AF_XDP uplink.
#[test]
fn qemu_guest_pings_kernel_vxlan_through_afxdp_uplink() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !require_peer(qemu::QEMU, "qemu-system-x86", "VSWITCH_SKIP_QEMU") {
        return;
    }
    require_tools();
    let image = qemu::image();
    let names = Names::new("q");
    let dir = Scratch::new("overlay-q");
    let sw_ns = names.netns("sw");
    let (far, far_vx, up) = far_vtep(&names, &sw_ns);
    let sock = dir.path("vm.sock");
    let config = format!(
        "{}\n{}\n[[port]]\nname = \"vm\"\ntype = \"vhost-user\"\nsocket = \"{}\"\nvlan = {{ mode = \"access\", tag = 10 }}\n\n{}",
        switch_section(&dir),
        afxdp_port("uplink", &up, "ip = \"198.18.0.1/24\""),
        sock.display(),
        vxlan_port("vx100", 100, "198.18.0.2", 10),
    );
    let switchd = Switchd::start(&sw_ns, &dir, "vswitchd-q", &config);
    let mut vm = Proc::spawn(
        "guest (pinger)",
        qemu::command(
            &image,
            &sock,
            false,
            "52:54:00:12:01:01",
            "vs.role=pinger vs.ip=198.19.0.1/24 vs.peer=198.19.0.2 vs.count=3 vs.wait=60",
        ),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    while qemu::verdict(&vm.log).is_none() && std::time::Instant::now() < deadline {
        vm.drain_for(Duration::from_millis(200));
    }
    let verdict = qemu::verdict(&vm.log).map(str::to_string);
    let _ = vm.stop(Signal::SIGTERM, Duration::from_secs(20));
    let log = switchd.stop();
    assert_eq!(
        verdict.as_deref(),
        Some("VSWITCH-TEST: PASS 3/3"),
        "guest console:\n{}\nvswitchd:\n{log}",
        vm.log
    );
    assert!(far.rx_packets(&far_vx) >= 3);
}

/// Issue test 4: the first frame to a VTEP the switch has never resolved is held while it
/// ARPs, then delivered. Static neighbours on both overlay ends make the guest's single
/// echo request the very first frame the switch sees, and `ping -c 1` never retransmits: the
/// reply proves that frame was not lost, and the switch's tunnel totals that it was held
/// (queued while the ARP request went out, then released, none dropped).
#[test]
fn first_frame_to_unresolved_vtep_is_delivered_after_arp() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t = kernel_peer("a");
    let g = &t.guest;
    g.ns.ip(&[
        "neigh",
        "replace",
        "198.19.0.2",
        "lladdr",
        FAR_MAC,
        "dev",
        &g.ifname,
        "nud",
        "permanent",
    ]);
    t.far.ip(&[
        "neigh",
        "replace",
        "198.19.0.1",
        "lladdr",
        GUEST_MAC,
        "dev",
        &t.far_vx,
        "nud",
        "permanent",
    ]);
    let replies = g.ns.ping("198.19.0.2", 1);
    let log = t.switchd.stop();
    assert_eq!(
        replies, 1,
        "the first echo request was lost; vswitchd log:\n{log}"
    );
    assert_eq!(drops_for(&log, "tunnel"), 0, "overlay drops:\n{log}");
    let queued = tunnel_total(&log, "neigh_queued");
    assert!(
        queued >= 1,
        "the first frame was not held (resolved before it?):\n{log}"
    );
    assert!(tunnel_total(&log, "neigh_misses") >= queued, "{log}");
    assert!(tunnel_total(&log, "arp_requests_sent") >= 1, "{log}");
    assert_eq!(
        tunnel_total(&log, "neigh_released"),
        queued,
        "every held frame was sent:\n{log}"
    );
    assert_eq!(tunnel_total(&log, "neigh_queue_overflow"), 0, "{log}");
    assert_eq!(tunnel_total(&log, "neigh_timeout_drops"), 0, "{log}");
}

/// The underlay MTU comes from the uplink interface when the config sets none: with the
/// veth at 1400, an inner frame whose outer packet would be 1418 bytes is dropped by the
/// switch, counted and logged, while one of 1378 bytes crosses. (With the old fixed default
/// of 1500 the switch would have sent the 1418-byte packet, for the link to drop uncounted.)
#[test]
fn underlay_mtu_defaults_to_the_interface_mtu() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t = kernel_peer_with_mtu("m", Some(1400));
    // ICMP payload 1300: inner frame 14 + 20 + 8 + 1300 = 1342, outer packet 1378.
    let fits = t.guest.ns.cmd(&[
        "ping",
        "-n",
        "-c",
        "1",
        "-W",
        "10",
        "-s",
        "1300",
        "198.19.0.2",
    ]);
    let fits = run_status(fits);
    // Payload 1340: outer packet 1418 > 1400.
    let too_big = t.guest.ns.cmd(&[
        "ping",
        "-n",
        "-c",
        "1",
        "-W",
        "2",
        "-s",
        "1340",
        "198.19.0.2",
    ]);
    let too_big = run_status(too_big);
    let log = t.switchd.stop();
    assert!(fits, "1378-byte outer packets cross a 1400 MTU:\n{log}");
    assert!(!too_big, "a 1418-byte outer packet went through:\n{log}");
    assert!(
        log.contains("underlay MTU from the interface") && log.contains("mtu=1400"),
        "{log}"
    );
    assert!(tunnel_total(&log, "mtu_drops") >= 1, "{log}");
    assert!(
        log.contains("inner frame too large for the underlay MTU"),
        "no MTU drop log line:\n{log}"
    );
}

/// Whether a command ran and succeeded (its output goes to the test's stderr).
fn run_status(mut cmd: Command) -> bool {
    let out = cmd.output().expect("command runs");
    eprintln!(
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.status.success()
}

/// Issue test 2: two switches, each with its AF_XDP uplink in its own namespace (a veth
/// between them), VXLAN between them; a guest on each side pings the other.
#[test]
fn two_switches_carry_vxlan_between_their_guests() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_tools();
    let names = Names::new("t");
    let dir = Scratch::new("overlay-t");
    let ns_a = names.netns("swa");
    let ns_b = names.netns("swb");
    let (up_a, up_b) = (names.ifname("ua"), names.ifname("ub"));
    veth_between(&ns_a, &up_a, &ns_b, &up_b);
    let (ga, ga_sw) = guest(&names, "ga", &ns_a, "198.19.0.1", GUEST_MAC);
    let (gb, gb_sw) = guest(&names, "gb", &ns_b, "198.19.0.2", FAR_MAC);
    let config = |up: &str, ip: &str, vm: &str, remote: &str| {
        format!(
            "{}\n{}\n{}\n{}",
            switch_section(&dir),
            afxdp_port("uplink", up, &format!("ip = \"{ip}/24\"")),
            afxdp_port("vm", vm, "vlan = { mode = \"access\", tag = 10 }"),
            vxlan_port("vx100", 100, remote, 10),
        )
    };
    let sw_a = Switchd::start(
        &ns_a,
        &dir,
        "vswitchd-a",
        &config(&up_a, "198.18.0.1", &ga_sw, "198.18.0.2"),
    );
    let sw_b = Switchd::start(
        &ns_b,
        &dir,
        "vswitchd-b",
        &config(&up_b, "198.18.0.2", &gb_sw, "198.18.0.1"),
    );
    let a_to_b = ga.ns.ping("198.19.0.2", 3);
    let b_to_a = gb.ns.ping("198.19.0.1", 3);
    let (log_a, log_b) = (sw_a.stop(), sw_b.stop());
    assert!(
        a_to_b == 3 && b_to_a == 3,
        "a->b {a_to_b}, b->a {b_to_a}\nswitch A:\n{log_a}\nswitch B:\n{log_b}"
    );
}

/// Issue test 3: two tenants on one switch, VLAN 10 <-> VNI 100 and VLAN 20 <-> VNI 200, to
/// two kernel VTEPs; both tenants use the same addresses and MACs. Each tenant reaches its
/// own far side, and nothing (ARP broadcasts and broadcast pings included) reaches the other
/// tenant's guest or VTEP.
#[test]
fn tenants_with_overlapping_addresses_leak_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_tools();
    let names = Names::new("i");
    let dir = Scratch::new("overlay-i");
    let sw = names.netns("sw");
    // The underlay: a bridge in its own namespace joins the switch and two far VTEPs.
    let wire = names.netns("wire");
    wire.ip(&["link", "add", "br0", "type", "bridge"]);
    wire.ip(&["link", "set", "br0", "up"]);
    let up = names.ifname("up");
    let w0 = names.ifname("w0");
    veth_between(&sw, &up, &wire, &w0);
    wire.ip(&["link", "set", &w0, "master", "br0"]);
    let far = |what: &str, underlay: &str, vni: u32| {
        let ns = names.netns(what);
        let (w, k) = (
            names.ifname(&format!("w{what}")),
            names.ifname(&format!("{what}k")),
        );
        veth_between(&wire, &w, &ns, &k);
        wire.ip(&["link", "set", &w, "master", "br0"]);
        ns.ip(&["addr", "add", &format!("{underlay}/24"), "dev", &k]);
        let vx = names.ifname(&format!("{what}v"));
        kernel_vxlan(
            &ns,
            &vx,
            vni,
            underlay,
            "198.18.0.1",
            &k,
            "198.19.0.2",
            FAR_MAC,
        );
        (ns, vx)
    };
    let (far_a, vx_a) = far("fa", "198.18.0.2", 100);
    let (far_b, vx_b) = far("fb", "198.18.0.3", 200);
    let (ga, ga_sw) = guest(&names, "ga", &sw, "198.19.0.1", GUEST_MAC);
    let (gb, gb_sw) = guest(&names, "gb", &sw, "198.19.0.1", GUEST_MAC);
    let config = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        switch_section(&dir),
        afxdp_port("uplink", &up, "ip = \"198.18.0.1/24\""),
        afxdp_port("vma", &ga_sw, "vlan = { mode = \"access\", tag = 10 }"),
        afxdp_port("vmb", &gb_sw, "vlan = { mode = \"access\", tag = 20 }"),
        vxlan_port("vxa", 100, "198.18.0.2", 10),
        vxlan_port("vxb", 200, "198.18.0.3", 20),
    );
    let switchd = Switchd::start(&sw, &dir, "vswitchd-i", &config);

    // Tenant A talks (ARP broadcast, pings, a broadcast ping); B's side must see nothing.
    let (b_guest0, b_vtep0) = (gb.ns.rx_packets(&gb.ifname), far_b.rx_packets(&vx_b));
    let a_ok = ga.ns.ping("198.19.0.2", 3);
    let _ = ga
        .ns
        .cmd(&["ping", "-n", "-b", "-c", "2", "-w", "5", "198.19.0.255"])
        .output();
    let (b_guest1, b_vtep1) = (gb.ns.rx_packets(&gb.ifname), far_b.rx_packets(&vx_b));
    let a_reached = far_a.rx_packets(&vx_a);

    // Then tenant B; A's side must see nothing new.
    let (a_guest0, a_vtep0) = (ga.ns.rx_packets(&ga.ifname), far_a.rx_packets(&vx_a));
    let b_ok = gb.ns.ping("198.19.0.2", 3);
    let _ = gb
        .ns
        .cmd(&["ping", "-n", "-b", "-c", "2", "-w", "5", "198.19.0.255"])
        .output();
    let (a_guest1, a_vtep1) = (ga.ns.rx_packets(&ga.ifname), far_a.rx_packets(&vx_a));
    let b_reached = far_b.rx_packets(&vx_b);

    let log = switchd.stop();
    assert_eq!(
        (a_ok, b_ok),
        (3, 3),
        "tenant A, B echo replies; log:\n{log}"
    );
    assert!(
        a_reached >= 3 && b_reached >= 3,
        "VTEPs saw A {a_reached}, B {b_reached}"
    );
    assert_eq!(
        (b_guest1 - b_guest0, b_vtep1 - b_vtep0),
        (0, 0),
        "tenant A's traffic reached tenant B (guest, VTEP)"
    );
    assert_eq!(
        (a_guest1 - a_guest0, a_vtep1 - a_vtep0),
        (0, 0),
        "tenant B's traffic reached tenant A (guest, VTEP)"
    );
}
