//! Model tests: the classifier against a linear scan, the EMC against a `HashMap`, the MAC
//! table against a simple re-statement of its rules.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowtable::classifier::{Classifier, ClassifierError, Rule, RuleId, RuleIdx};
use flowtable::emc::Emc;
use flowtable::fdb::{L2Domain, Learned, MacTable};
use flowtable::{Action, FlowKey, MacAddr, Match, PortNo, VlanId};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Classifier

/// Mask shapes (a small set, so subtables are shared and rules overlap).
const SHAPES: usize = 10;

fn shape_mask(shape: usize) -> FlowKey {
    let mut m = FlowKey::ZERO;
    match shape {
        0 => {} // catch-all
        1 => m.set_ip_dst(0xff00_0000),
        2 => m.set_ip_dst(0xffff_ff00),
        3 => m.set_ip_dst(0xffff_ffff),
        4 => m.set_ip_src(0xffff_0000),
        5 => {
            m.set_eth_type(0xffff);
            m.set_ip_proto(0xff);
            m.set_tp_dst(0xffff);
        }
        6 => m.set_in_port_raw(u32::MAX),
        7 => m.set_eth_type(0xffff),
        8 => {
            m.set_in_port_raw(u32::MAX);
            m.set_ip_dst(0xffff_ff00);
        }
        _ => {
            m.set_ip_src(0xffff_ff00);
            m.set_ip_dst(0xffff_0000);
            m.set_tp_dst(0xffff);
        }
    }
    m
}

/// A key from small field domains, so that rules and keys collide often.
fn arb_key() -> impl Strategy<Value = FlowKey> {
    (
        0u32..4,
        0usize..3,
        0u32..64,
        0u32..64,
        0usize..4,
        0u8..2,
        any::<u64>(),
    )
        .prop_map(|(port, et, src, dst, tp, proto, noise)| {
            let mut k = FlowKey::ZERO;
            k.set_in_port_raw(port);
            k.set_eth_type([0x0800, 0x0806, 0x86dd][et]);
            k.set_ip_src(0x0a00_0000 | (src & 3) << 8 | src >> 2);
            k.set_ip_dst(
                (if dst & 32 != 0 {
                    0x0b00_0000
                } else {
                    0x0a00_0000
                }) | (dst & 3) << 8
                    | (dst >> 2) & 7,
            );
            k.set_tp_dst([22, 80, 443, 8080][tp]);
            k.set_ip_proto([6, 17][proto as usize]);
            // Bits no shape looks at.
            k.set_tp_src(noise as u16);
            k.set_ip_ttl((noise >> 16) as u8);
            k
        })
}

#[derive(Clone, Debug)]
enum Op {
    Insert {
        shape: usize,
        value: FlowKey,
        prio: u32,
    },
    /// Remove the n-th live rule (mod len), or an unknown id when empty.
    Remove(usize),
    /// Re-insert a live rule's id (must be refused).
    Duplicate(usize),
    /// Look up a key derived from the n-th live rule (its value, random bits elsewhere).
    LookupNear(usize, FlowKey),
    /// Look up an arbitrary key.
    Lookup(FlowKey),
    /// Many lookups (crosses the automatic re-rank interval); the batch classifier takes
    /// them in pieces of the given sizes (cycled).
    Burst(Vec<FlowKey>, Vec<usize>),
    /// One batch: keys near the n-th live rule (`Some`) or arbitrary ones.
    Batch(Vec<(Option<usize>, FlowKey)>),
    Rerank,
}

fn arb_op(prio_max: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..SHAPES, arb_key(), 0..prio_max)
            .prop_map(|(shape, value, prio)| Op::Insert { shape, value, prio }),
        3 => any::<usize>().prop_map(Op::Remove),
        1 => any::<usize>().prop_map(Op::Duplicate),
        6 => (any::<usize>(), arb_key()).prop_map(|(i, k)| Op::LookupNear(i, k)),
        2 => arb_key().prop_map(Op::Lookup),
        1 => (
            prop::collection::vec(arb_key(), 1100..1200),
            prop::collection::vec(1usize..100, 1..4),
        )
            .prop_map(|(keys, cuts)| Op::Burst(keys, cuts)),
        4 => prop::collection::vec((prop::option::of(any::<usize>()), arb_key()), 0..70)
            .prop_map(Op::Batch),
        1 => Just(Op::Rerank),
    ]
}

