//! The PMD time counters, `vswitch_pmd_{busy,idle}_seconds_total`: fractional seconds, which
//! the `metrics` crate's `u64` counters cannot carry, written in the same text format.
//! `rate(busy) / (rate(busy) + rate(idle))` is a PMD's busy ratio.

use std::fmt::Write;

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
