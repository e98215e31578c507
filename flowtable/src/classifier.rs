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
//! [`Classifier::lookup_batch`] looks up a burst of keys together, so that their cache misses
//! overlap (see `batch`); it returns, counts and re-ranks exactly as one [`Classifier::lookup`]
//! per key would.
//!
//! Semantics: the matching rule with the highest priority wins. Among overlapping matching
//! rules of *equal* priority the result is any one of them (as in OpenFlow, where such a rule
//! set is ambiguous); it is stable while the rule set and the probe order do not change.
//!
//! Each PMD owns its own classifier as plain mutable data: no locks, no atomics; hit counters
//! are plain `u64`s. Inserts and removes are incremental. Per rule the classifier keeps about
//! 48 bytes of slot (id, priority, actions pointer, hits, links), the rule's masked value
//! (only the mask's non-zero words, 8 bytes each), about 7 to 13 bytes of the subtable's
//! index (see `index`), the id hash table and priority bookkeeping; a rule's match is stored
//! once, split into its subtable's mask and that value.
//! [`Classifier::rule`] therefore returns a [`RuleRef`] view; [`RuleRef::matches`] and
//! [`RuleRef::to_rule`] rebuild the match and the rule.

mod batch;
mod index;
mod subtable;

use std::sync::Arc;

use hashbrown::{HashMap, HashTable};

use crate::action::Action;
use crate::key::FlowKey;
use crate::matching::Match;

pub use batch::{BATCH_THRESHOLD, LOOKUP_BATCH};
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
    /// Keys looked up ([`Classifier::lookup`] calls and [`Classifier::lookup_batch`] keys).
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
///
/// The fields a lookup reads (`hits`, `priority`, `entry`) come first: with 48-byte slots
/// they never straddle a cache line.
#[repr(C)]
struct Slot {
    hits: u64,
    priority: u32,
    /// The rule's entry (masked value) in its subtable.
    entry: u32,
    id: RuleId,
    actions: Option<Arc<[Action]>>,
    subtable: u32,
    /// Next rule of the same entry (lower or equal priority); for a free slot, the next free.
    next: u32,
}

/// What one lookup found: the best rule's slot (or [`NONE`]), its priority and subtable, and
/// how many subtables it probed.
#[derive(Clone, Copy, Debug)]
struct Found {
    best: u32,
    prio: u32,
    st: u32,
    probes: u32,
}

impl Found {
    const NOTHING: Found = Found {
        best: NONE,
        prio: 0,
        st: NONE,
        probes: 0,
    };
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
    /// Rules [`Classifier::reserve`] announced for subtables not created yet, by mask.
    reserved: HashMap<FlowKey, usize>,
    /// Subtables in probe order.
    order: Vec<Probe>,
    len: usize,
    stats: ClassifierStats,
    since_rerank: u32,
    /// Set by [`Classifier::set_batch_threshold`].
    batch_threshold: Option<usize>,
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

    /// How many of `rules` have each mask: what [`Classifier::reserve`] takes. (Counted once
    /// by whoever prepares a change, not by each classifier it goes to.)
    pub fn masks_of<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> Vec<(FlowKey, usize)> {
        let mut per_mask: HashMap<FlowKey, usize> = HashMap::new();
        for r in rules {
            *per_mask.entry(*r.matches.mask()).or_default() += 1;
        }
        per_mask.into_iter().collect()
    }

