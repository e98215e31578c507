#!/usr/bin/env bash
# TCP throughput between two QEMU Linux guests through a switch (issue 13, guest offloads):
# the test guest image (deploy/guest/build-image.sh: Debian kernel, busybox, iperf3) runs a
# sink in one VM and a source in the other, which sends MIB MiB and reports the seconds it
# took: with iperf3 (TOOL=iperf3, the default: 128 KiB writes from memory, what a real
# application's large writes look like) or busybox nc (TOOL=nc: a random file in RAM, 4 KiB
# writes, the md5 checked at the sink). Both guests are TCG VMs pinned to CPU 0
# (KVM is not usable on these machines); each switch has its PMD alone on CPU 1. Cases, run in
# interleaved rounds:
#   vswitchd          offloads on both sides (the switch offers CSUM/TSO, QEMU's defaults)
#   vswitchd-off      the same switch, QEMU's virtio-net offload properties off in both guests
#   vswitchd-busy, vswitchd-off-busy (not by default) the same two with the PMD busy-polling
#                     (pmd_sleep_after_us = 0), as OVS-DPDK's always does
#   ovs-dpdk          OVS-DPDK 3.1 (Debian's openvswitch-switch-dpdk), userspace-tso-enable=false
#   ovs-dpdk-tso      the same with userspace-tso-enable=true
# Each switch forwards with `normal` (MAC learning), no rules. Prints MB/s (10^6 bytes) per
# case and round, medians, and the ratios the issue asks for.
#
# Usage (root): bench/e2e/tcp-stream.sh
# Environment:  MIB=64 (MiB per stream)  REPEAT=3 (rounds)  TIMEOUT=240 (s per stream)
#               TOOL=iperf3|nc
#               ONLY="vswitchd vswitchd-off ovs-dpdk ovs-dpdk-tso" (subset, in that order)
#               VSWITCHD=PATH (default $CARGO_TARGET_DIR/release/vswitchd, or target/release/)
#               KEEP_WORK=1 (keep the scratch directory with every log)
set -euo pipefail

MIB=${MIB:-64}
TOOL=${TOOL:-iperf3}
REPEAT=${REPEAT:-3}
TIMEOUT=${TIMEOUT:-240}
ONLY=${ONLY:-"vswitchd vswitchd-off ovs-dpdk ovs-dpdk-tso"}
GUEST_CPU=0
SWITCH_CPU=1
# QEMU's virtio-net properties for every offload it can negotiate: all off for vswitchd-off.
OFFLOADS_OFF=",csum=off,guest_csum=off,gso=off,host_tso4=off,host_tso6=off,host_ecn=off,host_ufo=off,guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off"

REPO=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=bench/e2e/lib.sh
source "$REPO/bench/e2e/lib.sh"
VSWITCHD_GIVEN=${VSWITCHD:+1}
VSWITCHD=${VSWITCHD:-${CARGO_TARGET_DIR:-$REPO/target}/release/vswitchd}
IMAGE=${CARGO_TARGET_DIR:-$REPO/target}/guest-image

[[ $(id -u) -eq 0 ]] || die "run as root (hugepages, packages, DPDK)"
(( $(nproc) >= 2 )) || die "needs 2 CPUs (guests on CPU $GUEST_CPU, switch PMD on CPU $SWITCH_CPU)"
if ! [[ $MIB =~ ^[1-9][0-9]*$ ]] || ((MIB > 100)); then die "MIB must be 1..100 (the guests have 256 MiB)"; fi
[[ $TOOL == iperf3 || $TOOL == nc ]] || die "TOOL must be iperf3 or nc"

install_missing qemu-system-x86 coreutils util-linux procps curl
OVS_OK=0 OVS_WHY="not asked for"
[[ " $ONLY " == *" ovs-dpdk"* ]] && ovs_install
[[ " $ONLY " == *" vswitchd"* && -z $VSWITCHD_GIVEN ]] && build_vswitchd
"$REPO/deploy/guest/build-image.sh" "$IMAGE" || die "building the guest image failed"

# ---------------------------------------------------------------- scratch state and cleanup
WORK=$(mktemp -d /run/vswitch-tcp.XXXXXX)
TAG=tcp$$
PIDS=()
HP_ORIG=$(cat /proc/sys/vm/nr_hugepages)
HP_MOUNTED=0
cleanup() {
    local rc=$?
    set +e
    stop_all
    dpdk_leftovers
    if [[ -n ${KEEP_WORK:-} ]]; then log "kept $WORK (KEEP_WORK)"; else rm -rf "$WORK"; fi
    if [[ $(cat /proc/sys/vm/nr_hugepages) != "$HP_ORIG" ]]; then
        echo "$HP_ORIG" >/proc/sys/vm/nr_hugepages
    fi
    ((HP_MOUNTED)) && umount /dev/hugepages
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ " $ONLY " == *" ovs-dpdk"* ]]; then
    # OVS-DPDK's 512 MB of socket memory; the guests use shared memfd memory, not hugepages.
    mount_hugepages
    ((HP_ORIG >= 300)) || echo 300 >/proc/sys/vm/nr_hugepages
