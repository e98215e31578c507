//! The virtqueue's former single file, now [`super::split`] and [`super::packed`] (the two
//! ring formats), [`super::virtq`] (what they share) and [`super::net`] (the virtio-net
//! transmit and receive paths). Its public names stay reachable here.

pub use super::net::{RingCounters, NET_HDR_LEN};
pub use super::split::{SplitRing, MAX_QUEUE_SIZE};
pub use super::virtq::{
    QueueError, RingConfig, Virtqueue, BURST_DESC_BUDGET, COOLDOWN_BURSTS, MAX_CHAIN_DESCS,
};
