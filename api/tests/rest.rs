//! The REST API against a running vswitchd: CRUD on ports and flows, fdb, stats, trace,
//! OpenAPI, and every kind of bad request answered 4xx with the field named and nothing
//! changed.

mod common;

use common::{Scratch, Vswitchd, TWO_PORTS};
use serde_json::{json, Value};
use testkit::config::{memory_ports, switch_table};

/// [`TWO_PORTS`] with vhost-user sockets allowed in `dir` (`switch.socket_dir`).
fn two_ports_in(dir: &Scratch) -> String {
    format!("[switch]\n{}\n{TWO_PORTS}", dir.socket_dir())
}

fn field(v: &Value) -> &str {
    v["field"].as_str().unwrap_or("<null>")
}

fn state_file(sw: &Vswitchd) -> String {
    std::fs::read_to_string(sw.state_dir.join("state.json")).unwrap()
}

#[test]
fn health_metrics_and_openapi() {
    let dir = Scratch::new("rest-meta");
    let sw = Vswitchd::start(&dir, Some(TWO_PORTS), &[]);
    let (status, v) = sw.call("GET", "/healthz", None, None);
    assert_eq!((status, v["status"].as_str()), (200, Some("ok")));
    let (status, ctype, _) = common::http_get(sw.addr, "/metrics");
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    let (status, doc) = sw.call("GET", "/openapi.json", None, None);
    assert_eq!(status, 200);
    assert_eq!(
        doc["components"]["schemas"]["PortView"]["properties"]["connected"]["type"],
        json!(["boolean", "null"]),
        "{}",
        doc["components"]["schemas"]["PortView"]
    );
    for path in [
        "/v1/ports",
        "/v1/ports/{name}",
        "/v1/flows",
        "/v1/flows/bulk",
        "/v1/flows/{id}",
        "/v1/flows/delete",
        "/v1/fdb",
        "/v1/stats",
        "/v1/trace",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from /openapi.json"
        );
    }
    let (status, v) = sw.call("GET", "/v1/nothing", None, None);
    assert_eq!(status, 404, "{v}");
    sw.stop();
}

