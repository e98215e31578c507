//! The driver side of one packed ring (virtio 1.1 §2.7), written through `vm-memory`'s
//! accessors into guest memory the test maps: the descriptor ring, the driver event
//! suppression area it writes and the device's it reads. Like [`super::DriverRing`] it takes
//! its offsets from the device's own layout ([`crate::vhost::packed::layout`]) and checks
//! nothing the device does; it keeps what a driver keeps (§2.7.21): its avail position and
//! wrap counter, its used position and wrap counter, and how many ring descriptors each
//! outstanding buffer id spans.

use std::collections::VecDeque;
use std::sync::atomic::{fence, Ordering};

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::vhost::packed::layout::{
    desc, event, PackedDesc, DESC_F_AVAIL, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_USED, WRAP_BIT,
};
use crate::vhost::virtq::RingConfig;

/// The `id` [`PackedDriverRing::add_chain`] writes into every descriptor of a chain but the
/// last: §2.7.6 puts the buffer id in the last descriptor only, so a device that returned an
/// earlier descriptor's id would return this one, which no buffer has.
pub const NOT_AN_ID: u16 = 0xffff;

/// The driver side of one packed ring: where its three parts live and the driver's own
/// positions.
#[derive(Debug, Clone)]
pub struct PackedDriverRing {
    /// The vring index in its device.
    pub vring: usize,
    /// Queue size (any value from 1 to 32768).
    pub size: u16,
    /// Descriptor ring, guest physical.
    pub desc: u64,
    /// Driver event suppression area (`RingConfig::avail`), guest physical.
    pub driver: u64,
    /// Device event suppression area (`RingConfig::used`), guest physical.
    pub device: u64,
    /// Where the next chain goes.
    pub next_avail: u16,
    /// The Driver Ring Wrap Counter (starts at 1, §2.7.1).
    pub avail_wrap: bool,
    /// Where the next used descriptor is expected.
    pub next_used: u16,
    /// The wrap counter of the used descriptors expected there (starts at 1).
    pub used_wrap: bool,
    /// The buffer id [`PackedDriverRing::add_chain`] gives the next chain (ids are used round
    /// robin).
    pub next_id: u16,
    /// Ring descriptors each buffer id's chain spans (§2.7.6: what the driver needs to skip to
    /// the next used descriptor).
    pub chain_len: Vec<u16>,
    /// Chains written but not yet made available: their first descriptor and its flags.
    unpublished: Vec<(u16, u16)>,
    /// Buffer ids of the chains added and not yet used, in the order they were added.
    outstanding: VecDeque<u16>,
    /// Chains the used descriptors polled so far completed: (buffer id, length), one each;
    /// an in-order batch's earlier chains get length 0 (§2.7.9).
    completed: Vec<(u32, u32)>,
}

impl PackedDriverRing {
    /// A ring of `size` descriptors at guest address `base` (16-aligned), the driver event
    /// area right after it and the device event area after that.
    pub fn at(vring: usize, size: u16, base: u64) -> PackedDriverRing {
        assert!(
            base.is_multiple_of(desc::ALIGN),
            "descriptor ring alignment"
        );
        let driver = base + desc::ring_len(size.into());
        PackedDriverRing {
            vring,
            size,
            desc: base,
            driver,
            device: driver + event::SIZE,
            next_avail: 0,
            avail_wrap: true,
            next_used: 0,
            used_wrap: true,
            next_id: 0,
            chain_len: vec![0; usize::from(size)],
            unpublished: Vec::new(),
            outstanding: VecDeque::new(),
            completed: Vec::new(),
        }
    }

    /// What the device is told (`SET_VRING_ADDR` with guest physical addresses).
    pub fn config(&self, event_idx: bool) -> RingConfig {
        RingConfig {
            size: self.size.into(),
            desc: GuestAddress(self.desc),
            avail: GuestAddress(self.driver),
            used: GuestAddress(self.device),
            event_idx,
            packed: true,
        }
    }

    /// The driver's avail position in vhost-user's `SET_VRING_BASE` encoding (index, wrap
    /// counter in bit 15): where the device resumes once it has taken every chain made
    /// available. `0x8000` for a fresh ring.
    pub fn avail_base(&self) -> u16 {
        encode(self.next_avail, self.avail_wrap)
    }

    /// The driver's used position, same encoding: where it expects the next used descriptor
    /// (equal to [`PackedDriverRing::avail_base`] once it has taken every used one).
    pub fn used_base(&self) -> u16 {
        encode(self.next_used, self.used_wrap)
    }

