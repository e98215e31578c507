//! One subtable of the classifier: every rule whose match has one particular mask.
//!
//! Layout (as OVS dpcls): the mask and the indices of its non-zero words; the distinct masked
//! values ("entries") stored compactly, `n` words each (only the mask's non-zero words) in one
//! flat arena; a `HashTable<u32>` of entry numbers keyed by [`FlowKey::hash_words`]; and for each
//! entry the head of its rule chain (the rules sharing that masked value, best priority first;
//! the chain links live in the classifier's rule slots).

use std::collections::BTreeMap;

use hashbrown::HashTable;

use crate::key::{FlowKey, KEY_WORDS};

/// "No slot / no entry".
pub(super) const NONE: u32 = u32::MAX;

pub(super) struct Subtable {
    /// The mask every rule here has.
    pub(super) mask: FlowKey,
    /// Indices of the mask's non-zero words; the first `n` are used.
    idx: [u8; KEY_WORDS],
    n: u8,
    /// Masked values, `n` words per entry.
    values: Vec<u64>,
    /// Entry → first rule slot of its chain, or [`NONE`] for a free entry.
    pub(super) heads: Vec<u32>,
    /// Free entry numbers.
    free: Vec<u32>,
    /// Entry numbers, keyed by the hash of their masked value.
    table: HashTable<u32>,
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
            heads: Vec::new(),
            free: Vec::new(),
            table: HashTable::new(),
            prios: BTreeMap::new(),
            n_rules: 0,
            hits: 0,
            window_hits: 0,
            pos,
        }
    }

    /// Indices of the mask's non-zero words.
    #[inline]
    pub(super) fn idx(&self) -> &[u8] {
        &self.idx[..self.n as usize]
    }

    /// The entry whose masked value equals `key & mask`.
    #[inline]
    pub(super) fn find(&self, key: &FlowKey) -> Option<u32> {
        let idx = self.idx();
        let n = idx.len();
        let h = key.hash_words(&self.mask, idx);
        let kw = key.words();
        let mw = self.mask.words();
        let values = &self.values;
        self.table
            .find(h, |&e| {
                let vals = &values[e as usize * n..][..n];
                idx.iter()
                    .zip(vals)
                    .all(|(&i, &v)| kw[i as usize] & mw[i as usize] == v)
            })
            .copied()
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

    /// The entry for masked `value`, created (with an empty chain) when absent.
    pub(super) fn find_or_add(&mut self, value: &FlowKey) -> u32 {
        if let Some(e) = self.find(value) {
            return e;
        }
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
                let e = self.heads.len() as u32;
                self.heads.push(NONE);
                self.values
                    .extend(self.idx[..n].iter().map(|&i| value.words()[i as usize]));
                e
            }
        };
        let h = value.hash_words(&self.mask, self.idx());
        let (mask, idx, values) = (&self.mask, &self.idx[..n], &self.values);
        self.table
            .insert_unique(h, e, |&x| rehash(mask, idx, &values[x as usize * n..][..n]));
        e
    }

    /// Frees entry `e`, whose chain is already empty.
    pub(super) fn remove_entry(&mut self, e: u32) {
        debug_assert_eq!(self.heads[e as usize], NONE);
        let n = self.n as usize;
        let h = rehash(&self.mask, self.idx(), &self.values[e as usize * n..][..n]);
        if let Ok(occ) = self.table.find_entry(h, |&x| x == e) {
            occ.remove();
        }
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

    /// Approximate heap bytes.
    pub(super) fn memory_bytes(&self) -> usize {
        // A BTreeMap leaf holds up to 11 (u32, u32) pairs in about 100 bytes.
        self.values.capacity() * 8
            + self.heads.capacity() * 4
            + self.free.capacity() * 4
            + self.table.allocation_size()
            + self.prios.len().div_ceil(7) * 104
    }
}

/// The hash [`FlowKey::hash_words`] gives for a key whose masked non-zero words are `vals`.
fn rehash(mask: &FlowKey, idx: &[u8], vals: &[u64]) -> u64 {
    let mut w = [0u64; KEY_WORDS];
    for (&i, &v) in idx.iter().zip(vals) {
        w[i as usize] = v;
    }
    FlowKey::from_words(w).hash_words(mask, idx)
}
