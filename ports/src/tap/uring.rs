//! A burst of tap reads or writes in one `io_uring_enter`.
//!
//! Every call pushes its operations, submits them and waits for all their completions before
//! returning, so no buffer is ever in use by the kernel after the call: the borrow of the
//! buffers for the call is the whole ownership story. Reads carry `RWF_NOWAIT` and the tap
//! fd is non-blocking, so each operation completes at once (with data or `-EAGAIN`).

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, types, IoUring};

use crate::packet::Packet;
use crate::port::BURST;

/// An io_uring sized for one burst.
pub struct Batch {
    ring: IoUring,
}

impl Batch {
    /// Creates the ring; fails where io_uring is missing or disabled (seccomp, sysctl).
    pub fn new() -> io::Result<Batch> {
        Ok(Batch {
            ring: IoUring::new(2 * BURST as u32)?,
        })
    }

    /// Reads one frame into each of `bufs` (at most [`BURST`]); `res[i]` gets the byte count
    /// or `-errno` of read `i`.
    pub fn read(&mut self, fd: RawFd, bufs: &mut [Vec<u8>], res: &mut [i32]) {
        let n = bufs.len().min(BURST).min(res.len());
        {
            let mut sq = self.ring.submission();
            for (i, b) in bufs[..n].iter_mut().enumerate() {
                // RWF_NOWAIT: return -EAGAIN when nothing is queued. Without it io_uring
                // ignores the fd's O_NONBLOCK for files that support nowait I/O (tun does)
                // and parks the read until a frame arrives.
                let e = opcode::Read::new(types::Fd(fd), b.as_mut_ptr(), b.len() as u32)
                    .rw_flags(libc::RWF_NOWAIT)
                    .build()
                    .user_data(i as u64);
                // SAFETY: `b` stays alive and is not touched by us until its completion is
                // reaped in `finish` below, before this function returns. The ring has 2 *
                // BURST slots and is empty on entry, so the push cannot fail.
                let _ = unsafe { sq.push(&e) };
            }
        }
        self.finish(n, res);
    }

    /// Writes each of `pkts` (at most [`BURST`]); `res[i]` gets the byte count or `-errno`.
    pub fn write(&mut self, fd: RawFd, pkts: &[Packet], res: &mut [i32]) {
        let n = pkts.len().min(BURST).min(res.len());
        {
            let mut sq = self.ring.submission();
            for (i, p) in pkts[..n].iter().enumerate() {
                let d = p.data();
                let e = opcode::Write::new(types::Fd(fd), d.as_ptr(), d.len() as u32)
                    .rw_flags(libc::RWF_NOWAIT)
                    .build()
                    .user_data(i as u64);
                // SAFETY: as in `read`: `pkts` is borrowed for the whole call and every
                // write's completion is reaped before returning.
                let _ = unsafe { sq.push(&e) };
            }
        }
        self.finish(n, res);
    }

    /// Submits what was pushed and collects exactly `n` completions into `res`.
    fn finish(&mut self, n: usize, res: &mut [i32]) {
        let mut got = 0;
        let mut errors = 0;
        while got < n {
            match self.ring.submit_and_wait(n - got) {
                Ok(_) => {}
                Err(e) => {
                    errors += 1;
                    // EINTR/EAGAIN/EBUSY are transient; anything else means the ring itself
                    // is broken, and buffers might still be in the kernel's hands: stop the
                    // process rather than let them be reused.
                    if errors > 1000 {
                        tracing::error!("io_uring submit keeps failing ({e}); aborting");
                        std::process::abort();
                    }
                }
            }
            for cqe in self.ring.completion() {
                let i = cqe.user_data() as usize;
                if i < res.len() {
                    res[i] = cqe.result();
                }
                got += 1;
            }
        }
    }
}
