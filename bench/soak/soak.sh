#!/usr/bin/env bash
# Soak test (issue 10, "tenant isolation"): vswitchd under churn for DURATION seconds while
# traffic flows the whole time; resident memory, open fds and threads must stay flat and every
# frame must be accounted for by a counter. Not part of CI. See bench/soak/README.md.
#
# What runs (everything pinned: the switch's PMD alone on CPU 1, everything else on CPU 0):
#   - vswitchd (release build of this tree) from a scratch dir: `[switch] socket_dir` = the
#     scratch sockets dir, `pmd_cores = [1]`, API on a unix socket with a token file;
#   - two long-lived vhost-user ports `a` and `b` whose frontend is ONE dpdk-testpmd (two
#     net_virtio_user ports, io forwarding, `start tx_first 32`): frames loop
#         testpmd port0 -> a -> switch (flow in_port=a -> output:b) -> b -> testpmd port1
#         -> (io forward) -> testpmd port0 -> ...
#     for the whole run (flow in_port=b -> drop takes the tx_first burst testpmd sends on b);
#   - the churn, one cycle after another (a cycle takes a few seconds), cycle k:
#       * POST /v1/ports g<k> (vhost-user; server mode on even cycles, client mode on odd ones,
#         the guest then being the socket's server) and x<k> (vhost-user, never attached);
#       * flows: in_port=g<k> -> drop; in_port=a,ip_dst=198.19.<k>.0/24 -> output:g<k> and
#         -> output:x<k> (higher priority than a->b, never matching the loop's frames, which go
#         to 198.18.0.2, but they take the a->b traffic off the in-port fast path);
#         DELETE /v1/ports/x<k> while its flow exists must be refused (409);
#       * a guest: a short-lived dpdk-testpmd (txonly, one virtio-user port) attaches to
#         g<k>, sends for GUEST_SEND seconds, stops; its TX-packets must equal the switch's
#         rx_packets of g<k>; then it disconnects: it quits first (even cycles) or the port is
#         deleted under it while it is still attached (odd cycles), and is stopped by PID;
#       * meanwhile, every TICK seconds, one flow add or delete (in_port=a, ip_dst=198.19.x.y/32,
#         random priority above a->b, action drop: never matching the traffic either);
#       * the cycle's flows and ports are deleted.
#   - every SAMPLE_EVERY seconds (at a cycle boundary: no churn port or guest exists then),
#     vswitchd's VmRSS (and anon/file/shmem parts), VmSize, open fds, threads, memory maps,
#     files in socket_dir, and a/b counters go to samples.csv.
# At the end (after a quiescent final sample) the a->b flow is overridden by a drop rule so
# the loop drains, testpmd is stopped, and the frame accounting is printed as equations
# (testpmd sent = switch received = switch sent + drops by reason = testpmd received ...).
#
# Exit status: 0 when RSS at the end is within RSS_LIMIT_PCT of the start (first sample after
# WARMUP), open fds and threads at the end are not above the start, traffic moved in every
# sample interval, and every equation holds exactly; 1 otherwise (the reasons are printed).
#
# Usage (root):  bench/soak/soak.sh
# Environment:   DURATION=1800   seconds of churn in all (warm-up included)
#                WARMUP=         seconds before the baseline sample (default DURATION/10,
#                                at least 20, at most 300)
#                SAMPLE_EVERY=10 seconds between samples
#                TICK=0.25       seconds between two flow-churn operations
#                GUEST_SEND=1    seconds each churn guest transmits
#                RSS_LIMIT_PCT=10
#                RESULTS_DIR=    where samples.csv, summary.txt and the logs are copied at the
#                                end (default /tmp/vswitch-soak-results.<date>); the scratch dir
#                                itself is always removed
#                CARGO_TARGET_DIR  honoured for the build and the binary's location
set -euo pipefail

DURATION=${DURATION:-1800}
WARMUP=${WARMUP:-$(( DURATION / 10 < 20 ? 20 : (DURATION / 10 > 300 ? 300 : DURATION / 10) ))}
SAMPLE_EVERY=${SAMPLE_EVERY:-10}
TICK=${TICK:-0.25}
GUEST_SEND=${GUEST_SEND:-1}
RSS_LIMIT_PCT=${RSS_LIMIT_PCT:-10}
RESULTS_DIR=${RESULTS_DIR:-/tmp/vswitch-soak-results.$(date +%Y%m%d-%H%M%S)}
GUEST_CPU=0
SWITCH_CPU=1

REPO=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
VSWITCHD=$TARGET/release/vswitchd

# shellcheck source=bench/e2e/lib.sh
source "$REPO/bench/e2e/lib.sh"   # log, die, install_missing, stop_pid, forget_pid, wait_for

[[ $(id -u) -eq 0 ]] || die "run as root (DPDK testpmd, pinning)"
[[ $DURATION =~ ^[0-9]+$ && $WARMUP =~ ^[0-9]+$ ]] || die "DURATION and WARMUP are whole seconds"
((WARMUP + 2 * SAMPLE_EVERY <= DURATION)) || die "DURATION ($DURATION) must leave room after WARMUP ($WARMUP) for samples"
(($(nproc) >= 2)) || die "needs 2 CPUs (testpmd on CPU $GUEST_CPU, the switch's PMD on CPU $SWITCH_CPU)"

