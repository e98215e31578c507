//! Guest offloads end to end (issue 13): two QEMU (TCG) guests on two vhost-user ports of one
//! vswitchd (no flows: `normal` forwarding) stream 16 MiB of random data over TCP, the guest
//! image's `vs.role=source` to its `vs.role=sink` (busybox nc), with the guests' virtio-net
//! offloads on, or turned off on the QEMU side:
//! - both on: the source's TSO frames with partial checksums reach the sink as they are;
//! - the source's off: plain frames only, none counted as offload frames;
//! - the sink's receive offloads off: the switch segments the source's TSO frames for it.
//!
//! (The VXLAN case, where the switch segments and fills checksums for an encapsulating
//! output, is in overlay/offload.rs: it needs the kernel VTEP built in overlay.rs.)
//!
//! Each test first asserts what holds without offloads: the stream arrives whole (same
//! size and md5 as the source generated), it crossed the switch's two ports, and neither the
//! switch nor a guest complained. Then it prints a table of offload checks (what each
//! guest's `ethtool -k eth0` shows, and the switch's per-port offload counters on /metrics,
//! scraped over a unix socket) and fails if any of them fails. Until the switch offers the
//! offload features, those checks fail; the table says which.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::offload::{Checks, Want, QEMU_NO_OFFLOADS, QEMU_NO_RX_OFFLOADS};
use common::*;
use nix::sys::signal::Signal;
use testkit::config::{switch_table, vhost_port};
use testkit::process::{logs, watch};
use testkit::qemu::{self, stream_end, verdict, QEMU};

/// MiB the source sends.
const MIB: u64 = 16;
/// How long the source waits for the sink to answer pings, then to listen.
const PEER_WAIT_SECS: u64 = 60;
/// From start to the source's verdict: both guests boot (~10 s each under TCG, in parallel),
/// the source makes its data and sends it (a few MB/s under TCG at worst).
const STREAM_TIMEOUT: Duration = Duration::from_secs(300);

/// One QEMU run at a time: each test runs two TCG guests and a polling switch, and the
/// machine has two cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// What a stream run leaves for the offload checks.
struct Stream {
    source_log: String,
    sink_log: String,
    /// `/metrics` after the sink received everything.
    metrics: String,
    /// vswitchd's log, with the totals it logged on its way out.
    switch_log: String,
}

/// Starts vswitchd with vhost-user ports `source` and `sink` and its API on a unix socket,
/// and a QEMU guest on each (`source_device`, `sink_device`: more virtio-net-pci
/// properties); the source sends [`MIB`] MiB to the sink. Asserts that the stream arrived
/// whole through both ports and that nobody complained; returns the logs and the metrics.
fn stream(tag: &str, source_device: &str, sink_device: &str) -> Stream {
    stream_with(tag, source_device, sink_device, "")
}

