//! A QEMU (TCG) Linux guest on a vhost-user socket, from the image
//! `deploy/guest/build-image.sh` builds: a Debian kernel and a busybox initramfs whose
//! `/init` reads `vs.*` parameters from the kernel command line and reports `VSWITCH-TEST:`
//! lines on the serial console.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The QEMU binary (Debian's qemu-system-x86).
pub const QEMU: &str = "qemu-system-x86_64";

/// The cargo target directory the running test binary lives in
/// (`target/debug/deps/NAME-HASH` -> `target`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Builds (or finds up to date) the guest kernel and initramfs in `target/guest-image`;
/// returns their paths.
pub fn image() -> (PathBuf, PathBuf) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/guest/build-image.sh");
    let out = target_dir().join("guest-image");
    let t = Instant::now();
    let res = Command::new(&script)
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(
        res.status.success(),
        "{} {} failed ({:?}):\n{log}",
        script.display(),
        out.display(),
        res.status
    );
    eprintln!("guest image ({:.1?}): {}", t.elapsed(), log.trim_end());
    let (kernel, initrd) = (out.join("vmlinuz"), out.join("initramfs.gz"));
    assert!(
        kernel.is_file() && initrd.is_file(),
        "{} did not leave vmlinuz and initramfs.gz in {}:\n{log}",
        script.display(),
        out.display()
    );
    (kernel, initrd)
}

/// A guest with 256 MiB of shared (memfd) memory and one virtio-net-pci device with MAC
/// `mac` on the vhost-user socket `sock`, serial console on stdio, `params` on its kernel
/// command line. `listen`: QEMU owns the socket (the switch is the vhost-user client);
/// otherwise the switch is the server and QEMU connects.
pub fn command(
    image: &(PathBuf, PathBuf),
    sock: &Path,
    listen: bool,
    mac: &str,
    params: &str,
) -> Command {
    command_with(image, sock, listen, mac, params, "")
}

/// [`command`] with more `virtio-net-pci` properties (`device`, each starting with a comma:
/// `",packed=on"` offers the packed ring).
pub fn command_with(
    image: &(PathBuf, PathBuf),
    sock: &Path,
    listen: bool,
    mac: &str,
    params: &str,
    device: &str,
) -> Command {
    let mut c = Command::new(QEMU);
    c.args(["-accel", "tcg", "-m", "256", "-nographic", "-no-reboot"])
        .arg("-kernel")
        .arg(&image.0)
        .arg("-initrd")
        .arg(&image.1)
        .arg("-append")
        .arg(format!("console=ttyS0 panic=-1 {params}"))
        .args([
            "-object",
            "memory-backend-memfd,id=mem,size=256M,share=on",
            "-numa",
            "node,memdev=mem",
        ])
        .arg("-chardev")
        .arg(format!(
            "socket,id=c0,path={}{}",
            sock.display(),
            if listen { ",server=on,wait=off" } else { "" }
        ))
        .args(["-netdev", "vhost-user,id=n0,chardev=c0"])
        // vectors=0: no MSI-X, with which QEMU 7.2 under TCG segfaults when the driver starts.
        .args(["-device"])
        .arg(format!(
            "virtio-net-pci,netdev=n0,mac={mac},vectors=0{device}"
        ));
    c
}

/// The guest's verdict line (`VSWITCH-TEST: PASS ...` or `... FAIL ...`), once its log has
/// one.
pub fn verdict(log: &str) -> Option<&str> {
    log.lines()
        .map(str::trim)
        .find(|l| l.starts_with("VSWITCH-TEST: PASS") || l.starts_with("VSWITCH-TEST: FAIL"))
}

/// The fields after `VSWITCH-TEST: WHAT ` on the guest's first such line, split on spaces.
pub fn report<'a>(log: &'a str, what: &str) -> Option<Vec<&'a str>> {
    let prefix = format!("VSWITCH-TEST: {what} ");
    log.lines()
        .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
        .map(|rest| rest.split_whitespace().collect())
}

