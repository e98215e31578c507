# shellcheck shell=bash
# shellcheck disable=SC2034 # OVS_* results are read by the scripts that source this.
# Shared by the scripts that start their own processes (bench/e2e/vhost-loop.sh,
# tcp-stream.sh, bench/soak/soak.sh): logging, packages, processes by PID and their CPU time,
# waiting on logs, hugepages, a private OVS-DPDK. Its functions read WORK, TAG, PIDS,
# GUEST_CPU and SWITCH_CPU when called.

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

install_missing() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
}

stop_pid() {         # stop_pid PID [grace-seconds]: SIGTERM, then SIGKILL; only our own PIDs
    local pid=$1 grace=${2:-10} i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && { log "pid $pid ignored SIGTERM; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
    wait "$pid" 2>/dev/null || true
}
forget_pid() { local p=$1 k; for k in "${!PIDS[@]}"; do [[ ${PIDS[k]} == "$p" ]] && unset 'PIDS[k]'; done; return 0; }
stop_all() { local p; for p in "${PIDS[@]}"; do stop_pid "$p" 5; done; PIDS=(); }
dpdk_leftovers() {   # hugepage files and runtime dirs of our DPDK prefixes
    rm -f /dev/hugepages/"$TAG"-* 2>/dev/null || true
    rm -rf /var/run/dpdk/"$TAG"-* 2>/dev/null || true
}

# running PID: the process exists and is not a zombie (an exited child we have not reaped
# yet still answers kill -0).
running() {
    local st
    st=$(sed 's/.*) //' /proc/"$1"/stat 2>/dev/null | cut -d' ' -f1)
    [[ -n $st && $st != Z ]]
}
# wait_for FILE PATTERN TIMEOUT [MIN_COUNT [PID]]: until FILE has >= MIN_COUNT lines matching
# PATTERN; gives up early when PID (the process writing FILE) has exited.
wait_for() {
    local file=$1 pat=$2 timeout=$3 want=${4:-1} pid=${5:-} i n
    for ((i = 0; i < timeout * 10; i++)); do
        n=$(grep -c -- "$pat" "$file" 2>/dev/null || true)
        ((${n:-0} >= want)) && return 0
        [[ -n $pid ]] && ! running "$pid" && return 1
        sleep 0.1
    done
    return 1
}

# proc_ticks PID [threads]: utime+stime of a process (all threads; 0 once it is gone), or
# of each thread: "tid ticks".
proc_ticks() {
    local pid=$1 t
    if [[ ${2:-} == threads ]]; then
        for t in /proc/"$pid"/task/*; do
            awk -v tid="${t##*/}" '{sub(/.*\) /, ""); print tid, $12 + $13}' "$t/stat" 2>/dev/null
        done
    else
        awk '{sub(/.*\) /, ""); print $12 + $13}' /proc/"$pid"/stat 2>/dev/null || echo 0
    fi
}

# mount_hugepages: mounts hugetlbfs on /dev/hugepages unless it is; sets HP_MOUNTED=1 when
# it did (the caller unmounts it on its way out).
mount_hugepages() {
    grep -qs '^[^ ]* /dev/hugepages hugetlbfs' /proc/mounts && return 0
    mkdir -p /dev/hugepages && mount -t hugetlbfs nodev /dev/hugepages && HP_MOUNTED=1
}

# build_vswitchd: builds $VSWITCHD (release) from $REPO when it is missing or older than the
# sources.
build_vswitchd() {
    if [[ ! -x $VSWITCHD ]] || [[ -n $(find "$REPO"/{api,switch,ports,flowtable}/src "$REPO"/Cargo.lock \
            -newer "$VSWITCHD" -print -quit 2>/dev/null) ]]; then
        log "building vswitchd (release)"
        (cd "$REPO" && nice -n 10 cargo build --release -p api --locked -q) || die "cargo build failed"
    fi
}

OVS_VSWITCHD_DPDK=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
OVS_SCHEMA=/usr/share/openvswitch/vswitch.ovsschema

# ovs_install: installs Debian's openvswitch-switch-dpdk (its postinst tries to start the
# service; policy-rc.d or no systemd simply skips it: we never use the system instance). Sets
# OVS_OK (1 or 0) and, when 0, the reason in OVS_WHY.
ovs_install() {
    OVS_OK=1 OVS_WHY=""
    if ! install_missing openvswitch-switch-dpdk; then
        OVS_OK=0 OVS_WHY="apt-get could not install openvswitch-switch-dpdk"
    elif [[ ! -x $OVS_VSWITCHD_DPDK ]]; then
        OVS_OK=0 OVS_WHY="$OVS_VSWITCHD_DPDK missing after installing openvswitch-switch-dpdk"
    fi
}

