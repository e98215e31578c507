//! The packed-ring walk (virtio 1.1 §2.7) over fuzzed guest memory and ring state.
//!
//! The guest memory layouts are `split_ring`'s (`common/guest.rs`). Each input rewrites the
//! memory's bytes, places a `PackedRing` with a fuzzed size (every valid one, and 0 or above
//! 32768), descriptor ring, driver and device event structure addresses, event-idx and base
//! (index and wrap counter, also past the ring), and runs a few operations: dequeue and
//! enqueue bursts (mergeable buffers on and off), guest writes between them (descriptors made
//! available, used or available in the wrong lap, with any id, length and chain flags; runs
//! of one-descriptor chains up to a whole lap; the driver's event structure; any two bytes),
//! kicks enabled and disabled, `has_pending`, and a remap onto the same memory. Checked, beyond "never panics" (and ASan):
//! - the ring is refused for a bad size or base, and otherwise placed exactly when its three
//!   parts are aligned (16, 4, 4) and each inside one region, the first failure reported;
//! - a burst moves at most the frames it was given room for (32, `ports::BURST`), and its
//!   counters add up (`packets` is the frames returned; an enqueue's frames are each sent,
//!   too small, over the cap or not taken for lack of buffers; `notifications` is the notify
//!   returned, never for a dequeue that completed no chain);
//! - a dequeue writes nothing in guest memory but the used descriptors (their len, id and
//!   flags: never an address) and the device event structure, and a descriptor it wrote
//!   holds used length 0 and used flags (AVAIL and USED equal);
//! - a burst that finds the chain at the ring's position available takes it (dequeue, and
//!   enqueue without mergeable buffers) or breaks the ring, unless the ring sits out bursts
//!   after a hostile one (`COOLDOWN_BURSTS`: after a chain over the cap, or a burst that
//!   spent its descriptor budget, which the ring reports); one that sits out moves,
//!   counts and writes nothing;
//! - kicks: the device event structure says what was asked (disable; enable, or the ring's
//!   position with event-idx), and nothing else in guest memory changes; `enable_kicks` and
//!   `has_pending` report what the descriptor at the ring's position says;
//! - a broken ring moves nothing more, counts nothing, writes no guest byte and stays at its
//!   position, and a remap keeps position and fault.
#![no_main]

#[path = "../common/guest.rs"]
mod guest;

use guest::{
    assert_writes_within, check_dequeue, check_enqueue, dirty_log, fill, frames, layouts, snapshot,
    snapshot_at, write_guest, Layout, LAYOUTS, PKTS,
};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use ports::vhost::packed::layout::{
    desc, event, is_avail, used_flags, PackedDesc, DESC_F_AVAIL, DESC_F_INDIRECT, DESC_F_NEXT,
    DESC_F_USED, DESC_F_WRITE, WRAP_BIT,
};
use ports::vhost::packed::{PackedRing, MAX_QUEUE_SIZE};
use ports::vhost::virtq::{QueueError, RingConfig, COOLDOWN_BURSTS};
use ports::vhost::RingCounters;
use ports::{Packet, BURST};
use vm_memory::GuestAddress;

#[derive(Arbitrary, Debug)]
enum Size {
    /// `1 + n % 512`: the sizes whose ring fits the layouts' 8 KiB regions.
    Small(u16),
    /// `1 + n % 32768`: every valid size (no power of two needed, §2.7).
    Any(u16),
    /// Anything (0, above 32768).
    Raw(u32),
}

#[derive(Arbitrary, Debug)]
enum Addr {
    /// A 16-byte slot of the layout's first region (aligned for every part).
    Slot(u8),
    /// An offset from the layout's first region.
    Near(u16),
    /// Any guest address.
    Raw(u64),
}

#[derive(Arbitrary, Debug)]
enum Base {
    /// The descriptor index `n % size` with this wrap counter: a position in the ring.
    In(u16, bool),
    /// Any value (an index past the ring: refused).
    Raw(u16),
}

