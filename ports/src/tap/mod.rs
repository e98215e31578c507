//! Tap ports: a kernel tap interface for host-stack connectivity.
//!
//! The port opens (creating if absent) tap interface `interface` with `IFF_TAP | IFF_NO_PI`,
//! non-blocking. Bursts go through io_uring: a burst of reads or writes is one
//! `io_uring_enter` ([`uring`]); where io_uring is unavailable (seccomp, the
//! `kernel.io_uring_disabled` sysctl) the port falls back to plain `read`/`write` and logs it
//! once. The rx queue's wakeup fd is the tap fd itself. Bringing the interface up and giving
//! it addresses is the host's business (`ip link set IF up`).

#[allow(unsafe_code)]
pub mod dev;
#[allow(unsafe_code)]
pub mod uring;

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tracing::{info, warn};

use crate::packet::Packet;
use crate::port::{Port, PortError, RxQueue, TxQueue, BURST};
use crate::vhost::warn_limited;
use dev::TapDev;
use uring::Batch;

/// The largest frame read from a tap (a 9000-byte MTU plus Ethernet and VLAN headers, with
/// room to spare); longer frames arrive truncated and are dropped.
pub const TAP_FRAME_MAX: usize = 10 * 1024;

/// Opens a burst ring, or logs (once per process) that the port falls back to plain I/O.
fn batch() -> Option<Batch> {
    static LOGGED: AtomicBool = AtomicBool::new(false);
    match Batch::new() {
        Ok(b) => Some(b),
        Err(e) => {
            if !LOGGED.swap(true, Ordering::Relaxed) {
                warn!(error = %e, "io_uring unavailable; tap ports use plain read/write");
            }
            None
        }
    }
}

/// True when this process can create an io_uring (so tap queues batch through it).
pub fn io_uring_available() -> bool {
    Batch::new().is_ok()
}

/// A tap port: one rx queue, a tx handle per PMD (each with its own io_uring).
pub struct TapPort {
    dev: Arc<TapDev>,
    interface: Arc<str>,
    rxq_taken: bool,
    /// Test hook: do not use io_uring even where it works.
    plain_io: bool,
}

impl TapPort {
    /// Attaches to tap interface `interface`, creating it if absent.
    pub fn open(interface: &str) -> Result<TapPort, PortError> {
        let dev = TapDev::open(interface).map_err(|source| PortError::Os {
            what: "tap port",
            source,
        })?;
        info!(interface, "tap port open");
        Ok(TapPort {
            dev: Arc::new(dev),
            interface: interface.into(),
            rxq_taken: false,
            plain_io: false,
        })
    }

    /// Like [`TapPort::open`], but queues use plain `read`/`write` (the fallback path), for
    /// testing it where io_uring works.
    pub fn open_plain_io(interface: &str) -> Result<TapPort, PortError> {
        let mut p = TapPort::open(interface)?;
        p.plain_io = true;
        Ok(p)
    }

    fn batch(&self) -> Option<Batch> {
        if self.plain_io {
            None
        } else {
            batch()
        }
    }
}

impl Port for TapPort {
    fn kind(&self) -> &'static str {
        "tap"
    }

    fn n_rxq(&self) -> usize {
        1
    }

    fn take_rxq(&mut self, q: usize) -> Result<Box<dyn RxQueue>, PortError> {
        if q != 0 || self.rxq_taken {
            return Err(PortError::NoSuchRxq(q));
        }
        self.rxq_taken = true;
        Ok(Box::new(TapRxq {
            dev: self.dev.clone(),
            interface: self.interface.clone(),
            uring: self.batch(),
            bufs: (0..BURST).map(|_| vec![0; TAP_FRAME_MAX]).collect(),
            res: [0; BURST],
            reads: 1,
        }))
    }

    fn txq(&mut self, _pmd: usize) -> Result<Box<dyn TxQueue>, PortError> {
        Ok(Box::new(TapTxq {
            dev: self.dev.clone(),
            interface: self.interface.clone(),
            uring: self.batch(),
            res: [0; BURST],
        }))
    }
}

