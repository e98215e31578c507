//! The virtqueue's former single file, now [`super::split`] (the ring: layout, chain walk,
//! queue) and [`super::net`] (the virtio-net transmit and receive paths). Its public names
//! stay reachable here.

pub use super::net::{RingCounters, NET_HDR_LEN};
pub use super::split::{
    QueueError, RingConfig, SplitRing, BURST_DESC_BUDGET, COOLDOWN_BURSTS, MAX_CHAIN_DESCS,
    MAX_QUEUE_SIZE,
};
