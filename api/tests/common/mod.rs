//! Fixtures for the daemon tests: vswitchd started as a process or in this process, its
//! API called over HTTP, the totals it logs when it stops. Namespaces, child processes,
//! scratch directories, testpmd and the rest come from `testkit`, re-exported here so that
//! each test's `use common::*` has them.
#![allow(dead_code)]

pub mod offload;

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use testkit::frames;

// Each test binary uses some of them.
#[allow(unused_imports)]
pub use testkit::{
    last_cpu,
    netns::{ip, unique_name, Netns, Veth},
    process::{number_after, require_peer, require_tool, Proc},
    ptrace::{threads, FrozenThread},
    scratch::Scratch,
    testpmd::{remove_dpdk_runtime, stop_forwarding, testpmd, testpmd_with, TESTPMD},
};

/// The daemon under test.
pub const VSWITCHD: &str = env!("CARGO_BIN_EXE_vswitchd");

/// `(rx_packets, tx_packets)` of `port` from the totals vswitchd logs when it stops.
pub fn port_totals(vswitchd_log: &str, port: &str) -> (u64, u64) {
    let field = format!("port={port} ");
    let line = vswitchd_log
        .lines()
        .find(|l| l.contains("port totals") && l.contains(&field))
        .unwrap_or_else(|| {
            panic!("no port totals for {port} in the vswitchd log:\n{vswitchd_log}")
        });
    (
        number_after(line, "rx_packets="),
        number_after(line, "tx_packets="),
    )
}

/// All drops, over every reason, from the totals vswitchd logs when it stops.
pub fn drop_total(vswitchd_log: &str) -> u64 {
    vswitchd_log
        .lines()
        .filter(|l| l.contains("drop totals"))
        .map(|l| number_after(l, "packets="))
        .sum()
}

/// Frames dropped for `reason`, from the totals vswitchd logs when it stops.
pub fn drops_for(vswitchd_log: &str, reason: &str) -> u64 {
    // tracing writes `reason="tunnel"` (a &str field) or `reason=tunnel`.
    let (quoted, bare) = (format!("reason=\"{reason}\""), format!("reason={reason} "));
    let line = vswitchd_log
        .lines()
        .find(|l| l.contains("drop totals") && (l.contains(&quoted) || l.contains(&bare)))
        .unwrap_or_else(|| panic!("no drop totals for {reason} in the log:\n{vswitchd_log}"));
    number_after(line, "packets=")
}

/// Flags that put a test's vswitchd API on a free TCP port (read it back with [`api_addr`]).
pub const API_ANY_PORT: [&str; 2] = ["--api-listen", "127.0.0.1:0"];

/// The TCP address vswitchd's API bound, from its "API listening on TCP" log line.
pub fn api_addr(vswitchd: &mut Proc) -> std::net::SocketAddr {
    let line = vswitchd.wait_for("API listening on TCP", Duration::from_secs(20));
    let at = line.find("addr=").expect("addr= in the API line") + 5;
    line[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|e| panic!("bad API address in {line:?}: {e}"))
}

/// `GET path` over HTTP/1.1 with `Connection: close`: (status, content type, body).
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {head:?}"));
    let ctype = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, ctype, body.to_string())
}

/// Sends `request` (raw bytes) on a new connection to `addr` and reads until the server
/// closes it (or 10 s pass): (status, head in lower case, body).
pub fn http_raw(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    read_response(&mut s)
}

/// Reads one response from `s` until the server closes the connection: (status, head in
/// lower case, body).
pub fn read_response(s: &mut std::net::TcpStream) -> (u16, String, String) {
    use std::io::Read;
    let mut raw = Vec::new();
    if let Err(e) = s.read_to_end(&mut raw) {
        panic!(
            "reading the response: {e}; got so far: {:?}",
            String::from_utf8_lossy(&raw)
        );
    }
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {head:?}"));
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// One API call over TCP to `addr`: (status, JSON body or Null).
pub fn api_call(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let r = api::ctl::http::Endpoint::Tcp(addr.to_string())
        .request(method, path, token, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let v = if r.body.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}: {:?}", r.body))
    };
    (r.status, v)
}

