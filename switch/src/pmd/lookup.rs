//! Decide each frame of a burst: exact-match cache first; the misses of the whole burst then
//! go to the classifier in one batched call, which overlaps their memory accesses. A port
//! whose rules decide every frame by the in-port alone ([`PortDecision`]) skips both.

use flowtable::{Classifier, Emc, FlowKey, PortNo, RuleIdx};
use ports::BURST;

use crate::stats::PmdStats;
use crate::tunnel::Tunnel;

/// A frame's decision: the rule it matched, or `None` for the default `normal`.
pub(crate) type Decision = Option<RuleIdx>;

/// What the rules decide for every frame of one rx port.
#[derive(Clone, Copy)]
pub(crate) struct PortDecision {
    /// The decision every frame of the port takes.
    pub decision: Decision,
    /// The decision's actions look at nothing past the L2 header (outputs to plain ports, or
    /// a drop): the frames' L3 and L4 fields are not parsed. `normal` and vxlan outputs need
    /// them (learning, the encapsulation's flow hash).
    pub l2_only: bool,
}

/// The decision every frame from `port` takes, if the rules make it one. Never the
/// underlay's: its frames are decapsulated, each then with its vxlan port as in-port.
#[inline]
pub(crate) fn decided_for(
    decisions: &[Option<PortDecision>],
    tunnel: &Tunnel,
    port: PortNo,
) -> Option<PortDecision> {
    match decisions.get(port.index()) {
        Some(&Some(d)) if !tunnel.is_underlay(port) => Some(d),
        _ => None,
    }
}

/// Marks a frame that is not a repeat of an earlier miss.
const NOT_A_REPEAT: u8 = u8::MAX;

/// Per-PMD scratch space for one burst's EMC misses (allocated once, reused every burst).
pub(crate) struct Misses {
    keys: [FlowKey; BURST],
    hashes: [u64; BURST],
    /// Burst position of each miss.
    pos: [u8; BURST],
    found: [Decision; BURST],
    /// Per burst position: the miss it repeats, or [`NOT_A_REPEAT`].
    repeat_of: [u8; BURST],
}

impl Misses {
    pub fn new() -> Box<Misses> {
        Box::new(Misses {
            keys: [FlowKey::ZERO; BURST],
            hashes: [0; BURST],
            pos: [0; BURST],
            found: [None; BURST],
            repeat_of: [NOT_A_REPEAT; BURST],
        })
    }
}

/// Lookups the exact-match cache is judged on at a time ([`EmcGate`]).
const GATE_WINDOW: u32 = 4096;
/// Hits in a window below which the cache sits out: 1 in 10. A hit saves a classifier
/// lookup (about 250 instructions with one subtable), a lookup costs the key's hash and a
/// probe of two ways (about 110) whether it hits or not; at a tenth the cache costs more
/// than it saves.
const GATE_MIN_HITS: u32 = GATE_WINDOW / 10;
/// Frames decided without the cache after a window it did not earn, before it is asked
/// again for another window (so it comes back within ~64k frames when the flows change).
const GATE_SIT_OUT: u32 = 15 * GATE_WINDOW;

/// Asks the exact-match cache only while it earns its cost. With many more flows than it has
/// entries (a million flows over 8192) it hits a frame in a hundred; its lookup, insert and
/// the burst's repeat filter are then a quarter of the miss path, for nothing. The cache's hit
/// rate is judged over windows of [`GATE_WINDOW`] lookups; after a window under
/// [`GATE_MIN_HITS`], frames go straight to the classifier for [`GATE_SIT_OUT`] frames, then
/// the cache is asked for another window (its entries stay, still valid until the rules
/// change).
#[derive(Default)]
pub(crate) struct EmcGate {
    lookups: u32,
    hits: u32,
    sit_out: u32,
}

impl EmcGate {
    /// True when a burst of `n` frames is to skip the cache (and counts it against the
    /// sit-out).
    #[inline]
    fn skips(&mut self, n: usize) -> bool {
        if self.sit_out == 0 {
            return false;
        }
        self.sit_out = self.sit_out.saturating_sub(n as u32);
        true
    }

