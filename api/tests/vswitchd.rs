//! `vswitchd` as a process: starts from a config file, stops cleanly on SIGTERM, and refuses
//! a bad file with a message naming the line and field, starting nothing.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use nix::sys::signal::Signal;

mod common;

use common::{Proc, Scratch, VSWITCHD};
use testkit::config::{memory_ports, switch_table, vhost_port};

#[test]
fn starts_from_config_and_stops_on_sigterm() {
    let dir = Scratch::new("ok");
    let cfg = dir.file(
        "vswitch.toml",
        &(switch_table(common::last_cpu(), "")
            + &memory_ports(&["vm1", "vm2"])
            + r#"
[[flow]]
priority = 100
match = { in_port = "vm1", eth_type = "0x0800", ip_dst = "198.18.0.0/24" }
actions = ["output:vm2"]
"#),
    );
    let state = dir.path("state");
    let mut cmd = Command::new(VSWITCHD);
    // No API: parallel tests must not compete for its default port.
    cmd.args(["--api-listen", "off"])
        .arg("--config")
        .arg(&cfg)
        .arg("--state-dir")
        .arg(&state)
        .env("RUST_LOG", "info");
    // Killed by PID if the test fails before it exits.
    let mut sw = Proc::spawn("vswitchd", cmd);
    let line = sw.wait_for("vswitchd running", Duration::from_secs(20));
    assert!(
        line.contains("ports=2") && line.contains("flows=1"),
        "{line}"
    );

    // Panics unless it exits within 10 s of SIGTERM.
    let status = sw.stop(Signal::SIGTERM, Duration::from_secs(10));
    let log = &sw.log;
    assert!(status.success(), "exit status {status:?}\n{log}");
    assert!(log.contains("stopping") && log.contains("stopped"), "{log}");
    assert!(
        state.join("state.json").exists(),
        "the config seeded the state dir"
    );
    assert!(
        !state.join("api-token").exists(),
        "no API, so no token file was created"
    );
}

/// Runs vswitchd on config file `cfg` with `args` to its exit, without its API (parallel
/// tests must not compete for its default port).
fn run_to_exit(cfg: &Path, args: &[&str]) -> Output {
    Command::new(VSWITCHD)
        .args(["--api-listen", "off"])
        .arg("--config")
        .arg(cfg)
        .args(args)
        .output()
        .unwrap()
}

/// Runs vswitchd on config `text` (in a scratch directory of its own, named after `tag`),
/// expects it to refuse to start, and returns its stderr.
fn run_expecting_failure(tag: &str, text: &str) -> String {
    let dir = Scratch::new(tag);
    let cfg = dir.file("bad.toml", text);
    let out = run_to_exit(&cfg, &[]);
    assert!(!out.status.success(), "a bad config must not start");
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_config_is_refused_with_line_and_field() {
    let err = run_expecting_failure(
        "bad-flow",
        "[switch]\npmd_cores = [0]\n\n[[port]]\nname = \"vm1\"\ntype = \"memory\"\n\n[[flow]]\nmatch = { in_port = \"vm1\" }\nactions = [\"output:nowhere\"]\n",
    );
    assert!(err.contains("bad.toml:10:"), "{err}");
    assert!(err.contains("flow[0].actions[0]"), "{err}");
    assert!(err.contains("nowhere"), "{err}");
    assert!(!err.contains("vswitchd running"), "{err}");
}

/// A port that cannot open stops the start before anything runs: the ports opened before it
/// are closed again (the vhost-user port's listening socket is gone), and no PMD or API
/// started (no "vswitchd running").
#[test]
fn port_that_cannot_open_starts_nothing() {
    let dir = Scratch::new("bad-port");
    let sock = dir.path("vm1.sock");
    // Every port type is supported now; an AF_XDP port on a missing interface cannot open.
    let cfg = dir.file(
        "bad.toml",
        &(switch_table(0, &dir.socket_dir())
            + &vhost_port("vm1", &sock, "server")
            + "\n[[port]]\nname = \"vm2\"\ntype = \"afxdp\"\ninterface = \"vsw-nosuch1\"\n"),
    );
    let out = run_to_exit(&cfg, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("vm2") && err.contains("vsw-nosuch1"), "{err}");
    assert!(!err.contains("vswitchd running"), "{err}");
    assert!(
        !sock.exists(),
        "vm1's socket {} outlived the failed start",
        sock.display()
    );
}

/// `--check` validates and exits: it opens no port (a vhost-user server port's socket is
/// never created) and starts nothing.
#[test]
fn check_flag_validates_only() {
    let dir = Scratch::new("check");
    let sock = dir.path("vm1.sock");
    let cfg = dir.file(
        "ok.toml",
        &(switch_table(0, &dir.socket_dir()) + &vhost_port("vm1", &sock, "server")),
    );
    let out = run_to_exit(&cfg, &["--check"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
    assert!(!err.contains("vswitchd running"), "{err}");
    assert!(!sock.exists(), "--check created {}", sock.display());
}

/// `--check` refuses a vhost-user socket outside `switch.socket_dir` (default /run/vswitch),
/// naming the port's field, and accepts it once socket_dir holds it.
#[test]
fn check_flag_refuses_a_socket_outside_socket_dir() {
    let dir = Scratch::new("check-sock");
    let port = "[[port]]\nname = \"vm1\"\ntype = \"vhost-user\"\nsocket = \"/etc/vm1.sock\"\n";
    let check = |text: &str| run_to_exit(&dir.file("vswitch.toml", text), &["--check"]);
    let out = check(&format!("[switch]\npmd_cores = [0]\n\n{port}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            r#"port[0].socket: "/etc/vm1.sock" is outside switch.socket_dir "/run/vswitch""#
        ),
        "{err}"
    );
    assert!(err.contains("vswitch.toml:7:"), "{err}");
    let out = check(&format!(
        "[switch]\npmd_cores = [0]\nsocket_dir = \"/etc\"\n\n{port}"
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !std::path::Path::new("/etc/vm1.sock").exists(),
        "--check created the socket"
    );
}

/// A `Cpus_allowed_list` such as `0`, `0-1` or `0,2-3`.
fn cpu_list(text: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>().unwrap()..=b.parse().unwrap()),
            None => cpus.push(part.parse().unwrap()),
        }
    }
    cpus
}

/// Every thread of vswitchd but the PMDs (main, API runtime and its blocking pool, vhost-user
/// connection threads of ports from the config and of ports added through the API) may run
/// only off the PMD core; each PMD is pinned to its core. Needs 2 CPUs or more (the PMD gets
/// the last one).
#[test]
fn control_threads_stay_off_the_pmd_cores() {
    let pmd_core = common::last_cpu();
    assert!(pmd_core >= 1, "this test needs 2 CPUs or more");
    let dir = Scratch::new("affinity");
    let config = format!(
        "[switch]\npmd_cores = [{pmd_core}]\n{}\n\n[[port]]\nname = \"vm1\"\ntype = \"vhost-user\"\nsocket = \"{}\"\n",
        dir.socket_dir(),
        dir.path("vm1.sock").display()
    );
    let sw = common::Vswitchd::start(&dir, Some(&config), &[]);
    // A port added through the API: its connection thread starts on the blocking pool.
    let body = serde_json::json!({
        "name": "vm2", "type": "vhost-user", "socket": dir.path("vm2.sock")
    })
    .to_string();
    let (s, v) = sw.auth("POST", "/v1/ports", Some(&body));
    assert_eq!(s, 201, "{v}");
    assert_eq!(common::http_get(sw.addr, "/metrics").0, 200);

    let pid = sw.proc.pid();
    let threads = common::threads(pid);
    let mut names = Vec::new();
    for (tid, name) in &threads {
        let path = format!("/proc/{pid}/task/{tid}/status");
        let Ok(status) = std::fs::read_to_string(&path) else {
            continue; // exited meanwhile
        };
        let allowed = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap_or_else(|| panic!("{path}: no Cpus_allowed_list"));
        let cpus = cpu_list(allowed);
        if name.starts_with("pmd") {
            assert_eq!(cpus, [pmd_core], "PMD thread {name} ({tid})");
        } else {
            assert!(
                !cpus.is_empty() && !cpus.contains(&pmd_core),
                "thread {name} ({tid}) may run on the PMD core {pmd_core}: {allowed}"
            );
        }
        names.push(name.clone());
    }
    for want in ["vswitchd", "api", "pmd0", "vhu-vm1.sock", "vhu-vm2.sock"] {
        assert!(
            names.iter().any(|n| n == want),
            "no thread {want:?} among {names:?}"
        );
    }
    sw.stop();
}
