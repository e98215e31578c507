#!/usr/bin/env bash
# Wake-up latency and control under load (issue 12), measured with bench/examples/vhost_probe.rs:
# one process attached to two vhost-user ports of vswitchd as two poll-mode guests (the
# test driver of ports::vhost::test_utils), sending into port p0 and timing arrivals on p1
# (rule in_port=p0 -> output:p1; vswitchd's PMD alone on CPU 1, the probe on CPU 0).
#
#   floor   no switch: a thread on CPU 1 sleeping in epoll_wait on an eventfd, woken from
#           CPU 0: what waking any sleeping thread costs on this machine (the floor)
#   wakeup  vswitchd with its default pmd_sleep_after_us: one frame after each 1 ms pause
#           (the PMD is asleep), time from the guest's kick to the frame in the other guest
#   busy    the same with pmd_sleep_after_us = 0 (the PMD never sleeps): forwarding latency
#           without the wake-up
#   alt     `wakeup` with the binary VSWITCHD_ALT (A/B of two builds in one run); gaps-alt:
#           `gaps` with that binary
#   gaps    a steady 64 B stream at PPS frames/s for GAP_SECS; after 2 s, 100,000 rules go in
#           through `POST /v1/flows/bulk`: the longest gap between arrivals and the worst
#           latency, next to the same run without the install (gaps-base)
#
# Rounds interleave the cases (the host's speed changes over seconds). Prints one line per
# run and a summary with the medians over the rounds. Nothing is asserted.
#
# Usage (root): bench/e2e/latency.sh
# Environment:  ROUNDS=3  COUNT=1000 (wake-ups per run)  IDLE_US=1000 (pause before each)
#               CASES="floor wakeup busy gaps-base gaps" (add "alt" with VSWITCHD_ALT=path)
#               PPS=200000  GAP_SECS=6  RULES_N=100000  PACKED=0|1 (the probe asks for the
#               packed ring and the switch offers it)  VSWITCHD=path  KEEP_WORK=1
set -euo pipefail

ROUNDS=${ROUNDS:-3}
COUNT=${COUNT:-1000}
IDLE_US=${IDLE_US:-1000}
CASES=${CASES:-"floor wakeup busy gaps-base gaps"}
PPS=${PPS:-200000}
GAP_SECS=${GAP_SECS:-6}
RULES_N=${RULES_N:-100000}
PACKED=${PACKED:-0}
GUEST_CPU=0
SWITCH_CPU=1

REPO=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
VSWITCHD=${VSWITCHD:-$TARGET/release/vswitchd}
PROBE=$TARGET/release/examples/vhost_probe

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[[ $(id -u) -eq 0 ]] || die "run as root (CPU pinning)"
(( $(nproc) >= 2 )) || die "needs 2 CPUs"
[[ $PACKED == 0 || $PACKED == 1 ]] || die "PACKED must be 0 or 1"
((RULES_N >= 1 && RULES_N <= 131072)) || die "RULES_N must be 1..131072 (one /32 each in 198.18.0.0/15)"
command -v curl >/dev/null || die "needs curl"
if [[ " $CASES " == *" alt "* || " $CASES " == *" gaps-alt "* ]]; then [[ -x ${VSWITCHD_ALT:-} ]] || die "case alt needs VSWITCHD_ALT=<binary>"; fi

log "building vswitchd and the probe (release)"
(cd "$REPO" && nice -n 10 cargo build --release --locked -q -p api --bin vswitchd &&
    nice -n 10 cargo build --release --locked -q -p bench --example vhost_probe) || die "cargo build failed"

# This script and everything it starts stay off the PMD's CPU (vswitchd gets both CPUs back:
# it refuses PMD cores outside its affinity, and keeps its own other threads off them).
taskset -p -c "$GUEST_CPU" $$ >/dev/null

