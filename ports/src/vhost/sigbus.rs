//! Guest memory that vanishes under the switch ends that guest's port, not the switch.
//!
//! A frontend shares its memory as files (memfds, tmpfs or hugetlbfs files). A memfd created
//! with sealing allowed gets `F_SEAL_SHRINK` ([`super::memory`]), but the others cannot be
//! sealed, and hugetlbfs files are what QEMU and DPDK use in the usual deployment. Truncate
//! such a file after `SET_MEM_TABLE` and the next PMD access to the lost pages raises
//! `SIGBUS`, which by default kills the process and every tenant's traffic with it.
//!
//! Of the two known ways out (repair the mapping from the handler, or route every copy
//! through a routine whose faults the handler turns into an error return, the kernel's
//! exception-table technique), this module repairs: every mapped guest region is registered
//! here; the `SIGBUS` handler finds the region holding the faulting address, maps anonymous
//! zeroed memory over the faulting page (`mmap(MAP_FIXED)` is a plain system call, safe in
//! a handler) and raises the region's poison flag. The faulting instruction then completes on
//! the new page: reads see zeros, writes land in memory nobody shares. After the burst the
//! ring sees the flag and breaks ([`super::split::QueueError::MemoryFault`]), so that port
//! stops, counted and logged, and the frontend must set up its memory again. Repairing was
//! chosen because it costs the packet path nothing: the copies stay plain `memcpy`s the
//! compiler can inline and vectorise, where an exception-table copy must be an out-of-line
//! routine with known fault points, on every access.
//!
//! A fault outside every registered region is not ours: the previous handler runs (Rust's
//! runtime reports stack overflows through it) or, if there was none, the default action
//! kills the process as before.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};

/// The most regions registered at once (64 per memory table, plus dirty logs).
const MAX_REGIONS: usize = 4096;

/// One registered mapping. Written under [`LOCK`] with a sequence number the handler checks
/// (odd while being changed), read lock-free by the handler.
struct Slot {
    seq: AtomicU64,
    start: AtomicUsize,
    len: AtomicUsize,
    page: AtomicUsize,
    poison: AtomicPtr<AtomicBool>,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    seq: AtomicU64::new(0),
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    page: AtomicUsize::new(0),
    poison: AtomicPtr::new(std::ptr::null_mut()),
};
static SLOTS: [Slot; MAX_REGIONS] = [EMPTY; MAX_REGIONS];
/// Serialises registration (never taken by the handler).
static LOCK: Mutex<()> = Mutex::new(());
static INSTALL: Once = Once::new();
/// Faults repaired since the process started.
static REPAIRED: AtomicU64 = AtomicU64::new(0);
/// The handler that was installed before ours (Rust's runtime installs one).
static mut PREVIOUS: Option<libc::sigaction> = None;

/// A region's registration; dropping it unregisters the region. Drop it before the mapping
/// goes away.
#[derive(Debug)]
pub struct Registration {
    slot: usize,
    _poison: Arc<AtomicBool>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let s = &SLOTS[self.slot];
        let seq = s.seq.load(Ordering::Relaxed);
        s.seq.store(seq + 1, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Release);
        s.len.store(0, Ordering::Relaxed);
        s.start.store(0, Ordering::Relaxed);
        s.poison.store(std::ptr::null_mut(), Ordering::Relaxed);
        s.seq.store(seq + 2, Ordering::Release);
    }
}

/// How many faults on guest memory the handler has repaired since the process started.
pub fn repaired() -> u64 {
    REPAIRED.load(Ordering::Relaxed)
}

/// The page size of the file behind a mapping, from its `st_blksize`: the huge page size on
/// hugetlbfs, the base page elsewhere. A repair maps whole pages of this size.
pub fn page_size(blksize: u64) -> usize {
    let base = 4096usize;
    match usize::try_from(blksize) {
        Ok(blk) if blk > base && blk.is_power_of_two() => blk,
        _ => base,
    }
}

/// Registers `[start, start + len)` (a mapping of pages of `page` bytes, `start` aligned to
/// `page`) so a SIGBUS inside it is repaired and raises `poison`. `None` when the table of
/// regions is full: the region is then unprotected, as it would be without this module.
pub fn register(
    start: *const u8,
    len: usize,
    page: usize,
    poison: &Arc<AtomicBool>,
) -> Option<Registration> {
    INSTALL.call_once(install);
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let slot = SLOTS
        .iter()
        .position(|s| s.len.load(Ordering::Relaxed) == 0)?;
    let s = &SLOTS[slot];
    let seq = s.seq.load(Ordering::Relaxed);
    s.seq.store(seq + 1, Ordering::Relaxed);
    std::sync::atomic::fence(Ordering::Release);
    s.start.store(start as usize, Ordering::Relaxed);
    s.page.store(page.max(1), Ordering::Relaxed);
    s.poison
        .store(Arc::as_ptr(poison).cast_mut(), Ordering::Relaxed);
    s.len.store(len, Ordering::Relaxed);
    s.seq.store(seq + 2, Ordering::Release);
    Some(Registration {
        slot,
        _poison: poison.clone(),
    })
}

