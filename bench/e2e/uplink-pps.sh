#!/usr/bin/env bash
# AF_XDP uplink forwarding rate (issue 5): trafgen (netsniff-ng) in namespace A blasts 64-byte
# frames into a veth; the host ends of that veth and of a second one (to namespace B) are
# joined by, in turn,
#   (a) vswitchd: two afxdp ports, rule in_port=up-a -> output:up-b, PMD alone on CPU 1;
#   (b) the kernel's own bridge (no XDP);
# and the rate is the rx_packets delta of the veth end inside namespace B over the window.
# The generator runs on CPU 0. Rounds interleave (a) and (b); ratios are per round.
#
# Usage (root): bench/e2e/uplink-pps.sh [SECONDS]      (default 10 s per window)
# Environment:  REPEAT=3 (rounds)  WARMUP=2 (s before measuring)  ONLY="vswitchd bridge"  VSWITCHD=path (default:
#               target/release/vswitchd, built if missing)
set -euo pipefail

SECS=${1:-10}
REPEAT=${REPEAT:-3}
WARMUP=${WARMUP:-2}
ONLY=${ONLY:-"vswitchd bridge"}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
VSWITCHD=${VSWITCHD:-$REPO/target/release/vswitchd}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[[ $(id -u) -eq 0 ]] || die "run as root (namespaces, XDP)"
(( $(nproc) >= 2 )) || die "needs 2 CPUs"
for p in netsniff-ng iproute2 util-linux; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$p" >/dev/null
done
[[ -x $VSWITCHD ]] || (cd "$REPO" && cargo build --release -p api --bin vswitchd)

P=$$
NA=vswbA$P NB=vswbB$P HA=ubha$P PA=ubpa$P HB=ubhb$P PB=ubpb$P BR=ubbr$P
SCRATCH=$(mktemp -d)
SW_PID= GEN_PID=
cleanup() {
    [[ -n $GEN_PID ]] && stop_gen
    [[ -n $SW_PID ]] && kill "$SW_PID" 2>/dev/null && wait "$SW_PID" 2>/dev/null || true
    ip link del "$BR" 2>/dev/null || true
    ip link del "$HA" 2>/dev/null || true
    ip link del "$HB" 2>/dev/null || true
    ip netns del "$NA" 2>/dev/null || true
    ip netns del "$NB" 2>/dev/null || true
    rm -rf "$SCRATCH"
}
trap cleanup EXIT

ip netns add "$NA"; ip netns add "$NB"
ip link add "$HA" type veth peer name "$PA" netns "$NA"
ip link add "$HB" type veth peer name "$PB" netns "$NB"
for l in "$HA" "$HB"; do ip link set "$l" up; done
ip netns exec "$NA" ip link set "$PA" up
ip netns exec "$NB" ip link set "$PB" up
MAC_B=$(ip netns exec "$NB" cat "/sys/class/net/$PB/address")

# 64-byte frames (60 + FCS): to B's MAC, a local-experimental ethertype.
cat > "$SCRATCH/frame.cfg" <<CFG
{ $(echo "$MAC_B" | sed 's/\([0-9a-f][0-9a-f]\)/0x\1/g; s/:/, /g'), 0x02, 0x00, 0x5e, 0x00, 0x00, 0x01, 0x88, 0xb5, fill(0x00, 46) }
CFG

rx_b() { ip netns exec "$NB" cat "/sys/class/net/$PB/statistics/rx_packets"; }
tx_a() { ip netns exec "$NA" cat "/sys/class/net/$PA/statistics/tx_packets"; }

# trafgen ignores SIGTERM while the CPU is saturated: SIGINT, then SIGKILL.
stop_gen() {
    kill -INT "$GEN_PID" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$GEN_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$GEN_PID" 2>/dev/null || true
    wait "$GEN_PID" 2>/dev/null || true
    GEN_PID=
}

# Runs the generator for WARMUP+SECS; sets FWD (forwarded pps) and OFF (offered pps).
measure() {
    ip netns exec "$NA" taskset -c 0 trafgen --dev "$PA" --conf "$SCRATCH/frame.cfg" \
        --cpus 1 --num 0 >/dev/null 2>&1 &
    GEN_PID=$!
    sleep "$WARMUP"
    local r0 t0 r1 t1
    r0=$(rx_b); t0=$(tx_a)
    sleep "$SECS"
    r1=$(rx_b); t1=$(tx_a)
    stop_gen
    FWD=$(( (r1 - r0) / SECS )) OFF=$(( (t1 - t0) / SECS ))
}

run_vswitchd() {
    cat > "$SCRATCH/vswitch.toml" <<CFG
[switch]
pmd_cores = [1]

[[port]]
name = "up-a"
type = "afxdp"
interface = "$HA"

[[port]]
name = "up-b"
type = "afxdp"
interface = "$HB"

[[flow]]
priority = 100
match = { in_port = "up-a" }
actions = ["output:up-b"]
CFG
    : >"$SCRATCH/vswitchd.log"
    taskset -c 0 "$VSWITCHD" --config "$SCRATCH/vswitch.toml" --api-listen off \
        --state-dir "$SCRATCH/state" >"$SCRATCH/vswitchd.log" 2>&1 &
    SW_PID=$!
    for _ in $(seq 100); do grep -q "vswitchd running" "$SCRATCH/vswitchd.log" && break; sleep 0.1; done
    grep -q "vswitchd running" "$SCRATCH/vswitchd.log" || die "vswitchd did not start: $(cat "$SCRATCH/vswitchd.log")"
    measure
    kill "$SW_PID"; wait "$SW_PID" 2>/dev/null || true
    SW_PID=
    # Where the frames that did not make it went (the switch's own drop counters).
    grep -E "drop totals|kernel socket totals" "$SCRATCH/vswitchd.log" | sed 's/^.*INFO [^ ]* //' >&2 || true
}

run_bridge() {
    ip link add "$BR" type bridge
    ip link set "$HA" master "$BR"; ip link set "$HB" master "$BR"
    ip link set "$BR" up
    measure
    ip link del "$BR"
}

log "window ${SECS}s after ${WARMUP}s warmup, $REPEAT rounds; generator on CPU 0, vswitchd PMD on CPU 1"
printf '%-6s %14s %14s %14s %14s %8s\n' round vswitchd_pps offered_pps bridge_pps offered_pps ratio
for r in $(seq "$REPEAT"); do
    v=0 vo=0 b=0 bo=0
    if [[ " $ONLY " == *" vswitchd "* ]]; then run_vswitchd; v=$FWD vo=$OFF; fi
    if [[ " $ONLY " == *" bridge "* ]]; then run_bridge; b=$FWD bo=$OFF; fi
    printf '%-6s %14s %14s %14s %14s %8s\n' "$r" "$v" "$vo" "$b" "$bo" \
        "$(awk -v v="$v" -v b="$b" 'BEGIN { printf "%.2f", (b > 0 ? v / b : 0) }')"
done
