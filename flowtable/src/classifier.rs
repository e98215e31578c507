//! Wildcard classifier: tuple-space search, as in OVS's dpcls.
//!
//! Rules are grouped into one *subtable* per distinct mask. A subtable hashes only the words
//! its mask keeps and stores its rules' masked values compactly (see `subtable`). A lookup
//! probes the subtables in order of their highest rule priority (descending), and among equal
//! highest priority by recent hits (descending), and stops as soon as the next subtable cannot
//! hold a better rule than the best found so far. The order is re-ranked every
//! [`RERANK_INTERVAL`] lookups (an insertion sort over an almost sorted array), or on demand
//! with [`Classifier::rerank`].
//!
//! Semantics: the matching rule with the highest priority wins. Among overlapping matching
//! rules of *equal* priority the result is any one of them (as in OpenFlow, where such a rule
//! set is ambiguous); it is stable while the rule set and the probe order do not change.
//!
//! Each PMD owns its own classifier as plain mutable data: no locks, no atomics; hit counters
//! are plain `u64`s. Inserts and removes are incremental. Per rule the classifier keeps about
//! 48 bytes of slot (id, priority, actions pointer, hits, links), the rule's masked value
//! (only the mask's non-zero words, 8 bytes each), and a few bytes of hash-table and priority
//! bookkeeping; a rule's match is stored once, split into its subtable's mask and that value.
//! [`Classifier::rule`] therefore returns a [`RuleRef`] view; [`RuleRef::matches`] and
//! [`RuleRef::to_rule`] rebuild the match and the rule.

mod subtable;

use std::sync::Arc;

use hashbrown::{HashMap, HashTable};

use crate::action::Action;
use crate::key::FlowKey;
use crate::matching::Match;

use subtable::{Subtable, NONE};

/// The probe order is re-ranked after this many lookups.
pub const RERANK_INTERVAL: u32 = 1024;

/// A rule's identity, assigned by the control plane and stable across PMD copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleId(pub u64);

/// A rule's slot in one classifier: valid until the next insert or remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RuleIdx(pub u32);

/// A classifier rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Identity.
    pub id: RuleId,
    /// Higher wins.
    pub priority: u32,
    /// What it matches.
    pub matches: Match,
    /// What it does.
    pub actions: Arc<[Action]>,
}

/// Why a classifier change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassifierError {
    /// A rule with this id is already installed.
    #[error("rule {0:?} already exists")]
    DuplicateId(RuleId),
    /// The classifier holds as many rules as a [`RuleIdx`] can number.
    #[error("classifier is full")]
    Full,
}

/// Lookup counters (since the classifier was created).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassifierStats {
    /// Calls to [`Classifier::lookup`].
    pub lookups: u64,
    /// Lookups that found a rule.
    pub matched: u64,
    /// Subtables probed, over all lookups.
    pub subtable_probes: u64,
}

/// A summary of one subtable (for the management API).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubtableInfo {
    /// The mask shared by the subtable's rules.
    pub mask: FlowKey,
    /// How many of the mask's words are non-zero (the words a probe hashes).
    pub mask_words: usize,
    /// Rules in the subtable.
    pub rules: usize,
    /// Lookups the subtable decided.
    pub hits: u64,
    /// The highest priority of its rules.
    pub max_priority: u32,
}

/// A view of an installed rule (what [`Classifier::rule`] returns).
#[derive(Clone, Copy, Debug)]
pub struct RuleRef<'a> {
    /// Identity.
    pub id: RuleId,
    /// Priority.
    pub priority: u32,
    /// What it does.
    pub actions: &'a Arc<[Action]>,
    /// Lookups this rule decided.
    pub hits: u64,
    mask: &'a FlowKey,
    value: FlowKey,
}

impl RuleRef<'_> {
    /// The rule's match (rebuilt from its subtable's mask and its stored value).
    pub fn matches(&self) -> Match {
        Match::from_parts(self.value, *self.mask)
    }

    /// The rule, rebuilt.
    pub fn to_rule(&self) -> Rule {
        Rule {
            id: self.id,
            priority: self.priority,
            matches: self.matches(),
            actions: self.actions.clone(),
        }
    }
}