/// How a descriptor the driver writes is marked (§2.7.1), relative to the lap of its index
/// as seen from the ring's position.
#[derive(Arbitrary, Debug)]
enum Mark {
    /// Available in that lap (AVAIL = its wrap counter, USED the inverse).
    Avail,
    /// Used in that lap (AVAIL = USED = its wrap counter).
    Used,
    /// Available in the other lap.
    OtherLap,
    /// These AVAIL/USED bits, whatever the lap.
    Raw(bool, bool),
}

/// A posted descriptor's length.
#[derive(Arbitrary, Debug)]
enum Len {
    /// Any length up to 64 KiB.
    Bytes(u16),
    /// `16 * n`: an indirect table of `n` descriptors (up to 4096 entries).
    Descs(u16),
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Take frames from the guest: room for `BURST` or fewer.
    Dequeue { room: u8 },
    /// Frames of these lengths into the guest.
    Enqueue { mrg: bool, lens: Vec<u16> },
    /// The driver writes the descriptor `ahead` positions past the ring's position: buffer
    /// at `addr` (an offset from the first region), length, id, NEXT/WRITE/INDIRECT from the
    /// low bits of `chain`, AVAIL/USED from `mark`.
    Post {
        ahead: u8,
        addr: u16,
        len: Len,
        id: u16,
        chain: u8,
        mark: Mark,
    },
    /// The driver makes `n` one-descriptor chains available from the ring's position on
    /// (at most a lap), each `len` bytes at `addr` (an offset from the first region), ids
    /// counting up: a full ring, chains across the lap, a burst's budget spent on empty
    /// chains.
    Fill {
        n: u16,
        addr: u16,
        len: u16,
        write: bool,
    },
    /// The driver writes its event suppression structure: an offset (`off % size`) and wrap
    /// counter, and flags (`flags % 4`: enable, disable, desc, reserved).
    DriverEvent { off: u16, wrap: bool, flags: u8 },
    /// The guest writes a 16-bit value anywhere in the first region.
    Write { at: u16, value: u16 },
    /// The PMD asks for kicks again (and sees whether buffers arrived), or stops them.
    Kicks { enable: bool },
    /// The PMD asks whether the driver made a chain available.
    Pending,
    /// The ring moves onto the same memory (as after `SET_MEM_TABLE`).
    Remap,
}

#[derive(Arbitrary, Debug)]
struct Input {
    layout: u8,
    size: Size,
    desc: Addr,
    driver: Addr,
    device: Addr,
    event_idx: bool,
    base: Base,
    log: bool,
    ops: Vec<Op>,
    /// Guest memory, regions in order, from their start (the rest is zeros).
    memory: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let layout = &layouts()[usize::from(input.layout) % LAYOUTS.len()];
    fill(layout, &input.memory);
    let first = layout.regions[0].gpa;
    let addr = |a: &Addr| match *a {
        Addr::Slot(n) => GuestAddress(first.wrapping_add(u64::from(n) * desc::SIZE)),
        Addr::Near(off) => GuestAddress(first.wrapping_add(u64::from(off))),
        Addr::Raw(a) => GuestAddress(a),
    };
    let max = u32::from(MAX_QUEUE_SIZE);
    let size = match input.size {
        Size::Small(n) => 1 + u32::from(n) % 512,
        Size::Any(n) => 1 + u32::from(n) % max,
        Size::Raw(n) => n,
    };
    let base = match input.base {
        Base::In(n, wrap) => (n % size.clamp(1, max) as u16) | if wrap { WRAP_BIT } else { 0 },
        Base::Raw(v) => v,
    };
    let cfg = RingConfig {
        size,
        desc: addr(&input.desc),
        avail: addr(&input.driver),
        used: addr(&input.device),
        event_idx: input.event_idx,
        packed: true,
    };
    let placed = PackedRing::new(layout.table.clone(), cfg, base);
    let expected = refusal(layout, &cfg, base);
    let mut ring = match (placed, expected) {
        (Ok(ring), None) => ring,
        (Err(e), Some(want)) => {
            assert_eq!(e, want, "{cfg:?} base {base:#x}");
            return;
        }
        (r, want) => panic!("{cfg:?} base {base:#x}: placed {r:?}, expected {want:?}"),
    };
    assert_eq!(ring.config(), cfg);
    assert_eq!(ring.last_avail(), base);
    assert!(ring.fault().is_none());
    if input.log {
        ring.set_log(Some(dirty_log()));
    }
    let mut fuzz = Fuzz {
        ring: Some(ring),
        layout,
        cfg,
        cnt: RingCounters::default(),
        cooldown: 0,
    };
    PKTS.with_borrow_mut(|pkts| {
        // More operations than `split_ring`'s 8: a hostile burst makes the ring sit out the
        // next COOLDOWN_BURSTS (15), and what follows them is worth reaching.
        for op in input.ops.iter().take(24) {
            fuzz.run(op, pkts);
        }
    });
});

