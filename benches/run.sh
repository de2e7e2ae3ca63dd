#!/usr/bin/env bash
# Run `congress bench` on the shared bench workloads and print every RESULT line.
#
# usage: benches/run.sh [N]          N for workloads a, b, d (default 100000)
#   C_SIZES="1000 10000 100000"      sizes for workload C (each plain and --exec)
#   SHARED_BENCH=../shared/bench     where gen_policy.py and gen_graph.py live
#   BENCH_ARGS="--runs 9 --runs-load 3"   extra flags for every `congress bench` run
#                                    (defaults: --runs 5 evals, --runs-load 1 load)
#
# The rss line is the process's peak RSS, allocator retention included: mimalloc keeps
# freed memory committed for a while (MIMALLOC_PURGE_DELAY, default 10 ms), which the
# environment passes through to every run if set.
#
# RESULT lines go to stdout; each run's human summary goes to stderr
# (`benches/run.sh 2>/dev/null` keeps only the RESULT lines).
set -euo pipefail

cd "$(dirname "$0")/.."
N=${1:-100000}
C_SIZES=${C_SIZES:-"1000 10000 100000"}
SHARED=${SHARED_BENCH:-../shared/bench}

cargo build --release --quiet --bin congress
BIN=target/release/congress

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# Data generation is never timed.
python3 "$SHARED/gen_policy.py" "$N" "$TMP/policy"
python3 "$SHARED/gen_graph.py" "$N" "$TMP/graph"

read -r -a EXTRA <<<"${BENCH_ARGS:-}"
bench() { "$BIN" bench "$@" ${EXTRA[@]+"${EXTRA[@]}"}; }

for n in $C_SIZES; do
    bench --workload C --n "$n"
    bench --workload C --n "$n" --exec
done
bench --workload a --n "$N" --data "$TMP/policy"
bench --workload d --n "$N" --data "$TMP/policy"
bench --workload b --n "$N" --data "$TMP/graph"
