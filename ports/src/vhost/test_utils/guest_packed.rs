//! What a [`Guest`] that negotiated the packed ring ([`super::PACKED`]) does beyond a split
//! one: start its vrings at a packed position, and write and read the two event suppression
//! areas (the split ring's `avail.flags`/`used_event` and `used.flags`/`avail_event`).

use super::guest::{Guest, VA_BASE};
use super::packed::PackedDriverRing;

impl Guest {
    /// SET_VRING_NUM/ADDR/BASE/CALL/KICK/ENABLE for packed ring `r` (addresses as the VMM's
    /// VAs), starting the device at the driver's avail position
    /// ([`PackedDriverRing::avail_base`]: `0x8000` for a fresh ring), as the split ring's
    /// [`Guest::start_vring`] starts at the driver's avail index: where a ring that took every
    /// chain made available stopped.
    pub fn start_packed_vring(&mut self, r: &PackedDriverRing) {
        self.start_packed_vring_at(
            r,
            VA_BASE + r.desc,
            VA_BASE + r.driver,
            VA_BASE + r.device,
            r.avail_base(),
        )
        .unwrap();
    }

    /// [`Guest::start_packed_vring`] with the parts at the given VMM addresses and the given
    /// `SET_VRING_BASE` value (any values: hostile tests use bad ones). In `SET_VRING_ADDR`
    /// the driver event area travels as the avail ring, the device event area as the used
    /// ring.
    pub fn start_packed_vring_at(
        &mut self,
        r: &PackedDriverRing,
        desc_va: u64,
        driver_va: u64,
        device_va: u64,
        base: u16,
    ) -> vhost::Result<()> {
        self.start_ring(r.vring, r.size, [desc_va, driver_va, device_va], base)
    }

    /// Writes the driver event suppression area of packed ring `v`.
    pub fn set_driver_event(&self, v: usize, off_wrap: u16, flags: u16) {
        self.packed[v].set_driver_event(&self.mem, off_wrap, flags);
    }

    /// The device event suppression area of packed ring `v`: (`off_wrap`, `flags`).
    pub fn device_event(&self, v: usize) -> (u16, u16) {
        self.packed[v].device_event(&self.mem)
    }

    /// Writes `bufs` as an indirect table at `table` and adds one descriptor of packed ring
    /// `v` pointing at it (not yet published). Returns the buffer id.
    pub fn add_indirect(&mut self, v: usize, table: u64, bufs: &[(u64, u32, u16)]) -> u16 {
        self.packed[v].add_indirect(&self.mem, table, bufs)
    }
}
