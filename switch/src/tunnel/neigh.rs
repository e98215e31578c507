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
//! when the PMD starts, and nothing here allocates afterwards.
//!
//! # A full table
//!
//! The table holds at most [`MAX_ENTRIES`] entries, in storage allocated up front that
//! never grows. Anyone on the underlay can make the switch learn (an ARP request for our
//! address, a reply to it), so when the table is full the switch tells apart what it needs
//! from what it is merely told, as the kernel does when it does not create entries from
//! unsolicited ARP:
//! - **A next hop the switch itself needs** (a lookup miss: frames are waiting to go there)
//!   takes the place of, in this order, an expired entry, one learned from unsolicited ARP
//!   and never used since (oldest confirmation first), or the least recently used one. An
//!   entry being resolved is never evicted (its frames are held, and it lives at most
//!   [`MAX_TRIES`] × [`RETRY`]); if every entry is being resolved, the lookup reports
//!   [`Lookup::Full`] and the frame is dropped and counted.
//! - **An unsolicited mapping** (ARP from an address with no entry here, or a peer PMD's
//!   announcement of one) takes a free place or an expired entry's, else it is refused
//!   ([`Learn::Refused`], counted): a flood of ARP from many addresses cannot displace the
//!   next hops in use, and costs no memory. Mappings for addresses that have an entry
//!   (answers to our requests, confirmations) are always recorded.

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

impl State {
    /// Whether this is a reachable entry not confirmed for [`EXPIRE`].
    fn expired(&self, now: Instant) -> bool {
        match self {
            State::Reachable { confirmed, .. } => {
                now.saturating_duration_since(*confirmed) >= EXPIRE
            }
            State::Incomplete { .. } => false,
        }
    }
}

/// One next hop.
#[derive(Clone, Copy, Debug)]
struct Entry {
    ip: u32,
    state: State,
    /// When a lookup last used it (or started its resolution); `None` for a mapping learned
    /// from unsolicited ARP and not used since: the first to go for a next hop in use.
    used: Option<Instant>,
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
    /// An unsolicited mapping while the table is full of live entries: not recorded here
    /// (a peer PMD that asked for it may still want to hear it).
    Refused,
}

/// What a next-hop lookup found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Known: use this MAC; `probe` asks the caller to send a refresh request.
    Mac { mac: MacAddr, probe: bool },
    /// Not known yet; `request` asks the caller to send the first ARP request; `evicted`
    /// says another entry made room for it.
    Pending { request: bool, evicted: bool },
    /// Not known and no room for another entry (every entry is being resolved).
    Full,
}

/// Buckets of the table's index: a power of two, twice the entries, so probe runs are short.
const BUCKETS: usize = 2 * MAX_ENTRIES;
/// The slot number of an empty index bucket.
const NO_SLOT: u16 = u16::MAX;
/// An empty index bucket.
const EMPTY: Bucket = Bucket {
    ip: 0,
    slot: NO_SLOT,
};
const _: () = assert!(BUCKETS.is_power_of_two() && MAX_ENTRIES < NO_SLOT as usize);

/// The bucket where the search for `ip` starts: a multiply by the golden ratio, keeping the
/// high bits (the keys are IPv4 addresses, often neighbours in one subnet: their low bits
/// differ, and the multiply carries them up). Cheaper per frame than SipHash.
#[inline]
fn home(ip: u32) -> usize {
    let h = (u64::from(ip) ^ 0x5bd1_e995).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> (64 - BUCKETS.trailing_zeros())) as usize
}

/// An index bucket: an address and the slot of its entry (the address is repeated here so
/// a probe compares it without touching the slot).
#[derive(Clone, Copy, Debug)]
struct Bucket {
    ip: u32,
    slot: u16,
}

/// A map from next hop to [`Entry`] that never allocates after [`Table::new`]: the entries
/// live in [`MAX_ENTRIES`] fixed slots, found through an open-addressing index (linear
/// probing; a removal shifts the run behind it back, so there are no tombstones and never a
/// rehash).
struct Table {
    slots: Box<[Option<Entry>]>,
    index: Box<[Bucket]>,
    /// Free slot numbers (a stack; its capacity is [`MAX_ENTRIES`] and it never holds more).
    free: Vec<u16>,
}

