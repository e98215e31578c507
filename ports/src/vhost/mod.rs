//! vhost-user guest ports: a VM (or a DPDK virtio-user app) attaches through a Unix socket and
//! shares its memory; PMDs move frames straight between its virtqueues and switch buffers.
//!
//! Layers, one module each:
//! - the `vhost` crate owns the socket and checks every message's syntax;
//! - [`handler`] keeps the protocol state (features, memory table, vring configuration) and
//!   turns each change into new run state for the affected vrings;
//! - [`memory`] validates and maps the frontend's memory table (and its dirty-page log);
//! - [`split`] and [`packed`] are our two virtqueue formats, safe against a hostile driver:
//!   each its layout, descriptor chain walk and ring; [`virtq`] what they share (the
//!   configuration, errors, bounds, the primitives the net paths use, and [`Virtqueue`],
//!   either of them); [`net`] the virtio-net transmit and receive paths over both (header,
//!   mergeable buffers); [`queue`] keeps the old paths to them;
//! - `vring` is the per-vring state the connection thread and PMDs share, and `datapath` the
//!   [`RxQueue`]/[`TxQueue`] handles over it;
//! - `test_utils` (feature `test-utils`) is a guest-side driver for tests and benchmarks;
//! - `conn` runs the connection thread (server: listen and accept again after a disconnect;
//!   client: connect and retry with backoff forever).
//!
//! Queue mapping: `N` queue pairs are vrings `0..2N`; even vrings are the guest's receive
//! rings (the switch transmits into them), odd vrings its transmit rings (the switch receives
//! from them). Receive queue `q` is vring `2q + 1`; PMD `p` transmits into vring
//! `2 (p % N)`.
//!
//! A disconnect stops and unmaps only this port's rings; the queue handles stay valid, report
//! nothing while disconnected, and work again once the frontend is back.

mod conn;
mod datapath;
pub mod fds;
pub mod handler;
#[allow(unsafe_code)]
pub mod hostmem;
pub mod memory;
pub mod net;
pub mod packed;
pub mod queue;
#[allow(unsafe_code)]
pub mod sigbus;
pub mod split;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;
pub mod virtq;
mod vring;

use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::offload::TxOffloads;
use crate::port::{GuestFaults, Port, PortError, RxQueue, TxQueue};
pub use net::RingCounters;
pub use virtq::Virtqueue;
use vring::Vring;

/// The most queue pairs a port may have (vring indices travel in 8 bits in the protocol).
pub const MAX_QUEUE_PAIRS: u16 = 128;

/// Why a vhost-user port could not be created.
#[derive(Debug, thiserror::Error)]
pub enum VhostError {
    /// The queue pair count is 0 or above [`MAX_QUEUE_PAIRS`].
    #[error("{0} queue pairs requested (1..={MAX_QUEUE_PAIRS} allowed)")]
    QueuePairs(u16),
    /// The socket path exists and is not a socket (never unlinked).
    #[error("{0}: exists and is not a socket")]
    NotASocket(PathBuf),
    /// An OS call failed.
    #[error("{what}: {source}")]
    Os {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

impl VhostError {
    /// Always false: creating a port involves no guest input.
    pub fn is_guest_fault(&self) -> bool {
        false
    }
}

impl From<VhostError> for PortError {
    fn from(e: VhostError) -> PortError {
        let source = match e {
            VhostError::Os { source, .. } => source,
            other => std::io::Error::other(other.to_string()),
        };
        PortError::Os {
            what: "vhost-user port",
            source,
        }
    }
}

/// One vring's counters as [`VhostUserPort::stats`] reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VringStats {
    /// Vring index (even: guest receive, odd: guest transmit).
    pub index: u16,
    /// The frontend has started the ring and it is not broken.
    pub running: bool,
    /// The ring is currently broken by a driver fault.
    pub broken: bool,
    /// How many times the ring broke or was refused at start.
    pub times_broken: u64,
    /// The running ring is a packed ring (VIRTIO_F_RING_PACKED); false for a split one or
    /// none.
    pub packed: bool,
    /// Frames, bytes and drops.
    pub counters: RingCounters,
}

/// A port's state and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStats {
    /// A frontend is connected.
    pub connected: bool,
    /// Connections accepted or made so far.
    pub connections: u64,
    /// Protocol messages this port refused (bad memory table, unknown vring, ...).
    pub refused_messages: u64,
    /// Per vring.
    pub vrings: Vec<VringStats>,
}

