//! Process fixtures for the daemon tests: scratch directories, and child processes whose
//! output is read line by line and which are stopped by PID, never by name.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub mod qemu_guest;

/// The daemon under test.
pub const VSWITCHD: &str = env!("CARGO_BIN_EXE_vswitchd");

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A fresh directory of its own, named after `tag`, this process and a sequence number:
    /// tests run in parallel threads of one process, and two of them asking for the same
    /// tag must not write into (or remove) each other's directory.
    pub fn new(tag: &str) -> Scratch {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("vswitch-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes `text` to `name` inside the directory.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The `[switch]` line that puts vhost-user sockets in this directory
    /// (`socket_dir = "..."`): a socket outside `socket_dir` is refused.
    pub fn socket_dir(&self) -> String {
        format!("socket_dir = {:?}", self.0.display().to_string())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process with its stdout and stderr merged into a line channel. Dropping it kills
/// the process by its PID.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Everything read so far, for failure messages.
    pub log: String,
}

impl Proc {
    /// Starts `cmd` with piped stdin, stdout and stderr.
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(l);
            }
        });
        Proc {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child: Some(child),
            lines: rx,
            log: String::new(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().unwrap().id() as i32)
    }

    /// Waits for a line containing `pat`; panics with the log so far after `timeout`.
    pub fn wait_for(&mut self, pat: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.log.push_str(&l);
                    self.log.push('\n');
                    if l.contains(pat) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "{}: no line containing {pat:?} within {timeout:?}; output:\n{}",
                    self.name, self.log
                ),
            }
        }
    }

    /// Reads whatever output arrives within `d`.
    pub fn drain_for(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while let Ok(l) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.log.push_str(&l);
            self.log.push('\n');
        }
    }

    /// Writes one line to the process's stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Sends `sig` to the process and waits for it to exit (reading its output meanwhile).
    pub fn stop(&mut self, sig: Signal, timeout: Duration) -> ExitStatus {
        let _ = kill(self.pid(), sig);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.drain_for(Duration::from_millis(200));
                self.child = None;
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?} of {sig}; output:\n{}",
                self.name,
                self.log
            );
            self.drain_for(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The last CPU: where the switch's PMD goes, away from everything else.
pub fn last_cpu() -> usize {
    std::thread::available_parallelism().unwrap().get() - 1
}

/// The number after `key` in a line: a testpmd statistic such as
/// `  TX-packets: 1234           TX-dropped: 5`, or a log field `key=1234`.
pub fn number_after(line: &str, key: &str) -> u64 {
    let at = line
        .find(key)
        .unwrap_or_else(|| panic!("no {key:?} in {line:?}"))
        + key.len();
    line[at..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {key:?} in {line:?}"))
}

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

/// True when the peer program `bin` (from Debian's `package`) runs. Missing, it is a test
/// failure telling how to install it, unless `skip_var` is set (by hand: deploy/test.sh
/// refuses to run with any `VSWITCH_SKIP_*` set): then the test passes without running, and
/// says so in a SKIPPED line that cargo shows.
pub fn require_peer(bin: &str, package: &str, skip_var: &str) -> bool {
    if Command::new(bin).arg("--version").output().is_ok() {
        return true;
    }
    if std::env::var_os(skip_var).is_some() {
        // Written to stderr directly: the harness captures `eprintln!` and shows it only
        // for a failed test, and a skipped test passes.
        let _ = writeln!(
            std::io::stderr(),
            "*** SKIPPED: {} ({bin} not installed and {skip_var} is set) ***",
            std::thread::current().name().unwrap_or("a test")
        );
        return false;
    }
    panic!(
        "{bin} not found: install Debian's {package} (deploy/test.sh does), \
         or set {skip_var}=1 to skip loudly"
    );
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
        let ep = api::ctl::http::Endpoint::Tcp(self.addr.to_string());
        let r = ep
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

/// DPDK's testpmd (Debian's `dpdk-dev`), the real virtio-user frontend the vhost-user tests
/// drive.
pub const TESTPMD: &str = "dpdk-testpmd";

/// A testpmd "guest": one virtio-user port on `sock` (`server`: testpmd owns the socket),
/// forwarding lcore on CPU 0 (the switch's PMD has the last CPU to itself), no hugepages,
/// runtime files under `/var/run/dpdk/{prefix}` (remove them with [`remove_dpdk_runtime`]),
/// interactive, in forwarding mode `mode` (`txonly`, `rxonly`, ...).
pub fn testpmd(prefix: &str, sock: &std::path::Path, server: bool, mode: &str) -> Command {
    // Line-buffered stdout: testpmd's replies must reach us as they are printed, not when a
    // pipe buffer fills.
    let mut c = Command::new("stdbuf");
    c.arg("-oL").arg(TESTPMD);
    c.args([
        "--lcores",
        "0@0,1@0",
        "--main-lcore",
        "0",
        "-n",
        "1",
        "--no-pci",
    ])
    .args([
        "--single-file-segments",
        "--iova-mode=va",
        "--no-huge",
        "-m",
        "256",
    ])
    .arg(format!("--file-prefix={prefix}"))
    .arg(format!(
        "--vdev=net_virtio_user0,path={},queues=1{}",
        sock.display(),
        if server { ",server=1" } else { "" }
    ))
    .args(["--", "-i", "--nb-cores=1", "--total-num-mbufs=8192"])
    .arg(format!("--forward-mode={mode}"));
    c
}

/// Stops testpmd's forwarding and returns the accumulated (RX-packets, TX-packets) it prints.
pub fn stop_forwarding(p: &mut Proc) -> (u64, u64) {
    p.send("stop");
    p.wait_for(
        "Accumulated forward statistics for all ports",
        Duration::from_secs(20),
    );
    let rx = p.wait_for("RX-packets:", Duration::from_secs(5));
    let tx = p.wait_for("TX-packets:", Duration::from_secs(5));
    (
        number_after(&rx, "RX-packets:"),
        number_after(&tx, "TX-packets:"),
    )
}

/// Removes the runtime directory DPDK leaves behind for `--file-prefix={prefix}`.
pub fn remove_dpdk_runtime(prefix: &str) {
    let _ = std::fs::remove_dir_all(std::path::Path::new("/var/run/dpdk").join(prefix));
}

/// Runs `ip args...`, panicking with its stderr on failure (or naming the missing package).
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip` (Debian package iproute2 is required): {e}"));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A short name unique to this test process and call: `{prefix}{pid}{n}` (<= 15 chars).
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}{n}", std::process::id() % 100_000)
}

/// A network namespace, deleted on drop (also when the test fails).
pub struct Netns {
    /// Its name under /run/netns.
    pub name: String,
}

impl Netns {
    /// Creates a namespace with a unique name, loopback up.
    pub fn new() -> Netns {
        let ns = Netns {
            name: unique_name("vswa"),
        };
        ip(&["netns", "add", &ns.name]);
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Runs a command inside the namespace, panicking on failure.
    pub fn exec(&self, cmd: &[&str]) {
        let mut args = vec!["netns", "exec", &self.name];
        args.extend_from_slice(cmd);
        ip(&args);
    }

    /// Runs a command inside the namespace and returns whether it succeeded, and its output.
    pub fn try_exec(&self, cmd: &[&str]) -> (bool, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(cmd)
            .output()
            .unwrap_or_else(|e| panic!("cannot run `ip netns exec` (iproute2): {e}"));
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// Gives interface `ifname` (already in this namespace) address `cidr` and brings it up.
    pub fn addr(&self, ifname: &str, cidr: &str) {
        self.exec(&["ip", "addr", "add", cidr, "dev", ifname]);
        self.exec(&["ip", "link", "set", ifname, "up"]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A veth pair: `host` stays in this namespace (the switch's side), `peer` is in `ns`.
/// Deleted on drop.
pub struct Veth {
    /// The switch's end.
    pub host: String,
    /// The end inside the namespace.
    pub peer: String,
}

impl Veth {
    /// Creates the pair; the host end is brought up, the peer is left to the test.
    pub fn new(ns: &Netns) -> Veth {
        let v = Veth {
            host: unique_name("vha"),
            peer: unique_name("vhb"),
        };
        ip(&[
            "link", "add", &v.host, "type", "veth", "peer", "name", &v.peer, "netns", &ns.name,
        ]);
        ip(&["link", "set", &v.host, "up"]);
        v
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host])
            .stderr(Stdio::null())
            .status();
    }
}

/// Fails with the package to install when `ping` (iputils-ping) is missing.
pub fn require_ping() {
    let ok = Command::new("ping").arg("-V").output().is_ok();
    assert!(
        ok,
        "ping not found: install Debian's iputils-ping (deploy/test.sh does)"
    );
}

/// The threads of process `pid`: (thread id, name).
pub fn threads(pid: Pid) -> Vec<(Pid, String)> {
    let dir = format!("/proc/{pid}/task");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let e = e.unwrap();
        let Ok(tid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // A thread may exit between the listing and the read.
        if let Ok(comm) = std::fs::read_to_string(e.path().join("comm")) {
            out.push((Pid::from_raw(tid), comm.trim().to_string()));
        }
    }
    out
}

/// One thread of another process, stopped with ptrace (`PTRACE_SEIZE`, then
/// `PTRACE_INTERRUPT`): only that thread stops, the rest of the process runs on. It resumes
/// when this is dropped (also when the test fails). ptrace ties a tracee to the tracing
/// thread: create and drop it on the same thread. Needs root (or CAP_SYS_PTRACE).
pub struct FrozenThread {
    tid: Pid,
}

impl FrozenThread {
    /// Stops the thread of `pid` named `name` (e.g. `pmd0`) and waits until it is stopped.
    pub fn freeze(pid: Pid, name: &str) -> FrozenThread {
        use nix::sys::ptrace;
        use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
        let tid = threads(pid)
            .into_iter()
            .find(|(_, n)| n == name)
            .unwrap_or_else(|| panic!("process {pid} has no thread named {name:?}"))
            .0;
        ptrace::seize(tid, ptrace::Options::empty())
            .unwrap_or_else(|e| panic!("PTRACE_SEIZE of {name} ({tid}): {e}"));
        let frozen = FrozenThread { tid };
        ptrace::interrupt(tid).unwrap_or_else(|e| panic!("PTRACE_INTERRUPT of {name}: {e}"));
        match waitpid(tid, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::PtraceEvent(..) | WaitStatus::Stopped(..)) => frozen,
            other => panic!("{name} ({tid}) did not stop: {other:?}"),
        }
    }
}

impl Drop for FrozenThread {
    fn drop(&mut self) {
        let _ = nix::sys::ptrace::detach(self.tid, None);
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
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, last]);
        f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
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
        let r = api::ctl::http::Endpoint::Tcp(self.addr.to_string())
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