impl Table {
    fn new() -> Table {
        let mut free = Vec::with_capacity(MAX_ENTRIES);
        free.extend((0..MAX_ENTRIES as u16).rev());
        Table {
            slots: vec![None; MAX_ENTRIES].into_boxed_slice(),
            index: vec![EMPTY; BUCKETS].into_boxed_slice(),
            free,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        MAX_ENTRIES - self.free.len()
    }

    fn is_full(&self) -> bool {
        self.free.is_empty()
    }

    /// The slot holding `ip`.
    #[inline]
    fn find(&self, ip: u32) -> Option<usize> {
        let mut b = home(ip);
        loop {
            let Bucket { ip: at, slot } = self.index[b];
            if slot == NO_SLOT {
                return None;
            }
            if at == ip {
                return Some(usize::from(slot));
            }
            b = (b + 1) & (BUCKETS - 1);
        }
    }

    #[inline]
    fn get_mut(&mut self, ip: u32) -> Option<&mut Entry> {
        let s = self.find(ip)?;
        self.slots[s].as_mut()
    }

    /// Adds `e`, whose address has no entry. False when the table is full.
    fn insert(&mut self, e: Entry) -> bool {
        let Some(s) = self.free.pop() else {
            return false;
        };
        self.slots[usize::from(s)] = Some(e);
        let mut b = home(e.ip);
        while self.index[b].slot != NO_SLOT {
            b = (b + 1) & (BUCKETS - 1);
        }
        self.index[b] = Bucket { ip: e.ip, slot: s };
        true
    }

    /// Empties slot `slot` (if used).
    fn remove(&mut self, slot: usize) {
        let Some(e) = self.slots[slot].take() else {
            return;
        };
        self.free.push(slot as u16);
        let mask = BUCKETS - 1;
        let mut hole = home(e.ip);
        while usize::from(self.index[hole].slot) != slot {
            hole = (hole + 1) & mask;
        }
        // Backward shift: an entry further along the run moves into the hole if the hole is
        // on its probe path (between its home bucket and where it is).
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let b = self.index[j];
            if b.slot == NO_SLOT {
                break;
            }
            if j.wrapping_sub(home(b.ip)) & mask >= j.wrapping_sub(hole) & mask {
                self.index[hole] = b;
                hole = j;
            }
        }
        self.index[hole] = EMPTY;
    }

    /// Keeps the entries `keep` says to, in slot order.
    fn retain(&mut self, mut keep: impl FnMut(&mut Entry) -> bool) {
        for s in 0..MAX_ENTRIES {
            if let Some(e) = &mut self.slots[s] {
                if !keep(e) {
                    self.remove(s);
                }
            }
        }
    }

    fn clear(&mut self) {
        self.slots.fill(None);
        self.index.fill(EMPTY);
        self.free.clear();
        self.free.extend((0..MAX_ENTRIES as u16).rev());
    }

    fn iter(&self) -> impl Iterator<Item = (usize, &Entry)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(s, e)| e.as_ref().map(|e| (s, e)))
    }

    /// Where the table's memory is and how large it is: unchanged for its whole life.
    #[cfg(test)]
    fn footprint(&self) -> [usize; 5] {
        [
            self.slots.as_ptr() as usize,
            self.slots.len(),
            self.index.as_ptr() as usize,
            self.free.as_ptr() as usize,
            self.free.capacity(),
        ]
    }
}

/// A PMD's neighbour cache and resolution queue.
pub(crate) struct NeighCache {
    entries: Table,
    /// No reachable entry expires before this (skips the search for an expired entry when
    /// the table is full, say under a flood of ARP). Only ever earlier than the truth:
    /// entries added or confirmed later expire later.
    no_expiry_before: Option<Instant>,
    /// Held frames in arrival order, with their next hop.
    held: Vec<(u32, Packet)>,
    /// Spare buffers: one for each free place in `held`.
    spare: Vec<Packet>,
}

impl NeighCache {
    pub fn new() -> NeighCache {
        NeighCache {
            entries: Table::new(),
            no_expiry_before: None,
            held: Vec::with_capacity(MAX_HELD),
            spare: (0..MAX_HELD).map(|_| Packet::new()).collect(),
        }
    }

    /// Looks up next hop `ip`, starting a resolution on a miss (making room for it if the
    /// table is full, see the module doc).
    pub fn lookup(&mut self, ip: u32, now: Instant) -> Lookup {
        if let Some(e) = self.entries.get_mut(ip) {
            match &mut e.state {
                State::Reachable {
                    mac,
                    confirmed,
                    probed,
                    ..
                } => {
                    let age = now.saturating_duration_since(*confirmed);
                    if age < REFRESH {
                        e.used = Some(now);
                        return Lookup::Mac {
                            mac: *mac,
                            probe: false,
                        };
                    }
                    if age < EXPIRE {
                        let probe =
                            probed.is_none_or(|p| now.saturating_duration_since(p) >= RETRY);
                        if probe {
                            *probed = Some(now);
                        }
                        let mac = *mac;
                        e.used = Some(now);
                        return Lookup::Mac { mac, probe };
                    }
                    // Expired: resolve it again in place.
                    e.state = State::Incomplete {
                        sent: now,
                        tries: 1,
                    };
                    e.used = Some(now);
                    return Lookup::Pending {
                        request: true,
                        evicted: false,
                    };
                }
                State::Incomplete { .. } => {
                    return Lookup::Pending {
                        request: false,
                        evicted: false,
                    }
                }
            }
        }
        let mut evicted = false;
        if self.entries.is_full() {
            let Some(victim) = self.victim(now) else {
                return Lookup::Full;
            };
            self.entries.remove(victim);
            evicted = true;
        }
        self.entries.insert(Entry {
            ip,
            state: State::Incomplete {
                sent: now,
                tries: 1,
            },
            used: Some(now),
        });
        Lookup::Pending {
            request: true,
            evicted,
        }
    }

