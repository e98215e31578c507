//! Guest offloads (issue 13) in the end-to-end tests: the virtio-net feature bits, the QEMU
//! properties that turn them off, and [`Checks`], a table of offload assertions printed whole
//! before the test fails on any of them, so one run shows every check that holds and every
//! one that does not.

use testkit::qemu;

use super::metric;

/// The virtio-net offload feature bits (virtio 1.2 §5.1.3), by the names the spec gives them.
pub const OFFLOAD_FEATURES: [(u32, &str); 8] = [
    (0, "CSUM"),
    (1, "GUEST_CSUM"),
    (7, "GUEST_TSO4"),
    (8, "GUEST_TSO6"),
    (9, "GUEST_ECN"),
    (11, "HOST_TSO4"),
    (12, "HOST_TSO6"),
    (13, "HOST_ECN"),
];

/// `virtio-net-pci` properties (for `testkit::qemu::command_with`) under which QEMU offers
/// the guest none of the offloads, whatever the switch offers.
pub const QEMU_NO_OFFLOADS: &str = ",csum=off,guest_csum=off,host_tso4=off,host_tso6=off,\
                                    guest_tso4=off,guest_tso6=off,host_ecn=off,guest_ecn=off";

/// `virtio-net-pci` properties under which the guest can send offloads but not receive them
/// (no partial checksums, no TSO frames towards it).
pub const QEMU_NO_RX_OFFLOADS: &str = ",guest_csum=off,guest_tso4=off,guest_tso6=off";

/// What a counter must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// More than zero.
    Positive,
    /// Exactly zero (and exported).
    Zero,
}

/// A table of offload checks: each row passes or fails, info rows only inform. [`Checks::finish`]
/// prints the table and panics if any row failed.
pub struct Checks {
    title: String,
    rows: Vec<(Option<bool>, String)>,
}

impl Checks {
    /// An empty table for the test `title` describes.
    pub fn new(title: &str) -> Checks {
        Checks {
            title: title.to_string(),
            rows: Vec::new(),
        }
    }

    /// A check.
    pub fn check(&mut self, ok: bool, what: String) {
        self.rows.push((Some(ok), what));
    }

    /// A line that only informs.
    pub fn info(&mut self, what: String) {
        self.rows.push((None, what));
    }

    /// Guest `guest`'s `ethtool -k eth0` shows offload `name` as `want` (`on` or `off`).
    pub fn ethtool(&mut self, guest: &str, log: &str, name: &str, want: &str) {
        let got = qemu::ethtool(log, name);
        let ok = got == Some(want);
        let what = format!("{guest}: ethtool -k eth0 shows {name}: {want}");
        self.check(
            ok,
            match (ok, got) {
                (true, _) => what,
                (false, Some(got)) => format!("{what} (it shows {got})"),
                (false, None) => format!("{what} (no such line from the guest)"),
            },
        );
    }

    /// Guest `guest` negotiated (`want`) or did not negotiate offload feature `name` (one of
    /// [`OFFLOAD_FEATURES`]), as its virtio features line shows.
    pub fn feature(&mut self, guest: &str, log: &str, name: &str, want: bool) {
        let bit = OFFLOAD_FEATURES
            .iter()
            .find(|(_, n)| *n == name)
            .unwrap_or_else(|| panic!("{name} is not an offload feature"))
            .0;
        let what = format!(
            "{guest}: VIRTIO_NET_F_{name} {}negotiated",
            if want { "" } else { "not " }
        );
        match qemu::features(log) {
            Some(f) => self.check((f & 1 << bit != 0) == want, what),
            None => self.check(false, format!("{what} (no features line from the guest)")),
        }
    }

    /// `vswitch_port_offload_frames_total{port, direction}` is as `want` says.
    pub fn offload_frames(&mut self, metrics: &str, port: &str, direction: &str, want: Want) {
        let labels = [("port", port), ("direction", direction)];
        self.counter(metrics, "vswitch_port_offload_frames_total", &labels, want);
    }

    /// `vswitch_port_gso_segments_total{port}` is as `want` says.
    pub fn gso_segments(&mut self, metrics: &str, port: &str, want: Want) {
        self.counter(
            metrics,
            "vswitch_port_gso_segments_total",
            &[("port", port)],
            want,
        );
    }

    /// No frame from `port` was dropped for a lying virtio-net header.
    pub fn no_bad_headers(&mut self, metrics: &str, port: &str) {
        let name = "vswitch_port_offload_bad_headers_total";
        self.counter(metrics, name, &[("port", port)], Want::Zero);
    }

