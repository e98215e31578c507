//! The per-burst pipeline: [`Pmd::poll`] takes a burst from each rx queue in turn, and each
//! burst goes through five named steps ([`Pmd::process`]):
//!
//! 1. [`Pmd::rx`]: each frame's [`FlowKey`] (from the switch's private copy), and the rx
//!    counters;
//! 2. [`Pmd::ingress`]: the underlay's frames are consumed (ARP) or decapsulated, each then
//!    with its vxlan port as in-port; other ports check their frames' offload requests
//!    (`offload.rs`) and apply their VLAN mode. The frames left are moved to the front;
//! 3. [`Pmd::decide`]: the port's own decision when the rules give it one, else
//!    [`lookup::decide`] (EMC, then the classifier on a miss, `normal` when nothing matches);
//! 4. [`Pmd::execute`]: each frame's actions, into per-output-port tx batches (a frame whose
//!    offload request an output does not take is finished for it first);
//! 5. [`Pmd::flush`]: each tx batch with frames waiting, once.
//!
//! Nothing here allocates, locks or makes a blocking call; every table is this PMD's own.

use std::time::Instant;

use flowtable::key::{extract_into, extract_l2_into};
use flowtable::PortNo;
use ports::BURST;

use super::execute::{execute, Out, NORMAL};
use super::lookup::{self, decided_for, PortDecision};
use super::{offload, Pmd};
use crate::datapath::vlan;
use crate::tunnel::decap;

impl Pmd {
    /// Polls each rx queue once, running each burst through the pipeline; `now` gives the
    /// bursts' time (asked only when a queue had frames). Returns how many frames came.
    #[inline]
    pub(super) fn poll(&mut self, now: impl Fn() -> Instant) -> usize {
        let mut got = 0;
        for r in 0..self.rxqs.len() {
            let n = self.rxqs[r].queue.rx_burst(&mut self.burst);
            if n > 0 {
                got += n;
                let n = n.min(BURST);
                let port = self.rxqs[r].port;
                let bytes = self.process(port, n, now());
                let c = &mut self.rxqs[r].counters;
                c.rx_packets += n as u64;
                c.rx_bytes += bytes;
            }
        }
        got
    }

    /// Runs one rx burst of `n` frames from `in_port` (the first `n` of the burst buffers)
    /// through the pipeline; returns the burst's bytes.
    pub(super) fn process(&mut self, in_port: PortNo, n: usize, now: Instant) -> u64 {
        // A port whose frames all take one decision skips the cache and the classifier.
        let decided = decided_for(&self.port_decisions, &self.tunnel, in_port);
        let (bytes, offloads) = self.rx(in_port, n, decided.is_some_and(|d| d.l2_only));
        let n = self.ingress(in_port, n, offloads, now);
        self.decide(n, decided);
        self.execute(n, offloads, now);
        self.flush();
        bytes
    }

    /// Step 1: the keys of the burst's `n` frames (only their L2 fields when `l2_only`), and
    /// the rx counters. Returns the burst's bytes, and whether any frame carries an offload
    /// request.
    #[inline]
    fn rx(&mut self, in_port: PortNo, n: usize, l2_only: bool) -> (u64, bool) {
        let mut bytes = 0;
        let mut offloads = false;
        for (pkt, key) in self.burst[..n].iter().zip(self.keys.iter_mut()) {
            // `pkt` is switch memory: the port copied the frame out of the guest (or NIC)
            // before we look at it, so no decision below can be raced.
            if l2_only {
                extract_l2_into(pkt.data(), in_port, key);
            } else {
                extract_into(pkt.data(), in_port, key);
            }
            bytes += pkt.len();
            offloads |= pkt.offload().requests();
        }
        self.stats.rx_packets += n as u64;
        let pc = self.stats.port_mut(in_port);
        pc.rx_packets += n as u64;
        pc.rx_bytes += bytes as u64;
        (bytes as u64, offloads)
    }

    /// Step 2, the overlay hook: the underlay's frames are consumed (ARP) or decapsulated,
    /// each then with its vxlan port as in-port; other ports check their frames' offload
    /// requests (when `offloads` says there are any) and apply their VLAN mode. Either way
    /// the frames left are moved to the front; returns how many there are.
    #[inline]
    fn ingress(&mut self, in_port: PortNo, n: usize, offloads: bool, now: Instant) -> usize {
        let Pmd {
            burst,
            keys,
            vlans,
            tunnel,
            tx,
            stats,
            offload_log,
            ..
        } = self;
        if tunnel.is_underlay(in_port) {
            let mut cx = tx.cx(stats, now);
            decap::underlay_rx(tunnel, &mut burst[..n], &mut keys[..n], vlans, &mut cx)
        } else {
            let n = if offloads {
                let (burst, keys) = (&mut burst[..n], &mut keys[..n]);
                offload::ingress_burst(in_port, burst, keys, stats, offload_log, now)
            } else {
                n
            };
            match vlans.get(in_port.index()) {
                Some(v) => vlan::ingress_burst(v, &mut burst[..n], &mut keys[..n], stats),
                None => n,
            }
        }
    }

    /// Step 3: one decision per frame, the in-port's own when the rules give it one.
    #[inline]
    fn decide(&mut self, n: usize, decided: Option<PortDecision>) {
        match decided {
            Some(PortDecision { decision: d, .. }) => {
                self.decisions[..n].fill(d);
                if let Some(idx) = d {
                    self.classifier.count_hits(idx, n as u64);
                }
                self.stats.port_decided += n as u64;
            }
            None => lookup::decide(
                &self.keys[..n],
                &mut self.decisions[..n],
                &mut self.emc,
                &mut self.emc_gate,
                &mut self.classifier,
                &mut self.misses,
                &mut self.stats,
            ),
        }
    }

    /// Step 4: each frame's actions (its rule's, or `normal`), into the tx batches;
    /// `offloads`: some frame carries an offload request.
    #[inline]
    fn execute(&mut self, n: usize, offloads: bool, now: Instant) {
        let Pmd {
            burst,
            keys,
            decisions,
            classifier,
            tx,
            stats,
            flood,
            vlans,
            tunnel,
            fdb,
            announce,
            segment,
            ..
        } = self;
        let mut out = Out {
            cx: tx.cx(stats, now),
            flood,
            vlans,
            tunnel,
            fdb,
            announce,
            segment,
            offloads,
        };
        for i in 0..n {
            let actions = match decisions[i] {
                Some(idx) => classifier.actions(idx),
                None => NORMAL,
            };
            // Per frame: a decapsulated frame's in-port is its vxlan port.
            execute(
                &mut burst[i],
                &keys[i],
                keys[i].in_port(),
                actions,
                &mut out,
            );
        }
    }

    /// Step 5 (and after sending outside a burst: ARP, released frames): sends each tx batch
    /// with frames waiting.
    #[inline]
    pub(super) fn flush(&mut self) {
        self.tx.flush(&mut self.stats);
    }
}
