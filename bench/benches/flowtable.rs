//! Micro-benchmarks of the per-packet flowtable pieces: key extraction, the EMC and the
//! classifier (tuple-space search).
//!
//! Run: `cargo bench -p bench` (about 3 minutes on 2 cores). The classifier is measured one
//! key per `lookup` call and 32 keys per `lookup_batch` call (time per key; where the default
//! threshold makes `lookup_batch` take the keys one at a time, also forced to batch). The
//! classifier benches also print, on stderr, the table build time, its memory per rule and
//! the average number of subtables probed per lookup, so that ns per probed subtable can be
//! derived.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use etherparse::PacketBuilder;
use flowtable::classifier::{
    Classifier, ClassifierStats, Rule, RuleId, BATCH_THRESHOLD, LOOKUP_BATCH,
};
use flowtable::{Action, Emc, FlowKey, Match, PortNo};

/// A small deterministic PRNG (xorshift64*), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

/// A 64-byte Ethernet + 802.1Q + IPv4 + UDP frame.
fn vlan_udp_frame() -> Vec<u8> {
    let builder = PacketBuilder::ethernet2([0x52, 0x54, 0, 0, 0, 1], [0x52, 0x54, 0, 0, 0, 2])
        .single_vlan(etherparse::VlanId::try_new(100).unwrap())
        .ipv4([10, 0, 0, 1], [10, 0, 1, 2], 64)
        .udp(12345, 4789);
    let payload = [0u8; 18]; // 14 + 4 + 20 + 8 + 18 = 64
    let mut frame = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut frame, &payload).unwrap();
    assert_eq!(frame.len(), 64);
    frame
}

fn bench_extract(c: &mut Criterion) {
    let frame = vlan_udp_frame();
    c.bench_function("extract/vlan_ipv4_udp_64B", |b| {
        b.iter(|| flowtable::key::extract(black_box(&frame), PortNo(1)))
    });
}

fn bench_emc(c: &mut Criterion) {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut emc = Emc::<u32>::new(8192);
    let keys: Vec<(FlowKey, u64)> = (0..1000)
        .map(|_| {
            let mut k = FlowKey::ZERO;
            k.set_in_port(PortNo(1));
            k.set_eth_type(0x0800);
            k.set_ip_src(rng.next() as u32);
            k.set_ip_dst(rng.next() as u32);
            k.set_ip_proto(17);
            k.set_tp_src(rng.next() as u16);
            k.set_tp_dst(4789);
            (k, k.hash())
        })
        .collect();
    for (i, (k, h)) in keys.iter().enumerate() {
        emc.insert(k, *h, i as u32);
    }
    let resident = keys
        .iter()
        .filter(|(k, h)| emc.lookup(k, *h).is_some())
        .count();
    eprintln!("emc: {resident}/1000 keys resident in 8192 entries");
    let mut i = 0usize;
    c.bench_function("emc/hit_8192_1000keys", |b| {
        b.iter(|| {
            let (k, h) = &keys[i % keys.len()];
            i += 1;
            emc.lookup(black_box(k), black_box(*h))
        })
    });
    let mut i = 0usize;
    c.bench_function("emc/hash_and_hit_8192_1000keys", |b| {
        b.iter(|| {
            let (k, _) = &keys[i % keys.len()];
            i += 1;
            let k = black_box(k);
            emc.lookup(k, k.hash())
        })
    });
    // A working set that stays in the CPU caches: 32 flows, the common case per PMD.
    let hot = &keys[..32];
    let mut i = 0usize;
    c.bench_function("emc/hash_and_hit_8192_32keys", |b| {
        b.iter(|| {
            let (k, _) = &hot[i % hot.len()];
            i += 1;
            let k = black_box(k);
            emc.lookup(k, k.hash())
        })
    });
}

/// Mask `j` of 16: in_port + eth_type exact, ip_dst /(17 + j), and for odd `j` also
/// ip_proto + tp_dst exact (2 to 4 non-zero words).
fn mask(j: usize) -> FlowKey {
    let mut m = FlowKey::ZERO;
    m.set_in_port_raw(u32::MAX);
    m.set_eth_type(0xffff);
    m.set_ip_dst(u32::MAX << (32 - (17 + j)));
    if j % 2 == 1 {
        m.set_ip_proto(0xff);
        m.set_tp_dst(0xffff);
    }
    m
}

