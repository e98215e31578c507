#!/usr/bin/env bash
# Builds the test guest for QEMU from Debian packages only: OUTDIR/vmlinuz (the Debian 12
# kernel that linux-image-amd64 currently depends on) and OUTDIR/initramfs.gz (busybox-static,
# Debian's ethtool and iperf3 with the shared libraries and dynamic loader they need, the
# virtio-net modules and deploy/guest/init as /init, a gzip'd newc cpio).
#
#   deploy/guest/build-image.sh OUTDIR
#
# Idempotent: OUTDIR/inputs records the kernel package version, the busybox, ethtool and
# iperf3 versions, the hash of the libraries they load, and the hashes of this script and
# the init; when they match, nothing is done. Run as root (it installs busybox-static,
# ethtool, iperf3, cpio and kmod with apt-get when they are missing).
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
log() { echo "build-image: $*" >&2; }

# --- tools -------------------------------------------------------------------------------
need=()
for p in busybox-static ethtool iperf3 cpio kmod; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        log "missing packages ${need[*]}; run as root to install them"
        exit 1
    fi
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${need[@]}" >&2 ||
        { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${need[@]}" >&2; }
fi

# --- which kernel ------------------------------------------------------------------------
# The ABI package the metapackage depends on, e.g. linux-image-6.1.0-56-amd64: whatever the
# mirror has today, not a hard-coded version that may vanish from it.
kpkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'; }
pkg=$(kpkg)
if [[ -z $pkg ]]; then
    log "apt-cache knows no linux-image-amd64; running apt-get update"
    apt-get update -q >&2
    pkg=$(kpkg)
fi
[[ -n $pkg ]] || { log "cannot find the kernel package linux-image-amd64 depends on"; exit 1; }
kver=${pkg#linux-image-}
pkgver=$(apt-cache policy "$pkg" | awk '$1 == "Candidate:" { print $2 }')
[[ -n $pkgver && $pkgver != "(none)" ]] || { log "no candidate version for $pkg"; exit 1; }

# ethtool is dynamically linked: it goes into the image with every shared object ldd says
# it loads (the dynamic loader included), each at the same path as on this host, where the
# guest's loader finds them without an ld.so.cache (Debian's glibc searches the multiarch
# directories by default). "not found" fails the build.
ethtool=$(dpkg -L ethtool | awk '/\/sbin\/ethtool$/ { print; exit }')
[[ -x $ethtool ]] || { log "the ethtool package has no sbin/ethtool"; exit 1; }
# iperf3 (the TCP throughput benchmark, bench/e2e/tcp-stream.sh) goes in the same way.
iperf3=$(dpkg -L iperf3 | awk '/\/bin\/iperf3$/ { print; exit }')
[[ -x $iperf3 ]] || { log "the iperf3 package has no bin/iperf3"; exit 1; }
tool_libs() {
    ldd "$1" | awk '
        /not found/ { print "MISSING:" $1; next }
        { for (i = 1; i <= NF; i++) if ($i ~ /^\//) { print $i; break } }'
}
libs=$( (tool_libs "$ethtool"; tool_libs "$iperf3") | sort -u)
[[ -n $libs && $libs != *MISSING:* ]] ||
    { log "cannot resolve the libraries of $ethtool and $iperf3: $(ldd "$ethtool" "$iperf3" 2>&1)"; exit 1; }

inputs="kernel=$pkg=$pkgver
busybox=$(dpkg-query -W -f='${Version}' busybox-static)
ethtool=$(dpkg-query -W -f='${Version}' ethtool)
iperf3=$(dpkg-query -W -f='${Version}' iperf3)
ethtool-libs=$(for l in $libs; do sha256sum < "$l"; done | sha256sum | cut -d' ' -f1)
build-image.sh=$(sha256sum < "$here/build-image.sh" | cut -d' ' -f1)
init=$(sha256sum < "$here/init" | cut -d' ' -f1)"

if [[ -f $out/vmlinuz && -f $out/initramfs.gz && -f $out/inputs ]] &&
    [[ $(cat "$out/inputs") == "$inputs" ]]; then
    log "up to date in $out ($pkg $pkgver)"
    exit 0
fi

# --- build -------------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/vswitch-guest.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "downloading $pkg $pkgver"
# apt-get download writes into the current directory; the _apt sandbox user cannot write
# into a root-only temp dir, so let it fall back to root quietly.
if ! (cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$pkgver" >&2); then
    # Stale package lists name a file the mirror no longer has: refresh once and retry.
    log "download failed; running apt-get update and retrying"
    apt-get update -q >&2
    pkg=$(kpkg)
    kver=${pkg#linux-image-}
    pkgver=$(apt-cache policy "$pkg" | awk '$1 == "Candidate:" { print $2 }')
    inputs=$(echo "$inputs" | sed "s|^kernel=.*|kernel=$pkg=$pkgver|")
    (cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$pkgver" >&2)
fi
deb=$(ls "$work"/*.deb)
dpkg-deb -x "$deb" "$work/pkg"
vmlinuz=$work/pkg/boot/vmlinuz-$kver
moddir=$work/pkg/lib/modules/$kver
[[ -f $vmlinuz && -d $moddir ]] || { log "$deb has no boot/vmlinuz-$kver or lib/modules/$kver"; exit 1; }

# Load order from the package's own dependency data: depmod over the extracted tree, then
# modprobe --show-depends prints the insmod lines dependencies first. virtio_pci drives the
# device, virtio_net the interface; either may be built in (then modprobe prints "builtin").
depmod -b "$work/pkg" "$kver"
root=$work/root
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,lib/modules}
: > "$root/lib/modules/load-order"
for m in virtio_pci virtio_net; do
    modprobe -d "$work/pkg" -S "$kver" --show-depends "$m" | while read -r kind path _; do
        [[ $kind == insmod ]] || continue
        name=$(basename "$path")
        grep -qx "$name" "$root/lib/modules/load-order" && continue
        case $name in
            *.ko) cp "$path" "$root/lib/modules/$name" ;;
            *.ko.xz) xz -dc "$path" > "$root/lib/modules/${name%.xz}"; name=${name%.xz} ;;
            *.ko.zst) zstd -qdc "$path" > "$root/lib/modules/${name%.zst}"; name=${name%.zst} ;;
            *) log "unexpected module file $path"; exit 1 ;;
        esac
        echo "$name" >> "$root/lib/modules/load-order"
    done
done
log "modules: $(tr '\n' ' ' < "$root/lib/modules/load-order")"
grep -q '^virtio_net\.ko$' "$root/lib/modules/load-order" ||
    grep -q '/virtio_net\.ko' "$moddir/modules.builtin" ||
    { log "virtio_net is neither a module nor built in"; exit 1; }

cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
    [[ $applet == busybox ]] || ln -s busybox "$root/bin/$applet"
done
install -m 0755 "$ethtool" "$root/sbin/ethtool"
install -m 0755 "$iperf3" "$root/bin/iperf3"
for l in $libs; do
    mkdir -p "$root$(dirname "$l")"
    cp -L "$l" "$root$l"
done
log "ethtool $(dpkg-query -W -f='${Version}' ethtool), iperf3 $(dpkg-query -W -f='${Version}' iperf3) with $(tr '\n' ' ' <<<"$libs")"
# The loader and libraries must be enough inside the image: run it there (chroot needs root,
# which installing packages needed too; without root, the guest's own report shows it).
if [[ $(id -u) -eq 0 ]]; then
    chroot "$root" /sbin/ethtool --version > /dev/null ||
        { log "ethtool does not run inside the image root"; exit 1; }
    chroot "$root" /bin/iperf3 --version > /dev/null ||
        { log "iperf3 does not run inside the image root"; exit 1; }
fi
install -m 0755 "$here/init" "$root/init"
# /dev/console must exist before devtmpfs is mounted: the kernel opens it for PID 1.
mknod -m 600 "$root/dev/console" c 5 1

(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) |
    gzip -9 > "$work/initramfs.gz"

# Replace the outputs atomically enough for a cache: inputs last.
rm -f "$out/inputs"
install -m 0644 "$vmlinuz" "$out/vmlinuz"
install -m 0644 "$work/initramfs.gz" "$out/initramfs.gz"
echo "$inputs" > "$out/inputs"
log "built $out/vmlinuz ($pkg $pkgver) and $out/initramfs.gz ($(stat -c %s "$out/initramfs.gz") bytes)"
