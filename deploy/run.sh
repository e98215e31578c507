#!/usr/bin/env bash
# Builds vswitchd and vswitchctl (release) and runs vswitchd with a config file (default: the example).
# Usage: deploy/run.sh [CONFIG]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-deploy/examples/vswitch.toml}
mkdir -p /run/vswitch
cargo build --release --locked -p api --bin vswitchd --bin vswitchctl
exec target/release/vswitchd --config "$config" --state-dir /var/lib/vswitch