fn install() {
    // SAFETY: sigaction with a zeroed (then filled) struct and a handler of the SA_SIGINFO
    // signature; the previous action is stored once, before our handler can run.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigbus as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGBUS, &sa, &mut old) != 0 {
            tracing::warn!(
                "cannot install the SIGBUS handler: guest memory faults kill the switch"
            );
            return;
        }
        PREVIOUS = Some(old);
    }
}

/// Finds the registered region holding `addr`: (page start, page size, poison flag).
fn lookup(addr: usize) -> Option<(usize, usize, *mut AtomicBool)> {
    for s in &SLOTS {
        let seq = s.seq.load(Ordering::Acquire);
        if seq % 2 == 1 {
            continue;
        }
        let len = s.len.load(Ordering::Relaxed);
        if len == 0 {
            continue;
        }
        let start = s.start.load(Ordering::Relaxed);
        let page = s.page.load(Ordering::Relaxed);
        let poison = s.poison.load(Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Acquire);
        if s.seq.load(Ordering::Relaxed) != seq {
            continue;
        }
        if addr >= start && addr - start < len {
            let page_start = start + (addr - start) / page * page;
            let page_len = page.min(start + len - page_start);
            return Some((page_start, page_len, poison));
        }
    }
    None
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    // si_code > 0: raised by the kernel for a memory access (not kill(2) or sigqueue).
    if code > 0 {
        if let Some((page_start, page_len, poison)) = lookup(addr) {
            // SAFETY: the range is a page of a guest mapping this process owns (registered
            // while mapped); replacing it with private anonymous memory of the same size
            // keeps every pointer into it valid. mmap is a raw system call, safe here.
            let p = unsafe {
                libc::mmap(
                    page_start as *mut libc::c_void,
                    page_len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                if !poison.is_null() {
                    // SAFETY: the flag outlives the registration (the Registration holds an
                    // Arc to it), and the registration outlives every access to the region.
                    unsafe { (*poison).store(true, Ordering::Release) };
                }
                REPAIRED.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
    // Not ours: hand it to the handler before us, or die as the default action would.
    // SAFETY: PREVIOUS was written once in `install`, before this handler was installed.
    unsafe {
        match *std::ptr::addr_of!(PREVIOUS) {
            Some(old) if old.sa_flags & libc::SA_SIGINFO != 0 && old.sa_sigaction > 1 => {
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    std::mem::transmute(old.sa_sigaction);
                f(sig, info, ctx);
            }
            Some(old) if old.sa_sigaction > 1 => {
                let f: extern "C" fn(libc::c_int) = std::mem::transmute(old.sa_sigaction);
                f(sig);
            }
            _ => {
                // Returning re-runs the access, which faults again with the default action.
                libc::signal(libc::SIGBUS, libc::SIG_DFL);
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::os::fd::AsRawFd;

    /// A shared mapping of a memfd truncated under it: reading and writing the lost page is
    /// repaired (zeros read, the write lands), the poison flag rises, the process lives.
    #[test]
    fn truncated_memfd_is_repaired_and_poisoned() {
        let fd = nix::sys::memfd::memfd_create(c"sigbus-test", nix::sys::memfd::MFdFlags::empty())
            .unwrap();
        let file = std::fs::File::from(fd);
        file.set_len(3 * 4096).unwrap();
        // SAFETY: a fresh shared mapping of a file we own; unmapped at the end of the test.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                3 * 4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        let base = base.cast::<u8>();
        let poison = Arc::new(AtomicBool::new(false));
        let blksize = std::os::unix::fs::MetadataExt::blksize(&file.metadata().unwrap());
        let reg = register(base, 3 * 4096, page_size(blksize), &poison).unwrap();
        // SAFETY: inside the mapping.
        unsafe { base.add(4096).write_volatile(7) };
        file.set_len(4096).unwrap();
        // SAFETY: inside the mapping; past the file's end now, so this faults and is repaired.
        let v = unsafe { base.add(4096).read_volatile() };
        assert_eq!(v, 0, "the repaired page reads zeros");
        assert!(poison.load(Ordering::Acquire));
        // SAFETY: the third page, also past the end: a write is repaired too.
        unsafe { base.add(2 * 4096 + 5).write_volatile(9) };
        // SAFETY: same address, now anonymous memory.
        assert_eq!(unsafe { base.add(2 * 4096 + 5).read_volatile() }, 9);
        assert!(repaired() >= 2);
        drop(reg);
        // SAFETY: unmapping what we mapped above.
        unsafe { libc::munmap(base.cast(), 3 * 4096) };
    }
}