#[test]
fn ports_crud_and_errors() {
    let dir = Scratch::new("rest-ports");
    let sw = Vswitchd::start(&dir, Some(&two_ports_in(&dir)), &[]);
    let sock = dir.path("vm1.sock");
    let vm1 = json!({"name": "vm1", "type": "vhost-user", "socket": sock, "queues": 2}).to_string();

    // No token, wrong token: 401, nothing created.
    let (status, v) = sw.call("POST", "/v1/ports", Some(&vm1), None);
    assert_eq!((status, field(&v)), (401, "Authorization"), "{v}");
    let (status, _) = sw.call("POST", "/v1/ports", Some(&vm1), Some("not-the-token"));
    assert_eq!(status, 401);
    assert!(!sock.exists());

    let (status, v) = sw.auth("POST", "/v1/ports", Some(&vm1));
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["rxq_pmds"].as_array().unwrap().len(), 2);
    assert!(
        sock.exists(),
        "the vhost-user server socket was not created"
    );
    let (status, v) = sw.call("GET", "/v1/ports/vm1", None, None);
    assert_eq!(status, 200);
    assert_eq!(v["config"]["socket"].as_str(), sock.to_str());
    assert_eq!(v["counters"]["rx_packets"], 0);
    assert_eq!(v["connected"], false, "no frontend attached yet: {v}");
    let (_, list) = sw.call("GET", "/v1/ports", None, None);
    assert!(list[0]["connected"].is_null(), "a memory port: {list}");
    assert_eq!(list[2]["connected"], false, "{list}");
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "vm1"]);
    assert!(
        state_file(&sw).contains("vm1.sock"),
        "the new port was not persisted"
    );

    let before = state_file(&sw);
    let x = dir.path("x.sock");
    let queues0 = json!({"name": "x", "type": "vhost-user", "socket": x, "queues": 0}).to_string();
    for (body, status, want_field) in [
        (vm1.as_str(), 409, "name"),
        ("{\"name\": \"x\", \"type\": \"memory\"", 400, "<null>"),
        (
            "{\"name\": \"x\", \"type\": \"memory\", \"sockt\": \"/x\"}",
            400,
            "sockt",
        ),
        ("{\"name\": \"x\", \"type\": \"warp\"}", 400, "type"),
        ("{\"name\": \"x y\", \"type\": \"memory\"}", 400, "name"),
        (
            "{\"name\": \"x\", \"type\": \"memory\", \"socket\": \"/x\"}",
            400,
            "socket",
        ),
        ("{\"name\": \"x\", \"type\": \"vhost-user\"}", 400, "socket"),
        (queues0.as_str(), 400, "queues"),
        ("", 400, "<null>"),
    ] {
        let (s, v) = sw.auth("POST", "/v1/ports", Some(body));
        assert_eq!((s, field(&v)), (status, want_field), "{body}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    // vhost-user sockets, server or client, go inside switch.socket_dir (here the scratch
    // dir): nothing outside it is bound, unlinked or connected to.
    let inside = dir.0.display().to_string();
    for (socket, mode, why) in [
        (
            "/etc/vswitch-test.sock",
            "server",
            "is outside switch.socket_dir",
        ),
        (
            "/etc/vswitch-test.sock",
            "client",
            "is outside switch.socket_dir",
        ),
        ("vm9.sock", "server", "must be an absolute path"),
        ("vm9.sock", "client", "must be an absolute path"),
        (
            &format!("{inside}/../x.sock"),
            "server",
            "must not contain `..`",
        ),
        (
            &format!("{inside}x/vm9.sock"),
            "server",
            "is outside switch.socket_dir",
        ),
    ] {
        let body = json!({"name": "vm9", "type": "vhost-user", "socket": socket, "mode": mode});
        let (s, v) = sw.auth("POST", "/v1/ports", Some(&body.to_string()));
        assert_eq!((s, field(&v)), (400, "socket"), "{body}: {v}");
        let e = v["error"].as_str().unwrap_or_default();
        assert!(e.contains(why) && e.contains(socket), "{body}: {v}");
        if why.contains("outside") {
            assert!(
                e.contains(&format!("{inside:?}")),
                "{body}: the error names the dir: {v}"
            );
        }
    }
    assert!(!std::path::Path::new("/etc/vswitch-test.sock").exists());
    assert_eq!(
        state_file(&sw),
        before,
        "a refused request changed the state"
    );
    let (_, list) = sw.call("GET", "/v1/ports", None, None);
    assert_eq!(list.as_array().unwrap().len(), 3);

    // A port a flow uses cannot go; an unused one can.
    let (status, v) = sw.auth("DELETE", "/v1/ports/b", None);
    assert_eq!((status, field(&v)), (409, "name"), "{v}");
    let (status, _) = sw.auth("DELETE", "/v1/ports/vm1", None);
    assert_eq!(status, 204);
    assert!(!state_file(&sw).contains("vm1"));
    let (status, v) = sw.call("GET", "/v1/ports/vm1", None, None);
    assert_eq!((status, field(&v)), (404, "name"));
    let (status, _) = sw.auth("DELETE", "/v1/ports/vm1", None);
    assert_eq!(status, 404);
    sw.stop();
}

#[test]
fn flows_crud_bulk_and_errors() {
    let dir = Scratch::new("rest-flows");
    let sw = Vswitchd::start(&dir, Some(TWO_PORTS), &[]);
    let (status, v) = sw.auth(
        "POST",
        "/v1/flows",
        Some(r#"{"priority": 10, "match": {"in_port": "b"}, "actions": ["output:a"]}"#),
    );
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_u64().unwrap();
    assert_eq!(id, 2, "config flows are 1..; the next id follows");

    let before = state_file(&sw);
    // A flow naming a port that does not exist: well-formed, but nothing to refer to (404).
    for (body, want_field) in [
        (
            r#"{"match": {"in_port": "nope"}, "actions": ["drop"]}"#,
            "match.in_port",
        ),
        (r#"{"actions": ["output:nope"]}"#, "actions[0]"),
        (
            r#"{"actions": ["normal", "output:a", "output:nope"]}"#,
            "actions[2]",
        ),
    ] {
        let (s, v) = sw.auth("POST", "/v1/flows", Some(body));
        assert_eq!((s, field(&v)), (404, want_field), "{body}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains("no port named"),
            "{v}"
        );
    }
    // A whole number written as a float is that integer (as JSON Schema reads it).
    let (s, v) = sw.auth(
        "POST",
        "/v1/flows/delete",
        Some(r#"{"match": {"in_port": "b", "vlan_pcp": 3.0}, "priority": 1e1}"#),
    );
    assert_eq!((s, &v["deleted"]), (200, &json!([])), "{v}");
    for (body, want_field) in [
        (
            r#"{"match": {"eth_type": "0x0800", "ip_dst": "198.18.0.0/33"}, "actions": ["drop"]}"#,
            "match.ip_dst",
        ),
        (
            r#"{"match": {"ip_dst": "198.18.0.0/24"}, "actions": ["drop"]}"#,
            "match",
        ),
        (r#"{"priority": 10.5, "actions": ["drop"]}"#, "priority"),
        (
            r#"{"match": {"colour": "red"}, "actions": ["drop"]}"#,
            "match.colour",
        ),
        (r#"{"actions": ["output:a", "drop"]}"#, "actions[1]"),
        (r#"{"actions": []}"#, "actions"),
        (r#"{"priority": 70000, "actions": ["drop"]}"#, "priority"),
        (r#"{"priority": "high", "actions": ["drop"]}"#, "priority"),
        (r#"{"actions": ["drop"], "extra": 1}"#, "extra"),
        (r#""a string""#, "<null>"),
        ("not json", "<null>"),
    ] {
        let (s, v) = sw.auth("POST", "/v1/flows", Some(body));
        assert_eq!((s, field(&v)), (400, want_field), "{body}: {v}");
    }
    // Bulk: one bad flow, nothing installed.
    let bad_bulk = r#"{"flows": [
        {"priority": 1, "match": {"in_port": "a"}, "actions": ["normal"]},
        {"priority": 2, "match": {"in_port": "a"}, "actions": ["output:zz"]}]}"#;
    let (s, v) = sw.auth("POST", "/v1/flows/bulk", Some(bad_bulk));
    assert_eq!((s, field(&v)), (404, "flows[1].actions[0]"), "{v}");
    let (s, v) = sw.auth(
        "POST",
        "/v1/flows/bulk",
        Some(r#"{"flows": [{"actions": ["normal"]}, {"actions": 5}]}"#),
    );
    assert_eq!((s, field(&v)), (400, "flows[1].actions"), "{v}");
    assert_eq!(
        state_file(&sw),
        before,
        "a refused request changed the state"
    );
    let (_, flows) = sw.call("GET", "/v1/flows", None, None);
    assert_eq!(flows.as_array().unwrap().len(), 2, "{flows}");

    let good_bulk = r#"{"flows": [
        {"priority": 1, "match": {"in_port": "a"}, "actions": ["normal"]},
        {"priority": 5, "match": {"eth_type": "0x0800", "ip_dst": "198.18.1.0/255.255.255.0"}, "actions": ["drop"]},
        {"priority": 6, "match": {"eth_type": "0x0800", "ip_dst": "198.18.1.0/24"}, "actions": ["drop"]}]}"#;
    let (s, v) = sw.auth("POST", "/v1/flows/bulk", Some(good_bulk));
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["ids"], json!([3, 4, 5]));
    let (_, flows) = sw.call("GET", "/v1/flows", None, None);
    let f1 = &flows[0];
    assert_eq!(
        (
            f1["id"].as_u64(),
            f1["priority"].as_u64(),
            f1["hits"].as_u64()
        ),
        (Some(1), Some(100), Some(0))
    );
    assert_eq!(f1["match"]["ip_dst"], "198.18.0.0/24");
    assert_eq!(f1["actions"], json!(["output:b"]));

    // By match: the two spellings of 198.18.1.0/24 are one match; priority narrows.
    let (s, v) = sw.auth(
        "POST",
        "/v1/flows/delete",
        Some(r#"{"match": {"eth_type": "0x0800", "ip_dst": "198.18.1.0/24"}, "priority": 6}"#),
    );
    assert_eq!((s, &v["deleted"]), (200, &json!([5])), "{v}");
    let (s, v) = sw.auth(
        "POST",
        "/v1/flows/delete",
        Some(r#"{"match": {"eth_type": "0x0800", "ip_dst": "198.18.1.0/24"}}"#),
    );
    assert_eq!((s, &v["deleted"]), (200, &json!([4])), "{v}");
    let (s, v) = sw.auth(
        "POST",
        "/v1/flows/delete",
        Some(r#"{"match": {"ip_dst": "x"}}"#),
    );
    assert_eq!((s, field(&v)), (400, "match.ip_dst"), "{v}");

    // By id.
    let (s, _) = sw.auth("DELETE", &format!("/v1/flows/{id}"), None);
    assert_eq!(s, 204);
    let (s, v) = sw.auth("DELETE", &format!("/v1/flows/{id}"), None);
    assert_eq!((s, field(&v)), (404, "id"));
    let (s, v) = sw.auth("DELETE", "/v1/flows/abc", None);
    assert_eq!((s, field(&v)), (400, "id"));
    let (s, _) = sw.call("DELETE", "/v1/flows", None, None);
    assert_eq!(s, 401);

    // All.
    let (s, v) = sw.auth("DELETE", "/v1/flows", None);
    assert_eq!((s, &v["deleted"]), (200, &json!([1, 3])), "{v}");
    let (_, flows) = sw.call("GET", "/v1/flows", None, None);
    assert_eq!(flows, json!([]));
    assert!(
        !state_file(&sw).contains("\"flow\": [\n    {"),
        "{}",
        state_file(&sw)
    );
    sw.stop();
}

#[test]
fn fdb_stats_and_trace() {
    let dir = Scratch::new("rest-trace");
    let sw = Vswitchd::start(&dir, Some(TWO_PORTS), &[]);
    let (s, v) = sw.call("GET", "/v1/fdb", None, None);
    assert_eq!((s, v), (200, json!([])));
    let (s, v) = sw.call("GET", "/v1/fdb?vlan=10", None, None);
    assert_eq!((s, v), (200, json!([])));
    let (s, v) = sw.call("GET", "/v1/fdb?vlan=9999", None, None);
    assert_eq!((s, field(&v)), (400, "vlan"));
    let (s, v) = sw.call("GET", "/v1/fdb?colour=1", None, None);
    assert_eq!((s, field(&v)), (400, "colour"));
    assert_eq!(sw.call("DELETE", "/v1/fdb", None, None).0, 401);
    assert_eq!(sw.auth("DELETE", "/v1/fdb", None).0, 204);

    let (s, st) = sw.call("GET", "/v1/stats", None, None);
    assert_eq!(s, 200);
    let pmd = &st["pmds"][0];
    assert_eq!(pmd["core"].as_u64(), Some(common::last_cpu() as u64));
    assert_eq!(
        pmd["rxqs"],
        json!([{"port": "a", "queue": 0}, {"port": "b", "queue": 0}])
    );
    assert_eq!(pmd["classifier"]["rules"], 1);
    assert_eq!(pmd["classifier"]["subtables"], 1);
    assert!(st["drops"]["no_destination"].is_u64());

    // Matches flow 1, by fields; needs no token (it changes nothing).
    let (s, t) = sw.call("POST", "/v1/trace",
        Some(r#"{"in_port": "a", "fields": {"ip_dst": "198.18.0.7", "ip_proto": "udp", "tp_dst": 53}}"#), None);
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["rule"], json!({"id": 1, "priority": 100}));
    assert_eq!(t["actions"], json!(["output:b"]));
    assert_eq!(
        t["port_decided"], false,
        "the rule looks at more than the in-port"
    );
    assert_eq!(t["emc"], "miss");
    assert!(t["normal"].is_null());
    let key = t["key"].as_str().unwrap();
    assert!(
        key.contains("in_port=a") && key.contains("ip_dst=198.18.0.7") && key.contains("tp_dst=53"),
        "{key}"
    );
    // No rule: normal floods to the other port. Same frame as hex.
    let frame = "020000000002 020000000001 0806 0001080006040001 020000000001 c6120001 000000000000 c6120002";
    let (s, t) = sw.call(
        "POST",
        "/v1/trace",
        Some(&json!({"in_port": "a", "hex": frame}).to_string()),
        None,
    );
    assert_eq!(s, 200, "{t}");
    assert!(t["rule"].is_null());
    assert_eq!(t["actions"], json!(["normal"]));
    assert_eq!(t["normal"], json!({"flood": ["b"]}));
    assert_eq!(t["domain"], "untagged");
    for (body, status, want) in [
        (
            r#"{"in_port": "zz", "hex": "000000000000000000000000000000"}"#,
            404,
            "in_port",
        ),
        (r#"{"in_port": "a", "hex": "abc"}"#, 400, "hex"),
        (r#"{"in_port": "a"}"#, 400, "hex"),
        (
            r#"{"in_port": "a", "fields": {"eth_dst": "nope"}}"#,
            400,
            "fields.eth_dst",
        ),
        (
            r#"{"in_port": "a", "fields": {"ttl": 1}}"#,
            400,
            "fields.ttl",
        ),
    ] {
        let (s, v) = sw.call("POST", "/v1/trace", Some(body), None);
        assert_eq!((s, field(&v)), (status, want), "{body}: {v}");
    }
    // Tracing learned nothing and counted nothing.
    let (_, fdb) = sw.call("GET", "/v1/fdb", None, None);
    assert_eq!(fdb, json!([]));
    let (_, flows) = sw.call("GET", "/v1/flows", None, None);
    assert_eq!(flows[0]["hits"], 0);
    sw.stop();
}

#[test]
fn unix_socket_and_no_auth() {
    let dir = Scratch::new("rest-unix");
    let sock = dir.path("api.sock");
    let sw = Vswitchd::start(
        &dir,
        None,
        &["--no-auth", "--api-socket", sock.to_str().unwrap()],
    );
    let ep = api::ctl::http::Endpoint::Unix(sock.clone());
    let r = ep.request("GET", "/healthz", None, None).unwrap();
    assert_eq!(r.status, 200);
    let r = ep
        .request(
            "POST",
            "/v1/ports",
            None,
            Some(r#"{"name": "m", "type": "memory"}"#),
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        !sw.state_dir.join("api-token").exists(),
        "--no-auth created a token"
    );
    let (_, ports) = sw.call("GET", "/v1/ports", None, None);
    assert_eq!(ports[0]["name"], "m");
    sw.stop();
    assert!(!sock.exists(), "the API socket was left behind");
}

/// Trace names the rule the datapath then uses, also between two rules of equal priority that
/// both match (in different subtables): a switch in this process with memory ports, so the
/// test can send the traced frame and see which port it leaves by and which rule counts it.
#[test]
fn trace_names_the_rule_the_datapath_uses_among_equal_priorities() {
    use std::sync::Arc;
    use std::time::Duration;

    use api::app::App;
    use api::ctl::http::Endpoint;
    use api::server::{Endpoints, Server};
    use switch::{Config, Switch};

    let cfg = switch_table(common::last_cpu(), "")
        + &memory_ports(&["a", "b", "c"])
        + r#"
[[flow]]
priority = 50
match = { eth_type = "0x88b5" }
actions = ["output:b"]

[[flow]]
priority = 50
match = { in_port = "a" }
actions = ["output:c"]

# Lifts the in_port subtable ahead of the eth_type one in the probe order, so the tie goes
# to flow 2, the flow installed last (a scan in install order would name flow 1).
[[flow]]
priority = 60
match = { in_port = "c" }
actions = ["drop"]
"#;
    let cfg = Config::from_toml(&cfg, "tie.toml").unwrap();
    let app = Arc::new(App::new(
        Switch::start(&cfg).unwrap(),
        None,
        cfg.switch.clone(),
        None,
    ));
    let server = Server::start(
        app.clone(),
        &Endpoints {
            tcp: Some("127.0.0.1:0".parse().unwrap()),
            unix: None,
            ..Default::default()
        },
    )
    .unwrap();
    let ep = Endpoint::Tcp(server.tcp_addr.unwrap().to_string());
    let call = |method: &str, path: &str, body: Option<&str>| -> Value {
        let r = ep.request(method, path, None, body).unwrap();
        assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
        serde_json::from_str(&r.body).unwrap()
    };
    // 02:00:00:00:00:02 <- 02:00:00:00:00:01, EtherType 0x88b5, zero payload.
    let hex = format!("020000000002 020000000001 88b5 {}", "00".repeat(46));
    let trace_body = json!({"in_port": "a", "hex": hex}).to_string();

    let t = call("POST", "/v1/trace", Some(&trace_body));
    assert_eq!(t["emc"], "miss", "{t}");
    let traced = t["rule"]["id"].as_u64().expect("a rule matches");
    assert_eq!(t["rule"]["priority"], 50);
    let (out, other) = match traced {
        1 => ("b", "c"),
        2 => ("c", "b"),
        id => panic!("traced rule {id}"),
    };
    assert_eq!(t["actions"], json!([format!("output:{out}")]));

    // Send the very frame: it leaves by the traced rule's port, and only that rule counts.
    let frame: Vec<u8> = (0..hex.replace(' ', "").len() / 2)
        .map(|i| u8::from_str_radix(&hex.replace(' ', "")[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let sw = &app.switch;
    assert!(sw.mem_peer("a").unwrap().inject(&frame));
    let got = sw
        .mem_peer(out)
        .unwrap()
        .recv_timeout(Duration::from_secs(10));
    assert_eq!(got.as_deref(), Some(&frame[..]), "not forwarded to {out}");
    assert!(sw.mem_peer(other).unwrap().drain().is_empty());
    let flows = call("GET", "/v1/flows", None);
    let hits: Vec<(u64, u64)> = flows
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["id"].as_u64().unwrap(), f["hits"].as_u64().unwrap()))
        .collect();
    let want: Vec<(u64, u64)> = [1, 2, 3]
        .into_iter()
        .map(|id| (id, u64::from(id == traced)))
        .collect();
    assert_eq!(hits, want, "{flows}");

    // Now the PMD's exact-match cache holds the decision, naming the same rule.
    let t = call("POST", "/v1/trace", Some(&trace_body));
    assert_eq!(
        (
            t["emc"].as_str(),
            t["emc_rule"].as_u64(),
            t["rule"]["id"].as_u64()
        ),
        (Some("hit"), Some(traced), Some(traced)),
        "{t}"
    );
    server.stop();
    match Arc::try_unwrap(app) {
        Ok(app) => app.switch.shutdown(),
        Err(_) => panic!("the server kept the app"),
    }
}

/// When the state cannot be written, a change is refused with a 500 naming the state file
/// and the switch is as before: an added port is gone again, a deleted port is still there
/// under the same number, flows are unchanged. (A directory where the state's temporary
/// file goes makes every write fail, even for root.)
#[test]
fn failed_state_write_changes_nothing() {
    let dir = Scratch::new("rest-savefail");
    let sw = Vswitchd::start(&dir, Some(TWO_PORTS), &[]);
    let (s, v) = sw.auth(
        "POST",
        "/v1/ports",
        Some(r#"{"name": "c", "type": "memory"}"#),
    );
    assert_eq!(s, 201, "{v}");
    let (_, ports_before) = sw.call("GET", "/v1/ports", None, None);
    let (_, flows_before) = sw.call("GET", "/v1/flows", None, None);
    let state_before = state_file(&sw);
    let blocker = sw.state_dir.join("state.json.tmp");
    std::fs::create_dir(&blocker).unwrap();

    for (method, path, body) in [
        ("DELETE", "/v1/ports/c", None),
        (
            "POST",
            "/v1/ports",
            Some(r#"{"name": "d", "type": "memory"}"#),
        ),
        (
            "POST",
            "/v1/flows",
            Some(r#"{"match": {"in_port": "c"}, "actions": ["drop"]}"#),
        ),
        ("DELETE", "/v1/flows/1", None),
    ] {
        let (s, v) = sw.auth(method, path, body);
        assert_eq!(s, 500, "{method} {path}: {v}");
        let e = v["error"].as_str().unwrap_or_default();
        assert!(e.contains("state.json"), "{method} {path}: {v}");
        let (_, ports) = sw.call("GET", "/v1/ports", None, None);
        assert_eq!(ports, ports_before, "{method} {path} changed the ports");
        let (_, flows) = sw.call("GET", "/v1/flows", None, None);
        assert_eq!(flows, flows_before, "{method} {path} changed the flows");
        assert_eq!(state_file(&sw), state_before);
    }

    // Writable again: the deletion goes through and is persisted.
    std::fs::remove_dir(&blocker).unwrap();
    assert_eq!(sw.auth("DELETE", "/v1/ports/c", None).0, 204);
    assert!(!state_file(&sw).contains("\"c\""), "{}", state_file(&sw));
    sw.stop();
}

/// A port that any flow uses cannot be deleted, whichever spelling the flow parser accepted
/// (`"output :c"`, `" output: c "`, a numeric `in_port = 3` naming port "3"): the refusal
/// names each flow and the field, the state file keeps restoring, and once the flows are
/// gone the ports can go.
#[test]
fn port_delete_refused_for_every_spelling_the_parser_accepts() {
    let dir = Scratch::new("rest-portuse");
    let sw = Vswitchd::start(&dir, Some(TWO_PORTS), &[]);
    for name in ["c", "3"] {
        let body = json!({"name": name, "type": "memory"}).to_string();
        assert_eq!(sw.auth("POST", "/v1/ports", Some(&body)).0, 201);
    }
    let mut ids = Vec::new();
    for body in [
        r#"{"match": {"in_port": "a"}, "actions": ["output :c"]}"#,
        r#"{"match": {"in_port": "b"}, "actions": ["normal", " output: c "]}"#,
        r#"{"match": {"in_port": 3}, "actions": ["drop"]}"#,
    ] {
        let (s, v) = sw.auth("POST", "/v1/flows", Some(body));
        assert_eq!(s, 201, "{body}: {v}");
        ids.push(v["id"].as_u64().unwrap());
    }
    let before = state_file(&sw);
    let (s, v) = sw.auth("DELETE", "/v1/ports/c", None);
    assert_eq!((s, field(&v)), (409, "name"), "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains(&format!("flow {} (actions[0])", ids[0]))
            && e.contains(&format!("flow {} (actions[1])", ids[1])),
        "{e}"
    );
    let (s, v) = sw.auth("DELETE", "/v1/ports/3", None);
    assert_eq!((s, field(&v)), (409, "name"), "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains(&format!("flow {} (match.in_port)", ids[2])),
        "{e}"
    );
    assert_eq!(
        state_file(&sw),
        before,
        "a refused delete changed the state"
    );
    let (_, ports) = sw.call("GET", "/v1/ports", None, None);
    assert_eq!(ports.as_array().unwrap().len(), 4, "{ports}");
    sw.stop();

    // The state still restores: same ports, same flows.
    let sw = Vswitchd::start(&dir, None, &[]);
    let (_, flows) = sw.call("GET", "/v1/flows", None, None);
    let got: Vec<u64> = flows
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_u64().unwrap())
        .collect();
    assert_eq!(got, [1, ids[0], ids[1], ids[2]], "{flows}");
    for id in &ids {
        assert_eq!(sw.auth("DELETE", &format!("/v1/flows/{id}"), None).0, 204);
    }
    assert_eq!(sw.auth("DELETE", "/v1/ports/c", None).0, 204);
    assert_eq!(sw.auth("DELETE", "/v1/ports/3", None).0, 204);
    sw.stop();
    let sw = Vswitchd::start(&dir, None, &[]);
    let (_, ports) = sw.call("GET", "/v1/ports", None, None);
    assert_eq!(ports.as_array().unwrap().len(), 2, "{ports}");
    sw.stop();
}

/// A missing required field is named (serde reports it at the enclosing object: the field
/// is joined to that path); a wrong method on a known path is a JSON 405 naming the method
/// and the allowed ones; a tap or afxdp port that cannot open names `interface`.
#[test]
fn missing_fields_wrong_methods_and_open_failures_name_the_culprit() {
    let dir = Scratch::new("rest-errs");
    let sw = Vswitchd::start(&dir, Some(&two_ports_in(&dir)), &[]);
    let before = state_file(&sw);
    for (path, body, want) in [
        ("/v1/ports", r#"{"type": "memory"}"#, "name"),
        ("/v1/ports", r#"{"name": "x"}"#, "type"),
        ("/v1/flows", r#"{"priority": 5}"#, "actions"),
        ("/v1/flows/bulk", r#"{}"#, "flows"),
        (
            "/v1/flows/bulk",
            r#"{"flows": [{"actions": ["drop"]}, {"priority": 1}]}"#,
            "flows[1].actions",
        ),
        ("/v1/trace", r#"{"hex": "00"}"#, "in_port"),
    ] {
        let (s, v) = sw.auth("POST", path, Some(body));
        assert_eq!((s, field(&v)), (400, want), "{path} {body}: {v}");
        let e = v["error"].as_str().unwrap_or_default();
        assert!(e.contains("missing field"), "{path} {body}: {v}");
    }

    for (method, path, allowed) in [
        ("GET", "/v1/trace", &["POST"][..]),
        ("GET", "/v1/flows/bulk", &["POST"]),
        ("PUT", "/v1/ports", &["GET", "POST"]),
        ("PATCH", "/v1/flows/1", &["DELETE"]),
        ("POST", "/healthz", &["GET"]),
    ] {
        let (s, v) = sw.auth(method, path, None);
        assert_eq!(s, 405, "{method} {path}: {v}");
        let e = v["error"].as_str().unwrap_or_default();
        assert!(e.contains(method), "{method} {path}: {v}");
        for m in allowed {
            assert!(e.contains(m), "{method} {path}: {m} not named: {v}");
        }
    }

    // Still axum's answer underneath: the Allow header stays, the body is JSON.
    let raw = {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(sw.addr).unwrap();
        write!(
            c,
            "GET /v1/trace HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = String::new();
        c.read_to_string(&mut raw).unwrap();
        raw.to_ascii_lowercase()
    };
    assert!(raw.starts_with("http/1.1 405"), "{raw}");
    assert!(raw.contains("\r\nallow: post\r\n"), "{raw}");
    assert!(raw.contains("content-type: application/json"), "{raw}");

    let (s, v) = sw.auth(
        "POST",
        "/v1/ports",
        Some(r#"{"name": "t", "type": "tap", "interface": "lo"}"#),
    );
    assert_eq!((s, field(&v)), (400, "interface"), "{v}");
    // What the port would open does not exist: 404.
    let ifname = common::unique_name("vswnone");
    let body = json!({"name": "x", "type": "afxdp", "interface": ifname}).to_string();
    let (s, v) = sw.auth("POST", "/v1/ports", Some(&body));
    assert_eq!((s, field(&v)), (404, "interface"), "{v}");
    let sock = dir.path("no-such-dir/vm.sock");
    let body = json!({"name": "v", "type": "vhost-user", "socket": sock}).to_string();
    let (s, v) = sw.auth("POST", "/v1/ports", Some(&body));
    assert_eq!((s, field(&v)), (404, "socket"), "{v}");
    assert_eq!(
        state_file(&sw),
        before,
        "a refused request changed the state"
    );
    sw.stop();
}

/// The ids of the flows and the names of the ports in the state file.
fn persisted(sw: &Vswitchd) -> (Vec<u64>, Vec<String>) {
    let st: Value = serde_json::from_str(&state_file(sw)).unwrap();
    let flows = st["flow"]
        .as_array()
        .map(|a| a.iter().map(|f| f["id"].as_u64().unwrap()).collect())
        .unwrap_or_default();
    let ports = st["port"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    (flows, ports)
}

/// The ids of the running switch's flows and the names of its ports, through the API.
fn live(sw: &Vswitchd) -> (Vec<u64>, Vec<String>) {
    let (s, flows) = sw.call("GET", "/v1/flows", None, None);
    assert_eq!(s, 200, "{flows}");
    let (s, ports) = sw.call("GET", "/v1/ports", None, None);
    assert_eq!(s, 200, "{ports}");
    (
        flows
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_u64().unwrap())
            .collect(),
        ports
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect(),
    )
}

/// With the PMD thread stopped (ptrace), no change can be confirmed. Each one is still
/// accepted whole: answered 503 "accepted and saved, not confirmed", written to the state
/// file, and applied by the PMD once it runs again, so the file always describes what the
/// switch does, and a restart restores the same switch.
#[test]
fn a_change_no_pmd_confirms_is_accepted_whole() {
    let dir = Scratch::new("rest-stall");
    let sw = Vswitchd::start(&dir, Some(TWO_PORTS), &[]);
    let frozen = freeze_pmd(&sw);
    let accepted = |what: &str, (s, v): (u16, Value)| {
        assert_eq!(s, 503, "{what}: {v}");
        let e = v["error"].as_str().unwrap_or_default();
        assert!(
            e.contains("accepted and saved") && e.contains("not confirmed"),
            "{what}: {v}"
        );
    };
    accepted(
        "add flow",
        sw.auth(
            "POST",
            "/v1/flows",
            Some(r#"{"priority": 200, "match": {"in_port": "a"}, "actions": ["output:b"]}"#),
        ),
    );
    assert_eq!(persisted(&sw), (vec![1, 2], vec!["a".into(), "b".into()]));
    accepted(
        "add port",
        sw.auth(
            "POST",
            "/v1/ports",
            Some(r#"{"name": "c", "type": "memory"}"#),
        ),
    );
    assert_eq!(persisted(&sw).1, ["a", "b", "c"]);
    accepted("delete flow", sw.auth("DELETE", "/v1/flows/1", None));
    assert_eq!(persisted(&sw).0, [2]);

    accepted("delete port", sw.auth("DELETE", "/v1/ports/c", None));
    assert_eq!(persisted(&sw), (vec![2], vec!["a".into(), "b".into()]));

    // The PMD runs again and applies what was queued, in order: flow 2 decides the frame.
    drop(frozen);
    let (s, t) = sw.call(
        "POST",
        "/v1/trace",
        Some(r#"{"in_port": "a", "fields": {"ip_dst": "198.18.0.7", "ip_proto": "udp"}}"#),
        None,
    );
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["rule"], json!({"id": 2, "priority": 200}), "{t}");
    let running = live(&sw);
    assert_eq!(running, persisted(&sw));
    sw.stop();
    let sw = Vswitchd::start(&dir, None, &[]);
    assert_eq!(live(&sw), running, "the restart restored another switch");
    sw.stop();
}

/// Stops `pmd0` of `sw` at a moment it does not hold its counters' mirror (a reader of the
/// counters answers meanwhile). A PMD stopped in the microseconds it publishes would stall
/// every reader of its counters, which is not what the tests that stop it are about.
fn freeze_pmd(sw: &Vswitchd) -> common::FrozenThread {
    use std::time::Duration;
    for _ in 0..10 {
        let frozen = common::FrozenThread::freeze(sw.proc.pid(), "pmd0");
        let (tx, rx) = std::sync::mpsc::channel();
        let addr = sw.addr;
        std::thread::spawn(move || {
            let _ = tx.send(common::http_get(addr, "/v1/stats"));
        });
        if rx.recv_timeout(Duration::from_secs(2)).is_ok() {
            return frozen;
        }
        // Stopped holding it: let it go, and that reader finish, and try again.
        drop(frozen);
        let _ = rx.recv_timeout(Duration::from_secs(10));
    }
    panic!("pmd0 held its counters' mirror each time it was stopped");
}

/// A change waiting for a stopped PMD (a port delete waits up to 5 s for it to confirm)
/// stalls neither the API's thread nor any read: `/healthz` and `/openapi.json`, and also
/// the reads of the switch's tables and published counters (`/metrics`, `GET /v1/ports`,
/// `GET /v1/ports/a`, `GET /v1/stats`), answer at once, and already show the port gone
/// (as the state file does).
#[test]
fn a_stalled_change_stalls_no_read() {
    use std::time::{Duration, Instant};

    let dir = Scratch::new("rest-nostall");
    let sw = Vswitchd::start(&dir, Some(TWO_PORTS), &[]);
    assert_eq!(
        sw.auth(
            "POST",
            "/v1/ports",
            Some(r#"{"name": "c", "type": "memory"}"#)
        )
        .0,
        201
    );
    let frozen = freeze_pmd(&sw);
    let (addr, token) = (sw.addr, sw.token());
    let deleting = std::thread::spawn(move || {
        api::ctl::http::Endpoint::Tcp(addr.to_string())
            .request("DELETE", "/v1/ports/c", Some(&token), None)
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !deleting.is_finished(),
        "the delete did not wait for the PMD"
    );
    for path in [
        "/healthz",
        "/openapi.json",
        "/metrics",
        "/v1/ports",
        "/v1/ports/a",
        "/v1/stats",
    ] {
        let t = Instant::now();
        let (s, _, body) = common::http_get(sw.addr, path);
        let waited = t.elapsed();
        assert_eq!(s, 200, "{path}: {body}");
        assert!(
            waited < Duration::from_secs(1),
            "{path} waited {waited:?} behind a change waiting for a PMD"
        );
        if path == "/v1/ports" {
            let names: Vec<Value> = serde_json::from_str::<Value>(&body)
                .unwrap()
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].clone())
                .collect();
            assert_eq!(names, [json!("a"), json!("b")], "{body}");
        }
        if path == "/metrics" {
            assert!(!body.contains(r#"port="c""#), "{body}");
        }
    }
    assert!(
        !deleting.is_finished(),
        "the reads were not made while the delete waited"
    );
    let r = deleting.join().unwrap();
    assert_eq!(r.status, 503, "{}", r.body);
    drop(frozen);
    sw.stop();
}

/// (mac, port, vlan) of each entry of a `GET /v1/fdb` answer, sorted.
fn fdb_entries(v: &Value) -> Vec<(String, String, Option<u64>)> {
    let mut out: Vec<_> = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|e| {
            (
                e["mac"].as_str().unwrap().to_string(),
                e["port"].as_str().unwrap().to_string(),
                e["vlan"].as_u64(),
            )
        })
        .collect();
    out.sort();
    out
}

/// MACs learned through traffic on access ports of VLANs 10 and 20 and an untagged port:
/// `?vlan=N` lists one VLAN's, `?vlan=0` the untagged ones, and `?vni=N` those of the local
/// VLAN the vxlan port with VNI N is bridged into (learning is per local VLAN).
#[test]
fn fdb_lists_learned_macs_by_vlan_and_by_vni() {
    let sw = common::learned_vlan_switch();
    let e = |mac: &str, port: &str, vlan: Option<u64>| {
        (format!("02:00:00:00:00:{mac}"), port.to_string(), vlan)
    };
    let (s, all) = sw.get("/v1/fdb");
    assert_eq!(s, 200, "{all}");
    assert_eq!(fdb_entries(&all).len(), 5, "{all}");
    let vlan10 = vec![e("0a", "a", Some(10)), e("0b", "b", Some(10))];
    let vlan20 = vec![e("0c", "c", Some(20)), e("0d", "d", Some(20))];
    for (query, want) in [
        ("?vlan=10", vlan10.clone()),
        ("?vlan=20", vlan20.clone()),
        ("?vlan=0", vec![e("0e", "e", None)]),
        ("?vlan=30", vec![]),
        ("?vni=5001", vlan20.clone()),
    ] {
        let (s, v) = sw.get(&format!("/v1/fdb{query}"));
        assert_eq!(s, 200, "{query}: {v}");
        assert_eq!(fdb_entries(&v), want, "{query}: {v}");
    }
    let (s, v) = sw.get("/v1/fdb?vlan=10");
    assert_eq!(v[0]["domain"], "vlan 10", "{v}");
    assert!(v[0]["age_secs"].as_u64().is_some_and(|a| a < 60), "{v}");
    let (s2, v2) = sw.get("/v1/fdb?vni=5002");
    assert_eq!((s, s2, field(&v2)), (200, 404, "vni"), "{v2}");
    // Both: the entries both select.
    let (s, v) = sw.get("/v1/fdb?vni=5001&vlan=20");
    assert_eq!((s, fdb_entries(&v)), (200, vlan20.clone()), "{v}");
    let (s, v) = sw.get("/v1/fdb?vni=5001&vlan=10");
    assert_eq!((s, v), (200, json!([])));
}

/// `DELETE /v1/fdb` on a table that holds learned MACs: without the token or with a wrong one
/// it is refused (401) and every entry stays; with the token (204) every entry is gone, from
/// the API's list, from the switch, and from `normal`'s decisions (a destination that was
/// learned on a port floods again).
#[test]
fn fdb_flush_forgets_learned_macs() {
    const TOKEN: &str = "fdb-flush-test-token";
    let sw = common::learned_vlan_switch_with_token(Some(TOKEN));
    let (s, all) = sw.get("/v1/fdb");
    assert_eq!((s, fdb_entries(&all).len()), (200, 5), "{all}");
    // 02:00:00:00:00:0b <- 02:00:00:00:00:0a on `a` (VLAN 10, with `b`).
    let to_b = json!({
        "in_port": "a",
        "hex": format!("02000000000b 02000000000a 88b5 {}", "00".repeat(46)),
    })
    .to_string();
    let normal = |sw: &common::InProcess| {
        let (s, t) = sw.call("POST", "/v1/trace", Some(&to_b), None);
        assert_eq!(s, 200, "{t}");
        t["normal"].clone()
    };
    assert_eq!(normal(&sw), json!({"learned": "b"}));

    for token in [None, Some("not-the-token")] {
        let (s, v) = sw.call("DELETE", "/v1/fdb", None, token);
        assert_eq!((s, field(&v)), (401, "Authorization"), "{token:?}: {v}");
    }
    let (_, v) = sw.get("/v1/fdb");
    assert_eq!(
        fdb_entries(&v),
        fdb_entries(&all),
        "a refused flush forgot MACs"
    );
    assert_eq!(sw.app.switch.fdb().unwrap().len(), 5);

    let (s, v) = sw.call("DELETE", "/v1/fdb", None, Some(TOKEN));
    assert_eq!((s, &v), (204, &Value::Null), "{v}");
    let (s, v) = sw.get("/v1/fdb");
    assert_eq!((s, v), (200, json!([])));
    let (s, v) = sw.get("/v1/fdb?vlan=10");
    assert_eq!((s, v), (200, json!([])));
    assert_eq!(
        sw.app.switch.fdb().unwrap(),
        vec![],
        "the PMDs still hold MACs"
    );
    assert_eq!(
        normal(&sw),
        json!({"flood": ["b"]}),
        "`normal` still knows where 02:00:00:00:00:0b is"
    );
}

/// The OpenAPI document describes the port and flow bodies field by field (they were bare
/// objects): names, types, enums, what is required, and where the bodies are used.
#[test]
fn openapi_describes_port_and_flow_bodies() {
    let sw = common::InProcess::start("");
    let (s, doc) = sw.get("/openapi.json");
    assert_eq!(s, 200);
    let schemas = &doc["components"]["schemas"];
    // A port is one schema per type (and per role for the underlay types), each naming every
    // field; the ones that do not apply may only be null.
    let port = &schemas["PortConfig"];
    let variants = port["oneOf"].as_array().unwrap_or_else(|| panic!("{port}"));
    let titles: Vec<&str> = variants
        .iter()
        .map(|v| v["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "memory",
            "memory underlay",
            "vhost-user",
            "afxdp",
            "afxdp underlay",
            "tap",
            "tap underlay",
            "vxlan"
        ]
    );
    for v in variants {
        for f in [
            "name",
            "type",
            "socket",
            "mode",
            "queues",
            "interface",
            "ip",
            "gateway",
            "mtu",
            "vni",
            "remote_ip",
            "local_ip",
            "vlan",
        ] {
            assert!(v["properties"][f].is_object(), "{f} missing: {v}");
        }
        assert_eq!(v["additionalProperties"], false, "{v}");
    }
    let tap = &variants[5];
    assert_eq!(
        tap["properties"]["socket"],
        json!({"type": "null"}),
        "{tap}"
    );
    assert_eq!(
        tap["required"],
        json!(["name", "type", "interface"]),
        "{tap}"
    );
    // The socket rule: inside this switch's socket_dir (the default here).
    let socket = &variants[2]["properties"]["socket"];
    assert!(
        socket["pattern"]
            .as_str()
            .unwrap()
            .starts_with("^/run/vswitch(?:/"),
        "{socket}"
    );
    assert!(
        socket["description"]
            .as_str()
            .unwrap()
            .contains("socket_dir"),
        "{socket}"
    );
    let flow = &schemas["FlowConfig"];
    for f in ["priority", "match", "actions"] {
        assert!(
            flow["properties"][f].is_object(),
            "FlowConfig.{f} missing: {flow}"
        );
    }
    assert_eq!(flow["required"], json!(["actions"]), "{flow}");
    assert_eq!(flow["properties"]["priority"]["maximum"], 65535, "{flow}");
    assert_eq!(
        flow["properties"]["match"]["$ref"],
        "#/components/schemas/Match"
    );
    let shapes: Vec<&str> = schemas["Match"]["anyOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        shapes,
        [
            "layer 2",
            "IPv4",
            "IPv4 with ports",
            "ICMP",
            "IPv6",
            "IPv6 with ports",
            "ICMPv6",
            "ARP"
        ]
    );
    // `drop` alone, or other actions.
    let actions = &flow["properties"]["actions"]["anyOf"];
    assert_eq!(actions[0]["maxItems"], 1, "{actions}");
    assert_eq!(actions[1]["minItems"], 1, "{actions}");
    // A trace frame: hex of 14 bytes or more, or fields, not both.
    let trace = &schemas["TraceRequest"]["oneOf"];
    assert_eq!(trace[0]["properties"]["hex"]["minLength"], 28, "{trace}");
    assert_eq!(
        trace[0]["properties"]["fields"],
        json!({"type": "null"}),
        "{trace}"
    );

    let body = |path: &str| {
        doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(body("/v1/ports"), "#/components/schemas/PortConfig");
    assert_eq!(body("/v1/flows"), "#/components/schemas/FlowConfig");
    assert_eq!(
        schemas["PortView"]["properties"]["config"]["$ref"],
        "#/components/schemas/PortConfig"
    );
    assert_eq!(
        schemas["BulkFlows"]["properties"]["flows"]["items"]["$ref"],
        "#/components/schemas/FlowConfig"
    );
    // Operation ids are unique, as OpenAPI requires (client generators name calls by them).
    let mut ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|p| p.as_object().unwrap().values())
        .map(|op| op["operationId"].as_str().unwrap())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate operation ids among {ids:?}");
}

/// Each route takes bodies up to its own limit: 413 naming the limit past it, whether
/// `Content-Length` says so up front (answered before any body is sent) or a chunked body
/// grows past it; a trace of the largest frame, its hex spaced out, fits.
#[test]
fn bodies_over_their_route_limit_are_refused_with_413() {
    use std::io::Write;

    let dir = Scratch::new("rest-limits");
    let sw = Vswitchd::start(&dir, Some(TWO_PORTS), &[]);
    let token = sw.token();
    let before = state_file(&sw);
    let json_error = |status: u16, head: &str, body: &str, limit: &str, path: &str| {
        assert_eq!(status, 413, "{head}\n{body}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        let e = v["error"].as_str().unwrap_or_default();
        assert!(e.contains(limit) && e.contains(path), "{v}");
    };
    // Declared too large: refused from the headers alone (nothing more is sent).
    for (path, limit, declared, auth) in [
        ("/v1/trace", "384 KiB", 384 * 1024 + 1, false),
        ("/v1/ports", "64 KiB", 64 * 1024 + 1, true),
        ("/v1/flows", "64 KiB", 64 * 1024 + 1, true),
        ("/v1/flows/delete", "64 KiB", 64 * 1024 + 1, true),
        ("/v1/flows/bulk", "16 MiB", 16 * 1024 * 1024 + 1, true),
    ] {
        let auth = if auth {
            format!("Authorization: Bearer {token}\r\n")
        } else {
            String::new()
        };
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: {declared}\r\nConnection: close\r\n\r\n"
        );
        let (status, head, body) = common::http_raw(sw.addr, req.as_bytes());
        json_error(status, &head, &body, limit, path);
    }
    // Chunked, no length up front: refused once what arrived passes the limit.
    let mut s = std::net::TcpStream::connect(sw.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let chunk = 384 * 1024 + 1;
    write!(
        s,
        "POST /v1/trace HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n{chunk:x}\r\n"
    )
    .unwrap();
    s.write_all(&vec![b' '; chunk]).unwrap();
    s.write_all(b"\r\n").unwrap();
    let (status, head, body) = common::read_response(&mut s);
    json_error(status, &head, &body, "384 KiB", "/v1/trace");

    // The largest frame, a separator after every byte: within both the hex and body limits.
    let frame_len = 65_535 + 18;
    let mut hex = "ff:".repeat(6) + &"02 ".repeat(6) + "08 00 ";
    hex.push_str(&"ab\n".repeat(frame_len - 14));
    assert_eq!(hex.len(), 3 * frame_len);
    let trace = json!({"in_port": "a", "hex": hex}).to_string();
    assert!(trace.len() > 256 * 1024, "{}", trace.len());
    let (s, v) = sw.call("POST", "/v1/trace", Some(&trace), None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["normal"]["flood"], json!(["b"]), "{v}");
    // One byte more is refused by the hex rule, naming the largest frame.
    let longer = json!({"in_port": "a", "hex": "ab".repeat(frame_len + 1)}).to_string();
    let (s, v) = sw.call("POST", "/v1/trace", Some(&longer), None);
    assert_eq!((s, field(&v)), (400, "hex"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("65553"), "{v}");

    // A bulk request past the 64 KiB of single bodies is fine: 800 flows, ~85 KiB.
    let flows: Vec<Value> = (0..800)
        .map(|i| {
            json!({"priority": 1000 + i, "match": {"in_port": "a", "eth_type": "0x0800",
                   "ip_dst": format!("198.18.{}.{}", i / 200, i % 200)}, "actions": ["output:b"]})
        })
        .collect();
    let bulk = json!({ "flows": flows }).to_string();
    assert!(bulk.len() > 64 * 1024, "{}", bulk.len());
    let (s, v) = sw.auth("POST", "/v1/flows/bulk", Some(&bulk));
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["ids"].as_array().unwrap().len(), 800);
    assert_ne!(state_file(&sw), before);
    sw.stop();
}

/// Each endpoint serves at most --api-max-connections connections: one more is answered 503
/// (JSON, Retry-After) and closed at once, while the held ones keep working; once one closes,
/// new connections are served again.
#[test]
fn connections_over_the_cap_are_refused_with_503() {
    use std::io::Write;
    use std::time::{Duration, Instant};

    let dir = Scratch::new("rest-conns");
    let sw = Vswitchd::start(&dir, None, &["--api-max-connections", "2"]);
    // Two idle connections take both places (accepted in the order they connected).
    let mut held: Vec<std::net::TcpStream> = (0..2)
        .map(|_| std::net::TcpStream::connect(sw.addr).unwrap())
        .collect();
    let healthz = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let started = Instant::now();
    let (status, head, body) = common::http_raw(sw.addr, healthz);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused promptly"
    );
    assert_eq!(status, 503, "{head}\n{body}");
    assert!(head.contains("\r\nretry-after: 1"), "{head}");
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("limit of 2 connections"),
        "{v}"
    );
    // The held connections are served meanwhile.
    let mut first = held.remove(0);
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    first.write_all(healthz).unwrap();
    let (status, _, body) = common::read_response(&mut first);
    assert_eq!(status, 200, "{body}");
    drop(first);
    // Its place is free again once the server has seen it close.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, body) = common::http_raw(sw.addr, healthz);
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(Instant::now() < deadline, "the freed place was not reused");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(held);
    let log = sw.stop();
    assert!(log.contains("API connection refused"), "{log}");
}

/// Found by the `rest_bodies` fuzz target (docs/FUZZING.md): a path parameter that does not
/// decode (`%Ae` is byte 0xAE, not UTF-8) was answered by axum's own plain-text 400, not the
/// JSON error every other refusal is.
#[test]
fn undecodable_path_parameters_get_the_json_error() {
    let dir = Scratch::new("rest-path");
    let sw = Vswitchd::start(&dir, Some(TWO_PORTS), &[]);
    for (method, path) in [
        ("DELETE", "/v1/ports/b%%%%%Ael_"),
        ("GET", "/v1/ports/%ff"),
        ("DELETE", "/v1/flows/%c3%28"),
    ] {
        // `call` panics on a body that is not JSON.
        let (status, v) = sw.auth(method, path, None);
        assert_eq!(status, 400, "{method} {path}: {v}");
        assert!(v["error"].is_string(), "{method} {path}: {v}");
        assert!(v["field"].is_null(), "{method} {path}: {v}");
    }
    let (status, _) = sw.call("GET", "/v1/ports/b", None, None);
    assert_eq!(status, 200, "port b untouched");
    sw.stop();
}
