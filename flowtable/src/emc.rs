//! Exact-match cache (EMC): the per-PMD first-level flow cache, as in OVS-DPDK.
//!
//! A fixed-size, 2-way set-associative array indexed by the packet's [`FlowKey::hash`]
//! (computed once per packet by the caller). It never resizes and has no tombstones. Each
//! entry stores the full key, its hash, a generation number and the decision; an entry whose
//! generation is not the cache's current one is a miss, so [`Emc::invalidate`] is O(1).
//!
//! Replacement: an insert reuses the way already holding the key, else a stale (invalid) way,
//! else the way with fewer hits; the surviving way's hit count is then halved, so a once-hot
//! entry does not stay forever.
//!
//! Insertion policy: a new flow always takes a free way, but evicts a valid entry only with
//! probability `1 / insert_inv_prob` (OVS-DPDK's `emc-insert-inv-prob`, default 100 there
//! too). With more flows than entries (a million flows over 8192 entries) inserting every
//! miss would evict an entry per frame, each evicted before it is hit again: the cache would
//! cost a 128-byte write per frame and hit nothing. Sampling keeps what the cache holds
//! stable, so the flows that send most (the ones sampled most often) stay, and a miss costs
//! only the lookup. With few flows nothing changes: the free ways take them at once.

use crate::key::FlowKey;

/// One cache entry.
#[derive(Clone, Copy)]
struct Entry<V: Copy> {
    key: FlowKey,
    hash: u64,
    generation: u32,
    hits: u32,
    value: Option<V>,
}

/// Cache counters (plain, per PMD).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmcStats {
    /// Calls to [`Emc::lookup`].
    pub lookups: u64,
    /// Lookups that hit.
    pub hits: u64,
    /// Calls to [`Emc::insert`].
    pub inserts: u64,
    /// Inserts that replaced a valid entry for another key.
    pub evictions: u64,
    /// Inserts skipped: every way held another valid key and the sample said no.
    pub skipped: u64,
}

/// A fixed-size exact-match cache from a full [`FlowKey`] to a decision `V`.
pub struct Emc<V: Copy> {
    entries: Vec<Entry<V>>,
    /// `entries.len() / 2 - 1`: the set index mask.
    set_mask: usize,
    /// The current generation; entries of another generation are invalid. Never 0 (the
    /// generation of never-written entries).
    generation: u32,
    /// An insert that would evict a valid entry happens once in this many (1: always).
    insert_inv_prob: u32,
    /// xorshift32 state for that sample (never 0).
    rng: u32,
    stats: EmcStats,
}

impl<V: Copy> Emc<V> {
    /// A cache with `entries` slots (rounded up to a power of two, at least 2) that inserts
    /// every miss.
    pub fn new(entries: usize) -> Emc<V> {
        Emc::with_insert_inv_prob(entries, 1)
    }

    /// A cache with `entries` slots whose inserts evict a valid entry only once in
    /// `insert_inv_prob` (at least 1) tries.
    pub fn with_insert_inv_prob(entries: usize, insert_inv_prob: u32) -> Emc<V> {
        let n = entries.max(2).next_power_of_two();
        let empty = Entry {
            key: FlowKey::ZERO,
            hash: 0,
            generation: 0,
            hits: 0,
            value: None,
        };
        Emc {
            entries: vec![empty; n],
            set_mask: n / 2 - 1,
            generation: 1,
            insert_inv_prob: insert_inv_prob.max(1),
            rng: 0x9e37_79b9,
            stats: EmcStats::default(),
        }
    }

    /// Number of entries.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    #[inline]
    fn set(&self, hash: u64) -> usize {
        (hash as usize & self.set_mask) * 2
    }

    /// The cached decision for `key` (whose [`FlowKey::hash`] is `hash`). Inlined into the
    /// PMD's per-frame loop: a call costs a tenth of the lookup.
    #[inline(always)]
    pub fn lookup(&mut self, key: &FlowKey, hash: u64) -> Option<V> {
        self.stats.lookups += 1;
        let base = self.set(hash);
        let generation = self.generation;
        for e in &mut self.entries[base..base + 2] {
            if e.hash == hash && e.generation == generation && e.key == *key {
                e.hits = e.hits.saturating_add(1);
                self.stats.hits += 1;
                return e.value;
            }
        }
        None
    }

    /// Caches `v` for `key` (whose [`FlowKey::hash`] is `hash`).
    #[inline]
    pub fn insert(&mut self, key: &FlowKey, hash: u64, v: V) {
        self.stats.inserts += 1;
        let base = self.set(hash);
        let generation = self.generation;
        let ways = &mut self.entries[base..base + 2];
        let valid = [
            ways[0].generation == generation,
            ways[1].generation == generation,
        ];
        let way = if valid[0] && ways[0].hash == hash && ways[0].key == *key {
            0
        } else if valid[1] && ways[1].hash == hash && ways[1].key == *key {
            1
        } else if !valid[0] {
            0
        } else if !valid[1] {
            1
        } else {
            if !sample(&mut self.rng, self.insert_inv_prob) {
                self.stats.skipped += 1;
                return;
            }
            self.stats.evictions += 1;
            let w = usize::from(ways[1].hits < ways[0].hits);
            ways[1 - w].hits /= 2;
            w
        };
        let e = &mut ways[way];
        if e.generation != generation || e.key != *key {
            e.hits = 0;
        }
        e.key = *key;
        e.hash = hash;
        e.generation = generation;
        e.value = Some(v);
    }