    /// The entry a next hop in use replaces in a full table: an expired one, else one never
    /// used (oldest confirmation first), else the least recently used; never one being
    /// resolved or with frames held for it.
    fn victim(&self, now: Instant) -> Option<usize> {
        let held = &self.held;
        self.entries
            .iter()
            .filter_map(|(s, e)| {
                let State::Reachable { confirmed, .. } = e.state else {
                    return None;
                };
                if held.iter().any(|&(nh, _)| nh == e.ip) {
                    return None;
                }
                let rank = match e.used {
                    _ if e.state.expired(now) => (0, confirmed),
                    None => (1, confirmed),
                    Some(used) => (2, used),
                };
                Some((rank, s))
            })
            .min_by_key(|&(rank, _)| rank)
            .map(|(_, s)| s)
    }

    /// Forgets one expired entry, if there is one (the caller's table is full); true if it
    /// made room.
    fn drop_an_expired(&mut self, now: Instant) -> bool {
        if self.no_expiry_before.is_some_and(|t| now < t) {
            return false;
        }
        let mut earliest: Option<Instant> = None;
        let mut expired = None;
        for (s, e) in self.entries.iter() {
            if e.state.expired(now) {
                expired = Some(s);
                break;
            }
            if let State::Reachable { confirmed, .. } = e.state {
                earliest = Some(earliest.map_or(confirmed, |t| t.min(confirmed)));
            }
        }
        match expired {
            Some(s) => {
                self.entries.remove(s);
                true
            }
            None => {
                // Every reachable entry expires EXPIRE after its confirmation at the earliest;
                // ones confirmed later (and new ones) later still.
                self.no_expiry_before = Some(earliest.unwrap_or(now) + EXPIRE);
                false
            }
        }
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

    /// Entries right now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Where the table's memory is and how large it is (see [`Table::footprint`]).
    #[cfg(test)]
    pub fn footprint(&self) -> [usize; 5] {
        self.entries.footprint()
    }

    /// Whether `ip` has an entry in any state (an answer from it is worth learning).
    pub fn knows(&self, ip: u32) -> bool {
        self.entries.find(ip).is_some()
    }

    /// Records that `ip` is at `mac` (confirmed now) and says whether to announce it. A
    /// mapping for an address without an entry is refused when the table is full of live
    /// entries (see the module doc).
    pub fn learn(&mut self, ip: u32, mac: MacAddr, now: Instant) -> Learn {
        let reachable = State::Reachable {
            mac,
            confirmed: now,
            probed: None,
            announced: now,
        };
        if let Some(e) = self.entries.get_mut(ip) {
            if let State::Reachable {
                mac: m,
                confirmed,
                probed,
                announced,
            } = &mut e.state
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
            // Resolved, or moved to another MAC.
            e.state = reachable;
            return Learn::New;
        }
        if self.entries.is_full() && !self.drop_an_expired(now) {
            return Learn::Refused;
        }
        self.entries.insert(Entry {
            ip,
            state: reachable,
            used: None,
        });
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
        self.entries.retain(|e| match &mut e.state {
            State::Incomplete { sent, tries } => {
                if now.saturating_duration_since(*sent) < RETRY {
                    true
                } else if *tries < MAX_TRIES {
                    *sent = now;
                    *tries += 1;
                    if retry.len() < retry.capacity() {
                        retry.push(e.ip);
                    }
                    true
                } else {
                    if n_failed < failed.len() {
                        failed[n_failed] = e.ip;
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
            |nh| failed[..n_failed].contains(&nh) || entries.find(nh).is_none(),
            |_| dropped += 1,
        );
        dropped
    }

    /// Forgets everything and drops the held frames; returns how many were held.
    pub fn clear(&mut self) -> u64 {
        self.entries.clear();
        self.no_expiry_before = None;
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
mod tests;
