//! The fds a frontend hands over with `SET_VRING_KICK`, `SET_VRING_CALL` and `SET_VRING_ERR`:
//! each must be an eventfd, and is made non-blocking the moment it arrives.
//!
//! What the switch then does with them never waits on the tenant:
//! - kick fds are never read: they sit edge-triggered in the vring's own epoll set
//!   ([`super::vring::Vring::wake`]), and a PMD consumes the wakeup from that set, which is
//!   ours (a frontend that drains or blocks its eventfd cannot make us wait);
//! - call fds are written by the PMD after checking that `O_NONBLOCK` is still set, under
//!   [`crate::watchdog::guarded`]: a full counter loses one interrupt (counted); a frontend
//!   that turns `O_NONBLOCK` off again behind our back (the flag lives in the description it
//!   shares) is caught by the check, or, if it wins the race between check and write, by the
//!   watchdog; either way the port stops signalling that frontend;
//! - err fds are closed at once (the switch reports nothing through them).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};

use nix::fcntl::{fcntl, FcntlArg, OFlag};

/// Why an fd from the frontend was refused.
#[derive(Debug, thiserror::Error)]
pub enum FdError {
    /// The fd is not an eventfd (a pipe, a socket, a file...).
    #[error("{what} fd is {kind}, not an eventfd")]
    NotEventfd {
        /// Which message's fd.
        what: &'static str,
        /// What it is instead (its `/proc/self/fd` link).
        kind: String,
    },
    /// Looking at the fd or setting its flags failed.
    #[error("{what} fd: {source}")]
    Os {
        /// Which message's fd.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

/// Accepts `file` as the eventfd `what` needs and sets `O_NONBLOCK` on it.
pub(crate) fn eventfd(what: &'static str, file: File) -> Result<File, FdError> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|source| FdError::Os { what, source })?;
    if link.as_os_str() != "anon_inode:[eventfd]" {
        return Err(FdError::NotEventfd {
            what,
            kind: link.to_string_lossy().into_owned(),
        });
    }
    let os = |e: nix::errno::Errno| FdError::Os {
        what,
        source: e.into(),
    };
    let flags = OFlag::from_bits_truncate(fcntl(file.as_fd(), FcntlArg::F_GETFL).map_err(os)?);
    if !flags.contains(OFlag::O_NONBLOCK) {
        fcntl(file.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map_err(os)?;
    }
    Ok(file)
}

#[cfg(test)]
mod test {
    use super::*;
    use nix::sys::eventfd::{EfdFlags, EventFd};
    use std::os::fd::OwnedFd;

    #[test]
    fn eventfds_pass_and_become_non_blocking() {
        let efd = EventFd::from_value_and_flags(0, EfdFlags::empty()).unwrap();
        let f = File::from(OwnedFd::from(efd));
        let f = eventfd("call", f).unwrap();
        let flags = fcntl(f.as_fd(), FcntlArg::F_GETFL).unwrap();
        assert!(OFlag::from_bits_truncate(flags).contains(OFlag::O_NONBLOCK));
    }

    #[test]
    fn pipes_and_files_are_refused() {
        let (_r, w) = std::io::pipe().unwrap();
        let e = eventfd("call", File::from(OwnedFd::from(w))).unwrap_err();
        assert!(e.to_string().contains("pipe:"), "{e}");
        let e = eventfd("kick", tempfile::tempfile().unwrap()).unwrap_err();
        assert!(matches!(e, FdError::NotEventfd { what: "kick", .. }), "{e}");
    }
}
