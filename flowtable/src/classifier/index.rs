//! A subtable's hash index: open addressing over cache-line buckets.
//!
//! Each [`Bucket`] is one 64-byte, 64-byte-aligned cache line holding [`SLOTS`] `u32` values
//! (rule slot numbers), a 16-bit tag per value (bits 48..64 of the hash; 0 marks a free
//! place) and an overflow count. A hash picks its home bucket from its low 32 bits (a
//! multiply-shift range reduction, so the bucket count need not be a power of two); a value
//! lives in the first bucket from its home on (wrapping) with a free place. A bucket's
//! overflow count is the number of values whose home lies before it but that were placed
//! past it (F14's scheme): a search stops at the first bucket with no overflow, and removal
//! decrements the counts along the value's path, so there are no tombstones and no shifting.
//!
//! A probe therefore reads one cache line in the common case, and the caller can compute a
//! home bucket, touch it, and scan it later: that is what lets a batch of lookups overlap
//! their cache misses (see `batch`).
//!
//! The index grows (amortized, by 1.75x) when its load would exceed 7/8, re-placing every
//! value with the hash the caller recomputes for it; it never shrinks.

use std::hint::black_box;

/// Values per bucket.
pub(super) const SLOTS: usize = 10;

/// "No value".
pub(super) const NONE: u32 = u32::MAX;

/// One cache line of the index.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(super) struct Bucket {
    /// Tags of the values (0: free place).
    tags: [u16; SLOTS],
    /// Values that hashed to this bucket or before it but were placed past it.
    overflow: u32,
    vals: [u32; SLOTS],
}

const EMPTY: Bucket = Bucket {
    tags: [0; SLOTS],
    overflow: 0,
    vals: [0; SLOTS],
};

const _: () = assert!(std::mem::size_of::<Bucket>() == 64);

impl Bucket {
    /// Bit `i` set when place `i` holds `tag`.
    #[inline(always)]
    fn matching(&self, tag: u16) -> u32 {
        let mut m = 0u32;
        for (i, &t) in self.tags.iter().enumerate() {
            m |= ((t == tag) as u32) << i;
        }
        m
    }

    #[inline]
    fn free_place(&self) -> Option<usize> {
        self.tags.iter().position(|&t| t == 0)
    }
}

