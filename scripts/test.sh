#!/usr/bin/env bash
# Runs every check and test of the project, in this order:
#   1. gates that fail at once: `cargo fmt --all --check`, and the architecture guard (the
#      engine crate depends on nothing of Kubernetes, async, YAML or HTTP);
#   2. one release build of the whole workspace, then clippy with warnings denied (release
#      profile too, so it reuses the build's proc-macros and build scripts);
#   3. the unit, integration, property and CLI tests of every crate, the driver tests against
#      a real Keystone (started here by scripts/keystone.sh, shared by the tests), and the
#      end-to-end tests of the operator against a real kube-apiserver v1.20.2 + etcd on
#      loopback (one per test, started and torn down by the tests themselves;
#      CONGRESS_E2E=require, so a missing control plane fails them instead of skipping them),
#      then the doctests (nextest skips those);
#   4. the dashboard's browser tests (scripts/ui-test.sh), the Helm chart checks, then the conformance replay against the recorded Congress cases
#      when ../shared is present.
# A failure in steps 2-4 is remembered and the rest still runs; the exit status is 1 if
# anything failed, and the failed steps are listed at the end.
#
# The e2e prerequisites (kube-apiserver built once from Debian's source into
# ${CONGRESS_E2E_CACHE:-~/.cache/congress-e2e}, etcd, kubectl, helm, Keystone) are installed by
# e2e/install.sh, which does nothing when they are already there. It runs beside the cargo
# build so the two overlap.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never

# 1. Instant gates, before anything slow.
for tool in fmt clippy; do
  if ! cargo "$tool" --version >/dev/null 2>&1; then
    echo "error: \`cargo $tool\` is not installed: rustup component add rustfmt clippy" >&2
    exit 1
  fi
done
if ! cargo fmt --all --check; then
  echo "error: cargo fmt --all --check failed: run \`cargo fmt --all\` (diff above)" >&2
  exit 1
fi

# The engine is a plain library: none of these may be among its (normal) dependencies.
forbidden='^(kube|kube-[a-z-]+|k8s-openapi|tokio|serde_norway|serde_yaml|serde_yml|hyper|axum|reqwest) v'
engine_deps=$(cargo tree -p congress-engine -e normal --prefix none)
if offending=$(grep -E "$forbidden" <<<"$engine_deps" | sed 's/ (\*)$//' | sort -u) && [ -n "$offending" ]; then
  {
    echo "error: architecture guard: congress-engine (crates/engine) must not depend on Kubernetes,"
    echo "tokio, YAML or HTTP crates, but its dependency tree has:"
    sed 's/^/  /' <<<"$offending"
    echo "(see docs/architecture.md; \`cargo tree -p congress-engine -e normal -i CRATE\` shows the path)"
  } >&2
  exit 1
fi

install_log=$(mktemp)
bash e2e/install.sh >"$install_log" 2>&1 &
install_pid=$!

failed=()

# 2. Build once (release: the property tests and the conformance replay run much faster).
cargo build --release --workspace --all-targets --locked 2>/dev/null ||
  cargo build --release --workspace --all-targets

cargo clippy --release --workspace --all-targets -- -D warnings || failed+=("clippy")

if ! wait "$install_pid"; then
  cat "$install_log" >&2
  echo "error: e2e/install.sh failed (log above)" >&2
  exit 1
fi
tail -n 5 "$install_log"
rm -f "$install_log"
# The real python-congressclient and openstack CLI for the API tests (PyPI, ~15 s).
if bash scripts/pyclient.sh target/pyclient; then
  export CONGRESS_TEST_VENV=$PWD/target/pyclient
else
  failed+=("python clients (scripts/pyclient.sh)")
fi

# 3. Tests. Under this script a missing e2e control plane (or Keystone) is a failure, not a
# skip. One real Keystone serves every driver test (each works in a region of its own).
export CONGRESS_E2E=require
keystone_dir=$(mktemp -d)
keystone_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if bash scripts/keystone.sh "$keystone_dir" "$keystone_port"; then
  export CONGRESS_TEST_KEYSTONE="http://127.0.0.1:$keystone_port/v3"
  trap 'kill "$(cat "$keystone_dir/keystone.pid")" 2>/dev/null || true; rm -rf "$keystone_dir"' EXIT
else
  failed+=("keystone (scripts/keystone.sh)")
fi
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --release --workspace --no-fail-fast || failed+=("tests (nextest)")
  cargo test --release --workspace --doc || failed+=("doctests")
else
  # cargo test runs the doctests too.
  cargo test --release --workspace --no-fail-fast || failed+=("tests (cargo test)")
fi

# 4. The dashboard in a real browser (Chromium driven by playwright-core), the chart, and
# the conformance replay.
CONGRESS_BIN=target/release/congress bash scripts/ui-test.sh || failed+=("dashboard (scripts/ui-test.sh)")

bash e2e/chart.sh || failed+=("chart checks (e2e/chart.sh)")

cases=../shared/conformance/cases.json
if [ -f "$cases" ]; then
  ./target/release/congress conformance "$cases" || failed+=("conformance replay")
else
  echo "note: $cases not found; conformance replay skipped"
fi

if [ "${#failed[@]}" -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "all checks passed"