/// [`stream`] with more kernel parameters for both guests (`params`, starting with a space:
/// `" vs.mtu=9000"`).
fn stream_with(tag: &str, source_device: &str, sink_device: &str, params: &str) -> Stream {
    let image = qemu::image();
    let t = Instant::now();
    let dir = Scratch::new(tag);
    let (s_src, s_sink, api) = (
        dir.path("source.sock"),
        dir.path("sink.sock"),
        dir.path("api.sock"),
    );
    let cfg = dir.file(
        "vswitch.toml",
        &(switch_table(last_cpu(), &dir.socket_dir())
            + &vhost_port("source", &s_src, "server")
            + &vhost_port("sink", &s_sink, "server")),
    );
    let mut sw = start_vswitchd(&cfg, &api);
    let mut sink = Proc::spawn(
        "guest sink",
        qemu::command_with(
            &image,
            &s_sink,
            false,
            "52:54:00:13:00:02",
            &format!("vs.role=sink vs.ip=198.18.0.2/24{params}"),
            sink_device,
        ),
    );
    let mut source = Proc::spawn(
        "guest source",
        qemu::command_with(
            &image,
            &s_src,
            false,
            "52:54:00:13:00:01",
            &format!(
                "vs.role=source vs.ip=198.18.0.1/24 vs.peer=198.18.0.2 vs.mib={MIB} \
                 vs.wait={PEER_WAIT_SECS}{params}"
            ),
            source_device,
        ),
    );

    {
        let mut procs = [&mut sw, &mut sink, &mut source];
        let fail_on = |procs: &[&mut Proc], i: usize, who: &str| {
            if let Some(l) = procs[i]
                .log
                .lines()
                .find(|l| l.contains("VSWITCH-TEST: FAIL"))
            {
                let all: Vec<&Proc> = procs.iter().map(|p| &**p).collect();
                panic!("{tag}: the {who} says {l:?}\n{}", logs(&all));
            }
        };
        watch(
            &mut procs,
            1,
            "the sink's VSWITCH-TEST: READY",
            Duration::from_secs(120),
            |log| log.contains("VSWITCH-TEST: READY") || log.contains("VSWITCH-TEST: FAIL"),
        );
        fail_on(&procs, 1, "sink");
        watch(
            &mut procs,
            2,
            "the source's verdict",
            STREAM_TIMEOUT.saturating_sub(t.elapsed()),
            |log| verdict(log).is_some(),
        );
        fail_on(&procs, 2, "source");
        watch(
            &mut procs,
            1,
            "the sink's VSWITCH-TEST: RECEIVED",
            Duration::from_secs(60),
            |log| log.contains("VSWITCH-TEST: RECEIVED") || log.contains("VSWITCH-TEST: FAIL"),
        );
        fail_on(&procs, 1, "sink");
    }
    // The sink stays up, its port connected, while the counters are read.
    let metrics = scrape_unix(&api);

    // The source powers itself off after its verdict; the sink runs until stopped.
    let _ = source.stop(Signal::SIGTERM, Duration::from_secs(20));
    let _ = sink.stop(Signal::SIGTERM, Duration::from_secs(20));
    let status = sw.stop(Signal::SIGTERM, Duration::from_secs(20));
    let all = logs(&[&sw, &sink, &source]);
    assert!(status.success(), "{tag}: vswitchd exit {status:?}\n{all}");
    assert!(!api.exists(), "{tag}: vswitchd left its API socket behind");

    let generated = qemu::report(&source.log, "DATA").unwrap_or_default();
    let sent = stream_end(&source.log, "SENT")
        .unwrap_or_else(|| panic!("{tag}: no SENT line from the source\n{all}"));
    let received = stream_end(&sink.log, "RECEIVED")
        .unwrap_or_else(|| panic!("{tag}: no RECEIVED line from the sink\n{all}"));
    assert_eq!(
        generated.get(1).copied(),
        Some(sent.md5.as_str()),
        "{tag}: the source sent what it generated\n{all}"
    );
    assert_eq!(
        (received.bytes, received.md5.as_str()),
        (MIB << 20, sent.md5.as_str()),
        "{tag}: the sink received (bytes, md5); the source sent {} bytes\n{all}",
        sent.bytes
    );
    eprintln!("{tag}: {}, {:.1?} from start", sent.summary(), t.elapsed());

    // The stream crossed the switch: read from the source's port, sent to the sink's.
    for (name, port) in [
        ("vswitch_port_rx_bytes_total", "source"),
        ("vswitch_port_tx_bytes_total", "sink"),
    ] {
        let v = metric(&metrics, name, &[("port", port)])
            .unwrap_or_else(|| panic!("{tag}: no {name}{{port=\"{port}\"}} in:\n{metrics}"));
        assert!(
            v >= (MIB << 20) as f64,
            "{tag}: {name}{{port=\"{port}\"}} is {v}, less than the stream\n{all}"
        );
    }
    // Real virtio-net drivers must not trip anything: a protocol error, a refused request,
    // a broken ring or a lying header is logged as a warning. (Before it runs, vswitchd
    // warns that --no-auth is on and nothing is persisted: as asked.)
    let bad: Vec<&str> = sw
        .log
        .lines()
        .skip_while(|l| !l.contains("vswitchd running"))
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert!(
        bad.is_empty(),
        "{tag}: vswitchd warned:\n{}\n{all}",
        bad.join("\n")
    );
    Stream {
        source_log: std::mem::take(&mut source.log),
        sink_log: std::mem::take(&mut sink.log),
        metrics,
        switch_log: std::mem::take(&mut sw.log),
    }
}

/// vswitchd from `cfg`, its API on unix socket `api` only (no TCP port for parallel tests to
/// compete for; no token: these tests only read).
fn start_vswitchd(cfg: &Path, api: &Path) -> Proc {
    let mut cmd = Command::new(VSWITCHD);
    cmd.arg("--config")
        .arg(cfg)
        .args(["--api-listen", "off", "--no-auth", "--api-socket"])
        .arg(api)
        .env("RUST_LOG", "info");
    let mut sw = Proc::spawn("vswitchd", cmd);
    sw.wait_for("vswitchd running", Duration::from_secs(20));
    sw
}

