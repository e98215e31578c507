//! Value parsers and canonical renderers shared by the match and action text syntaxes.
//!
//! Parsers return the reason for a refusal as a `String`; the caller wraps it with the field
//! (or action) name and the offending text.

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::types::MacAddr;

/// A decimal or `0x`-prefixed hex number. `Err(true)` when it is a well-formed number too
/// large for a `u64`, `Err(false)` when it is not a number at all.
fn raw_number(s: &str) -> Result<u64, bool> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None => (s, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(false);
    }
    u64::from_str_radix(digits, radix).map_err(|_| true)
}

/// A decimal or `0x` hex number in `0..=max`; `what` names the quantity in the range error
/// (`"VLAN id must be 0..=4095"`).
pub(crate) fn number(s: &str, max: u64, what: &str) -> Result<u64, String> {
    match raw_number(s) {
        Ok(v) if v <= max => Ok(v),
        Ok(_) | Err(true) => Err(format!("{what} must be 0..={max}")),
        Err(false) => Err("expected a decimal or 0x-prefixed hex number".to_string()),
    }
}

/// A decimal number in `0..=max` (no hex).
pub(crate) fn decimal(s: &str, max: u64, what: &str) -> Result<u64, String> {
    if s.starts_with("0x") || s.starts_with("0X") {
        return Err(format!("expected a decimal {what}"));
    }
    number(s, max, what)
}

/// `V` or `V/M`, both numbers in `0..=full` (`full` is the field's all-ones value, which is
/// the mask when none is given). The value is returned already masked.
pub(crate) fn masked_number(s: &str, full: u64, what: &str) -> Result<(u64, u64), String> {
    match s.split_once('/') {
        None => Ok((number(s, full, what)?, full)),
        Some((v, m)) => {
            let v = number(v.trim(), full, what)?;
            let m = number(m.trim(), full, "mask")?;
            Ok((v & m, m))
        }
    }
}

/// Renders a masked number: decimal when exact, `0x…/0x…` otherwise.
pub(crate) fn fmt_masked_number(v: u64, m: u64, full: u64) -> String {
    if m == full {
        format!("{v}")
    } else {
        format!("{v:#x}/{m:#x}")
    }
}

const MAC_HINT: &str =
    "expected a MAC address like 52:54:00:12:34:56, optionally /ff:ff:ff:00:00:00";

/// A MAC address, optionally `/mask`, as 48-bit numbers (value masked).
pub(crate) fn mac_masked(s: &str) -> Result<(u64, u64), String> {
    let mac = |t: &str| {
        t.trim()
            .parse::<MacAddr>()
            .map(MacAddr::to_u64)
            .map_err(|_| MAC_HINT.to_string())
    };
    match s.split_once('/') {
        None => Ok((mac(s)?, MAC_FULL)),
        Some((v, m)) => {
            let (v, m) = (mac(v)?, mac(m)?);
            Ok((v & m, m))
        }
    }
}

/// All 48 bits of a MAC address.
pub(crate) const MAC_FULL: u64 = 0xffff_ffff_ffff;

/// Renders a masked MAC address.
pub(crate) fn fmt_mac(v: u64, m: u64) -> String {
    if m == MAC_FULL {
        MacAddr::from_u64(v).to_string()
    } else {
        format!("{}/{}", MacAddr::from_u64(v), MacAddr::from_u64(m))
    }
}

/// An IPv4 address, `addr/len` or `addr/dotted-mask` (value masked).
pub(crate) fn ipv4_masked(s: &str) -> Result<(u32, u32), String> {
    let addr = |t: &str| {
        t.trim()
            .parse::<Ipv4Addr>()
            .map(u32::from)
            .map_err(|_| "expected an IPv4 address like 198.18.0.1, optionally /prefix".to_string())
    };
    match s.split_once('/') {
        None => Ok((addr(s)?, u32::MAX)),
        Some((v, m)) => {
            let v = addr(v)?;
            let m = m.trim();
            let m = if m.contains('.') {
                m.parse::<Ipv4Addr>().map(u32::from).map_err(|_| {
                    format!(
                        "invalid mask {m:?}: expected a prefix length or a mask like 255.255.255.0"
                    )
                })?
            } else {
                let len = prefix_len(m, 32)?;
                u32::MAX.checked_shl(32 - len).unwrap_or(0)
            };
            Ok((v & m, m))
        }
    }
}