/// One installed rule (or a free slot, when `actions` is `None`).
struct Slot {
    id: RuleId,
    actions: Option<Arc<[Action]>>,
    hits: u64,
    priority: u32,
    subtable: u32,
    /// The rule's entry (masked value) in its subtable.
    entry: u32,
    /// Next rule of the same entry (lower or equal priority); for a free slot, the next free.
    next: u32,
}

/// A subtable's place in the probe order.
#[derive(Clone, Copy, Debug)]
struct Probe {
    max_priority: u32,
    st: u32,
}

/// Tuple-space-search classifier.
#[derive(Default)]
pub struct Classifier {
    slots: Vec<Slot>,
    /// Head of the free-slot list (through `Slot::next`), or [`NONE`].
    free_slot: Option<u32>,
    /// Slot numbers keyed by the hash of their rule id.
    ids: HashTable<u32>,
    subtables: Vec<Option<Subtable>>,
    free_subtables: Vec<u32>,
    by_mask: HashMap<FlowKey, u32>,
    /// Subtables in probe order.
    order: Vec<Probe>,
    len: usize,
    stats: ClassifierStats,
    since_rerank: u32,
}

#[inline]
fn id_hash(id: RuleId) -> u64 {
    let m = (id.0 ^ 0x9e37_79b9_7f4a_7c15) as u128 * 0xff51_afd7_ed55_8ccd_u128;
    (m >> 64) as u64 ^ m as u64
}

impl Classifier {
    /// An empty classifier.
    pub fn new() -> Classifier {
        Classifier::default()
    }

    /// Installs `rule`. A rule whose id is already installed is refused.
    pub fn insert(&mut self, rule: Rule) -> Result<(), ClassifierError> {
        let Rule {
            id,
            priority,
            matches,
            actions,
        } = rule;
        if self.get(id).is_some() {
            return Err(ClassifierError::DuplicateId(id));
        }
        if self.free_slot.is_none() && self.slots.len() >= NONE as usize {
            return Err(ClassifierError::Full);
        }
        let mask = *matches.mask();
        let value = matches.value().masked(&mask);

        // The subtable.
        let st_no = match self.by_mask.get(&mask) {
            Some(&s) => s,
            None => self.add_subtable(mask),
        };
        let st = self.subtables[st_no as usize]
            .as_mut()
            .expect("by_mask names live subtables");
        let entry = st.find_or_add(&value);
        let old_max = st.max_priority();
        let was_empty = st.n_rules == 0;
        st.add_priority(priority);
        let new_max = st.max_priority();
        let pos = st.pos as usize;

        // The slot.
        let slot = Slot {
            id,
            actions: Some(actions),
            hits: 0,
            priority,
            subtable: st_no,
            entry,
            next: NONE,
        };
        let s = match self.free_slot {
            Some(s) => {
                let next = self.slots[s as usize].next;
                self.free_slot = (next != NONE).then_some(next);
                self.slots[s as usize] = slot;
                s
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };

        // Link into the entry's chain, best priority first (after equal ones).
        let heads = &mut st.heads;
        let mut prev = NONE;
        let mut cur = heads[entry as usize];
        while cur != NONE && self.slots[cur as usize].priority >= priority {
            prev = cur;
            cur = self.slots[cur as usize].next;
        }
        self.slots[s as usize].next = cur;
        if prev == NONE {
            heads[entry as usize] = s;
        } else {
            self.slots[prev as usize].next = s;
        }

        let slots = &self.slots;
        self.ids
            .insert_unique(id_hash(id), s, |&x| id_hash(slots[x as usize].id));
        self.len += 1;

        if was_empty || new_max != old_max {
            self.order[pos].max_priority = new_max;
            self.fix_position(pos);
        }
        Ok(())
    }

    /// Removes the rule with `id`, returning it.
    pub fn remove(&mut self, id: RuleId) -> Option<Rule> {
        let slots = &self.slots;
        let s = match self
            .ids
            .find_entry(id_hash(id), |&x| slots[x as usize].id == id)
        {
            Ok(occ) => occ.remove().0,
            Err(_) => return None,
        };
        let (st_no, entry, priority, next) = {
            let sl = &self.slots[s as usize];
            (sl.subtable, sl.entry, sl.priority, sl.next)
        };
        let st = self.subtables[st_no as usize]
            .as_mut()
            .expect("a rule's subtable is live");
        let matches = Match::from_parts(st.value_of(entry), st.mask);

        // Unlink from the entry's chain.
        if st.heads[entry as usize] == s {
            st.heads[entry as usize] = next;
        } else {
            let mut cur = st.heads[entry as usize];
            while self.slots[cur as usize].next != s {
                cur = self.slots[cur as usize].next;
            }
            self.slots[cur as usize].next = next;
        }
        if st.heads[entry as usize] == NONE {
            st.remove_entry(entry);
        }
        let old_max = st.max_priority();
        st.remove_priority(priority);
        let new_max = st.max_priority();
        let pos = st.pos as usize;
        let now_empty = st.n_rules == 0;

        // Free the slot.
        let sl = &mut self.slots[s as usize];
        let actions = sl.actions.take().expect("an installed rule has actions");
        sl.next = self.free_slot.unwrap_or(NONE);
        self.free_slot = Some(s);
        self.len -= 1;

        if now_empty {
            self.remove_subtable(st_no);
        } else if new_max != old_max {
            self.order[pos].max_priority = new_max;
            self.fix_position(pos);
        }
        Some(Rule {
            id,
            priority,
            matches,
            actions,
        })
    }

    /// Removes every rule (counters are kept).
    pub fn clear(&mut self) {
        self.slots.clear();
        self.free_slot = None;
        self.ids.clear();
        self.subtables.clear();
        self.free_subtables.clear();
        self.by_mask.clear();
        self.order.clear();
        self.len = 0;
    }

    /// The highest-priority rule matching `key` (see the module doc for equal priorities).
    /// Counts the lookup, the winning rule's and subtable's hits. Allocates nothing.
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey) -> Option<RuleIdx> {
        let mut best = NONE;
        let mut best_prio = 0u32;
        let mut best_st = NONE;
        let mut probes = 0u64;
        for p in &self.order {
            if best != NONE && p.max_priority <= best_prio {
                break;
            }
            probes += 1;
            let Some(st) = self.subtables[p.st as usize].as_ref() else {
                continue;
            };
            if let Some(e) = st.find(key) {
                let head = st.heads[e as usize];
                let prio = self.slots[head as usize].priority;
                if best == NONE || prio > best_prio {
                    best = head;
                    best_prio = prio;
                    best_st = p.st;
                }
            }
        }
        self.stats.lookups += 1;
        self.stats.subtable_probes += probes;
        self.since_rerank += 1;
        if self.since_rerank >= RERANK_INTERVAL {
            self.rerank();
        }
        if best == NONE {
            return None;
        }
        self.stats.matched += 1;
        self.slots[best as usize].hits += 1;
        if let Some(st) = self.subtables[best_st as usize].as_mut() {
            st.hits += 1;
            st.window_hits += 1;
        }
        Some(RuleIdx(best))
    }

