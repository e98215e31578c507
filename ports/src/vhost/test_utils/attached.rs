//! A vhost-user port in server mode with one [`Guest`] attached, and its queue handles: the
//! rig the port-level tests (hostile guests, isolation, the packed ring) start from.

use std::fs::File;
use std::time::{Duration, Instant};

use super::{burst, frame, memfd, packets, Guest, SockDir, MEM_SIZE};
use crate::vhost::VhostUserPort;
use crate::{Port, RxQueue, TxQueue};

/// A port, the guest attached to it (one queue pair) and the queue handles a PMD would hold.
pub struct Attached {
    /// Holds the socket (removed on drop).
    pub dir: SockDir,
    /// The port.
    pub port: VhostUserPort,
    /// The guest.
    pub g: Guest,
    /// Receive queue 0 (the guest's transmit ring, vring 1).
    pub rxq: Box<dyn RxQueue>,
    /// Transmit queue 0 (into the guest's receive ring, vring 0).
    pub txq: Box<dyn TxQueue>,
}

impl Attached {
    /// A guest with `features` (and VERSION_1, PROTOCOL_FEATURES) and fresh memory.
    pub fn new(features: u64) -> Attached {
        Attached::with_memory(features, memfd(MEM_SIZE))
    }

    /// The same, the guest's memory being `memory` (a test that truncates it keeps a copy).
    pub fn with_memory(features: u64, memory: File) -> Attached {
        let dir = SockDir::new();
        let path = dir.path("vhu.sock");
        let mut port = VhostUserPort::server(&path, 1).unwrap();
        let g = Guest::connect_with_memory(&path, 1, features, memory);
        let rxq = port.take_rxq(0).unwrap();
        let txq = port.txq(0).unwrap();
        Attached {
            dir,
            port,
            g,
            rxq,
            txq,
        }
    }

    /// One burst from the guest's transmit ring, timed.
    pub fn rx_timed(&mut self) -> (usize, Duration) {
        let mut pkts = burst();
        let t = Instant::now();
        let n = self.rxq.rx_burst(&mut pkts);
        (n, t.elapsed())
    }

    /// One burst of `n` 60-byte frames into the guest's receive ring, timed.
    pub fn tx_timed(&mut self, n: usize) -> (usize, Duration) {
        let frames: Vec<Vec<u8>> = (0..n).map(|i| frame(60, i as u8)).collect();
        let mut pkts = packets(&frames);
        let t = Instant::now();
        let sent = self.txq.tx_burst(&mut pkts);
        (sent, t.elapsed())
    }

    /// True when a frame the guest puts on its transmit ring arrives intact.
    pub fn forwards(&mut self, seed: u8) -> bool {
        let f = frame(70, seed);
        let (a, l) = self.g.tx_buffer(&f);
        self.g.add_chain(1, &[(a, l, 0)]);
        self.g.publish(1);
        let mut pkts = burst();
        self.rxq.rx_burst(&mut pkts) == 1 && pkts[0].data() == &f[..]
    }
}

/// Declares `struct $name(Attached)` that derefs to [`Attached`], so that a test file can add
/// its own checks to the shared rig (`impl $name { ... }`).
#[macro_export]
macro_rules! attached_rig {
    ($name:ident) => {
        /// A port with a guest attached, and this file's checks on it.
        struct $name($crate::vhost::test_utils::Attached);

        impl std::ops::Deref for $name {
            type Target = $crate::vhost::test_utils::Attached;
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl std::ops::DerefMut for $name {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.0
            }
        }
    };
}
