//! The split-ring walk over fuzzed guest memory and ring state.
//!
//! Guest memory is a memfd (as the switch requires), mapped once per process in one of four
//! layouts; each input rewrites its bytes, places a `SplitRing` with a fuzzed size, ring
//! addresses, event-idx and base, and runs a few operations: dequeue and enqueue bursts
//! (mergeable buffers on and off), guest writes between them (a new avail index, say), and
//! kick toggling. Checked, beyond "never panics" (and ASan):
//! - a burst moves at most the frames it was given room for (32, `ports::BURST`), and its
//!   counters add up (`packets` is the frames returned; an enqueue's frames are each sent,
//!   too small, over the cap or not taken for lack of buffers);
//! - a dequeue writes nothing in guest memory but the used ring;
//! - a broken ring moves nothing more.
#![no_main]

#[path = "../common/guest.rs"]
mod guest;

use guest::{
    assert_writes_within, check_dequeue, check_enqueue, dirty_log, fill, frames, layouts, snapshot,
    write_guest, Layout, LAYOUTS, PKTS,
};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use ports::vhost::split::layout::used;
use ports::vhost::split::{RingConfig, SplitRing};
use ports::vhost::RingCounters;
use ports::{Packet, BURST};
use vm_memory::GuestAddress;

#[derive(Arbitrary, Debug)]
enum Size {
    /// `1 << (n % 16)`: every valid size.
    Pow(u8),
    /// Anything (0, not a power of two, too large).
    Raw(u32),
}

#[derive(Arbitrary, Debug)]
enum Addr {
    /// An offset from the layout's first region.
    Near(u16),
    /// Any guest address.
    Raw(u64),
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Take frames from the guest: room for `BURST` or fewer.
    Dequeue { room: u8 },
    /// Frames of these lengths into the guest.
    Enqueue { mrg: bool, lens: Vec<u16> },
    /// The guest writes a 16-bit value (an avail index, a descriptor field) at an offset of
    /// the first region.
    Write { at: u16, value: u16 },
    /// The PMD asks for kicks again (and sees whether buffers arrived), or stops them.
    Kicks { enable: bool },
}

#[derive(Arbitrary, Debug)]
struct Input {
    layout: u8,
    size: Size,
    desc: Addr,
    avail: Addr,
    used: Addr,
    event_idx: bool,
    base: u16,
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
        Addr::Near(off) => GuestAddress(first.wrapping_add(u64::from(off))),
        Addr::Raw(a) => GuestAddress(a),
    };
    let size = match input.size {
        Size::Pow(n) => 1u32 << (n % 16),
        Size::Raw(n) => n,
    };
    let cfg = RingConfig {
        size,
        desc: addr(&input.desc),
        avail: addr(&input.avail),
        used: addr(&input.used),
        event_idx: input.event_idx,
        packed: false,
    };
    let Ok(mut ring) = SplitRing::new(layout.table.clone(), cfg, input.base) else {
        return;
    };
    assert_eq!(ring.config(), cfg);
    if input.log {
        ring.set_log(Some(dirty_log()));
    }
    // The used ring's guest range: the only bytes a dequeue may write.
    let used_start = cfg.used.0;
    let used_end = used_start + used::ring_len(size);
    let mut cnt = RingCounters::default();
    PKTS.with_borrow_mut(|pkts| {
        for op in input.ops.iter().take(8) {
            run(
                &mut ring,
                op,
                pkts,
                &mut cnt,
                layout,
                (used_start, used_end),
            );
        }
    });
});

fn run(
    ring: &mut SplitRing,
    op: &Op,
    pkts: &mut [Packet],
    cnt: &mut RingCounters,
    layout: &Layout,
    used: (u64, u64),
) {
    let broken = ring.fault().is_some();
    let before = *cnt;
    match op {
        Op::Dequeue { room } => {
            let room = usize::from(*room).min(BURST);
            let memory = snapshot(layout);
            let (n, _notify) = ring.dequeue(&mut pkts[..room], cnt);
            check_dequeue(n, room, pkts, &before, cnt);
            if broken {
                assert_eq!(n, 0, "a broken ring moved frames");
            }
            assert_writes_within(
                layout,
                &memory,
                |gpa| (used.0..used.1).contains(&gpa),
                "dequeue (outside the used ring)",
            );
        }
        Op::Enqueue { mrg, lens } => {
            let n = frames(pkts, lens);
            let (taken, _notify) = ring.enqueue(&pkts[..n], *mrg, cnt);
            check_enqueue(n, taken, &before, cnt);
            if broken {
                assert_eq!(taken, 0, "a broken ring took frames");
            }
        }
        Op::Write { at, value } => {
            let r = &layout.regions[0];
            let at = u64::from(*at) % (r.size - 1);
            write_guest(layout, r.gpa + at, &value.to_le_bytes());
        }
        Op::Kicks { enable } => {
            if *enable {
                let _ = ring.enable_kicks();
            } else {
                ring.disable_kicks();
            }
            let _ = ring.has_pending();
        }
    }
}
