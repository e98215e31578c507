//! Network namespaces, veth pairs and `ip` (iproute2) helpers for tests that need real
//! interfaces. Each namespace and each pair this module creates is removed on drop, also when
//! the test fails; deleting a namespace deletes the interfaces in it.
//!
//! Every address a test assigns lies in the benchmarking range 198.18.0.0/15 (RFC 2544),
//! which no real network uses.

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::process::run;

/// Runs `ip args...`; panics with its output on failure (or naming Debian's iproute2 when
/// `ip` cannot start).
pub fn ip(args: &[&str]) -> Output {
    run(Command::new("ip").args(args))
}

/// The standard output of `ip args...`, whether it succeeded or not (a test asking whether
/// an interface still exists wants the answer, not a panic).
pub fn ip_output(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip` (Debian package iproute2 is required): {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A short name unique to this test process and call: `{prefix}{pid}{n}`, at most 15 bytes
/// (an interface name's limit) for a prefix of up to 4.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}{n}", std::process::id() % 100_000)
}

/// A network namespace, deleted (with every interface in it) on drop.
#[derive(Debug)]
pub struct Netns {
    /// Its name under /run/netns.
    pub name: String,
}

impl Netns {
    /// A namespace with a unique name, loopback up.
    pub fn new() -> Netns {
        Netns::create(unique_name("vsw"), true)
    }

    /// A namespace called `name` (one left over from an earlier run is deleted first),
    /// loopback up. The caller makes the name unique to its test.
    pub fn named(name: String) -> Netns {
        Netns::named_with(name, true)
    }

    /// [`Netns::named`] with IPv6 turned off before anything in it comes up, so that the
    /// only frames are the ones the test causes (no router solicitations, no duplicate
    /// address detection, no multicast listener reports).
    pub fn named_ipv4_only(name: String) -> Netns {
        Netns::named_with(name, false)
    }

    fn named_with(name: String, ipv6: bool) -> Netns {
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        Netns::create(name, ipv6)
    }

    fn create(name: String, ipv6: bool) -> Netns {
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        if !ipv6 {
            ns.exec(&[
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]);
        }
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NAME args...`, panicking on failure.
    pub fn ip(&self, args: &[&str]) -> Output {
        run(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// A command that runs `args` inside the namespace (`ip netns exec`), not started yet.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }

    /// Runs `args` inside the namespace, panicking on failure.
    pub fn exec(&self, args: &[&str]) -> Output {
        run(&mut self.cmd(args))
    }

    /// Runs `args` inside the namespace: whether it succeeded, and its stdout and stderr.
    pub fn try_exec(&self, args: &[&str]) -> (bool, String) {
        let out = self
            .cmd(args)
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
        self.ip(&["addr", "add", cidr, "dev", ifname]);
        self.ip(&["link", "set", ifname, "up"]);
    }

    /// Interface `ifname`'s received-frame counter.
    pub fn rx_packets(&self, ifname: &str) -> u64 {
        let out = self.exec(&[
            "cat",
            &format!("/sys/class/net/{ifname}/statistics/rx_packets"),
        ]);
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    /// Sends `count` echo requests to `dst` (one a second, each waited for up to 10 s; ping
    /// never resends one) and returns how many replies came back. Logs ping's output.
    pub fn ping(&self, dst: &str, count: u32) -> u32 {
        let out = self
            .cmd(&["ping", "-n", "-c", &count.to_string(), "-W", "10", dst])
            .output()
            .expect("ping runs");
        let text = String::from_utf8_lossy(&out.stdout);
        eprintln!(
            "[{}] ping {dst}: {text}{}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        ping_replies(&text).unwrap_or(0)
    }
}

/// How many replies ping's summary (`3 packets transmitted, 3 received, ...`) counts, if it
/// printed one.
pub fn ping_replies(ping_stdout: &str) -> Option<u32> {
    ping_stdout.lines().find_map(|l| {
        let (_, rest) = l.split_once("transmitted, ")?;
        rest.split_once(' ')?.0.parse().ok()
    })
}

impl Default for Netns {
    fn default() -> Netns {
        Netns::new()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// A veth pair: `host` stays in this namespace (the switch's end), `peer` is in a test
/// namespace. Both ends are up. Deleted on drop (deleting one end deletes the pair).
#[derive(Debug)]
pub struct Veth {
    /// The end the switch binds.
    pub host: String,
    /// The end inside the namespace.
    pub peer: String,
}

impl Veth {
    /// A pair with one rx and one tx queue on each end.
    pub fn new(ns: &Netns) -> Veth {
        Veth::create(ns, &[])
    }

    /// A pair with `queues` rx and tx queues on each end.
    pub fn with_queues(ns: &Netns, queues: u16) -> Veth {
        let q = queues.to_string();
        Veth::create(ns, &["numrxqueues", &q, "numtxqueues", &q])
    }

    /// Creates the pair with `opts` (link options) on both ends and brings both up.
    fn create(ns: &Netns, opts: &[&str]) -> Veth {
        let v = Veth {
            host: unique_name("vha"),
            peer: unique_name("vhb"),
        };
        let mut args = vec!["link", "add", &v.host];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["type", "veth", "peer", "name", &v.peer]);
        args.extend_from_slice(opts);
        args.extend_from_slice(&["netns", &ns.name]);
        ip(&args);
        ip(&["link", "set", &v.host, "up"]);
        ns.ip(&["link", "set", &v.peer, "up"]);
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

/// A veth pair with end `a` in namespace `na` and end `b` in `nb`, both up. It goes away
/// with either namespace.
pub fn veth_between(na: &Netns, a: &str, nb: &Netns, b: &str) {
    ip(&[
        "link", "add", a, "netns", &na.name, "type", "veth", "peer", "name", b, "netns", &nb.name,
    ]);
    na.ip(&["link", "set", a, "up"]);
    nb.ip(&["link", "set", b, "up"]);
}
