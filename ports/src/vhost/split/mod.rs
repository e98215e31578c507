//! Our split virtqueue (virtio 1.1 §2.6), written for bursts and hostile drivers, in three
//! layers:
//!
//! - [`layout`]: where every field lives (descriptor flags and bytes, the offsets of the
//!   available and used rings as functions of the queue size);
//! - `chain`: the descriptor chain walk, every step of it bounded and checked;
//! - `queue`: the ring ([`SplitRing`]), validated once at start, then driven a burst at a
//!   time by the net paths ([`crate::vhost::net`], over the `Virtq` primitives it shares
//!   with the packed ring, [`crate::vhost::packed`]).
//!
//! Every walk the driver controls is bounded: the avail index may not run more than the
//! queue size ahead, a chain lives at most `size` descriptors (per table), indices are
//! checked against their table, lengths are summed with `checked_add`, and indirect tables
//! nest at most once. Any violation marks the ring broken ([`SplitRing::fault`]): it moves
//! nothing more until the frontend restarts it, and only this ring is affected. Errors are
//! one enum for both formats, [`QueueError`].
//!
//! Guest memory is only touched through the memory table's range-checked accessors
//! ([`crate::vhost::hostmem::HostRegion`]: one range check, then a copy or an atomic), so an
//! address outside the mapped regions is an error, never an access. Descriptors are copied
//! into our stack before they are used (no double fetch); the payload is copied exactly once.

mod chain;
pub mod layout;
mod queue;
#[cfg(test)]
mod tests;

pub use crate::vhost::virtq::{
    QueueError, RingConfig, BURST_DESC_BUDGET, COOLDOWN_BURSTS, MAX_CHAIN_DESCS,
};
pub use layout::MAX_QUEUE_SIZE;
pub use queue::SplitRing;