    /// Writes descriptor `i` of the ring as given (flags too; hostile tests write anything).
    pub fn write_desc(&self, mem: &GuestMemoryMmap, i: u16, d: PackedDesc) {
        mem.write_slice(&d.to_bytes(), GuestAddress(self.desc + desc::entry(i)))
            .unwrap();
    }

    /// Descriptor `i` of the ring as it is now (after the device used it: the used id,
    /// length and flags).
    pub fn read_desc(&self, mem: &GuestMemoryMmap, i: u16) -> PackedDesc {
        let mut b = [0u8; desc::SIZE as usize];
        mem.read_slice(&mut b, GuestAddress(self.desc + desc::entry(i)))
            .unwrap();
        PackedDesc::from_bytes(&b)
    }

    /// Writes `descs` as one chain from the avail position on, each descriptor's flags
    /// (`NEXT`, `WRITE`, `INDIRECT` as given) completed with AVAIL/USED for its lap, every one
    /// but the first in full; the first one's flags wait for [`PackedDriverRing::publish`]
    /// (§2.7.21.1). Records the chain's length under the last descriptor's id. Returns where
    /// the chain starts.
    pub fn add_descs(&mut self, mem: &GuestMemoryMmap, descs: &[PackedDesc]) -> u16 {
        assert!(!descs.is_empty() && descs.len() <= usize::from(self.size));
        let head = self.next_avail;
        let mut head_flags = 0;
        for (k, d) in descs.iter().enumerate() {
            let flags = d.flags | avail_bits(self.avail_wrap);
            if k == 0 {
                // Everything but the flags now (bytes 0-13); the flags when published.
                let at = GuestAddress(self.desc + desc::entry(head));
                mem.write_slice(&d.to_bytes()[..desc::FLAGS], at).unwrap();
                head_flags = flags;
            } else {
                self.write_desc(mem, self.next_avail, PackedDesc { flags, ..*d });
            }
            self.next_avail += 1;
            if self.next_avail == self.size {
                self.next_avail = 0;
                self.avail_wrap = !self.avail_wrap;
            }
        }
        let id = descs[descs.len() - 1].id;
        if let Some(n) = self.chain_len.get_mut(usize::from(id)) {
            *n = descs.len() as u16;
        }
        // At most a ring's worth: a driver that overwrites chains it never took back used
        // (benchmarks refilling the ring) forgets the oldest.
        if self.outstanding.len() >= usize::from(self.size) {
            self.outstanding.pop_front();
        }
        self.outstanding.push_back(id);
        self.unpublished.push((head, head_flags));
        head
    }

    /// Adds a chain of buffers (`bufs`: address, length, flags without NEXT) under a fresh
    /// buffer id, in the last descriptor only (the others carry [`NOT_AN_ID`]); not yet
    /// published. Returns the buffer id.
    pub fn add_chain(&mut self, mem: &GuestMemoryMmap, bufs: &[(u64, u32, u16)]) -> u16 {
        let id = self.next_id;
        self.next_id = (self.next_id + 1) % self.size;
        let descs: Vec<PackedDesc> = bufs
            .iter()
            .enumerate()
            .map(|(k, &(addr, len, flags))| {
                let last = k + 1 == bufs.len();
                PackedDesc {
                    addr,
                    len,
                    id: if last { id } else { NOT_AN_ID },
                    flags: if last { flags } else { flags | DESC_F_NEXT },
                }
            })
            .collect();
        self.add_descs(mem, &descs);
        id
    }

    /// Writes `bufs` (address, length, flags) as an indirect table at `table` and adds one
    /// ring descriptor pointing at it under a fresh buffer id; not yet published. Returns
    /// the buffer id.
    pub fn add_indirect(
        &mut self,
        mem: &GuestMemoryMmap,
        table: u64,
        bufs: &[(u64, u32, u16)],
    ) -> u16 {
        for (k, &(addr, len, flags)) in bufs.iter().enumerate() {
            let d = PackedDesc {
                addr,
                len,
                id: 0,
                flags,
            };
            mem.write_slice(&d.to_bytes(), GuestAddress(table + desc::entry(k as u16)))
                .unwrap();
        }
        let len = (desc::SIZE * bufs.len() as u64) as u32;
        self.add_chain(mem, &[(table, len, DESC_F_INDIRECT)])
    }

