//! The neighbour cache (next-hop IPv4 address to MAC) and the bounded queue of frames
//! waiting for a resolution.
//!
//! Each PMD owns one cache. ARP answers reach whichever PMD polls the uplink queue they
//! arrive on; that PMD learns them and announces them to its peers (as MAC learning does),
//! so a PMD that asked gets its answer between two bursts. Nothing here is shared.
//!
//! Confirmations are announced too, not only new mappings ([`Learn::Refresh`], at most once
//! per [`ANNOUNCE_EVERY`] per neighbour): the PMD that re-probes an entry is often not the
//! one the answer reaches, and an answer that only refreshed the receiver's own entry would
//! leave the asker's to expire, and its frames to be dropped after every retry.
//!
//! Entry life: a miss creates an `Incomplete` entry and the caller sends an ARP request;
//! requests are repeated every [`RETRY`] up to [`MAX_TRIES`], after which the held frames
//! are dropped and the entry forgotten. An answer makes it `Reachable`. A reachable entry
//! older than [`REFRESH`] is still used but re-probed (at most once per [`RETRY`]); one not
//! confirmed for [`EXPIRE`] is forgotten. All memory (table and held frames) is allocated
//! when the PMD starts.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

use flowtable::MacAddr;
use ports::Packet;

/// Most neighbour entries per PMD (next hops: the gateway and on-link VTEPs).
pub(crate) const MAX_ENTRIES: usize = 256;
/// Most frames held for resolution per PMD, over all next hops.
pub(crate) const MAX_HELD: usize = 64;
/// Time between ARP requests for an unresolved next hop.
pub(crate) const RETRY: Duration = Duration::from_secs(1);
/// ARP requests sent for one resolution before giving up.
pub(crate) const MAX_TRIES: u8 = 3;
/// Age after which a reachable entry is re-probed while still in use.
pub(crate) const REFRESH: Duration = Duration::from_secs(60);
/// Age after which an unconfirmed entry is forgotten.
pub(crate) const EXPIRE: Duration = Duration::from_secs(180);
/// Least time between two announcements of the same unchanged neighbour. Equal to
/// [`RETRY`], so of the requests a peer repeats [`RETRY`] apart, at least every second
/// one's answer is announced to it.
pub(crate) const ANNOUNCE_EVERY: Duration = RETRY;

#[derive(Clone, Copy, Debug)]
enum State {
    Incomplete {
        sent: Instant,
        tries: u8,
    },
    Reachable {
        mac: MacAddr,
        confirmed: Instant,
        probed: Option<Instant>,
        /// When [`NeighCache::learn`] last reported this mapping as worth announcing.
        announced: Instant,
    },
}

/// What [`NeighCache::learn`] made of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Learn {
    /// A new or changed mapping, or the end of a resolution: announce it.
    New,
    /// The same mapping confirmed, not announced for [`ANNOUNCE_EVERY`]: announce it, so
    /// peers that asked (or will soon re-probe) refresh their own entries.
    Refresh,
    /// The same mapping confirmed again shortly after an announcement: nothing to tell.
    Quiet,
}

/// What a next-hop lookup found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Known: use this MAC; `probe` asks the caller to send a refresh request.
    Mac { mac: MacAddr, probe: bool },
    /// Not known yet; `request` asks the caller to send the first ARP request.
    Pending { request: bool },
    /// Not known and no room for another entry.
    Full,
}

/// Hashes a `u32` key with one multiply (the keys are next hops the switch chose itself: its
/// gateway and configured VTEPs, or addresses that answered its own requests), cheaper per
/// frame than the default SipHash.
#[derive(Default)]
struct IpHasher(u64);

impl Hasher for IpHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (u64::from(v) ^ 0x5bd1_e995).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A PMD's neighbour cache and resolution queue.
pub(crate) struct NeighCache {
    entries: HashMap<u32, State, BuildHasherDefault<IpHasher>>,
    /// Held frames in arrival order, with their next hop.
    held: Vec<(u32, Packet)>,
    /// Spare buffers: one for each free place in `held`.
    spare: Vec<Packet>,
}

impl NeighCache {
    pub fn new() -> NeighCache {
        NeighCache {
            entries: HashMap::with_capacity_and_hasher(MAX_ENTRIES, Default::default()),
            held: Vec::with_capacity(MAX_HELD),
            spare: (0..MAX_HELD).map(|_| Packet::new()).collect(),
        }
    }

