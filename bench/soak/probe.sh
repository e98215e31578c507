#!/usr/bin/env bash
# Which operation makes vswitchd's memory grow? Companion of soak.sh (see README.md): starts
# a vswitchd of its own (no traffic, PMD on CPU PMD_CPU, API on a unix socket), repeats ONE
# kind of operation N times after WARM repetitions, and prints RssAnon / VmRSS / fds / threads /
# maps before and after, and the growth per operation. Everything it starts is stopped by PID;
# its scratch dir is removed.
#
# Usage (root): bench/soak/probe.sh OP [N] [WARM]
#   OP: flow        POST + DELETE one flow (in_port=a, ip_dst=198.19.x.y/32 -> drop)
#       port        POST + DELETE one vhost-user server port, never attached
#       port-client POST + DELETE one vhost-user client port (nobody listens)
#       port-flow   POST port, POST flow in_port=a ... -> output:port, DELETE both
#       guest       a testpmd virtio-user attaches to port g (kept), sends ~0.3 s, quits
#       stats       GET /v1/stats and GET /v1/ports (a reader only)
# Environment: PMD_CPU=0 (CPU 1 belongs to a running soak's PMD), CARGO_TARGET_DIR,
#              HEAPTRACK=FILE: run vswitchd under heaptrack (Debian's heaptrack), its data to
#              FILE.zst. vswitchd is then stopped with SIGKILL, so that what heaptrack reports
#              as "leaked" is everything live after the N operations: compare two runs with
#              `heaptrack_print -f BIG.zst -d SMALL.zst -l 1 -p 0 -a 0 -T 0 -n 20` (the
#              allocation sites whose live memory grows with N).
set -euo pipefail
OP=${1:?usage: probe.sh flow|port|port-client|port-flow|guest|stats [N] [WARM]}
N=${2:-200}
WARM=${3:-20}
PMD_CPU=${PMD_CPU:-0}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
VSWITCHD=${CARGO_TARGET_DIR:-$REPO/target}/release/vswitchd
[[ -x $VSWITCHD ]] || { echo "build vswitchd first (cargo build --release -p api)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/vswitch-probe.XXXXXX)
SOCK=$WORK/sock API=$WORK/api.sock PREFIX=probe$$
mkdir -p "$SOCK" "$WORK/state"
PIDS=()
stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local p
    for p in "${PIDS[@]}"; do stop_pid "$p"; done
    [[ -n $WRAPPER ]] && { for ((i = 0; i < 300; i++)); do kill -0 "$WRAPPER" 2>/dev/null || break; sleep 0.1; done; stop_pid "$WRAPPER"; }
    rm -rf "$WORK" "/var/run/dpdk/$PREFIX"
}
trap cleanup EXIT
WRAPPER=""
trap 'exit 130' INT TERM

cat >"$WORK/vswitch.toml" <<EOF
[switch]
socket_dir = "$SOCK"
pmd_cores = [$PMD_CPU]

[[port]]
name = "a"
type = "vhost-user"
socket = "$SOCK/a.sock"

[[port]]
name = "g"
type = "vhost-user"
socket = "$SOCK/g.sock"

[[flow]]
match = { in_port = "g" }
actions = ["drop"]
EOF
WRAP=()
[[ -n ${HEAPTRACK:-} ]] && WRAP=(heaptrack -o "$HEAPTRACK")
RUST_LOG=warn "${WRAP[@]}" "$VSWITCHD" --config "$WORK/vswitch.toml" --state-dir "$WORK/state" \
    --api-listen off --api-socket "$API" >"$WORK/vswitchd.log" 2>&1 &
VS=$!
for ((i = 0; i < 300; i++)); do [[ -S $API ]] && break; sleep 0.1; done
if [[ -n ${HEAPTRACK:-} ]]; then  # the wrapper's child is vswitchd; stop that, the wrapper follows
    WRAPPER=$VS
    VS=$(ps --ppid "$WRAPPER" -o pid=,comm= | awk '$2 == "vswitchd" {print $1}')
    [[ -n $VS ]] || { echo "no vswitchd under heaptrack" >&2; kill -TERM "$WRAPPER"; exit 1; }
fi
PIDS+=("$VS")
TOKEN=$(cat "$WORK/state/api-token")
for t in /proc/"$VS"/task/*; do
    [[ $(cat "$t/comm") == pmd* ]] || taskset -p -c 0 "${t##*/}" >/dev/null 2>&1 || true
