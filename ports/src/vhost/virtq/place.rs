//! Placing a ring's three parts in guest memory at start, and the checks every chain walk
//! makes of one buffer, the same for both formats.

use std::cell::Cell;

use vm_memory::GuestAddress;

use super::{QueueError, Seg};
use crate::vhost::hostmem::HostRegion;
use crate::vhost::memory::GuestMemoryTable;

/// One part of a ring to place: its name (for errors), guest address, alignment and length.
pub(crate) type Part = (&'static str, GuestAddress, u64, u64);

/// Checks each part's alignment and that it lies inside one memory region, and returns a
/// view of exactly each part's bytes (every later access is checked against the part, not
/// searched for in the memory table) and the region of the first part.
pub(crate) fn place(
    mem: &GuestMemoryTable,
    parts: [Part; 3],
) -> Result<([HostRegion; 3], usize), QueueError> {
    let hint = Cell::new(0);
    let mut views = [None; 3];
    let mut first_region = 0;
    for (k, (ring, addr, align, len)) in parts.into_iter().enumerate() {
        if addr.0 % align != 0 {
            return Err(QueueError::Misaligned { ring, addr: addr.0 });
        }
        let outside = QueueError::RingOutsideMemory { ring, addr: addr.0 };
        let (region, off) = mem.region_of(addr.0, len, &hint).ok_or(outside.clone())?;
        views[k] = Some(mem.host(region).sub(off, len).ok_or(outside)?);
        if k == 0 {
            first_region = region;
        }
    }
    let [Some(a), Some(b), Some(c)] = views else {
        unreachable!("every part was placed above");
    };
    Ok(([a, b, c], first_region))
}

/// Checks one buffer of a chain (§2.6.5.1, §2.6.5.2, §2.7.4): its direction is the ring's
/// (`writable`) and the chain's lengths still add up to at most 2^32 bytes. Appends it to
/// `segs` when not empty and returns the chain's new total.
#[inline(always)]
pub(crate) fn take_buf(
    segs: &mut Vec<Seg>,
    total: u64,
    addr: u64,
    len: u32,
    is_write: bool,
    writable: bool,
) -> Result<u64, QueueError> {
    if is_write != writable {
        return Err(QueueError::WrongDirection);
    }
    // "Drivers MUST NOT add a descriptor chain longer than 2^32 bytes".
    let total = total
        .checked_add(u64::from(len))
        .filter(|&t| t <= u64::from(u32::MAX))
        .ok_or(QueueError::ChainTooLarge)?;
    if len > 0 {
        segs.push(Seg {
            addr,
            len: u64::from(len),
        });
    }
    Ok(total)
}

/// Checks that an indirect table of `len` bytes at `addr` lies inside guest memory (one
/// region, the last table's first, or several adjacent ones).
pub(crate) fn table_inside(
    mem: &GuestMemoryTable,
    addr: u64,
    len: u32,
    hint: &Cell<usize>,
) -> bool {
    mem.region_of(addr, u64::from(len), hint).is_some()
        || vm_memory::GuestMemoryBackend::check_range(mem.mem(), GuestAddress(addr), len as usize)
}
