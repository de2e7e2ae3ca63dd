#!/usr/bin/env bash
# congress beside its peers on the shared bench workloads, in one run, with ratios.
#
# usage: benches/peers.sh [N]        N for workloads a, b, c (default 100000)
#   SHARED_BENCH=../shared/bench     where the generators and peers_py.py live
#   RUNS=3                           runs of every engine on every workload (medians reported)
#   C_SIZES="100000"                 sizes of workload C (congress only: no peer runs it)
#   PEERS_VENV=target/peers-venv     the venv DuckDB is installed into (from PyPI)
#   SKIP_RUST_PEERS=1                skip building benches/peers (ascent, crepe, differential-dataflow)
#
# Installs what it can: DuckDB into a venv with pip; the Rust peers are the crate
# benches/peers (its own workspace, never part of the project's build), built here in
# release mode. A peer that cannot be installed or built is reported as missing, and the
# rest still run. Every engine runs RUNS times per workload, interleaved (engine by engine
# within each round), each run a fresh process; the table gives the median of the runs'
# eval seconds and congress's time (its first evaluation in a fresh process, as the peers'
# are) as a ratio of each peer's (< 1: congress is faster); the bench's usual figure, the
# median of 5 evaluations in one process, is the second column.
# Then congress's incremental figures (workload d: d1, d1000; C 1-row delta with actions)
# and memory (C at C_SIZES: bytes per fact by the bench's measure and by peak RSS).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
N=${1:-100000}
RUNS=${RUNS:-3}
C_SIZES=${C_SIZES:-100000}
SHARED=$(cd "${SHARED_BENCH:-../shared/bench}" && pwd)
VENV=${PEERS_VENV:-$ROOT/target/peers-venv}
NICE=(nice -n 10)

echo "# congress and its peers: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

"${NICE[@]}" cargo build --release --quiet --bin congress
BIN=$ROOT/target/release/congress

# ---------------------------------------------------------------- peers
PY=""
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import duckdb' 2>/dev/null; then
    PY=$VENV/bin/python
elif python3 -m venv "$VENV" >/dev/null 2>&1 && "$VENV/bin/pip" install --quiet duckdb >/dev/null 2>&1; then
    PY=$VENV/bin/python
else
    echo "# DuckDB: could not install from PyPI (python3-venv and pip needed): skipped" >&2
fi
PEERS=""
if [ -z "${SKIP_RUST_PEERS:-}" ]; then
    if (cd benches/peers && "${NICE[@]}" cargo build --release --quiet 2>&1 | tail -20 >&2); then
        PEERS=$ROOT/benches/peers/target/release/congress-peers
    else
        echo "# Rust peers: benches/peers did not build: skipped" >&2
    fi
fi
[ -n "$PEERS" ] && [ ! -x "$PEERS" ] && PEERS=""

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# Data generation is never timed.
python3 "$SHARED/gen_policy.py" "$N" "$TMP/a" >/dev/null
python3 "$SHARED/gen_graph.py" "$N" "$TMP/b" >/dev/null
python3 "$SHARED/gen_sg.py" "$N" "$TMP/c" >/dev/null
RES=$TMP/results
: >"$RES"

# Workload c for DuckDB (peers_py.py has no same-generation query), at the niceness every
# other engine runs at.
duckdb_sg() {
    "${NICE[@]}" "$PY" - "$1" <<'EOF'
import sys, time, duckdb
d = sys.argv[1]
con = duckdb.connect()
con.execute("SET threads = 1")
con.execute(f"CREATE TABLE parent AS SELECT * FROM read_csv('{d}/parent.facts', delim='\t', header=false, columns={{'c':'INTEGER','p':'INTEGER'}})")
t = time.perf_counter()
rows = con.execute("""
WITH RECURSIVE sg(x, y) AS (
  SELECT a.c, b.c FROM parent a JOIN parent b ON a.p = b.p WHERE a.c <> b.c
  UNION
  SELECT a.c, b.c FROM parent a JOIN sg ON a.p = sg.x JOIN parent b ON b.p = sg.y)
SELECT count(*) FROM sg""").fetchone()[0]
print(f"RESULT engine=duckdb_t1 workload=c n=0 phase=eval secs={time.perf_counter() - t:.6f} rows={rows}")
EOF
}

