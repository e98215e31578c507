//! `/metrics` against real consumers: `promtool check metrics` lints vswitchd's exposition, and
//! a real Prometheus (Debian's `prometheus`, started here on a free loopback port with its own
//! storage, using the shipped deploy/prometheus/prometheus.yml with only the target rewritten)
//! scrapes a switch with traffic flowing, after which every query of the Grafana dashboard
//! (read from deploy/grafana/vswitch-dashboard.json) returns data through Prometheus's HTTP
//! API.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::app::App;
use api::server::{Endpoints, Server};
use common::{api_addr, http_get, require_peer, Proc, Scratch, API_ANY_PORT, VSWITCHD};
use nix::sys::signal::Signal;
use serde_json::Value;
use switch::{Config, Switch};
use testkit::config::{memory_ports, switch_table, vhost_port};

const SKIP: &str = "VSWITCH_SKIP_PROMETHEUS";

/// `promtool check metrics` on `text`: the lint problems it prints, or `None` when clean.
fn promtool_problems(text: &str) -> Option<String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (!out.status.success() || !said.trim().is_empty()).then_some(said)
}

#[test]
fn vswitchd_metrics_pass_promtool() {
    if !require_peer("promtool", "prometheus", SKIP) {
        return;
    }
    let dir = Scratch::new("metrics-promtool");
    let sock = dir.path("vhu0.sock");
    let config = dir.file(
        "vswitch.toml",
        &(switch_table(common::last_cpu(), &dir.socket_dir())
            + &vhost_port("vhu0", &sock, "server")
            + r#"
[[flow]]
priority = 10
match = { eth_type = "ipv4" }
actions = ["normal"]
"#),
    );
    let mut cmd = Command::new(VSWITCHD);
    cmd.arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(dir.path("state"))
        .args(API_ANY_PORT)
        .env("RUST_LOG", "info");
    let mut vswitchd = Proc::spawn("vswitchd", cmd);
    let addr = api_addr(&mut vswitchd);
    let (status, ctype, body) = http_get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    assert!(
        body.contains("vswitch_port_connected{"),
        "the vhost-user port's state is exported:\n{body}"
    );
    if let Some(problems) = promtool_problems(&body) {
        panic!("promtool check metrics:\n{problems}\non:\n{body}");
    }
    vswitchd.stop(Signal::SIGTERM, Duration::from_secs(20));
}

/// A 60-byte frame to `dst` with EtherType `ethertype`.
fn frame(dst: [u8; 6], ethertype: u16) -> Vec<u8> {
    testkit::frames::ethernet(dst, testkit::frames::mac(1), ethertype, &[])
}

/// Sends a mix that exercises every counter the dashboard shows until `stop`: a repeated flow
/// (EMC hits), new destinations (EMC misses, classifier misses: `normal` floods), new
/// destinations matching a rule (classifier hits) and a dropped flow; drains the other ports.
fn traffic(sw: &Switch, stop: &AtomicBool) {
    let a = sw.mem_peer("a").unwrap();
    let others = [sw.mem_peer("b").unwrap(), sw.mem_peer("c").unwrap()];
    let mut n: u32 = 0;
    while !stop.load(Ordering::Relaxed) {
        n = n.wrapping_add(1);
        let b = n.to_be_bytes();
        let fresh = [0x02, 0x10, b[0], b[1], b[2], b[3]];
        a.inject(&frame([0x02, 0, 0, 0, 0, 2], 0x88b5));
        a.inject(&frame(fresh, 0x88b5));
        a.inject(&frame(fresh, 0x88b6));
        a.inject(&frame([0x02, 0, 0, 0, 0, 9], 0x88b5));
        for p in &others {
            p.drain();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` over HTTP/1.0 (so the answer is never chunked): (status, body).
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// Percent-encodes a query parameter.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// deploy/prometheus/prometheus.yml as shipped, with only its target (the API's default
/// address) replaced by `target`, and its scrape interval.
fn shipped_prometheus_config(target: SocketAddr) -> (String, Duration) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/prometheus/prometheus.yml"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let default = format!("\"{}\"", api::server::DEFAULT_LISTEN);
    assert_eq!(
        text.matches(&default).count(),
        1,
        "{path}: one target, the API's default address {default}"
    );
    let interval = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("scrape_interval:"))
        .and_then(|v| v.trim().strip_suffix('s')?.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or_else(|| panic!("{path}: no scrape_interval in whole seconds"));
    (text.replace(&default, &format!("\"{target}\"")), interval)
}

/// Every query of every panel in the dashboard, with Grafana's interval variables replaced
/// by what Grafana would use with scrape interval `scrape`: `$__rate_interval` is four
/// scrape intervals, `$__interval` one.
fn dashboard_queries(scrape: Duration) -> Vec<(String, String)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/vswitch-dashboard.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let dash: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let vars: Vec<&str> = dash["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(vars.contains(&"datasource"), "a datasource variable");
    let mut queries = Vec::new();
    for panel in dash["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().expect("panel title");
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "panel {title:?} uses the datasource variable"
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {title:?} has a query");
        for t in targets {
            let expr = t["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("panel {title:?}: a target without expr"));
            let expr = expr
                .replace("$__rate_interval", &format!("{}s", 4 * scrape.as_secs()))
                .replace("$__interval", &format!("{}s", scrape.as_secs()));
            assert!(
                !expr.contains('$'),
                "panel {title:?}: a variable this test does not substitute in {expr}"
            );
            queries.push((title.to_string(), expr));
        }
    }
    assert!(queries.len() >= 9, "{queries:?}");
    queries
}

/// Runs `expr` on Prometheus: the instant vector's values, or why there are none.
fn query(prom: SocketAddr, expr: &str) -> Result<Vec<f64>, String> {
    let (status, body) = get(prom, &format!("/api/v1/query?query={}", encode(expr)))
        .ok_or_else(|| "no answer".to_string())?;
    if status != 200 {
        return Err(format!("HTTP {status}: {body}"));
    }
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    if v["status"] != "success" || v["data"]["resultType"] != "vector" {
        return Err(body);
    }
    let values: Vec<f64> = v["data"]["result"]
        .as_array()
        .ok_or_else(|| body.clone())?
        .iter()
        .filter_map(|r| r["value"][1].as_str()?.parse().ok())
        .collect();
    if values.is_empty() {
        return Err(format!("empty result: {body}"));
    }
    if values.iter().any(|x| !x.is_finite()) {
        return Err(format!("a value that is not a number: {body}"));
    }
    Ok(values)
}

#[test]
fn prometheus_scrapes_the_switch_and_every_dashboard_query_has_data() {
    if !require_peer("prometheus", "prometheus", SKIP)
        || !require_peer("promtool", "prometheus", SKIP)
    {
        return;
    }
    let dir = Scratch::new("metrics-prometheus");
    let cfg = switch_table(common::last_cpu(), &dir.socket_dir())
        + &memory_ports(&["a", "b", "c"])
        + &vhost_port("vhu0", &dir.path("vhu0.sock"), "server")
        + r#"
[[flow]]
priority = 100
match = { in_port = "a", eth_dst = "02:00:00:00:00:09" }
actions = ["drop"]

[[flow]]
priority = 90
match = { eth_type = "0x88b6" }
actions = ["output:b"]
"#;
    let cfg = Config::from_toml(&cfg, "metrics.toml").unwrap();
    let sw = Switch::start(&cfg).unwrap();
    // No persisted state and no token: /metrics needs neither.
    let app = Arc::new(App::new(sw, None, cfg.switch.clone(), None));
    let server = Server::start(
        app.clone(),
        &Endpoints {
            tcp: Some("127.0.0.1:0".parse().unwrap()),
            unix: None,
            ..Default::default()
        },
    )
    .unwrap();
    let target = server.tcp_addr.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (app, stop) = (app.clone(), stop.clone());
        std::thread::spawn(move || traffic(&app.switch, &stop))
    };

    // The shipped scrape config, pointed at this test's switch.
    let (prom_text, scrape) = shipped_prometheus_config(target);
    let queries = dashboard_queries(scrape);
    let prom_cfg = dir.file("prometheus.yml", &prom_text);
    let check = Command::new("promtool")
        .args(["check", "config"])
        .arg(&prom_cfg)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "promtool check config on the shipped prometheus.yml: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let prom: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut cmd = Command::new("prometheus");
    cmd.arg(format!("--config.file={}", prom_cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path("tsdb").display()
        ))
        .arg(format!("--web.listen-address={prom}"));
    let mut prometheus = Proc::spawn("prometheus", cmd);

    // Every query answers with numbers once a few scrapes have landed (a rate needs two
    // within its window).
    let wait = Duration::from_secs(90).max(9 * scrape);
    let deadline = Instant::now() + wait;
    let mut pending: Vec<&(String, String)> = queries.iter().collect();
    let mut last_error = String::new();
    while !pending.is_empty() && Instant::now() < deadline {
        pending.retain(|(title, expr)| match query(prom, expr) {
            Ok(_) => false,
            Err(e) => {
                last_error = format!("panel {title:?}: {expr}: {e}");
                true
            }
        });
        if !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let targets = get(prom, "/api/v1/targets").map(|(_, b)| b);
    prometheus.drain_for(Duration::from_millis(100));
    assert!(
        pending.is_empty(),
        "{} dashboard queries without data after {wait:?}; last: {last_error}\n\
         targets: {targets:?}\nprometheus log:\n{}",
        pending.len(),
        prometheus.log
    );

    // Values agree with the switch: two flows, one vhost-user port not connected.
    assert_eq!(query(prom, "vswitch_flows"), Ok(vec![2.0]));
    assert_eq!(
        query(
            prom,
            "vswitch_port_connected{port=\"vhu0\",type=\"vhost-user\"}"
        ),
        Ok(vec![0.0])
    );
    // What Prometheus scraped with traffic flowing also passes promtool.
    let (status, body) = get(target, "/metrics").expect("/metrics answers");
    assert_eq!(status, 200);
    assert!(query(prom, "sum(vswitch_port_rx_packets_total{port=\"a\"})").unwrap()[0] > 0.0);
    if let Some(problems) = promtool_problems(&body) {
        panic!("promtool check metrics:\n{problems}\non:\n{body}");
    }

    prometheus.stop(Signal::SIGTERM, Duration::from_secs(30));
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    server.stop();
}
