//! Tests of the classifier: lookup across subtables and priorities, duplicates, hit counts
//! and re-ranking, slot reuse, and batched and quiet lookups agreeing with `lookup`.

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

/// Batch and single lookups agree with each other and with a linear scan, with every
/// hash squeezed into 2 tags and 2 home buckets (false candidates everywhere).
#[test]
fn batch_equals_single_with_colliding_hashes() {
    index::NARROW.with(|n| n.set(true));
    let mut rng = 0x0123_4567_89ab_cdefu64;
    let mut next = move || {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let masks = [
        FlowKey::ZERO,
        ip_dst(0xffff_ff00),
        ip_dst(!0),
        tp_dst(0xffff),
        key(0xffff_0000, 0xffff),
    ];
    let mut c = Classifier::new();
    let mut cb = Classifier::new();
    cb.set_batch_threshold(0);
    let mut live: Vec<Rule> = Vec::new();
    let mut id = 0;
    let mut keys = Vec::new();
    let mut single = Vec::new();
    let mut batch = [None; 80];
    for _ in 0..1200 {
        let r = next();
        if r % 4 != 0 || live.is_empty() {
            id += 1;
            let m = masks[(r >> 8) as usize % masks.len()];
            let v = key((next() % 200) as u32, (next() % 3) as u16).masked(&m);
            let rl = rule(id, (next() % 4) as u32, v, m);
            c.insert(rl.clone()).unwrap();
            cb.insert(rl.clone()).unwrap();
            live.push(rl);
        } else {
            let i = (r >> 8) as usize % live.len();
            let gone = live.swap_remove(i);
            assert!(c.remove(gone.id).is_some());
            assert!(cb.remove(gone.id).is_some());
        }
        keys.clear();
        for _ in 0..next() % 80 {
            keys.push(key((next() % 220) as u32, (next() % 4) as u16));
        }
        single.clear();
        single.extend(keys.iter().map(|k| c.lookup(k)));
        cb.lookup_batch(&keys, &mut batch);
        for (k, (s, b)) in keys.iter().zip(single.iter().zip(&batch)) {
            assert_eq!(s, b);
            let want = live
                .iter()
                .filter(|r| r.matches.matches(k))
                .map(|r| r.priority)
                .max();
            assert_eq!(b.map(|i| cb.rule(i).priority), want);
            if let Some(i) = b {
                assert!(cb.rule(*i).matches().matches(k));
            }
        }
        assert_eq!(c.stats(), cb.stats());
        assert!(c.subtables().eq(cb.subtables()));
    }
    assert!(batch::REDOS.with(|r| r.get()) > 50);
    index::NARROW.with(|n| n.set(false));
}

#[test]
fn batch_of_any_length() {
    let mut c = Classifier::new();
    c.set_batch_threshold(0);
    for i in 0..50u32 {
        c.insert(rule(i as u64, i % 3, ip_dst(i), ip_dst(!0)))
            .unwrap();
    }
    c.insert(rule(99, 0, FlowKey::ZERO, FlowKey::ZERO)).unwrap();
    let keys: Vec<FlowKey> = (0..3000u32).map(|i| ip_dst(i % 60)).collect();
    let mut out = vec![Some(RuleIdx(7)); 3001];
    c.lookup_batch(&keys, &mut out);
    for (k, o) in keys.iter().zip(&out) {
        let want = if k.ip_dst() < 50 {
            k.ip_dst() as u64
        } else {
            99
        };
        assert_eq!(c.rule(o.unwrap()).id.0, want);
    }
    assert_eq!(out[3000], Some(RuleIdx(7)));
    assert_eq!(c.stats().lookups, 3000);
    c.lookup_batch(&[], &mut []);
    assert_eq!(c.stats().lookups, 3000);
    let total: u64 = c.rule_hits().map(|(_, h)| h).sum();
    assert_eq!(total, 3000);
}

/// Above and below the batch threshold, batched and one-at-a-time lookups agree.
#[test]
fn batch_threshold_paths_agree() {
    let mut a = Classifier::new();
    let mut b = Classifier::new();
    b.set_batch_threshold(usize::MAX);
    let keys: Vec<FlowKey> = (0..700u32).map(|i| key(i * 7 % 3000, 80)).collect();
    let (mut oa, mut ob) = (vec![None; 700], vec![None; 700]);
    for round in 0..2u32 {
        // Round 0: 1500 rules in 2 subtables (one at a time by default); round 1: 4500
        // rules (batched by default).
        for i in round * 1500..round * 1500 + 1500 {
            for c in [&mut a, &mut b] {
                c.insert(rule(i as u64, i % 5, ip_dst(i), ip_dst(!0)))
                    .unwrap();
                c.insert(rule(10_000 + i as u64, 9, key(i, 80), key(!0, 0xffff)))
                    .unwrap();
            }
        }
        a.lookup_batch(&keys, &mut oa);
        b.lookup_batch(&keys, &mut ob);
        assert_eq!(oa, ob);
        assert_eq!(a.stats(), b.stats());
        let hits = oa.iter().filter(|o| o.is_some()).count();
        let want = keys
            .iter()
            .filter(|k| k.ip_dst() < 1500 * (round + 1))
            .count();
        assert_eq!(hits, want);
    }
}

#[test]
#[should_panic]
fn batch_output_too_short() {
    let mut c = Classifier::new();
    c.lookup_batch(&[FlowKey::ZERO; 2], &mut [None]);
}

/// `lookup_quiet` names the rule `lookup` then picks, also among equal-priority matches
/// whose winner the re-ranking flips, and counts nothing.
#[test]
fn quiet_lookup_follows_lookup_through_ties_and_reranks() {
    let mut c = Classifier::new();
    c.insert(rule(1, 10, ip_dst(1), ip_dst(!0))).unwrap();
    c.insert(rule(2, 10, tp_dst(1), tp_dst(!0))).unwrap();
    let tie = key(1, 1);
    let first = c.lookup_quiet(&tie).map(|i| c.rule(i).id);
    let (stats, hits) = (c.stats(), c.rule_hits().collect::<Vec<_>>());
    for _ in 0..3 {
        c.lookup_quiet(&tie);
        c.lookup_quiet(&key(7, 7));
    }
    assert_eq!(c.stats(), stats, "a quiet lookup counted");
    assert!(c.rule_hits().eq(hits), "a quiet lookup credited a rule");
    assert_eq!(c.lookup(&tie).map(|i| c.rule(i).id), first);
    // Make the other subtable the hot one: the tie goes the other way.
    let other_only = if first == Some(RuleId(1)) {
        key(0, 1)
    } else {
        key(1, 0)
    };
    for _ in 0..10 {
        c.lookup(&other_only).unwrap();
    }
    c.rerank();
    let now = c.lookup_quiet(&tie).map(|i| c.rule(i).id);
    assert_ne!(now, first, "the re-ranking did not flip the tie");
    assert_eq!(c.lookup(&tie).map(|i| c.rule(i).id), now);
    assert_eq!(c.lookup_quiet(&key(7, 7)), None);
}

/// Random rules with many equal priorities and overlaps, random keys: before every
/// counting lookup (some of which re-rank), the quiet one names the same slot.
#[test]
fn quiet_lookup_equals_lookup_random() {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let masks = [
        FlowKey::ZERO,
        ip_dst(0xffff_ff00),
        ip_dst(!0),
        tp_dst(0xffff),
        key(0xffff_0000, 0xffff),
    ];
    let mut c = Classifier::new();
    let mut live = Vec::new();
    let mut compared = 0;
    for id in 0..3000u64 {
        if next() % 5 == 0 && !live.is_empty() {
            let i = next() as usize % live.len();
            c.remove(live.swap_remove(i)).unwrap();
        } else {
            let m = masks[next() as usize % masks.len()];
            let v = key((next() % 64) as u32, (next() % 3) as u16).masked(&m);
            c.insert(rule(id, (next() % 3) as u32, v, m)).unwrap();
            live.push(RuleId(id));
        }
        for _ in 0..4 {
            let k = key((next() % 70) as u32, (next() % 4) as u16);
            let quiet = c.lookup_quiet(&k);
            assert_eq!(quiet, c.lookup(&k), "rules {live:?}, key {k:?}");
            compared += 1;
        }
    }
    assert!(c.stats().lookups >= compared as u64 && c.stats().lookups > 2 * 1024);
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