    /// Credits `n` more hits to the rule at `idx` (frames the EMC decided with a cached
    /// `idx`, so that [`Classifier::rule_hits`] counts every frame a rule decided). Does not
    /// touch the lookup counters or the subtable ranking. An `idx` naming no rule is ignored.
    #[inline]
    pub fn count_hits(&mut self, idx: RuleIdx, n: u64) {
        if let Some(sl) = self.slots.get_mut(idx.0 as usize) {
            if sl.actions.is_some() {
                sl.hits += n;
            }
        }
    }

    /// The rule at `idx`.
    ///
    /// # Panics
    /// When `idx` names no installed rule (it did not come from [`Classifier::lookup`] or
    /// [`Classifier::get`] since the last change).
    pub fn rule(&self, idx: RuleIdx) -> RuleRef<'_> {
        let sl = &self.slots[idx.0 as usize];
        let actions = sl.actions.as_ref().expect("RuleIdx of a removed rule");
        let st = self.subtables[sl.subtable as usize]
            .as_ref()
            .expect("a rule's subtable is live");
        RuleRef {
            id: sl.id,
            priority: sl.priority,
            actions,
            hits: sl.hits,
            mask: &st.mask,
            value: st.value_of(sl.entry),
        }
    }

    /// The slot of the rule with `id`, if installed.
    pub fn get(&self, id: RuleId) -> Option<RuleIdx> {
        let slots = &self.slots;
        self.ids
            .find(id_hash(id), |&x| slots[x as usize].id == id)
            .map(|&s| RuleIdx(s))
    }

    /// Every installed rule, in no particular order.
    pub fn rules(&self) -> impl Iterator<Item = RuleRef<'_>> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.actions.is_some())
            .map(|(i, _)| self.rule(RuleIdx(i as u32)))
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of subtables (distinct masks).
    pub fn n_subtables(&self) -> usize {
        self.order.len()
    }

    /// `(id, hits)` of every installed rule, in no particular order.
    pub fn rule_hits(&self) -> impl Iterator<Item = (RuleId, u64)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.actions.is_some())
            .map(|s| (s.id, s.hits))
    }

    /// Lookup counters.
    pub fn stats(&self) -> ClassifierStats {
        self.stats
    }

    /// The subtables, in probe order.
    pub fn subtables(&self) -> impl Iterator<Item = SubtableInfo> + '_ {
        self.order.iter().filter_map(move |p| {
            let st = self.subtables[p.st as usize].as_ref()?;
            Some(SubtableInfo {
                mask: st.mask,
                mask_words: st.idx().len(),
                rules: st.n_rules as usize,
                hits: st.hits,
                max_priority: p.max_priority,
            })
        })
    }

    /// Approximate heap bytes used (not counting the shared action lists).
    pub fn memory_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.ids.allocation_size()
            + self.subtables.capacity() * std::mem::size_of::<Option<Subtable>>()
            + self
                .subtables
                .iter()
                .flatten()
                .map(Subtable::memory_bytes)
                .sum::<usize>()
            + self.by_mask.allocation_size()
            + self.order.capacity() * std::mem::size_of::<Probe>()
    }

    /// Re-sorts the probe order: by max priority (descending), then by recent hits
    /// (descending). Recent hits are then halved, so the order follows the traffic.
    /// Runs automatically every [`RERANK_INTERVAL`] lookups.
    pub fn rerank(&mut self) {
        self.since_rerank = 0;
        let subtables = &mut self.subtables;
        let key = |p: &Probe| {
            let h = subtables[p.st as usize]
                .as_ref()
                .map_or(0, |s| s.window_hits);
            (p.max_priority, h)
        };
        // Insertion sort: the order is almost sorted already.
        for i in 1..self.order.len() {
            let mut j = i;
            let k = key(&self.order[i]);
            while j > 0 && key(&self.order[j - 1]) < k {
                self.order.swap(j - 1, j);
                j -= 1;
            }
        }
        for (i, p) in self.order.iter().enumerate() {
            if let Some(st) = subtables[p.st as usize].as_mut() {
                st.pos = i as u32;
                st.window_hits /= 2;
            }
        }
    }

    fn add_subtable(&mut self, mask: FlowKey) -> u32 {
        let pos = self.order.len() as u32;
        let st = Subtable::new(mask, pos);
        let st_no = match self.free_subtables.pop() {
            Some(n) => {
                self.subtables[n as usize] = Some(st);
                n
            }
            None => {
                self.subtables.push(Some(st));
                (self.subtables.len() - 1) as u32
            }
        };
        self.order.push(Probe {
            max_priority: 0,
            st: st_no,
        });
        self.by_mask.insert(mask, st_no);
        st_no
    }

    fn remove_subtable(&mut self, st_no: u32) {
        let st = self.subtables[st_no as usize]
            .take()
            .expect("removing a live subtable");
        self.by_mask.remove(&st.mask);
        self.order.remove(st.pos as usize);
        for (i, p) in self.order.iter().enumerate().skip(st.pos as usize) {
            if let Some(s) = self.subtables[p.st as usize].as_mut() {
                s.pos = i as u32;
            }
        }
        self.free_subtables.push(st_no);
    }

    /// Moves the probe at `pos` (whose max priority changed) to keep the order sorted by max
    /// priority, descending.
    fn fix_position(&mut self, mut pos: usize) {
        while pos > 0 && self.order[pos - 1].max_priority < self.order[pos].max_priority {
            self.swap_probes(pos - 1, pos);
            pos -= 1;
        }
        while pos + 1 < self.order.len()
            && self.order[pos + 1].max_priority > self.order[pos].max_priority
        {
            self.swap_probes(pos, pos + 1);
            pos += 1;
        }
    }

    fn swap_probes(&mut self, a: usize, b: usize) {
        self.order.swap(a, b);
        for i in [a, b] {
            let st = self.order[i].st as usize;
            if let Some(s) = self.subtables[st].as_mut() {
                s.pos = i as u32;
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::types::PortNo;

    fn rule(id: u64, priority: u32, value: FlowKey, mask: FlowKey) -> Rule {
        Rule {
            id: RuleId(id),
            priority,
            matches: Match::from_parts(value, mask),
            actions: Arc::from(vec![Action::Output(PortNo(id as u32))]),
        }
    }

    fn ip_dst(v: u32) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.set_ip_dst(v);
        k
    }

    fn tp_dst(v: u16) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.set_tp_dst(v);
        k
    }

    fn key(ip: u32, port: u16) -> FlowKey {
        let mut k = ip_dst(ip);
        k.set_tp_dst(port);
        k
    }

    #[test]
    fn empty_matches_nothing() {
        let mut c = Classifier::new();
        assert_eq!(c.lookup(&FlowKey::ZERO), None);
        assert!(c.is_empty());
        assert_eq!(c.n_subtables(), 0);
    }

    #[test]
    fn priority_wins_across_subtables() {
        let mut c = Classifier::new();
        c.insert(rule(1, 10, ip_dst(0x0a00_0000), ip_dst(0xff00_0000)))
            .unwrap();
        c.insert(rule(2, 20, ip_dst(0x0a01_0000), ip_dst(0xffff_0000)))
            .unwrap();
        c.insert(rule(3, 5, FlowKey::ZERO, FlowKey::ZERO)).unwrap();
        c.insert(rule(4, 30, tp_dst(22), tp_dst(0xffff))).unwrap();
        assert_eq!(c.n_subtables(), 4);
        let id = |c: &mut Classifier, k: FlowKey| c.lookup(&k).map(|i| c.rule(i).id.0);
        assert_eq!(id(&mut c, key(0x0a01_0203, 80)), Some(2));
        assert_eq!(id(&mut c, key(0x0a02_0203, 80)), Some(1));
        assert_eq!(id(&mut c, key(0x0b02_0203, 80)), Some(3));
        assert_eq!(id(&mut c, key(0x0a01_0203, 22)), Some(4));
        assert_eq!(c.stats().lookups, 4);
        assert_eq!(c.stats().matched, 4);
        // The /16 lookup should not have needed the catch-all subtable.
        let r = c.remove(RuleId(4)).unwrap();
        assert_eq!(r.priority, 30);
        assert_eq!(*r.matches.mask(), tp_dst(0xffff));
        assert_eq!(id(&mut c, key(0x0a01_0203, 22)), Some(2));
        assert_eq!(c.n_subtables(), 3);
        c.remove(RuleId(3)).unwrap();
        assert_eq!(id(&mut c, key(0x0b02_0203, 80)), None);
        assert!(c.remove(RuleId(3)).is_none());
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn duplicate_id_refused() {
        let mut c = Classifier::new();
        c.insert(rule(1, 10, FlowKey::ZERO, FlowKey::ZERO)).unwrap();
        assert_eq!(
            c.insert(rule(1, 11, ip_dst(1), ip_dst(!0))).unwrap_err(),
            ClassifierError::DuplicateId(RuleId(1))
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c.n_subtables(), 1);
    }

    #[test]
    fn same_value_chain_best_first() {
        let mut c = Classifier::new();
        let m = ip_dst(!0);
        for (id, p) in [(1, 10), (2, 30), (3, 20), (4, 30)] {
            c.insert(rule(id, p, ip_dst(7), m)).unwrap();
        }
        let i = c.lookup(&ip_dst(7)).unwrap();
        assert_eq!(c.rule(i).priority, 30);
        c.remove(RuleId(2)).unwrap();
        c.remove(RuleId(4)).unwrap();
        let i = c.lookup(&ip_dst(7)).unwrap();
        assert_eq!(c.rule(i).id, RuleId(3));
        c.remove(RuleId(3)).unwrap();
        let i = c.lookup(&ip_dst(7)).unwrap();
        assert_eq!(c.rule(i).id, RuleId(1));
        assert_eq!(c.subtables().next().unwrap().max_priority, 10);
        assert_eq!(c.rule(i).to_rule().matches, Match::from_parts(ip_dst(7), m));
    }

    #[test]
    fn max_priority_maintained_and_early_stop() {
        let mut c = Classifier::new();
        c.insert(rule(1, 100, ip_dst(1), ip_dst(!0))).unwrap();
        c.insert(rule(2, 50, tp_dst(1), tp_dst(!0))).unwrap();
        c.insert(rule(3, 10, FlowKey::ZERO, FlowKey::ZERO)).unwrap();
        let before = c.stats().subtable_probes;
        let i = c.lookup(&key(1, 1)).unwrap();
        assert_eq!(c.rule(i).id, RuleId(1));
        // Found prio 100 in the first subtable; the others have max <= 100: one probe.
        assert_eq!(c.stats().subtable_probes - before, 1);
        let maxes: Vec<u32> = c.subtables().map(|s| s.max_priority).collect();
        assert_eq!(maxes, vec![100, 50, 10]);
        // Raise the catch-all above everything.
        c.insert(rule(4, 200, FlowKey::ZERO, FlowKey::ZERO))
            .unwrap();
        let maxes: Vec<u32> = c.subtables().map(|s| s.max_priority).collect();
        assert_eq!(maxes, vec![200, 100, 50]);
        c.remove(RuleId(4)).unwrap();
        let maxes: Vec<u32> = c.subtables().map(|s| s.max_priority).collect();
        assert_eq!(maxes, vec![100, 50, 10]);
    }

    #[test]
    fn rerank_prefers_hit_subtables_among_equal_priority() {
        let mut c = Classifier::new();
        c.insert(rule(1, 10, ip_dst(1), ip_dst(!0))).unwrap();
        c.insert(rule(2, 10, tp_dst(1), tp_dst(!0))).unwrap();
        let first = c.subtables().next().unwrap().mask;
        let hot = if first == ip_dst(!0) {
            key(0, 1)
        } else {
            key(1, 0)
        };
        for _ in 0..10 {
            c.lookup(&hot).unwrap();
        }
        c.rerank();
        assert_ne!(c.subtables().next().unwrap().mask, first);
        let before = c.stats().subtable_probes;
        c.lookup(&hot).unwrap();
        assert_eq!(c.stats().subtable_probes - before, 1);
    }

    #[test]
    fn hits_counted() {
        let mut c = Classifier::new();
        c.insert(rule(1, 1, ip_dst(1), ip_dst(!0))).unwrap();
        c.insert(rule(2, 1, ip_dst(2), ip_dst(!0))).unwrap();
        for _ in 0..3 {
            c.lookup(&ip_dst(1));
        }
        c.lookup(&ip_dst(3));
        let mut hits: Vec<_> = c.rule_hits().collect();
        hits.sort();
        assert_eq!(hits, vec![(RuleId(1), 3), (RuleId(2), 0)]);
        let idx = c.get(RuleId(2)).unwrap();
        c.count_hits(idx, 5);
        assert_eq!(c.rule(idx).hits, 5);
        assert_eq!(c.stats().matched, 3);
        assert_eq!(c.subtables().next().unwrap().hits, 3);
        assert_eq!(c.stats().matched, 3);
        assert_eq!(c.stats().lookups, 4);
    }

    #[test]
    fn slots_and_entries_are_reused() {
        let mut c = Classifier::new();
        for round in 0..3u64 {
            for i in 0..100u64 {
                c.insert(rule(
                    round * 1000 + i,
                    i as u32,
                    ip_dst(i as u32),
                    ip_dst(!0),
                ))
                .unwrap();
            }
            for i in 0..100u32 {
                let idx = c.lookup(&ip_dst(i)).unwrap();
                assert_eq!(c.rule(idx).id, RuleId(round * 1000 + i as u64));
                assert_eq!(c.get(RuleId(round * 1000 + i as u64)), Some(idx));
            }
            for i in 0..100u64 {
                c.remove(RuleId(round * 1000 + i)).unwrap();
            }
            assert!(c.is_empty());
            assert_eq!(c.n_subtables(), 0);
        }
        assert!(c.slots.len() <= 100);
    }

    #[test]
    fn zero_priority_and_match_all() {
        let mut c = Classifier::new();
        c.insert(rule(9, 0, FlowKey::ZERO, FlowKey::ZERO)).unwrap();
        let i = c.lookup(&key(5, 5)).unwrap();
        assert_eq!(c.rule(i).id, RuleId(9));
        assert_eq!(c.rules().count(), 1);
        assert_eq!(c.subtables().next().unwrap().mask_words, 0);
    }
}
