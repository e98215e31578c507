#!/usr/bin/env bash
# Every end-to-end case of issue 12 in one command: vswitchd, OVS-DPDK 3.1 and DPDK vhost
# io-forward on the same machine with the same pinning, through bench/e2e/vhost-loop.sh (one
# invocation per case; inside a case, round r runs every switch back to back). Prints one
# progress line per case and round to stderr, and writes a markdown section (date, machine,
# commit, the table of cases x switches with the median Mpps and the ratios of the medians,
# the per-round numbers and the noise) to a file; --record also puts it into bench/RESULTS.md.
# See bench/e2e/README.md.
#
# Usage (root): bench/e2e/run-all.sh [--record] [--out FILE] [--title TEXT] [--keep-logs] [--dry-run]
#               --out: the section (default /tmp/vswitch-e2e-all-DATE.md); its raw rows go
#               beside it (same name, .tsv); --record also inserts it into bench/RESULTS.md;
#               --keep-logs keeps every case's full vhost-loop.sh log (removed otherwise).
# Environment:  ROUNDS=6 (interleaved rounds per case)  MEASURE=3 (s measured per run)
#               WARMUP=2 (s)  SAMPLES=3 (stats samples per window; peak = best sample)
#               The defaults take about 22 minutes here (9 cases x 3 switches x 6 rounds).
#               CASES="port l3 l3-packed 1518 flows-1 flows-1k flows-100k flows-1M flows-10M"
#               ONLY="vswitchd ovs-dpdk dpdk-vhost" (switches, passed on to vhost-loop.sh)
#               FAST_C2C_NS (the host-state bound for the fast-state table; default the
#               top of the lower cluster of the run's c2c readings)
#               and whatever vhost-loop.sh reads (VSWITCHD, CARGO_TARGET_DIR, ...).
set -euo pipefail

ROUNDS=${ROUNDS:-6}
MEASURE=${MEASURE:-3}
WARMUP=${WARMUP:-2}
SAMPLES=${SAMPLES:-3}
CASES=${CASES:-"port l3 l3-packed 1518 flows-1 flows-1k flows-100k flows-1M flows-10M"}
ONLY=${ONLY:-"vswitchd ovs-dpdk dpdk-vhost"}

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
LOOP=$HERE/vhost-loop.sh
RESULTS_MD=$REPO/bench/RESULTS.md
STAMP=$(date +%Y%m%d-%H%M%S)
OUT="" RECORD=0 DRY=0 TITLE="" KEEP_LOGS=0

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while (($#)); do
    case $1 in
        --record) RECORD=1 ;;
        --out) OUT=${2:?--out needs a file}; shift ;;
        --title) TITLE=${2:?--title needs a text}; shift ;;
        --dry-run) DRY=1 ;;
        --keep-logs) KEEP_LOGS=1 ;;
        -h | --help) usage 0 ;;
        *) echo "unknown argument $1" >&2; usage 1 >&2 ;;
    esac
    shift
done
OUT=${OUT:-/tmp/vswitch-e2e-all-$STAMP.md}
TITLE=${TITLE:-"End to end, all cases (issue 12 harness), $(date +%Y-%m-%d)"}

log() { printf '[%(%H:%M:%S)T +%s] %s\n' -1 "$(elapsed)" "$*" >&2; }
elapsed() { local s=$((SECONDS - T_START)); printf '%d:%02d' $((s / 60)) $((s % 60)); }
die() { log "ERROR: $*"; exit 1; }
T_START=$SECONDS

