#!/usr/bin/env bash
# Runs every test of the project: unit, integration, property and CLI tests, then the
# conformance replay against the recorded Congress cases when ../shared is present.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
# Build once (release: the property tests and the conformance replay run much faster).
cargo build --release --all-targets --locked 2>/dev/null || cargo build --release --all-targets

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --release --no-fail-fast
else
  cargo test --release --no-fail-fast
fi

cases=../shared/conformance/cases.json
if [ -f "$cases" ]; then
  ./target/release/congress conformance "$cases"
else
  echo "note: $cases not found; conformance replay skipped"
fi
