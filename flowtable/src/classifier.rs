//! Wildcard classifier. (Stub: the classifier helper fills this in.)

use std::sync::Arc;

use crate::action::Action;
use crate::key::FlowKey;
use crate::matching::Match;

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
}

/// Tuple-space-search classifier.
#[derive(Default)]
pub struct Classifier {
    rules: Vec<Rule>,
}

impl Classifier {
    /// An empty classifier.
    pub fn new() -> Classifier {
        Classifier::default()
    }
    /// Installs `rule`.
    pub fn insert(&mut self, rule: Rule) -> Result<(), ClassifierError> {
        self.rules.push(rule);
        Ok(())
    }
    /// Removes the rule with `id`.
    pub fn remove(&mut self, id: RuleId) -> Option<Rule> {
        let i = self.rules.iter().position(|r| r.id == id)?;
        Some(self.rules.remove(i))
    }
    /// The highest-priority rule matching `key`.
    pub fn lookup(&mut self, key: &FlowKey) -> Option<RuleIdx> {
        self.rules
            .iter()
            .position(|r| r.matches.matches(key))
            .map(|i| RuleIdx(i as u32))
    }
    /// The rule at `idx`.
    ///
    /// # Panics
    /// When `idx` did not come from `lookup` since the last change.
    pub fn rule(&self, idx: RuleIdx) -> &Rule {
        &self.rules[idx.0 as usize]
    }
    /// Hits per rule (stub).
    pub fn rule_hits(&self) -> impl Iterator<Item = (RuleId, u64)> + '_ {
        self.rules.iter().map(|r| (r.id, 0))
    }
    /// Stats (stub).
    pub fn stats(&self) -> ClassifierStats {
        ClassifierStats::default()
    }
    /// Subtables (stub).
    pub fn n_subtables(&self) -> usize {
        0
    }
    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }
    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Classifier counters.
#[derive(Default, Debug, Clone, Copy)]
pub struct ClassifierStats {
    /// Probes.
    pub subtable_probes: u64,
}