done
api() {              # api METHOD PATH [JSON]: prints the body
    local data=()
    [[ -n ${3:-} ]] && data=(--data "$3")
    curl -sf --max-time 20 --unix-socket "$API" -X "$1" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' "${data[@]}" "http://vswitchd$2"
}
figures() {
    awk '/^RssAnon:/ {a=$2} /^VmRSS:/ {r=$2} /^Threads:/ {t=$2} END {printf "%d %d %d", a, r, t}' "/proc/$VS/status"
    echo " $(ls "/proc/$VS/fd" | wc -l) $(wc -l <"/proc/$VS/maps")"
}

SEQ=0
one() {
    SEQ=$((SEQ + 1))
    local x=$((SEQ % 250 + 1)) y=$((SEQ / 250 % 250 + 1)) id
    case $OP in
        flow)
            id=$(api POST /v1/flows "{\"priority\":40000,\"match\":{\"in_port\":\"a\",\"eth_type\":\"0x0800\",\"ip_dst\":\"198.19.$y.$x/32\"},\"actions\":[\"drop\"]}" | jq .id)
            api DELETE "/v1/flows/$id" ;;
        port)
            api POST /v1/ports "{\"name\":\"p$SEQ\",\"type\":\"vhost-user\",\"socket\":\"$SOCK/p$SEQ.sock\"}" >/dev/null
            api DELETE "/v1/ports/p$SEQ" ;;
        port-client)
            api POST /v1/ports "{\"name\":\"p$SEQ\",\"type\":\"vhost-user\",\"socket\":\"$SOCK/p$SEQ.sock\",\"mode\":\"client\"}" >/dev/null
            api DELETE "/v1/ports/p$SEQ" ;;
        port-flow)
            api POST /v1/ports "{\"name\":\"p$SEQ\",\"type\":\"vhost-user\",\"socket\":\"$SOCK/p$SEQ.sock\"}" >/dev/null
            id=$(api POST /v1/flows "{\"priority\":40000,\"match\":{\"in_port\":\"a\",\"eth_type\":\"0x0800\",\"ip_dst\":\"198.19.$y.$x/32\"},\"actions\":[\"output:p$SEQ\"]}" | jq .id)
            api DELETE "/v1/flows/$id"
            api DELETE "/v1/ports/p$SEQ" ;;
        guest)
            rm -f "$WORK/g.in"; mkfifo "$WORK/g.in"
            stdbuf -oL dpdk-testpmd --lcores 0@0,1@0 --main-lcore 0 -n 1 --no-pci --single-file-segments \
                --iova-mode=va --no-huge -m 64 --file-prefix="$PREFIX" \
                --vdev "net_virtio_user0,path=$SOCK/g.sock,queues=1" \
                -- -i --nb-cores=1 --forward-mode=txonly --total-num-mbufs=2048 <"$WORK/g.in" >"$WORK/g.log" 2>&1 &
            local gp=$! fd i
            PIDS+=("$gp")
            exec {fd}>"$WORK/g.in"
            for ((i = 0; i < 200; i++)); do grep -q "^Done" "$WORK/g.log" && break; sleep 0.05; done
            echo start >&"$fd"; sleep 0.3; echo stop >&"$fd"; sleep 0.2; echo quit >&"$fd"
            exec {fd}>&-
            for ((i = 0; i < 100; i++)); do kill -0 "$gp" 2>/dev/null || break; sleep 0.1; done
            stop_pid "$gp"
            PIDS=("$VS")
            for ((i = 0; i < 100; i++)); do [[ $(api GET /v1/ports/g | jq .connected) == false ]] && break; sleep 0.1; done ;;
        stats)
            api GET /v1/stats >/dev/null; api GET /v1/ports >/dev/null ;;
        *) echo "unknown OP $OP" >&2; exit 2 ;;
    esac
}

for ((k = 0; k < WARM; k++)); do one; done
sleep 1
read -r a0 r0 t0 f0 m0 <<<"$(figures)"
T0=$EPOCHREALTIME
for ((k = 0; k < N; k++)); do one; done
sleep 1
read -r a1 r1 t1 f1 m1 <<<"$(figures)"
if [[ -n ${HEAPTRACK:-} ]]; then kill -KILL "$VS"; wait "$WRAPPER" 2>/dev/null || true; PIDS=(); WRAPPER=""; fi
printf '%-12s N=%-5d %6.1fs  RssAnon %d -> %d kB (%+d, %.2f kB/op)  VmRSS %d -> %d  threads %d -> %d  fds %d -> %d  maps %d -> %d\n' \
    "$OP" "$N" "$(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN {print b - a}')" "$a0" "$a1" $((a1 - a0)) \
    "$(awk -v d=$((a1 - a0)) -v n="$N" 'BEGIN {print d / n}')" "$r0" "$r1" "$t0" "$t1" "$f0" "$f1" "$m0" "$m1"