# case NAME -> the environment of vhost-loop.sh, and its label in the table.
case_env() {
    case $1 in
        port) echo "RULES=port" ;;
        l3) echo "RULES=l3" ;;
        l3-packed) echo "RULES=l3 PACKED=1" ;;
        1518) echo "RULES=port SIZE=1518" ;;
        flows-*)
            local n=${1#flows-}
            n=${n/%k/000}; n=${n/%M/000000}
            [[ $n =~ ^[1-9][0-9]*$ ]] || return 1
            echo "FLOWS=$n RULES=wild" ;;
        *) return 1 ;;
    esac
}
case_label() {
    case $1 in
        port) echo "port rules, 64 B" ;;
        l3) echo "l3 rules, 64 B" ;;
        l3-packed) echo "l3 rules, 64 B, packed ring asked" ;;
        1518) echo "port rules, 1518 B" ;;
        flows-1) echo "1 flow, 1 wildcard rule/dir, 64 B" ;;
        flows-*) echo "${1#flows-} flows, 1 wildcard rule/dir, 64 B" ;;
    esac
}
for c in $CASES; do case_env "$c" >/dev/null || die "unknown case $c (port l3 l3-packed 1518 flows-N[k|M])"; done
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $MEASURE =~ ^[0-9]+$ && $WARMUP =~ ^[0-9]+$ && $SAMPLES =~ ^[1-9][0-9]*$ ]] ||
    die "ROUNDS, MEASURE, WARMUP, SAMPLES must be integers"
NCASES=$(wc -w <<<"$CASES") NSW=$(wc -w <<<"$ONLY")
log "$NCASES cases x $NSW switches x $ROUNDS rounds = $((NCASES * NSW * ROUNDS)) runs of ${WARMUP}s + ${MEASURE}s (+ ~3.5 s start/stop each): about $(( (NCASES * NSW * ROUNDS * (2 * (WARMUP + MEASURE) + 7) / 2 + 59) / 60 )) min"
if ((DRY)); then
    for c in $CASES; do echo "$c: $(case_env "$c") CASE=$c REPEAT=$ROUNDS WARMUP=$WARMUP SAMPLES=$SAMPLES ONLY=\"$ONLY\" $LOOP $MEASURE"; done
    exit 0
fi
[[ $(id -u) -eq 0 ]] || die "run as root (vhost-loop.sh needs hugepages, packages, DPDK)"

# ---------------------------------------------------------------- state and cleanup
LOGDIR=$(mktemp -d /tmp/vswitch-e2e-all.XXXXXX)
TSV=$LOGDIR/results.tsv
: >"$TSV"
HP_ORIG=$(cat /proc/sys/vm/nr_hugepages)
CHILD=""
cleanup() {
    local rc=$?
    set +e
    if [[ -n $CHILD ]] && kill -0 "$CHILD" 2>/dev/null; then
        kill -TERM "$CHILD" 2>/dev/null     # vhost-loop.sh stops what it started, by PID
        wait "$CHILD" 2>/dev/null
    fi
    # The cases share the hugepages (KEEP_HUGEPAGES=1); give back what we raised, once.
    [[ $(cat /proc/sys/vm/nr_hugepages) != "$HP_ORIG" ]] && echo "$HP_ORIG" >/proc/sys/vm/nr_hugepages
    [[ -s $TSV ]] && cp "$TSV" "${OUT%.md}.tsv"
    if ((KEEP_LOGS)); then log "logs kept in $LOGDIR"; else rm -rf "$LOGDIR"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- the machine
cpu_model=$(lscpu | awk -F: '/^Model name/ {gsub(/^ +/, "", $2); print $2; exit}')
cpus=$(nproc) tpc=$(lscpu | awk -F: '/^Thread\(s\) per core/ {gsub(/ /, "", $2); print $2; exit}')
hyp=$(lscpu | awk -F: '/^Hypervisor vendor/ {gsub(/^ +/, "", $2); print $2 " guest"; exit}')
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -n $(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null) ]] && commit+=" (with uncommitted changes)"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
busy_start=$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 10 {printf "%s %s%%, ", $2, $1}'); busy_start=${busy_start%, }
log "machine: $cpu_model, $cpus CPUs, kernel $(uname -r); load $load_start; busy: ${busy_start:-nothing}"
log "section goes to $OUT (raw rows ${OUT%.md}.tsv)$( ((RECORD)) && echo " and into $RESULTS_MD"); logs in $LOGDIR$( ((KEEP_LOGS)) || echo " (removed at the end; --keep-logs keeps them)")"