# ovs_start DIR [other_config:KEY=VALUE ...]: a private OVS-DPDK (its own db, run and log dirs
# in DIR; the system instance, if any, is untouched): ovsdb-server and ovs-vswitchd-dpdk with
# its main lcore on GUEST_CPU and one PMD on SWITCH_CPU, plus the extra settings. Sets
# OVS_DB_PID, OVS_VS_PID and OVS_VSCTL (the ovs-vsctl command line, an array); on failure
# returns 1 with the reason in OVS_WHY. Stop it with ovs_stop.
ovs_start() {
    local d=$1
    shift
    export OVS_RUNDIR=$d OVS_DBDIR=$d OVS_LOGDIR=$d OVS_SYSCONFDIR=$d
    OVS_VSCTL=(ovs-vsctl --db="unix:$d/db.sock" --timeout=60)
    ovsdb-tool create "$d/conf.db" "$OVS_SCHEMA" >/dev/null
    taskset -c "$GUEST_CPU" ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" \
        --unixctl="$d/ovsdb-server.ctl" --log-file="$d/ovsdb-server.log" >/dev/null 2>&1 &
    OVS_DB_PID=$!
    OVS_VS_PID=""
    PIDS+=("$OVS_DB_PID")
    local i; for ((i = 0; i < 100; i++)); do [[ -S $d/db.sock ]] && break; sleep 0.1; done
    if ! "${OVS_VSCTL[@]}" --no-wait init; then
        OVS_WHY="ovsdb-server did not start: $(tail -3 "$d/ovsdb-server.log" 2>/dev/null)"
        return 1
    fi
    "${OVS_VSCTL[@]}" --no-wait set Open_vSwitch . \
        other_config:dpdk-init=true \
        other_config:dpdk-lcore-mask=0x$((1 << GUEST_CPU)) \
        other_config:pmd-cpu-mask=0x$((1 << SWITCH_CPU)) \
        other_config:dpdk-socket-mem=512 \
        other_config:dpdk-extra="--no-pci --iova-mode=va --file-prefix=$TAG-ovs" "$@"
    # The DPDK main lcore (dpdk-lcore-mask) pins the main thread to CPU 0; handler and
    # revalidator threads inherit that; the PMD pins itself to CPU 1 (pmd-cpu-mask).
    "$OVS_VSWITCHD_DPDK" "unix:$d/db.sock" --unixctl="$d/ovs-vswitchd.ctl" \
        --log-file="$d/ovs-vswitchd.log" >/dev/null 2>&1 &
    OVS_VS_PID=$!
    PIDS+=("$OVS_VS_PID")
}

# ovs_add_vhost_ports DIR: bridge br0 (netdev) with dpdkvhostuser ports p0 and p1 (OpenFlow
# ports 1 and 2, sockets DIR/p0 and DIR/p1, OVS the server), waiting for the sockets. On
# failure returns 1 with the reason in OVS_WHY.
ovs_add_vhost_ports() {
    local d=$1 i
    if ! "${OVS_VSCTL[@]}" add-br br0 -- set bridge br0 datapath_type=netdev \
        -- add-port br0 p0 -- set Interface p0 type=dpdkvhostuser ofport_request=1 \
        -- add-port br0 p1 -- set Interface p1 type=dpdkvhostuser ofport_request=2 >"$d/vsctl.err" 2>&1; then
        OVS_WHY="ovs-vsctl add-br/add-port failed: $(tr '\n' ' ' <"$d/vsctl.err") $(grep -E 'ERR|EMER|WARN' "$d/ovs-vswitchd.log" | tail -3 | tr '\n' ' ')"
        return 1
    fi
    if ! kill -0 "$OVS_VS_PID" 2>/dev/null; then
        OVS_WHY="ovs-vswitchd-dpdk exited: $(tail -3 "$d/ovs-vswitchd.log" | tr '\n' ' ')"
        return 1
    fi
    for ((i = 0; i < 100; i++)); do [[ -S $d/p0 && -S $d/p1 ]] && break; sleep 0.1; done
    if [[ ! -S $d/p0 || ! -S $d/p1 ]]; then
        OVS_WHY="no vhost-user sockets $d/p0, $d/p1: $(grep -E 'ERR|WARN' "$d/ovs-vswitchd.log" | tail -3 | tr '\n' ' ')"
        return 1
    fi
}

# ovs_stop: stops what ovs_start started, by PID.
ovs_stop() {
    if [[ -n ${OVS_VS_PID:-} ]]; then stop_pid "$OVS_VS_PID" 20; forget_pid "$OVS_VS_PID"; fi
    if [[ -n ${OVS_DB_PID:-} ]]; then stop_pid "$OVS_DB_PID" 10; forget_pid "$OVS_DB_PID"; fi
    OVS_VS_PID="" OVS_DB_PID=""
    unset OVS_RUNDIR OVS_DBDIR OVS_LOGDIR OVS_SYSCONFDIR
    dpdk_leftovers
}