/// Checks `got` (what `c` found for `key`) against a linear scan of `live`.
fn check_found(c: &Classifier, live: &[Rule], key: &FlowKey, got: Option<RuleIdx>, distinct: bool) {
    let best = live
        .iter()
        .filter(|r| r.matches.matches(key))
        .max_by_key(|r| r.priority);
    match (best, got) {
        (None, None) => {}
        (None, Some(i)) => panic!("no rule matches {key:?} but got {:?}", c.rule(i).id),
        (Some(b), None) => panic!("rule {:?} matches {key:?} but lookup found none", b.id),
        (Some(b), Some(i)) => {
            let r = c.rule(i);
            assert!(
                r.matches().matches(key),
                "returned rule {:?} does not match",
                r.id
            );
            assert_eq!(
                r.priority, b.priority,
                "rule {:?} vs oracle {:?}",
                r.id, b.id
            );
            if distinct {
                assert_eq!(r.id, b.id);
            }
            let orig = live
                .iter()
                .find(|x| x.id == r.id)
                .expect("returned rule is live");
            assert_eq!(r.matches(), orig.matches);
            assert!(Arc::ptr_eq(r.actions, &orig.actions));
        }
    }
}

/// A key derived from the `i`-th live rule: its value, `noise` where its mask is zero.
fn near_key(live: &[Rule], i: usize, noise: FlowKey) -> FlowKey {
    match live.get(i % live.len().max(1)) {
        Some(r) => {
            let (v, m) = (r.matches.value().words(), r.matches.mask().words());
            let mut w = [0u64; 13];
            for j in 0..13 {
                w[j] = v[j] | (noise.words()[j] & !m[j]);
            }
            FlowKey::from_words(w)
        }
        None => noise,
    }
}

/// Looks `keys` up one at a time in `c` and as batches (pieces of `cuts` sizes, cycled) in
/// `cb`; both must agree exactly, and with the linear scan.
fn check_keys(
    c: &mut Classifier,
    cb: &mut Classifier,
    live: &[Rule],
    keys: &[FlowKey],
    cuts: &[usize],
    distinct: bool,
) {
    let single: Vec<Option<RuleIdx>> = keys.iter().map(|k| c.lookup(k)).collect();
    let mut batch = vec![None; keys.len()];
    let mut done = 0;
    for &cut in cuts.iter().cycle() {
        if done >= keys.len() {
            break;
        }
        let end = (done + cut.max(1)).min(keys.len());
        cb.lookup_batch(&keys[done..end], &mut batch[done..end]);
        done = end;
    }
    if keys.is_empty() {
        cb.lookup_batch(&[], &mut []);
    }
    for ((key, s), b) in keys.iter().zip(&single).zip(&batch) {
        assert_eq!(s, b, "single and batch lookups of {key:?} differ");
        check_found(cb, live, key, *b, distinct);
    }
}

/// `c` and `cb` saw the same changes and the same lookups: everything observable agrees.
fn assert_same(c: &Classifier, cb: &Classifier) {
    assert_eq!(c.stats(), cb.stats());
    let mut a: Vec<_> = c.rule_hits().collect();
    let mut b: Vec<_> = cb.rule_hits().collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    let a: Vec<_> = c.subtables().collect();
    let b: Vec<_> = cb.subtables().collect();
    assert_eq!(a, b);
}

