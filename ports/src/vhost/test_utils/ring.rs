//! The driver side of one split ring, written through `vm-memory`'s accessors into guest
//! memory the test maps: descriptors, the available ring and its index, and what the device
//! put in the used ring. Like rust-vmm's `MockSplitQueue`, it takes its offsets from the
//! device's own layout ([`crate::vhost::split::layout`]); it checks nothing the device does.

use std::sync::atomic::{fence, Ordering};

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::vhost::split::layout::{avail, desc, used, Descriptor, DESC_F_NEXT};
use crate::vhost::split::RingConfig;

/// The driver side of one split ring: where its three parts live, and the driver's own
/// indices.
#[derive(Debug, Clone)]
pub struct DriverRing {
    /// The vring index in its device.
    pub vring: usize,
    /// Queue size.
    pub size: u16,
    /// Descriptor table, guest physical.
    pub desc: u64,
    /// Available ring, guest physical.
    pub avail: u64,
    /// Used ring, guest physical.
    pub used: u64,
    /// The driver's next avail index (what [`DriverRing::publish`] stores in `avail.idx`).
    pub next_avail: u16,
    /// The next descriptor [`DriverRing::add_chain`] takes (descriptors are used round robin).
    pub next_desc: u16,
    /// The used index up to which [`DriverRing::take_used`] has read.
    pub last_used: u16,
}

impl DriverRing {
    /// A ring of `size` entries whose descriptor table starts at guest address `base`, the
    /// available ring right after it and the used ring after that (4-aligned).
    pub fn at(vring: usize, size: u16, base: u64) -> DriverRing {
        let avail = base + desc::table_len(size.into());
        DriverRing {
            vring,
            size,
            desc: base,
            avail,
            used: (avail + avail::ring_len(size.into())).next_multiple_of(used::ALIGN),
            next_avail: 0,
            next_desc: 0,
            last_used: 0,
        }
    }

    /// What the device is told (`SET_VRING_ADDR` with guest physical addresses).
    pub fn config(&self, event_idx: bool) -> RingConfig {
        RingConfig {
            size: self.size.into(),
            desc: GuestAddress(self.desc),
            avail: GuestAddress(self.avail),
            used: GuestAddress(self.used),
            event_idx,
            packed: false,
        }
    }

    /// Writes descriptor `i` of the ring's table.
    pub fn write_desc(&self, mem: &GuestMemoryMmap, i: u16, d: Descriptor) {
        write_desc_at(
            mem,
            self.desc + desc::entry(i),
            d.addr,
            d.len,
            d.flags,
            d.next,
        );
    }

    /// Adds a chain of fresh descriptors (`bufs`: address, length, flags without NEXT) and puts
    /// its head in the avail ring (not yet published). Returns the head.
    pub fn add_chain(&mut self, mem: &GuestMemoryMmap, bufs: &[(u64, u32, u16)]) -> u16 {
        let head = self.next_desc;
        for (k, &(addr, len, flags)) in bufs.iter().enumerate() {
            let i = (head + k as u16) % self.size;
            let last = k + 1 == bufs.len();
            let (flags, next) = if last {
                (flags, 0)
            } else {
                (flags | DESC_F_NEXT, (i + 1) % self.size)
            };
            let d = Descriptor {
                addr,
                len,
                flags,
                next,
            };
            self.write_desc(mem, i, d);
        }
        self.next_desc = (head + bufs.len() as u16) % self.size;
        self.push_avail(mem, head);
        head
    }

    /// Puts `head` in the next avail slot (not yet published).
    pub fn push_avail(&mut self, mem: &GuestMemoryMmap, head: u16) {
        let slot = u64::from(self.next_avail % self.size);
        mem.write_obj(head.to_le(), GuestAddress(self.avail + avail::entry(slot)))
            .unwrap();
        self.next_avail = self.next_avail.wrapping_add(1);
    }

    /// `avail.idx` as last published.
    pub fn avail_idx(&self, mem: &GuestMemoryMmap) -> u16 {
        u16::from_le(mem.read_obj(GuestAddress(self.avail + avail::IDX)).unwrap())
    }

    /// Publishes what [`DriverRing::push_avail`] added: stores `avail.idx`.
    pub fn publish(&self, mem: &GuestMemoryMmap) {
        self.set_avail_idx(mem, self.next_avail);
    }

    /// Stores `avail.idx` directly, after a fence (hostile tests use any value).
    pub fn set_avail_idx(&self, mem: &GuestMemoryMmap, idx: u16) {
        fence(Ordering::Release);
        mem.store(
            idx.to_le(),
            GuestAddress(self.avail + avail::IDX),
            Ordering::Release,
        )
        .unwrap();
    }

    /// Stores `avail.flags`.
    pub fn set_avail_flags(&self, mem: &GuestMemoryMmap, flags: u16) {
        mem.write_obj(flags.to_le(), GuestAddress(self.avail + avail::FLAGS))
            .unwrap();
    }

    /// Stores `used_event`, which lives after the avail ring.
    pub fn set_used_event(&self, mem: &GuestMemoryMmap, idx: u16) {
        let at = self.avail + avail::used_event(self.size.into());
        mem.write_obj(idx.to_le(), GuestAddress(at)).unwrap();
    }

    /// The device's `used.flags`.
    pub fn used_flags(&self, mem: &GuestMemoryMmap) -> u16 {
        mem.read_obj(GuestAddress(self.used + used::FLAGS)).unwrap()
    }

    /// The device's `avail_event`, which lives after the used ring.
    pub fn avail_event(&self, mem: &GuestMemoryMmap) -> u16 {
        let at = self.used + used::avail_event(self.size.into());
        mem.read_obj(GuestAddress(at)).unwrap()
    }

    /// The device's `used.idx` (Acquire).
    pub fn used_idx(&self, mem: &GuestMemoryMmap) -> u16 {
        mem.load(GuestAddress(self.used + used::IDX), Ordering::Acquire)
            .unwrap()
    }

    /// Used element `idx` (wrapped to the ring): chain head and length written.
    pub fn used_elem(&self, mem: &GuestMemoryMmap, idx: u16) -> (u32, u32) {
        let slot = u64::from(idx % self.size);
        let at = self.used + used::entry(slot);
        let id = mem
            .read_obj(GuestAddress(at + used::ELEM_ID as u64))
            .unwrap();
        let len = mem
            .read_obj(GuestAddress(at + used::ELEM_LEN as u64))
            .unwrap();
        (id, len)
    }

    /// New used elements (id, len) since the last call.
    pub fn take_used(&mut self, mem: &GuestMemoryMmap) -> Vec<(u32, u32)> {
        let idx = self.used_idx(mem);
        let mut out = Vec::new();
        while self.last_used != idx {
            out.push(self.used_elem(mem, self.last_used));
            self.last_used = self.last_used.wrapping_add(1);
        }
        out
    }
}

/// Writes a descriptor at guest address `at` (in the ring's table or an indirect one).
pub fn write_desc_at(mem: &GuestMemoryMmap, at: u64, addr: u64, len: u32, flags: u16, next: u16) {
    let d = Descriptor {
        addr,
        len,
        flags,
        next,
    };
    mem.write_slice(&d.to_bytes(), GuestAddress(at)).unwrap();
}
