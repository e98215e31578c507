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