/// Limits of one vhost-user port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VhostOptions {
    /// The most guest memory a frontend may map, all regions together; a larger memory table
    /// is refused ([`memory::MemoryError::TooLarge`]).
    pub max_guest_memory: u64,
    /// Offer VIRTIO_F_RING_PACKED (the packed ring, [`packed`]) to frontends that ask for it.
    /// The port offers it by default; the switch only when configured to
    /// (`switch.packed_ring`), until its packed ring is measured faster end to end than its split one.
    pub packed_ring: bool,
    /// Offer the checksum and TSO offloads in both directions ([`crate::offload`]): a guest
    /// may then send 64 KiB TCP frames with partial checksums, and receive them where it
    /// negotiated the same.
    pub offloads: bool,
}

impl Default for VhostOptions {
    fn default() -> VhostOptions {
        VhostOptions {
            max_guest_memory: memory::DEFAULT_MAX_GUEST_MEMORY,
            packed_ring: true,
            offloads: true,
        }
    }
}

/// How long dropping a port waits for its connection thread before leaving it to finish on
/// its own (it holds only this port's state, and ends once its socket call returns).
const JOIN_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// State shared by the port, its connection thread and its queue handles.
pub(crate) struct PortShared {
    pub queue_pairs: u16,
    pub vrings: Box<[Vring]>,
    stop: AtomicBool,
    /// A clone of the live connection, so dropping the port can unblock the thread.
    conn: Mutex<Option<UnixStream>>,
    connected: AtomicBool,
    connections: AtomicU64,
    pub refused: AtomicU64,
    /// A frontend's call fd blocked a PMD: this port takes no call fds any more (see
    /// [`fds`]). Stays set for the port's lifetime.
    calls_muted: AtomicBool,
    pub opts: VhostOptions,
    /// Faults counted as they happen (rare events, never per packet): read by
    /// [`Port::guest_faults`] without taking any vring lock.
    pub rings_broken: AtomicU64,
    pub memory_faults: AtomicU64,
    pub chains_over_cap: AtomicU64,
    pub interrupts_lost: AtomicU64,
    /// What the connected guest takes unfinished on its receive rings ([`TxOffloads`] as
    /// bits), read by transmit handles once per batch.
    guest_offloads: AtomicU8,
    rxq_taken: Mutex<Vec<bool>>,
    /// The socket path, naming the port in logs.
    pub socket: PathBuf,
    /// Connect messages, at most one a second for this port (a frontend can reconnect at
    /// will).
    pub connect_log: RateLimit,
    /// Disconnect and protocol-error messages, likewise, kept apart so a connect does not
    /// hide the disconnect that follows it.
    pub disconnect_log: RateLimit,
}