/// An IPv6 address, `addr/len` or `addr/mask-address` (value masked).
pub(crate) fn ipv6_masked(s: &str) -> Result<(u128, u128), String> {
    let addr = |t: &str| {
        t.trim().parse::<Ipv6Addr>().map(u128::from).map_err(|_| {
            "expected an IPv6 address like 2001:db8::1, optionally /prefix".to_string()
        })
    };
    match s.split_once('/') {
        None => Ok((addr(s)?, u128::MAX)),
        Some((v, m)) => {
            let v = addr(v)?;
            let m = m.trim();
            let m = if m.contains(':') {
                m.parse::<Ipv6Addr>().map(u128::from).map_err(|_| {
                    format!(
                        "invalid mask {m:?}: expected a prefix length or a mask like ffff:ffff::"
                    )
                })?
            } else {
                let len = prefix_len(m, 128)?;
                u128::MAX.checked_shl(128 - len).unwrap_or(0)
            };
            Ok((v & m, m))
        }
    }
}

fn prefix_len(s: &str, max: u32) -> Result<u32, String> {
    let bad = || format!("prefix length must be 0..={max}");
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(if s.is_empty() {
            "missing prefix length after \"/\"".to_string()
        } else {
            format!("invalid mask {s:?}: expected a prefix length 0..={max} or an address mask")
        });
    }
    match s.parse::<u32>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(bad()),
    }
}

/// The prefix length of a contiguous (CIDR) mask of `bits` bits, if it is one.
fn cidr_len(m: u128, bits: u32) -> Option<u32> {
    let ones = (m << (128 - bits)).leading_ones();
    let expect = u128::MAX.checked_shl(128 - ones).unwrap_or(0) >> (128 - bits);
    (m == expect).then_some(ones)
}

/// Renders a masked IPv4 address: `a.b.c.d`, `a.b.c.d/len`, or `a.b.c.d/m.m.m.m`.
pub(crate) fn fmt_ipv4(v: u32, m: u32) -> String {
    let a = Ipv4Addr::from(v);
    match cidr_len(m as u128, 32) {
        Some(32) => a.to_string(),
        Some(len) => format!("{a}/{len}"),
        None => format!("{a}/{}", Ipv4Addr::from(m)),
    }
}

/// Renders a masked IPv6 address: `addr`, `addr/len`, or `addr/mask`.
pub(crate) fn fmt_ipv6(v: u128, m: u128) -> String {
    let a = Ipv6Addr::from(v);
    match cidr_len(m, 128) {
        Some(128) => a.to_string(),
        Some(len) => format!("{a}/{len}"),
        None => format!("{a}/{}", Ipv6Addr::from(m)),
    }
}

/// Levenshtein distance (byte-wise, ASCII case-insensitive).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(!ca.eq_ignore_ascii_case(&cb));
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        core::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `word` within edit distance 2 (first one on ties).
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // Long garbage cannot be within distance 2 of a short name; skip the quadratic work.
    if word.len() > 40 {
        return None;
    }
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|&(d, _)| d <= 2)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// `" (did you mean \"x\"?)"`, or nothing.
pub(crate) struct Suggestion<'a>(pub Option<&'a str>);

