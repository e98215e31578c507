//! `vswitchd` as a process: starts from a config file, stops cleanly on SIGTERM, and refuses
//! a bad file with a message naming the line and field, starting nothing.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

mod common;

use common::{Scratch, VSWITCHD};

/// Kills the child by PID if a test fails before it exits.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn starts_from_config_and_stops_on_sigterm() {
    let dir = Scratch::new("ok");
    let cfg = dir.file(
        "vswitch.toml",
        &format!(
            r#"
[switch]
pmd_cores = [{}]

[[port]]
name = "vm1"
type = "memory"

[[port]]
name = "vm2"
type = "memory"

[[flow]]
priority = 100
match = {{ in_port = "vm1", eth_type = "0x0800", ip_dst = "198.18.0.0/24" }}
actions = ["output:vm2"]
"#,
            common::last_cpu()
        ),
    );
    let child = Command::new(VSWITCHD)
        // No API: parallel tests must not compete for its default port.
        .args(["--api-listen", "off"])
        .arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = Guard(Some(child));
    let child = guard.0.as_mut().unwrap();
    let pid = Pid::from_raw(child.id() as i32);

    // Read stderr on a thread; wait for the "running" line.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let mut running = false;
    let mut seen = String::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("vswitchd running") {
            assert!(
                line.contains("ports=2") && line.contains("flows=1"),
                "{line}"
            );
            running = true;
            break;
        }
    }
    assert!(running, "vswitchd did not report running:\n{seen}");

    kill(pid, Signal::SIGTERM).unwrap();
    let mut status = None;
    for _ in 0..200 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = status.expect("vswitchd exits within 10 s of SIGTERM");
    guard.0 = None;
    let log = reader.join().unwrap();
    assert!(status.success(), "exit status {status:?}\n{log}");
    assert!(log.contains("stopping") && log.contains("stopped"), "{log}");
}

fn run_expecting_failure(text: &str) -> String {
    let dir = Scratch::new("bad");
    let cfg = dir.file("bad.toml", text);
    let out = Command::new(VSWITCHD)
        // No API: parallel tests must not compete for its default port.
        .args(["--api-listen", "off"])
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a bad config must not start");
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_config_is_refused_with_line_and_field() {
    let err = run_expecting_failure(
        "[switch]\npmd_cores = [0]\n\n[[port]]\nname = \"vm1\"\ntype = \"memory\"\n\n[[flow]]\nmatch = { in_port = \"vm1\" }\nactions = [\"output:nowhere\"]\n",
    );
    assert!(err.contains("bad.toml:10:"), "{err}");
    assert!(err.contains("flow[0].actions[0]"), "{err}");
    assert!(err.contains("nowhere"), "{err}");
    assert!(!err.contains("vswitchd running"), "{err}");
}

#[test]
fn port_that_cannot_open_starts_nothing() {
    // Every port type is supported now; an AF_XDP port on a missing interface cannot open.
    let err = run_expecting_failure(
        "[switch]\npmd_cores = [0]\n\n[[port]]\nname = \"vm1\"\ntype = \"memory\"\n\n[[port]]\nname = \"vm2\"\ntype = \"afxdp\"\ninterface = \"vsw-nosuch1\"\n",
    );
    assert!(err.contains("vm2") && err.contains("vsw-nosuch1"), "{err}");
    assert!(!err.contains("vswitchd running"), "{err}");
}

#[test]
fn check_flag_validates_only() {
    let dir = Scratch::new("check");
    let cfg = dir.file("ok.toml", "[switch]\npmd_cores = [0]\n");
    let out = Command::new(VSWITCHD)
        // No API: parallel tests must not compete for its default port.
        .args(["--api-listen", "off"])
        .arg("--config")
        .arg(&cfg)
        .arg("--check")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
}