    /// Counter `name{labels}` on `metrics` is as `want` says.
    pub fn counter(&mut self, metrics: &str, name: &str, labels: &[(&str, &str)], want: Want) {
        let series = format!(
            "{name}{{{}}}",
            labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        let what = match want {
            Want::Positive => format!("{series} > 0"),
            Want::Zero => format!("{series} == 0"),
        };
        match metric(metrics, name, labels) {
            Some(v) => {
                let ok = match want {
                    Want::Positive => v > 0.0,
                    Want::Zero => v == 0.0,
                };
                self.check(ok, format!("{what} (it is {v})"));
            }
            None => self.check(false, format!("{what} (not exported by the switch)")),
        }
    }

    /// Guest `guest`'s TCP dropped no segment for a bad checksum (its `stats` line's
    /// `tcp_in_csum_errors`): every checksum the switch filled in or left to it was right.
    pub fn no_csum_errors(&mut self, guest: &str, log: &str) {
        let what = format!("{guest}: TCP InCsumErrors == 0");
        match qemu::eth0_stats(log)
            .iter()
            .find(|(k, _)| k == "tcp_in_csum_errors")
        {
            Some((_, n)) => self.check(*n == 0, format!("{what} (it is {n})")),
            None => self.check(false, format!("{what} (no stats line from the guest)")),
        }
    }

    /// Guest `guest`'s eth0 received frames larger (`larger`), or no larger, than a full
    /// 1514-byte Ethernet frame on average over the run: the driver counts a TSO frame the
    /// device delivers whole as one frame, so an average above 1514 at MTU 1500 means TSO
    /// frames arrived unsegmented.
    pub fn rx_frames_above_mtu(&mut self, guest: &str, log: &str, larger: bool) {
        let stats = qemu::eth0_stats(log);
        let get = |k: &str| stats.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        let what = format!(
            "{guest}: eth0 received frames of {} 1514 bytes on average",
            if larger { "more than" } else { "at most" }
        );
        match (get("rx_bytes"), get("rx_packets")) {
            (Some(b), Some(p)) if p > 0 => {
                let avg = b / p;
                self.check((avg > 1514) == larger, format!("{what} (it is {avg})"));
            }
            _ => self.check(false, format!("{what} (no stats line from the guest)")),
        }
    }

    /// Info rows: the offload features guest `guest` negotiated, and its eth0 frame sizes.
    pub fn guest_info(&mut self, guest: &str, log: &str) {
        let negotiated = match qemu::features(log) {
            Some(f) => {
                let names: Vec<&str> = OFFLOAD_FEATURES
                    .iter()
                    .filter(|(bit, _)| f & (1 << bit) != 0)
                    .map(|(_, n)| *n)
                    .collect();
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(" ")
                }
            }
            None => "? (no features line)".to_string(),
        };
        self.info(format!(
            "{guest}: offload features negotiated: {negotiated}"
        ));
        let stats = qemu::eth0_stats(log);
        let get = |k: &str| stats.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        for dir in ["rx", "tx"] {
            if let (Some(p), Some(b)) =
                (get(&format!("{dir}_packets")), get(&format!("{dir}_bytes")))
            {
                self.info(format!(
                    "{guest}: eth0 {dir} {p} frames, {b} bytes, {} bytes a frame on average",
                    b.checked_div(p).unwrap_or(0)
                ));
            }
        }
        if let Some(n) = get("tcp_retrans_segs") {
            self.info(format!("{guest}: TCP RetransSegs {n}"));
        }
    }

    /// Info rows: every offload counter the switch exports (none yet, before issue 13's
    /// switch side).
    pub fn metrics_info(&mut self, metrics: &str) {
        let lines: Vec<&str> = metrics
            .lines()
            .filter(|l| {
                !l.starts_with('#')
                    && ["offload", "gso_segments", "csum_filled"]
                        .iter()
                        .any(|k| l.contains(k))
            })
            .collect();
        if lines.is_empty() {
            self.info("/metrics has no offload counters".to_string());
        }
        for l in lines {
            self.info(format!("/metrics: {l}"));
        }
    }

    /// Info rows: the totals vswitchd logged on its way out (per port, drops by reason,
    /// overlay), from its log `log`, the fields after the message; lines whose every count
    /// is 0 left out.
    pub fn totals_info(&mut self, log: &str) {
        for l in log.lines().filter(|l| l.contains(" totals")) {
            let counts: Vec<u64> = l
                .split_whitespace()
                .filter_map(|f| f.split_once('=')?.1.parse().ok())
                .collect();
            if counts.iter().all(|&n| n == 0) {
                continue;
            }
            let from = l.find(": ").map_or(0, |i| i + 2);
            self.info(format!("vswitchd: {}", &l[from..]));
        }
    }

    /// Panics with the table if any row failed; otherwise prints it to stderr (shown with
    /// `--nocapture`).
    pub fn finish(self) {
        let mut table = format!("offload checks: {}\n", self.title);
        for (ok, what) in &self.rows {
            match ok {
                Some(true) => table.push_str(&format!("  ok    {what}\n")),
                Some(false) => table.push_str(&format!("  FAIL  {what}\n")),
                None => {}
            }
        }
        table.push_str("  details:\n");
        for (_, what) in self.rows.iter().filter(|(ok, _)| ok.is_none()) {
            table.push_str(&format!("        {what}\n"));
        }
        let failed = self
            .rows
            .iter()
            .filter(|(ok, _)| *ok == Some(false))
            .count();
        if failed == 0 {
            eprint!("{table}");
        }
        assert!(
            failed == 0,
            "{failed} offload check(s) failed (the switch side of issue 13 must offer and \
             count the offloads for them to pass):\n{table}"
        );
    }
}
