//! A fault-injecting receive queue: drops, truncates and corrupts frames from the queue it
//! wraps, driven by a seed so a failing case replays exactly (like smoltcp's `FaultInjector`).

use std::os::fd::BorrowedFd;

use crate::packet::Packet;
use crate::port::RxQueue;

/// Fault probabilities, each in parts per 65536 of frames.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Frames silently lost.
    pub drop: u16,
    /// Frames cut to a random shorter length (possibly zero).
    pub truncate: u16,
    /// Frames with a random byte overwritten with a random value.
    pub corrupt: u16,
}

/// Wraps an [`RxQueue`] and applies [`Faults`] to what it receives.
pub struct FaultRxq<Q> {
    inner: Q,
    faults: Faults,
    rng: u64,
}

impl<Q: RxQueue> FaultRxq<Q> {
    /// Wraps `inner`; `seed` fixes the sequence of faults.
    pub fn new(inner: Q, faults: Faults, seed: u64) -> FaultRxq<Q> {
        FaultRxq {
            inner,
            faults,
            rng: seed | 1,
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*: plenty for picking faults, and reproducible from the seed.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn roll(&mut self, per_65536: u16) -> bool {
        (self.next() & 0xffff) < per_65536 as u64
    }
}

impl<Q: RxQueue> RxQueue for FaultRxq<Q> {
    fn rx_burst(&mut self, pkts: &mut [Packet]) -> usize {
        let n = self.inner.rx_burst(pkts);
        let mut kept = 0;
        for i in 0..n {
            if self.roll(self.faults.drop) {
                continue;
            }
            if self.roll(self.faults.truncate) {
                let len = (self.next() as usize) % (pkts[i].len() + 1);
                pkts[i].truncate(len);
            }
            if self.roll(self.faults.corrupt) && !pkts[i].is_empty() {
                let at = (self.next() as usize) % pkts[i].len();
                pkts[i].data_mut()[at] = self.next() as u8;
            }
            pkts.swap(kept, i);
            kept += 1;
        }
        kept
    }

    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        self.inner.wait_fd()
    }

    fn enable_notify(&mut self) -> bool {
        self.inner.enable_notify()
    }

    fn disable_notify(&mut self) {
        self.inner.disable_notify()
    }

    fn ack_wakeup(&mut self) {
        self.inner.ack_wakeup()
    }
}

impl RxQueue for Box<dyn RxQueue> {
    fn rx_burst(&mut self, pkts: &mut [Packet]) -> usize {
        (**self).rx_burst(pkts)
    }

    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        (**self).wait_fd()
    }

    fn enable_notify(&mut self) -> bool {
        (**self).enable_notify()
    }

    fn disable_notify(&mut self) {
        (**self).disable_notify()
    }

    fn ack_wakeup(&mut self) {
        (**self).ack_wakeup()
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::mem;
    use crate::port::Port;

    #[test]
    fn same_seed_same_faults() {
        let run = |seed| {
            let (mut port, peer) = mem::pair(4096).unwrap();
            let rxq = port.take_rxq(0).unwrap();
            let faults = Faults {
                drop: 8000,
                truncate: 8000,
                corrupt: 8000,
            };
            let mut f = FaultRxq::new(rxq, faults, seed);
            for i in 0..1000u32 {
                peer.inject(&[i as u8; 64]);
            }
            let mut pkts = vec![Packet::new(); 32];
            let mut out = Vec::new();
            loop {
                let n = f.rx_burst(&mut pkts);
                if n == 0 {
                    break;
                }
                out.extend(pkts[..n].iter().map(|p| p.data().to_vec()));
            }
            out
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert!(
            a.len() < 1000 && a.len() > 800,
            "about 12% dropped: {}",
            a.len()
        );
        assert!(a.iter().any(|f| f.len() < 64), "some truncated");
    }
}
