//! The tap device itself: `/dev/net/tun` opened with `IFF_TAP | IFF_NO_PI`, non-blocking, and
//! plain `read`/`write` on it (the fallback when io_uring is unavailable).

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

/// An open tap interface. The interface lives as long as this fd unless it was made
/// persistent by someone else.
pub struct TapDev {
    fd: OwnedFd,
}

impl TapDev {
    /// Attaches to tap interface `name`, creating it if absent.
    pub fn open(name: &str) -> io::Result<TapDev> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name:?} is not a valid interface name (1 to 15 bytes)"),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| io::Error::new(e.kind(), format!("/dev/net/tun: {e}")))?;
        let fd = OwnedFd::from(file);
        // SAFETY: ifreq is plain data (a name and a union of integers and pointers); all
        // zeroes is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes one `struct ifreq`, which `req` is; the name is
        // NUL-terminated (checked length < IFNAMSIZ, rest zeroed).
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("TUNSETIFF {name:?} (exists and is not a tap?): {e}"),
            ));
        }
        Ok(TapDev { fd })
    }

    /// The fd (readable when frames wait).
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Reads one frame into `buf`; an empty queue is `WouldBlock`.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is a live, writable buffer of the length given.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Writes one frame.
    pub fn write(&self, frame: &[u8]) -> io::Result<usize> {
        // SAFETY: `frame` is a live buffer of the length given.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}