# One run of one engine on one workload: its eval RESULT lines, tagged.
run() {
    local engine=$1 wl=$2 out
    case $engine in
        # The first evaluation of a fresh process (index builds included), like the peers'.
        congress) out=$("${NICE[@]}" "$BIN" bench --workload "$wl" --n "$N" --data "$TMP/$wl" --runs 1 2>/dev/null) ;;
        # The bench's own figure: the median of 5 evaluations in one process (rules
        # deleted and re-inserted; the tables' indexes stay built after the first).
        congress_warm) out=$("${NICE[@]}" "$BIN" bench --workload "$wl" --n "$N" --data "$TMP/$wl" 2>/dev/null) ;;
        duckdb_t1)
            if [ "$wl" = c ]; then out=$(duckdb_sg "$TMP/c"); else out=$("${NICE[@]}" "$PY" "$SHARED/peers_py.py" duckdb1 "$wl" "$TMP/$wl"); fi ;;
        *) out=$("${NICE[@]}" "$PEERS" "$engine" "$wl" "$TMP/$wl") ;;
    esac
    echo "$out" | grep "phase=eval" | sed "s/engine=[^ ]*/engine=$engine/; s/workload=[^ ]*/workload=$wl/" >>"$RES" || true
}

ENGINES="congress congress_warm"
[ -n "$PY" ] && ENGINES="$ENGINES duckdb_t1"
[ -n "$PEERS" ] && ENGINES="$ENGINES ascent crepe dd"
for ((r = 1; r <= RUNS; r++)); do
    for wl in a b c; do
        for e in $ENGINES; do
            run "$e" "$wl" || echo "# $e $wl run $r failed" >&2
        done
    done
done

echo
echo "## Full evaluation, N=$N: median of $RUNS runs (ms), rows, and congress / peer"
echo
python3 - "$RES" "$ENGINES" <<'EOF'
import sys, statistics
res, engines = sys.argv[1], sys.argv[2].split()
t = {}
rows = {}
for line in open(res):
    f = dict(kv.split("=", 1) for kv in line.split()[1:])
    t.setdefault((f["engine"], f["workload"]), []).append(float(f["secs"]))
    rows[(f["engine"], f["workload"])] = f["rows"]
names = {"duckdb_t1": "DuckDB 1 thread", "dd": "differential-dataflow",
         "congress": "congress (first eval)", "congress_warm": "congress (median of 5 evals in one process)"}
print("| workload | " + " | ".join(names.get(e, e) for e in engines) + " | congress / fastest peer |")
print("|---" * (len(engines) + 2) + "|")
for wl in "abc":
    cells, med = [], {}
    for e in engines:
        xs = t.get((e, wl))
        if not xs:
            cells.append("n/a")
            continue
        med[e] = statistics.median(xs) * 1e3
        cells.append(f"{med[e]:.1f} ({rows[(e, wl)]} rows)")
    c = med.get("congress")
    for i, e in enumerate(engines):
        if not e.startswith("congress") and c and e in med:
            cells[i] += f", x{c / med[e]:.2f}"
    peers = [v for e, v in med.items() if not e.startswith("congress")]
    ratio = f"{c / min(peers):.2f}" if c and peers else "n/a"
    print(f"| {wl} eval | " + " | ".join(cells) + f" | {ratio} |")
EOF

echo
echo "## congress: incremental and memory (RESULT lines)"
echo
echo '```'
"${NICE[@]}" "$BIN" bench --workload d --n "$N" --data "$TMP/a" --runs 3 2>/dev/null | grep -E 'phase=(incr|eval|rss)'
for n in $C_SIZES; do
    "${NICE[@]}" "$BIN" bench --workload C --n "$n" --exec --runs 3 2>/dev/null
done
echo '```'
