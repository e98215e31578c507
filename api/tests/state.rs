//! Persistence: a restart restores ports and flows exactly (same ids), the state dir wins
//! over a disagreeing config file (reported), and a corrupt state file stops startup with
//! the file named and left untouched.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{Scratch, Vswitchd, TWO_PORTS, VSWITCHD};
use serde_json::{json, Value};

/// Ports' configs and flows without counters: what must survive a restart.
fn snapshot(sw: &Vswitchd) -> (Value, Value) {
    let (_, ports) = sw.call("GET", "/v1/ports", None, None);
    let ports: Vec<Value> = ports
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["config"].clone())
        .collect();
    let (_, flows) = sw.call("GET", "/v1/flows", None, None);
    let flows: Vec<Value> = flows
        .as_array()
        .unwrap()
        .iter()
        .map(|f| json!([f["id"], f["priority"], f["match"], f["actions"]]))
        .collect();
    (json!(ports), json!(flows))
}

#[test]
fn restart_restores_ports_and_flows_exactly() {
    let dir = Scratch::new("state-restart");
    let seed = format!("[switch]\n{}\n{TWO_PORTS}", dir.socket_dir());
    let sw = Vswitchd::start(&dir, Some(&seed), &[]);
    let token = sw.state_dir.join("api-token");
    assert_eq!(
        std::fs::metadata(&token).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let sock = dir.path("vm1.sock");
    let vm1 =
        json!({"name": "vm1", "type": "vhost-user", "socket": sock, "mode": "server", "queues": 2});
    assert_eq!(sw.auth("POST", "/v1/ports", Some(&vm1.to_string())).0, 201);
    let bulk = r#"{"flows": [
        {"priority": 7, "match": {"in_port": "vm1", "eth_type": "0x0806"}, "actions": ["normal"]},
        {"priority": 8, "match": {"eth_dst": "02:00:00:00:00:02"}, "actions": ["push_vlan:10", "output:vm1"]},
        {"match": {"in_port": "b"}, "actions": ["drop"]}]}"#;
    let (s, v) = sw.auth("POST", "/v1/flows/bulk", Some(bulk));
    assert_eq!((s, &v["ids"]), (201, &json!([2, 3, 4])), "{v}");
    assert_eq!(sw.auth("DELETE", "/v1/flows/3", None).0, 204);
    let before = snapshot(&sw);
    sw.stop();

    // Restart with a config file that disagrees: the state wins, the difference is logged.
    let sw = Vswitchd::start(
        &dir,
        Some("[[port]]\nname = \"other\"\ntype = \"memory\"\n"),
        &[],
    );
    assert_eq!(snapshot(&sw), before);
    assert!(sock.exists(), "vm1's socket was not re-created");
    // The PMD decides by the restored rules, and the deleted one stays deleted.
    for (body, rule) in [
        (
            r#"{"in_port": "a", "fields": {"ip_dst": "198.18.0.7", "ip_proto": "udp"}}"#,
            json!(1),
        ),
        (
            r#"{"in_port": "vm1", "fields": {"eth_type": "0x0806"}}"#,
            json!(2),
        ),
        (r#"{"in_port": "b", "fields": {}}"#, json!(4)),
        // Flow 3's match (eth_dst 02:00:00:00:00:02), from a port no other rule takes.
        (
            r#"{"in_port": "vm1", "fields": {"eth_dst": "02:00:00:00:00:02"}}"#,
            Value::Null,
        ),
    ] {
        let (s, t) = sw.call("POST", "/v1/trace", Some(body), None);
        assert_eq!(s, 200, "{body}: {t}");
        assert_eq!(t["rule"]["id"], rule, "{body}: {t}");
    }
    // Ids are not reused: the next flow gets 5, not 3.
    let (s, v) = sw.auth("POST", "/v1/flows", Some(r#"{"actions": ["normal"]}"#));
    assert_eq!((s, &v["id"]), (201, &json!(5)), "{v}");
    let log = sw.stop();
    assert!(log.contains("config file disagrees"), "{log}");
    assert!(
        log.contains("port \"other\" is in the config file only"),
        "{log}"
    );
    assert!(log.contains("port \"vm1\" is in the state only"), "{log}");

    // And without any config file.
    let sw = Vswitchd::start(&dir, None, &[]);
    let (ports, flows) = snapshot(&sw);
    assert_eq!(ports, before.0);
    let flows = flows.as_array().unwrap();
    assert_eq!(flows.len(), 4, "{flows:?}");
    assert_eq!(json!(flows[..3]), before.1, "{flows:?}");
    assert_eq!(flows[3][0], 5, "{flows:?}");
    sw.stop();
}

/// Runs vswitchd on a state dir expected to be refused; returns its stderr.
fn refused(dir: &Scratch) -> String {
    let out = Command::new(VSWITCHD)
        .arg("--state-dir")
        .arg(dir.path("state"))
        .args(common::API_ANY_PORT)
        .args(["--pmd-cores", &common::last_cpu().to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "vswitchd started on a bad state file:\n{stderr}"
    );
    assert!(!stderr.contains("vswitchd running"), "{stderr}");
    stderr
}

#[test]
fn corrupt_state_file_is_refused_and_left_in_place() {
    let dir = Scratch::new("state-corrupt");
    std::fs::create_dir_all(dir.path("state")).unwrap();
    let file = dir.path("state").join("state.json");
    for (text, says) in [
        ("{\"version\": 1, \"switch\": {", "EOF"),
        ("garbage", "expected value"),
        (
            r#"{"version": 1, "switch": {}, "next_flow_id": 1, "port": [{"name": "a", "type": "memory", "colour": 1}]}"#,
            "port[0]",
        ),
        (
            r#"{"version": 1, "switch": {}, "next_flow_id": 2, "flow": [{"id": 1, "match": {"in_port": "ghost"}, "actions": ["drop"]}]}"#,
            "no port named \"ghost\"",
        ),
        (
            r#"{"version": 9, "switch": {}, "next_flow_id": 1}"#,
            "version 9",
        ),
    ] {
        std::fs::write(&file, text).unwrap();
        let stderr = refused(&dir);
        assert!(
            stderr.contains(file.to_str().unwrap()),
            "the file is not named:\n{stderr}"
        );
        assert!(stderr.contains(says), "no {says:?} in:\n{stderr}");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            text,
            "the state file was changed"
        );
    }
    // Unreadable: a directory where the file should be.
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    let stderr = refused(&dir);
    assert!(stderr.contains(file.to_str().unwrap()), "{stderr}");
    assert!(file.is_dir());
}
