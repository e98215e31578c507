#!/usr/bin/env bash
# Runs the cargo-fuzz targets (docs/FUZZING.md).
#
#   deploy/fuzz.sh [--smoke] [--runs N] [--max-time SECONDS] [TARGET...]
#
# Full mode (the default) runs each target for 10,000,000 executions (--runs to change it,
# --max-time to stop a target earlier), one target at a time, growing its corpus in
# <crate>/fuzz/corpus/<target>. --smoke is CI's: each target for 20,000 executions or 20 s,
# whichever comes first, from the committed seeds into a throw-away corpus. Without TARGET,
# every target runs. Stops at the first crash, naming the artifact and how to replay it.
#
# Installs cargo-fuzz (and the C++ compiler libfuzzer-sys builds libFuzzer with) if missing.
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain take them.
# Build output goes to $CARGO_TARGET_DIR/fuzz (default target/fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# target crate sanitizer: ASan where the code under test has `unsafe` (ports: guest memory
# access, signal handling, the vhost crate's message parsing); none for the crates that forbid
# it (flowtable, api), where ASan would only slow the run (6x for rest_bodies). The smoke
# builds every target without ASan: one build flavour, so the api build (which includes
# ports and flowtable) serves the other crates too.
TARGETS=(
    "frame_key flowtable none"
    "match_text flowtable none"
    "split_ring ports address"
    "packed_ring ports address"
    "vhost_messages ports address"
    "rest_bodies api none"
)

smoke=0
runs=10000000
max_time=0
chosen=()
while (($#)); do
    case $1 in
        --smoke) smoke=1 ;;
        --runs) runs=$2; shift ;;
        --max-time) max_time=$2; shift ;;
        -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
        *) chosen+=("$1") ;;
    esac
    shift
done
if ((smoke)); then
    runs=20000
    max_time=20
fi

for t in "${chosen[@]}"; do
    if ! printf '%s\n' "${TARGETS[@]}" | grep -q "^$t "; then
        echo "fuzz.sh: no target $t (targets: frame_key match_text split_ring packed_ring vhost_messages rest_bodies)" >&2
        exit 2
    fi
done

if ! command -v c++ >/dev/null; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "fuzz.sh: libfuzzer-sys needs a C++ compiler; install g++ (or run as root)" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends g++
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    start=$SECONDS
    cargo install cargo-fuzz --locked
    echo "== cargo-fuzz installed in $((SECONDS - start)) s"
fi

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}/fuzz
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

total_start=$SECONDS
passed=0
for spec in "${TARGETS[@]}"; do
    read -r target crate sanitizer <<<"$spec"
    ((smoke)) && sanitizer=none
    if ((${#chosen[@]})) && ! printf '%s\n' "${chosen[@]}" | grep -qx "$target"; then
        continue
    fi
    fuzz_dir=$root/$crate/fuzz
    seeds=$fuzz_dir/seeds/$target
    if ((smoke)); then
        corpus=$scratch/$target
    else
        corpus=$fuzz_dir/corpus/$target
    fi
    mkdir -p "$corpus" "$fuzz_dir/artifacts/$target"
    dirs=("$corpus")
    [[ -d $seeds ]] && dirs+=("$seeds")
    args=(-runs="$runs" -timeout=25 -print_final_stats=1)
    ((max_time > 0)) && args+=(-max_total_time="$max_time")
    [[ -f $fuzz_dir/$target.dict ]] && args+=(-dict="$fuzz_dir/$target.dict")
    # -a: debug assertions and overflow checks, as in the test suite.
    opts=(-a --sanitizer "$sanitizer")

    echo "== $target ($crate, sanitizer $sanitizer): building"
    build_start=$SECONDS
    (cd "$root/$crate" && cargo fuzz build "${opts[@]}" "$target")
    echo "== $target: built in $((SECONDS - build_start)) s; running ${args[*]}"
    log=$scratch/$target.log
    run_start=$SECONDS
    before=$(find "$fuzz_dir/artifacts/$target" -type f | wc -l)
    set +e
    (cd "$root/$crate" && cargo fuzz run "${opts[@]}" "$target" "${dirs[@]}" -- "${args[@]}") 2>&1 |
        tee "$log" |
        grep --line-buffered -E '^(Done|stat::|INFO: seed corpus)|^==[0-9]+==|panicked at|ERROR'
    status=${PIPESTATUS[0]}
    set -e
    secs=$((SECONDS - run_start))
    artifacts=$(find "$fuzz_dir/artifacts/$target" -type f | wc -l)
    if ((status != 0 || artifacts > before)); then
        artifact=$(find "$fuzz_dir/artifacts/$target" -type f -printf '%T@ %p\n' | sort -n |
            tail -1 | cut -d' ' -f2-)
        grep -A25 -E 'panicked at|^==[0-9]+==ERROR' "$log" | head -40 || tail -40 "$log"
        echo "fuzz.sh: CRASH in $target (exit $status): ${artifact:-no artifact written}" >&2
        echo "fuzz.sh: replay with: cd $crate && RUSTC_BOOTSTRAP=1 cargo fuzz run ${opts[*]} $target ${artifact:-}" >&2
        exit 1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    files=$(find "$corpus" -type f | wc -l)
    passed=$((passed + 1))
    echo "RESULT target=$target executions=${execs:-?} seconds=$secs exec_per_s=${rate:-?} corpus=$files crashes=0"
done
echo "== fuzz.sh: done in $((SECONDS - total_start)) s"
echo "fuzz: $passed passed, 0 failed"