impl PortShared {
    fn lock_taken(&self) -> MutexGuard<'_, Vec<bool>> {
        self.rxq_taken.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records what the connected guest takes unfinished (set with its features, cleared
    /// when it goes).
    pub fn set_guest_offloads(&self, o: TxOffloads) {
        let bits =
            u8::from(o.csum) | u8::from(o.tso4) << 1 | u8::from(o.tso6) << 2 | u8::from(o.ecn) << 3;
        self.guest_offloads.store(bits, Ordering::Relaxed);
    }

    /// What the connected guest takes unfinished.
    pub fn guest_offloads(&self) -> TxOffloads {
        let bits = self.guest_offloads.load(Ordering::Relaxed);
        TxOffloads {
            csum: bits & 1 != 0,
            tso4: bits & 2 != 0,
            tso6: bits & 4 != 0,
            ecn: bits & 8 != 0,
        }
    }

    /// Called when a receive queue handle is dropped: the queue can be taken again.
    pub fn release_rxq(&self, vring: usize) {
        if let Some(t) = self.lock_taken().get_mut(vring / 2) {
            *t = false;
        }
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Stops taking call fds from frontends of this port (one blocked a PMD).
    pub(crate) fn mute_calls(&self) {
        self.calls_muted.store(true, Ordering::Relaxed);
    }

    /// True once a frontend's call fd blocked a PMD.
    pub(crate) fn calls_muted(&self) -> bool {
        self.calls_muted.load(Ordering::Relaxed)
    }
}

/// A vhost-user port (kind `"vhost-user"`).
pub struct VhostUserPort {
    shared: Arc<PortShared>,
    thread: Option<JoinHandle<()>>,
    /// The socket we created (server mode), removed on drop.
    socket: Option<PathBuf>,
}

impl VhostUserPort {
    /// Server mode: listens on `path` (replacing a stale socket there) for a frontend such as
    /// QEMU with `server=off`; after a disconnect it accepts the next one.
    pub fn server(path: &Path, queue_pairs: u16) -> Result<VhostUserPort, VhostError> {
        VhostUserPort::server_with(path, queue_pairs, VhostOptions::default())
    }

    /// [`VhostUserPort::server`] with options.
    pub fn server_with(
        path: &Path,
        queue_pairs: u16,
        opts: VhostOptions,
    ) -> Result<VhostUserPort, VhostError> {
        let shared = new_shared(path, queue_pairs, opts)?;
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => {
                std::fs::remove_file(path).map_err(|source| VhostError::Os {
                    what: "removing a stale socket",
                    source,
                })?;
            }
            Ok(_) => return Err(VhostError::NotASocket(path.to_owned())),
            Err(_) => {}
        }
        let listener = UnixListener::bind(path).map_err(|source| VhostError::Os {
            what: "binding the vhost-user socket",
            source,
        })?;
        let s = shared.clone();
        let thread = spawn(path, move || conn::server_loop(s, listener))?;
        Ok(VhostUserPort {
            shared,
            thread: Some(thread),
            socket: Some(path.to_owned()),
        })
    }

    /// Client mode: connects to the frontend's socket at `path` (QEMU `server=on`, DPDK
    /// `server=1`), retrying with backoff for as long as the port exists, and again after every
    /// disconnect.
    pub fn client(path: &Path, queue_pairs: u16) -> Result<VhostUserPort, VhostError> {
        VhostUserPort::client_with(path, queue_pairs, VhostOptions::default())
    }

    /// [`VhostUserPort::client`] with options.
    pub fn client_with(
        path: &Path,
        queue_pairs: u16,
        opts: VhostOptions,
    ) -> Result<VhostUserPort, VhostError> {
        let shared = new_shared(path, queue_pairs, opts)?;
        let s = shared.clone();
        let p = path.to_owned();
        let thread = spawn(path, move || conn::client_loop(s, p))?;
        Ok(VhostUserPort {
            shared,
            thread: Some(thread),
            socket: None,
        })
    }

    /// Number of queue pairs.
    pub fn queue_pairs(&self) -> u16 {
        self.shared.queue_pairs
    }

    /// True while a frontend is connected.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// Counters and state. Takes each vring's lock briefly (waits for a running burst).
    pub fn stats(&self) -> PortStats {
        let vrings = self
            .shared
            .vrings
            .iter()
            .map(|v| {
                let run = v.run();
                let broken = run.ring.as_ref().is_some_and(|r| r.fault().is_some());
                VringStats {
                    index: v.index,
                    running: run.ring.is_some() && !broken,
                    broken,
                    times_broken: run.broken,
                    packed: matches!(run.ring, Some(Virtqueue::Packed(_))),
                    counters: run.counters,
                }
            })
            .collect();
        PortStats {
            connected: self.is_connected(),
            connections: self.shared.connections.load(Ordering::Relaxed),
            refused_messages: self.shared.refused.load(Ordering::Relaxed),
            vrings,
        }
    }
}

fn new_shared(
    path: &Path,
    queue_pairs: u16,
    opts: VhostOptions,
) -> Result<Arc<PortShared>, VhostError> {
    if queue_pairs == 0 || queue_pairs > MAX_QUEUE_PAIRS {
        return Err(VhostError::QueuePairs(queue_pairs));
    }
    let vrings = (0..2 * queue_pairs)
        .map(Vring::new)
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|source| VhostError::Os {
            what: "epoll_create for a vring",
            source,
        })?;
    Ok(Arc::new(PortShared {
        queue_pairs,
        vrings: vrings.into_boxed_slice(),
        stop: AtomicBool::new(false),
        conn: Mutex::new(None),
        connected: AtomicBool::new(false),
        connections: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        calls_muted: AtomicBool::new(false),
        opts,
        rings_broken: AtomicU64::new(0),
        memory_faults: AtomicU64::new(0),
        chains_over_cap: AtomicU64::new(0),
        interrupts_lost: AtomicU64::new(0),
        guest_offloads: AtomicU8::new(0),
        rxq_taken: Mutex::new(vec![false; usize::from(queue_pairs)]),
        socket: path.to_path_buf(),
        connect_log: RateLimit::new(),
        disconnect_log: RateLimit::new(),
    }))
}

