#!/usr/bin/env bash
# End-to-end vhost-user loop benchmark (issue 3): the same DPDK testpmd "guest" (two
# virtio-user ports, io forwarding, `start tx_first 32`, 64-byte frames) runs against, in turn,
#   (a) vswitchd (our switch; PMD alone on CPU 1), with the default pmd_sleep_after_us and
#       with pmd_sleep_after_us = 0 (busy-poll),
#   (b) DPDK's own vhost library as the "switch": testpmd with two net_vhost ports, io
#       forwarding, forwarding lcore on CPU 1,
#   (c) OVS-DPDK 3.1 (Debian's openvswitch-switch-dpdk), one PMD on CPU 1,
# and prints Mpps per direction (Rx-pps of guest port 0 and port 1), the total, and the ratio
# to OVS-DPDK and to DPDK vhost measured in the same run. See bench/e2e/README.md.
#
# Usage (root): bench/e2e/vhost-loop.sh [SECONDS]      (default 10 s of measurement per switch)
# Environment:  WARMUP=3 (s before measuring)  SAMPLES=5 (show-port-stats samples per window)
#               REPEAT=3 (rounds over all switches, interleaved; the table shows the mean,
#               the per-round totals and each round's own ratios)
#               ONLY="vswitchd vswitchd-busy dpdk-vhost ovs-dpdk" (subset, in that order);
#               also "vswitchd-alt": the vswitchd binary named by VSWITCHD_ALT (A/B of two builds
#               in one run, e.g. a copy of target/release/vswitchd from before a change)
#               KEEP_HUGEPAGES=1 (leave nr_hugepages as set instead of restoring it)
#               RULES=port (default: `in_port=X -> output:Y`, which both switches decide by the
#               in-port alone) or RULES=l3 (`in_port=X, ip, ip_dst=198.18.0.0/15 -> output:Y`:
#               every frame goes through the exact-match cache of both switches) or RULES=wild
#               (`in_port=X, ip, ip_dst=10.0.0.0/7 -> output:Y`: the one wildcard rule per
#               direction that covers every address testpmd's flowgen sends to; default with FLOWS)
#               SIZE=64 (frame length in bytes as the guest writes it: testpmd `set txpkts SIZE`)
#               PACKED=1 (the guest asks for the packed ring: `packed_vq=1` on its virtio-user
#               ports; each run reports the ring the guest and the switch actually negotiated)
#               FLOWS=N (the guest runs `--forward-mode=flowgen --flowgen-flows=N` instead of the
#               io loop: both ports send N flows, 10.254.0.0 -> 10.253.0.0 + i, as fast as the
#               guest core can, and count what arrives from the other port)
#               RESULTS_TSV=FILE (append one tab-separated line per switch and round, for
#               bench/e2e/run-all.sh; CASE=NAME fills its first column)
#               VSWITCHD=PATH (default $CARGO_TARGET_DIR/release/vswitchd, or target/release/)
#               KEEP_WORK=1 (keep the scratch directory with every log instead of removing it)
set -euo pipefail

SECONDS_MEASURE=${1:-10}
WARMUP=${WARMUP:-3}
SAMPLES=${SAMPLES:-5}
REPEAT=${REPEAT:-3}
ONLY=${ONLY:-"vswitchd vswitchd-busy dpdk-vhost ovs-dpdk"}
FLOWS=${FLOWS:-}
SIZE=${SIZE:-64}
PACKED=${PACKED:-0}
CASE=${CASE:-}
RESULTS_TSV=${RESULTS_TSV:-}
if [[ -n $FLOWS ]]; then RULES=${RULES:-wild}; else RULES=${RULES:-port}; fi
case $RULES in
    # testpmd's io-loop frames (txonly, sent by tx_first) go from 198.18.0.1 to 198.18.0.2 (UDP).
    port) VS_MATCH="" OVS_MATCH="" ;;
    l3) VS_MATCH=', eth_type = "0x0800", ip_dst = "198.18.0.0/15"' OVS_MATCH=",ip,nw_dst=198.18.0.0/15" ;;
    # flowgen's frames go from 10.254.0.0 to 10.253.0.0 + flow (testpmd's fixed addresses,
    # only ever in the two processes' shared memory); past 196,608 flows the destination runs
    # on into 11.0.0.0/8, so the one rule per direction is 10.0.0.0/7 (good for 25 million flows).
    wild) VS_MATCH=', eth_type = "0x0800", ip_dst = "10.0.0.0/7"' OVS_MATCH=",ip,nw_dst=10.0.0.0/7" ;;
    *) echo "RULES must be port, l3 or wild" >&2; exit 1 ;;
