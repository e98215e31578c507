//! A raw AF_PACKET socket on one interface, opened inside a network namespace: the far end
//! a test sends frames from and reads them back at, byte for byte.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::frames::TEST_ETHERTYPE;
use crate::netns::Netns;

/// A raw socket on one interface, bound inside a namespace (or this one, with `ns` = None).
#[derive(Debug)]
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
        self.recv_frames(want, limit, |f| {
            f.len() > 14 && f[12..14] == TEST_ETHERTYPE.to_be_bytes()
        })
    }

    /// Receives the frames `keep` accepts, in the order they arrive, until `want` arrived or
    /// `limit` passed (a guard against hanging, not a timing assertion). The socket sees
    /// every frame the interface sends or receives; `keep` picks the test's own.
    pub fn recv_frames(
        &self,
        want: usize,
        limit: Duration,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        while got.len() < want && Instant::now() < deadline {
            // SAFETY: `buf` is a live buffer of the length given.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n > 0 && keep(&buf[..n as usize]) {
                got.push(buf[..n as usize].to_vec());
            }
        }
        got
    }
}
