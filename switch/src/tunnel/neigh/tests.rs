//! Unit tests of the neighbour cache (resolution, aging, re-probing, bounded storage and who
//! may displace whom when it is full) and of the queue of frames held for a resolution.

use super::*;

const IP: u32 = 0xc612_0002;
const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

fn pending(request: bool) -> Lookup {
    Lookup::Pending {
        request,
        evicted: false,
    }
}

/// Address `i` of 198.18.0.0/15 (skipping `IP`'s neighbourhood).
fn addr(i: u32) -> u32 {
    0xc612_0100 + i
}

fn mac(i: u32) -> MacAddr {
    let b = i.to_be_bytes();
    MacAddr([2, 0xaa, b[0], b[1], b[2], b[3]])
}

#[test]
fn miss_hold_learn_release_in_order() {
    let mut c = NeighCache::new();
    let t0 = Instant::now();
    assert_eq!(c.lookup(IP, t0), pending(true));
    assert_eq!(c.lookup(IP, t0), pending(false));
    for i in 0..3u8 {
        let mut p = Packet::new();
        p.copy_from(&[i; 20]);
        assert!(c.hold(IP, &mut p));
    }
    let mut other = Packet::new();
    other.copy_from(&[9; 20]);
    assert!(c.hold(IP + 1, &mut other));
    assert_eq!(c.learn(IP, MAC, t0), Learn::New);
    let mut got = Vec::new();
    c.release(IP, |p| got.push(p.data()[0]));
    assert_eq!(got, [0, 1, 2]);
    assert_eq!(c.held(), 1);
    assert_eq!(
        c.lookup(IP, t0),
        Lookup::Mac {
            mac: MAC,
            probe: false
        }
    );
    assert_eq!(
        c.learn(IP, MAC, t0),
        Learn::Quiet,
        "same mapping, just told"
    );
    assert_eq!(
        c.learn(IP, MAC, t0 + ANNOUNCE_EVERY),
        Learn::Refresh,
        "a confirmation is worth telling peers again after a while"
    );
    assert_eq!(c.learn(IP, MAC, t0 + ANNOUNCE_EVERY), Learn::Quiet);
    let other = MacAddr([2, 0, 0, 0, 0, 3]);
    assert_eq!(c.learn(IP, other, t0 + ANNOUNCE_EVERY), Learn::New);
}

#[test]
fn queue_is_bounded() {
    let mut c = NeighCache::new();
    let mut p = Packet::new();
    for _ in 0..MAX_HELD {
        assert!(c.hold(IP, &mut p));
    }
    assert!(!c.hold(IP, &mut p));
    assert_eq!(c.clear(), MAX_HELD as u64);
    assert!(c.hold(IP, &mut p));
}

#[test]
fn retries_then_gives_up() {
    let mut c = NeighCache::new();
    let t0 = Instant::now();
    let mut retry = Vec::with_capacity(8);
    c.lookup(IP, t0);
    let mut p = Packet::new();
    assert!(c.hold(IP, &mut p));
    assert_eq!(c.tick(t0, &mut retry), 0);
    assert!(retry.is_empty());
    let mut t = t0;
    for _ in 1..MAX_TRIES {
        t += RETRY;
        assert_eq!(c.tick(t, &mut retry), 0);
        assert_eq!(retry, [IP]);
    }
    t += RETRY;
    assert_eq!(c.tick(t, &mut retry), 1, "held frame dropped");
    assert!(!c.knows(IP));
    assert_eq!(c.held(), 0);
}

#[test]
fn reachable_is_probed_then_expires() {
    let mut c = NeighCache::new();
    let t0 = Instant::now();
    c.learn(IP, MAC, t0);
    let t = t0 + REFRESH;
    assert_eq!(
        c.lookup(IP, t),
        Lookup::Mac {
            mac: MAC,
            probe: true
        }
    );
    assert_eq!(
        c.lookup(IP, t),
        Lookup::Mac {
            mac: MAC,
            probe: false
        }
    );
    let mut retry = Vec::with_capacity(8);
    c.tick(t0 + EXPIRE, &mut retry);
    assert!(!c.knows(IP));
    assert_eq!(c.lookup(IP, t0 + EXPIRE), pending(true));
}

/// The table against a `HashMap` model, through long runs of inserts and removals that
/// keep it near full (where probe runs are longest and removals shift the most): every
/// address is found exactly when the model has it, and the storage never moves.
#[test]
fn table_agrees_with_a_map_and_never_reallocates() {
    let mut t = Table::new();
    let footprint = t.footprint();
    let mut model: std::collections::HashMap<u32, usize> = Default::default();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let t0 = Instant::now();
    for step in 0..200_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // 1024 addresses over 256 slots: many misses and collisions.
        let ip = 0xc612_0000 + (x as u32 & 1023);
        if let Some(&slot) = model.get(&ip) {
            assert_eq!(t.find(ip), Some(slot), "step {step}");
            if x & 0x300 != 0 {
                t.remove(slot);
                model.remove(&ip);
            }
        } else {
            assert_eq!(t.find(ip), None, "step {step}");
            let e = Entry {
                ip,
                state: State::Incomplete { sent: t0, tries: 1 },
                used: None,
            };
            assert_eq!(t.insert(e), model.len() < MAX_ENTRIES, "step {step}");
            if let Some(slot) = t.find(ip) {
                model.insert(ip, slot);
            }
        }
        assert_eq!(t.len(), model.len());
    }
    for (&ip, &slot) in &model {
        assert_eq!(t.find(ip), Some(slot));
        assert_eq!(t.slots[slot].map(|e| e.ip), Some(ip));
    }
    t.retain(|e| e.ip & 1 == 0);
    model.retain(|ip, _| ip & 1 == 0);
    assert_eq!(t.len(), model.len());
    for ip in 0xc612_0000..0xc612_0400 {
        assert_eq!(t.find(ip), model.get(&ip).copied(), "after retain");
    }
    t.clear();
    assert_eq!((t.len(), t.find(0xc612_0000)), (0, None));
    assert_eq!(
        t.footprint(),
        footprint,
        "the table's storage moved or grew"
    );
}

