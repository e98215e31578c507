//! What the control plane reports while real frames flow: a vswitchd with two vhost-user
//! ports, DPDK testpmd (`net_virtio_user`, `txonly`: IPv4/UDP 198.18.0.1 -> 198.18.0.2) attached
//! to p0 only. `GET /v1/flows` credits every frame to the rule that matched and none to the
//! one that did not; REST, `vswitchctl` and `/metrics` show p0 connected and p1 not while the
//! frontend is attached, and p0 disconnected once it quit.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;
use serde_json::Value;

const VSWITCHCTL: &str = env!("CARGO_BIN_EXE_vswitchctl");

/// Removes testpmd's DPDK runtime directory however the test ends.
struct DpdkRuntime(String);

impl Drop for DpdkRuntime {
    fn drop(&mut self) {
        remove_dpdk_runtime(&self.0);
    }
}

/// Polls `probe` until it returns `Some`; panics with `what` and the last value seen after
/// `limit` (a liveness bound, not a speed assertion).
fn eventually<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> (Option<T>, String)) -> T {
    let deadline = Instant::now() + limit;
    loop {
        let (got, seen) = probe();
        if let Some(v) = got {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {limit:?}; last seen: {seen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `(id, hits)` of every flow.
fn hits(sw: &Vswitchd) -> (Vec<(u64, u64)>, Value) {
    let (status, flows) = sw.call("GET", "/v1/flows", None, None);
    assert_eq!(status, 200, "{flows}");
    let h = flows
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["id"].as_u64().unwrap(), f["hits"].as_u64().unwrap()))
        .collect();
    (h, flows)
}

/// The value of the `/metrics` sample `family{port="port",...}`.
fn port_sample(metrics: &str, family: &str, port: &str) -> Option<f64> {
    let label = format!("port=\"{port}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{family}{{")) && l.contains(&label))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

fn connected(sw: &Vswitchd, port: &str) -> Value {
    let (status, v) = sw.call("GET", &format!("/v1/ports/{port}"), None, None);
    assert_eq!(status, 200, "{v}");
    v["connected"].clone()
}

fn vswitchctl(sw: &Vswitchd, args: &[&str]) -> String {
    let out = Command::new(VSWITCHCTL)
        .args(["--server", &sw.addr.to_string()])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vswitchctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn flow_hits_and_connection_state_follow_a_real_frontend() {
    if !require_peer(TESTPMD, "dpdk-dev", "VSWITCH_SKIP_DPDK") {
        return;
    }
    let dir = Scratch::new("e2e-counters");
    let (s0, s1) = (dir.path("p0.sock"), dir.path("p1.sock"));
    let cfg = format!(
        r#"
[switch]
{socket_dir}

[[port]]
name = "p0"
type = "vhost-user"
socket = "{s0}"

[[port]]
name = "p1"
type = "vhost-user"
socket = "{s1}"

# testpmd's txonly frames: IPv4 UDP.
[[flow]]
priority = 100
match = {{ in_port = "p0", eth_type = "0x0800", ip_proto = "udp" }}
actions = ["output:p1"]

# Never matches them.
[[flow]]
priority = 100
match = {{ in_port = "p0", eth_type = "0x0806" }}
actions = ["drop"]
"#,
        socket_dir = dir.socket_dir(),
        s0 = s0.display(),
        s1 = s1.display(),
    );
    let sw = Vswitchd::start(&dir, Some(&cfg), &[]);
    assert_eq!(connected(&sw, "p0"), false);
    assert_eq!(connected(&sw, "p1"), false);

    let runtime = DpdkRuntime(format!("vsw-e2e-{}", std::process::id()));
    let mut tx = Proc::spawn("testpmd-tx", testpmd(&runtime.0, &s0, false, "txonly"));
    tx.wait_for("Done", Duration::from_secs(60));

    // Attached: REST, vswitchctl and /metrics agree.
    eventually("p0 connected in REST", Duration::from_secs(20), || {
        let c = connected(&sw, "p0");
        ((c == true).then_some(()), c.to_string())
    });
    assert_eq!(connected(&sw, "p1"), false);
    let (_, _, metrics) = http_get(sw.addr, "/metrics");
    assert_eq!(
        port_sample(&metrics, "vswitch_port_connected", "p0"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        port_sample(&metrics, "vswitch_port_connected", "p1"),
        Some(0.0),
        "{metrics}"
    );
    let table = vswitchctl(&sw, &["port", "list"]);
    let header = table.lines().next().unwrap();
    let col = header
        .split_whitespace()
        .position(|h| h == "CONNECTED")
        .unwrap_or_else(|| panic!("no CONNECTED column: {table}"));
    let state = |port: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{port} ")))
            .and_then(|l| l.split_whitespace().nth(col))
            .unwrap_or_else(|| panic!("no {port} row: {table}"))
            .to_string()
    };
    assert_eq!((state("p0"), state("p1")), ("yes".into(), "no".into()));
    let show = vswitchctl(&sw, &["port", "show", "p0"]);
    assert!(show.contains("  connected: yes\n"), "{show}");

    // Traffic: every frame testpmd sent is credited to flow 1, none to flow 2.
    tx.send("start");
    tx.wait_for("txonly packet forwarding", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(1));
    let (_, sent) = stop_forwarding(&mut tx);
    assert!(sent > 1000, "testpmd sent only {sent} frames");
    eprintln!("testpmd sent {sent} frames into p0");
    let (flows, raw) = eventually(
        "flow 1 credited every frame",
        Duration::from_secs(10),
        || {
            let (h, raw) = hits(&sw);
            let done = h.first().is_some_and(|&(_, n)| n >= sent);
            (done.then(|| (h, raw.clone())), raw.to_string())
        },
    );
    assert_eq!(flows, vec![(1, sent), (2, 0)], "{raw}");
    // The port counters (published by the PMD's mirror) agree.
    eventually("p0 rx_packets == sent", Duration::from_secs(10), || {
        let (_, v) = sw.call("GET", "/v1/ports/p0", None, None);
        let rx = v["counters"]["rx_packets"].as_u64();
        ((rx == Some(sent)).then_some(()), v.to_string())
    });

    // The frontend quits: p0 is disconnected again, in REST and /metrics.
    tx.send("quit");
    let _ = tx.stop(Signal::SIGTERM, Duration::from_secs(20));
    drop(runtime);
    eventually("p0 disconnected in REST", Duration::from_secs(20), || {
        let c = connected(&sw, "p0");
        ((c == false).then_some(()), c.to_string())
    });
    let (_, _, metrics) = http_get(sw.addr, "/metrics");
    assert_eq!(
        port_sample(&metrics, "vswitch_port_connected", "p0"),
        Some(0.0),
        "{metrics}"
    );
    sw.stop();
}