fi

# ---------------------------------------------------------------- guests
# start_guest NAME SOCK MAC PARAMS DEVICE_PROPS: a TCG guest on CPU 0 whose virtio-net-pci
# device connects to the switch's vhost-user socket SOCK (the switch is the server); serial
# console to WORK/NAME.log. Sets LAST_PID.
start_guest() {
    local name=$1 sock=$2 mac=$3 params=$4 props=$5
    taskset -c "$GUEST_CPU" qemu-system-x86_64 -accel tcg -m 256 -nographic -no-reboot \
        -kernel "$IMAGE/vmlinuz" -initrd "$IMAGE/initramfs.gz" \
        -append "console=ttyS0 panic=-1 $params" \
        -object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \
        -chardev "socket,id=c0,path=$sock" -netdev vhost-user,id=n0,chardev=c0 \
        -device "virtio-net-pci,netdev=n0,mac=$mac,vectors=0$props" \
        </dev/null >"$WORK/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# stream LABEL SOCK_SINK SOCK_SOURCE PROPS: the sink on SOCK_SINK, the source on SOCK_SOURCE;
# sets RESULT to "MB/s" ("" on failure or timeout) and logs what the guests negotiated.
stream() {
    local label=$1 sink_sock=$2 src_sock=$3 props=$4 sink src line bytes secs
    local sink_log=$WORK/r$ROUND-$label-sink src_log=$WORK/r$ROUND-$label-source
    RESULT=""
    start_guest "r$ROUND-$label-sink" "$sink_sock" 52:54:00:12:00:02 \
        "vs.role=sink vs.ip=198.18.0.2/24 vs.tool=$TOOL" "$props"
    sink=$LAST_PID
    start_guest "r$ROUND-$label-source" "$src_sock" 52:54:00:12:00:01 \
        "vs.role=source vs.ip=198.18.0.1/24 vs.peer=198.18.0.2 vs.mib=$MIB vs.wait=120 vs.tool=$TOOL" "$props"
    src=$LAST_PID
    # Where the time goes: each guest's CPU time (both share CPU 0) while the data moves,
    # from the source's DATA line (generated, about to send) to its verdict.
    local t0 t1 src0 src1 sink0 sink1
    wait_for "$src_log.log" "VSWITCH-TEST: DATA" "$TIMEOUT" 1 "$src" || true
    t0=$(date +%s.%N) src0=$(proc_ticks "$src") sink0=$(proc_ticks "$sink")
    if wait_for "$src_log.log" "VSWITCH-TEST: \(PASS\|FAIL\)" "$TIMEOUT" 1 "$src"; then
        t1=$(date +%s.%N) src1=$(proc_ticks "$src") sink1=$(proc_ticks "$sink")
        # The source may have powered off already (its share then reads "-").
        log "$label: CPU 0 over the send: $(awk -v w="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" \
            -v s=$((src1 - src0)) -v k=$((sink1 - sink0)) -v hz="$(getconf CLK_TCK)" '
            function pct(t) { return t < 0 ? "-" : sprintf("%.0f%%", 100 * t / hz / w) }
            BEGIN {printf "source guest %s, sink guest %s of %.1f s", pct(s), pct(k), w}')"
        line=$(grep -m1 "VSWITCH-TEST: SENT" "$src_log.log" || true)
        bytes=$(awk '{print $3}' <<<"$line") secs=$(awk '{print $5}' <<<"$line")
        if [[ -n $bytes && -n $secs ]] && wait_for "$sink_log.log" "VSWITCH-TEST: RECEIVED" 30 1 "$sink"; then
            # nc: the same bytes and md5; iperf3 ("-": no md5) counts its own bytes.
            if [[ $TOOL == iperf3 ]] || grep -q "RECEIVED $bytes $(awk '{print $4}' <<<"$line")" "$sink_log.log"; then
                RESULT=$(awk -v b="$bytes" -v s="$secs" 'BEGIN {printf "%.2f", b / s / 1e6}')
            else
                log "$label: the sink received something else: $(grep -m1 RECEIVED "$sink_log.log")"
            fi
        else
            log "$label: source: $(grep -m1 "VSWITCH-TEST: \(FAIL\|PASS\)" "$src_log.log")"
        fi
    else
        log "$label: no verdict from the source within ${TIMEOUT} s"
    fi
    log "$label: source $(grep -o "ethtool tcp-segmentation-offload: [a-z]*\|ethtool tx-checksumming: [a-z]*" "$src_log.log" | tr '\n' ' ')"
    stop_pid "$src" 5; forget_pid "$src"
    stop_pid "$sink" 5; forget_pid "$sink"
    [[ -n $RESULT ]]
}

# ---------------------------------------------------------------- the switches
run_vswitchd() {     # run_vswitchd LABEL QEMU_PROPS [SLEEP_US]
    local label=$1 props=$2 sleep_us=${3:-} d=$WORK/r$ROUND-$1 pid r t
    mkdir -p "$d"
    {
        printf '[switch]\npmd_cores = [%s]\nsocket_dir = "%s"\n' "$SWITCH_CPU" "$d"
        [[ -n $sleep_us ]] && printf 'pmd_sleep_after_us = %s\n' "$sleep_us"
        for p in p0 p1; do
            printf '\n[[port]]\nname = "%s"\ntype = "vhost-user"\nsocket = "%s/%s.sock"\nmode = "server"\n' "$p" "$d" "$p"
        done
    } >"$d/vswitch.toml"
    RUST_LOG=info "$VSWITCHD" --config "$d/vswitch.toml" --api-listen off --api-socket "$d/api.sock" --no-auth \
        >"$d/vswitchd.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    if ! wait_for "$d/vswitchd.log" "vswitchd running" 20; then
        log "$label: vswitchd did not start:"; tail -10 "$d/vswitchd.log" >&2
        stop_pid "$pid"; forget_pid "$pid"; return 1
    fi
    # Everything but the PMD onto CPU 0 with the guests.
    for t in /proc/"$pid"/task/*; do
        [[ $(cat "$t/comm" 2>/dev/null) == pmd* ]] && continue
        taskset -p -c "$GUEST_CPU" "${t##*/}" >/dev/null 2>&1 || true
    done
    stream "$label" "$d/p1.sock" "$d/p0.sock" "$props" || true; r=$RESULT
    curl -s --unix-socket "$d/api.sock" http://localhost/metrics 2>/dev/null |
        grep -E '^vswitch_port_(offload_frames|gso_segments|csum_filled|tx_dropped|tx_packets)_total|^vswitch_pmd_(busy|idle)_seconds_total' |
        sed "s/^/[$label] /" >&2 || true
    stop_pid "$pid" 20; forget_pid "$pid"
    RESULT=$r
    [[ -n $r ]]
}

