//! Guest offloads through the overlay (issue 13): a QEMU guest that offloads checksums and
//! TCP segmentation sends a TCP stream through the switch's VXLAN port (AF_XDP uplink) to
//! busybox `nc -l` in the kernel VTEP's namespace. Neither VXLAN encapsulation nor the
//! uplink can carry a 64 KiB frame with a partial checksum, so the switch must segment the
//! guest's TSO frames and fill in each segment's checksums in software; the far kernel
//! verifies the inner TCP checksums (veth hands it the frames unverified) and drops a
//! segment whose checksum is wrong, so the stream arriving intact shows they were right.

use super::*;
use crate::common::offload::{Checks, Want};
use testkit::process::require_tool;
use testkit::qemu::{stream_end, verdict};

/// MiB the guest sends.
const MIB: u64 = 16;

#[test]
fn qemu_guest_tso_stream_crosses_vxlan_to_the_kernel_intact() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !require_peer(qemu::QEMU, "qemu-system-x86", "VSWITCH_SKIP_QEMU") {
        return;
    }
    require_tools();
    require_tool("busybox", "busybox-static");
    require_tool("md5sum", "coreutils");
    // The image's build installs ethtool (Debian's) on this machine too.
    let image = qemu::image();
    require_tool("ethtool", "ethtool");
    let t = std::time::Instant::now();
    let names = Names::new("o");
    let dir = Scratch::new("overlay-o");
    let sw_ns = names.netns("sw");
    let (far, far_vx, up) = far_vtep(&names, &sw_ns);
    // The far kernel must put whole checksums on the wire. With tx checksumming on, its TCP
    // leaves the inner checksum to "hardware" (CHECKSUM_PARTIAL), veth passes the frame on
    // without filling it in, and the AF_XDP socket on the other end reads the bytes as they
    // are: the guest then drops every SYN-ACK and ACK for a bad checksum (pings still pass,
    // ICMP is always summed in software). A NIC would fill the checksum in; veth does not.
    for dev in [far_vx.as_str(), &names.ifname("upk")] {
        far.exec(&["ethtool", "-K", dev, "tx", "off"]);
    }
    let (sock, api) = (dir.path("vm.sock"), dir.path("api.sock"));
    let config = format!(
        "{}\n{}\n[[port]]\nname = \"vm\"\ntype = \"vhost-user\"\nsocket = \"{}\"\nvlan = {{ mode = \"access\", tag = 10 }}\n\n{}",
        switch_section(&dir),
        afxdp_port("uplink", &up, "ip = \"198.18.0.1/24\""),
        sock.display(),
        vxlan_port("vx100", 100, "198.18.0.2", 10),
    );
    let switchd = Switchd::start_with_api(&sw_ns, &dir, "vswitchd-o", &config, Some(&api));

    // The sink: one connection on the far side, written to a file. busybox nc ends the
    // connection as soon as its own stdin ends; Proc keeps the stdin pipe open until the
    // process is gone.
    let received = dir.path("received");
    let mut sink = Proc::spawn(
        "nc -l in the far namespace",
        far.cmd(&[
            "sh",
            "-c",
            "busybox nc -l -p 5001 > \"$0\"; echo \"nc exit $?\"",
            received.to_str().unwrap(),
        ]),
    );
    // MTU 1450: the overlay's, as the kernel VTEP's own (its veth's 1500 less VXLAN's 50).
    let mut vm = Proc::spawn(
        "guest (source)",
        qemu::command(
            &image,
            &sock,
            false,
            "52:54:00:13:01:01",
            &format!(
                "vs.role=source vs.ip=198.19.0.1/24 vs.peer=198.19.0.2 vs.mib={MIB} \
                 vs.wait=60 vs.mtu=1450"
            ),
        ),
    );
    let deadline = t + Duration::from_secs(300);
    while verdict(&vm.log).is_none() && std::time::Instant::now() < deadline {
        vm.drain_for(Duration::from_millis(200));
        sink.drain_for(Duration::from_millis(1));
    }
    let guest_verdict = verdict(&vm.log).map(str::to_string);
    // After a PASS the far side's nc ends too (the guest's nc saw it close the connection).
    if guest_verdict
        .as_deref()
        .is_some_and(|v| v.starts_with("VSWITCH-TEST: PASS"))
    {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !sink.log.contains("nc exit") && std::time::Instant::now() < deadline {
            sink.drain_for(Duration::from_millis(100));
        }
    }
    let metrics = scrape_unix(&api);
    let far_csum_errors = tcp_in_csum_errors(&far);
    let _ = vm.stop(Signal::SIGTERM, Duration::from_secs(20));
    let _ = sink.stop(Signal::SIGTERM, Duration::from_secs(5));
    let log = switchd.stop();
    let all = format!(
        "guest console:\n{}\nfar-side nc:\n{}\nvswitchd:\n{log}",
        vm.log, sink.log
    );
    assert!(
        guest_verdict
            .as_deref()
            .is_some_and(|v| v.starts_with("VSWITCH-TEST: PASS")),
        "the guest's verdict: {guest_verdict:?}\n{all}"
    );
    assert!(
        sink.log.contains("nc exit 0"),
        "the far side's nc did not finish, or failed\n{all}"
    );

    let sent = stream_end(&vm.log, "SENT").expect("a SENT line with the PASS verdict");
    let got_bytes = std::fs::metadata(&received).map(|m| m.len()).unwrap_or(0);
    let out = Command::new("md5sum")
        .arg(&received)
        .output()
        .expect("md5sum runs");
    let got_md5 = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    assert_eq!(
        (got_bytes, got_md5.as_str()),
        (MIB << 20, sent.md5.as_str()),
        "the far side received (bytes, md5); the guest sent {} bytes\n{all}",
        sent.bytes
    );
    eprintln!("vxlan: {}, {:.1?} from start", sent.summary(), t.elapsed());

    let mut c = Checks::new("(d) a TSO guest to the kernel over VXLAN: the switch segments");
    c.ethtool("source", &vm.log, "tx-checksumming", "on");
    c.ethtool("source", &vm.log, "tcp-segmentation-offload", "on");
    c.offload_frames(&metrics, "vm", "rx", Want::Positive);
    c.gso_segments(&metrics, "vx100", Want::Positive);
    c.no_bad_headers(&metrics, "vm");
    c.check(
        far_csum_errors == 0,
        format!("far side: TCP InCsumErrors == 0 (it is {far_csum_errors})"),
    );
    c.guest_info("source", &vm.log);
    c.metrics_info(&metrics);
    c.totals_info(&log);
    c.finish();
}

/// TCP's count of segments dropped for a bad checksum in namespace `ns` (`InCsumErrors` in
/// its /proc/net/snmp).
fn tcp_in_csum_errors(ns: &Netns) -> u64 {
    let out = ns.exec(&["cat", "/proc/net/snmp"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut tcp = text.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next().unwrap_or(""), tcp.next().unwrap_or(""));
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(k, _)| *k == "InCsumErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no Tcp InCsumErrors in {}'s /proc/net/snmp:\n{text}",
                ns.name
            )
        })
}