/// True when the kernel refused `RWF_NOWAIT` on this tap (a tun driver without nowait
/// support): nothing was transferred, and the queue must use plain I/O from now on.
fn nowait_refused(res: &[i32], interface: &str) -> bool {
    let refused = res.contains(&-libc::EOPNOTSUPP);
    if refused {
        warn!(
            interface,
            "tap: no nowait I/O through io_uring; using plain read/write"
        );
    }
    refused
}

struct TapRxq {
    dev: Arc<TapDev>,
    interface: Arc<str>,
    uring: Option<Batch>,
    bufs: Vec<Vec<u8>>,
    res: [i32; BURST],
    /// Reads to issue next burst: doubles while every read returns a frame, drops back to
    /// what arrived plus one otherwise, so an idle port costs one read per poll.
    reads: usize,
}

impl TapRxq {
    /// Fills `res[..n]` with read results, through io_uring or plain reads.
    fn read(&mut self, n: usize) {
        if let Some(u) = &mut self.uring {
            u.read(
                self.dev.fd().as_raw_fd(),
                &mut self.bufs[..n],
                &mut self.res[..n],
            );
            if !nowait_refused(&self.res[..n], &self.interface) {
                return;
            }
            // Refused reads transferred nothing: read plainly from now on.
            self.uring = None;
        }
        for i in 0..n {
            self.res[i] = match self.dev.read(&mut self.bufs[i]) {
                Ok(len) => len as i32,
                Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
            };
            if self.res[i] < 0 {
                // Nothing more queued: skip the remaining reads.
                self.res[i + 1..n].fill(-libc::EAGAIN);
                break;
            }
        }
    }
}

impl RxQueue for TapRxq {
    fn rx_burst(&mut self, pkts: &mut [Packet]) -> usize {
        let n = self.reads.min(pkts.len()).min(BURST);
        if n == 0 {
            return 0;
        }
        self.read(n);
        let mut got = 0;
        let mut frames = 0;
        for i in 0..n {
            let r = self.res[i];
            if r <= 0 {
                if r != -libc::EAGAIN && r != 0 {
                    let e = io::Error::from_raw_os_error(-r);
                    warn_limited!(interface = %self.interface, error = %e, "tap read failed");
                }
                continue;
            }
            frames += 1;
            let len = r as usize;
            if len >= TAP_FRAME_MAX || !pkts[got].copy_from(&self.bufs[i][..len]) {
                warn_limited!(interface = %self.interface, len, "tap: dropped an oversized frame");
                continue;
            }
            got += 1;
        }
        self.reads = if frames == n {
            (n * 2).min(BURST)
        } else {
            (frames + 1).min(BURST)
        };
        got
    }

    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.dev.fd().as_fd())
    }

    fn enable_notify(&mut self) -> bool {
        // The tap fd is level triggered: readable while frames are queued, and the PMD polls
        // once more after sleeping. Nothing to arm.
        true
    }
}

struct TapTxq {
    dev: Arc<TapDev>,
    interface: Arc<str>,
    uring: Option<Batch>,
    res: [i32; BURST],
}

impl TxQueue for TapTxq {
    fn tx_burst(&mut self, pkts: &mut [Packet]) -> usize {
        let mut sent = 0;
        for chunk in pkts.chunks(BURST) {
            let n = chunk.len();
            if let Some(u) = &mut self.uring {
                u.write(self.dev.fd().as_raw_fd(), chunk, &mut self.res[..n]);
                if nowait_refused(&self.res[..n], &self.interface) {
                    self.uring = None;
                }
            } else {
                self.res[..n].fill(-libc::EOPNOTSUPP);
            }
            // Plain writes: the fallback, and any write io_uring refused.
            for (r, p) in self.res.iter_mut().zip(chunk) {
                if *r == -libc::EOPNOTSUPP {
                    *r = match self.dev.write(p.data()) {
                        Ok(len) => len as i32,
                        Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
                    };
                }
            }
            for &r in &self.res[..n] {
                if r >= 0 {
                    sent += 1;
                } else {
                    let e = io::Error::from_raw_os_error(-r);
                    warn_limited!(interface = %self.interface, error = %e, "tap write failed (is the interface up?)");
                }
            }
        }
        sent
    }
}