    /// Forgets every entry in O(1) (the rule set changed).
    pub fn invalidate(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Wrapped: entries written 2^32 generations ago would look valid again.
            for e in &mut self.entries {
                e.generation = 0;
                e.value = None;
            }
            self.generation = 1;
        }
    }

    /// The counters.
    pub fn stats(&self) -> EmcStats {
        self.stats
    }

    /// Number of valid entries (O(capacity); for statistics, not the fast path).
    pub fn occupancy(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.generation == self.generation)
            .count()
    }
}

/// True once in `inv_prob` calls, on average (xorshift32; `inv_prob` 1: always).
#[inline]
fn sample(rng: &mut u32, inv_prob: u32) -> bool {
    if inv_prob <= 1 {
        return true;
    }
    let mut x = *rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *rng = x;
    x.is_multiple_of(inv_prob)
}

#[cfg(test)]
mod test {
    use super::*;

    fn key(i: u32) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.set_ip_dst(i);
        k
    }

    #[test]
    fn insert_lookup_invalidate() {
        let mut emc = Emc::<u32>::new(8);
        let k = key(1);
        assert_eq!(emc.lookup(&k, k.hash()), None);
        emc.insert(&k, k.hash(), 7);
        assert_eq!(emc.lookup(&k, k.hash()), Some(7));
        emc.insert(&k, k.hash(), 8);
        assert_eq!(emc.lookup(&k, k.hash()), Some(8));
        assert_eq!(emc.occupancy(), 1);
        emc.invalidate();
        assert_eq!(emc.lookup(&k, k.hash()), None);
        assert_eq!(emc.occupancy(), 0);
        let s = emc.stats();
        assert_eq!((s.lookups, s.hits, s.inserts), (4, 2, 2));
    }

    #[test]
    fn two_ways_per_set() {
        let mut emc = Emc::<u32>::new(2); // one set of two ways
        let (a, b, c) = (key(1), key(2), key(3));
        emc.insert(&a, 0, 1);
        emc.insert(&b, 0, 2);
        assert_eq!(emc.lookup(&a, 0), Some(1));
        assert_eq!(emc.lookup(&b, 0), Some(2));
        // a is hotter: c replaces b.
        emc.lookup(&a, 0);
        emc.insert(&c, 0, 3);
        assert_eq!(emc.lookup(&a, 0), Some(1));
        assert_eq!(emc.lookup(&b, 0), None);
        assert_eq!(emc.lookup(&c, 0), Some(3));
        assert_eq!(emc.stats().evictions, 1);
    }

    #[test]
    fn hot_entry_eventually_replaced() {
        let mut emc = Emc::<u32>::new(2);
        let hot = key(1);
        emc.insert(&hot, 0, 1);
        for _ in 0..100 {
            emc.lookup(&hot, 0);
        }
        for i in 2..40 {
            emc.insert(&key(i), 0, i);
        }
        assert_eq!(emc.lookup(&hot, 0), None);
    }

    #[test]
    fn generation_wrap_clears() {
        let mut emc = Emc::<u32>::new(4);
        let k = key(1);
        emc.insert(&k, k.hash(), 1);
        emc.generation = u32::MAX;
        emc.insert(&k, k.hash(), 2);
        emc.invalidate();
        assert_eq!(emc.generation, 1);
        assert_eq!(emc.lookup(&k, k.hash()), None);
    }

    /// A full set keeps its entries against a stream of new flows, except about one insert
    /// in `insert_inv_prob`; free ways are always taken.
    #[test]
    fn eviction_is_sampled_free_ways_are_not() {
        let mut emc = Emc::<u32>::with_insert_inv_prob(2, 100); // one set of two ways
        emc.insert(&key(1), 0, 1);
        emc.insert(&key(2), 0, 2);
        assert_eq!(emc.occupancy(), 2);
        assert_eq!(emc.stats().skipped, 0, "free ways are always taken");
        for i in 3..10_003 {
            emc.insert(&key(i), 0, i);
        }
        let s = emc.stats();
        assert_eq!(s.evictions + s.skipped, 10_000);
        assert!(
            (50..200).contains(&s.evictions),
            "about 1 in 100 evicts: {}",
            s.evictions
        );
        // Inserting every miss (the default) always evicts.
        let mut always = Emc::<u32>::new(2);
        for i in 1..=10 {
            always.insert(&key(i), 0, i);
        }
        assert_eq!((always.stats().evictions, always.stats().skipped), (8, 0));
    }

    /// Re-inserting a cached key updates it whatever the sample says.
    #[test]
    fn update_of_a_cached_key_is_not_sampled() {
        let mut emc = Emc::<u32>::with_insert_inv_prob(2, 1000);
        emc.insert(&key(1), 0, 1);
        emc.insert(&key(2), 0, 2);
        emc.insert(&key(1), 0, 10);
        assert_eq!(emc.lookup(&key(1), 0), Some(10));
    }

    #[test]
    fn size_rounds_up() {
        assert_eq!(Emc::<u8>::new(0).capacity(), 2);
        assert_eq!(Emc::<u8>::new(8192).capacity(), 8192);
        assert_eq!(Emc::<u8>::new(5000).capacity(), 8192);
    }
}
