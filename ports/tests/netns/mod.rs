//! Test fixtures for uplink ports: network namespaces, veth pairs and a raw AF_PACKET socket
//! opened inside a namespace, each cleaned up on drop (also when a test fails).
#![allow(dead_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// An ethertype from the IEEE "local experimental" range: nothing else on the link uses it.
pub const TEST_ETHERTYPE: u16 = 0x88b5;

/// Runs `ip args...`, panicking with its stderr on failure (or naming the missing package).
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip` (package iproute2 is required): {e}"));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Output of `ip args...`.
pub fn ip_output(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip` (package iproute2 is required): {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A short name unique to this test process and call: `{prefix}{pid}{n}` (<= 15 chars).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}{n}", std::process::id() % 100_000)
}

/// A network namespace, deleted on drop.
pub struct Netns {
    /// Its name under /run/netns.
    pub name: String,
}

impl Netns {
    /// Creates a namespace with a unique name.
    pub fn new() -> Netns {
        let name = unique("vswt");
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Runs a command inside the namespace, panicking on failure.
    pub fn exec(&self, cmd: &[&str]) {
        let mut args = vec!["netns", "exec", &self.name];
        args.extend_from_slice(cmd);
        ip(&args);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A veth pair: `host` stays in this namespace, `peer` lives in `ns`. Deleted on drop.
pub struct Veth {
    /// The end the switch binds.
    pub host: String,
    /// The end inside the namespace.
    pub peer: String,
}

impl Veth {
    /// Creates the pair and brings both ends up.
    pub fn new(ns: &Netns) -> Veth {
        let host = unique("vxa");
        let peer = unique("vxb");
        ip(&[
            "link", "add", &host, "type", "veth", "peer", "name", &peer, "netns", &ns.name,
        ]);
        let v = Veth { host, peer };
        ip(&["link", "set", &v.host, "up"]);
        ns.exec(&["ip", "link", "set", &v.peer, "up"]);
        v
    }
}

impl Veth {
    /// A pair with `queues` rx and tx queues on each end.
    pub fn with_queues(ns: &Netns, queues: u16) -> Veth {
        let host = unique("vxa");
        let peer = unique("vxb");
        let q = queues.to_string();
        ip(&[
            "link",
            "add",
            &host,
            "numrxqueues",
            &q,
            "numtxqueues",
            &q,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "numrxqueues",
            &q,
            "numtxqueues",
            &q,
            "netns",
            &ns.name,
        ]);
        let v = Veth { host, peer };
        ip(&["link", "set", &v.host, "up"]);
        ns.exec(&["ip", "link", "set", &v.peer, "up"]);
        v
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// A raw socket on one interface, bound inside a namespace (or this one, with `ns` = None).
pub struct PacketSocket {
    fd: OwnedFd,
}

fn check(r: libc::c_int, what: &str) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::new(
            io::Error::last_os_error().kind(),
            format!("{what}: {}", io::Error::last_os_error()),
        ))
    } else {
        Ok(r)
    }
}

impl PacketSocket {
    /// Opens an AF_PACKET socket for all ethertypes, bound to `ifname` in namespace `ns`.
    pub fn open(ns: Option<&Netns>, ifname: &str) -> PacketSocket {
        let ns_path = ns.map(|n| format!("/run/netns/{}", n.name));
        let name = ifname.to_string();
        let ifname = std::ffi::CString::new(ifname).unwrap();
        // Enter the namespace on a thread of its own, so this thread's namespace is untouched;
        // the socket keeps the namespace it was created in.
        std::thread::spawn(move || -> io::Result<PacketSocket> {
            if let Some(path) = ns_path {
                let f = std::fs::File::open(&path)?;
                check(
                    // SAFETY: setns on a namespace fd we just opened; affects only this thread.
                    unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) },
                    "setns",
                )?;
            }
            let proto = (libc::ETH_P_ALL as u16).to_be();
            // SAFETY: plain socket(2) call; the result is checked.
            let fd = check(
                unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) },
                "socket(AF_PACKET)",
            )?;
            // SAFETY: a new fd nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            // SAFETY: if_nametoindex reads a NUL-terminated string we own.
            let ifindex = unsafe { libc::if_nametoindex(ifname.as_ptr()) };
            if ifindex == 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto;
            sll.sll_ifindex = ifindex as i32;
            check(
                // SAFETY: `sll` is a live sockaddr_ll of the size given.
                unsafe {
                    libc::bind(
                        fd.as_raw_fd(),
                        (&sll as *const libc::sockaddr_ll).cast(),
                        std::mem::size_of::<libc::sockaddr_ll>() as u32,
                    )
                },
                "bind(AF_PACKET)",
            )?;
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 100_000,
            };
            check(
                // SAFETY: `tv` is a live timeval of the size given.
                unsafe {
                    libc::setsockopt(
                        fd.as_raw_fd(),
                        libc::SOL_SOCKET,
                        libc::SO_RCVTIMEO,
                        (&tv as *const libc::timeval).cast(),
                        std::mem::size_of::<libc::timeval>() as u32,
                    )
                },
                "SO_RCVTIMEO",
            )?;
            // Room for a whole test's frames: the test reads only after sending them all.
            let size: libc::c_int = 16 << 20;
            check(
                // SAFETY: `size` is a live c_int of the size given.
                unsafe {
                    libc::setsockopt(
                        fd.as_raw_fd(),
                        libc::SOL_SOCKET,
                        libc::SO_RCVBUFFORCE,
                        (&size as *const libc::c_int).cast(),
                        std::mem::size_of::<libc::c_int>() as u32,
                    )
                },
                "SO_RCVBUFFORCE",
            )?;
            Ok(PacketSocket { fd })
        })
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("AF_PACKET socket on {name:?}: {e}"))
    }

    /// Sends one frame.
    pub fn send(&self, frame: &[u8]) {
        // SAFETY: `frame` is a live buffer of the length given.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            n,
            frame.len() as isize,
            "send: {}",
            io::Error::last_os_error()
        );
    }

    /// Receives frames with [`TEST_ETHERTYPE`] until `want` arrived or `limit` passed (a
    /// guard against hanging, not a timing assertion).
    pub fn recv_test_frames(&self, want: usize, limit: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        while got.len() < want && Instant::now() < deadline {
            // SAFETY: `buf` is a live buffer of the length given.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n > 14 && buf[12..14] == TEST_ETHERTYPE.to_be_bytes() {
                got.push(buf[..n as usize].to_vec());
            }
        }
        got
    }
}

/// A test frame: broadcast-free unicast addresses, [`TEST_ETHERTYPE`], a payload of `len`
/// bytes derived from `seq`.
pub fn test_frame(src: [u8; 6], dst: [u8; 6], seq: u32, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&TEST_ETHERTYPE.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend((4..len).map(|i| (i as u32).wrapping_mul(31).wrapping_add(seq) as u8));
    f
}
