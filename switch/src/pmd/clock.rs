//! The PMD's clock: the CPU's time-stamp counter where it is usable, `Instant` elsewhere.
//!
//! A PMD reads the time once per loop iteration (busy/idle accounting, the idle-sleep
//! decision, MAC ages). `Instant::now()` is a vDSO `clock_gettime`: 20-50 ns in a KVM guest,
//! which measured as a quarter of an idle PMD's iteration and about 7 % of a loaded one. `rdtsc`
//! costs a few nanoseconds. The counter is converted to nanoseconds with a fixed-point factor
//! calibrated against `Instant` when the clock is made, and only used where the kernel also
//! trusts it (`constant_tsc` and `nonstop_tsc` in /proc/cpuinfo: the rate does not change with
//! frequency scaling or sleep states). A PMD is pinned to one core, so it always reads the
//! same counter.

use std::time::{Duration, Instant};

/// A monotonic clock in nanoseconds since it was made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    origin: Instant,
    tsc: Option<Tsc>,
}

#[derive(Debug, Clone, Copy)]
struct Tsc {
    origin: u64,
    /// Nanoseconds per cycle, times 2^32.
    ns_per_cycle_q32: u64,
}

impl Clock {
    /// Calibrates the counter against `Instant` over `calibrate` (a PMD uses 10 ms at start).
    /// Falls back to `Instant` where there is no usable counter.
    pub fn new(calibrate: Duration) -> Clock {
        let origin = Instant::now();
        let tsc = if tsc_is_invariant() {
            let c0 = rdtsc();
            std::thread::sleep(calibrate);
            let (c1, t1) = (rdtsc(), Instant::now());
            let cycles = c1.wrapping_sub(c0);
            let ns = t1.duration_since(origin).as_nanos() as u64;
            (cycles > 0 && ns > 0).then(|| Tsc {
                origin: c0,
                ns_per_cycle_q32: ((u128::from(ns) << 32) / u128::from(cycles)) as u64,
            })
        } else {
            None
        };
        Clock { origin, tsc }
    }

    /// Nanoseconds since the clock was made.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        match self.tsc {
            Some(t) => {
                let cycles = rdtsc().wrapping_sub(t.origin);
                ((u128::from(cycles) * u128::from(t.ns_per_cycle_q32)) >> 32) as u64
            }
            None => self.origin.elapsed().as_nanos() as u64,
        }
    }

    /// Re-derives the counter's rate from the whole span since the clock was made: the
    /// longer the span, the smaller the error of the 10 ms start-up calibration, so PMD time
    /// and `Instant` do not drift apart. The reading may step by the old error (a few
    /// microseconds per second at most); callers take differences with `saturating_sub`.
    pub fn recalibrate(&mut self) {
        if let Some(t) = &mut self.tsc {
            let cycles = rdtsc().wrapping_sub(t.origin);
            let ns = self.origin.elapsed().as_nanos() as u64;
            if cycles > 0 && ns > 0 {
                t.ns_per_cycle_q32 = ((u128::from(ns) << 32) / u128::from(cycles)) as u64;
            }
        }
    }

    /// The `Instant` `ns` nanoseconds after the clock was made (for tables keyed by `Instant`).
    #[inline]
    pub fn instant(&self, ns: u64) -> Instant {
        self.origin + Duration::from_nanos(ns)
    }

    /// True when the time-stamp counter is used.
    #[cfg(test)]
    pub fn uses_tsc(&self) -> bool {
        self.tsc.is_some()
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[allow(unsafe_code)]
fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` reads a register; it has no memory effects and no preconditions on
    // x86_64 (every x86_64 CPU has it, and user mode may execute it unless CR4.TSD is set,
    // which Linux does not do for ordinary processes).
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn rdtsc() -> u64 {
    0
}

/// True on x86_64 when the kernel reports a constant-rate counter that keeps running in
/// sleep states.
fn tsc_is_invariant() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return false;
    };
    let flags = info
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    has("constant_tsc") && has("nonstop_tsc")
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn agrees_with_instant() {
        let clock = Clock::new(Duration::from_millis(10));
        let (a, t0) = (clock.now_ns(), Instant::now());
        std::thread::sleep(Duration::from_millis(50));
        let (b, t1) = (clock.now_ns(), Instant::now());
        assert!(b > a, "monotonic: {a} then {b}");
        let want = t1.duration_since(t0).as_nanos() as i64;
        let got = (b - a) as i64;
        // Within 20 % of 50 ms (a loaded machine delays the reads, not the rate).
        assert!(
            (got - want).abs() < want / 5,
            "tsc {} says {got} ns, Instant {want} ns",
            clock.uses_tsc()
        );
        let mut clock = clock;
        clock.recalibrate();
        let (c, t2) = (clock.now_ns(), Instant::now());
        let want = t2.duration_since(clock.origin).as_nanos() as i64;
        assert!(
            (c as i64 - want).abs() < want / 20,
            "after recalibration: {c} ns against Instant's {want} ns"
        );
        let i = clock.instant(b);
        assert!(i >= clock.origin && i.duration_since(clock.origin).as_nanos() as u64 == b);
    }
}
