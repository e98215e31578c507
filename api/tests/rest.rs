//! The REST API against a running vswitchd: CRUD on ports and flows, fdb, stats, trace,
//! OpenAPI, and every kind of bad request answered 4xx with the field named and nothing
//! changed.

mod common;
// One test binary, in files by concern (a crate root finds its modules beside it, hence the
// paths).
#[path = "rest/contract.rs"]
mod contract;
#[path = "rest/fdb.rs"]
mod fdb;
#[path = "rest/stalls.rs"]
mod stalls;

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