impl core::fmt::Display for Suggestion<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(s) => write!(f, " (did you mean {s:?}?)"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number("0x10", 255, "x"), Ok(16));
        assert_eq!(number("16", 255, "x"), Ok(16));
        assert_eq!(number("256", 255, "x").unwrap_err(), "x must be 0..=255");
        assert_eq!(
            number("99999999999999999999999", 255, "x").unwrap_err(),
            "x must be 0..=255"
        );
        for bad in ["", "0x", "-1", "+1", "1 2", "abc", "0xg"] {
            assert_eq!(
                number(bad, 255, "x").unwrap_err(),
                "expected a decimal or 0x-prefixed hex number",
                "{bad:?}"
            );
        }
        assert_eq!(
            decimal("0x1", 9, "port number").unwrap_err(),
            "expected a decimal port number"
        );
    }

    #[test]
    fn masked_numbers() {
        assert_eq!(
            masked_number("0x1234/0xf000", 0xffff, "p"),
            Ok((0x1000, 0xf000))
        );
        assert_eq!(masked_number("80", 0xffff, "p"), Ok((80, 0xffff)));
        assert_eq!(
            masked_number("1/0x10000", 0xffff, "p").unwrap_err(),
            "mask must be 0..=65535"
        );
        assert_eq!(fmt_masked_number(0x1000, 0xf000, 0xffff), "0x1000/0xf000");
        assert_eq!(fmt_masked_number(80, 0xffff, 0xffff), "80");
    }

    #[test]
    fn ipv4() {
        assert_eq!(ipv4_masked("10.1.2.3/8"), Ok((0x0a00_0000, 0xff00_0000)));
        assert_eq!(ipv4_masked("10.1.2.3/0"), Ok((0, 0)));
        assert_eq!(
            ipv4_masked("10.1.2.3/255.0.255.0"),
            Ok((0x0a00_0200, 0xff00_ff00))
        );
        assert_eq!(
            ipv4_masked("10.0.0.0/33").unwrap_err(),
            "prefix length must be 0..=32"
        );
        assert_eq!(
            ipv4_masked("10.0.0.0/").unwrap_err(),
            "missing prefix length after \"/\""
        );
        assert!(ipv4_masked("10.0.0").is_err());
        assert_eq!(fmt_ipv4(0x0a00_0000, 0xff00_0000), "10.0.0.0/8");
        assert_eq!(fmt_ipv4(0x0a00_0001, u32::MAX), "10.0.0.1");
        assert_eq!(fmt_ipv4(0, 0), "0.0.0.0/0");
        assert_eq!(fmt_ipv4(0x0a00_0200, 0xff00_ff00), "10.0.2.0/255.0.255.0");
    }

    #[test]
    fn ipv6() {
        let (v, m) = ipv6_masked("2001:db8::1/32").unwrap();
        assert_eq!(fmt_ipv6(v, m), "2001:db8::/32");
        let (v, m) = ipv6_masked("2001:db8::1").unwrap();
        assert_eq!(fmt_ipv6(v, m), "2001:db8::1");
        assert_eq!(
            ipv6_masked("::/129").unwrap_err(),
            "prefix length must be 0..=128"
        );
        let (v, m) = ipv6_masked("2001:db8::1/ffff::ffff").unwrap();
        assert_eq!(fmt_ipv6(v, m), "2001::1/ffff::ffff");
    }

    #[test]
    fn macs() {
        let (v, m) = mac_masked("52:54:00:12:34:56/ff:ff:ff:00:00:00").unwrap();
        assert_eq!(fmt_mac(v, m), "52:54:00:00:00:00/ff:ff:ff:00:00:00");
        assert_eq!(fmt_mac(v, MAC_FULL), "52:54:00:00:00:00");
        assert!(mac_masked("52:54:00:12:34").is_err());
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("ip_dest", ["ip_src", "ip_dst"]),
            Some("ip_dst")
        );
        assert_eq!(did_you_mean("zzzzzz", ["ip_src", "ip_dst"]), None);
        assert_eq!(Suggestion(Some("a")).to_string(), " (did you mean \"a\"?)");
    }
}
