//! Batched lookups: a burst of keys walks the probe order together, so that the cache misses
//! of different keys overlap instead of forming one long chain per key.
//!
//! For each subtable in probe order, the keys still searching (those whose best rule so far
//! could be beaten by this subtable) go through passes: (1) hash each key and compute its
//! home bucket (arithmetic only, specialized to the mask's word count); (2) load every home
//! bucket (independent loads, back to back, which the CPU keeps in flight together); (3) scan
//! the buckets for the key's tag. A tag match is a *candidate*: the head rule of an entry
//! whose hash shares 16 bits with the key's. Its priority is known without a load when all
//! the subtable's rules have one priority (the common case; else the candidates' rule slots
//! are loaded together), so the walk goes on assuming the candidate is a real match.
//! Candidates are verified later, all together (load their rule slots, then their entries'
//! words, then compare). A key whose candidate turns out false (a 16-bit tag collision with
//! one of the few values in its bucket: at most about one probe in 10 000) is looked up
//! again alone, exactly.
//!
//! So the result of every key, the subtables it probed and the hits it counts are exactly
//! those of [`Classifier::lookup`]; a burst is cut where the automatic re-rank falls, so the
//! probe order changes at the same key as it would one key at a time.

use std::hint::black_box;

use super::subtable::Subtable;
use super::{Classifier, Found, Probe, RuleIdx, NONE, RERANK_INTERVAL};
use crate::key::FlowKey;

/// Keys probed together; longer inputs are cut into pieces of this size.
pub const LOOKUP_BATCH: usize = 32;

/// [`Classifier::lookup_batch`] walks the keys together only when the classifier holds at
/// least this many rules per subtable; smaller classifiers are mostly cache resident, and
/// there the one-key path, which does less work per probe, is faster.
pub const BATCH_THRESHOLD: usize = 2048;

/// Candidates awaiting verification (verified early when full).
const QUEUE: usize = 64;