/// A vswitchd started for an API test: its state dir under the test's scratch dir, its API on
/// a free TCP port, its PMD on the last CPU.
pub struct Vswitchd {
    /// The process.
    pub proc: Proc,
    /// The API's TCP address.
    pub addr: std::net::SocketAddr,
    /// The state directory.
    pub state_dir: PathBuf,
}

impl Vswitchd {
    /// Starts vswitchd with `--state-dir DIR/state`, the config `config` (if any) written
    /// to DIR/vswitch.toml, and `extra` flags; waits until the API listens.
    pub fn start(dir: &Scratch, config: Option<&str>, extra: &[&str]) -> Vswitchd {
        let state_dir = dir.path("state");
        let mut cmd = Command::new(VSWITCHD);
        cmd.arg("--state-dir")
            .arg(&state_dir)
            .args(API_ANY_PORT)
            .args(["--pmd-cores", &last_cpu().to_string()])
            .args(extra)
            .env("RUST_LOG", "info");
        if let Some(text) = config {
            cmd.arg("--config").arg(dir.file("vswitch.toml", text));
        }
        let mut proc = Proc::spawn("vswitchd", cmd);
        let addr = api_addr(&mut proc);
        proc.wait_for("vswitchd running", Duration::from_secs(20));
        Vswitchd {
            proc,
            addr,
            state_dir,
        }
    }

    /// The API token vswitchd created in its state dir.
    pub fn token(&self) -> String {
        api::token::read(&self.state_dir.join("api-token")).unwrap()
    }

    /// One API call: (status, JSON body or Null).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> (u16, serde_json::Value) {
        api_call(self.addr, method, path, body, token)
    }

    /// An authorized call.
    pub fn auth(&self, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
        let t = self.token();
        self.call(method, path, body, Some(&t))
    }

    /// Stops it with SIGTERM; it must exit 0.
    pub fn stop(mut self) -> String {
        let st = self.proc.stop(Signal::SIGTERM, Duration::from_secs(30));
        assert!(
            st.success(),
            "vswitchd exited with {st}:\n{}",
            self.proc.log
        );
        std::mem::take(&mut self.proc.log)
    }
}

/// A switch and its API server in this process (no state dir, no token), so a test can
/// inject frames on its memory ports and see the API's answer.
pub struct InProcess {
    /// The switch and its control-plane companions.
    pub app: std::sync::Arc<api::app::App>,
    server: Option<api::server::Server>,
    /// The API's TCP address.
    pub addr: std::net::SocketAddr,
}

impl InProcess {
    /// Starts the switch `toml` describes (its PMD on the last CPU) and serves its API on a
    /// free loopback port, without auth.
    pub fn start(toml: &str) -> InProcess {
        InProcess::start_with_token(toml, None)
    }

    /// [`InProcess::start`], with changes refused (401) unless they carry `token`.
    pub fn start_with_token(toml: &str, token: Option<&str>) -> InProcess {
        let text = format!("[switch]\npmd_cores = [{}]\n{toml}", last_cpu());
        let cfg = switch::Config::from_toml(&text, "test.toml").unwrap();
        let app = std::sync::Arc::new(api::app::App::new(
            switch::Switch::start(&cfg).unwrap(),
            None,
            cfg.switch.clone(),
            token.map(str::to_string),
        ));
        let server = api::server::Server::start(
            app.clone(),
            &api::server::Endpoints {
                tcp: Some("127.0.0.1:0".parse().unwrap()),
                unix: None,
                ..Default::default()
            },
        )
        .unwrap();
        let addr = server.tcp_addr.unwrap();
        InProcess {
            app,
            server: Some(server),
            addr,
        }
    }