fn spawn(path: &Path, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, VhostError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::thread::Builder::new()
        .name(format!("vhu-{name}"))
        .spawn(f)
        .map_err(|source| VhostError::Os {
            what: "spawning the vhost-user connection thread",
            source,
        })
}

impl Port for VhostUserPort {
    fn kind(&self) -> &'static str {
        "vhost-user"
    }

    fn n_rxq(&self) -> usize {
        usize::from(self.shared.queue_pairs)
    }

    fn take_rxq(&mut self, q: usize) -> Result<Box<dyn RxQueue>, PortError> {
        let mut taken = self.shared.lock_taken();
        match taken.get_mut(q) {
            Some(t) if !*t => *t = true,
            _ => return Err(PortError::NoSuchRxq(q)),
        }
        drop(taken);
        Ok(Box::new(datapath::VhostRxq {
            shared: self.shared.clone(),
            vring: 2 * q + 1,
        }))
    }

    fn txq(&mut self, pmd: usize) -> Result<Box<dyn TxQueue>, PortError> {
        Ok(Box::new(datapath::VhostTxq {
            shared: self.shared.clone(),
            vring: 2 * (pmd % usize::from(self.shared.queue_pairs)),
        }))
    }

    fn connected(&self) -> Option<bool> {
        Some(self.is_connected())
    }

    fn guest_faults(&self) -> Option<GuestFaults> {
        let s = &self.shared;
        Some(GuestFaults {
            rings_broken: s.rings_broken.load(Ordering::Relaxed),
            memory_faults: s.memory_faults.load(Ordering::Relaxed),
            chains_over_cap: s.chains_over_cap.load(Ordering::Relaxed),
            interrupts_lost: s.interrupts_lost.load(Ordering::Relaxed),
            refused_messages: s.refused.load(Ordering::Relaxed),
            interrupts_muted: s.calls_muted(),
        })
    }
}

impl Drop for VhostUserPort {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(c) = self
            .shared
            .conn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        if let Some(t) = self.thread.take() {
            // Deleting a port never waits on its tenant: a connection thread that does not
            // end promptly is left to end by itself.
            let start = Instant::now();
            while !t.is_finished() && start.elapsed() < JOIN_WAIT {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            if t.is_finished() {
                let _ = t.join();
            } else {
                tracing::warn!(
                    socket = %self.shared.socket.display(),
                    "vhost-user connection thread still busy after {JOIN_WAIT:?}; left to end on its own"
                );
            }
        }
        if let Some(p) = &self.socket {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A per-call-site limiter for logs a guest can trigger: at most one line a second.
pub(crate) struct RateLimit {
    next_ms: AtomicU64,
}

impl RateLimit {
    /// A limiter that allows the first line at once.
    pub const fn new() -> RateLimit {
        RateLimit {
            next_ms: AtomicU64::new(0),
        }
    }

    /// True if a line may be logged now.
    pub fn allow(&self) -> bool {
        static START: OnceLock<Instant> = OnceLock::new();
        let now = START.get_or_init(Instant::now).elapsed().as_millis() as u64;
        let next = self.next_ms.load(Ordering::Relaxed);
        now >= next
            && self
                .next_ms
                .compare_exchange(next, now + 1000, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// `tracing::warn!`, at most once a second per call site.
macro_rules! warn_limited {
    ($($arg:tt)*) => {{
        static LIMIT: $crate::vhost::RateLimit = $crate::vhost::RateLimit::new();
        if LIMIT.allow() {
            tracing::warn!($($arg)*);
        }
    }};
}
pub(crate) use warn_limited;
