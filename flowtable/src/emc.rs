//! Exact-match cache. (Stub: the classifier helper fills this in.)

use crate::key::FlowKey;

/// A fixed-size exact-match cache from a full [`FlowKey`] to a decision `V`.
pub struct Emc<V: Copy> {
    _v: Option<V>,
}

impl<V: Copy> Emc<V> {
    /// A cache with `entries` slots (rounded up to a power of two).
    pub fn new(entries: usize) -> Emc<V> {
        let _ = entries;
        Emc { _v: None }
    }
    /// The cached decision for `key` (whose [`FlowKey::hash`] is `hash`).
    pub fn lookup(&mut self, key: &FlowKey, hash: u64) -> Option<V> {
        let _ = (key, hash);
        None
    }
    /// Caches `v` for `key`.
    pub fn insert(&mut self, key: &FlowKey, hash: u64, v: V) {
        let _ = (key, hash, v);
    }
    /// Forgets every entry in O(1) (the rule set changed).
    pub fn invalidate(&mut self) {}
}