/// The rows every test has: each guest's features and frame sizes, every offload counter,
/// no bad TCP checksum at the sink, and no frame dropped for a lying virtio-net header on
/// either port.
fn common_rows(c: &mut Checks, s: &Stream) {
    c.guest_info("source", &s.source_log);
    c.guest_info("sink", &s.sink_log);
    c.metrics_info(&s.metrics);
    c.totals_info(&s.switch_log);
    c.no_csum_errors("sink", &s.sink_log);
    for port in ["source", "sink"] {
        c.no_bad_headers(&s.metrics, port);
    }
}

fn require_qemu() -> bool {
    require_peer(QEMU, "qemu-system-x86", "VSWITCH_SKIP_QEMU")
}

/// (a) Both guests with every offload: the source's large TSO frames with partial checksums
/// travel to the sink as one frame each.
#[test]
fn tso_frames_pass_whole_between_offloading_guests() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !require_qemu() {
        return;
    }
    let s = stream("qo-both", "", "");
    let mut c = Checks::new("(a) both guests offload: frames pass whole");
    for (guest, log) in [("source", &s.source_log), ("sink", &s.sink_log)] {
        c.ethtool(guest, log, "tx-checksumming", "on");
        c.ethtool(guest, log, "tcp-segmentation-offload", "on");
    }
    // What lets the sink take the source's frames as they are; and that it did.
    for name in ["GUEST_CSUM", "GUEST_TSO4"] {
        c.feature("sink", &s.sink_log, name, true);
    }
    c.rx_frames_above_mtu("sink", &s.sink_log, true);
    c.offload_frames(&s.metrics, "source", "rx", Want::Positive);
    c.offload_frames(&s.metrics, "sink", "tx", Want::Positive);
    common_rows(&mut c, &s);
    c.finish();
}

/// (b) The source with every offload turned off on the QEMU side, the sink with all of
/// them: the stream arrives, and the switch saw no offload request from the source.
#[test]
fn a_guest_without_offloads_streams_to_one_with_them() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !require_qemu() {
        return;
    }
    let s = stream("qo-srcoff", QEMU_NO_OFFLOADS, "");
    let mut c = Checks::new("(b) the source offloads nothing");
    c.ethtool("source", &s.source_log, "tx-checksumming", "off");
    c.ethtool("source", &s.source_log, "tcp-segmentation-offload", "off");
    for name in ["CSUM", "GUEST_CSUM", "HOST_TSO4", "GUEST_TSO4"] {
        c.feature("source", &s.source_log, name, false);
    }
    c.offload_frames(&s.metrics, "source", "rx", Want::Zero);
    common_rows(&mut c, &s);
    c.finish();
}

/// (c) The source offloads, the sink cannot receive TSO frames or partial checksums: the
/// switch segments for the sink.
#[test]
fn the_switch_segments_for_a_guest_that_cannot_take_tso() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !require_qemu() {
        return;
    }
    let s = stream("qo-sinkoff", "", QEMU_NO_RX_OFFLOADS);
    let mut c = Checks::new("(c) the sink takes no TSO frames: the switch segments");
    c.ethtool("source", &s.source_log, "tx-checksumming", "on");
    c.ethtool("source", &s.source_log, "tcp-segmentation-offload", "on");
    for name in ["GUEST_CSUM", "GUEST_TSO4", "GUEST_TSO6"] {
        c.feature("sink", &s.sink_log, name, false);
    }
    c.rx_frames_above_mtu("sink", &s.sink_log, false);
    c.offload_frames(&s.metrics, "source", "rx", Want::Positive);
    c.gso_segments(&s.metrics, "sink", Want::Positive);
    common_rows(&mut c, &s);
    c.finish();
}

/// (d) Jumbo frames: both guests at MTU 9000, the sink without TSO: the switch cuts the
/// source's TSO frames into 9000-byte segments, which reach the sink through mergeable
/// receive buffers.
#[test]
fn jumbo_segments_reach_a_guest_through_mergeable_buffers() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !require_qemu() {
        return;
    }
    let s = stream_with("qo-jumbo", "", QEMU_NO_RX_OFFLOADS, " vs.mtu=9000");
    let mut c = Checks::new("(d) MTU 9000, the sink takes no TSO frames: jumbo segments");
    c.ethtool("source", &s.source_log, "tcp-segmentation-offload", "on");
    c.feature("sink", &s.sink_log, "GUEST_TSO4", false);
    c.rx_frames_above_mtu("sink", &s.sink_log, true);
    c.gso_segments(&s.metrics, "sink", Want::Positive);
    common_rows(&mut c, &s);
    c.finish();
}