esac
[[ -z $FLOWS || $FLOWS =~ ^[1-9][0-9]*$ ]] || { echo "FLOWS must be a positive integer" >&2; exit 1; }
if ! [[ $SIZE =~ ^[0-9]+$ ]] || ((SIZE < 64 || SIZE > 2000)); then echo "SIZE must be 64..2000" >&2; exit 1; fi
[[ $PACKED == 0 || $PACKED == 1 ]] || { echo "PACKED must be 0 or 1" >&2; exit 1; }
GUEST_VDEV_EXTRA=""
((PACKED)) && GUEST_VDEV_EXTRA=",packed_vq=1"
if [[ -n $FLOWS ]]; then
    GUEST_MODE=(--forward-mode=flowgen "--flowgen-flows=$FLOWS") GUEST_START="start" GUEST_FWD=flowgen
    TXPKTS=$((SIZE + 4))
else
    GUEST_MODE=(--forward-mode=io) GUEST_START="start tx_first 32" GUEST_FWD=io
    TXPKTS=$SIZE
fi
HUGEPAGES_WANTED=1024
GUEST_CPU=0
SWITCH_CPU=1
REPO=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=bench/e2e/lib.sh
source "$REPO/bench/e2e/lib.sh"
VSWITCHD_GIVEN=${VSWITCHD:+1}
VSWITCHD=${VSWITCHD:-${CARGO_TARGET_DIR:-$REPO/target}/release/vswitchd}


[[ $(id -u) -eq 0 ]] || die "run as root (hugepages, packages, DPDK)"
[[ $SECONDS_MEASURE =~ ^[0-9]+$ && $SECONDS_MEASURE -ge 2 ]] || die "SECONDS must be an integer >= 2"
(( $(nproc) >= 2 )) || die "needs 2 CPUs (guest on CPU $GUEST_CPU, switch PMD on CPU $SWITCH_CPU)"

# ---------------------------------------------------------------- packages and build
install_missing dpdk-dev coreutils util-linux procps curl
OVS_OK=0 OVS_WHY="not asked for"
[[ " $ONLY " == *" ovs-dpdk "* ]] && ovs_install
[[ " $ONLY " == *" vswitchd"* && -z $VSWITCHD_GIVEN ]] && build_vswitchd

# The host-state probe (bench/examples/vhost_probe.rs, mode c2c): the time of one cache-line
# transfer between the two CPUs, read before and after each run. This host switches between
# ~30 ns and ~150 ns for seconds at a time, and every rate here follows; the rows carry it.
PROBE=${CARGO_TARGET_DIR:-$REPO/target}/release/examples/vhost_probe
if [[ ! -x $PROBE ]] || [[ -n $(find "$REPO"/bench/examples "$REPO"/ports/src -newer "$PROBE" -print -quit 2>/dev/null) ]]; then
    (cd "$REPO" && nice -n 10 cargo build --release -p bench --example vhost_probe --locked -q) ||
        log "could not build the c2c probe: runs carry no host state"
fi
c2c_ns() {
    local v=""
    [[ -x $PROBE ]] && v=$("$PROBE" c2c --cpu "$SWITCH_CPU" --count 1000 2>/dev/null |
        sed -n 's/.*transfer_ns=\([0-9]*\).*/\1/p')
    echo "${v:--}"
}

# ---------------------------------------------------------------- scratch state and cleanup
WORK=$(mktemp -d /run/vswitch-e2e.XXXXXX)
TAG=e2e$$
PIDS=()              # every process we started and have not reaped yet
HP_ORIG=$(cat /proc/sys/vm/nr_hugepages)
HP_MOUNTED=0