/// `n` rules spread round-robin over `n_masks` masks, all distinct, all of one priority
/// (non-overlapping, like a megaflow cache: the first match ends the lookup, so a key probes
/// the subtables ranked before its own, about (masks + 1) / 2 on average).
fn build(n: usize, n_masks: usize) -> (Classifier, Vec<Rule>) {
    let actions: Arc<[Action]> = Arc::from(vec![Action::Output(PortNo(2))]);
    let rules: Vec<Rule> = (0..n)
        .map(|i| {
            let j = i % n_masks;
            let k = (i / n_masks) as u32;
            let m = mask(j);
            let mut v = FlowKey::ZERO;
            // In-ports 8j..8j+8 belong to mask j: rules of different masks never overlap.
            v.set_in_port_raw((j as u32) << 3 | (k & 7));
            v.set_eth_type(0x0800);
            v.set_ip_dst((k >> 3) << (32 - (17 + j)));
            v.set_ip_proto(17);
            v.set_tp_dst(80);
            Rule {
                id: RuleId(i as u64),
                priority: 100,
                matches: Match::from_parts(v, m),
                actions: actions.clone(),
            }
        })
        .collect();
    let mut c = Classifier::new();
    let t = Instant::now();
    for r in &rules {
        c.insert(r.clone()).unwrap();
    }
    let dt = t.elapsed();
    if n >= 10_000 {
        eprintln!(
            "classifier {n} rules / {n_masks} masks: built in {:.0} ms ({:.0} ns/insert), \
             {:.0} bytes/rule",
            dt.as_secs_f64() * 1e3,
            dt.as_secs_f64() * 1e9 / n as f64,
            c.memory_bytes() as f64 / n as f64
        );
    }
    (c, rules)
}

/// Keys that hit: a random rule's value with random bits where its mask is zero.
fn hitting_keys(rules: &[Rule], count: usize, rng: &mut Rng) -> Vec<FlowKey> {
    (0..count)
        .map(|_| {
            let r = &rules[rng.next() as usize % rules.len()];
            let (v, m) = (r.matches.value().words(), r.matches.mask().words());
            let mut w = [0u64; 13];
            for i in 0..13 {
                w[i] = v[i] | (rng.next() & !m[i]);
            }
            FlowKey::from_words(w)
        })
        .collect()
}

/// Prints the subtables probed per lookup since `before` (divide a lookup's time by it for
/// the time per probed subtable).
fn report(what: &str, n: usize, n_masks: usize, cls: &Classifier, before: ClassifierStats) {
    let after = cls.stats();
    let lookups = after.lookups - before.lookups;
    let probes = after.subtable_probes - before.subtable_probes;
    assert_eq!(after.matched - before.matched, lookups);
    eprintln!(
        "classifier {what} {n} rules / {n_masks} masks: {:.2} subtables probed per lookup \
         ({} subtables)",
        probes as f64 / lookups as f64,
        cls.n_subtables()
    );
}

/// `LOOKUP_BATCH` keys per `lookup_batch` call, reporting the time per key.
fn bench_batch(
    c: &mut Criterion,
    group: &str,
    n_masks: usize,
    n: usize,
    cls: &mut Classifier,
    keys: &[FlowKey],
) {
    let mut i = 0usize;
    let mut out = [None; LOOKUP_BATCH];
    c.benchmark_group(group).bench_with_input(
        BenchmarkId::new(format!("{n_masks}masks"), n),
        &n,
        |b, _| {
            b.iter_custom(|iters| {
                let batches = iters.div_ceil(LOOKUP_BATCH as u64);
                let t = Instant::now();
                for _ in 0..batches {
                    let ks = &keys[i..i + LOOKUP_BATCH];
                    i = (i + LOOKUP_BATCH) % keys.len();
                    cls.lookup_batch(black_box(ks), &mut out);
                    black_box(&out);
                }
                t.elapsed()
                    .mul_f64(iters as f64 / (batches * LOOKUP_BATCH as u64) as f64)
            })
        },
    );
}

fn bench_classifier(c: &mut Criterion) {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    for n_masks in [1usize, 4, 16] {
        for n in [1usize, 100, 10_000, 1_000_000] {
            if n < n_masks {
                continue;
            }
            let (mut cls, rules) = build(n, n_masks);
            let keys = hitting_keys(&rules, 4096, &mut rng);
            drop(rules);
            // Warm the ranking, then measure.
            for k in &keys {
                assert!(cls.lookup(k).is_some());
            }

            // One key per call.
            let before = cls.stats();
            let mut i = 0usize;
            c.benchmark_group("classifier_lookup").bench_with_input(
                BenchmarkId::new(format!("{n_masks}masks"), n),
                &n,
                |b, _| {
                    b.iter(|| {
                        let k = &keys[i & 4095];
                        i += 1;
                        cls.lookup(black_box(k))
                    })
                },
            );
            report("single", n, n_masks, &cls, before);

            // LOOKUP_BATCH keys per call; the time reported is per key. With the default
            // threshold (what the switch gets), then forced to walk the keys together where
            // the default looks them up one at a time.
            let batched = n >= BATCH_THRESHOLD * n_masks;
            let modes: &[(&str, usize)] = if batched {
                &[("classifier_lookup_batch32_per_key", BATCH_THRESHOLD)]
            } else {
                &[
                    ("classifier_lookup_batch32_per_key", BATCH_THRESHOLD),
                    ("classifier_lookup_batch32_forced_per_key", 0),
                ]
            };
            for &(group, threshold) in modes {
                cls.set_batch_threshold(threshold);
                let before = cls.stats();
                bench_batch(c, group, n_masks, n, &mut cls, &keys);
                let path = if threshold == 0 || batched {
                    "batched"
                } else {
                    "one at a time"
                };
                report(&format!("batch ({path})"), n, n_masks, &cls, before);
            }
        }
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_extract, bench_emc, bench_classifier
}
criterion_main!(benches);
