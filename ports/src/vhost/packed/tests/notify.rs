//! Event suppression on the packed ring (§2.7.10): what the device writes into its own area
//! (kicks disabled while polling; ENABLE, or DESC and its position with EVENT_IDX, before it
//! sleeps) and how it reads the driver's (flags, and with EVENT_IDX the offset and wrap
//! counter a burst must pass, also across the end of the ring).

use std::sync::Arc;

use super::{start, table, write_tx_buffer};
use crate::packet::Packet;
use crate::vhost::memory::GuestMemoryTable;
use crate::vhost::net::RingCounters;
use crate::vhost::packed::layout::{event, WRAP_BIT};
use crate::vhost::packed::PackedRing;
use crate::vhost::test_utils::{frame, PackedDriverRing};

/// A transmit ring of 8 and its driver, and the counters of its bursts.
struct Rig {
    mem: Arc<GuestMemoryTable>,
    d: PackedDriverRing,
    ring: PackedRing,
    cnt: RingCounters,
}

impl Rig {
    fn new(event_idx: bool) -> Rig {
        let mem = table();
        let d = PackedDriverRing::at(1, 8, 0);
        let ring = start(&mem, &d, event_idx);
        Rig {
            mem,
            d,
            ring,
            cnt: RingCounters::default(),
        }
    }

    /// Makes `n` one-descriptor chains available.
    fn offer(&mut self, n: usize) {
        for i in 0..n {
            let a = 0x4_0000 + 0x100 * i as u64;
            let l = write_tx_buffer(&self.mem, a, &frame(60, i as u8));
            self.d.add_chain(self.mem.mem(), &[(a, l, 0)]);
        }
        self.d.publish(self.mem.mem());
    }

    /// One burst over `n` new chains: whether the device would interrupt the driver.
    fn burst(&mut self, n: usize) -> bool {
        self.offer(n);
        let mut pkts = vec![Packet::new(); 8];
        let (got, notify) = self.ring.dequeue(&mut pkts, &mut self.cnt);
        assert_eq!(got, n, "{:?}", self.ring.fault());
        assert_eq!(self.d.take_used(self.mem.mem()).len(), n);
        notify
    }

    fn driver_event(&self, off_wrap: u16, flags: u16) {
        self.d.set_driver_event(self.mem.mem(), off_wrap, flags);
    }

    fn device_event(&self) -> (u16, u16) {
        self.d.device_event(self.mem.mem())
    }
}

/// A new ring polls (kicks disabled); `enable_kicks` asks for any kick without EVENT_IDX and
/// for one at its position with it (wrap counter in bit 15, across the end of the ring);
/// `disable_kicks` stops them again. An empty ring may sleep.
#[test]
fn the_device_event_area_follows_enable_and_disable() {
    let mut r = Rig::new(false);
    assert_eq!(r.device_event().1, event::FLAG_DISABLE);
    assert!(r.ring.enable_kicks(), "empty: may sleep");
    assert_eq!(r.device_event().1, event::FLAG_ENABLE);
    r.ring.disable_kicks();
    assert_eq!(r.device_event().1, event::FLAG_DISABLE);

    let mut r = Rig::new(true);
    assert_eq!(r.device_event().1, event::FLAG_DISABLE);
    r.burst(3);
    assert!(r.ring.enable_kicks());
    assert_eq!(r.device_event(), (3 | WRAP_BIT, event::FLAG_DESC));
    r.ring.disable_kicks();
    assert_eq!(r.device_event().1, event::FLAG_DISABLE);
    r.burst(6);
    assert!(r.ring.enable_kicks());
    assert_eq!(
        r.device_event(),
        (1, event::FLAG_DESC),
        "position 1, wrap counter 0"
    );
}

/// A chain made available before the device asked for kicks is seen: no sleep.
#[test]
fn enable_kicks_is_false_when_a_chain_is_available() {
    for event_idx in [false, true] {
        let mut r = Rig::new(event_idx);
        r.offer(1);
        assert!(!r.ring.enable_kicks(), "event_idx={event_idx}");
        assert!(r.ring.has_pending());
    }
}

/// Without EVENT_IDX only the driver's flags count: DISABLE, no interrupt; ENABLE, one per
/// burst; DESC (not negotiated) counts as enabled.
#[test]
fn notify_without_event_idx_follows_the_driver_flags() {
    let mut r = Rig::new(false);
    r.driver_event(0, event::FLAG_DISABLE);
    assert!(!r.burst(2));
    r.driver_event(0, event::FLAG_ENABLE);
    assert!(r.burst(2));
    assert!(r.burst(1));
    r.driver_event(7, event::FLAG_DESC);
    assert!(r.burst(1));
    assert_eq!(r.cnt.notifications, 3);
}

/// With EVENT_IDX and DESC, an interrupt when a burst's used descriptors pass the driver's
/// offset in its lap (§2.7.10; DPDK's `vhost_vring_call_packed`), including bursts that cross
/// the end of the ring and offsets in the lap before or after; DISABLE still wins.
#[test]
fn notify_with_event_idx_checks_the_offset_in_its_lap() {
    let mut r = Rig::new(true);
    let (w1, w0) = (WRAP_BIT, 0);
    // Positions: n of the first lap (wrap counter 1), n' of the second (0), n'' of the third.
    let cases = [
        // (offset and wrap, flags, chains in the burst, used position after, interrupt?)
        (w1, event::FLAG_DESC, 1, "1", true), // the first decision
        (1 | w1, event::FLAG_DESC, 2, "3", true),
        (5 | w1, event::FLAG_DESC, 2, "5", false),
        (5 | w1, event::FLAG_DESC, 1, "6", true),
        (5 | w1, event::FLAG_DISABLE, 1, "7", false),
        // Bursts across the end of the ring: 7 -> 3' passes 7 of the first lap.
        (7 | w1, event::FLAG_DESC, 4, "3'", true),
        // 2' was passed before the burst 3' -> 7'.
        (2 | w0, event::FLAG_DESC, 4, "7'", false),
        // 7' -> 1'' passes 0''.
        (w1, event::FLAG_DESC, 2, "1''", true),
        // 3' is a lap back.
        (3 | w0, event::FLAG_DESC, 2, "3''", false),
        (3 | w1, event::FLAG_DESC, 1, "4''", true),
        // 4'' -> 1''' does not reach 1'''; 1''' -> 2''' does.
        (1 | w0, event::FLAG_DESC, 5, "1'''", false),
        (1 | w0, event::FLAG_DESC, 1, "2'''", true),
    ];
    let mut want_notifications = 0;
    for (off_wrap, flags, n, at, want) in cases {
        r.driver_event(off_wrap, flags);
        assert_eq!(r.burst(n), want, "offset {off_wrap:#x}, burst to {at}");
        want_notifications += u64::from(want);
    }
    assert_eq!(r.cnt.notifications, want_notifications);
}