fn run_classifier(ops: Vec<Op>, distinct: bool) {
    let mut c = Classifier::new();
    // Fed the same changes, but looked up only through `lookup_batch` (always batched).
    let mut cb = Classifier::new();
    cb.set_batch_threshold(0);
    let mut live: Vec<Rule> = Vec::new();
    let mut next_id = 0u64;
    let mut lookups = 0u64;
    for op in ops {
        match op {
            Op::Insert { shape, value, prio } => {
                next_id += 1;
                // Distinct variant: the sequence number makes every priority unique.
                let priority = if distinct {
                    prio << 12 | next_id as u32
                } else {
                    prio
                };
                let rule = Rule {
                    id: RuleId(next_id),
                    priority,
                    matches: Match::from_parts(value, shape_mask(shape)),
                    actions: Arc::from(vec![Action::Output(PortNo(next_id as u32))]),
                };
                c.insert(rule.clone()).unwrap();
                cb.insert(rule.clone()).unwrap();
                live.push(rule);
            }
            Op::Remove(i) => {
                if live.is_empty() {
                    assert!(c.remove(RuleId(u64::MAX)).is_none());
                    assert!(cb.remove(RuleId(u64::MAX)).is_none());
                    continue;
                }
                let want = live.swap_remove(i % live.len());
                let got = c.remove(want.id).expect("live rule removable");
                assert_eq!(
                    (got.id, got.priority, got.matches),
                    (want.id, want.priority, want.matches)
                );
                assert!(Arc::ptr_eq(&got.actions, &want.actions));
                assert!(c.remove(want.id).is_none());
                let got = cb.remove(want.id).expect("live rule removable");
                assert_eq!(got.matches, want.matches);
            }
            Op::Duplicate(i) => {
                if let Some(r) = live.get(i % live.len().max(1)) {
                    let mut dup = r.clone();
                    dup.priority += 1;
                    assert_eq!(
                        c.insert(dup.clone()),
                        Err(ClassifierError::DuplicateId(r.id))
                    );
                    assert_eq!(cb.insert(dup), Err(ClassifierError::DuplicateId(r.id)));
                }
            }
            Op::LookupNear(i, noise) => {
                let key = near_key(&live, i, noise);
                check_keys(&mut c, &mut cb, &live, &[key], &[1], distinct);
                lookups += 1;
            }
            Op::Lookup(key) => {
                check_keys(&mut c, &mut cb, &live, &[key], &[1], distinct);
                lookups += 1;
            }
            Op::Burst(keys, cuts) => {
                check_keys(&mut c, &mut cb, &live, &keys, &cuts, distinct);
                lookups += keys.len() as u64;
            }
            Op::Batch(spec) => {
                let keys: Vec<FlowKey> = spec
                    .iter()
                    .map(|&(i, noise)| match i {
                        Some(i) => near_key(&live, i, noise),
                        None => noise,
                    })
                    .collect();
                let n = keys.len();
                check_keys(&mut c, &mut cb, &live, &keys, &[n], distinct);
                lookups += n as u64;
            }
            Op::Rerank => {
                c.rerank();
                cb.rerank();
            }
        }
        assert_eq!(c.len(), live.len());
        assert_eq!(cb.len(), live.len());
        assert_same(&c, &cb);
        assert_eq!(c.rule_hits().count(), live.len());
        assert_eq!(c.subtables().map(|s| s.rules).sum::<usize>(), live.len());
        assert_eq!(c.n_subtables(), c.subtables().count());
        // Probe order: max priority never increases.
        let maxes: Vec<u32> = c.subtables().map(|s| s.max_priority).collect();
        assert!(maxes.windows(2).all(|w| w[0] >= w[1]), "{maxes:?}");
        for s in c.subtables() {
            let want = live
                .iter()
                .filter(|r| *r.matches.mask() == s.mask)
                .map(|r| r.priority)
                .max();
            assert_eq!(Some(s.max_priority), want);
        }
    }
    assert_eq!(c.stats().lookups, lookups);
    assert!(c.stats().subtable_probes <= lookups * c.n_subtables().max(SHAPES) as u64);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn classifier_matches_linear_scan(ops in prop::collection::vec(arb_op(8), 1..250)) {
        run_classifier(ops, false);
    }

    #[test]
    fn classifier_distinct_priorities_exact_rule(ops in prop::collection::vec(arb_op(1 << 16), 1..250)) {
        run_classifier(ops, true);
    }
}

