#!/usr/bin/env bash
# Runs every test of the project: unit, integration, property and CLI tests, the end-to-end
# tests of the operator against a real kube-apiserver v1.20.2 + etcd on loopback (one per
# test, started and torn down by the tests themselves), the Helm chart checks, then the
# conformance replay against the recorded Congress cases when ../shared is present.
#
# The e2e prerequisites (kube-apiserver built once from Debian's source into
# ${CONGRESS_E2E_CACHE:-~/.cache/congress-e2e}, etcd, kubectl, helm) are installed by
# e2e/install.sh, which does nothing when they are already there. It runs beside the cargo
# build so the two overlap.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
install_log=$(mktemp)
bash e2e/install.sh >"$install_log" 2>&1 &
install_pid=$!

# Build once (release: the property tests and the conformance replay run much faster).
cargo build --release --all-targets --locked 2>/dev/null || cargo build --release --all-targets

if ! wait "$install_pid"; then
  cat "$install_log" >&2
  echo "error: e2e/install.sh failed (log above)" >&2
  exit 1
fi
tail -n 5 "$install_log"

status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --release --no-fail-fast || status=1
else
  cargo test --release --no-fail-fast || status=1
fi

bash e2e/chart.sh || status=1

cases=../shared/conformance/cases.json
if [ -f "$cases" ]; then
  ./target/release/congress conformance "$cases" || status=1
else
  echo "note: $cases not found; conformance replay skipped"
fi
exit "$status"
