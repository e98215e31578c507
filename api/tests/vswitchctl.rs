//! `vswitchctl` against a running vswitchd, over TCP and over the unix socket: every command
//! round-trips, tables and `--json`, and a refused change exits non-zero naming the field.

mod common;

use std::process::Command;

use common::{Scratch, Vswitchd};
use serde_json::Value;

const VSWITCHCTL: &str = env!("CARGO_BIN_EXE_vswitchctl");

struct Ctl {
    args: Vec<String>,
}

impl Ctl {
    /// Runs a command: (success, stdout, stderr).
    fn run(&self, cmd: &[&str]) -> (bool, String, String) {
        let out = Command::new(VSWITCHCTL)
            .args(&self.args)
            .args(cmd)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    fn ok(&self, cmd: &[&str]) -> String {
        let (ok, out, err) = self.run(cmd);
        assert!(ok, "vswitchctl {cmd:?} failed: {err}");
        out
    }

    fn json(&self, cmd: &[&str]) -> Value {
        let mut c = vec!["--json"];
        c.extend_from_slice(cmd);
        serde_json::from_str(&self.ok(&c)).unwrap()
    }
}

fn round_trip(ctl: &Ctl, dir: &Scratch) {
    let sock = dir.path("vm1.sock");
    let sock_opt = format!("socket={}", sock.display());
    ctl.ok(&["port", "add", "vm1", "vhost-user", &sock_opt, "queues=2"]);
    let table = ctl.ok(&["port", "list"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("vm1 ") && l.contains("vhost-user")),
        "{table}"
    );
    let show = ctl.ok(&["port", "show", "vm1"]);
    assert!(
        show.contains(&format!("socket: {}", sock.display())),
        "{show}"
    );
    assert_eq!(
        ctl.json(&["port", "show", "vm1"])["rxq_pmds"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let added = ctl.ok(&[
        "flow",
        "add",
        "--priority",
        "50",
        "in_port=vm1,eth_type=0x0800,ip_dst=198.18.0.0/24",
        "output:a",
    ]);
    assert!(added.starts_with("flow "), "{added}");
    let flows = ctl.json(&["flow", "dump"]);
    let f = flows
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["priority"] == 50)
        .unwrap();
    assert_eq!(f["match"]["ip_dst"], "198.18.0.0/24");
    assert_eq!(f["actions"][0], "output:a");
    let id = f["id"].as_u64().unwrap().to_string();
    let dump = ctl.ok(&["flow", "dump"]);
    assert!(
        dump.lines()
            .any(|l| l.starts_with(&format!("{id} ")) && l.contains("output:a")),
        "{dump}"
    );

    let trace = ctl.ok(&["trace", "vm1", "ip_dst=198.18.0.9,ip_proto=udp,tp_dst=53"]);
    assert!(
        trace.contains(&format!("classifier: flow {id} (priority 50)")),
        "{trace}"
    );
    assert!(trace.contains("actions: output:a"), "{trace}");
    let trace = ctl.ok(&["trace", "a", "eth_dst=02:00:00:00:00:09"]);
    assert!(
        trace.contains("normal: flood in untagged to vm1"),
        "{trace}"
    );

    let stats = ctl.ok(&["stats"]);
    assert!(
        stats.contains("vm1/0") && stats.contains("vm1/1") && stats.contains("drops:"),
        "{stats}"
    );
    assert!(ctl.ok(&["fdb", "show"]).starts_with("DOMAIN"));
    ctl.ok(&["fdb", "flush"]);

    // Refused: the message names the field; nothing changed.
    let (ok, _, err) = ctl.run(&["flow", "add", "in_port=ghost", "drop"]);
    assert!(
        !ok && err.contains("match.in_port") && err.contains("ghost"),
        "{err}"
    );
    let (ok, _, err) = ctl.run(&["port", "del", "vm1"]);
    assert!(!ok && err.contains("delete them first"), "{err}");

    let bulk = dir.file(
        "flows.json",
        r#"[{"match": {"in_port": "vm1"}, "actions": ["normal"]}, {"actions": ["drop"]}]"#,
    );
    let out = ctl.ok(&[
        "flow",
        "add",
        "--priority",
        "3",
        "--file",
        bulk.to_str().unwrap(),
    ]);
    assert!(out.starts_with("flows added: "), "{out}");
    let out = ctl.ok(&["flow", "del", "--match", "in_port=vm1", "--priority", "3"]);
    assert!(
        out.starts_with("flows deleted: ") && !out.contains("none"),
        "{out}"
    );
    ctl.ok(&["flow", "del", &id]);
    let out = ctl.ok(&["flow", "del", "--all"]);
    assert!(out.starts_with("flows deleted: "), "{out}");
    assert_eq!(ctl.json(&["flow", "dump"]), serde_json::json!([]));
    ctl.ok(&["port", "del", "vm1"]);
    assert!(!ctl.ok(&["port", "list"]).contains("vm1"));
}

#[test]
fn vswitchctl_round_trips_over_tcp_and_unix_socket() {
    let dir = Scratch::new("ctl");
    let api_sock = dir.path("api.sock");
    let sw = Vswitchd::start(
        &dir,
        Some(&format!(
            "[switch]\n{}\n\n[[port]]\nname = \"a\"\ntype = \"memory\"\n",
            dir.socket_dir()
        )),
        &["--api-socket", api_sock.to_str().unwrap()],
    );
    let token = sw.state_dir.join("api-token").display().to_string();
    let tcp = Ctl {
        args: vec![
            "--server".into(),
            sw.addr.to_string(),
            "--token-file".into(),
            token.clone(),
        ],
    };
    round_trip(&tcp, &dir);
    let unix = Ctl {
        args: vec![
            "--socket".into(),
            api_sock.display().to_string(),
            "--token-file".into(),
            token,
        ],
    };
    round_trip(&unix, &dir);

    // A wrong token reaches vswitchd, which refuses the change with 401: vswitchctl exits
    // non-zero with the API's message and status.
    let wrong = Ctl {
        args: vec![
            "--server".into(),
            sw.addr.to_string(),
            "--token-file".into(),
            dir.file("wrong-token", "not-the-token\n")
                .display()
                .to_string(),
        ],
    };
    let (ok, out, err) = wrong.run(&["port", "del", "a"]);
    assert!(
        !ok && err.contains("Authorization: the bearer token is wrong (HTTP 401)"),
        "{err}"
    );
    assert_eq!(out, "");
    assert!(
        tcp.ok(&["port", "list"])
            .lines()
            .any(|l| l.starts_with("a ")),
        "the refused `port del a` deleted it"
    );
    // A token file that does not exist: refused before any request, naming the file.
    let missing = Ctl {
        args: vec![
            "--server".into(),
            sw.addr.to_string(),
            "--token-file".into(),
            dir.path("none").display().to_string(),
        ],
    };
    let (ok, _, err) = missing.run(&["fdb", "flush"]);
    assert!(
        !ok && err.contains(&format!("token file {}", dir.path("none").display())),
        "{err}"
    );
    assert!(!err.contains("HTTP"), "no request was made: {err}");
    sw.stop();
}

/// `fdb flush` on a table that holds learned MACs: with a wrong token vswitchctl exits
/// non-zero with the API's 401 and every entry stays; with the token every entry is gone.
#[test]
fn fdb_flush_forgets_learned_macs() {
    let dir = Scratch::new("ctl-flush");
    let sw = common::learned_vlan_switch_with_token(Some("ctl-flush-token"));
    let ctl = |token: &str| Ctl {
        args: vec![
            "--server".into(),
            sw.addr.to_string(),
            "--token-file".into(),
            dir.file(token, &format!("{token}\n")).display().to_string(),
        ],
    };
    let (good, bad) = (ctl("ctl-flush-token"), ctl("not-the-token"));
    let entries = |c: &Ctl| c.ok(&["fdb", "show"]).lines().count() - 1;
    assert_eq!(entries(&good), 5);

    let (ok, _, err) = bad.run(&["fdb", "flush"]);
    assert!(
        !ok && err.contains("Authorization: the bearer token is wrong (HTTP 401)"),
        "{err}"
    );
    assert_eq!(entries(&good), 5, "a refused flush forgot MACs");

    assert_eq!(good.ok(&["fdb", "flush"]), "");
    let table = good.ok(&["fdb", "show"]);
    assert!(table.starts_with("DOMAIN"), "{table}");
    assert_eq!(entries(&good), 0, "{table}");
    assert_eq!(good.json(&["fdb", "show"]), serde_json::json!([]));
    assert!(sw.app.switch.fdb().unwrap().is_empty());
}

/// `fdb show --vlan N` and `--vni N` list what the switch learned through traffic, one VLAN
/// at a time; `trace --hex` takes a whole frame and shows where `normal` sends it.
#[test]
fn fdb_show_by_vlan_and_vni_and_trace_from_hex() {
    let dir = Scratch::new("ctl-fdb");
    let sw = common::learned_vlan_switch();
    // The in-process API has no auth; a token file keeps the host's default one out of it.
    let token = dir.file("token", "unused\n");
    let ctl = Ctl {
        args: vec![
            "--server".into(),
            sw.addr.to_string(),
            "--token-file".into(),
            token.display().to_string(),
        ],
    };
    let macs = |table: &str| -> Vec<String> {
        let mut lines = table.lines();
        assert!(
            lines.next().is_some_and(|h| h.starts_with("DOMAIN")),
            "{table}"
        );
        let mut m: Vec<String> = lines
            .map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                // DOMAIN is two words for a VLAN ("vlan 10"), one for "untagged".
                let at = cols.iter().position(|c| c.starts_with("02:")).unwrap();
                format!("{} {} {}", cols[..at].join(" "), cols[at], cols[at + 1])
            })
            .collect();
        m.sort();
        m
    };
    assert_eq!(
        macs(&ctl.ok(&["fdb", "show", "--vlan", "10"])),
        ["vlan 10 02:00:00:00:00:0a a", "vlan 10 02:00:00:00:00:0b b"]
    );
    assert_eq!(
        macs(&ctl.ok(&["fdb", "show", "--vlan", "0"])),
        ["untagged 02:00:00:00:00:0e e"]
    );
    assert_eq!(
        macs(&ctl.ok(&["fdb", "show", "--vni", "5001"])),
        ["vlan 20 02:00:00:00:00:0c c", "vlan 20 02:00:00:00:00:0d d"]
    );
    assert_eq!(macs(&ctl.ok(&["fdb", "show"])).len(), 5);
    let (ok, _, err) = ctl.run(&["fdb", "show", "--vni", "5002"]);
    assert!(!ok && err.contains("vni") && err.contains("404"), "{err}");