#[cfg(test)]
thread_local! {
    /// Tests: keys looked up again after a false candidate.
    pub(super) static REDOS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A candidate: key number, subtable number, head rule slot.
type Candidate = (u8, u32, u32);

/// The state of a batch walking the probe order.
struct Pending {
    /// Keys still searching (the first `n_active`).
    active: [u8; LOOKUP_BATCH],
    n_active: usize,
    /// Keys to look up again alone (a false candidate misled them).
    redo: u64,
    /// Per key, hash and home bucket in the current subtable.
    hashes: [u64; LOOKUP_BATCH],
    homes: [usize; LOOKUP_BATCH],
    /// Keys with a candidate in the current subtable, and their candidates.
    with_cand: [u8; LOOKUP_BATCH],
    cand: [u32; LOOKUP_BATCH],
    /// Candidates to verify.
    queue: [Candidate; QUEUE],
    queued: usize,
}

impl Pending {
    fn new(n: usize) -> Pending {
        let mut active = [0u8; LOOKUP_BATCH];
        for (i, a) in active[..n].iter_mut().enumerate() {
            *a = i as u8;
        }
        Pending {
            active,
            n_active: n,
            redo: 0,
            hashes: [0; LOOKUP_BATCH],
            homes: [0; LOOKUP_BATCH],
            with_cand: [0; LOOKUP_BATCH],
            cand: [NONE; LOOKUP_BATCH],
            queue: [(0, 0, 0); QUEUE],
            queued: 0,
        }
    }

    /// Whether key `k`, having found `f`, still probes the subtable of `p`: not when it found
    /// a rule at least as good as that subtable can hold (the order is by max priority, so
    /// it is done), nor when it awaits a lookup alone.
    #[inline(always)]
    fn searching(&self, k: usize, f: &Found, p: &Probe) -> bool {
        !(f.best != NONE && p.max_priority <= f.prio) && self.redo >> k & 1 == 0
    }

    /// Drops the keys that no longer search `p`'s subtable, counting a probe for the others.
    fn filter(&mut self, p: &Probe, found: &mut [Found]) {
        let mut m = 0;
        for j in 0..self.n_active {
            let k = self.active[j] as usize;
            if self.searching(k, &found[k], p) {
                found[k].probes += 1;
                self.active[m] = k as u8;
                m += 1;
            }
        }
        self.n_active = m;
    }

    /// Hashes the keys still searching for subtable `st`, and starts loading their home
    /// buckets.
    fn prepare(&mut self, keys: &[FlowKey], st: &Subtable) {
        match st.n() {
            0 => {
                let h = st.hash(&FlowKey::ZERO);
                self.hash_all(keys, st, |_| h)
            }
            1 => {
                let w = st.words::<1>();
                self.hash_all(keys, st, |k| w.hash(k))
            }
            2 => {
                let w = st.words::<2>();
                self.hash_all(keys, st, |k| w.hash(k))
            }
            3 => {
                let w = st.words::<3>();
                self.hash_all(keys, st, |k| w.hash(k))
            }
            4 => {
                let w = st.words::<4>();
                self.hash_all(keys, st, |k| w.hash(k))
            }
            _ => self.hash_all(keys, st, |k| st.hash(k)),
        }
    }

    /// [`Pending::prepare`] with `hash` ([`Subtable::hash`], specialized).
    #[inline(always)]
    fn hash_all(&mut self, keys: &[FlowKey], st: &Subtable, hash: impl Fn(&FlowKey) -> u64) {
        let active = &self.active[..self.n_active];
        let (hashes, homes) = (&mut self.hashes, &mut self.homes);
        // Arithmetic only...
        for &k in active {
            let k = k as usize;
            let h = hash(&keys[k]);
            hashes[k] = h;
            homes[k] = st.index.home(h);
        }
        // ...then independent loads, back to back: the CPU keeps many in flight.
        for &k in active {
            st.index.touch(homes[k as usize]);
        }
    }

    /// Probes subtable `st` (at `p` in the order) for the keys still searching, hashed by
    /// [`Pending::prepare`].
    fn scan(
        &mut self,
        cls: &Classifier,
        keys: &[FlowKey],
        found: &mut [Found],
        p: &Probe,
        st: &Subtable,
    ) {
        let m = self.n_active;
        // Scan the buckets for candidates.
        let mut n_cand = 0;
        for j in 0..m {
            let k = self.active[j] as usize;
            let c = st.index.first_candidate(self.homes[k], self.hashes[k]);
            if c != NONE {
                self.with_cand[n_cand] = k as u8;
                self.cand[n_cand] = c;
                n_cand += 1;
            }
        }
        if n_cand == 0 {
            return;
        }
        // Take the candidates as found, to be verified later. Their priority is the
        // subtable's when it has only one.
        if self.queued + n_cand > QUEUE {
            cls.verify(keys, &self.queue[..self.queued], &mut self.redo);
            self.queued = 0;
        }
        let uniform = st.uniform_priority();
        if !uniform {
            // The priorities are needed now: load the candidates' rule slots together.
            for &c in &self.cand[..n_cand] {
                black_box(cls.slots[c as usize].priority);
            }
        }
        for j in 0..n_cand {
            let k = self.with_cand[j] as usize;
            let c = self.cand[j];
            let prio = if uniform {
                p.max_priority
            } else {
                cls.slots[c as usize].priority
            };
            let f = &mut found[k];
            if f.best == NONE || prio > f.prio {
                f.best = c;
                f.prio = prio;
                f.st = p.st;
            }
            self.queue[self.queued] = (k as u8, p.st, c);
            self.queued += 1;
        }
    }
}

impl Classifier {
    /// Looks up every key of `keys`, writing into `out[i]` exactly what
    /// [`Classifier::lookup`]`(&keys[i])` would return if called on each key in order; the
    /// counters (lookups, probes, hits) and the re-ranking are also exactly the same. Faster
    /// than single lookups: the keys' memory accesses overlap (see the module doc), best
    /// with [`LOOKUP_BATCH`] keys or more, on classifiers too big for the caches (below
    /// [`BATCH_THRESHOLD`] rules per subtable it looks the keys up one at a time). Allocates
    /// nothing.
    ///
    /// # Panics
    /// When `out` is shorter than `keys` (it may be longer: the rest is left untouched).
    pub fn lookup_batch(&mut self, keys: &[FlowKey], out: &mut [Option<RuleIdx>]) {
        assert!(
            out.len() >= keys.len(),
            "lookup_batch: {} keys but room for {} results",
            keys.len(),
            out.len()
        );
        let threshold = self.batch_threshold.unwrap_or(BATCH_THRESHOLD);
        if self.len < threshold.saturating_mul(self.order.len()) {
            for (key, o) in keys.iter().zip(out.iter_mut()) {
                *o = self.lookup(key);
            }
            return;
        }
        let mut done = 0;
        while done < keys.len() {
            // Stop the piece where the re-rank falls: later keys must see the new order.
            let room = (RERANK_INTERVAL - self.since_rerank) as usize;
            let len = (keys.len() - done).min(LOOKUP_BATCH).min(room);
            let mut found = [Found::NOTHING; LOOKUP_BATCH];
            self.probe_batch(&keys[done..done + len], &mut found[..len]);
            for (o, f) in out[done..done + len].iter_mut().zip(&found[..len]) {
                *o = self.count_lookup(*f);
            }
            done += len;
        }
    }

    /// Sets the number of rules per subtable from which [`Classifier::lookup_batch`] walks
    /// the keys together (default [`BATCH_THRESHOLD`]; 0: always, `usize::MAX`: never). The
    /// results are the same either way; only the speed differs.
    pub fn set_batch_threshold(&mut self, rules_per_subtable: usize) {
        self.batch_threshold = Some(rules_per_subtable);
    }

    /// The lookups of `keys` (at most [`LOOKUP_BATCH`]), without side effects.
    fn probe_batch(&self, keys: &[FlowKey], found: &mut [Found]) {
        let n = keys.len();
        debug_assert!(n <= LOOKUP_BATCH && found.len() == n);
        let mut b = Pending::new(n);
        for p in &self.order {
            b.filter(p, found);
            if b.n_active == 0 {
                break;
            }
            if let Some(st) = self.subtables[p.st as usize].as_ref() {
                b.prepare(keys, st);
                b.scan(self, keys, found, p, st);
            }
        }
        self.verify(keys, &b.queue[..b.queued], &mut b.redo);
        #[cfg(test)]
        REDOS.with(|r| r.set(r.get() + b.redo.count_ones() as u64));
        while b.redo != 0 {
            let k = b.redo.trailing_zeros() as usize;
            b.redo &= b.redo - 1;
            found[k] = self.probe(&keys[k]);
        }
    }

    /// Checks candidates against their entries' words, marking in `redo` the keys of false
    /// ones.
    fn verify(&self, keys: &[FlowKey], queue: &[Candidate], redo: &mut u64) {
        // Three rounds of independent loads: rule slots, entries' words, compare.
        for &(_, _, c) in queue {
            black_box(self.slots[c as usize].entry);
        }
        for &(_, st, c) in queue {
            if let Some(st) = self.subtables[st as usize].as_ref() {
                st.touch_entry(self.slots[c as usize].entry);
            }
        }
        for &(k, st, c) in queue {
            let real = self.subtables[st as usize].as_ref().is_some_and(|st| {
                st.entry_matches(self.slots[c as usize].entry, &keys[k as usize])
            });
            if !real {
                *redo |= 1 << k;
            }
        }
    }
}
