//! A ring's way into guest memory, the same for both formats: the memory table, the region
//! of the last buffer (tried first), and the dirty log while the frontend logs (LOG_ALL),
//! in which every write into guest memory is marked.

use std::cell::Cell;
use std::sync::Arc;

use crate::vhost::memory::{DirtyLog, GuestMemoryTable};

/// Guest memory as one ring reads and writes it.
#[derive(Debug)]
pub(crate) struct GuestIo {
    /// The memory table the ring was started on.
    pub mem: Arc<GuestMemoryTable>,
    /// Region of the last buffer access.
    buf_hint: Cell<usize>,
    /// The dirty log, while the frontend logs.
    pub log: Option<Arc<DirtyLog>>,
    /// The driver acked `VIRTIO_NET_F_CSUM`: the virtio-net header in front of each frame it
    /// sends carries an offload request, read with the frame into the packet. Without it the
    /// header asks for nothing (§5.1.6.2) and is skipped.
    pub tx_offloads: bool,
}

impl GuestIo {
    /// Buffers through `mem`, the region `first` tried first; no log yet.
    pub fn new(mem: Arc<GuestMemoryTable>, first: usize) -> GuestIo {
        GuestIo {
            mem,
            buf_hint: Cell::new(first),
            log: None,
            tx_offloads: false,
        }
    }

    /// Copies guest bytes at `addr` into `dst`; false when they are not inside guest memory.
    #[inline(always)]
    pub fn read(&self, dst: &mut [u8], addr: u64) -> bool {
        self.mem.read(dst, addr, &self.buf_hint)
    }

    /// Copies `bytes` into guest memory at `addr` and marks them in the dirty log, even when
    /// the write failed part way (the bytes inside guest memory may have been written, and
    /// marking more than was written is harmless). False when they are not inside guest
    /// memory.
    #[inline]
    pub fn write(&self, bytes: &[u8], addr: u64) -> bool {
        let written = self.mem.write(bytes, addr, &self.buf_hint);
        self.mark(addr, bytes.len() as u64);
        written
    }

    /// Copies `a` then `b` into guest memory at `addr` when both fit in the region of the
    /// last buffer, and marks them in the dirty log; false (nothing written) otherwise.
    #[inline(always)]
    pub fn write2(&self, a: &[u8], b: &[u8], addr: u64) -> bool {
        if !self.mem.write2(a, b, addr, &self.buf_hint) {
            return false;
        }
        self.mark(addr, (a.len() + b.len()) as u64);
        true
    }

    /// Marks `len` bytes at guest address `gpa` in the dirty log, if there is one.
    #[inline(always)]
    pub fn mark(&self, gpa: u64, len: u64) {
        if let Some(log) = &self.log {
            log.mark(gpa, len);
        }
    }

    /// True once guest memory or the dirty log was truncated under the switch: whatever the
    /// last accesses read or wrote was a repaired page, not the guest's.
    #[inline]
    pub fn poisoned(&self) -> bool {
        self.mem.poisoned() || self.log.as_ref().is_some_and(|l| l.poisoned())
    }
}
