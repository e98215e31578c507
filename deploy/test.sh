#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian 12 machine (run as root) and runs every
# test: formatting, clippy, the whole workspace's unit, property and process tests, and a
# smoke run of each fuzz target.
# This is the README's test command and what CI (.ci/run) runs.
set -euo pipefail
cd "$(dirname "$0")/.."

# VSWITCH_SKIP_DPDK, _QEMU and _PROMETHEUS let a developer running `cargo test` by hand skip
# the tests whose peer program is missing: such a test passes, with only a SKIPPED line on
# stderr to tell. This script is the full run (CI's and the README's), so it runs with none.
skips=$(compgen -e VSWITCH_SKIP_ || true)
if [[ -n $skips ]]; then
    echo "test.sh: refusing to run with" $skips "set: the tests they skip would pass" \
        "without running; unset them (this script installs the peer programs)" >&2
    exit 1
fi

# Debian packages the tests use. The Rust toolchain itself (cargo 1.95, rustup) is part of
# the machine image.
# dpdk-dev: dpdk-testpmd, whose net_virtio_user is a real vhost-user frontend the tests drive;
# qemu-system-x86 busybox-static cpio kmod ethtool iperf3: real Linux guests
# (deploy/guest/build-image.sh puts ethtool and iperf3 into the guest image).
# prometheus: promtool lints /metrics, and a real Prometheus scrapes the switch
# (api/tests/metrics.rs).
# iputils-ping procps: the overlay namespace tests (api/tests/overlay.rs) ping and sysctl;
# iproute2 and iputils-ping also serve the afxdp/tap uplink tests (api/tests/uplinks.rs);
# iproute2 the schemathesis test's network namespace too.
# g++: libfuzzer-sys builds libFuzzer (the fuzz smoke, deploy/fuzz.sh).
packages=(ca-certificates gcc g++ libc6-dev pkg-config iproute2 coreutils dpdk-dev
          qemu-system-x86 busybox-static cpio kmod ethtool iperf3 prometheus iputils-ping procps)
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

# schemathesis (PyPI), for api/tests/schemathesis.rs: a venv in /opt/schemathesis, pinned; quick
# when it is there already. Debian's python3 needs python3-venv for `-m venv` (ensurepip).
SCHEMATHESIS_VERSION=4.32.5
st=/opt/schemathesis/bin/schemathesis
if ! "$st" --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION\$"; then
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        if [[ $(id -u) -ne 0 ]]; then
            echo "test.sh: python3-venv is missing; run as root to install it" >&2
            exit 1
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends python3 python3-venv
    fi
    python3 -m venv /opt/schemathesis
    /opt/schemathesis/bin/python -m pip install -q --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION"
    "$st" --version
fi

rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
# A short run of each fuzz target (docs/FUZZING.md): they build, start from their seeds and
# survive 20,000 inputs or 20 s each. Installs cargo-fuzz the first time. Before the tests,
# so that cargo test's summary is what the run ends with.
echo "== fuzz smoke"
deploy/fuzz.sh --smoke
echo "== cargo test"
cargo test --workspace --locked
