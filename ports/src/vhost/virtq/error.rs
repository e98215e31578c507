//! Why a ring (split or packed) was refused at start or broken later: one error enum for the
//! rings, their chain walks and the net paths. Every variant is a driver (guest or frontend) error.

use super::MAX_CHAIN_DESCS;

/// Why a ring was refused at start or broken later. Every variant is a driver (guest or
/// frontend) error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The queue size is 0 or above 32768, or, for a split ring, not a power of two (§2.6,
    /// §2.7).
    #[error("queue size {0} is invalid (1..=32768, and a power of two for a split ring)")]
    BadSize(u32),
    /// A packed ring's starting position (`SET_VRING_BASE`, bits 0-14) is past the ring.
    #[error("packed ring base {0:#x} points past the ring")]
    BadBase(u16),
    /// A ring is not aligned as §2.6 requires (descriptors 16, avail 2, used 4), or a packed
    /// ring's parts as §2.7.10.1 does (descriptors 16, event suppression areas 4).
    #[error("{ring} ring at {addr:#x} is misaligned")]
    Misaligned {
        /// Which ring.
        ring: &'static str,
        /// Its guest physical address.
        addr: u64,
    },
    /// A ring does not lie inside one mapped region.
    #[error("{ring} ring at {addr:#x} is not inside one memory region")]
    RingOutsideMemory {
        /// Which ring.
        ring: &'static str,
        /// Its guest physical address.
        addr: u64,
    },
    /// `avail.idx` ran more than the queue size ahead of what we consumed (§2.6.6).
    #[error("avail idx {avail} is more than the queue size ahead of {last}")]
    AvailIdxJump {
        /// The driver's avail index.
        avail: u16,
        /// Our next avail index.
        last: u16,
    },
    /// An avail ring entry names a descriptor past the table (§2.6.6).
    #[error("chain head {0} is outside the descriptor table")]
    HeadOutOfRange(u16),
    /// A `next` field points past its table (§2.6.5).
    #[error("descriptor next {0} is outside its table")]
    NextOutOfRange(u16),
    /// A chain is longer than its table: a loop, or a chain longer than the queue
    /// (§2.6.5.3.1: "A driver MUST NOT create a descriptor chain longer than the Queue Size").
    #[error("descriptor chain longer than its table (a loop?)")]
    ChainTooLong,
    /// A packed ring chain spans more than [`MAX_CHAIN_DESCS`] descriptors of the ring itself.
    /// A ring fault, unlike [`QueueError::ChainOverCap`]: such a chain cannot be skipped
    /// without walking it (its end is only known from its last descriptor), and no driver
    /// writes one (Linux chains at most `MAX_SKB_FRAGS + 2` buffers, and moves longer ones
    /// into an indirect table).
    #[error("packed ring chain spans more than {MAX_CHAIN_DESCS} ring descriptors")]
    RingChainOverCap,
    /// An indirect descriptor inside an indirect table (§2.6.5.3.1).
    #[error("indirect descriptor inside an indirect table")]
    NestedIndirect,
    /// An indirect descriptor with `NEXT` set (§2.6.5.3.1).
    #[error("indirect descriptor with VIRTQ_DESC_F_NEXT")]
    IndirectWithNext,
    /// An indirect table whose length is 0, not a multiple of 16, or over the queue size
    /// (§2.6.5.3).
    #[error("indirect table length {0} is invalid")]
    BadIndirectLen(u32),
    /// A chain (or the chains of one mergeable frame) has more than [`MAX_CHAIN_DESCS`]
    /// descriptors. Not a ring fault: the chain is returned unused and counted.
    #[error("descriptor chain over {MAX_CHAIN_DESCS} descriptors")]
    ChainOverCap,
    /// A chain adds up to more than 2^32 bytes (§2.6.5.2).
    #[error("descriptor chain longer than 2^32 bytes")]
    ChainTooLarge,
    /// A device-writable buffer on a transmit chain or a read-only one on a receive chain
    /// (§2.6.5.1: "A device MUST NOT write to a device-readable buffer").
    #[error("buffer with the wrong direction for this ring")]
    WrongDirection,
    /// The guest's memory file was truncated under the switch (a SIGBUS on one of its
    /// regions, repaired by [`crate::vhost::sigbus`]): the ring stops until the frontend sets its
    /// memory up again.
    #[error("guest memory was truncated under the switch")]
    MemoryFault,
    /// A buffer or an indirect table lies (partly) outside the mapped memory.
    #[error("buffer at {addr:#x} (+{len}) is outside guest memory")]
    BufferOutsideMemory {
        /// Guest physical address.
        addr: u64,
        /// Length.
        len: u64,
    },
}

impl QueueError {
    /// True when the driver caused it. Always true today; kept so callers branch the same way
    /// on every module's error.
    pub fn is_guest_fault(&self) -> bool {
        true
    }
}