cleanup() {
    local rc=$?
    set +e
    stop_all
    [[ -n ${GUEST_FD:-} ]] && { exec {GUEST_FD}>&-; } 2>/dev/null
    [[ -n ${SWITCH_FD:-} ]] && { exec {SWITCH_FD}>&-; } 2>/dev/null
    dpdk_leftovers
    if [[ -n ${KEEP_WORK:-} ]]; then log "kept $WORK (KEEP_WORK)"; else rm -rf "$WORK"; fi
    if [[ -z ${KEEP_HUGEPAGES:-} && $(cat /proc/sys/vm/nr_hugepages) != "$HP_ORIG" ]]; then
        echo "$HP_ORIG" >/proc/sys/vm/nr_hugepages
    fi
    ((HP_MOUNTED)) && umount /dev/hugepages
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- hugepages
mount_hugepages
if ((HP_ORIG < HUGEPAGES_WANTED)); then
    echo "$HUGEPAGES_WANTED" >/proc/sys/vm/nr_hugepages
fi
HP_FREE=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
# Guest 512 MB + switch 512 MB (testpmd -m 512, OVS dpdk-socket-mem=512) = 512 pages of 2 MB.
((HP_FREE >= 520)) || die "only $HP_FREE free 2 MB hugepages (need 520); free memory or raise nr_hugepages"
log "hugepages: nr=$(cat /proc/sys/vm/nr_hugepages) (was $HP_ORIG) free=$HP_FREE; work dir $WORK"

# ---------------------------------------------------------------- helpers
cpu_busy() {         # non-idle jiffies of CPUs 0 and 1 summed, and their steal, from /proc/stat
    awk '/^cpu[01] / {for (i = 2; i <= NF; i++) t += $i; idle += $5 + $6; st += $9} END {print t - idle, st}' /proc/stat
}
threads_on() {       # busy threads of PID with the CPU they last ran on: "name@cpu ..."
    ps -L -o comm=,psr=,pcpu= -p "$1" 2>/dev/null |
        awk '$3 > 20 {printf "%s@cpu%s ", $1, $2}'
}

DPDK_COMMON=(-n 1 --no-pci --single-file-segments --iova-mode=va -m 512)

# start_testpmd NAME LCORES LOG FIFO ARGS...: testpmd driven through a FIFO on stdin,
# line-buffered stdout to LOG. Sets LAST_PID; the caller opens the FIFO for writing.
start_testpmd() {
    local name=$1 lcores=$2 logf=$3 fifo=$4
    shift 4
    mkfifo "$fifo"
    stdbuf -oL -eL dpdk-testpmd --lcores "$lcores" --main-lcore 0 "${DPDK_COMMON[@]}" \
        --file-prefix="$TAG-$name" "$@" <"$fifo" >"$logf" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# The guest: identical for every switch. Server-mode backends own the sockets.
# measure_guest LABEL SOCK0 SOCK1 SWITCH_PID: sets RESULT="port0_pps port1_pps peak_total_pps" ("" on failure;
# the peak is the best single sample interval, both directions summed).
# Runs in the calling shell (never in $(...)), so every PID it starts is known to cleanup.
measure_guest() {
    RESULT="" GUEST_FD="" GUEST_PID=""
    if measure_guest_inner "$@"; then :; else guest_stop; return 1; fi
}
guest_stop() {
    if [[ -n ${GUEST_FD:-} ]]; then { exec {GUEST_FD}>&-; } 2>/dev/null || true; fi
    GUEST_FD=""
    local i; for ((i = 0; i < 100; i++)); do kill -0 "$GUEST_PID" 2>/dev/null || break; sleep 0.1; done
    stop_pid "$GUEST_PID" 5
    forget_pid "$GUEST_PID"
}
measure_guest_inner() {
    local label=$1 s0=$2 s1=$3 swpid=$4 i n base st0 st1 busy0 busy1 sw0 sw1 gu0 gu1 t0 t1 f
    local glog=$WORK/r$ROUND-guest-$label.log
    # pmd.net.virtio.init at debug level prints each port's negotiated feature bits.
    start_testpmd "guest-$label" "0@$GUEST_CPU,1@$GUEST_CPU" "$glog" "$WORK/r$ROUND-guest-$label.in" \
        --log-level=pmd.net.virtio.init:debug \
        --vdev "net_virtio_user0,path=$s0,queues=1$GUEST_VDEV_EXTRA" \
        --vdev "net_virtio_user1,path=$s1,queues=1$GUEST_VDEV_EXTRA" \
        -- -i --nb-cores=1 "${GUEST_MODE[@]}" --total-num-mbufs=32768
    GUEST_PID=$LAST_PID
    exec {GUEST_FD}>"$WORK/r$ROUND-guest-$label.in"
    if ! wait_for "$glog" "^Done" 60 1 "$GUEST_PID"; then
        log "$label: guest testpmd did not come up$(running "$GUEST_PID" || echo " (it exited)"):"; tail -15 "$glog" >&2; return 1
    fi
    # (The virtio debug log prints device status bits such as "-FAILED: 0": not errors.)
    if grep -i "error\|fail" "$glog" | grep -v "promiscuous mode" | grep -vq -- "-FAILED: 0"; then
        log "$label: guest reported errors:"; grep -i "error\|fail" "$glog" | grep -v "promiscuous mode" | grep -v -- "-FAILED: 0" | tail -5 >&2
    fi
    # The ring each guest port runs: VIRTIO_F_RING_PACKED (bit 34) in the features the
    # frontend and the switch agreed on; "split,split" unless both sides did packed; with
    # "+in-order" when they agreed on VIRTIO_F_IN_ORDER (bit 35) too.
    RING=""
    while read -r f; do
        if (( (0x$f >> 34) & 1 )); then RING+="packed"; else RING+="split"; fi
        if (( (0x$f >> 35) & 1 )); then RING+="+in-order"; fi
        RING+=","
    done < <(grep -o "features after negotiate = [0-9a-fA-F]*" "$glog" | awk '{print $NF}')
    RING=${RING%,}; RING=${RING:-unknown}
    log "$label: guest rings (port0,port1): $RING"
    # txonly (tx_first's frames) sends txpkts bytes, flowgen txpkts - 4 (it leaves room for an FCS).
    echo "set txpkts $TXPKTS" >&"$GUEST_FD"
    echo "$GUEST_START" >&"$GUEST_FD"
    wait_for "$glog" "$GUEST_FWD packet forwarding" 10 || { log "$label: guest did not start forwarding"; tail -5 "$glog" >&2; return 1; }
    sleep "$WARMUP"
    # Rx-pps is the rate since the previous `show port stats`: a baseline, then SAMPLES equal
    # intervals; their mean is the rate over the whole window.
    base=$(grep -c "Rx-pps:" "$glog" || true)
    echo "show port stats all" >&"$GUEST_FD"
    wait_for "$glog" "Rx-pps:" 10 $((base + 2)) || { log "$label: no stats"; return 1; }
    read -r busy0 st0 < <(cpu_busy)
    sw0=$(proc_ticks "$swpid"); gu0=$(proc_ticks "$GUEST_PID")
    proc_ticks "$swpid" threads >"$WORK/sw-threads.0"; proc_ticks "$GUEST_PID" threads >"$WORK/gu-threads.0"
    [[ -n ${SNAPSHOT:-} ]] && $SNAPSHOT 0
    t0=$(date +%s.%N)
    for ((i = 1; i <= SAMPLES; i++)); do
        sleep "$(awk -v s="$SECONDS_MEASURE" -v n="$SAMPLES" 'BEGIN {printf "%.3f", s / n}')"
        echo "show port stats all" >&"$GUEST_FD"
        wait_for "$glog" "Rx-pps:" 10 $((base + 2 + 2 * i)) || { log "$label: no stats"; return 1; }
    done
    t1=$(date +%s.%N)
    [[ -n ${SNAPSHOT:-} ]] && $SNAPSHOT 1
    read -r busy1 st1 < <(cpu_busy)
    sw1=$(proc_ticks "$swpid"); gu1=$(proc_ticks "$GUEST_PID")
    proc_ticks "$swpid" threads >"$WORK/sw-threads.1"; proc_ticks "$GUEST_PID" threads >"$WORK/gu-threads.1"
    # Noise check, while everything still spins: the CPU share the busiest switch thread (its
    # PMD) and guest thread (its forwarding lcore) got over the window, and the CPU time of
    # everything else on the machine (other processes, kernel) in percent of one CPU.
    local hz; hz=$(getconf CLK_TCK)
    share() { LC_ALL=C join <(LC_ALL=C sort "$1") <(LC_ALL=C sort "$2") | awk -v hz="$hz" -v w="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" \
        '{d = $3 - $2; if (d > m) m = d} END {printf "%.0f%%", 100 * m / hz / w}'; }
    NOISE="pmd $(share "$WORK/sw-threads.0" "$WORK/sw-threads.1") guest-fwd $(share "$WORK/gu-threads.0" "$WORK/gu-threads.1") others $(awk -v b="$((busy1 - busy0 - (sw1 - sw0) - (gu1 - gu0)))" -v st="$((st1 - st0))" -v hz="$hz" -v a="$t0" -v c="$t1" 'BEGIN {w = (c - a) * hz; printf "%.0f%% (steal %.0f%%)", 100 * b / w, 100 * st / w}')"
    log "$label: placement: switch $(threads_on "$swpid")| guest $(threads_on "$GUEST_PID")"
    log "$label: CPU over the window: $NOISE"
    echo "stop" >&"$GUEST_FD"
    wait_for "$glog" "Done." 10 || true
    echo "quit" >&"$GUEST_FD"
    guest_stop
    # Samples after the baseline: port 0 and port 1 alternate.
    RESULT=$(grep "Rx-pps:" "$glog" | awk -v skip=$((base + 2)) -v lab="$label" '
        NR > skip { v = $2 + 0; if ((NR - skip) % 2 == 1) { p0 += v; n0++; s0 = s0 " " v; last = v }
                    else { p1 += v; n1++; s1 = s1 " " v; if (last + v > peak) peak = last + v } }
        END {
            if (n0 == 0 || n1 == 0) exit 1
            printf "%s samples port0:%s\n%s samples port1:%s\n", lab, s0, lab, s1 > "/dev/stderr"
            printf "%d %d %d\n", p0 / n0, p1 / n1, peak
        }') || RESULT=""
    # Bytes per frame the guest received (port stats; virtio carries no FCS).
    FRAME_BYTES=$(grep "RX-packets:.*RX-bytes:" "$glog" | awk '{p = $2; b = $6} END {if (p > 0) printf "%.0f", b / p; else print "?"}')
    [[ -n $RESULT ]]
}

# ---------------------------------------------------------------- the switches
# vswitchd's /metrics at the start (0) and end (1) of the measured window, into DIR.
vswitchd_metrics() { curl -s --unix-socket "$1/api.sock" http://localhost/metrics >"$1/metrics.$2" 2>/dev/null || true; }
# What PMD 0 did between two scrapes: frames per busy iteration (a burst is at most 32 per
# rx queue) and the share of iterations that found nothing.
pmd_window() {
    awk '
        FNR == 1 { f++ }
        /^vswitch_pmd_(rx_packets|busy_iterations|idle_iterations)_total\{pmd="0"\}/ {
            k = $1; sub(/\{.*/, "", k); v[f, k] = $NF
        }
        END {
            rx = v[2, "vswitch_pmd_rx_packets_total"] - v[1, "vswitch_pmd_rx_packets_total"]
            b = v[2, "vswitch_pmd_busy_iterations_total"] - v[1, "vswitch_pmd_busy_iterations_total"]
            i = v[2, "vswitch_pmd_idle_iterations_total"] - v[1, "vswitch_pmd_idle_iterations_total"]
            if (b <= 0) { print "no metrics"; exit }
            printf "%.1f frames per busy iteration, %.0f%% of %d iterations empty", rx / b, 100 * i / (b + i), b + i
        }' "$1" "$2" 2>/dev/null || echo "no metrics"
}

run_vswitchd() {     # run_vswitchd LABEL SLEEP_US|"" [BINARY]
    local label=$1 sleep_us=$2 bin=${3:-$VSWITCHD} d=$WORK/r$ROUND-$1 cfg pid r
    mkdir -p "$d"
    cfg=$d/vswitch.toml
    {
        echo "[switch]"
        echo "pmd_cores = [$SWITCH_CPU]"
        [[ -n $sleep_us ]] && echo "pmd_sleep_after_us = $sleep_us"
        # The switch offers the packed ring only when configured to.
        ((PACKED)) && echo "packed_ring = true"
        # vhost-user sockets must be inside switch.socket_dir (default /run/vswitch); a
        # build from before that setting (an alternate binary) refuses the key.
        printf '[switch]\nsocket_dir = "%s"\n' "$d" >"$d/probe.toml"
        if "$bin" --config "$d/probe.toml" --check >/dev/null 2>&1; then
            echo "socket_dir = \"$d\""
        fi
        for p in p0 p1; do
            printf '\n[[port]]\nname = "%s"\ntype = "vhost-user"\nsocket = "%s/%s.sock"\nmode = "server"\n' "$p" "$d" "$p"
        done
        printf '\n[[flow]]\nmatch = { in_port = "p0"%s }\nactions = ["output:p1"]\n' "$VS_MATCH"
        printf '\n[[flow]]\nmatch = { in_port = "p1"%s }\nactions = ["output:p0"]\n' "$VS_MATCH"
    } >"$cfg"
    # The PMD pins itself to CPU 1 (pmd_cores). vswitchd leaves its other threads (main,
    # vhost-user connection threads) unpinned, and refuses pmd_cores outside its own affinity
    # mask, so it cannot start under `taskset -c 0`: once it runs, move every thread but the
    # PMDs to CPU 0 (threads they start later inherit that).
    RUST_LOG=info "$bin" --config "$cfg" --api-listen off --api-socket "$d/api.sock" --no-auth \
        >"$d/vswitchd.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    if ! wait_for "$d/vswitchd.log" "vswitchd running" 20; then
        log "$label: vswitchd did not start:"; tail -10 "$d/vswitchd.log" >&2
        stop_pid "$pid"; forget_pid "$pid"; return 1
    fi
    local t
    for t in /proc/"$pid"/task/*; do
        [[ $(cat "$t/comm" 2>/dev/null) == pmd* ]] && continue
        taskset -p -c "$GUEST_CPU" "${t##*/}" >/dev/null 2>&1 || true
    done
    SNAPSHOT="vswitchd_metrics $d"
    measure_guest "$label" "$d/p0.sock" "$d/p1.sock" "$pid" || true; r=$RESULT
    SNAPSHOT=""
    log "$label: PMD over the window: $(pmd_window "$d/metrics.0" "$d/metrics.1")"
    stop_pid "$pid" 20
    forget_pid "$pid"
    grep -h "totals" "$d/vswitchd.log" | sed "s/^/[$label] /" | tail -4 >&2 || true
    RESULT=$r
    [[ -n $r ]]
}

run_dpdk_vhost() {
    local label=dpdk-vhost d=$WORK/r$ROUND-dpdk-vhost pid r
    mkdir -p "$d"
    # Main lcore (prompt, vhost control threads) on CPU 0, forwarding lcore alone on CPU 1.
    start_testpmd "vhost" "0@$GUEST_CPU,1@$SWITCH_CPU" "$d/testpmd.log" "$d/testpmd.in" \
        --vdev "net_vhost0,iface=$d/p0.sock,queues=1" \
        --vdev "net_vhost1,iface=$d/p1.sock,queues=1" \
        -- -i --nb-cores=1 --forward-mode=io --total-num-mbufs=32768 --disable-link-check
    pid=$LAST_PID
    exec {SWITCH_FD}>"$d/testpmd.in"
    if ! wait_for "$d/testpmd.log" "^Done" 60; then
        log "$label: vhost testpmd did not come up:"; tail -15 "$d/testpmd.log" >&2
        exec {SWITCH_FD}>&-; stop_pid "$pid"; forget_pid "$pid"; return 1
    fi
    echo "start" >&"$SWITCH_FD"
    wait_for "$d/testpmd.log" "io packet forwarding" 10 || log "$label: switch testpmd did not confirm start"
    measure_guest "$label" "$d/p0.sock" "$d/p1.sock" "$pid" || true; r=$RESULT
    echo "stop" >&"$SWITCH_FD"; sleep 0.5; echo "quit" >&"$SWITCH_FD"
    exec {SWITCH_FD}>&-
    local i; for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    stop_pid "$pid" 5
    forget_pid "$pid"
    RESULT=$r
    [[ -n $r ]]
}

run_ovs() {
    local label=ovs-dpdk d=$WORK/r$ROUND-ovs r=""
    if ((!OVS_OK)); then log "$label: SKIPPED: $OVS_WHY"; return 1; fi
    mkdir -p "$d"
    if ovs_start "$d" && ovs_add_vhost_ports "$d"; then
        ovs-ofctl del-flows br0
        ovs-ofctl add-flow br0 "in_port=1$OVS_MATCH,actions=output:2"
        ovs-ofctl add-flow br0 "in_port=2$OVS_MATCH,actions=output:1"
        measure_guest "$label" "$d/p0" "$d/p1" "$OVS_VS_PID" || OVS_WHY="guest measurement failed"; r=$RESULT
        ovs-appctl -t "$d/ovs-vswitchd.ctl" dpif-netdev/pmd-rxq-show 2>/dev/null | sed "s/^/[$label] /" >&2 || true
        ovs-ofctl dump-flows br0 2>/dev/null | grep -o 'n_packets=[0-9]*.*actions=.*' | sed "s/^/[$label] /" >&2 || true
    fi
    [[ -z $r ]] && log "$label: FAILED: $OVS_WHY"
    ovs_stop
    RESULT=$r
    [[ -n $r ]]
}

run_one() {          # run_one NAME: sets RESULT="p0 p1 peak" or ""
    case $1 in
        vswitchd) run_vswitchd vswitchd "" ;;
        vswitchd-busy) run_vswitchd vswitchd-busy 0 ;;
        vswitchd-alt) [[ -x ${VSWITCHD_ALT:-} ]] || die "vswitchd-alt needs VSWITCHD_ALT=<binary>"
                      run_vswitchd vswitchd-alt "" "$VSWITCHD_ALT" ;;
        dpdk-vhost) run_dpdk_vhost ;;
        ovs-dpdk) run_ovs ;;
        *) die "unknown switch $1" ;;
    esac
}