/// Unsolicited mappings fill the table and are then refused; an expired entry makes
/// room for one; the storage never grows.
#[test]
fn a_full_table_refuses_unsolicited_mappings() {
    let mut c = NeighCache::new();
    let footprint = c.footprint();
    let t0 = Instant::now();
    for i in 0..MAX_ENTRIES as u32 {
        assert_eq!(c.learn(addr(i), mac(i), t0), Learn::New);
    }
    for i in MAX_ENTRIES as u32..10_000 {
        assert_eq!(c.learn(addr(i), mac(i), t0), Learn::Refused, "{i}");
    }
    assert_eq!(c.len(), MAX_ENTRIES);
    assert!(c.knows(addr(0)) && !c.knows(addr(MAX_ENTRIES as u32)));
    // Known addresses are still confirmed (and moved) while full.
    assert_eq!(
        c.learn(addr(1), mac(1), t0 + ANNOUNCE_EVERY),
        Learn::Refresh
    );
    assert_eq!(c.learn(addr(2), mac(99), t0), Learn::New);
    // Once entries have expired, a new mapping takes the place of one.
    let later = t0 + EXPIRE;
    assert_eq!(c.learn(addr(1), mac(1), later), Learn::Refresh);
    assert_eq!(c.learn(addr(20_000), mac(7), later), Learn::New);
    assert!(c.knows(addr(1)), "a confirmed entry is not the one to go");
    assert_eq!(c.len(), MAX_ENTRIES);
    assert_eq!(c.footprint(), footprint);
}

/// A next hop in use takes the place of, in order: an expired entry, one learned
/// unsolicited and never used (oldest first), the least recently used one; never one
/// being resolved (frames are held for it). When every entry is being resolved, the
/// lookup reports `Full`.
#[test]
fn a_next_hop_in_use_evicts_in_order_never_one_being_resolved() {
    let mut c = NeighCache::new();
    let t0 = Instant::now();
    let s = Duration::from_secs(1);
    let n = MAX_ENTRIES as u32;
    // Resolving, with a frame held: addr(0).
    assert_eq!(c.lookup(addr(0), t0), pending(true));
    assert!(c.hold(addr(0), &mut Packet::new()));
    // Used: addr(1) (used at t0 + 5 s) and addr(2) (used at t0 + 4 s).
    for i in 1..3 {
        c.learn(addr(i), mac(i), t0);
    }
    c.lookup(addr(2), t0 + 4 * s);
    c.lookup(addr(1), t0 + 5 * s);
    // Never used: the rest, addr(3) confirmed last.
    for i in 4..n {
        c.learn(
            addr(i),
            mac(i),
            t0 + 2 * s + Duration::from_millis(i.into()),
        );
    }
    c.learn(addr(3), mac(3), t0 + 3 * s);
    assert_eq!(c.len(), MAX_ENTRIES);
    let evicting = |c: &mut NeighCache, ip: u32, now: Instant| {
        assert_eq!(
            c.lookup(ip, now),
            Lookup::Pending {
                request: true,
                evicted: true
            }
        );
    };
    // The never-used ones go first, oldest confirmation first: addr(4).., addr(3) last.
    let now = t0 + 10 * s;
    for i in 0..n - 4 {
        evicting(&mut c, addr(1000 + i), now);
        assert!(!c.knows(addr(4 + i)), "{i}");
    }
    evicting(&mut c, addr(2000), now);
    assert!(!c.knows(addr(3)));
    // Then the least recently used: addr(2), then addr(1).
    evicting(&mut c, addr(2001), now);
    assert!(!c.knows(addr(2)) && c.knows(addr(1)));
    evicting(&mut c, addr(2002), now);
    assert!(!c.knows(addr(1)));
    // Now every entry is being resolved: nothing can go.
    assert_eq!(c.lookup(addr(3000), now), Lookup::Full);
    assert!(c.knows(addr(0)), "the entry with a held frame stayed");
    // Its answer still releases the frame.
    assert_eq!(c.learn(addr(0), MAC, now), Learn::New);
    let mut released = 0;
    c.release(addr(0), |_| released += 1);
    assert_eq!(released, 1);
    // An expired entry goes before a used one.
    let mut c = NeighCache::new();
    for i in 0..n {
        c.learn(addr(i), mac(i), t0 + EXPIRE / 2);
        c.lookup(addr(i), t0 + EXPIRE / 2);
    }
    c.learn(addr(7), mac(7), t0);
    let now = t0 + EXPIRE + s;
    evicting(&mut c, addr(5000), now);
    assert!(!c.knows(addr(7)));
}