    /// Counts a burst's `lookups` of which `hits` hit; closes the window when it is full.
    #[inline]
    fn record(&mut self, lookups: usize, hits: usize) {
        self.lookups += lookups as u32;
        self.hits += hits as u32;
        if self.lookups >= GATE_WINDOW {
            if self.hits < GATE_MIN_HITS {
                self.sit_out = GATE_SIT_OUT;
            }
            self.lookups = 0;
            self.hits = 0;
        }
    }

    /// True while the cache sits out.
    #[cfg(test)]
    pub fn sitting_out(&self) -> bool {
        self.sit_out > 0
    }
}

/// Looks up `keys` (at most [`BURST`]), writing one decision per key. EMC misses are looked
/// up in the classifier together and their results cached. A frame repeating an earlier miss
/// of the same burst (same flow) takes that miss's result and counts as a cache hit, as it
/// would have had the misses been looked up one by one. While the cache does not earn its
/// cost ([`EmcGate`]) every frame goes to the classifier, counted as a cache miss.
pub(crate) fn decide(
    keys: &[FlowKey],
    out: &mut [Decision],
    emc: &mut Emc<Decision>,
    gate: &mut EmcGate,
    classifier: &mut Classifier,
    misses: &mut Misses,
    stats: &mut PmdStats,
) {
    let n = keys.len().min(BURST).min(out.len());
    if gate.skips(n) {
        classifier.lookup_batch(&keys[..n], &mut out[..n]);
        let matched = out[..n].iter().filter(|d| d.is_some()).count() as u64;
        stats.emc_misses += n as u64;
        stats.classifier_hits += matched;
        stats.classifier_misses += n as u64 - matched;
        return;
    }
    let hits_before = stats.emc_hits;
    let mut m = 0;
    // The misses so far, as a 256-bit filter on 8 bits of their hashes: a miss whose bit is
    // clear repeats none of them, without a scan (with many flows most frames miss, and the
    // scan would cost a compare per earlier miss).
    let mut seen = [0u64; 4];
    for i in 0..n {
        let key = &keys[i];
        let hash = key.hash();
        misses.repeat_of[i] = NOT_A_REPEAT;
        if let Some(hit) = emc.lookup(key, hash) {
            stats.emc_hits += 1;
            if let Some(idx) = hit {
                // Rule hit counters live in the classifier; a cached decision still counts.
                classifier.count_hits(idx, 1);
            }
            out[i] = hit;
            continue;
        }
        let bit = (hash >> 56) as usize;
        let (word, mask) = (bit >> 6, 1u64 << (bit & 63));
        if seen[word] & mask != 0 {
            if let Some(j) = (0..m).find(|&j| misses.hashes[j] == hash && misses.keys[j] == *key) {
                misses.repeat_of[i] = j as u8;
                continue;
            }
        }
        seen[word] |= mask;
        misses.keys[m] = *key;
        misses.hashes[m] = hash;
        misses.pos[m] = i as u8;
        m += 1;
    }
    gate.record(n, (stats.emc_hits - hits_before) as usize);
    if m == 0 {
        return;
    }
    classifier.lookup_batch(&misses.keys[..m], &mut misses.found[..m]);
    for j in 0..m {
        let found = misses.found[j];
        stats.emc_misses += 1;
        if found.is_some() {
            stats.classifier_hits += 1;
        } else {
            stats.classifier_misses += 1;
        }
        emc.insert(&misses.keys[j], misses.hashes[j], found);
        out[misses.pos[j] as usize] = found;
    }
    for (d, &j) in out[..n].iter_mut().zip(&misses.repeat_of[..n]) {
        if j != NOT_A_REPEAT {
            let found = misses.found[j as usize];
            stats.emc_hits += 1;
            if let Some(idx) = found {
                classifier.count_hits(idx, 1);
            }
            *d = found;
        }
    }
}