    /// Looks up next hop `ip`, starting a resolution on a miss.
    pub fn lookup(&mut self, ip: u32, now: Instant) -> Lookup {
        match self.entries.get_mut(&ip) {
            Some(State::Reachable {
                mac,
                confirmed,
                probed,
                ..
            }) => {
                let age = now.saturating_duration_since(*confirmed);
                if age < REFRESH {
                    return Lookup::Mac {
                        mac: *mac,
                        probe: false,
                    };
                }
                if age < EXPIRE {
                    let probe = probed.is_none_or(|p| now.saturating_duration_since(p) >= RETRY);
                    if probe {
                        *probed = Some(now);
                    }
                    return Lookup::Mac { mac: *mac, probe };
                }
            }
            Some(State::Incomplete { .. }) => return Lookup::Pending { request: false },
            None => {}
        }
        // Missing or expired.
        if self.entries.len() >= MAX_ENTRIES && !self.entries.contains_key(&ip) {
            self.evict(now);
            if self.entries.len() >= MAX_ENTRIES {
                return Lookup::Full;
            }
        }
        self.entries.insert(
            ip,
            State::Incomplete {
                sent: now,
                tries: 1,
            },
        );
        Lookup::Pending { request: true }
    }

    /// Drops expired entries (no frames are held for reachable ones).
    fn evict(&mut self, now: Instant) {
        self.entries.retain(|_, s| match s {
            State::Reachable { confirmed, .. } => {
                now.saturating_duration_since(*confirmed) < EXPIRE
            }
            State::Incomplete { .. } => true,
        });
    }

    /// Holds `pkt` (swapped for a spare buffer) until `ip` resolves. False when the queue is
    /// full; `pkt` is then left as it was.
    pub fn hold(&mut self, ip: u32, pkt: &mut Packet) -> bool {
        let Some(mut buf) = self.spare.pop() else {
            return false;
        };
        std::mem::swap(&mut buf, pkt);
        self.held.push((ip, buf));
        true
    }

    /// Frames held right now.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Whether `ip` has an entry in any state (an answer from it is worth learning).
    pub fn knows(&self, ip: u32) -> bool {
        self.entries.contains_key(&ip)
    }

    /// Records that `ip` is at `mac` (confirmed now) and says whether to announce it.
    pub fn learn(&mut self, ip: u32, mac: MacAddr, now: Instant) -> Learn {
        if let Some(State::Reachable {
            mac: m,
            confirmed,
            probed,
            announced,
        }) = self.entries.get_mut(&ip)
        {
            if *m == mac {
                *confirmed = now;
                *probed = None;
                if now.saturating_duration_since(*announced) < ANNOUNCE_EVERY {
                    return Learn::Quiet;
                }
                *announced = now;
                return Learn::Refresh;
            }
        }
        self.entries.insert(
            ip,
            State::Reachable {
                mac,
                confirmed: now,
                probed: None,
                announced: now,
            },
        );
        Learn::New
    }

    /// Passes every frame held for `ip`, oldest first, to `send`, and takes the buffers back
    /// (whatever buffer `send` leaves in its argument becomes a spare).
    pub fn release(&mut self, ip: u32, send: impl FnMut(&mut Packet)) {
        drain_where(&mut self.held, &mut self.spare, |nh| nh == ip, send);
    }

    /// Timer work, about once a second: collects the next hops to ask again into `retry`,
    /// gives up on those asked [`MAX_TRIES`] times (returns how many held frames that
    /// dropped), and forgets expired entries.
    pub fn tick(&mut self, now: Instant, retry: &mut Vec<u32>) -> u64 {
        retry.clear();
        let mut failed = [0u32; 16];
        let mut n_failed = 0;
        self.entries.retain(|&ip, s| match s {
            State::Incomplete { sent, tries } => {
                if now.saturating_duration_since(*sent) < RETRY {
                    true
                } else if *tries < MAX_TRIES {
                    *sent = now;
                    *tries += 1;
                    if retry.len() < retry.capacity() {
                        retry.push(ip);
                    }
                    true
                } else {
                    if n_failed < failed.len() {
                        failed[n_failed] = ip;
                        n_failed += 1;
                    }
                    false
                }
            }
            State::Reachable { confirmed, .. } => {
                now.saturating_duration_since(*confirmed) < EXPIRE
            }
        });
        let mut dropped = 0;
        let entries = &self.entries;
        // Frames for a next hop that gave up (or whose entry vanished) are dropped.
        drain_where(
            &mut self.held,
            &mut self.spare,
            |nh| failed[..n_failed].contains(&nh) || !entries.contains_key(&nh),
            |_| dropped += 1,
        );
        dropped
    }

