#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian 12 machine (run as root) and runs every
# test: formatting, clippy, the whole workspace's unit, property and process tests, and a
# smoke run of each fuzz target.
# This is the README's test command and what CI (.ci/run) runs.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use. The Rust toolchain itself (cargo 1.95, rustup) is part of
# the machine image.
# dpdk-dev: dpdk-testpmd, whose net_virtio_user is a real vhost-user frontend the tests drive;
# qemu-system-x86 busybox-static cpio kmod: real Linux guests (deploy/guest/build-image.sh).
# prometheus: promtool lints /metrics, and a real Prometheus scrapes the switch
# (api/tests/metrics.rs).
# iputils-ping procps: the overlay namespace tests (api/tests/overlay.rs) ping and sysctl;
# iproute2 and iputils-ping also serve the afxdp/tap uplink tests (api/tests/uplinks.rs).
# g++: libfuzzer-sys builds libFuzzer (the fuzz smoke, deploy/fuzz.sh).
packages=(ca-certificates gcc g++ libc6-dev pkg-config iproute2 coreutils dpdk-dev
          qemu-system-x86 busybox-static cpio kmod prometheus iputils-ping procps)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "test.sh: missing packages ${missing[*]}; run as root to install them" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
# A short run of each fuzz target (docs/FUZZING.md): they build, start from their seeds and
# survive 20,000 inputs or 20 s each. Installs cargo-fuzz the first time.
echo "== fuzz smoke"
deploy/fuzz.sh --smoke
