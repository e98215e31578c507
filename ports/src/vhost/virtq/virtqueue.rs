//! The ring a vring runs, in whichever format the frontend negotiated: one `match` per call
//! (a burst, a notification change), never per frame.

use std::sync::Arc;

use super::{QueueError, RingConfig};
use crate::packet::Packet;
use crate::vhost::memory::{DirtyLog, GuestMemoryTable};
use crate::vhost::net::RingCounters;
use crate::vhost::packed::PackedRing;
use crate::vhost::split::SplitRing;

/// A started ring: split (§2.6) or packed (§2.7, VIRTIO_F_RING_PACKED).
#[derive(Debug)]
pub enum Virtqueue {
    /// A split ring.
    Split(SplitRing),
    /// A packed ring.
    Packed(PackedRing),
}

/// Calls the same method on whichever ring it is.
macro_rules! each {
    ($self:expr, $r:ident => $e:expr) => {
        match $self {
            Virtqueue::Split($r) => $e,
            Virtqueue::Packed($r) => $e,
        }
    };
}

impl Virtqueue {
    /// Validates `cfg` against `mem` and starts a ring of its format at `base` (the avail
    /// index of a split ring; a packed ring's position and wrap counter, bit 15).
    pub fn new(
        mem: Arc<GuestMemoryTable>,
        cfg: RingConfig,
        base: u16,
    ) -> Result<Virtqueue, QueueError> {
        Ok(if cfg.packed {
            Virtqueue::Packed(PackedRing::new(mem, cfg, base)?)
        } else {
            Virtqueue::Split(SplitRing::new(mem, cfg, base)?)
        })
    }

    /// Where the ring stopped, as `GET_VRING_BASE` reports it.
    pub fn last_avail(&self) -> u16 {
        each!(self, r => r.last_avail())
    }

    /// The configuration the ring was started with.
    pub fn config(&self) -> RingConfig {
        each!(self, r => r.config())
    }

    /// Starts or stops marking writes in a dirty log.
    pub fn set_log(&mut self, log: Option<Arc<DirtyLog>>) {
        each!(self, r => r.set_log(log))
    }

    /// Reads or skips the offload request in each transmitted frame's header (the driver
    /// acked `VIRTIO_NET_F_CSUM` or not).
    pub fn set_tx_offloads(&mut self, on: bool) {
        each!(self, r => r.set_tx_offloads(on))
    }

    /// On a transmit ring with VIRTIO_F_IN_ORDER: returns each burst's chains with one used
    /// descriptor ([`PackedRing::set_batch_used`]). The split ring writes every used element
    /// (DPDK's in-order split driver reads each one's id).
    pub fn set_batch_used(&mut self, on: bool) {
        if let Virtqueue::Packed(r) = self {
            r.set_batch_used(on);
        }
    }

    /// True when the ring reads and writes through `mem`.
    pub fn uses(&self, mem: &Arc<GuestMemoryTable>) -> bool {
        each!(self, r => r.uses(mem))
    }

    /// Why the ring is broken, if it is.
    pub fn fault(&self) -> Option<&QueueError> {
        each!(self, r => r.fault())
    }

    /// Moves the ring onto a new memory table (same configuration and position).
    pub fn remap(
        self,
        mem: Arc<GuestMemoryTable>,
        cfg: RingConfig,
    ) -> Result<Virtqueue, QueueError> {
        if cfg.packed != self.config().packed {
            // A format change is a new ring, from where this one stopped.
            return Virtqueue::new(mem, cfg, self.last_avail());
        }
        Ok(match self {
            Virtqueue::Split(r) => Virtqueue::Split(r.remap(mem, cfg)?),
            Virtqueue::Packed(r) => Virtqueue::Packed(r.remap(mem, cfg)?),
        })
    }

    /// Asks the driver for kicks again; true when the ring is still empty afterwards.
    pub fn enable_kicks(&mut self) -> bool {
        each!(self, r => r.enable_kicks())
    }

    /// Stops kicks while the PMD polls.
    pub fn disable_kicks(&mut self) {
        each!(self, r => r.disable_kicks())
    }

    /// True when the driver made buffers available (false when broken).
    pub fn has_pending(&mut self) -> bool {
        each!(self, r => r.has_pending())
    }

    /// Takes a burst of frames from a guest transmit ring ([`SplitRing::dequeue`]).
    #[inline]
    pub fn dequeue(&mut self, pkts: &mut [Packet], cnt: &mut RingCounters) -> (usize, bool) {
        each!(self, r => r.dequeue(pkts, cnt))
    }

    /// Writes a burst of frames into a guest receive ring ([`SplitRing::enqueue`]).
    #[inline]
    pub fn enqueue(&mut self, pkts: &[Packet], mrg: bool, cnt: &mut RingCounters) -> (usize, bool) {
        each!(self, r => r.enqueue(pkts, mrg, cnt))
    }
}
