#!/usr/bin/env bash
# `congress eval` end to end (process start to exit) on workload (a) converted to
# fixtures: generation and conversion are not timed.
#
# usage: benches/eval_a.sh [N]       N servers/ports/networks (default 100000)
#   SHARED_BENCH=../shared/bench     where gen_policy.py lives
#   RUNS=10                          timed runs (hyperfine when installed, else a loop)
#
# Prints `RESULT engine=congress workload=eval-a n=N phase=e2e secs=S` (the mean).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
RUNS=${RUNS:-10}
SHARED=${SHARED_BENCH:-../shared/bench}

cargo build --release --quiet --bin congress
BIN=$PWD/target/release/congress
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 benches/workload_a_fixtures.py "$N" "$TMP" "$SHARED" >/dev/null

CMD=("$BIN" eval -f "$TMP/policy" --data "$TMP/data")
# eval exits 1 when there are violations (workload a has some), 2 on bad input.
set +e
"${CMD[@]}" >"$TMP/out.txt" 2>"$TMP/err.txt"
rc=$?
set -e
if [ "$rc" -ge 2 ]; then
    echo "congress eval failed (exit $rc):" >&2
    head -20 "$TMP/err.txt" >&2
    exit 1
fi
echo "eval exit $rc, $(wc -l <"$TMP/out.txt") lines of output" >&2

if command -v hyperfine >/dev/null 2>&1; then
    hyperfine --warmup 1 --runs "$RUNS" -i --export-json "$TMP/h.json" \
        "${CMD[*]} >/dev/null 2>&1" >&2
    secs=$(python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["results"][0]["mean"])' "$TMP/h.json")
else
    total=0
    for _ in $(seq "$RUNS"); do
        s=$(date +%s.%N)
        "${CMD[@]}" >/dev/null 2>&1 || true
        e=$(date +%s.%N)
        total=$(python3 -c "print($total + $e - $s)")
    done
    secs=$(python3 -c "print('%.3f' % ($total / $RUNS))")
fi
echo "RESULT engine=congress workload=eval-a n=$N phase=e2e secs=$secs"