    /// Sends a broadcast frame from MAC `02:00:00:00:00:{last:02x}` into memory port `port`.
    pub fn send_from(&self, port: &str, last: u8) {
        let f = frames::ethernet([0xff; 6], frames::mac(last), frames::TEST_ETHERTYPE, &[]);
        let peer = self.app.switch.mem_peer(port).unwrap();
        assert!(peer.inject(&f), "port {port}: the rx queue is full");
    }

    /// Waits until the switch has learned `n` MACs.
    pub fn wait_learned(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.app.switch.fdb().unwrap();
            if got.len() == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "learned {} MACs, not {n}: {got:?}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One API call: (status, JSON body or Null).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> (u16, serde_json::Value) {
        api_call(self.addr, method, path, body, token)
    }

    /// `GET path`: (status, JSON body).
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = api::ctl::http::Endpoint::Tcp(self.addr.to_string())
            .request("GET", path, None, None)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let v = serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("GET {path}: {e}: {:?}", r.body));
        (r.status, v)
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
    }
}

/// Two memory ports, `a` and `b`, and one flow from `a` to `b` for IPv4 to 198.18.0.0/24.
pub const TWO_PORTS: &str = r#"
[[port]]
name = "a"
type = "memory"

[[port]]
name = "b"
type = "memory"

[[flow]]
priority = 100
match = { in_port = "a", eth_type = "0x0800", ip_dst = "198.18.0.0/24" }
actions = ["output:b"]
"#;

/// Ports for the learning tests: VLAN 10 (`a`, `b`), VLAN 20 (`c`, `d`, and vxlan port `vx`
/// bridging VNI 5001 into it, no underlay needed to exist), and untagged `e`.
pub const VLAN_PORTS: &str = r#"
[[port]]
name = "a"
type = "memory"
vlan = { mode = "access", tag = 10 }

[[port]]
name = "b"
type = "memory"
vlan = { mode = "access", tag = 10 }

[[port]]
name = "c"
type = "memory"
vlan = { mode = "access", tag = 20 }

[[port]]
name = "d"
type = "memory"
vlan = { mode = "access", tag = 20 }

[[port]]
name = "e"
type = "memory"

[[port]]
name = "vx"
type = "vxlan"
vni = 5001
remote_ip = "198.18.0.2"
vlan = { mode = "access", tag = 20 }
"#;

/// [`VLAN_PORTS`] with one MAC learned on each memory port: `02:00:00:00:00:0a` on `a`,
/// `..:0b` on `b`, and so on to `..:0e` on `e`.
pub fn learned_vlan_switch() -> InProcess {
    learned_vlan_switch_with_token(None)
}

/// [`learned_vlan_switch`], with changes refused (401) unless they carry `token`.
pub fn learned_vlan_switch_with_token(token: Option<&str>) -> InProcess {
    let sw = InProcess::start_with_token(VLAN_PORTS, token);
    for (port, last) in [
        ("a", 0x0a),
        ("b", 0x0b),
        ("c", 0x0c),
        ("d", 0x0d),
        ("e", 0x0e),
    ] {
        sw.send_from(port, last);
    }
    sw.wait_learned(5);
    sw
}

/// `GET /metrics` from a vswitchd whose API listens on unix socket `sock`: the exposition.
pub fn scrape_unix(sock: &std::path::Path) -> String {
    let r = api::ctl::http::Endpoint::Unix(sock.to_path_buf())
        .request("GET", "/metrics", None, None)
        .unwrap_or_else(|e| panic!("GET /metrics on {}: {e}", sock.display()));
    assert_eq!(r.status, 200, "GET /metrics: {}", r.body);
    r.body
}

/// The value of sample `name` with exactly `labels` (in any order) in a Prometheus text
/// exposition, or `None` when the switch exports no such series.
pub use testkit::prometheus::sample as metric;