    // 02:00:00:00:00:0b <- 02:00:00:00:00:0a, EtherType 0x88b5, as hex with separators.
    let hex = format!(
        "02:00:00:00:00:0b 02:00:00:00:00:0a 88b5 {}",
        "00".repeat(46)
    );
    let out = ctl.ok(&["trace", "a", "--hex", &hex]);
    assert!(out.contains("in_port=a"), "{out}");
    assert!(out.contains("eth_dst=02:00:00:00:00:0b"), "{out}");
    assert!(out.contains("classifier: no match (normal)"), "{out}");
    assert!(out.contains("normal: vlan 10 learned on b"), "{out}");
    // An unknown destination floods to the ports carrying the in-port's VLAN: not to VLAN
    // 10's, and not to `e` (no vlan setting: the untagged domain only).
    let hex = hex.replacen("0b", "99", 1);
    let out = ctl.ok(&["trace", "c", "--hex", &hex]);
    assert!(out.contains("normal: flood in vlan 20 to d,vx\n"), "{out}");
    let (ok, _, err) = ctl.run(&["trace", "a", "--hex", "0z"]);
    assert!(!ok && err.contains("hex"), "{err}");
}

/// `trace` from a vxlan port shows split horizon: a broadcast floods to the local port only
/// (not the other vxlan port), and a destination learned behind the other vxlan port is
/// refused (`{"split_horizon": port}`), as the datapath does.
#[test]
fn trace_from_a_vxlan_port_shows_split_horizon() {
    let dir = Scratch::new("ctl-split");
    let sw = common::InProcess::start(
        r#"
[[port]]
name = "uplink"
type = "memory"
ip = "198.18.0.1/24"

[[port]]
name = "vm"
type = "memory"
vlan = { mode = "access", tag = 10 }

[[port]]
name = "vxa"
type = "vxlan"
vni = 100
remote_ip = "198.18.0.2"
vlan = { mode = "access", tag = 10 }

[[port]]
name = "vxb"
type = "vxlan"
vni = 100
remote_ip = "198.18.0.3"
vlan = { mode = "access", tag = 10 }
"#,
    );
    // VXLAN (VNI 100) from 198.18.0.3 carrying a broadcast from 02:00:00:00:00:0b: the
    // switch learns that MAC behind vxb.
    let inner: Vec<u8> = [[0xff; 6], [2, 0, 0, 0, 0, 0x0b]]
        .concat()
        .into_iter()
        .chain([0x88, 0xb5])
        .chain([0; 46])
        .collect();
    let udp_len = 8 + 8 + inner.len() as u16;
    let mut frame = vec![2, 0x76, 198, 18, 0, 1, 2, 0xee, 0, 0, 0, 3, 0x08, 0x00];
    frame.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0]);
    frame[16..18].copy_from_slice(&(20 + udp_len).to_be_bytes());
    frame.extend_from_slice(&[198, 18, 0, 3, 198, 18, 0, 1]);
    frame.extend_from_slice(&[0xc0, 0x00, 0x12, 0xb5]);
    frame.extend_from_slice(&udp_len.to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0x08, 0, 0, 0, 0, 0, 100, 0]);
    frame.extend_from_slice(&inner);
    let up = sw.app.switch.mem_peer("uplink").unwrap();
    assert!(up.inject(&frame));
    sw.wait_learned(1);
    let token = dir.file("token", "unused\n");
    let ctl = Ctl {
        args: vec![
            "--server".into(),
            sw.addr.to_string(),
            "--token-file".into(),
            token.display().to_string(),
        ],
    };
    let to_b = format!(
        "02:00:00:00:00:0b 02:00:00:00:00:0a 88b5 {}",
        "00".repeat(46)
    );
    let out = ctl.ok(&["trace", "vxa", "--hex", &to_b]);
    assert!(
        out.contains("normal: vlan 10 learned on vxb, dropped (split horizon"),
        "{out}"
    );
    let t = ctl.json(&["trace", "vxa", "--hex", &to_b]);
    assert_eq!(t["normal"], serde_json::json!({"split_horizon": "vxb"}));
    // From the local port, the same destination is sent to vxb.
    let out = ctl.ok(&["trace", "vm", "--hex", &to_b]);
    assert!(out.contains("normal: vlan 10 learned on vxb\n"), "{out}");
    // A broadcast from vxa floods to vm alone; from vm, to both vxlan ports.
    let bcast = to_b.replacen("02:00:00:00:00:0b", "ff:ff:ff:ff:ff:ff", 1);
    let out = ctl.ok(&["trace", "vxa", "--hex", &bcast]);
    assert!(out.contains("normal: flood in vlan 10 to vm\n"), "{out}");
    let out = ctl.ok(&["trace", "vm", "--hex", &bcast]);
    assert!(
        out.contains("normal: flood in vlan 10 to vxa,vxb\n"),
        "{out}"
    );
}