    /// Makes room for rules about to be installed, `per_mask` of them with each mask (see
    /// [`Classifier::masks_of`]), so that installing them does not grow a table step by step
    /// (each step re-places everything in it: at 64k rules in one subtable, several
    /// milliseconds): the rule slots, the id index, and each subtable the rules go to,
    /// including subtables that do not exist yet (they are created that large). A subtable
    /// that already holds rules is re-placed at most once, here.
    pub fn reserve(&mut self, per_mask: &[(FlowKey, usize)]) {
        let additional = per_mask
            .iter()
            .map(|&(_, n)| n)
            .sum::<usize>()
            .min(NONE as usize - self.len);
        self.slots.reserve(additional);
        let slots = &self.slots;
        self.ids
            .reserve(additional, |&s| id_hash(slots[s as usize].id));
        self.reserved.clear();
        for &(mask, n) in per_mask {
            match self.by_mask.get(&mask) {
                Some(&st_no) => self.subtables[st_no as usize]
                    .as_mut()
                    .expect("by_mask names live subtables")
                    .reserve(n, &self.slots),
                None => {
                    self.reserved.insert(mask, n);
                }
            }
        }
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
        let h = st.hash(&value);
        let head = st.find(&value, h, &self.slots);
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
            entry: NONE,
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

        match head {
            None => {
                // A new entry, whose chain is this rule.
                let e = st.add_entry(&value, h, s, &self.slots);
                self.slots[s as usize].entry = e;
            }
            Some(head) => {
                // Link into the entry's chain, best priority first (after equal ones).
                self.slots[s as usize].entry = self.slots[head as usize].entry;
                let mut prev = NONE;
                let mut cur = head;
                while cur != NONE && self.slots[cur as usize].priority >= priority {
                    prev = cur;
                    cur = self.slots[cur as usize].next;
                }
                self.slots[s as usize].next = cur;
                if prev == NONE {
                    st.set_head(h, head, s);
                } else {
                    self.slots[prev as usize].next = s;
                }
            }
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
        let h = st.entry_hash(entry);
        let head = st.head_of(entry, h, &self.slots);
        if head == s {
            if next == NONE {
                st.remove_entry(entry, h, s);
            } else {
                st.set_head(h, s, next);
            }
        } else {
            let mut cur = head;
            while self.slots[cur as usize].next != s {
                cur = self.slots[cur as usize].next;
            }
            self.slots[cur as usize].next = next;
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
        self.reserved.clear();
        self.order.clear();
        self.len = 0;
    }

    /// The highest-priority rule matching `key` (see the module doc for equal priorities).
    /// Counts the lookup, the winning rule's and subtable's hits. Allocates nothing.
    /// [`Classifier::lookup_batch`] is faster for several keys.
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey) -> Option<RuleIdx> {
        let found = self.probe(key);
        self.count_lookup(found)
    }

    /// The rule [`Classifier::lookup`] would pick for `key` right now, without counting
    /// anything or re-ranking: the same probe, so among equal-priority matches it names the
    /// very rule the datapath's next lookup would. For tracing and management, not the
    /// datapath.
    pub fn lookup_quiet(&self, key: &FlowKey) -> Option<RuleIdx> {
        let found = self.probe(key);
        (found.best != NONE).then_some(RuleIdx(found.best))
    }

    /// The lookup of `key`, without side effects.
    #[inline]
    fn probe(&self, key: &FlowKey) -> Found {
        let mut f = Found::NOTHING;
        for p in &self.order {
            if f.best != NONE && p.max_priority <= f.prio {
                break;
            }
            f.probes += 1;
            let Some(st) = self.subtables[p.st as usize].as_ref() else {
                continue;
            };
            if let Some(head) = st.find(key, st.hash(key), &self.slots) {
                let prio = self.slots[head as usize].priority;
                if f.best == NONE || prio > f.prio {
                    f.best = head;
                    f.prio = prio;
                    f.st = p.st;
                }
            }
        }
        f
    }

    /// The decision every frame from `in_port` gets, when the rule set makes it independent
    /// of everything but the in-port: `Some(Some(rule))` when one rule matches all of that
    /// port's frames and no rule that could match any of them has an equal or higher
    /// priority; `Some(None)` when no rule can match that port's frames at all (they take
    /// `normal`); `None` when the answer depends on other fields (or on how equal-priority
    /// rules are ordered), and each frame must be looked up.
    ///
    /// OVS-DPDK calls this "simple match": with port-to-port rules (service chains, the
    /// `in_port=X actions=output:Y` of an NFV switch) or no rules at all, a PMD can skip the
    /// exact-match cache and the classifier for a whole burst. Conservative: a subtable whose
    /// mask keeps any field besides the in-port is assumed to hold a rule for `in_port` (it is
    /// not searched), so such a subtable with a high enough priority makes the answer `None`.
    /// Cost: at most one probe per subtable, stopping at the first one that decides.
    pub fn port_decision(&self, in_port: crate::PortNo) -> Option<Option<RuleIdx>> {
        let mut in_port_only = FlowKey::ZERO;
        in_port_only.set_in_port(crate::PortNo(u32::MAX));
        let mut key = FlowKey::ZERO;
        key.set_in_port(in_port);
        let mut best: Option<(u32, u32)> = None;
        for p in &self.order {
            if best.is_some_and(|(_, prio)| p.max_priority < prio) {
                // Sorted by max priority: nothing later can match as well as `best`.
                break;
            }
            let st = self.subtables[p.st as usize].as_ref()?;
            let mask_words = st.mask.words();
            let only_in_port = mask_words
                .iter()
                .zip(in_port_only.words())
                .all(|(m, allowed)| m & !allowed == 0);
            if !only_in_port {
                // A rule here may match some of the port's frames at a priority at least as
                // high as `best`'s: the answer depends on the frame.
                return None;
            }
            if let Some(head) = st.find(&key, st.hash(&key), &self.slots) {
                let prio = self.slots[head as usize].priority;
                match best {
                    // Equal priorities in two subtables: the lookup's pick depends on their
                    // rank, which changes with traffic.
                    Some((_, b)) if b == prio => return None,
                    Some((_, b)) if b > prio => {}
                    _ => best = Some((head, prio)),
                }
            }
        }
        Some(best.map(|(head, _)| RuleIdx(head)))
    }

    /// Counts a lookup that found `f` (and re-ranks when due).
    #[inline]
    fn count_lookup(&mut self, f: Found) -> Option<RuleIdx> {
        self.stats.lookups += 1;
        self.stats.subtable_probes += f.probes as u64;
        self.since_rerank += 1;
        if self.since_rerank >= RERANK_INTERVAL {
            self.rerank();
        }
        if f.best == NONE {
            return None;
        }
        self.stats.matched += 1;
        self.slots[f.best as usize].hits += 1;
        if let Some(st) = self.subtables[f.st as usize].as_mut() {
            st.hits += 1;
            st.window_hits += 1;
        }
        Some(RuleIdx(f.best))
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

    /// The actions of the rule at `idx` (the per-frame accessor: [`Classifier::rule`] also
    /// rebuilds the rule's match). Empty when `idx` names no installed rule.
    #[inline]
    pub fn actions(&self, idx: RuleIdx) -> &[Action] {
        match self
            .slots
            .get(idx.0 as usize)
            .and_then(|sl| sl.actions.as_ref())
        {
            Some(a) => a,
            None => &[],
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
        let mut st = Subtable::new(mask, pos);
        if let Some(n) = self.reserved.remove(&mask) {
            st.reserve(n, &self.slots);
        }
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
mod tests;