WORK=$(mktemp -d /tmp/vswitch-latency.XXXXXX)
SW_PID= PROBE_PID=
stop_pid() { # stop_pid PID: TERM, then KILL after 10 s
    local pid=$1 i
    kill "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    [[ -n $PROBE_PID ]] && stop_pid "$PROBE_PID"
    [[ -n $SW_PID ]] && stop_pid "$SW_PID"
    if [[ -n ${KEEP_WORK:-} ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# The bulk body: RULES_N /32 rules on p1's side (the stream goes p0 -> p1, so these never
# match it, but they change p0's lookup: its frames no longer decide by port alone).
awk -v n="$RULES_N" 'BEGIN {
    printf "{\"flows\": ["
    for (i = 0; i < n; i++) {
        printf "%s{\"priority\": 50, \"match\": {\"in_port\": \"p1\", \"eth_type\": \"0x0800\", \"ip_dst\": \"198.%d.%d.%d\"}, \"actions\": [\"output:p0\"]}",
            (i ? ", " : ""), 18 + int(i / 65536), int(i / 256) % 256, i % 256
    }
    printf "]}\n"
}' >"$WORK/bulk.json"

# start_switch DIR SLEEP_US|"" [BINARY]: vswitchd with p0, p1 (server sockets in DIR) and the
# rule p0 -> p1; its threads but the PMD moved to the probe's CPU. Sets SW_PID.
start_switch() {
    local d=$1 sleep_us=$2 bin=${3:-$VSWITCHD} t i
    mkdir -p "$d"
    {
        echo "[switch]"
        echo "pmd_cores = [$SWITCH_CPU]"
        echo "socket_dir = \"$d\""
        [[ -n $sleep_us ]] && echo "pmd_sleep_after_us = $sleep_us"
        ((PACKED)) && echo "packed_ring = true"
        for p in p0 p1; do
            printf '\n[[port]]\nname = "%s"\ntype = "vhost-user"\nsocket = "%s/%s.sock"\n' "$p" "$d" "$p"
        done
        printf '\n[[flow]]\nmatch = { in_port = "p0" }\nactions = ["output:p1"]\n'
    } >"$d/vswitch.toml"
    RUST_LOG=info taskset -c "$GUEST_CPU,$SWITCH_CPU" "$bin" --config "$d/vswitch.toml" --api-listen off --api-socket "$d/api.sock" \
        --no-auth >"$d/vswitchd.log" 2>&1 &
    SW_PID=$!
    for ((i = 0; i < 200; i++)); do
        grep -q "vswitchd running" "$d/vswitchd.log" 2>/dev/null && break
        kill -0 "$SW_PID" 2>/dev/null || die "vswitchd exited: $(tail -3 "$d/vswitchd.log")"
        sleep 0.1
    done
    grep -q "vswitchd running" "$d/vswitchd.log" || die "vswitchd did not start: $(tail -3 "$d/vswitchd.log")"
    for t in /proc/"$SW_PID"/task/*; do
        [[ $(cat "$t/comm" 2>/dev/null) == pmd* ]] && continue
        taskset -p -c "$GUEST_CPU" "${t##*/}" >/dev/null 2>&1 || true
    done
}
stop_switch() { stop_pid "$SW_PID"; SW_PID=; }

metrics() { curl -s --unix-socket "$1/api.sock" http://localhost/metrics || true; }

# longest_iteration BEFORE AFTER: from two scrapes of vswitch_pmd_iteration_seconds (PMD 0),
# the bound of the highest bucket that gained iterations in between (the PMD's longest
# iteration was shorter than that) and how many iterations took over 1 ms (2^20 ns).
longest_iteration() {
    awk '
        FNR == 1 { file++ }
        /^vswitch_pmd_iteration_seconds_bucket\{pmd="0",le="/ {
            le = $0; sub(/.*le="/, "", le); sub(/".*/, "", le)
            n[file, le] = $NF
            if (file == 1) order[++k] = le
        }
        END {
            if (k == 0) { printf "pmd_longest_iteration_under_us=- pmd_iterations_over_1ms=-"; exit }
            longest = "-"; prev = 0
            for (i = 1; i <= k; i++) {
                d = n[2, order[i]] - n[1, order[i]]
                if (d > prev) longest = order[i]
                if (order[i] == "0.001048576") under1ms = d
                prev = d
            }
            total = n[2, order[k]] - n[1, order[k]]
            printf "pmd_longest_iteration_under_us=%s pmd_iterations_over_1ms=%d",
                (longest == "+Inf" ? "inf" : sprintf("%.0f", longest * 1e6)), total - under1ms
        }' "$1" "$2"
}

# cpu_taken: "PREEMPTIONS STEAL": the PMD thread's involuntary context switches (something
# else ran on its CPU) and CPU 1's steal time in ticks (the hypervisor ran something else).
cpu_taken() {
    local t n=0
    for t in /proc/"$SW_PID"/task/*; do
        [[ $(cat "$t/comm" 2>/dev/null) == pmd* ]] || continue
        n=$(awk '/^nonvoluntary_ctxt_switches/ { print $2 }' "$t/status")
    done
    echo "$n $(awk -v c="cpu$SWITCH_CPU" '$1 == c { print $9 }' /proc/stat)"
}

probe() { # probe ARGS...: the probe on the guest CPU; its output on stdout
    local extra=()
    ((PACKED)) && extra=(--packed)
    taskset -c "$GUEST_CPU" "$PROBE" "$@" "${extra[@]}"
}

# One run of CASE in round R; prints "CASE R key=value..." on stdout.
run_case() {
    local c=$1 r=$2 d=$WORK/r$2-$1 out=
    case $c in
        floor) out=$(taskset -c "$GUEST_CPU" "$PROBE" floor --cpu "$SWITCH_CPU" --count "$COUNT" --idle-us "$IDLE_US" | tail -1) ;;
        wakeup | busy | alt)
            local sleep_us="" bin=$VSWITCHD
            [[ $c == busy ]] && sleep_us=0
            [[ $c == alt ]] && bin=$VSWITCHD_ALT
            start_switch "$d" "$sleep_us" "$bin"
            out=$(probe wakeup --tx "$d/p0.sock" --rx "$d/p1.sock" --count "$COUNT" --idle-us "$IDLE_US" | tail -1)
            stop_switch ;;
        gaps | gaps-base | gaps-alt)
            local bin=$VSWITCHD
            [[ $c == gaps-alt ]] && bin=$VSWITCHD_ALT
            start_switch "$d" "" "$bin"
            metrics "$d" >"$d/metrics.before"
            local cpu0 cpu1
            cpu0=$(cpu_taken)
            probe gaps --tx "$d/p0.sock" --rx "$d/p1.sock" --pps "$PPS" --secs "$GAP_SECS" >"$d/probe.out" &
            PROBE_PID=$!
            sleep 2
            if [[ $c != gaps-base ]]; then
                local t0 t1 code
                t0=$(date +%s%N)
                code=$(taskset -c "$GUEST_CPU" curl -s -o "$d/bulk.reply" -w '%{http_code}' --unix-socket "$d/api.sock" \
                    -H 'Content-Type: application/json' --data-binary @"$WORK/bulk.json" \
                    http://localhost/v1/flows/bulk) || code=000
                t1=$(date +%s%N)
                [[ $code == 201 ]] || log "bulk install answered $code: $(head -c 300 "$d/bulk.reply")"
                out="install_ms=$(((t1 - t0) / 1000000)) "
            fi
            wait "$PROBE_PID" || log "probe failed"
            PROBE_PID=
            metrics "$d" >"$d/metrics.after"
            cpu1=$(cpu_taken)
            out+="$(longest_iteration "$d/metrics.before" "$d/metrics.after") "
            out+="pmd_preempted=$((${cpu1% *} - ${cpu0% *})) cpu1_steal_ms=$(((${cpu1#* } - ${cpu0#* }) * 10)) "
            out+=$(tail -2 "$d/probe.out" | tr '\n' ' ')
            stop_switch ;;
        *) die "unknown case $c" ;;
    esac
    echo "$c $r $out"
}

log "cases: $CASES; $ROUNDS rounds; ring: $( ((PACKED)) && echo packed || echo split)"
RESULTS=$WORK/results
for ((r = 1; r <= ROUNDS; r++)); do
    for c in $CASES; do
        line=$(run_case "$c" "$r")
        log "$line"
        echo "$line" >>"$RESULTS"
    done
done

# Medians over the rounds of each case's keys.
echo
echo "Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc --all) CPUs, kernel $(uname -r);" \
    "cpuidle $(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo '?')"
echo "Medians over $ROUNDS rounds (us unless named):"
for c in $CASES; do
    awk -v c="$c" '
        $1 == c { for (i = 3; i <= NF; i++) if (split($i, kv, "=") == 2 && kv[2] ~ /^[0-9.]+$/) { v[kv[1]] = v[kv[1]] " " kv[2]; if (!(kv[1] in seen)) { seen[kv[1]] = 1; order[++n] = kv[1] } } }
        END {
            line = c ":"
            for (k = 1; k <= n; k++) {
                m = split(substr(v[order[k]], 2), a, " ")
                for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
                line = line " " order[k] "=" (m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2)
            }
            print line
        }' "$RESULTS"
done