# ---------------------------------------------------------------- the cases
# The functions both awk programs below use (mawk-compatible: no asort).
# shellcheck disable=SC2016  # an awk program: its $ are awk's
SORT_AWK='
function sortn(a, n,    i, j, t) {
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
}
function median(list,    a, n) {
    n = split(list, a, " ")
    if (n == 0) return ""
    sortn(a, n)
    return n % 2 ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2
}'
# One case's median Mpps per switch and the two ratios, from results.tsv.
# shellcheck disable=SC2016  # an awk program: its $ are awk's
MEDIANS_AWK=$SORT_AWK'
$1 == c && $4 != "-" { list[$3] = list[$3] " " ($4 + $5) }
END {
    n = split(only, SW, " "); out = "medians"
    for (k = 1; k <= n; k++) { m[SW[k]] = median(list[SW[k]]); out = out sprintf(" %s %s;", SW[k], m[SW[k]] == "" ? "-" : sprintf("%.2f", m[SW[k]] / 1e6)) }
    v = m["vswitchd"]; o = m["ovs-dpdk"]; d = m["dpdk-vhost"]
    if (v != "" && o != "") out = out sprintf(" vswitchd/OVS %.2f", v / o)
    if (v != "" && d != "") out = out sprintf(" vswitchd/DPDK %.2f", v / d)
    print out " (Mpps)"
}'
i=0
for c in $CASES; do
    i=$((i + 1))
    read -ra envs <<<"$(case_env "$c")"
    log "case $c ($i/$NCASES): $(case_label "$c"); ${envs[*]}"
    clog=$LOGDIR/$c.log
    env "${envs[@]}" CASE="$c" RESULTS_TSV="$TSV" REPEAT="$ROUNDS" WARMUP="$WARMUP" SAMPLES="$SAMPLES" \
        ONLY="$ONLY" KEEP_HUGEPAGES=1 "$LOOP" "$MEASURE" >"$clog" 2>&1 &
    CHILD=$!
    seen=0
    while :; do
        alive=0; kill -0 "$CHILD" 2>/dev/null && alive=1
        mapfile -t done_lines < <(grep -o 'round [0-9]*/[0-9]* done:.*' "$clog" 2>/dev/null || true)
        for ((k = seen; k < ${#done_lines[@]}; k++)); do log "$c ($i/$NCASES): ${done_lines[k]}"; done
        seen=${#done_lines[@]}
        ((alive)) || break
        sleep 1
    done
    rc=0; wait "$CHILD" || rc=$?
    CHILD=""
    if ((rc != 0)); then
        log "$c: vhost-loop.sh exited with $rc; last lines of $clog:"; tail -5 "$clog" >&2
    fi
    grep -E 'no result|FAILED|SKIPPED|did not' "$clog" | sed "s/^/    /" >&2 || true
    # The case's medians and their ratios, as the table will show them.
    log "$c ($i/$NCASES) done: $(awk -F'\t' -v c="$c" -v only="$ONLY" "$MEDIANS_AWK" "$TSV")"
done
T_TOTAL=$(elapsed)
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
log "all cases done in $T_TOTAL (m:ss)"

# ---------------------------------------------------------------- the section
# results.tsv (one line per switch and round, written by vhost-loop.sh):
#   case round switch port0_pps port1_pps peak_pps ring frame_bytes pmd% guest% others% steal%
#   c2c_ns_before c2c_ns_after
# -> the markdown tables.
# shellcheck disable=SC2016  # an awk program: its $ are awk's
REPORT_AWK=$SORT_AWK'
function mpps(x) { return x == "" ? "-" : sprintf("%.2f", x / 1e6) }
function ratio(x, y) { return (x == "" || y == "" || y == 0) ? "-" : sprintf("%.2f", x / y) }
function ringname(r) { split(r, p, ","); return p[1] == p[2] ? p[1] : r }
function header(first, extra,    k) {
    printf "| %s |", first; for (k = 1; k <= nsw; k++) printf " %s |", name[SW[k]]; printf "%s\n", extra
}
BEGIN {
    nl = split(labels, L, "\t")
    for (i = 1; i <= nl; i++) { k = index(L[i], "="); if (k) label[substr(L[i], 1, k - 1)] = substr(L[i], k + 1) }
    nsw = split(only, SW, " "); nc = split(cases, C, " ")
    name["vswitchd"] = "vswitchd"; name["vswitchd-busy"] = "vswitchd, busy-poll"; name["vswitchd-alt"] = "vswitchd (alt)"
    name["ovs-dpdk"] = "OVS-DPDK"; name["dpdk-vhost"] = "DPDK vhost"
    hasvs = 0; for (k = 1; k <= nsw; k++) if (SW[k] == "vswitchd") hasvs = 1
    sep = ""; for (k = 1; k <= nsw; k++) sep = sep "---|"
}
{
    c = $1; r = $2; s = $3
    runs[c]++
    if ($4 != "-") {
        t = $4 + $5; tot[c, s, r] = t; list[c, s] = list[c, s] " " t
        if ($6 + 0 > peak[c, s]) peak[c, s] = $6 + 0
        olist = olist " " $11; if ($11 + 0 > maxo) maxo = $11 + 0
        if ($9 + 0 < 90 || $10 + 0 < 90) { starved++; noisy[c]++ }
        if ($12 + 0 > maxst) maxst = $12 + 0
        nruns++
    } else failed[c, s]++
    # A run whose guest never came up has no ring ("unknown"): leave it out.
    if ($7 != "unknown" && !((c, s, $7) in seenring)) { seenring[c, s, $7] = 1; ring[c, s] = ring[c, s] (ring[c, s] == "" ? "" : " or ") ringname($7) }
    if ($8 != "-" && $8 != "?") fb[c] = $8
    # The host state around the run: the slower of the c2c readings before and after it.
    if ($13 ~ /^[0-9]+$/ && $14 ~ /^[0-9]+$/) {
        x = ($13 + 0 > $14 + 0) ? $13 + 0 : $14 + 0
        c2c[c, s, r] = $13 "/" $14; worst[c, s, r] = x
        readings[++nread] = $13 + 0; readings[++nread] = $14 + 0
    }
}
END {
    printf "Mpps through the switch (both directions summed), **median** over the rounds; the ratios are of\n"
    printf "the medians. *ring*: the ring each switch ran, from the feature bits the guest negotiated.\n"
    printf "*noisy*: runs in which the switch'"'"'s forwarding thread or the guest'"'"'s got under 90 %% of its CPU.\n\n"
    ringhdr = ""; for (k = 1; k <= nsw; k++) ringhdr = ringhdr (k > 1 ? " / " : "") name[SW[k]]
    header("case", (hasvs ? " vswitchd / OVS-DPDK | vswitchd / DPDK vhost |" : "") " ring (" ringhdr ") | noisy |")
    printf "|---|%s%s---|---|\n", sep, hasvs ? "---|---|" : ""
    for (i = 1; i <= nc; i++) {
        c = C[i]; printf "| %s |", label[c]
        for (k = 1; k <= nsw; k++) {
            s = SW[k]; med[c, s] = median(list[c, s])
            printf " %s%s |", mpps(med[c, s]), failed[c, s] ? " (" failed[c, s] " failed)" : ""
        }
        if (hasvs) printf " **%s** | **%s** |", ratio(med[c, "vswitchd"], med[c, "ovs-dpdk"]), ratio(med[c, "vswitchd"], med[c, "dpdk-vhost"])
        rr = ""; for (k = 1; k <= nsw; k++) rr = rr (k > 1 ? " / " : "") (ring[c, SW[k]] == "" ? "?" : ring[c, SW[k]])
        printf " %s | %d/%d |\n", rr, noisy[c], runs[c]
    }
    printf "\nFrames as the guest received them: "
    for (i = 1; i <= nc; i++) printf "%s%s %s B", (i > 1 ? ", " : ""), C[i], (C[i] in fb) ? fb[C[i]] : "?"
    printf ".\n\nPeak: the best single sample of the total in any round (the host'"'"'s noise only lowers rates), Mpps:\n\n"
    header("case", hasvs ? " peak vswitchd / OVS-DPDK | peak vswitchd / DPDK vhost |" : "")
    printf "|---|%s%s\n", sep, hasvs ? "---|---|" : ""
    for (i = 1; i <= nc; i++) {
        c = C[i]; printf "| %s |", c
        for (k = 1; k <= nsw; k++) printf " %s |", ((c, SW[k]) in peak) ? mpps(peak[c, SW[k]]) : "-"
        if (hasvs) printf " %s | %s |", ratio(peak[c, "vswitchd"], peak[c, "ovs-dpdk"]), ratio(peak[c, "vswitchd"], peak[c, "dpdk-vhost"])
        printf "\n"
    }
    printf "\nPer round (Mpps through the switch; the ratios are of that round'"'"'s back-to-back runs):\n\n"
    header("case | round", hasvs ? " vswitchd / OVS-DPDK | vswitchd / DPDK vhost |" : "")
    printf "|---|---|%s%s\n", sep, hasvs ? "---|---|" : ""
    for (i = 1; i <= nc; i++) for (r = 1; r <= rounds; r++) {
        c = C[i]; printf "| %s | %d |", c, r
        for (k = 1; k <= nsw; k++) printf " %s |", ((c, SW[k], r) in tot) ? mpps(tot[c, SW[k], r]) : "-"
        if (hasvs) {
            v = ((c, "vswitchd", r) in tot) ? tot[c, "vswitchd", r] : ""
            o = ((c, "ovs-dpdk", r) in tot) ? tot[c, "ovs-dpdk", r] : ""
            d = ((c, "dpdk-vhost", r) in tot) ? tot[c, "dpdk-vhost", r] : ""
            printf " %s | %s |", ratio(v, o), ratio(v, d)
        }
        printf "\n"
    }
    # The same medians over the runs that caught the host in its fast state: both c2c readings
    # at or under the bound (FAST_C2C_NS, or the top of the lower cluster of all readings:
    # sorted, they split at their widest ratio, when that is over 2x; one cluster: all fast).
    sortn(readings, nread)
    thr = nread ? readings[nread] : 0; widest = 2
    for (i = 1; i < nread; i++) if (readings[i] > 0 && readings[i + 1] / readings[i] > widest) { widest = readings[i + 1] / readings[i]; thr = readings[i] }
    if (fastc2c + 0 > 0) thr = fastc2c + 0
    minc2c = nread ? readings[1] : 0; maxc2c = nread ? readings[nread] : 0
    if (thr > 0) {
        printf "\nIn the host'"'"'s fast state only: the runs whose cache-line transfer CPU 0 <-> 1 (read by\n"
        printf "`vhost_probe c2c` before and after each run) stayed at or under %d ns (the readings of the run\n", thr
        printf "went from %d to %d ns; the bound is the top of their lower cluster, or FAST_C2C_NS; with one\n", minc2c, maxc2c
        printf "cluster every run counts). Medians, Mpps, (fast runs/runs):\n\n"
        header("case", hasvs ? " vswitchd / OVS-DPDK | vswitchd / DPDK vhost |" : "")
        printf "|---|%s%s\n", sep, hasvs ? "---|---|" : ""
        for (i = 1; i <= nc; i++) {
            c = C[i]; printf "| %s |", c
            for (k = 1; k <= nsw; k++) {
                s = SW[k]; fl = ""; nf = 0; na = 0
                for (r = 1; r <= rounds; r++) if ((c, s, r) in tot) { na++; if (((c, s, r) in worst) && worst[c, s, r] <= thr) { fl = fl " " tot[c, s, r]; nf++ } }
                fmed[c, s] = median(fl)
                printf " %s (%d/%d) |", mpps(fmed[c, s]), nf, na
            }
            if (hasvs) printf " **%s** | **%s** |", ratio(fmed[c, "vswitchd"], fmed[c, "ovs-dpdk"]), ratio(fmed[c, "vswitchd"], fmed[c, "dpdk-vhost"])
            printf "\n"
        }
        printf "\nHost state per run, c2c ns before/after (`f`: counted as fast above):\n\n"
        header("case | round", "")
        printf "|---|---|%s\n", sep
        for (i = 1; i <= nc; i++) for (r = 1; r <= rounds; r++) {
            c = C[i]; printf "| %s | %d |", c, r
            for (k = 1; k <= nsw; k++) {
                s = SW[k]
                printf " %s%s |", ((c, s, r) in c2c) ? c2c[c, s, r] : "-", (((c, s, r) in worst) && worst[c, s, r] <= thr) ? " f" : ""
            }
            printf "\n"
        }
    }
    printf "\n**Noise:** over the %d runs, everything but the switch and the guest used a median of %s %% and at\n", nruns, median(olist)
    printf "most %d %% of one CPU during the measured windows; %d run(s) had the switch'"'"'s forwarding thread or\n", maxo, starved
    printf "the guest'"'"'s under 90 %% of its CPU; steal at most %d %%.\n", maxst
}'
dpdk_ver=$(dpkg-query -W -f='${Version}' dpdk-dev 2>/dev/null | sed 's/-.*//')
ovs_ver=$(dpkg-query -W -f='${Version}' openvswitch-switch-dpdk 2>/dev/null | sed 's/-.*//')
labels=""
for c in $CASES; do labels+="$c=$(case_label "$c")"$'\t'; done
{
    echo "## $TITLE"
    echo
    echo "\`bench/e2e/run-all.sh\` (commit \`$commit\`): $ROUNDS interleaved rounds per case (round r runs every"
    echo "switch of the case back to back), each run ${WARMUP} s warm-up + ${MEASURE} s measured in $SAMPLES samples;"
    echo "the whole run took $T_TOTAL (m:ss)."
    echo "Machine: $cpu_model${hyp:+ ($hyp)}, $cpus CPUs ($tpc thread(s) per core), $mem, kernel $(uname -r),"
    echo "DPDK ${dpdk_ver:-?}, OVS ${ovs_ver:-?}. testpmd guest (two virtio-user ports) on CPU 0, each switch's"
    echo "forwarding core alone on CPU 1. Load average at start $load_start, at end $load_end; busy at start:"
    echo "${busy_start:-nothing over 10 %}."
    echo
    awk -F'\t' -v only="$ONLY" -v cases="$CASES" -v labels="$labels" -v rounds="$ROUNDS" \
        -v fastc2c="${FAST_C2C_NS:-0}" "$REPORT_AWK" "$TSV"
    echo
    echo "Cases: \`port\` = rules \`in_port=p0 -> output:p1\` and back; \`l3\` = \`in_port, ip, ip_dst=198.18.0.0/15\`"
    echo "(every frame through both switches' exact-match cache); \`packed\` = the guest's virtio-user ports ask"
    echo "for the packed ring (\`packed_vq=1\`); \`flows\` = testpmd \`flowgen\` on both guest ports (N destination"
    echo "addresses, as fast as the guest core can), rule \`in_port, ip, ip_dst=10.0.0.0/7\` per direction;"
    echo "the io cases loop 2048 frames (\`start tx_first 32\`). Raw rows (one per switch and round): \`$(basename "${OUT%.md}").tsv\`."
} >"$OUT"
log "wrote $OUT"
grep -A2 '^\*\*Noise' "$OUT" | tr '\n' ' ' | sed 's/\*//g; s/^Noise:/noise:/; s/ *$/\n/' >&2

if ((RECORD)); then
    # Newest first: the section goes before the first dated section after "## Machine".
    awk -v f="$OUT" '
        /^## / && seen_machine && !done { while ((getline l < f) > 0) print l; print ""; done = 1 }
        /^## Machine/ { seen_machine = 1 }
        { print }
        END { if (!done) { print ""; while ((getline l < f) > 0) print l } }
    ' "$RESULTS_MD" >"$RESULTS_MD.new" && mv "$RESULTS_MD.new" "$RESULTS_MD"
    log "recorded in $RESULTS_MD"
fi
cat "$OUT"
