//! `render` against a running switch with memory ports: every value read back from the
//! exposition text equals what the test sent.

use std::time::{Duration, Instant};

use ports::mem::MemPeer;
use switch::config::{Config, PortConfig};
use switch::Switch;
use testkit::config::{memory_ports, switch_table};
use testkit::prometheus::sample;

use super::render;

/// A 60-byte frame from host `src` to host `dst` (EtherType 0x88b5, local experimental).
fn frame(src: u8, dst: u8) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, dst]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, src]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f
}

fn start(extra: &str) -> Switch {
    start_with("", extra)
}

/// [`start`] with `switch` added to the `[switch]` table.
fn start_with(switch: &str, extra: &str) -> Switch {
    let text = switch_table(testkit::last_cpu(), switch)
        + &memory_ports(&["a", "b"])
        + r#"
[[flow]]
priority = 100
match = { in_port = "a", eth_dst = "02:00:00:00:00:09" }
actions = ["drop"]
"# + extra;
    Switch::start(&Config::from_toml(&text, "metrics-test.toml").unwrap()).unwrap()
}

/// Waits until the switch took every injected frame, then publishes (two barriers: the
/// second is answered after the iteration that read the last frames).
fn settle(sw: &Switch, peers: &[&MemPeer]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while peers.iter().any(|p| p.pending_to_switch() > 0) {
        assert!(
            Instant::now() < deadline,
            "switch did not drain its rx queues"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    sw.barrier().unwrap();
    sw.barrier().unwrap();
}

fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(text, name, labels).unwrap_or_else(|| panic!("no sample {name}{labels:?} in:\n{text}"))
}

#[test]
fn counters_equal_the_traffic_sent() {
    let sw = start("");
    let a = sw.mem_peer("a").unwrap();
    let b = sw.mem_peer("b").unwrap();
    for _ in 0..50 {
        assert!(a.inject(&frame(1, 2)));
    }
    for _ in 0..7 {
        assert!(a.inject(&frame(1, 9)));
    }
    settle(&sw, &[&a]);
    assert_eq!(
        b.drain().len(),
        50,
        "normal floods the 50 unknown-unicast frames to b"
    );
    let text = render(&sw);

    let port_a = [("port", "a")];
    let port_b = [("port", "b")];
    assert_eq!(value(&text, "vswitch_port_rx_packets_total", &port_a), 57.0);
    assert_eq!(
        value(&text, "vswitch_port_rx_bytes_total", &port_a),
        57.0 * 60.0
    );
    assert_eq!(value(&text, "vswitch_port_tx_packets_total", &port_b), 50.0);
    assert_eq!(
        value(&text, "vswitch_port_tx_bytes_total", &port_b),
        50.0 * 60.0
    );
    assert_eq!(value(&text, "vswitch_port_tx_dropped_total", &port_b), 0.0);
    assert_eq!(value(&text, "vswitch_port_rx_packets_total", &port_b), 0.0);
    let rxq = [("port", "a"), ("queue", "0"), ("pmd", "0")];
    assert_eq!(value(&text, "vswitch_rxq_packets_total", &rxq), 57.0);
    assert_eq!(value(&text, "vswitch_rxq_bytes_total", &rxq), 57.0 * 60.0);
    let txq = [("port", "b"), ("pmd", "0")];
    assert_eq!(value(&text, "vswitch_txq_packets_total", &txq), 50.0);

    let drops = |reason| {
        value(
            &text,
            "vswitch_drops_total",
            &[("pmd", "0"), ("reason", reason)],
        )
    };
    assert_eq!(drops("rule"), 7.0);
    assert_eq!(drops("tx_full"), 0.0);
    for why in switch::DropReason::ALL {
        drops(why.as_str());
    }

    // Two flows (to 2 and to 9): each misses the EMC once and then hits.
    let cache = |name, level| value(&text, name, &[("pmd", "0"), ("level", level)]);
    // Port a's rule looks at more than the in-port: every frame goes on to the cache.
    assert_eq!(cache("vswitch_cache_hits_total", "port"), 0.0);
    assert_eq!(cache("vswitch_cache_misses_total", "port"), 57.0);
    assert_eq!(cache("vswitch_cache_misses_total", "emc"), 2.0);
    assert_eq!(cache("vswitch_cache_hits_total", "emc"), 55.0);
    assert_eq!(cache("vswitch_cache_hits_total", "classifier"), 1.0);
    assert_eq!(cache("vswitch_cache_misses_total", "classifier"), 1.0);
    let pmd = [("pmd", "0")];
    assert_eq!(value(&text, "vswitch_classifier_lookups_total", &pmd), 2.0);
    assert_eq!(value(&text, "vswitch_classifier_subtables", &pmd), 1.0);
    assert_eq!(value(&text, "vswitch_pmd_rules", &pmd), 1.0);
    assert_eq!(value(&text, "vswitch_pmd_rxqs", &pmd), 2.0);
    assert_eq!(value(&text, "vswitch_pmd_rx_packets_total", &pmd), 57.0);
    assert!(value(&text, "vswitch_pmd_busy_iterations_total", &pmd) >= 1.0);
    assert!(value(&text, "vswitch_pmd_busy_seconds_total", &pmd) > 0.0);
    assert!(value(&text, "vswitch_pmd_idle_seconds_total", &pmd) > 0.0);
    assert_eq!(value(&text, "vswitch_flows", &[]), 1.0);
    assert_eq!(value(&text, "vswitch_ports", &[]), 2.0);
    assert_eq!(value(&text, "vswitch_pmds", &[]), 1.0);
    assert!(
        sample(
            &text,
            "vswitch_port_connected",
            &[("port", "a"), ("type", "memory")]
        )
        .is_none(),
        "memory ports have no connection state"
    );
    sw.shutdown();
}

#[test]
fn a_recreated_port_starts_from_zero_and_a_deleted_one_disappears() {
    let sw = start("");
    let a = sw.mem_peer("a").unwrap();
    for _ in 0..10 {
        assert!(a.inject(&frame(1, 2)));
    }
    settle(&sw, &[&a]);
    let before = render(&sw);
    assert_eq!(
        value(&before, "vswitch_port_rx_packets_total", &[("port", "a")]),
        10.0
    );

    sw.del_port("a").unwrap();
    let gone = render(&sw);
    assert!(sample(&gone, "vswitch_port_rx_packets_total", &[("port", "a")]).is_none());
    assert!(
        !gone.contains("port=\"a\""),
        "no series names the deleted port:\n{gone}"
    );

    let cfg: PortConfig = toml::from_str("name = \"a\"\ntype = \"memory\"").unwrap();
    sw.add_port(cfg).unwrap();
    let a = sw.mem_peer("a").unwrap();
    for _ in 0..3 {
        assert!(a.inject(&frame(1, 2)));
    }
    settle(&sw, &[&a]);
    let after = render(&sw);
    assert_eq!(
        value(&after, "vswitch_port_rx_packets_total", &[("port", "a")]),
        3.0
    );
    let rxq = [("port", "a"), ("queue", "0"), ("pmd", "0")];
    assert_eq!(value(&after, "vswitch_rxq_packets_total", &rxq), 3.0);
    sw.shutdown();
}

#[test]
fn a_vhost_user_port_reports_its_connection_state() {
    let dir = std::env::temp_dir().join(format!("vswitch-metrics-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("vhu0.sock");
    let sw = start_with(
        &format!("socket_dir = {:?}", dir.display().to_string()),
        &format!(
            "[[port]]\nname = \"vhu0\"\ntype = \"vhost-user\"\nsocket = \"{}\"\n",
            sock.display()
        ),
    );
    let text = render(&sw);
    let labels = [("port", "vhu0"), ("type", "vhost-user")];
    assert_eq!(
        value(&text, "vswitch_port_connected", &labels),
        0.0,
        "no frontend yet"
    );
    sw.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_family_has_help_and_type_and_counters_end_in_total() {
    let sw = start("");
    let text = render(&sw);
    let mut families = 0;
    for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut parts = l["# TYPE ".len()..].split(' ');
        let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
        assert!(name.starts_with("vswitch_"), "{name}");
        assert_eq!(name.ends_with("_total"), kind == "counter", "{l}");
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "no HELP for {name}"
        );
        families += 1;
    }
    // 23 + 2 counter families (4 of them guest offloads), 9 gauge families less
    // `vswitch_port_connected` (no vhost-user port here), the iteration histogram: 34
    // datapath families and one per tunnel counter.
    let tunnel = switch::tunnel::stats::TunnelStats::default().fields().len();
    assert_eq!(families, 34 + tunnel, "families:\n{text}");
    sw.shutdown();
}

#[test]
fn the_iteration_histogram_is_cumulative_and_counts_every_iteration() {
    let sw = start("");
    let a = sw.mem_peer("a").unwrap();
    for _ in 0..10 {
        assert!(a.inject(&frame(1, 2)));
    }
    settle(&sw, &[&a]);
    let snap = sw.stats().into_iter().next().unwrap();
    let text = render(&sw);
    let name = "vswitch_pmd_iteration_seconds";
    let mut buckets: Vec<(f64, f64)> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{name}_bucket{{")))
        .map(|l| {
            let le = l.split("le=\"").nth(1).unwrap().split('"').next().unwrap();
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            (le, l.rsplit(' ').next().unwrap().parse().unwrap())
        })
        .collect();
    assert_eq!(buckets.len(), switch::stats::ITERATION_BUCKETS);
    assert!(
        buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
        "{buckets:?}"
    );
    let (last_le, total) = buckets.pop().unwrap();
    assert_eq!(last_le, f64::INFINITY);
    assert_eq!(
        value(&text, &format!("{name}_count"), &[("pmd", "0")]),
        total
    );
    // The render read the mirror after `snap`: at least as many iterations, all counted.
    let s = &snap.stats;
    assert!(total >= (s.busy_iterations + s.idle_iterations) as f64 && total > 0.0);
    assert!(value(&text, &format!("{name}_sum"), &[("pmd", "0")]) > 0.0);
    sw.shutdown();
}
