//! The PMD time families, in fractional seconds, which the `metrics` crate's `u64` counters
//! cannot carry (and whose histograms it computes from samples, not from the PMD's own
//! buckets), written in the same text format:
//! - `vswitch_pmd_{busy,idle}_seconds_total`: `rate(busy) / (rate(busy) + rate(idle))` is a
//!   PMD's busy ratio;
//! - `vswitch_pmd_iteration_seconds`, a histogram of the PMD's loop iterations by duration:
//!   `increase(vswitch_pmd_iteration_seconds_bucket{le="0.001048576"}[5m])` against `_count`
//!   shows whether forwarding ever stopped for over a millisecond (a rule change too large
//!   to apply between bursts, a host that took the PMD's CPU).

use std::fmt::Write;

use switch::stats::{iteration_bucket_le_ns, ITERATION_BUCKETS};
use switch::PmdSnapshot;

/// A family: name, HELP text, and the nanoseconds it reads off a snapshot.
type Family = (&'static str, &'static str, fn(&PmdSnapshot) -> u64);

/// Appends both families for `pmds` to `out` (an exposition that ends with a blank line or is
/// empty).
pub fn write(out: &mut String, pmds: &[PmdSnapshot]) {
    let families: [Family; 2] = [
        (
            "vswitch_pmd_busy_seconds_total",
            "Time the PMD spent in loop iterations that received frames.",
            |s| s.stats.busy_ns,
        ),
        (
            "vswitch_pmd_idle_seconds_total",
            "Time the PMD spent polling without receiving, or asleep.",
            |s| s.stats.idle_ns,
        ),
    ];
    for (name, help, ns) in families {
        // Writing into a String cannot fail.
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        for snap in pmds {
            let _ = writeln!(out, "{name}{{pmd=\"{}\"}} {}", snap.pmd, seconds(ns(snap)));
        }
        out.push('\n');
    }
    write_iterations(out, pmds);
}

/// The iteration histogram of each PMD.
fn write_iterations(out: &mut String, pmds: &[PmdSnapshot]) {
    let name = "vswitch_pmd_iteration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Duration of the PMD's loop iterations (commands, polling, forwarding; not sleep)."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    for snap in pmds {
        let s = &snap.stats;
        let mut cumulative = 0;
        for k in 0..ITERATION_BUCKETS {
            cumulative += s.iterations_by_time[k];
            let le = iteration_bucket_le_ns(k).map_or("+Inf".to_string(), seconds);
            let _ = writeln!(
                out,
                "{name}_bucket{{pmd=\"{}\",le=\"{le}\"}} {cumulative}",
                snap.pmd
            );
        }
        let _ = writeln!(
            out,
            "{name}_sum{{pmd=\"{}\"}} {}",
            snap.pmd,
            seconds(s.iteration_ns)
        );
        let _ = writeln!(out, "{name}_count{{pmd=\"{}\"}} {cumulative}", snap.pmd);
    }
    out.push('\n');
}

/// Nanoseconds as decimal seconds, exactly (no float rounding, no exponent).
fn seconds(ns: u64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::seconds;

    #[test]
    fn nanoseconds_print_as_exact_decimal_seconds() {
        assert_eq!(seconds(0), "0.000000000");
        assert_eq!(seconds(1), "0.000000001");
        assert_eq!(seconds(1_500_000_000), "1.500000000");
        assert_eq!(seconds(u64::MAX), "18446744073.709551615");
    }
}
