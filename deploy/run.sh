#!/usr/bin/env bash
# Builds vswitchd (release) and runs it with a config file (default: the example).
# Usage: deploy/run.sh [CONFIG]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-deploy/examples/vswitch.toml}
mkdir -p /run/vswitch
cargo build --release --locked -p api --bin vswitchd
exec target/release/vswitchd --config "$config" --state-dir /var/lib/vswitch