# ---------------------------------------------------------------- packages and build
install_missing dpdk-dev curl jq coreutils util-linux procps
COMMIT=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?')   # what is built and run
log "building vswitchd (release) in $TARGET"
(cd "$REPO" && cargo build --release -p api --bin vswitchd --locked -q) || die "cargo build failed"
[[ -x $VSWITCHD ]] || die "no $VSWITCHD after the build"

# ---------------------------------------------------------------- scratch state and cleanup
WORK=$(mktemp -d /tmp/vswitch-soak.XXXXXX)
SOCK=$WORK/sock
API=$WORK/api.sock
TAG=soak$$
PIDS=()              # every process we started and have not reaped yet
PREFIXES=()          # DPDK --file-prefix values we used
mkdir -p "$SOCK" "$WORK/state" "$WORK/guests"

save_results() {
    [[ -n ${RESULTS_SAVED:-} ]] && return 0
    RESULTS_SAVED=1
    mkdir -p "$RESULTS_DIR"
    cp -f "$WORK"/samples.csv "$WORK"/summary.txt "$WORK"/vswitchd.log "$WORK"/loop.log \
        "$WORK"/sessions.csv "$RESULTS_DIR"/ 2>/dev/null || true
    log "results kept in $RESULTS_DIR"
}
cleanup() {
    local rc=$? p
    set +e
    [[ -n ${LOOP_FD:-} ]] && { exec {LOOP_FD}>&-; } 2>/dev/null
    [[ -n ${GUEST_FD:-} ]] && { exec {GUEST_FD}>&-; } 2>/dev/null
    for p in "${PIDS[@]}"; do stop_pid "$p" 5; done
    PIDS=()
    for p in "${PREFIXES[@]}"; do [[ -n $p ]] && rm -rf "/var/run/dpdk/$p"; done
    save_results
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- helpers
now() { echo "${EPOCHREALTIME}"; }
elapsed_since() { awk -v a="$1" -v b="${EPOCHREALTIME}" 'BEGIN {printf "%.3f", b - a}'; }
older_than() { awk -v a="$1" -v b="${EPOCHREALTIME}" -v s="$2" 'BEGIN {exit !(b - a >= s)}'; }

FAILS=()
fail() { FAILS+=("$*"); log "FAIL: $*"; }

# api METHOD PATH [JSON]: sets HTTP_CODE and HTTP_BODY.
api() {
    local out data=()
    [[ -n ${3:-} ]] && data=(--data "$3")
    out=$(curl -s --max-time 20 --unix-socket "$API" -X "$1" \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        "${data[@]}" -w '\n%{http_code}' "http://vswitchd$2") || { HTTP_CODE=000; HTTP_BODY="curl failed"; return 0; }
    HTTP_CODE=${out##*$'\n'}
    HTTP_BODY=${out%$'\n'*}
}
# api_ok METHOD PATH [JSON] EXPECTED_CODE: api, counting an unexpected status as a failure.
api_ok() {
    local want=$4
    api "$1" "$2" "${3:-}"
    [[ $HTTP_CODE == "$want" ]] && return 0
    fail "$1 $2 -> $HTTP_CODE (wanted $want): $HTTP_BODY"
    return 1
}
N_PORT_ADD=0 N_PORT_DEL=0 N_PORT_REFUSED=0 N_FLOW_ADD=0 N_FLOW_DEL=0 N_GUESTS=0 N_CYCLES=0
add_flow() {         # add_flow JSON: sets FLOW_ID to the new id (empty on failure)
    FLOW_ID=""
    api_ok POST /v1/flows "$1" 201 || return 1
    N_FLOW_ADD=$((N_FLOW_ADD + 1))
    FLOW_ID=$(jq -r .id <<<"$HTTP_BODY")
}
del_flow() { api_ok DELETE "/v1/flows/$1" "" 204 && N_FLOW_DEL=$((N_FLOW_DEL + 1)); }
add_port() {         # add_port NAME MODE
    api_ok POST /v1/ports "{\"name\":\"$1\",\"type\":\"vhost-user\",\"socket\":\"$SOCK/$1.sock\",\"mode\":\"$2\"}" 201 || return 1
    N_PORT_ADD=$((N_PORT_ADD + 1))
    # Port numbers are never reused: a new port starts from zero.
    local c; c=$(jq -c '.counters' <<<"$HTTP_BODY")
    [[ $(jq '[.[]] | add' <<<"$c") == 0 ]] || fail "new port $1 does not start from zero counters: $c"
}
del_port() { api_ok DELETE "/v1/ports/$1" "" 204 && N_PORT_DEL=$((N_PORT_DEL + 1)); }
port_json() { api GET "/v1/ports/$1"; [[ $HTTP_CODE == 200 ]] && echo "$HTTP_BODY"; }

# The churn flows: at most FLOW_WINDOW of them at a time, the oldest deleted first.
FLOW_WINDOW=8
CHURN_IDS=()
FLOW_SEQ=0
flow_tick() {        # one flow add (when under the window) or delete of the oldest
    if ((${#CHURN_IDS[@]} < FLOW_WINDOW && FLOW_SEQ % 3 != 2)) || ((${#CHURN_IDS[@]} == 0)); then
        local x=$((FLOW_SEQ % 250 + 1)) y=$((FLOW_SEQ / 250 % 250 + 1)) prio=$((33000 + RANDOM % 30000))
        add_flow "{\"priority\":$prio,\"match\":{\"in_port\":\"a\",\"eth_type\":\"0x0800\",\"ip_dst\":\"198.19.$y.$x/32\"},\"actions\":[\"drop\"]}" &&
            CHURN_IDS+=("$FLOW_ID")
    else
        del_flow "${CHURN_IDS[0]}" || true
        CHURN_IDS=("${CHURN_IDS[@]:1}")
    fi
    FLOW_SEQ=$((FLOW_SEQ + 1))
}
churn_for() {        # churn_for SECONDS [CONDITION-FUNCTION]: flow ticks until the time is up
    local t0; t0=$(now)
    while ! older_than "$t0" "$1"; do
        if [[ -n ${2:-} ]] && "$2"; then return 0; fi
        flow_tick
        sleep "$TICK"
    done
    [[ -z ${2:-} ]] || "$2"
}
drain_churn_flows() { local id; for id in "${CHURN_IDS[@]}"; do del_flow "$id" || true; done; CHURN_IDS=(); }

counter() { jq -r "$2" <<<"$1"; }

# The switch process's figures: rss_kb anon_kb file_kb shmem_kb vmsize_kb fds threads maps
proc_figures() {
    local pid=$1 st fds maps
    st=$(awk '/^VmRSS:/ {r=$2} /^RssAnon:/ {a=$2} /^RssFile:/ {f=$2} /^RssShmem:/ {s=$2}
              /^VmSize:/ {v=$2} /^Threads:/ {t=$2} END {print r, a, f, s, v, t}' "/proc/$pid/status")
    fds=$(ls "/proc/$pid/fd" | wc -l)
    maps=$(wc -l <"/proc/$pid/maps")
    read -r r a f s v t <<<"$st"
    echo "$r $a $f $s $v $fds $t $maps"
}

# ---------------------------------------------------------------- vswitchd
cat >"$WORK/vswitch.toml" <<EOF
[switch]
socket_dir = "$SOCK"
pmd_cores = [$SWITCH_CPU]

[[port]]
name = "a"
type = "vhost-user"
socket = "$SOCK/a.sock"
mode = "server"

[[port]]
name = "b"
type = "vhost-user"
socket = "$SOCK/b.sock"
mode = "server"

[[flow]]
match = { in_port = "a" }
actions = ["output:b"]

[[flow]]
match = { in_port = "b" }
actions = ["drop"]
EOF
RUST_LOG=info "$VSWITCHD" --config "$WORK/vswitch.toml" --state-dir "$WORK/state" \
    --api-listen off --api-socket "$API" >"$WORK/vswitchd.log" 2>&1 &
VS_PID=$!
PIDS+=("$VS_PID")
for ((i = 0; i < 200; i++)); do grep -q "vswitchd running" "$WORK/vswitchd.log" && break; sleep 0.1; done
grep -q "vswitchd running" "$WORK/vswitchd.log" || { tail -20 "$WORK/vswitchd.log" >&2; die "vswitchd did not start"; }
TOKEN=$(cat "$WORK/state/api-token")
# Every thread but the PMD to CPU 0 (threads started later inherit it).
for t in /proc/"$VS_PID"/task/*; do
    [[ $(cat "$t/comm" 2>/dev/null) == pmd* ]] && continue
    taskset -p -c "$GUEST_CPU" "${t##*/}" >/dev/null 2>&1 || true
done
api GET /v1/flows
ID_AB=$(jq -r '.[] | select(.match.in_port == "a") | .id' <<<"$HTTP_BODY")
[[ -n $ID_AB ]] || die "no a->b flow: $HTTP_BODY"
log "vswitchd pid $VS_PID, scratch $WORK, $(taskset -pc "$VS_PID" | sed 's/.*: /main thread on CPUs /')"

# ---------------------------------------------------------------- testpmd
DPDK_COMMON=(--lcores "0@$GUEST_CPU,1@$GUEST_CPU" --main-lcore 0 -n 1 --no-pci --single-file-segments
    --iova-mode=va --no-huge)
start_testpmd() {    # start_testpmd PREFIX LOG FIFO MEM-MB ARGS...: sets LAST_PID
    local prefix=$1 logf=$2 fifo=$3 mem=$4
    shift 4
    mkfifo "$fifo"
    PREFIXES+=("$prefix")
    stdbuf -oL -eL dpdk-testpmd "${DPDK_COMMON[@]}" -m "$mem" --file-prefix="$prefix" "$@" \
        <"$fifo" >"$logf" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}
# port_stats LOG PORT: "rx_packets rx_missed rx_errors tx_packets tx_errors" from the last
# `show port stats all` in LOG.
port_stats() {
    awk -v p="$2" '
        /NIC statistics for port/ { cur = ($(NF - 1) == p) }
        cur && /RX-packets:/ { rx = $2; miss = $4 }
        cur && /RX-errors:/ { err = $2 }
        cur && /TX-packets:/ { tx = $2; txe = $4; cur = 0 }
        END { print rx + 0, miss + 0, err + 0, tx + 0, txe + 0 }' "$1"
}
# fwd_stats LOG PORT: "rx rx_dropped tx tx_dropped" of "Forward statistics for port PORT".
fwd_stats() {
    awk -v p="$2" '
        /Forward statistics for port/ { cur = ($(NF - 1) == p) }
        cur && /RX-packets:/ { rx = $2; rxd = $4 }
        cur && /TX-packets:/ { tx = $2; txd = $4; cur = 0 }
        END { print rx + 0, rxd + 0, tx + 0, txd + 0 }' "$1"
}

start_testpmd "$TAG-loop" "$WORK/loop.log" "$WORK/loop.in" 256 \
    --vdev "net_virtio_user0,path=$SOCK/a.sock,queues=1" \
    --vdev "net_virtio_user1,path=$SOCK/b.sock,queues=1" \
    -- -i --nb-cores=1 --forward-mode=io --total-num-mbufs=8192
LOOP_PID=$LAST_PID
exec {LOOP_FD}>"$WORK/loop.in"
wait_for "$WORK/loop.log" "^Done" 60 || { tail -20 "$WORK/loop.log" >&2; die "loop testpmd did not come up"; }
echo "start tx_first 32" >&"$LOOP_FD"
wait_for "$WORK/loop.log" "io packet forwarding" 10 || die "loop testpmd did not start forwarding"
sleep 1
api GET /v1/ports/b
[[ $(jq .counters.tx_packets <<<"$HTTP_BODY") -gt 0 ]] || die "no frames a -> b after 1 s: $HTTP_BODY"
log "loop testpmd pid $LOOP_PID: traffic a -> b flows"

# ---------------------------------------------------------------- one churn cycle
G_TX=0 G_SW_RX=0 G_TX_DROPPED_GUEST=0 G_MISMATCH=0 G_SW_TX=0 G_SW_TXDROP=0 G_FAULTS=0 REFUSE_OK=0
echo "cycle,port,mode,disconnect,guest_tx,switch_rx,switch_tx,switch_tx_dropped,guest_faults,connect_s" >"$WORK/sessions.csv"
guest_connected() { api GET "/v1/ports/$GUEST_PORT"; [[ $(jq -r .connected <<<"$HTTP_BODY") == true ]]; }
guest_disconnected() { api GET "/v1/ports/$GUEST_PORT"; [[ $(jq -r .connected <<<"$HTTP_BODY") == false ]]; }
socket_there() { [[ -S $SOCK/$GUEST_PORT.sock ]]; }
guest_rx_settled() {
    api GET "/v1/ports/$GUEST_PORT"
    [[ $(jq .counters.rx_packets <<<"$HTTP_BODY") == "$GUEST_SENT" ]]
}

cycle() {
    local k=$1 mode g x glog gin gpid f_drop f_g f_x t0 conn_s disc sent pj rx tx txd gf
    g=g$k x=x$k
    ((k % 2 == 0)) && mode=server || mode=client
    ((k % 4 < 2)) && disc=guest-quits || disc=port-deleted
    GUEST_PORT=$g
    glog=$WORK/guests/$g.log gin=$WORK/guests/$g.in
    rm -f "$WORK"/guests/*   # the previous cycle's log and FIFO

    f_drop="" f_g="" f_x=""
    add_port "$x" server || return 1
    if [[ $mode == server ]]; then   # a client-mode port is added once its guest listens
        add_port "$g" server || return 1
        add_flow "{\"match\":{\"in_port\":\"$g\"},\"actions\":[\"drop\"]}" && f_drop=$FLOW_ID
    fi
    add_flow "{\"priority\":40000,\"match\":{\"in_port\":\"a\",\"eth_type\":\"0x0800\",\"ip_dst\":\"198.19.$((k % 250)).0/24\"},\"actions\":[\"output:$x\"]}" || return 1
    f_x=$FLOW_ID
    api DELETE "/v1/ports/$x"
    if [[ $HTTP_CODE == 409 ]]; then REFUSE_OK=$((REFUSE_OK + 1)); N_PORT_REFUSED=$((N_PORT_REFUSED + 1))
    else fail "DELETE /v1/ports/$x while flow $f_x uses it -> $HTTP_CODE, not 409: $HTTP_BODY"; fi

    # The guest: a txonly testpmd on g's socket (its server in client mode).
    t0=$(now)
    start_testpmd "$TAG-$g" "$glog" "$gin" 64 \
        --vdev "net_virtio_user0,path=$SOCK/$g.sock,queues=1$([[ $mode == client ]] && echo ",server=1")" \
        -- -i --nb-cores=1 --forward-mode=txonly --total-num-mbufs=2048
    gpid=$LAST_PID
    exec {GUEST_FD}>"$gin"
    if [[ $mode == client ]]; then
        churn_for 20 socket_there || { fail "cycle $k: guest testpmd never created $g.sock"; }
        add_port "$g" client || true
        add_flow "{\"match\":{\"in_port\":\"$g\"},\"actions\":[\"drop\"]}" && f_drop=$FLOW_ID
    fi
    add_flow "{\"priority\":40001,\"match\":{\"in_port\":\"a\",\"eth_type\":\"0x0800\",\"ip_dst\":\"198.19.$((k % 250)).0/24\"},\"actions\":[\"output:$g\"]}" && f_g=$FLOW_ID
    local up=1
    churn_for 30 guest_connected || { fail "cycle $k: $g ($mode) not connected within 30 s"; up=0; }
    conn_s=$(elapsed_since "$t0")
    if ((up)) && wait_for "$glog" "^Done" 20; then
        echo "start" >&"$GUEST_FD"
        churn_for "$GUEST_SEND"
        echo "stop" >&"$GUEST_FD"
        if wait_for "$glog" "Accumulated forward statistics" 10; then
            wait_for "$glog" "^Done\." 5 || true
            read -r _ _ sent _ <<<"$(fwd_stats "$glog" 0)"
            read -r _ _ _ gtxd <<<"$(fwd_stats "$glog" 0)"
            GUEST_SENT=$sent
            churn_for 5 guest_rx_settled || true
            N_GUESTS=$((N_GUESTS + 1))
        else
            fail "cycle $k: guest on $g printed no statistics after stop"; sent=""
        fi
    else
        ((up)) && fail "cycle $k: guest testpmd on $g did not come up: $(tail -3 "$glog" | tr '\n' ' ')"
        sent=""
    fi
    pj=$(port_json "$g") || pj='{}'
    rx=$(counter "$pj" '.counters.rx_packets // 0'); tx=$(counter "$pj" '.counters.tx_packets // 0')
    txd=$(counter "$pj" '.counters.tx_dropped // 0')
    gf=$(counter "$pj" '[.guest_faults // {} | to_entries[] | select(.value | type == "number") | .value] | add // 0')
    if [[ -n $sent ]]; then
        G_TX=$((G_TX + sent)); G_TX_DROPPED_GUEST=$((G_TX_DROPPED_GUEST + gtxd))
        [[ $rx == "$sent" ]] || { G_MISMATCH=$((G_MISMATCH + 1)); fail "cycle $k: guest on $g sent $sent, the switch counted rx_packets=$rx (guest_faults $gf)"; }
    fi
    G_SW_RX=$((G_SW_RX + rx)); G_SW_TX=$((G_SW_TX + tx)); G_SW_TXDROP=$((G_SW_TXDROP + txd)); G_FAULTS=$((G_FAULTS + gf))
    echo "$k,$g,$mode,$disc,${sent:-},$rx,$tx,$txd,$gf,$conn_s" >>"$WORK/sessions.csv"

    # Disconnect: the guest quits (the switch sees the socket close), or the port is deleted
    # while the guest is still attached (the switch closes it).
    if [[ $disc == guest-quits ]]; then
        echo "quit" >&"$GUEST_FD"; exec {GUEST_FD}>&-; GUEST_FD=""
        local i; for ((i = 0; i < 100; i++)); do kill -0 "$gpid" 2>/dev/null || break; sleep 0.1; done
        stop_pid "$gpid" 5; forget_pid "$gpid"
        churn_for 10 guest_disconnected || fail "cycle $k: $g still connected 10 s after its guest exited"
    fi
    [[ -n $f_g ]] && { del_flow "$f_g" || true; }
    [[ -n $f_drop ]] && { del_flow "$f_drop" || true; }
    del_flow "$f_x" || true
    del_port "$g" || true
    del_port "$x" || true
    if [[ $disc == port-deleted ]]; then
        echo "quit" >&"$GUEST_FD"; exec {GUEST_FD}>&-; GUEST_FD=""
        local i; for ((i = 0; i < 100; i++)); do kill -0 "$gpid" 2>/dev/null || break; sleep 0.1; done
        stop_pid "$gpid" 5; forget_pid "$gpid"
    fi
    rm -rf "/var/run/dpdk/$TAG-$g"
    PREFIXES=("$TAG-loop")   # the only other prefix still in use
    # A client-mode guest (the socket's server) may leave its socket file; ours to remove.
    [[ $mode == client ]] && rm -f "$SOCK/$g.sock"
    N_CYCLES=$((N_CYCLES + 1))
    return 0
}

# ---------------------------------------------------------------- samples
echo "t_s,phase,rss_kb,rss_anon_kb,rss_file_kb,rss_shmem_kb,vmsize_kb,fds,threads,maps,sock_files,ports,flows,a_rx,b_tx,b_tx_dropped,cycles,guests,port_adds,flow_ops" >"$WORK/samples.csv"
T_START=$(now)
sample() {           # sample PHASE: one CSV line; sets LAST_* for the checks
    local phase=$1 f ports flows a b
    f=$(proc_figures "$VS_PID") || { fail "vswitchd (pid $VS_PID) is gone"; return 1; }
    api GET /v1/ports; ports=$HTTP_BODY
    api GET /v1/flows; flows=$(jq length <<<"$HTTP_BODY")
    a=$(jq -r '.[] | select(.name == "a") | .counters.rx_packets' <<<"$ports")
    b=$(jq -r '.[] | select(.name == "b") | "\(.counters.tx_packets) \(.counters.tx_dropped)"' <<<"$ports")
    local socks; socks=$(find "$SOCK" -mindepth 1 | wc -l)
    read -r rss anon file shmem vsz fds thr maps <<<"$f"
    echo "$(elapsed_since "$T_START"),$phase,$rss,$anon,$file,$shmem,$vsz,$fds,$thr,$maps,$socks,$(jq length <<<"$ports"),$flows,$a,${b/ /,},$N_CYCLES,$N_GUESTS,$N_PORT_ADD,$((N_FLOW_ADD + N_FLOW_DEL))" >>"$WORK/samples.csv"
    LAST_A=$a
    log "sample $phase: rss ${rss} kB, fds $fds, threads $thr, maps $maps, a rx $a, cycles $N_CYCLES"
}

# ---------------------------------------------------------------- the run
log "soak: ${DURATION}s of churn (warm-up ${WARMUP}s), a sample every ${SAMPLE_EVERY}s, flow tick ${TICK}s, guests send ${GUEST_SEND}s"
sample start-of-run
PREV_A=$LAST_A
k=0 LAST_SAMPLE=$(now) BASELINE_DONE=0
while ! older_than "$T_START" "$DURATION"; do
    cycle "$k" || fail "cycle $k aborted"
    k=$((k + 1))
    kill -0 "$LOOP_PID" 2>/dev/null || { fail "the loop testpmd exited"; break; }
    kill -0 "$VS_PID" 2>/dev/null || { fail "vswitchd exited"; break; }
    if ((!BASELINE_DONE)) && older_than "$T_START" "$WARMUP"; then
        drain_churn_flows; sleep 1
        sample baseline; BASELINE_DONE=1; LAST_SAMPLE=$(now); PREV_A=$LAST_A
    elif ((BASELINE_DONE)) && older_than "$LAST_SAMPLE" "$SAMPLE_EVERY"; then
        drain_churn_flows; sleep 1
        sample run; LAST_SAMPLE=$(now)
        ((LAST_A > PREV_A)) || fail "no traffic a -> b between two samples (a rx stuck at $LAST_A)"
        PREV_A=$LAST_A
    fi
done
drain_churn_flows
sleep 1
sample end
((BASELINE_DONE)) || fail "the run ended before the warm-up did"

# ---------------------------------------------------------------- drain and account
# No other source of rule drops is left (guests gone, b sends nothing after tx_first): what the
# drop rule below adds is a's frames only.
api GET /v1/stats; R0=$(jq .drops.rule <<<"$HTTP_BODY")
add_flow '{"priority":65000,"match":{"in_port":"a"},"actions":["drop"]}' || die "cannot add the drain flow"
prev=""
for ((i = 0; i < 50; i++)); do
    sleep 0.3
    api GET /v1/ports/a; cur=$(jq .counters.rx_packets <<<"$HTTP_BODY")
    [[ $cur == "$prev" ]] && break
    prev=$cur
done
echo "stop" >&"$LOOP_FD"
wait_for "$WORK/loop.log" "Accumulated forward statistics" 20 || fail "loop testpmd printed no statistics after stop"
wait_for "$WORK/loop.log" "^Done\." 5 || true
echo "show port stats all" >&"$LOOP_FD"
wait_for "$WORK/loop.log" "NIC statistics for port 1" 10 || fail "loop testpmd printed no port statistics"
sleep 0.5
read -r P0_RX P0_MISS P0_ERR P0_TX P0_TXERR <<<"$(port_stats "$WORK/loop.log" 0)"
read -r P1_RX P1_MISS P1_ERR P1_TX P1_TXERR <<<"$(port_stats "$WORK/loop.log" 1)"
read -r F0_RX F0_RXD F0_TX F0_TXD <<<"$(fwd_stats "$WORK/loop.log" 0)"
read -r F1_RX F1_RXD F1_TX F1_TXD <<<"$(fwd_stats "$WORK/loop.log" 1)"
sleep 0.5
api GET /v1/ports; PORTS=$HTTP_BODY
api GET /v1/stats; STATS=$HTTP_BODY
R1=$(jq .drops.rule <<<"$STATS")
pc() { jq -r ".[] | select(.name == \"$1\") | .counters.$2" <<<"$PORTS"; }
pf() { jq -r ".[] | select(.name == \"$1\") | [.guest_faults | to_entries[] | select(.value | type == \"number\") | .value] | add" <<<"$PORTS"; }
RX_A=$(pc a rx_packets) TX_A=$(pc a tx_packets) TXD_A=$(pc a tx_dropped)
RX_B=$(pc b rx_packets) TX_B=$(pc b tx_packets) TXD_B=$(pc b tx_dropped)
GF_A=$(pf a) GF_B=$(pf b)
D=$((R1 - R0))
drop() { jq ".drops.$1" <<<"$STATS"; }
OTHER_DROPS=$(jq '[.drops | to_entries[] | select(.key != "rule" and .key != "tx_full") | .value] | add' <<<"$STATS")
PMD_RX=$(jq '[.pmds[].rx_packets] | add' <<<"$STATS")

echo "quit" >&"$LOOP_FD"; exec {LOOP_FD}>&-; LOOP_FD=""
for ((i = 0; i < 100; i++)); do kill -0 "$LOOP_PID" 2>/dev/null || break; sleep 0.1; done
stop_pid "$LOOP_PID" 5; forget_pid "$LOOP_PID"
SOCK_LEFT=$(find "$SOCK" -mindepth 1 -printf '%f ' | sort)
stop_pid "$VS_PID" 30; forget_pid "$VS_PID"
VS_WARN=$(grep -cE ' (WARN|ERROR) ' "$WORK/vswitchd.log" || true)

# ---------------------------------------------------------------- report
CSV=$WORK/samples.csv
figs=$(awk -F, -v limit="$RSS_LIMIT_PCT" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $col["phase"] == "baseline" { b = 1 }
    b {
        n++; t = $col["t_s"]; r = $col["rss_kb"]; an = $col["rss_anon_kb"]
        if (n == 1) an0 = an; if (an > anmax) anmax = an; ane = an; say += an; saxy += t * an; f = $col["fds"]; th = $col["threads"]; m = $col["maps"]
        if (n == 1) { r0 = r; f0 = f; th0 = th; m0 = m; t0 = t }
        if (r > rmax) rmax = r; if (f > fmax) fmax = f; if (th > thmax) thmax = th; if (m > mmax) mmax = m
        re = r; fe = f; the = th; me = m; te = t
        sx += t; sy += r; sxx += t * t; sxy += t * r; sfy += f; sfxy += t * f
    }
    END {
        d = n * sxx - sx * sx
        slope = d ? (n * sxy - sx * sy) / d * 3600 : 0
        fslope = d ? (n * sfxy - sx * sfy) / d * 3600 : 0
        aslope = d ? (n * saxy - sx * say) / d * 3600 : 0
        printf "%d %d %d %d %d %d %d %d %d %d %d %d %d %.1f %.2f %.1f %d %d %d %.1f\n", n, r0, rmax, re, f0, fmax, fe, th0, thmax, the, m0, mmax, me, slope, fslope, te - t0, an0, anmax, ane, aslope
    }' "$CSV")
read -r NS RSS0 RSSMAX RSSEND FD0 FDMAX FDEND TH0 THMAX THEND M0 MMAX MEND SLOPE FSLOPE SPAN AN0 ANMAX ANEND ASLOPE <<<"$figs"
ABS=$(awk -F, 'NR > 1 {r = $3; if (!n++ || r < mn) mn = r; if (r > mx) mx = r} END {print mn, mx}' "$CSV")
FIRST_RSS=$(awk -F, 'NR == 2 {print $3}' "$CSV")

{
echo "=== vswitchd soak (issue 10): $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r)"
echo "vswitchd built from $COMMIT, DURATION=${DURATION}s WARMUP=${WARMUP}s SAMPLE_EVERY=${SAMPLE_EVERY}s TICK=${TICK}s GUEST_SEND=${GUEST_SEND}s"
echo
echo "churn: $N_CYCLES cycles in $(elapsed_since "$T_START" | cut -d. -f1) s ($(awk -v n="$N_CYCLES" -v s="$(elapsed_since "$T_START")" 'BEGIN {printf "%.1f", s / (n ? n : 1)}') s per cycle)"
echo "  port adds $N_PORT_ADD, port deletes $N_PORT_DEL, deletes refused while a flow used the port $N_PORT_REFUSED (409, expected)"
echo "  flow adds $N_FLOW_ADD, flow deletes $N_FLOW_DEL"
echo "  guest sessions $N_GUESTS (testpmd virtio-user txonly, ${GUEST_SEND}s each; server/client mode alternating; guest quits / port deleted under it alternating)"
echo "  changes per second over the run: $(awk -v n="$((N_PORT_ADD + N_PORT_DEL + N_PORT_REFUSED + N_FLOW_ADD + N_FLOW_DEL + 2 * N_GUESTS))" -v s="$(elapsed_since "$T_START")" 'BEGIN {printf "%.2f", n / s}') (port add/delete/refused, flow add/delete, guest connect + disconnect)"
echo
echo "vswitchd resources ($NS samples from the baseline at ${WARMUP}s on, over ${SPAN}s; every sample at a cycle boundary: ports a, b and flows a->b, b->drop only):"
echo "  RSS kB:   start $RSS0  max $RSSMAX  end $RSSEND  ($(awk -v a="$RSS0" -v b="$RSSEND" 'BEGIN {printf "%+.2f%%", 100 * (b - a) / a}') end vs start; slope $SLOPE kB/h; first sample of the run $FIRST_RSS, min/max over all samples $ABS)"
echo "    of which anonymous (the switch's own heap; the rest is its binary and the guests' shared memory it touched):"
echo "            start $AN0  max $ANMAX  end $ANEND  ($(awk -v a="$AN0" -v b="$ANEND" 'BEGIN {printf "%+d kB", b - a}'); slope $ASLOPE kB/h; per churn cycle after the baseline: $(awk -F, -v a="$AN0" -v b="$ANEND" 'NR > 1 && $2 == "baseline" {c0 = $17} NR > 1 {c1 = $17} END {printf "%.2f kB", (c1 > c0) ? (b - a) / (c1 - c0) : 0}' "$CSV"))"
echo "  open fds: start $FD0  max $FDMAX  end $FDEND  (slope $FSLOPE fds/h)"
echo "  threads:  start $TH0  max $THMAX  end $THEND"
echo "  maps:     start $M0  max $MMAX  end $MEND"
echo "  files left in socket_dir at the end (after the last cycle, before testpmd quit): ${SOCK_LEFT:-none}"
echo
echo "frame accounting (after the drain: a 'in_port=a -> drop' rule at priority 65000 emptied the loop):"
echo "  testpmd (the loop guest): port0->a TX-packets $P0_TX (TX-errors $P0_TXERR), port1<-b RX-packets $P1_RX (RX-missed $P1_MISS, RX-errors $P1_ERR), port1->b TX-packets $P1_TX (its tx_first burst)"
echo "  testpmd forward stats: port0 TX-dropped $F0_TXD (sends a's ring refused, tx_first's included: never reached the switch), port1 RX-dropped $F1_RXD"
echo "  switch: a rx $RX_A tx $TX_A tx_dropped $TXD_A guest_faults $GF_A; b rx $RX_B tx $TX_B tx_dropped $TXD_B guest_faults $GF_B"
echo "  switch drops: $(jq -c .drops <<<"$STATS"); PMD rx total $PMD_RX; rule drops before the drain $R0, after $R1 (drain D = $D)"
echo "  churn guests: sent $G_TX (testpmd TX-packets, over $N_GUESTS sessions; their own TX-dropped, ring full, never reached the switch: $G_TX_DROPPED_GUEST), switch counted rx $G_SW_RX, sent tx $G_SW_TX, tx_dropped $G_SW_TXDROP, guest_faults $G_FAULTS, sessions mismatched $G_MISMATCH"
} >"$WORK/summary.txt"

eq() {               # eq TEXT LEFT RIGHT: one equation, checked exactly
    local ok="ok"
    [[ $2 == "$3" ]] || { ok="MISMATCH by $(($2 - $3))"; fail "frame accounting: $1: $2 != $3"; }
    printf '  %-100s %s\n' "$1: $2 = $3" "$ok" >>"$WORK/summary.txt"
}
echo "equations:" >>"$WORK/summary.txt"
eq "(1) testpmd port0 TX-packets = switch a rx_packets" "$P0_TX" "$RX_A"
eq "(2) testpmd port1 TX-packets = switch b rx_packets" "$P1_TX" "$RX_B"
eq "(3) a rx = b tx + b tx_dropped + drain D + other drops ($OTHER_DROPS)" "$RX_A" "$((TX_B + TXD_B + D + OTHER_DROPS))"
eq "(4) switch b tx_packets = testpmd port1 RX-packets" "$TX_B" "$P1_RX"
eq "(5) drops tx_full = b tx_dropped + a tx_dropped + churn ports' tx_dropped" "$(drop tx_full)" "$((TXD_B + TXD_A + G_SW_TXDROP))"
eq "(6) drops rule = b rx (tx_first) + churn guests' rx + drain D" "$R1" "$((RX_B + G_SW_RX + D))"
eq "(7) PMD rx_packets = a rx + b rx + churn guests' rx" "$PMD_RX" "$((RX_A + RX_B + G_SW_RX))"
eq "(8) churn guests' TX-packets = switch rx on their ports" "$G_TX" "$G_SW_RX"
eq "(9) drops other than rule and tx_full" "$OTHER_DROPS" 0
eq "(10) frames the switch sent to a and to churn ports (no flow outputs there that matches)" "$((TX_A + G_SW_TX))" 0
eq "(11) vhost ring faults (guest_faults) on a, b and churn ports" "$((GF_A + GF_B + G_FAULTS))" 0
INJ0=$((P0_TX - P1_RX + F0_TXD))
{
echo "  testpmd inside the loop: port0 sent = tx_first attempts + what port1 received - testpmd's TX-dropped:"
echo "    $P0_TX = $INJ0 + $P1_RX - $F0_TXD (tx_first tries 32 bursts of 32 per port; TX-dropped counts the attempts a's"
echo "    ring refused and any io-forward drop). The loop held $((P0_TX - P1_RX)) frames: the switch dropped $TXD_B of them as"
echo "    tx_full (b's ring full) over the run and $D in the final drain"
echo
echo "vswitchd log: $VS_WARN WARN/ERROR lines$( ((VS_WARN)) && echo ": $(grep -E ' (WARN|ERROR) ' "$WORK/vswitchd.log" | sed -E 's/^[^ ]+ +//; s/[0-9]+/N/g' | sort | uniq -c | sort -rn | head -5 | tr '\n' ';')")"
} >>"$WORK/summary.txt"

# Resource verdicts.
awk -v a="$RSS0" -v b="$RSSEND" -v l="$RSS_LIMIT_PCT" 'BEGIN {exit !(b <= a * (1 + l / 100))}' ||
    fail "RSS grew more than ${RSS_LIMIT_PCT}% after the warm-up: $RSS0 -> $RSSEND kB"
((FDEND <= FD0)) || fail "open fds grew: $FD0 -> $FDEND"
((THEND <= TH0)) || fail "threads grew: $TH0 -> $THEND"

{
echo
if ((${#FAILS[@]})); then
    echo "VERDICT: FAIL (${#FAILS[@]})"
    printf '  - %s\n' "${FAILS[@]}" | head -40
else
    echo "VERDICT: PASS (RSS within ${RSS_LIMIT_PCT}%, fds and threads not above the start, every frame accounted for)"
fi
} >>"$WORK/summary.txt"
cat "$WORK/summary.txt"
save_results
((${#FAILS[@]} == 0))