    /// Forgets everything and drops the held frames; returns how many were held.
    pub fn clear(&mut self) -> u64 {
        self.entries.clear();
        let n = self.held.len() as u64;
        drain_where(&mut self.held, &mut self.spare, |_| true, |_| {});
        n
    }
}

/// Moves held frames whose next hop matches `pick` out through `f`, keeping the order of the
/// others; the handed-out buffers become spares.
fn drain_where(
    held: &mut Vec<(u32, Packet)>,
    spare: &mut Vec<Packet>,
    pick: impl Fn(u32) -> bool,
    mut f: impl FnMut(&mut Packet),
) {
    let mut w = 0;
    for r in 0..held.len() {
        if pick(held[r].0) {
            f(&mut held[r].1);
        } else {
            held.swap(w, r);
            w += 1;
        }
    }
    while held.len() > w {
        if let Some((_, buf)) = held.pop() {
            spare.push(buf);
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    const IP: u32 = 0xc612_0002;
    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    #[test]
    fn miss_hold_learn_release_in_order() {
        let mut c = NeighCache::new();
        let t0 = Instant::now();
        assert_eq!(c.lookup(IP, t0), Lookup::Pending { request: true });
        assert_eq!(c.lookup(IP, t0), Lookup::Pending { request: false });
        for i in 0..3u8 {
            let mut p = Packet::new();
            p.copy_from(&[i; 20]);
            assert!(c.hold(IP, &mut p));
        }
        let mut other = Packet::new();
        other.copy_from(&[9; 20]);
        assert!(c.hold(IP + 1, &mut other));
        assert_eq!(c.learn(IP, MAC, t0), Learn::New);
        let mut got = Vec::new();
        c.release(IP, |p| got.push(p.data()[0]));
        assert_eq!(got, [0, 1, 2]);
        assert_eq!(c.held(), 1);
        assert_eq!(
            c.lookup(IP, t0),
            Lookup::Mac {
                mac: MAC,
                probe: false
            }
        );
        assert_eq!(
            c.learn(IP, MAC, t0),
            Learn::Quiet,
            "same mapping, just told"
        );
        assert_eq!(
            c.learn(IP, MAC, t0 + ANNOUNCE_EVERY),
            Learn::Refresh,
            "a confirmation is worth telling peers again after a while"
        );
        assert_eq!(c.learn(IP, MAC, t0 + ANNOUNCE_EVERY), Learn::Quiet);
        let other = MacAddr([2, 0, 0, 0, 0, 3]);
        assert_eq!(c.learn(IP, other, t0 + ANNOUNCE_EVERY), Learn::New);
    }

    #[test]
    fn queue_is_bounded() {
        let mut c = NeighCache::new();
        let mut p = Packet::new();
        for _ in 0..MAX_HELD {
            assert!(c.hold(IP, &mut p));
        }
        assert!(!c.hold(IP, &mut p));
        assert_eq!(c.clear(), MAX_HELD as u64);
        assert!(c.hold(IP, &mut p));
    }

    #[test]
    fn retries_then_gives_up() {
        let mut c = NeighCache::new();
        let t0 = Instant::now();
        let mut retry = Vec::with_capacity(8);
        c.lookup(IP, t0);
        let mut p = Packet::new();
        assert!(c.hold(IP, &mut p));
        assert_eq!(c.tick(t0, &mut retry), 0);
        assert!(retry.is_empty());
        let mut t = t0;
        for _ in 1..MAX_TRIES {
            t += RETRY;
            assert_eq!(c.tick(t, &mut retry), 0);
            assert_eq!(retry, [IP]);
        }
        t += RETRY;
        assert_eq!(c.tick(t, &mut retry), 1, "held frame dropped");
        assert!(!c.knows(IP));
        assert_eq!(c.held(), 0);
    }

    #[test]
    fn reachable_is_probed_then_expires() {
        let mut c = NeighCache::new();
        let t0 = Instant::now();
        c.learn(IP, MAC, t0);
        let t = t0 + REFRESH;
        assert_eq!(
            c.lookup(IP, t),
            Lookup::Mac {
                mac: MAC,
                probe: true
            }
        );
        assert_eq!(
            c.lookup(IP, t),
            Lookup::Mac {
                mac: MAC,
                probe: false
            }
        );
        let mut retry = Vec::with_capacity(8);
        c.tick(t0 + EXPIRE, &mut retry);
        assert!(!c.knows(IP));
        assert_eq!(c.lookup(IP, t0 + EXPIRE), Lookup::Pending { request: true });
    }
}