run_ovs() {          # run_ovs LABEL true|false (userspace-tso-enable)
    local label=$1 tso=$2 d=$WORK/r$ROUND-$1 r=""
    if ((!OVS_OK)); then log "$label: SKIPPED: $OVS_WHY"; return 1; fi
    mkdir -p "$d"
    if ovs_start "$d" "other_config:userspace-tso-enable=$tso" && ovs_add_vhost_ports "$d"; then
        stream "$label" "$d/p1" "$d/p0" "" || true; r=$RESULT
    else
        log "$label: FAILED: $OVS_WHY"
    fi
    ovs_stop
    RESULT=$r
    [[ -n $r ]]
}

run_one() {
    case $1 in
        vswitchd) run_vswitchd vswitchd "" ;;
        vswitchd-off) run_vswitchd vswitchd-off "$OFFLOADS_OFF" ;;
        vswitchd-busy) run_vswitchd vswitchd-busy "" 0 ;;
        vswitchd-off-busy) run_vswitchd vswitchd-off-busy "$OFFLOADS_OFF" 0 ;;
        ovs-dpdk) run_ovs ovs-dpdk false ;;
        ovs-dpdk-tso) run_ovs ovs-dpdk-tso true ;;
        *) die "unknown case $1" ;;
    esac
}

# ---------------------------------------------------------------- main
declare -A RATES
log "$MIB MiB per stream with $TOOL, $REPEAT rounds of: $ONLY; guests on CPU $GUEST_CPU (TCG), PMD on CPU $SWITCH_CPU"
for ((ROUND = 1; ROUND <= REPEAT; ROUND++)); do
    for c in $ONLY; do
        log "round $ROUND/$REPEAT: $c"
        if run_one "$c"; then
            log "round $ROUND: $c: $RESULT MB/s"
            RATES[$c]+="$RESULT "
        else
            log "round $ROUND: $c: failed"
            RATES[$c]+="- "
        fi
    done
done

median() { tr ' ' '\n' | { grep -v '^-\?$' || true; } | sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
declare -A MED
echo
echo "| case | MB/s per round | median |"
echo "|---|---|---|"
for c in $ONLY; do
    MED[$c]=$(median <<<"${RATES[$c]}")
    echo "| $c | ${RATES[$c]% } | ${MED[$c]} |"
done
ratio() { awk -v a="${MED[$1]:--}" -v b="${MED[$2]:--}" 'BEGIN {if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2fx", a / b}'; }
better_ovs=ovs-dpdk
if [[ ${MED[ovs-dpdk-tso]:--} != - && ( ${MED[ovs-dpdk]:--} == - || $(awk -v a="${MED[ovs-dpdk-tso]}" -v b="${MED[ovs-dpdk]}" 'BEGIN {print (a > b)}') == 1 ) ]]; then
    better_ovs=ovs-dpdk-tso
fi
echo
echo "offloads on / off: $(ratio vswitchd vswitchd-off) (target >= 3x); vswitchd / OVS-DPDK's better configuration ($better_ovs): $(ratio vswitchd "$better_ovs") (target >= 2x)"
echo "machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -r), QEMU $(qemu-system-x86_64 --version | awk 'NR == 1 {print $4}') TCG"