/// Why `PackedRing::new` must refuse `cfg` at `base` (§2.7, §2.7.10.1), or `None`: the size
/// (1..=32768), the base's index (inside the ring), then each part in order (descriptor
/// ring, driver event, device event) aligned and inside one region.
fn refusal(layout: &Layout, cfg: &RingConfig, base: u16) -> Option<QueueError> {
    if cfg.size == 0 || cfg.size > u32::from(MAX_QUEUE_SIZE) {
        return Some(QueueError::BadSize(cfg.size));
    }
    if u32::from(base & !WRAP_BIT) >= cfg.size {
        return Some(QueueError::BadBase(base));
    }
    let parts = [
        (
            "descriptor",
            cfg.desc,
            desc::ALIGN,
            desc::ring_len(cfg.size),
        ),
        ("driver event", cfg.avail, event::ALIGN, event::SIZE),
        ("device event", cfg.used, event::ALIGN, event::SIZE),
    ];
    for (ring, addr, align, len) in parts {
        if addr.0 % align != 0 {
            return Some(QueueError::Misaligned { ring, addr: addr.0 });
        }
        if !layout
            .regions
            .iter()
            .any(|r| r.offset(addr.0, len).is_some())
        {
            return Some(QueueError::RingOutsideMemory { ring, addr: addr.0 });
        }
    }
    None
}

/// A placed ring and what the harness knows about it.
struct Fuzz<'a> {
    /// Always `Some` between operations (`Remap` takes it by value).
    ring: Option<PackedRing>,
    layout: &'a Layout,
    cfg: RingConfig,
    cnt: RingCounters,
    /// Bursts the ring still sits out (`COOLDOWN_BURSTS` after one that returned a chain
    /// over the cap), as the ring counts them: only bursts of a ring that is not broken.
    cooldown: u32,
}

/// A ring position in vhost-user's encoding: the descriptor index and the wrap counter.
fn split_pos(pos: u16) -> (u16, bool) {
    (pos & !WRAP_BIT, pos & WRAP_BIT != 0)
}

