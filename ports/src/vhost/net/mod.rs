//! The virtio-net device's two datapaths over a virtqueue (virtio 1.1 §5.1.6): what the
//! switch takes from a guest's transmit queue (`tx`: `dequeue`, header and frame copied
//! once, the header kept as the frame's offload request) and what it writes into a guest's receive queue (`rx`: `enqueue`, header, frame,
//! mergeable buffers). They are written once over the ring primitives both formats offer
//! (`Virtq`, [`crate::vhost::virtq`]) and compiled for each: [`SplitRing::dequeue`],
//! [`PackedRing::dequeue`] and their `enqueue`s.
//!
//! Each burst learns once what the driver made available (the split ring reads `avail.idx`;
//! the packed ring reads each chain's flags as it reaches it), writes its used elements,
//! publishes them with one Release store and decides once whether the driver wants an
//! interrupt. Work is bounded whatever
//! the driver writes (zero-length descriptors, indirect tables as long as the ring, mergeable
//! frames over empty chains): a chain, and the chains of one mergeable frame together, read
//! at most [`MAX_CHAIN_DESCS`] descriptors, or they are returned unused and counted; a burst
//! reads at most about [`BURST_DESC_BUDGET`] descriptors and leaves the rest in the ring; and
//! a ring that returned such chains sits out the next [`COOLDOWN_BURSTS`] bursts.
//! `bench/benches/vring.rs` measures a hostile burst against a benign one.

mod rx;
mod tx;

use crate::offload::VirtioNetHdr;
use crate::packet::Packet;
use crate::vhost::packed::PackedRing;
use crate::vhost::split::SplitRing;
#[cfg(doc)]
use crate::vhost::virtq::{BURST_DESC_BUDGET, COOLDOWN_BURSTS, MAX_CHAIN_DESCS};

/// The net paths of one ring format, as its own methods.
macro_rules! net_paths {
    ($ring:ty) => {
        impl $ring {
            /// Takes up to `pkts.len()` frames from a guest transmit ring into `pkts[..n]`,
            /// each with its virtio-net header as its offload request, completes the chains
            /// (used length 0) and returns `n` and whether the driver must be notified. Bad
            /// chains are dropped and counted; ring faults break the ring.
            pub fn dequeue(
                &mut self,
                pkts: &mut [Packet],
                cnt: &mut RingCounters,
            ) -> (usize, bool) {
                tx::dequeue(self, pkts, cnt)
            }

            /// Writes `pkts` (each frame behind a header made from its offload request) into a
            /// guest receive ring, with or without mergeable buffers. Returns how many frames
            /// were taken (sent, or dropped and counted because a chain was too small) and
            /// whether the driver must be notified. Stops early when the ring has no buffers
            /// left or breaks.
            pub fn enqueue(
                &mut self,
                pkts: &[Packet],
                mrg: bool,
                cnt: &mut RingCounters,
            ) -> (usize, bool) {
                rx::enqueue(self, pkts, mrg, cnt)
            }
        }
    };
}

net_paths!(SplitRing);
net_paths!(PackedRing);

/// `struct virtio_net_hdr_mrg_rxbuf` (§5.1.6): with VERSION_1 the header is always 12 bytes,
/// whether or not MRG_RXBUF was negotiated.
pub const NET_HDR_LEN: usize = VirtioNetHdr::LEN;

/// The virtio-net header written in front of a frame for the guest: the frame's offload
/// request (none unless the switch passes a partial checksum or a TSO frame on to a guest
/// that negotiated it), `num_buffers` set (1 without MRG_RXBUF, §5.1.6.4).
#[inline(always)]
fn header(pkt: &Packet, num_buffers: u16) -> [u8; NET_HDR_LEN] {
    pkt.offload().header_bytes(num_buffers)
}

/// Per-vring counters, updated by the PMD that owns the ring.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RingCounters {
    /// Frames moved.
    pub packets: u64,
    /// Bytes moved (frames, without the virtio-net header).
    pub bytes: u64,
    /// Transmit chains dropped: shorter than the header or longer than a frame may be.
    pub dropped_bad_length: u64,
    /// Frames for the guest dropped because the receive chain was too small (no MRG_RXBUF).
    pub dropped_too_small: u64,
    /// Frames for the guest not sent because its receive ring had no buffers.
    pub dropped_no_buffers: u64,
    /// Interrupts sent to the driver.
    pub notifications: u64,
    /// Interrupts not delivered: the driver's call eventfd was full, closed, or made
    /// blocking behind our back.
    pub interrupts_lost: u64,
    /// Chains returned to the driver unused because they broke a per-chain bound
    /// ([`MAX_CHAIN_DESCS`] descriptors per chain or per mergeable frame).
    pub guest_errors: u64,
}
