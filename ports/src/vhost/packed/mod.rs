//! Our packed virtqueue (virtio 1.1 §2.7), offered as VIRTIO_F_RING_PACKED beside the split
//! ring ([`crate::vhost::split`]) and driven by the same net paths ([`crate::vhost::net`],
//! over the `Virtq` primitives of [`crate::vhost::virtq`]), with the same bounds:
//!
//! - [`layout`]: the descriptor's bytes, its AVAIL/USED flags and the event suppression
//!   structures;
//! - `chain`: the chain walk (ring descriptors, then at most one indirect table), every step
//!   bounded and checked;
//! - `ring`: the descriptors, reached by index after one check of the ring's placement;
//! - `queue`: the ring ([`PackedRing`]): placed and validated once, then a burst at a time.
//!
//! One array holds what the split ring keeps in three: the driver makes a descriptor
//! available by flipping its flags, and the device writes the used descriptor over the
//! chain's first one. A burst therefore touches one run of cache lines the guest's core also
//! touches, instead of the descriptor table, the avail ring and the used ring.
//!
//! Bounds beyond the split ring's: a chain may span at most [`MAX_CHAIN_DESCS`] ring
//! descriptors (more breaks the ring: [`QueueError::RingChainOverCap`]); the position the
//! frontend starts the ring at must lie inside it. Descriptors are copied out of guest memory
//! once, after an Acquire load of the first one's flags (no double fetch).

mod chain;
pub mod layout;
mod queue;
#[allow(unsafe_code)]
mod ring;
#[cfg(test)]
mod tests;

pub use layout::MAX_QUEUE_SIZE;
pub use queue::PackedRing;

#[cfg(doc)]
use crate::vhost::virtq::{QueueError, MAX_CHAIN_DESCS};