impl Fuzz<'_> {
    fn ring(&mut self) -> &mut PackedRing {
        self.ring.as_mut().expect("a ring between operations")
    }

    /// The guest address of descriptor `idx` of the ring.
    fn desc_addr(&self, idx: u16) -> u64 {
        self.cfg.desc.0 + desc::entry(idx)
    }

    /// True when `gpa` is one of the bytes the device writes into a used descriptor (len,
    /// id, flags: bytes 8-15 of any descriptor of the ring) or in its event structure.
    fn device_writable(&self, gpa: u64) -> bool {
        let ring = self.cfg.desc.0..self.cfg.desc.0 + desc::ring_len(self.cfg.size);
        let in_used = ring.contains(&gpa) && (gpa - ring.start) % desc::SIZE >= desc::LEN as u64;
        in_used || self.in_device_event(gpa)
    }

    fn in_device_event(&self, gpa: u64) -> bool {
        (self.cfg.used.0..self.cfg.used.0 + event::SIZE).contains(&gpa)
    }

    /// The descriptor at ring index `idx` in a snapshot (the ring lies in one region).
    fn desc_in(&self, snap: &[Vec<u8>], idx: u16) -> PackedDesc {
        let b = snapshot_at(self.layout, snap, self.desc_addr(idx), desc::SIZE)
            .expect("the ring was placed inside one region");
        PackedDesc::from_bytes(b.try_into().expect("16 bytes"))
    }

    /// True when the descriptor at the ring's position `pos` is available in its lap.
    fn head_avail(&self, snap: &[Vec<u8>], pos: u16) -> bool {
        let (idx, wrap) = split_pos(pos);
        is_avail(self.desc_in(snap, idx).flags, wrap)
    }

    fn run(&mut self, op: &Op, pkts: &mut [Packet]) {
        let broken = self.ring().fault().is_some();
        let pos = self.ring().last_avail();
        let before = self.cnt;
        match op {
            Op::Dequeue { room } => self.dequeue(usize::from(*room).min(BURST), pkts),
            Op::Enqueue { mrg, lens } => self.enqueue(*mrg, lens, pkts),
            Op::Post {
                ahead,
                addr,
                len,
                id,
                chain,
                mark,
            } => {
                let size = self.cfg.size;
                let (at, wrap) = split_pos(pos);
                let i = (u32::from(at) + u32::from(*ahead)) % size;
                // Its lap: the ring's own, or the next one for an index behind the position.
                let lap = if i >= u32::from(at) { wrap } else { !wrap };
                let (avail, used) = match *mark {
                    Mark::Avail => (lap, !lap),
                    Mark::Used => (lap, lap),
                    Mark::OtherLap => (!lap, lap),
                    Mark::Raw(a, u) => (a, u),
                };
                let mut flags = 0;
                for (bit, f) in [(1, DESC_F_NEXT), (2, DESC_F_WRITE), (4, DESC_F_INDIRECT)] {
                    if chain & bit != 0 {
                        flags |= f;
                    }
                }
                if avail {
                    flags |= DESC_F_AVAIL;
                }
                if used {
                    flags |= DESC_F_USED;
                }
                let d = PackedDesc {
                    addr: self.layout.regions[0].gpa.wrapping_add(u64::from(*addr)),
                    len: match *len {
                        Len::Bytes(n) => u32::from(n),
                        Len::Descs(n) => desc::SIZE as u32 * u32::from(n % 4097),
                    },
                    id: *id,
                    flags,
                };
                write_guest(self.layout, self.desc_addr(i as u16), &d.to_bytes());
            }
            Op::Fill {
                n,
                addr,
                len,
                write,
            } => self.fill(pos, *n, *addr, *len, *write),
            Op::DriverEvent { off, wrap, flags } => {
                let off = (*off % self.cfg.size as u16) | if *wrap { WRAP_BIT } else { 0 };
                let mut b = [0u8; event::SIZE as usize];
                b[..2].copy_from_slice(&off.to_le_bytes());
                b[2..].copy_from_slice(&u16::from(flags % 4).to_le_bytes());
                write_guest(self.layout, self.cfg.avail.0, &b);
            }
            Op::Write { at, value } => {
                let r = &self.layout.regions[0];
                let at = u64::from(*at) % (r.size - 1);
                write_guest(self.layout, r.gpa + at, &value.to_le_bytes());
            }
            Op::Kicks { enable } => self.kicks(*enable),
            Op::Pending => {
                let memory = snapshot(self.layout);
                let pending = self.ring().has_pending();
                assert_writes_within(self.layout, &memory, |_| false, "has_pending");
                assert_eq!(pending, !broken && self.head_avail(&memory, pos));
            }
            Op::Remap => {
                let memory = snapshot(self.layout);
                let ring = self.ring.take().expect("a ring between operations");
                let fault = ring.fault().cloned();
                let ring = ring
                    .remap(self.layout.table.clone(), self.cfg)
                    .expect("the configuration placed before places again");
                assert_eq!(ring.fault(), fault.as_ref(), "remap changed the fault");
                assert_eq!(ring.last_avail(), pos, "remap moved the ring");
                self.ring = Some(ring);
                // A new ring: no bursts to sit out. It disables kicks, as a new ring does
                // (even when broken: only its own event structure).
                self.cooldown = 0;
                let ev = |gpa| self.in_device_event(gpa);
                assert_writes_within(self.layout, &memory, ev, "remap");
            }
        }
        if broken {
            assert!(self.ring().fault().is_some(), "a broken ring was repaired");
            assert_eq!(self.cnt, before, "a broken ring counted");
        }
        if broken {
            assert_eq!(self.ring().last_avail(), pos, "a broken ring moved");
        }
    }

    /// [`Op::Fill`]: one read and one write of the ring, however many descriptors.
    fn fill(&self, pos: u16, n: u16, addr: u16, len: u16, write: bool) {
        let size = self.cfg.size;
        let memory = snapshot(self.layout);
        let mut ring = snapshot_at(self.layout, &memory, self.cfg.desc.0, desc::ring_len(size))
            .expect("the ring was placed inside one region")
            .to_vec();
        let (at, wrap) = split_pos(pos);
        let flags = if write { DESC_F_WRITE } else { 0 };
        for k in 0..u32::from(n).min(size) {
            let i = (u32::from(at) + k) % size;
            let lap = if i >= u32::from(at) { wrap } else { !wrap };
            let d = PackedDesc {
                addr: self.layout.regions[0].gpa.wrapping_add(u64::from(addr)),
                len: u32::from(len),
                id: k as u16,
                flags: flags | if lap { DESC_F_AVAIL } else { DESC_F_USED },
            };
            let off = desc::entry(i as u16) as usize;
            ring[off..off + desc::SIZE as usize].copy_from_slice(&d.to_bytes());
        }
        write_guest(self.layout, self.cfg.desc.0, &ring);
    }

    /// Whether a burst starts: false (and one burst counted off) while the ring sits out
    /// bursts; a broken ring starts none and counts nothing off.
    fn burst_starts(&mut self, broken: bool) -> bool {
        if broken {
            return false;
        }
        if self.cooldown > 0 {
            self.cooldown -= 1;
            return false;
        }
        true
    }

    /// After a burst that started: one that returned a chain over the cap (`guest_errors`
    /// moved) makes the ring sit out the next `COOLDOWN_BURSTS`; one that spent its
    /// descriptor budget does too (not visible from here: the ring says so, and then only
    /// `COOLDOWN_BURSTS` is right); any other sits out nothing.
    fn burst_ended(&mut self, before: &RingCounters) {
        let now = self.ring().sitting_out();
        if self.cnt.guest_errors != before.guest_errors {
            assert_eq!(
                now, COOLDOWN_BURSTS,
                "a burst over the cap cools the ring down"
            );
        } else {
            assert!(now == 0 || now == COOLDOWN_BURSTS, "sits out {now} bursts");
        }
        self.cooldown = now;
    }

    fn dequeue(&mut self, room: usize, pkts: &mut [Packet]) {
        let broken = self.ring().fault().is_some();
        let starts = self.burst_starts(broken);
        let pos = self.ring().last_avail();
        let before = self.cnt;
        let memory = snapshot(self.layout);
        let mut cnt = self.cnt;
        let (n, notify) = self.ring().dequeue(&mut pkts[..room], &mut cnt);
        self.cnt = cnt;
        check_dequeue(n, room, pkts, &before, &cnt);
        assert_eq!(cnt.notifications - before.notifications, u64::from(notify));
        // Every chain taken is one frame, one bad length or one over the cap.
        let chains = (cnt.packets - before.packets)
            + (cnt.dropped_bad_length - before.dropped_bad_length)
            + (cnt.guest_errors - before.guest_errors);
        if chains == 0 {
            assert!(!notify, "notify after a dequeue that completed no chain");
        }
        if !starts {
            assert_eq!(cnt, before, "a burst that did not start counted");
            assert_eq!(
                self.ring().last_avail(),
                pos,
                "a burst that did not start moved"
            );
            assert_writes_within(
                self.layout,
                &memory,
                |_| false,
                "a dequeue that did not start",
            );
            return;
        }
        self.burst_ended(&before);
        if room > 0 && self.head_avail(&memory, pos) {
            assert!(
                chains > 0 || self.ring().fault().is_some(),
                "a dequeue left the available chain at {pos:#x} in place"
            );
        }
        let changed = assert_writes_within(
            self.layout,
            &memory,
            |gpa| self.device_writable(gpa),
            "dequeue (outside used descriptors' len/id/flags and the device event)",
        );
        // Each descriptor written is a used one: length 0 (nothing written into a transmit
        // buffer) and AVAIL = USED (§2.7.1).
        let now = snapshot(self.layout);
        let ring = self.cfg.desc.0..self.cfg.desc.0 + desc::ring_len(self.cfg.size);
        let mut last = None;
        for gpa in changed.into_iter().filter(|g| ring.contains(g)) {
            let idx = ((gpa - ring.start) / desc::SIZE) as u16;
            if last.replace(idx) == Some(idx) {
                continue;
            }
            // Bytes 8-15 of the descriptor, unless the device event structure lies on them.
            if (0..desc::SIZE).any(|k| self.in_device_event(self.desc_addr(idx) + k)) {
                continue;
            }
            let d = self.desc_in(&now, idx);
            assert_eq!(d.len, 0, "used descriptor {idx}: {d:?}");
            assert!(
                d.flags == used_flags(false) || d.flags == used_flags(true),
                "used descriptor {idx}: {d:?}"
            );
        }
    }

    fn enqueue(&mut self, mrg: bool, lens: &[u16], pkts: &mut [Packet]) {
        let broken = self.ring().fault().is_some();
        let starts = self.burst_starts(broken);
        let pos = self.ring().last_avail();
        let before = self.cnt;
        let n = frames(pkts, lens);
        let memory = snapshot(self.layout);
        let mut cnt = self.cnt;
        let (taken, notify) = self.ring().enqueue(&pkts[..n], mrg, &mut cnt);
        self.cnt = cnt;
        check_enqueue(n, taken, &before, &cnt);
        assert_eq!(cnt.notifications - before.notifications, u64::from(notify));
        if !starts {
            assert_eq!(taken, 0);
            assert_eq!(cnt, before, "a burst that did not start counted");
            assert_eq!(
                self.ring().last_avail(),
                pos,
                "a burst that did not start moved"
            );
            assert_writes_within(
                self.layout,
                &memory,
                |_| false,
                "an enqueue that did not start",
            );
            return;
        }
        self.burst_ended(&before);
        // Without mergeable buffers the first frame takes the first chain, whatever it is (a
        // mergeable frame waits for enough buffers).
        if !mrg && n > 0 && self.head_avail(&memory, pos) {
            assert!(
                taken > 0 || self.ring().fault().is_some(),
                "an enqueue left the available chain at {pos:#x} in place"
            );
        }
    }

    fn kicks(&mut self, enable: bool) {
        let broken = self.ring().fault().is_some();
        let memory = snapshot(self.layout);
        let empty = if enable {
            Some(self.ring().enable_kicks())
        } else {
            self.ring().disable_kicks();
            None
        };
        let allowed = |gpa| !broken && self.in_device_event(gpa);
        assert_writes_within(
            self.layout,
            &memory,
            allowed,
            "kicks (outside the device event)",
        );
        if broken {
            assert_ne!(empty, Some(false), "a broken ring has buffers");
            return;
        }
        let now = snapshot(self.layout);
        let ev = snapshot_at(self.layout, &now, self.cfg.used.0, event::SIZE)
            .expect("the device event structure was placed inside one region");
        let off_wrap = u16::from_le_bytes([ev[0], ev[1]]);
        let flags = u16::from_le_bytes([ev[2], ev[3]]);
        let pos = self.ring().last_avail();
        match empty {
            None => assert_eq!(flags, event::FLAG_DISABLE),
            Some(empty) => {
                if self.cfg.event_idx {
                    assert_eq!((off_wrap, flags), (pos, event::FLAG_DESC));
                } else {
                    assert_eq!(flags, event::FLAG_ENABLE);
                }
                // The device event structure may lie on the descriptor: read it afterwards.
                assert_eq!(empty, !self.head_avail(&now, pos));
            }
        }
    }
}