/// Rule sets for the port-decision check: mostly in-port-only and catch-all rules (which
/// decide a port), some with other fields (which make it depend on the frame).
fn arb_port_rules() -> impl Strategy<Value = Vec<(usize, FlowKey, u32)>> {
    let shape = prop_oneof![4 => Just(6usize), 2 => Just(0usize), 1 => 0..SHAPES];
    prop::collection::vec((shape, arb_key(), 0u32..6), 0..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// When `port_decision` says a port's frames are decided, every lookup of a frame from
    /// that port finds exactly that rule (or none); with only in-port and catch-all rules of
    /// distinct priorities it always decides.
    #[test]
    fn port_decision_agrees_with_every_lookup(
        rules in arb_port_rules(),
        keys in prop::collection::vec(arb_key(), 64),
    ) {
        let mut c = Classifier::new();
        let mut simple_distinct = true;
        let mut prios = std::collections::HashSet::new();
        for (i, (shape, value, prio)) in rules.iter().enumerate() {
            simple_distinct &= matches!(shape, 0 | 6) && prios.insert(*prio);
            c.insert(Rule {
                id: RuleId(i as u64),
                priority: *prio,
                matches: Match::from_parts(*value, shape_mask(*shape)),
                actions: Arc::from(vec![Action::Output(PortNo(i as u32))]),
            })
            .unwrap();
        }
        for port in 0..4u32 {
            let decided = c.port_decision(PortNo(port));
            if simple_distinct {
                prop_assert!(decided.is_some(), "in-port and catch-all rules decide port {port}");
            }
            let Some(d) = decided else { continue };
            for k in &keys {
                let mut k = *k;
                k.set_in_port_raw(port);
                prop_assert_eq!(c.lookup_quiet(&k), d, "port {} key {:?}", port, k);
            }
        }
    }
}

#[test]
fn port_decision_cases() {
    let rule = |id: u64, prio: u32, shape: usize, port: u32| {
        let mut v = FlowKey::ZERO;
        v.set_in_port_raw(port);
        v.set_ip_dst(0x0a00_0001);
        Rule {
            id: RuleId(id),
            priority: prio,
            matches: Match::from_parts(v, shape_mask(shape)),
            actions: Arc::from(vec![]),
        }
    };
    let mut c = Classifier::new();
    assert_eq!(c.port_decision(PortNo(1)), Some(None), "no rules: normal");
    c.insert(rule(1, 100, 6, 1)).unwrap();
    c.insert(rule(2, 100, 6, 2)).unwrap();
    let r1 = c.get(RuleId(1));
    assert_eq!(c.port_decision(PortNo(1)), Some(r1));
    assert_eq!(
        c.port_decision(PortNo(3)),
        Some(None),
        "no rule names port 3"
    );
    // A more specific rule below the port rule changes nothing.
    c.insert(rule(3, 50, 8, 1)).unwrap();
    assert_eq!(c.port_decision(PortNo(1)), Some(r1));
    // One above it (even for another port: conservative) makes frames decide.
    c.insert(rule(4, 200, 8, 2)).unwrap();
    assert_eq!(c.port_decision(PortNo(1)), None);
    c.remove(RuleId(4));
    assert_eq!(c.port_decision(PortNo(1)), Some(r1));
    // A catch-all of equal priority: which one wins depends on the probe order.
    c.insert(rule(5, 100, 0, 0)).unwrap();
    assert_eq!(c.port_decision(PortNo(1)), None);
    assert_eq!(
        c.port_decision(PortNo(3)),
        Some(c.get(RuleId(5))),
        "only the catch-all"
    );
}

#[test]
fn classifier_hits_add_up() {
    let mut c = Classifier::new();
    for i in 0..64u32 {
        let mut v = FlowKey::ZERO;
        v.set_ip_dst(i);
        c.insert(Rule {
            id: RuleId(i as u64),
            priority: i % 4,
            matches: Match::from_parts(v, shape_mask(3)),
            actions: Arc::from(vec![]),
        })
        .unwrap();
    }
    for n in 0..5000u32 {
        let mut k = FlowKey::ZERO;
        k.set_ip_dst(n % 100);
        c.lookup(&k);
    }
    let s = c.stats();
    assert_eq!(s.lookups, 5000);
    assert_eq!(s.matched, 64 * 50);
    assert_eq!(c.rule_hits().map(|(_, h)| h).sum::<u64>(), s.matched);
    assert_eq!(c.subtables().map(|t| t.hits).sum::<u64>(), s.matched);
    assert_eq!(s.subtable_probes, 5000);
}

#[test]
fn classifier_batch_hits_add_up() {
    let mut c = Classifier::new();
    c.set_batch_threshold(0);
    for i in 0..64u32 {
        let mut v = FlowKey::ZERO;
        v.set_ip_dst(i);
        c.insert(Rule {
            id: RuleId(i as u64),
            priority: i % 4,
            matches: Match::from_parts(v, shape_mask(3)),
            actions: Arc::from(vec![]),
        })
        .unwrap();
    }
    let keys: Vec<FlowKey> = (0..5000u32)
        .map(|n| {
            let mut k = FlowKey::ZERO;
            k.set_ip_dst(n % 100);
            k
        })
        .collect();
    let mut out = [None; 37];
    for chunk in keys.chunks(37) {
        c.lookup_batch(chunk, &mut out);
        for (k, o) in chunk.iter().zip(&out) {
            assert_eq!(o.is_some(), k.ip_dst() < 64);
        }
    }
    let s = c.stats();
    assert_eq!(s.lookups, 5000);
    assert_eq!(s.matched, 64 * 50);
    assert_eq!(c.rule_hits().map(|(_, h)| h).sum::<u64>(), s.matched);
    assert_eq!(c.subtables().map(|t| t.hits).sum::<u64>(), s.matched);
    assert_eq!(s.subtable_probes, 5000);
}

// ---------------------------------------------------------------------------------------------
// EMC

#[derive(Clone, Debug)]
enum EmcOp {
    Insert(u8, u32),
    Lookup(u8),
    Invalidate,
}

fn emc_key(i: u8) -> FlowKey {
    let mut k = FlowKey::ZERO;
    k.set_ip_dst(0x0a00_0000 | i as u32);
    k.set_tp_dst(80);
    k
}

fn arb_emc_op() -> impl Strategy<Value = EmcOp> {
    prop_oneof![
        4 => (0u8..48, any::<u32>()).prop_map(|(k, v)| EmcOp::Insert(k, v)),
        6 => (0u8..48).prop_map(EmcOp::Lookup),
        1 => Just(EmcOp::Invalidate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn emc_agrees_with_hashmap(
        ops in prop::collection::vec(arb_emc_op(), 1..400),
        entries in 1usize..40,
        narrow_hash in any::<bool>(),
    ) {
        let mut emc = Emc::<u32>::new(entries);
        let mut oracle: HashMap<u8, u32> = HashMap::new();
        // With a narrow hash every key falls into one of a few sets: heavy eviction.
        let hash = |k: &FlowKey| if narrow_hash { k.hash() & 3 } else { k.hash() };
        let mut hits = 0u64;
        for op in ops {
            match op {
                EmcOp::Insert(i, v) => {
                    let k = emc_key(i);
                    emc.insert(&k, hash(&k), v);
                    oracle.insert(i, v);
                    // A just-inserted entry is always there.
                    prop_assert_eq!(emc.lookup(&k, hash(&k)), Some(v));
                    hits += 1;
                }
                EmcOp::Lookup(i) => {
                    let k = emc_key(i);
                    if let Some(v) = emc.lookup(&k, hash(&k)) {
                        prop_assert_eq!(Some(&v), oracle.get(&i));
                        hits += 1;
                    }
                }
                EmcOp::Invalidate => {
                    emc.invalidate();
                    oracle.clear();
                    prop_assert_eq!(emc.occupancy(), 0);
                }
            }
            prop_assert!(emc.occupancy() <= emc.capacity());
            prop_assert!(emc.occupancy() <= oracle.len());
        }
        prop_assert_eq!(emc.stats().hits, hits);
    }
}

#[test]
fn emc_holds_working_set_that_fits() {
    let mut emc = Emc::<u32>::new(8192);
    let keys: Vec<FlowKey> = (0..1000u32)
        .map(|i| {
            let mut k = FlowKey::ZERO;
            k.set_ip_src(i);
            k
        })
        .collect();
    for (i, k) in keys.iter().enumerate() {
        emc.insert(k, k.hash(), i as u32);
    }
    let found = keys
        .iter()
        .enumerate()
        .filter(|(i, k)| emc.lookup(k, k.hash()) == Some(*i as u32))
        .count();
    // 1000 keys in 4096 two-way sets: a key is lost only where 3+ keys share a set, which a
    // uniform hash makes about 8 times.
    assert!(found >= 980, "{found}");
}

// ---------------------------------------------------------------------------------------------
// MAC table

#[derive(Clone, Debug)]
enum MacOp {
    /// Advance time by this many seconds, then learn.
    Learn {
        dt: u64,
        dom: u16,
        mac: u8,
        port: u32,
    },
    Remote {
        dt: u64,
        dom: u16,
        mac: u8,
        port: u32,
    },
    Lookup {
        dom: u16,
        mac: u8,
    },
    Age {
        dt: u64,
    },
}

fn arb_mac_op() -> impl Strategy<Value = MacOp> {
    prop_oneof![
        5 => (0u64..40, 0u16..3, 0u8..12, 1u32..4)
            .prop_map(|(dt, dom, mac, port)| MacOp::Learn { dt, dom, mac, port }),
        2 => (0u64..40, 0u16..3, 0u8..12, 1u32..4)
            .prop_map(|(dt, dom, mac, port)| MacOp::Remote { dt, dom, mac, port }),
        4 => (0u16..3, 0u8..12).prop_map(|(dom, mac)| MacOp::Lookup { dom, mac }),
        1 => (0u64..200).prop_map(|dt| MacOp::Age { dt }),
    ]
}

fn dom(d: u16) -> L2Domain {
    match d {
        0 => L2Domain::untagged(),
        d => L2Domain::vlan(VlanId::new(d).unwrap()),
    }
}

fn mac(i: u8) -> MacAddr {
    // Every fourth one is multicast (never learned).
    MacAddr([if i % 4 == 3 { 0x01 } else { 0x52 }, 0x54, 0, 0, 0, i])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mac_table_model(ops in prop::collection::vec(arb_mac_op(), 1..300)) {
        const AGING: u64 = 100;
        let t0 = Instant::now();
        let mut t = MacTable::new(1000, Duration::from_secs(AGING));
        // (dom, mac) -> (port, seen, announced), in seconds since t0.
        let mut model: HashMap<(u16, u8), (u32, u64, u64)> = HashMap::new();
        let mut now = 0u64;
        let at = |s: u64| t0 + Duration::from_secs(s);
        for op in ops {
            match op {
                MacOp::Learn { dt, dom: d, mac: m, port } => {
                    now += dt;
                    let got = t.learn(dom(d), mac(m), PortNo(port), at(now));
                    let want = if mac(m).is_multicast() {
                        Learned::Quiet
                    } else {
                        match model.get_mut(&(d, m)) {
                            Some(e) if now - e.1 <= AGING => {
                                e.1 = now;
                                if e.0 != port {
                                    let from = PortNo(e.0);
                                    *e = (port, now, now);
                                    Learned::Moved { from }
                                } else if now - e.2 > AGING / 4 {
                                    e.2 = now;
                                    Learned::Refresh
                                } else {
                                    Learned::Quiet
                                }
                            }
                            _ => {
                                model.insert((d, m), (port, now, now));
                                Learned::New
                            }
                        }
                    };
                    prop_assert_eq!(got, want);
                }
                MacOp::Remote { dt, dom: d, mac: m, port } => {
                    now += dt;
                    let stored = t.insert_remote(dom(d), mac(m), PortNo(port), at(now));
                    prop_assert_eq!(stored, !mac(m).is_multicast());
                    if stored {
                        model.insert((d, m), (port, now, now));
                    }
                }
                MacOp::Lookup { dom: d, mac: m } => {
                    let want = model
                        .get(&(d, m))
                        .filter(|e| now - e.1 <= AGING)
                        .map(|e| PortNo(e.0));
                    prop_assert_eq!(t.lookup(dom(d), mac(m), at(now)), want);
                }
                MacOp::Age { dt } => {
                    now += dt;
                    let before = model.len();
                    model.retain(|_, e| now - e.1 <= AGING);
                    prop_assert_eq!(t.age(at(now)), before - model.len());
                }
            }
            prop_assert_eq!(t.len(), model.len());
            let live = model.values().filter(|e| now - e.1 <= AGING).count();
            prop_assert_eq!(t.iter(at(now)).count(), live);
        }
    }

    #[test]
    fn mac_table_never_exceeds_max(macs in prop::collection::vec((0u8..200, 0u64..30), 1..400)) {
        let t0 = Instant::now();
        let mut t = MacTable::new(16, Duration::from_secs(60));
        let mut now = 0;
        for (m, dt) in macs {
            now += dt;
            let a = MacAddr([0x52, 0, 0, 0, 0, m & 0xfe]);
            let r = t.learn(L2Domain::untagged(), a, PortNo(1), t0 + Duration::from_secs(now));
            prop_assert!(t.len() <= 16);
            if r == Learned::Full {
                // Full means every stored entry is live.
                prop_assert_eq!(t.iter(t0 + Duration::from_secs(now)).count(), 16);
            }
        }
    }
}
