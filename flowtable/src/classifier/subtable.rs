//! One subtable of the classifier: every rule whose match has one particular mask.
//!
//! Layout (as OVS dpcls): the mask and the indices of its non-zero words; the distinct masked
//! values ("entries") stored compactly, `n` words each (only the mask's non-zero words) in one
//! flat arena; and an [`Index`] from the hash of an entry's value to the head
//! of the entry's rule chain (the rules sharing that masked value, best priority first; the
//! chain links, and each rule's entry number, live in the classifier's rule slots). A probe
//! reads one index bucket, then the head rule's slot (its priority and entry number), then
//! the entry's words to compare.

use std::collections::BTreeMap;

// A subtable hashes the mask's kept words with the key's own per-word mix, numbering them by
// their position among the kept words (so entries store only those words).
use crate::key::{finish_hash, mix_word, FlowKey, KEY_WORDS};

use super::index::Index;
use super::Slot;

pub(super) use super::index::NONE;

pub(super) struct Subtable {
    /// The mask every rule here has.
    pub(super) mask: FlowKey,
    /// Indices of the mask's non-zero words; the first `n` are used.
    idx: [u8; KEY_WORDS],
    n: u8,
    /// Masked values, `n` words per entry.
    values: Vec<u64>,
    /// Entries allocated (live or free).
    entries: u32,
    /// Free entry numbers.
    free: Vec<u32>,
    /// Head rule slot of each live entry, keyed by the hash of its masked value.
    pub(super) index: Index,
    /// How many rules have each priority (to keep the max priority on remove).
    prios: BTreeMap<u32, u32>,
    /// Rules in this subtable.
    pub(super) n_rules: u32,
    /// Lookups this subtable decided, since it was created.
    pub(super) hits: u64,
    /// Recent hits (halved at every re-rank), the tie-break of the probe order.
    pub(super) window_hits: u64,
    /// Position in the classifier's probe order.
    pub(super) pos: u32,
}

impl Subtable {
    pub(super) fn new(mask: FlowKey, pos: u32) -> Subtable {
        let nz = mask.nonzero_words();
        let mut idx = [0u8; KEY_WORDS];
        idx[..nz.len()].copy_from_slice(&nz);
        Subtable {
            mask,
            idx,
            n: nz.len() as u8,
            values: Vec::new(),
            entries: 0,
            free: Vec::new(),
            index: Index::new(),
            prios: BTreeMap::new(),
            n_rules: 0,
            hits: 0,
            window_hits: 0,
            pos,
        }
    }

    /// Indices of the mask's non-zero words.
    #[inline(always)]
    pub(super) fn idx(&self) -> &[u8] {
        &self.idx[..self.n as usize]
    }

    /// Number of words the mask keeps.
    #[inline(always)]
    pub(super) fn n(&self) -> usize {
        self.n as usize
    }

    /// The hash of `key & mask` (what the index is keyed by).
    #[inline(always)]
    pub(super) fn hash(&self, key: &FlowKey) -> u64 {
        let (kw, mw) = (key.words(), self.mask.words());
        let mut acc = 0u64;
        for (j, &i) in self.idx().iter().enumerate() {
            acc = acc.wrapping_add(mix_word(kw[i as usize] & mw[i as usize], j));
        }
        finish_hash(acc)
    }

    /// The hash of entry `e`'s value (equal to [`Subtable::hash`] of keys that match it).
    pub(super) fn entry_hash(&self, e: u32) -> u64 {
        let n = self.n as usize;
        hash_vals(&self.values[e as usize * n..][..n])
    }

    /// The mask's kept words, for a batch probe specialized to `N` of them.
    #[inline(always)]
    pub(super) fn words<const N: usize>(&self) -> Words<N> {
        debug_assert_eq!(N, self.n as usize);
        let mut w = Words {
            idx: [0; N],
            mask: [0; N],
        };
        for j in 0..N {
            let i = self.idx[j] as usize;
            w.idx[j] = i;
            w.mask[j] = self.mask.words()[i];
        }
        w
    }

    /// True when `key & mask` equals entry `e`'s value.
    #[inline(always)]
    pub(super) fn entry_matches(&self, e: u32, key: &FlowKey) -> bool {
        let n = self.n as usize;
        let vals = &self.values[e as usize * n..][..n];
        let (kw, mw) = (key.words(), self.mask.words());
        let mut diff = 0;
        for (&i, &v) in self.idx().iter().zip(vals) {
            diff |= (kw[i as usize] & mw[i as usize]) ^ v;
        }
        diff == 0
    }

    /// Loads entry `e`'s words (so that their cache lines are on their way).
    #[inline(always)]
    pub(super) fn touch_entry(&self, e: u32) {
        let n = self.n as usize;
        if n > 0 {
            let vals = &self.values[e as usize * n..][..n];
            std::hint::black_box(vals[0]);
            std::hint::black_box(vals[n - 1]);
        }
    }

    /// The head rule slot of the entry whose value equals `key & mask` (`h` its hash).
    #[inline]
    pub(super) fn find(&self, key: &FlowKey, h: u64, slots: &[Slot]) -> Option<u32> {
        self.index
            .find(h, |s| self.entry_matches(slots[s as usize].entry, key))
    }

