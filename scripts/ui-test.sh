#!/usr/bin/env bash
# Runs the dashboard's browser tests (tests/ui/*.test.mjs, node's test runner driving Chromium
# with playwright-core):
#   1. installs Chromium and a font with apt when /usr/bin/chromium is missing (sudo when not root);
#   2. `npm ci` in tests/ui, skipped when node_modules already matches package-lock.json;
#   3. `node --test tests/ui/` against the congress binary: $CONGRESS_BIN, else
#      target/release/congress, else target/debug/congress, else a release build made here.
#
#   bash scripts/ui-test.sh
#   CONGRESS_BIN=target/debug/congress CONGRESS_UI_DIR=src/api/ui bash scripts/ui-test.sh
#   UPDATE_SCREENSHOTS=1 bash scripts/ui-test.sh     # also refresh docs/images/dashboard.png
# Screenshots of every page land in target/ui-screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "ui-test: installing chromium with apt" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
fi

# npm ci only when the lock changed since the last install (works offline once installed).
stamp=tests/ui/node_modules/.lock-sha256
want=$(sha256sum tests/ui/package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  (cd tests/ui && npm ci --no-audit --no-fund)
  echo "$want" >"$stamp"
fi

if [ -z "${CONGRESS_BIN:-}" ]; then
  for candidate in target/release/congress target/debug/congress; do
    if [ -x "$candidate" ]; then CONGRESS_BIN=$candidate; break; fi
  done
fi
if [ -z "${CONGRESS_BIN:-}" ]; then
  echo "ui-test: no congress binary, building one (cargo build --release --bin congress)" >&2
  cargo build --release --quiet --bin congress
  CONGRESS_BIN=target/release/congress
fi
export CONGRESS_BIN CHROMIUM_PATH="$CHROMIUM"
echo "ui-test: $CONGRESS_BIN${CONGRESS_UI_DIR:+ --ui-dir $CONGRESS_UI_DIR}" >&2

node --test tests/ui/