    /// Makes the chains added since the last call available, in order: a Release fence, then
    /// each first descriptor's flags (§2.7.21.3.1: the barrier before the flags update).
    pub fn publish(&mut self, mem: &GuestMemoryMmap) {
        for (head, flags) in std::mem::take(&mut self.unpublished) {
            fence(Ordering::Release);
            self.store_flags(mem, head, flags);
        }
    }

    /// The next used descriptor, if the device has written it (its flags loaded with Acquire,
    /// §2.7.9); moves the used position past its chain, or, as an in-order driver does, past
    /// every chain added before it too when the device returned a batch with one descriptor
    /// (the chains it completed are what [`PackedDriverRing::take_used`] reports).
    pub fn poll_used(&mut self, mem: &GuestMemoryMmap) -> Option<PackedDesc> {
        let flags = self.read_flags(mem, self.next_used);
        let used = (flags & DESC_F_USED != 0) == self.used_wrap
            && (flags & DESC_F_AVAIL != 0) == self.used_wrap;
        if !used {
            return None;
        }
        let d = self.read_desc(mem, self.next_used);
        let mut n = 0u32;
        if self.outstanding.contains(&d.id) {
            while let Some(id) = self.outstanding.pop_front() {
                n += u32::from(self.chain_len[usize::from(id)]);
                let len = if id == d.id { d.len } else { 0 };
                self.completed.push((u32::from(id), len));
                if id == d.id {
                    break;
                }
            }
        } else {
            // A descriptor the test wrote by hand: its own chain only.
            n = u32::from(self.chain_len[usize::from(d.id)]);
            self.completed.push((u32::from(d.id), d.len));
        }
        assert!(n > 0, "used id {} names no chain", d.id);
        let next = u32::from(self.next_used) + n;
        if next >= u32::from(self.size) {
            self.used_wrap = !self.used_wrap;
        }
        self.next_used = (next % u32::from(self.size)) as u16;
        Some(d)
    }

    /// Every used descriptor the device has written since the last call, in order.
    pub fn take_used_descs(&mut self, mem: &GuestMemoryMmap) -> Vec<PackedDesc> {
        std::iter::from_fn(|| self.poll_used(mem)).collect()
    }

    /// The chains the used descriptors written since the last poll completed (buffer id,
    /// length), one each, also those an in-order batch returned with one used descriptor (the split driver's
    /// [`super::DriverRing::take_used`] shape).
    pub fn take_used(&mut self, mem: &GuestMemoryMmap) -> Vec<(u32, u32)> {
        self.completed.clear();
        self.take_used_descs(mem);
        std::mem::take(&mut self.completed)
    }

    /// Writes the driver event suppression area: `off_wrap` (read with `FLAG_DESC` only),
    /// then `flags`.
    pub fn set_driver_event(&self, mem: &GuestMemoryMmap, off_wrap: u16, flags: u16) {
        let at = |f| GuestAddress(self.driver + f);
        mem.store(off_wrap.to_le(), at(event::OFF_WRAP), Ordering::Relaxed)
            .unwrap();
        mem.store(flags.to_le(), at(event::FLAGS), Ordering::Release)
            .unwrap();
    }

    /// The device event suppression area: (`off_wrap`, `flags`).
    pub fn device_event(&self, mem: &GuestMemoryMmap) -> (u16, u16) {
        let at = |f| GuestAddress(self.device + f);
        let off_wrap: u16 = mem.load(at(event::OFF_WRAP), Ordering::Acquire).unwrap();
        let flags: u16 = mem.load(at(event::FLAGS), Ordering::Acquire).unwrap();
        (u16::from_le(off_wrap), u16::from_le(flags))
    }

    fn read_flags(&self, mem: &GuestMemoryMmap, i: u16) -> u16 {
        let at = GuestAddress(self.desc + desc::entry(i) + desc::FLAGS as u64);
        u16::from_le(mem.load(at, Ordering::Acquire).unwrap())
    }

    fn store_flags(&self, mem: &GuestMemoryMmap, i: u16, flags: u16) {
        let at = GuestAddress(self.desc + desc::entry(i) + desc::FLAGS as u64);
        mem.store(flags.to_le(), at, Ordering::Release).unwrap();
    }
}

/// AVAIL equal to the wrap counter and USED its inverse (§2.7.1).
fn avail_bits(wrap: bool) -> u16 {
    if wrap {
        DESC_F_AVAIL
    } else {
        DESC_F_USED
    }
}

/// Index in bits 0-14, wrap counter in bit 15.
fn encode(idx: u16, wrap: bool) -> u16 {
    idx | if wrap { WRAP_BIT } else { 0 }
}
