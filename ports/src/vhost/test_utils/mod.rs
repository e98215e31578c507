//! A guest-side virtio driver for tests and benchmarks, published behind the `test-utils`
//! feature (as rust-vmm's `virtio-queue` publishes its `mock` module) so that the unit tests
//! here, the `ports` and `switch` integration tests and `bench` share one driver.
//!
//! Two levels: [`DriverRing`] is the driver side of one split ring and [`PackedDriverRing`]
//! of one packed ring, over any guest memory a test maps (unit tests and benchmarks build
//! rings straight into a [`crate::vhost::memory::GuestMemoryTable`]); [`Guest`] is a whole
//! guest and VMM, a `vhost` crate `Frontend` negotiating with a `VhostUserPort` over its
//! socket and then driving its vrings (split, or packed when asked for [`PACKED`]). The rest
//! are small helpers the tests share (frames, waiting, polling).
//!
//! Test code: it panics on any error instead of returning it.

mod attached;
mod guest;
mod guest_packed;
mod packed;
mod ring;

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

pub use attached::Attached;
pub use guest::{memfd, region, Guest, SockDir, BUF_BASE, MEM_SIZE, QSIZE, RING_AREA, VA_BASE};
pub use packed::{PackedDriverRing, NOT_AN_ID};
pub use ring::{write_desc_at, DriverRing};

pub use crate::vhost::split::layout::{DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};
use crate::vhost::{VhostUserPort, VringStats};
use crate::Packet;

/// Features a test can ask for (besides VERSION_1 and PROTOCOL_FEATURES, always acked):
/// mergeable receive buffers.
pub const MRG: u64 = crate::vhost::handler::VIRTIO_NET_F_MRG_RXBUF;
/// The event index fields.
pub const EVENT_IDX: u64 = crate::vhost::handler::VIRTIO_F_RING_EVENT_IDX;
/// Indirect descriptors.
pub const INDIRECT: u64 = crate::vhost::handler::VIRTIO_F_RING_INDIRECT_DESC;
/// In-order use of buffers.
pub const IN_ORDER: u64 = crate::vhost::handler::VIRTIO_F_IN_ORDER;
/// Checksum and TSO offloads, both directions ([`crate::offload`]).
pub const OFFLOADS: u64 = crate::vhost::handler::OFFLOAD_FEATURES;
/// The packed ring layout: [`Guest`] drives every vring with a [`PackedDriverRing`].
pub const PACKED: u64 = crate::vhost::handler::VIRTIO_F_RING_PACKED;

/// A test frame: `len` bytes, pattern seeded by `seed`.
pub fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

/// Packets holding `frames`.
pub fn packets(frames: &[Vec<u8>]) -> Vec<Packet> {
    frames
        .iter()
        .map(|f| {
            let mut p = Packet::new();
            assert!(p.copy_from(f));
            p
        })
        .collect()
}

/// A burst's worth of empty packets.
pub fn burst() -> Vec<Packet> {
    vec![Packet::new(); crate::BURST]
}

/// Waits until `cond` holds (or panics after 5 s).
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The counters of vring `v` of `port`.
pub fn vring_stats(port: &VhostUserPort, v: usize) -> VringStats {
    port.stats().vrings[v]
}

/// True if `fd` is readable now.
pub fn readable(fd: impl AsFd) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::ZERO).unwrap() > 0
}