/// What one end of a stream (`vs.role=source` or `sink`) reports about its data.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEnd {
    /// Bytes sent or received.
    pub bytes: u64,
    /// Their md5, in hex.
    pub md5: String,
    /// Seconds the transfer took (the source's `SENT` line; `None` for the sink).
    pub secs: Option<f64>,
}

impl StreamEnd {
    /// "N bytes intact in S s (R MB/s)", for a test's log.
    pub fn summary(&self) -> String {
        let secs = self.secs.unwrap_or(f64::NAN);
        format!(
            "{} bytes intact in {secs:.2} s ({:.1} MB/s)",
            self.bytes,
            self.bytes as f64 / secs / 1e6
        )
    }
}

/// The stream line `what` of a guest's log (`SENT` from the source, `RECEIVED` from the
/// sink), once there is one.
pub fn stream_end(log: &str, what: &str) -> Option<StreamEnd> {
    let f = report(log, what)?;
    Some(StreamEnd {
        bytes: f.first()?.parse().ok()?,
        md5: f.get(1)?.to_string(),
        secs: f.get(2).and_then(|s| s.parse().ok()),
    })
}

/// The state of offload `name` (e.g. `tx-checksumming`) as the guest's `ethtool -k eth0`
/// printed it: `"on"` or `"off"`, without a `[fixed]` note.
pub fn ethtool<'a>(log: &'a str, name: &str) -> Option<&'a str> {
    report(log, &format!("ethtool {name}:"))?.first().copied()
}

/// The virtio feature bits the guest's driver negotiated (its `features` line, a string of
/// 0s and 1s with bit 0 first), as a mask.
pub fn features(log: &str) -> Option<u64> {
    let bits = *report(log, "features")?.first()?;
    bits.chars()
        .take(64)
        .enumerate()
        .try_fold(0u64, |m, (i, c)| match c {
            '0' => Some(m),
            '1' => Some(m | 1 << i),
            _ => None,
        })
}

/// The counters of the guest's `stats eth0 key=value ...` line (`rx_packets`, `rx_bytes`,
/// `tx_packets`, `tx_bytes`), as (key, value) pairs.
pub fn eth0_stats(log: &str) -> Vec<(String, u64)> {
    report(log, "stats eth0")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
[    1.0] virtio_net virtio0 eth0: renamed
VSWITCH-TEST: features 1100000000010000000000000000000010000000000000000000000000000000
VSWITCH-TEST: ethtool rx-checksumming: on [fixed]
VSWITCH-TEST: ethtool tx-checksumming: off
VSWITCH-TEST: SENT 16777216 0123456789abcdef0123456789abcdef 3.07
VSWITCH-TEST: stats eth0 rx_packets=10 rx_bytes=700 tx_packets=300 tx_bytes=17000000
VSWITCH-TEST: PASS sent 16777216 bytes
";

    #[test]
    fn reads_the_guest_lines() {
        assert_eq!(ethtool(LOG, "rx-checksumming"), Some("on"));
        assert_eq!(ethtool(LOG, "tx-checksumming"), Some("off"));
        assert_eq!(ethtool(LOG, "tcp-segmentation-offload"), None);
        assert_eq!(features(LOG), Some(1 | 1 << 1 | 1 << 11 | 1 << 32));
        assert_eq!(
            stream_end(LOG, "SENT"),
            Some(StreamEnd {
                bytes: 16 << 20,
                md5: "0123456789abcdef0123456789abcdef".into(),
                secs: Some(3.07),
            })
        );
        assert_eq!(stream_end(LOG, "RECEIVED"), None);
        assert_eq!(eth0_stats(LOG)[3], ("tx_bytes".to_string(), 17_000_000));
        assert_eq!(verdict(LOG), Some("VSWITCH-TEST: PASS sent 16777216 bytes"));
    }
}