# ---------------------------------------------------------------- main
declare -A SUM0 SUM1 CNT ROUNDS TOT PEAK
NOISES=()
DESC="$SIZE B, ${FLOWS:+$FLOWS flows (flowgen), }RULES=$RULES, $( ((PACKED)) && echo "packed ring asked" || echo "split ring")"
log "vhost loop, $DESC, testpmd $GUEST_FWD guest on CPU $GUEST_CPU, switch PMD on CPU $SWITCH_CPU; warm-up ${WARMUP}s, measure ${SECONDS_MEASURE}s x $REPEAT round(s)"
log "CPU: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); other busy processes: $(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 5 {printf "%s(%s%%) ", $2, $1}')"
for ((round = 1; round <= REPEAT; round++)); do
    for sw in $ONLY; do
        log "== $sw (round $round)"
        C2C_BEFORE=$(c2c_ns)
        RESULT="" RING="" FRAME_BYTES="" NOISE=""; ROUND=$round; run_one "$sw" || true; res=$RESULT
        dpdk_leftovers
        C2C_AFTER=$(c2c_ns)
        log "$sw: host cache-line transfer CPU $GUEST_CPU <-> $SWITCH_CPU: $C2C_BEFORE ns before, $C2C_AFTER ns after"
        find "$WORK" \( -type s -o -type p \) -delete   # sockets and FIFOs; logs stay until exit
        if [[ -n $res ]]; then
            read -r a b pk <<<"$res"
            (( pk > ${PEAK[$sw]:-0} )) && PEAK[$sw]=$pk
            SUM0[$sw]=$(( ${SUM0[$sw]:-0} + a )); SUM1[$sw]=$(( ${SUM1[$sw]:-0} + b )); CNT[$sw]=$(( ${CNT[$sw]:-0} + 1 ))
            TOT[$sw,$round]=$((a + b))
            ROUNDS[$sw]+=$(awk -v a="$a" -v b="$b" 'BEGIN {printf " %.2f", (a + b) / 1e6}')
            NOISES+=("$(printf '%-16s round %d: %6.2f Mpps; CPU: %s; c2c %s/%s ns' "$sw" "$round" "$(awk -v a="$a" -v b="$b" 'BEGIN {print (a + b) / 1e6}')" "$NOISE" "$C2C_BEFORE" "$C2C_AFTER")")
            log "$sw: port0 rx $(awk -v a="$a" 'BEGIN {printf "%.2f", a / 1e6}') Mpps, port1 rx $(awk -v b="$b" 'BEGIN {printf "%.2f", b / 1e6}') Mpps"
            if [[ -n $RESULTS_TSV ]]; then
                # case round switch port0_pps port1_pps peak_pps ring frame_bytes pmd% guest% others% steal%
                # c2c_ns_before c2c_ns_after
                read -r _ n_pmd _ n_guest _ n_others _ n_steal <<<"${NOISE//[%()]/}"
                printf '%s\t%d\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${CASE:--}" "$round" "$sw" "$a" "$b" "$pk" \
                    "${RING:-unknown}" "${FRAME_BYTES:-?}" "${n_pmd:-?}" "${n_guest:-?}" "${n_others:-?}" "${n_steal:-?}" \
                    "$C2C_BEFORE" "$C2C_AFTER" >>"$RESULTS_TSV"
            fi
        else
            log "$sw: no result"
            [[ -n $RESULTS_TSV ]] && printf '%s\t%d\t%s\t-\t-\t-\t%s\t-\t-\t-\t-\t-\t%s\t%s\n' "${CASE:--}" "$round" "$sw" "${RING:-unknown}" \
                "$C2C_BEFORE" "$C2C_AFTER" >>"$RESULTS_TSV"
        fi
    done
    # One progress line per round: every switch of the round ran back to back.
    line="round $round/$REPEAT done:"
    for sw in $ONLY; do
        line+=$(awk -v n="$sw" -v t="${TOT[$sw,$round]:-}" -v o="${TOT[ovs-dpdk,$round]:-}" -v d="${TOT[dpdk-vhost,$round]:-}" 'BEGIN {
            if (t == "") { printf " %s -;", n; exit }
            printf " %s %.2f", n, t / 1e6
            if (n ~ /^vswitchd/ && (o != "" || d != "")) printf " (%s OVS, %s DPDK)", o == "" ? "-" : sprintf("%.2fx", t / o), d == "" ? "-" : sprintf("%.2fx", t / d)
            printf ";" }')
    done
    log "${line%;} Mpps"
