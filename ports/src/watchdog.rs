//! A watchdog for the few system calls a PMD makes on a tenant's file descriptors.
//!
//! The PMD signals a guest by writing its call eventfd. The fd is made non-blocking when it
//! arrives ([`crate::vhost`] checks that it is an eventfd and sets `O_NONBLOCK`), but
//! `O_NONBLOCK` belongs to the open file description, which the frontend shares: a hostile
//! virtio-user frontend can clear the flag again with `fcntl` and push the eventfd's counter to
//! its maximum, and the next `write` blocks the PMD (and every port it serves) for as long as
//! the frontend likes. No flag or pre-check closes that race, and an anonymous inode cannot be
//! reopened as a description of our own (`open("/proc/self/fd/N")` fails with `ENXIO`).
//!
//! The caller checks the flag just before the call (`fcntl(F_GETFL)` never blocks), which
//! catches a frontend that cleared it at any earlier time; what is left is the instant
//! between that check and the call. So such calls also run inside [`guarded`]: the calling thread's slot says "inside call number
//! N", two plain stores around the call. A watchdog thread (never a PMD) looks at every slot
//! each [`ROUND`]; a slot still inside the same call as one round before gets `SIGURG`, whose
//! handler does nothing and is installed without `SA_RESTART`, so the blocked call returns
//! `EINTR`. The caller then treats the fd as hostile (the vhost port stops signalling that
//! frontend: one tenant's interrupts, nothing else). A PMD is held up at most two rounds, once
//! per such frontend.
//!
//! `SIGURG` is ignored by default, so a stray one (after the call already returned) costs
//! nothing: at worst an `epoll_wait` ends early, which the PMD's idle loop allows.
//!
//! The watchdog costs nothing while the switch is idle: after [`IDLE_ROUNDS`] rounds without
//! a guarded call it parks, and the next guarded call wakes it before making its own call
//! (one flag load per call; the wake, a futex syscall, only on the first call after a
//! parking). A PMD that is sleeping makes no guarded calls, so an idle switch never wakes it.

use std::cell::Cell;
use std::sync::atomic::{fence, AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};
use std::time::Duration;

/// How often the watchdog looks at the slots: a PMD is held up at most two rounds (10 ms),
/// once per hostile frontend that wins the race described above. 200 wakeups a second of a
/// thread that scans a few slots cost about 0.05 % of a core.
pub const ROUND: Duration = Duration::from_millis(5);
/// Rounds without any guarded call after which the watchdog parks (100 ms).
pub const IDLE_ROUNDS: u32 = 20;
/// The most threads that can make guarded calls at once (PMDs, plus test threads).
const MAX_SLOTS: usize = 256;
/// The signal that interrupts a stuck call.
const SIGNAL: libc::c_int = libc::SIGURG;

/// One thread's state, on a cache line of its own: only that thread writes `seq`.
#[repr(align(64))]
struct Slot {
    /// The owner's kernel thread id; 0 while free.
    tid: AtomicI32,
    /// Odd while inside a guarded call; bumped on entry and on exit.
    seq: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    tid: AtomicI32::new(0),
    seq: AtomicU64::new(0),
};
static SLOTS: [Slot; MAX_SLOTS] = [FREE; MAX_SLOTS];
static START: Once = Once::new();
/// One past the highest slot ever claimed: the watchdog scans no further.
static HIGH: AtomicUsize = AtomicUsize::new(0);
/// The watchdog is parked (or about to): the next guarded call wakes it.
static PARKED: AtomicBool = AtomicBool::new(false);
/// The watchdog thread, to wake it.
static THREAD: OnceLock<std::thread::Thread> = OnceLock::new();
/// Calls the watchdog interrupted, for tests and logs.
static INTERRUPTED: AtomicU64 = AtomicU64::new(0);

/// The calling thread's slot; released when the thread exits.
struct Owned {
    slot: Option<&'static Slot>,
    seq: Cell<u64>,
}

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(s) = self.slot {
            s.seq.store(0, Ordering::Relaxed);
            s.tid.store(0, Ordering::Release);
        }
    }
}

thread_local! {
    static MINE: Owned = Owned { slot: claim(), seq: Cell::new(0) };
}

/// Takes a free slot for this thread (and starts the watchdog once). `None` when every slot
/// is taken: the call then runs unwatched, as it would without this module.
fn claim() -> Option<&'static Slot> {
    START.call_once(start);
    // SAFETY: gettid has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() };
    let slot = SLOTS.iter().position(|s| {
        s.tid
            .compare_exchange(0, tid, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    });
    if let Some(i) = slot {
        HIGH.fetch_max(i + 1, Ordering::AcqRel);
    }
    let slot = slot.map(|i| &SLOTS[i]);
    if slot.is_none() {
        tracing::warn!("watchdog: no free slot; this thread's calls on tenant fds run unwatched");
    }
    slot
}

