//! Schemathesis against the REST API: it reads `/openapi.json`, generates requests that fit
//! the document and requests that do not, sends them (with the API token) to a running
//! vswitchd, and checks every answer with every check it has: no 5xx, answers as documented,
//! every schema-valid request accepted (or refused only as documented: 404, 409), every
//! schema-invalid one refused. A bounded, seeded pass; deploy/test.sh installs schemathesis
//! (pip, in /opt/schemathesis). `api/tests/schemathesis/hooks.py` makes generated gateways
//! lie on their port's subnet, which JSON Schema cannot say.
//!
//! The calls change the switch (ports, flows), and a port request may open a tap or AF_XDP
//! interface: vswitchd and schemathesis run in a network namespace of their own, so whatever
//! is opened lives and dies there; vhost-user sockets go to the scratch directory (the
//! switch's `socket_dir`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Netns, Proc, Scratch, VSWITCHD};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Where deploy/test.sh installs schemathesis.
const INSTALLED: &str = "/opt/schemathesis/bin/schemathesis";

/// Test cases per API operation and phase: enough to reach every operation's shapes, few
/// enough to finish in some 30 s on two cores.
const MAX_EXAMPLES: &str = "10";

/// The phases run here: the schema's examples, random generation (valid and invalid), and
/// stateful sequences (create, read back, delete). The coverage phase (some 7000 boundary
/// cases, two minutes here) is left to the larger pass docs/testing.md describes.
const PHASES: &str = "examples,fuzzing,stateful";

/// The schemathesis binary: `$SCHEMATHESIS`, deploy/test.sh's install, or one on `PATH`.
fn schemathesis() -> PathBuf {
    let candidates = std::env::var_os("SCHEMATHESIS")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from(INSTALLED), PathBuf::from("schemathesis")]);
    for c in candidates {
        if Command::new(&c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return c;
        }
    }
    panic!(
        "schemathesis not found (not at {INSTALLED}, not on PATH, $SCHEMATHESIS unset): \
         deploy/test.sh installs it (pip, in a venv at /opt/schemathesis)"
    );
}

#[test]
fn schemathesis_finds_nothing() {
    let st = schemathesis();
    let dir = Scratch::new("schemathesis");
    let sockets = dir.path("sockets");
    std::fs::create_dir(&sockets).unwrap();
    let ns = Netns::new();
    let config = dir.file(
        "vswitch.toml",
        &format!(
            "[switch]\nsocket_dir = {:?}\n\n[[port]]\nname = \"a\"\ntype = \"memory\"\n\n\
             [[port]]\nname = \"b\"\ntype = \"memory\"\n\n[[flow]]\npriority = 10\n\
             match = {{ in_port = \"a\" }}\nactions = [\"output:b\"]\n",
            sockets.display().to_string()
        ),
    );
    let state = dir.path("state");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name, VSWITCHD, "--config"])
        .arg(&config)
        .arg("--state-dir")
        .arg(&state)
        .args(common::API_ANY_PORT)
        .args(["--pmd-cores", &common::last_cpu().to_string()])
        .env("RUST_LOG", "info");
    let mut sw = Proc::spawn("vswitchd", cmd);
    let addr = common::api_addr(&mut sw);
    sw.wait_for("vswitchd running", Duration::from_secs(20));
    let token = api::token::read(&state.join("api-token")).unwrap();

    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis");
    let report = dir.path("report.xml");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(&st)
        .args(["run", &format!("http://{addr}/openapi.json")])
        .args([
            "--checks",
            "all",
            "--max-examples",
            MAX_EXAMPLES,
            "--seed",
            "1",
        ])
        .args(["--phases", PHASES])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--report", "junit", "--report-junit-path"])
        .arg(&report)
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", &hooks)
        .current_dir(&dir.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", st.display()));
    let pid = Pid::from_raw(child.id() as i32);
    // Read its output on threads so a full pipe never stalls it.
    let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || std::io::read_to_string(out).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(err).unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = child.wait();
            panic!(
                "schemathesis did not finish within 300 s:\n{}",
                out.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    let stopped = sw.stop(Signal::SIGTERM, Duration::from_secs(30));
    assert!(
        stopped.success(),
        "vswitchd exited with {stopped}:\n{}",
        sw.log
    );
    assert!(
        status.success(),
        "schemathesis failed ({status}):\n{out}\n{err}"
    );

    // The summary: every operation tested, cases run, no failure, no error.
    assert!(out.contains("Selected: 14/14"), "{out}");
    assert!(out.contains("Tested: 14"), "{out}");
    let cases = out
        .lines()
        .skip_while(|l| !l.starts_with("Test cases:"))
        .nth(1)
        .unwrap_or_else(|| panic!("no test case count in:\n{out}"));
    let generated: u64 = cases
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number in {cases:?}"));
    assert!(generated >= 150, "only {generated} cases: {cases}");
    assert!(cases.contains("passed"), "{cases}");
    assert!(
        !out.contains("failures") && !out.contains("errors"),
        "{out}"
    );
    let junit = std::fs::read_to_string(&report).unwrap();
    assert!(junit.contains("<testsuite"), "{junit}");
    assert!(junit.contains("failures=\"0\""), "{junit}");
    assert!(junit.contains("errors=\"0\""), "{junit}");
    eprintln!("schemathesis: {}", cases.trim());
}