#[cfg(test)]
thread_local! {
    /// Tests: squeeze every hash into 2 tags and 2 home buckets (collisions everywhere).
    pub(super) static NARROW: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
#[inline]
fn narrow() -> bool {
    NARROW.with(|n| n.get())
}

#[cfg(not(test))]
#[inline(always)]
fn narrow() -> bool {
    false
}

/// The tag of hash `h` (never 0).
#[inline(always)]
pub(super) fn tag(h: u64) -> u16 {
    if narrow() {
        return 1 + (h >> 63) as u16;
    }
    ((h >> 48) as u16).max(1)
}

pub(super) struct Index {
    buckets: Vec<Bucket>,
    len: usize,
}

impl Index {
    pub(super) fn new() -> Index {
        Index {
            buckets: vec![EMPTY],
            len: 0,
        }
    }

    /// The home bucket of hash `h`.
    #[inline(always)]
    pub(super) fn home(&self, h: u64) -> usize {
        if narrow() {
            return (h & 1) as usize * (self.buckets.len() / 2);
        }
        ((h as u32 as u64 * self.buckets.len() as u64) >> 32) as usize
    }

    #[inline(always)]
    fn next(&self, b: usize) -> usize {
        if b + 1 == self.buckets.len() {
            0
        } else {
            b + 1
        }
    }

    /// Loads bucket `b` (so that its cache line is on its way when it is scanned).
    #[inline(always)]
    pub(super) fn touch(&self, b: usize) {
        black_box(self.buckets[b].overflow);
    }

    /// The first value whose tag matches hash `h`'s, searching from `h`'s home bucket `b`;
    /// [`NONE`] when there is none (then no value was inserted with hash `h`).
    #[inline]
    pub(super) fn first_candidate(&self, mut b: usize, h: u64) -> u32 {
        let t = tag(h);
        for _ in 0..self.buckets.len() {
            let bk = &self.buckets[b];
            let m = bk.matching(t);
            if m != 0 {
                return bk.vals[m.trailing_zeros() as usize];
            }
            if bk.overflow == 0 {
                break;
            }
            b = self.next(b);
        }
        NONE
    }

    /// The value inserted with hash `h` for which `eq` holds.
    #[inline]
    pub(super) fn find(&self, h: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        self.locate(h, &mut eq)
            .map(|(b, i)| self.buckets[b].vals[i])
    }

    /// Where (bucket, place) the value inserted with hash `h` for which `eq` holds is.
    #[inline]
    fn locate(&self, h: u64, eq: &mut impl FnMut(u32) -> bool) -> Option<(usize, usize)> {
        let t = tag(h);
        let mut b = self.home(h);
        for _ in 0..self.buckets.len() {
            let bk = &self.buckets[b];
            let mut m = bk.matching(t);
            while m != 0 {
                let i = m.trailing_zeros() as usize;
                if eq(bk.vals[i]) {
                    return Some((b, i));
                }
                m &= m - 1;
            }
            if bk.overflow == 0 {
                break;
            }
            b = self.next(b);
        }
        None
    }

    /// Adds `val` with hash `h` (not already present). Growing re-places every value with
    /// the hash `rehash` gives for it.
    pub(super) fn insert(&mut self, h: u64, val: u32, rehash: impl Fn(u32) -> u64) {
        if (self.len + 1) * 8 > self.buckets.len() * SLOTS * 7 {
            self.grow(rehash);
        }
        self.place(h, val);
        self.len += 1;
    }

    fn place(&mut self, h: u64, val: u32) {
        let t = tag(h);
        let mut b = self.home(h);
        loop {
            let bk = &mut self.buckets[b];
            if let Some(i) = bk.free_place() {
                bk.tags[i] = t;
                bk.vals[i] = val;
                return;
            }
            bk.overflow += 1;
            b = self.next(b);
        }
    }

    /// Grows now, if needed, so that `additional` more values fit without growing.
    pub(super) fn reserve(&mut self, additional: usize, rehash: impl Fn(u32) -> u64) {
        let len = self.len + additional;
        if len * 8 > self.buckets.len() * SLOTS * 7 {
            // At most 7/8 full once they are all in.
            self.resize((len * 8).div_ceil(SLOTS * 7), rehash);
        }
    }

    fn grow(&mut self, rehash: impl Fn(u32) -> u64) {
        let want = ((self.len + 1) * 2).div_ceil(SLOTS);
        self.resize(want.max(self.buckets.len() + 1), rehash);
    }

    /// Re-places every value into `nb` buckets.
    fn resize(&mut self, nb: usize, rehash: impl Fn(u32) -> u64) {
        let old = std::mem::replace(&mut self.buckets, vec![EMPTY; nb]);
        for bk in &old {
            for (&t, &v) in bk.tags.iter().zip(&bk.vals) {
                if t != 0 {
                    self.place(rehash(v), v);
                }
            }
        }
    }

    /// Removes `val`, inserted with hash `h`. False when it is not there.
    pub(super) fn remove(&mut self, h: u64, val: u32) -> bool {
        let Some((b, i)) = self.locate(h, &mut |v| v == val) else {
            return false;
        };
        self.buckets[b].tags[i] = 0;
        self.buckets[b].vals[i] = 0;
        let mut p = self.home(h);
        while p != b {
            self.buckets[p].overflow -= 1;
            p = self.next(p);
        }
        self.len -= 1;
        true
    }

    /// Replaces `old`, inserted with hash `h`, by `new`. False when `old` is not there.
    pub(super) fn replace(&mut self, h: u64, old: u32, new: u32) -> bool {
        match self.locate(h, &mut |v| v == old) {
            Some((b, i)) => {
                self.buckets[b].vals[i] = new;
                true
            }
            None => false,
        }
    }

    /// Heap bytes.
    pub(super) fn memory_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
    }

    /// Number of values.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::collections::hash_map::Entry;
    use std::collections::HashMap;

    fn mix(x: u64) -> u64 {
        let m = (x ^ 0x9e37_79b9_7f4a_7c15) as u128 * 0xff51_afd7_ed55_8ccd_u128;
        (m >> 64) as u64 ^ m as u64
    }

    fn model(narrow_hash: bool, range: u64) {
        NARROW.with(|n| n.set(narrow_hash));
        let mut ix = Index::new();
        let mut live: HashMap<u32, u64> = HashMap::new();
        let mut rng = 0x1234_5678u64;
        for step in 0..20_000u32 {
            rng = mix(rng);
            let v = (rng % range) as u32;
            let h = mix(v as u64 ^ 77);
            if live.contains_key(&v) && rng >> 60 < 7 {
                assert!(ix.remove(h, v));
                live.remove(&v);
                assert!(!ix.remove(h, v));
            } else if let Entry::Vacant(place) = live.entry(v) {
                ix.insert(h, v, |x| mix(x as u64 ^ 77));
                place.insert(h);
            }
            if step % 97 == 0 {
                for (&v, &h) in &live {
                    assert_eq!(ix.find(h, |x| x == v), Some(v));
                    let mut c = ix.first_candidate(ix.home(h), h);
                    assert_ne!(c, NONE);
                    if !narrow_hash {
                        // A wrong first candidate needs a 16-bit tag collision.
                        c = v;
                    }
                    assert!(live.contains_key(&c));
                }
                for v in range as u32..range as u32 + 50 {
                    assert_eq!(ix.find(mix(v as u64 ^ 77), |x| x == v), None);
                }
                // Overflow counts are exact.
                let mut want = vec![0u32; ix.buckets.len()];
                for (b, bk) in ix.buckets.iter().enumerate() {
                    for (&t, &v) in bk.tags.iter().zip(&bk.vals) {
                        if t != 0 {
                            let mut p = ix.home(live[&v]);
                            while p != b {
                                want[p] += 1;
                                p = ix.next(p);
                            }
                        }
                    }
                }
                let got: Vec<u32> = ix.buckets.iter().map(|b| b.overflow).collect();
                assert_eq!(got, want);
            }
            assert_eq!(ix.len(), live.len());
        }
        NARROW.with(|n| n.set(false));
    }

    #[test]
    fn index_model() {
        model(false, 3000);
    }

    #[test]
    fn index_model_narrow_hash() {
        model(true, 400);
    }
}
