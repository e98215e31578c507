//! Decide each frame of a burst: exact-match cache first, the classifier on a miss.

use flowtable::{Classifier, Emc, FlowKey, RuleIdx};

use crate::stats::PmdStats;

/// A frame's decision: the rule it matched, or `None` for the default `normal`.
pub(crate) type Decision = Option<RuleIdx>;

/// Looks up `keys`, writing one decision per key. Misses go to the classifier and their
/// result is cached, so the next frame of the flow hits the EMC.
pub(crate) fn decide(
    keys: &[FlowKey],
    out: &mut [Decision],
    emc: &mut Emc<Decision>,
    classifier: &mut Classifier,
    stats: &mut PmdStats,
) {
    for (key, d) in keys.iter().zip(out.iter_mut()) {
        let hash = key.hash();
        if let Some(hit) = emc.lookup(key, hash) {
            stats.emc_hits += 1;
            if let Some(idx) = hit {
                // Rule hit counters live in the classifier; a cached decision still counts.
                classifier.count_hits(idx, 1);
            }
            *d = hit;
            continue;
        }
        stats.emc_misses += 1;
        let found = classifier.lookup(key);
        if found.is_some() {
            stats.classifier_hits += 1;
        } else {
            stats.classifier_misses += 1;
        }
        emc.insert(key, hash, found);
        *d = found;
    }
}