    /// The head rule slot of live entry `e` (`h` its hash).
    pub(super) fn head_of(&self, e: u32, h: u64, slots: &[Slot]) -> u32 {
        self.index
            .find(h, |s| slots[s as usize].entry == e)
            .expect("a live entry is indexed")
    }

    /// The masked value of entry `e`, as a full key.
    pub(super) fn value_of(&self, e: u32) -> FlowKey {
        let n = self.n as usize;
        let vals = &self.values[e as usize * n..][..n];
        let mut w = [0u64; KEY_WORDS];
        for (&i, &v) in self.idx().iter().zip(vals) {
            w[i as usize] = v;
        }
        FlowKey::from_words(w)
    }

    /// Makes room for `additional` more entries (see [`super::Classifier::reserve`]); `slots`
    /// gives the entries of the heads already indexed.
    pub(super) fn reserve(&mut self, additional: usize, slots: &[Slot]) {
        let n = self.n as usize;
        self.values.reserve(additional * n);
        self.index
            .reserve(additional, head_hash(&self.values, n, slots));
    }

    /// A new entry for masked `value` (hash `h`, absent), whose chain is the rule at slot
    /// `head` alone. `slots` gives the entries of the heads already indexed.
    pub(super) fn add_entry(&mut self, value: &FlowKey, h: u64, head: u32, slots: &[Slot]) -> u32 {
        let n = self.n as usize;
        let e = match self.free.pop() {
            Some(e) => {
                let vals = &mut self.values[e as usize * n..][..n];
                for (v, &i) in vals.iter_mut().zip(&self.idx[..n]) {
                    *v = value.words()[i as usize];
                }
                e
            }
            None => {
                let e = self.entries;
                self.entries += 1;
                self.values
                    .extend(self.idx[..n].iter().map(|&i| value.words()[i as usize]));
                e
            }
        };
        self.index
            .insert(h, head, head_hash(&self.values, n, slots));
        e
    }

    /// The chain of entry `e` (hash `h`) now starts at slot `new` instead of `old`.
    pub(super) fn set_head(&mut self, h: u64, old: u32, new: u32) {
        let ok = self.index.replace(h, old, new);
        debug_assert!(ok);
    }

    /// Frees entry `e` (hash `h`), whose chain (last head `head`) is now empty.
    pub(super) fn remove_entry(&mut self, e: u32, h: u64, head: u32) {
        let ok = self.index.remove(h, head);
        debug_assert!(ok);
        self.free.push(e);
    }

    /// Counts a rule of priority `p`.
    pub(super) fn add_priority(&mut self, p: u32) {
        *self.prios.entry(p).or_insert(0) += 1;
        self.n_rules += 1;
    }

    /// Uncounts a rule of priority `p`.
    pub(super) fn remove_priority(&mut self, p: u32) {
        if let Some(c) = self.prios.get_mut(&p) {
            *c -= 1;
            if *c == 0 {
                self.prios.remove(&p);
            }
        }
        self.n_rules -= 1;
    }

    /// The highest priority of any rule here (0 when empty).
    pub(super) fn max_priority(&self) -> u32 {
        self.prios.last_key_value().map_or(0, |(&p, _)| p)
    }

    /// True when every rule here has the same priority (so every entry's head has the max).
    #[inline]
    pub(super) fn uniform_priority(&self) -> bool {
        self.prios.len() == 1
    }

    /// Approximate heap bytes.
    pub(super) fn memory_bytes(&self) -> usize {
        // A BTreeMap leaf holds up to 11 (u32, u32) pairs in about 100 bytes.
        self.values.capacity() * 8
            + self.free.capacity() * 4
            + self.index.memory_bytes()
            + self.prios.len().div_ceil(7) * 104
    }
}

/// The hash of masked words `vals` (in mask word order).
/// The hash of the entry whose chain starts at slot `s` (what the index re-places a value
/// with when it grows), for a subtable of `n` words per entry.
fn head_hash<'a>(values: &'a [u64], n: usize, slots: &'a [Slot]) -> impl Fn(u32) -> u64 + 'a {
    move |s| {
        let e = slots[s as usize].entry as usize;
        hash_vals(&values[e * n..][..n])
    }
}

fn hash_vals(vals: &[u64]) -> u64 {
    let acc = vals
        .iter()
        .enumerate()
        .fold(0u64, |acc, (j, &v)| acc.wrapping_add(mix_word(v, j)));
    finish_hash(acc)
}

/// A mask's `N` kept words: their indices and mask bits (so that hashing and comparing
/// unroll, with the mask in registers).
#[derive(Clone, Copy)]
pub(super) struct Words<const N: usize> {
    idx: [usize; N],
    mask: [u64; N],
}

impl<const N: usize> Words<N> {
    /// [`Subtable::hash`], unrolled.
    #[inline(always)]
    pub(super) fn hash(&self, key: &FlowKey) -> u64 {
        let kw = key.words();
        let mut acc = 0u64;
        for j in 0..N {
            acc = acc.wrapping_add(mix_word(kw[self.idx[j]] & self.mask[j], j));
        }
        finish_hash(acc)
    }
}