done

total() { [[ -n ${CNT[$1]:-} ]] && echo $(( (SUM0[$1] + SUM1[$1]) / CNT[$1] )) || echo ""; }
T_OVS=$(total ovs-dpdk); T_DPDK=$(total dpdk-vhost); P_OVS=${PEAK[ovs-dpdk]:-}; P_DPDK=${PEAK[dpdk-vhost]:-}
echo
echo "vhost-user loop, $DESC, testpmd $GUEST_FWD guest (CPU $GUEST_CPU) <-> switch (1 PMD, CPU $SWITCH_CPU); ${SECONDS_MEASURE}s x $REPEAT rounds"
echo "Mpps. port0-rx, port1-rx (one per direction), total: means over all rounds. peak: best single"
echo "$(awk -v s="$SECONDS_MEASURE" -v n="$SAMPLES" 'BEGIN {printf "%.1f", s / n}') s sample of the total (host noise only ever lowers rates). Ratios: of the means, of the peaks."
printf '%-14s %8s %8s %7s %7s %7s %7s %9s %9s  %s\n' switch port0-rx port1-rx total peak "vs OVS" "vs DPDK" "peak/OVS" "peak/DPDK" "per-round totals"
for sw in $ONLY; do
    if [[ -z ${CNT[$sw]:-} ]]; then
        why="failed"; [[ $sw == ovs-dpdk && -n $OVS_WHY ]] && why=$OVS_WHY
        printf '%-14s %s\n' "$sw" "no result: $why"
        continue
    fi
    awk -v n="$sw" -v a="${SUM0[$sw]}" -v b="${SUM1[$sw]}" -v c="${CNT[$sw]}" -v o="$T_OVS" -v d="$T_DPDK" \
        -v pk="${PEAK[$sw]}" -v po="$P_OVS" -v pd="$P_DPDK" -v r="${ROUNDS[$sw]}" '
        function ratio(x, y) { return y == "" ? "-" : sprintf("%.2f", x / y) }
        BEGIN {
            t = (a + b) / c
            printf "%-14s %8.2f %8.2f %7.2f %7.2f %7s %7s %9s %9s  %s\n", n, a / c / 1e6, b / c / 1e6, t / 1e6, pk / 1e6,
                ratio(t, o), ratio(t, d), ratio(pk, po), ratio(pk, pd), r
        }'
done
echo
echo "each round's own ratios (the switches of one round ran back to back):"
for ((round = 1; round <= REPEAT; round++)); do
    line="  round $round:"
    for sw in $ONLY; do
        [[ -n ${TOT[$sw,$round]:-} ]] || { line+=" $sw -;"; continue; }
        line+=$(awk -v n="$sw" -v t="${TOT[$sw,$round]}" -v o="${TOT[ovs-dpdk,$round]:-}" -v d="${TOT[dpdk-vhost,$round]:-}" 'BEGIN {
            printf " %s %.2f", n, t / 1e6
            if (n ~ /^vswitchd/) printf " (%s OVS, %s DPDK)", o == "" ? "-" : sprintf("%.2fx", t / o), d == "" ? "-" : sprintf("%.2fx", t / d)
            printf ";" }')
    done
    echo "${line%;}"
done
echo
echo "noise: share of its CPU the switch PMD and the guest forwarding thread got (should be ~100%),"
echo "and CPU time used by everything else on CPUs 0+1 (% of one CPU; other jobs show up here):"
printf '  %s\n' "${NOISES[@]}"
