//! The control plane when something below it fails: a state file that cannot be written
//! changes nothing, a change no PMD confirms is accepted whole, and a change waiting for a
//! stopped PMD stalls no read.

use super::*;

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
