//! Three switches in a full VXLAN mesh on one underlay bridge, two tenants: one broadcast
//! reaches each other node once, and neither tenant sees the other.

use super::*;

/// `GET path` on the REST API at unix socket `sock`: the JSON body of a 200.
fn api_get(sock: &Path, path: &str) -> serde_json::Value {
    let r = api::ctl::http::Endpoint::Unix(sock.to_path_buf())
        .request("GET", path, None, None)
        .unwrap_or_else(|e| panic!("GET {path} on {}: {e}", sock.display()));
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("GET {path}: {e}: {:?}", r.body))
}

/// One switch of the mesh: its namespace, its tenant-A guest (VNI 100), maybe a tenant-B
/// guest (VNI 200), its API socket and the running `vswitchd`.
struct MeshNode {
    a: Guest,
    b: Option<Guest>,
    api: std::path::PathBuf,
    switchd: Switchd,
    _ns: Netns,
}

impl MeshNode {
    /// Drops of `reason` over the switch's PMDs, from `GET /v1/stats` (`None`: the switch
    /// has no such reason).
    fn drops(&self, reason: &str) -> Option<u64> {
        api_get(&self.api, "/v1/stats")["drops"][reason].as_u64()
    }

    /// The switch's MAC table for `vlan`: (MAC, port) pairs.
    fn fdb(&self, vlan: u16) -> Vec<(String, String)> {
        let fdb = api_get(&self.api, &format!("/v1/fdb?vlan={vlan}"));
        fdb.as_array()
            .unwrap_or_else(|| panic!("fdb is not a list: {fdb}"))
            .iter()
            .map(|e| {
                (
                    e["mac"].as_str().unwrap().to_ascii_lowercase(),
                    e["port"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

/// Sends `count` echo requests to `dst` from `ns`, 0.2 s apart, and returns how many replies
/// came back (each waited for up to 5 s).
fn ping_quick(ns: &Netns, dst: &str, count: u32) -> u32 {
    let out = ns
        .cmd(&[
            "ping",
            "-n",
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            "5",
            dst,
        ])
        .output()
        .expect("ping runs");
    let text = String::from_utf8_lossy(&out.stdout);
    ping_replies(&text).unwrap_or_else(|| {
        eprintln!("[{}] ping {dst}: {text}", ns.name);
        0
    })
}

/// Sends ONE broadcast echo request (Ethernet ff:ff:ff:ff:ff:ff) from `ns` to 198.19.0.255
/// and waits a second (nobody answers: broadcast echoes are ignored).
fn one_broadcast(ns: &Netns) {
    let _ = ns
        .cmd(&["ping", "-n", "-b", "-c", "1", "-w", "1", "198.19.0.255"])
        .output()
        .expect("ping runs");
}

/// The MAC of node `i`'s guests (tenant A and B use the same one: overlapping tenants).
fn mesh_mac(i: usize) -> String {
    format!("02:00:00:00:03:{i:02x}")
}

/// Issue 10, item 0: three switches in a full VXLAN mesh (each with vxlan ports to the other
/// two, in VNI 100 and VNI 200) on one underlay bridge. Split horizon: what arrives from the
/// overlay is never sent back into it, so one broadcast reaches each other node's guest
/// exactly once (without it, the second node floods it to the third and the copies circle
/// for ever), every guest reaches every other, remote MACs stay learned on the vxlan port
/// of the node they live on, and tenant B (VNI 200, same addresses and MACs as tenant A on
/// nodes 1 and 2) receives nothing of tenant A's and the reverse.
#[test]
fn three_switches_in_a_full_mesh_deliver_each_broadcast_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_tools();
    let started = std::time::Instant::now();
    let names = Names::new("h");
    let dir = Scratch::new("overlay-h");
    let wire = names.netns("wire");
    wire.ip(&["link", "add", "br0", "type", "bridge"]);
    wire.ip(&["link", "set", "br0", "up"]);
    let mut nodes = Vec::new();
    for i in 1..=3usize {
        let ns = names.netns(&format!("sw{i}"));
        let (up, w) = (
            names.ifname(&format!("u{i}")),
            names.ifname(&format!("w{i}")),
        );
        veth_between(&ns, &up, &wire, &w);
        wire.ip(&["link", "set", &w, "master", "br0"]);
        let addr = format!("198.19.0.{i}");
        let (a, a_sw) = guest(&names, &format!("a{i}"), &ns, &addr, &mesh_mac(i));
        let b = (i != 3).then(|| guest(&names, &format!("b{i}"), &ns, &addr, &mesh_mac(i)));
        let mut config = format!(
            "{}\n{}\n{}\n",
            switch_section(&dir),
            afxdp_port("uplink", &up, &format!("ip = \"198.18.0.{i}/24\"")),
            afxdp_port("a", &a_sw, "vlan = { mode = \"access\", tag = 10 }"),
        );
        if let Some((_, b_sw)) = &b {
            config += &afxdp_port("b", b_sw, "vlan = { mode = \"access\", tag = 20 }");
        }
        for j in (1..=3).filter(|&j| j != i) {
            let remote = format!("198.18.0.{j}");
            config += &vxlan_port(&format!("vx{j}"), 100, &remote, 10);
            config += &vxlan_port(&format!("vy{j}"), 200, &remote, 20);
        }
        let api = dir.path(&format!("sw{i}.sock"));
        let switchd =
            Switchd::start_with_api(&ns, &dir, &format!("vswitchd-{i}"), &config, Some(&api));
        nodes.push(MeshNode {
            a,
            b: b.map(|(g, _)| g),
            api,
            switchd,
            _ns: ns,
        });
    }
    let tenant_b: Vec<&Guest> = nodes.iter().filter_map(|n| n.b.as_ref()).collect();
    let rx = |g: &Guest| g.ns.rx_packets(&g.ifname);
    let rx_a = |nodes: &[MeshNode]| nodes.iter().map(|n| rx(&n.a)).collect::<Vec<_>>();
    let rx_b = || tenant_b.iter().map(|g| rx(g)).collect::<Vec<_>>();
    let delta = |after: &[u64], before: &[u64]| {
        after
            .iter()
            .zip(before)
            .map(|(a, b)| a - b)
            .collect::<Vec<_>>()
    };

    // Every tenant-A guest pings every other one (ARP broadcasts included); tenant B sees
    // none of it.
    let b0 = rx_b();
    let mut replies = Vec::new();
    for i in 1..=3 {
        for j in (1..=3).filter(|&j| j != i) {
            let got = ping_quick(&nodes[i - 1].a.ns, &format!("198.19.0.{j}"), 2);
            replies.push((i, j, got));
        }
    }
    let b_after_a_pings = delta(&rx_b(), &b0);
    // The guests' kernels re-confirm the neighbours they just pinged with unicast ARP probes
    // some 5 s later (DELAY, then PROBE): on a slow machine those probes land in the
    // windows below and count as traffic. Pin the entries so every frame counted below is
    // the test's own.
    let pin = |g: &Guest, me: usize, peers: &[usize]| {
        for &j in peers.iter().filter(|&&j| j != me) {
            let (addr, mac) = (format!("198.19.0.{j}"), mesh_mac(j));
            g.ns.ip(&[
                "neigh",
                "replace",
                &addr,
                "lladdr",
                &mac,
                "nud",
                "permanent",
                "dev",
                &g.ifname,
            ]);
        }
    };
    for (i, n) in nodes.iter().enumerate() {
        pin(&n.a, i + 1, &[1, 2, 3]);
        if let Some(b) = &n.b {
            pin(b, i + 1, &[1, 2]);
        }
    }

    // ONE broadcast from A1: A2 and A3 receive it exactly once, A1 never gets it back,
    // tenant B receives nothing.
    let (a0, b0) = (rx_a(&nodes), rx_b());
    one_broadcast(&nodes[0].a.ns);
    std::thread::sleep(Duration::from_millis(300));
    let (a_bcast, b_after_a_bcast) = (delta(&rx_a(&nodes), &a0), delta(&rx_b(), &b0));
    let fdb_after_bcast: Vec<_> = nodes.iter().map(|n| n.fdb(10)).collect();

    // Tenant B (nodes 1 and 2, VNI 200) pings across, then broadcasts once: B2 gets it
    // once; node 3 has no VNI-200 port of its own, so split horizon leaves it nowhere to
    // go (counted); tenant A receives nothing.
    let a0 = rx_a(&nodes);
    let b_pings = (
        ping_quick(&tenant_b[0].ns, "198.19.0.2", 2),
        ping_quick(&tenant_b[1].ns, "198.19.0.1", 2),
    );
    let (b0, split0) = (rx_b(), nodes[2].drops("split_horizon"));
    one_broadcast(&tenant_b[0].ns);
    std::thread::sleep(Duration::from_millis(300));
    let b_bcast = delta(&rx_b(), &b0);
    let split_at_3 = nodes[2]
        .drops("split_horizon")
        .zip(split0)
        .map(|(after, before)| after - before);
    let a_after_b = delta(&rx_a(&nodes), &a0);
    let fdb_b: Vec<_> = nodes.iter().map(|n| n.fdb(20)).collect();

    let logs: Vec<String> = nodes.into_iter().map(|n| n.switchd.stop()).collect();
    let logs = logs.join("\n----\n");
    eprintln!(
        "mesh: broadcast copies at A1..A3 {a_bcast:?}, at B1, B2 {b_bcast:?}; \
         node 3 split_horizon drops {split_at_3:?}; {:?} elapsed",
        started.elapsed()
    );
    let failed: Vec<_> = replies.iter().filter(|r| r.2 != 2).collect();
    assert!(
        failed.is_empty(),
        "tenant A pings (from, to, replies of 2) that failed: {failed:?}\n{logs}"
    );
    assert_eq!(b_pings, (2, 2), "tenant B echo replies\n{logs}");
    assert_eq!(
        a_bcast,
        [0, 1, 1],
        "copies of ONE broadcast from A1 received by A1, A2, A3"
    );
    assert_eq!(b_bcast, [0, 1], "copies of ONE broadcast from B1 at B1, B2");
    assert_eq!(
        split_at_3,
        Some(1),
        "node 3 drops B1's broadcast as split_horizon (it has only vxlan ports in VNI 200)"
    );
    assert_eq!(
        (b_after_a_pings, b_after_a_bcast),
        (vec![0, 0], vec![0, 0]),
        "tenant A's traffic reached tenant B"
    );
    assert_eq!(a_after_b, [0, 0, 0], "tenant B's traffic reached tenant A");
    // MACs stay on the port towards the node they live on: local guests on `a`/`b`,
    // remote ones on the vxlan port to their node (no flapping between vxlan ports).
    for (i, (fdb_a, fdb_b)) in fdb_after_bcast.iter().zip(&fdb_b).enumerate() {
        let i = i + 1;
        for j in 1..=3 {
            let want = if i == j {
                "a".to_string()
            } else {
                format!("vx{j}")
            };
            let got: Vec<_> = fdb_a.iter().filter(|(m, _)| *m == mesh_mac(j)).collect();
            assert_eq!(
                got,
                [&(mesh_mac(j), want)],
                "node {i}, VLAN 10: where A{j}'s MAC is learned; whole table {fdb_a:?}"
            );
        }
        for (mac, port) in fdb_b {
            let j = (1..=2).find(|&j| *mac == mesh_mac(j)).unwrap_or_else(|| {
                panic!("node {i}, VLAN 20: unknown MAC {mac} on {port}; table {fdb_b:?}")
            });
            let want = if i == j {
                "b".to_string()
            } else {
                format!("vy{j}")
            };
            assert_eq!(
                *port, want,
                "node {i}, VLAN 20: where B{j}'s MAC is learned"
            );
        }
    }
    let knows = |fdb: &[(String, String)], j| fdb.iter().any(|(m, _)| *m == mesh_mac(j));
    assert!(
        knows(&fdb_b[0], 2) && knows(&fdb_b[1], 1) && knows(&fdb_b[2], 1),
        "tenant B's MACs learned across the mesh: {fdb_b:?}"
    );
}