/// Runs `call` (one system call on a tenant's fd) where the watchdog interrupts it with
/// `EINTR` if it blocks for more than a round. Costs two plain stores to this thread's own
/// cache line, a fence and a load of a flag that changes only when the watchdog parks.
#[inline]
pub fn guarded<T>(call: impl FnOnce() -> T) -> T {
    MINE.with(|m| {
        let Some(slot) = m.slot else {
            return call();
        };
        let s = m.seq.get();
        slot.seq.store(s + 1, Ordering::Relaxed);
        // Pairs with the fence in `watch` before it parks: either it sees this call in
        // flight and stays awake, or this load sees it parked and wakes it.
        fence(Ordering::SeqCst);
        if PARKED.load(Ordering::Relaxed) {
            wake();
        }
        let r = call();
        slot.seq.store(s + 2, Ordering::Relaxed);
        m.seq.set(s + 2);
        r
    })
}

#[cold]
fn wake() {
    if PARKED.swap(false, Ordering::AcqRel) {
        if let Some(t) = THREAD.get() {
            t.unpark();
        }
    }
}

/// True while the watchdog is parked (nothing guarded ran for [`IDLE_ROUNDS`] rounds).
pub fn parked() -> bool {
    PARKED.load(Ordering::Relaxed)
}

/// How many calls the watchdog has interrupted since the process started.
pub fn interrupted() -> u64 {
    INTERRUPTED.load(Ordering::Relaxed)
}

extern "C" fn on_signal(_: libc::c_int) {}

fn start() {
    // SAFETY: a zeroed sigaction is a valid value to fill in; the handler does nothing, so it
    // is async-signal-safe; no SA_RESTART, so a blocked system call returns EINTR.
    let installed = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        libc::sigaction(SIGNAL, &sa, std::ptr::null_mut()) == 0
    };
    if !installed {
        tracing::warn!("watchdog: cannot install the SIGURG handler; calls run unwatched");
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(watch);
    if let Err(e) = spawned {
        tracing::warn!("watchdog: cannot start its thread ({e}); calls run unwatched");
    }
}

fn watch() {
    let _ = THREAD.set(std::thread::current());
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let mut seen = [0u64; MAX_SLOTS];
    let mut quiet = 0u32;
    loop {
        std::thread::sleep(ROUND);
        let high = HIGH.load(Ordering::Acquire);
        if quiet >= IDLE_ROUNDS {
            // Nothing guarded ran for a while: park until a guarded call wakes us. The flag
            // goes up first, then the slots are looked at once more (the fence pairs with
            // the one in `guarded`), so a call that began meanwhile is never missed.
            PARKED.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            let busy = SLOTS[..high]
                .iter()
                .enumerate()
                .any(|(i, s)| s.seq.load(Ordering::Relaxed) != seen[i]);
            if !busy {
                while PARKED.load(Ordering::Acquire) {
                    std::thread::park();
                }
            }
            PARKED.store(false, Ordering::Relaxed);
            quiet = 0;
            continue;
        }
        let mut active = false;
        for (i, slot) in SLOTS[..high].iter().enumerate() {
            let tid = slot.tid.load(Ordering::Acquire);
            let seq = slot.seq.load(Ordering::Relaxed);
            active |= seq != seen[i];
            if tid != 0 && seq % 2 == 1 && seq == seen[i] {
                // Counted first: the interrupted call may return before this thread runs on.
                INTERRUPTED.fetch_add(1, Ordering::Relaxed);
                // SAFETY: tgkill only sends a signal; a thread that has exited meanwhile
                // (and whose id was reused in this process) gets a SIGURG it ignores.
                unsafe {
                    libc::syscall(libc::SYS_tgkill, pid, tid, SIGNAL);
                }
                // Once per call: the next round must see a new call number to fire again.
                seen[i] = 0;
                continue;
            }
            seen[i] = seq;
        }
        quiet = if active { 0 } else { quiet + 1 };
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::time::Instant;

    /// A call that would block forever (a read on an empty pipe nobody writes) returns EINTR
    /// within a few rounds, and a quick call is never interrupted.
    #[test]
    fn a_blocked_call_is_interrupted() {
        let (r, _w) = std::io::pipe().unwrap();
        let t = Instant::now();
        let before = interrupted();
        let err = guarded(|| {
            let mut b = [0u8; 1];
            // SAFETY: reads into a valid local buffer from an fd we own.
            unsafe { libc::read(r.as_raw_fd(), b.as_mut_ptr().cast(), 1) }
        });
        assert_eq!(err, -1);
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EINTR)
        );
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(interrupted() > before);
        for _ in 0..1000 {
            assert_eq!(guarded(|| 7), 7);
        }
        // Idle: the watchdog parks, and the next guarded call wakes it in time.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !parked() {
            assert!(Instant::now() < deadline, "the watchdog never parked");
            std::thread::sleep(ROUND);
        }
        let t = Instant::now();
        let err = guarded(|| {
            let mut b = [0u8; 1];
            // SAFETY: reads into a valid local buffer from an fd we own.
            unsafe { libc::read(r.as_raw_fd(), b.as_mut_ptr().cast(), 1) }
        });
        assert_eq!(err, -1, "interrupted after parking too");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
}
