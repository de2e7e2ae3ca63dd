#!/usr/bin/env bash
# Copy the shipped policy library (library/openstack/*.yaml, library/kubernetes/*.yaml: one
# LibraryPolicy manifest per file) into charts/congress/library/, which the chart renders
# into its library ConfigMap (helm can only read files inside the chart).
#
#   bash scripts/chart-library.sh          # copy
#   bash scripts/chart-library.sh --check  # exit 1 when the chart's copy is stale
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(mktemp -d)
trap 'rm -rf "$want"' EXIT
for f in library/openstack/*.yaml library/kubernetes/*.yaml; do
  [ -e "$f" ] || continue
  b=$(basename "$f")
  if [ -e "$want/$b" ]; then
    echo "chart-library: two library files are named $b" >&2
    exit 2
  fi
  cp "$f" "$want/$b"
done
if [ "${1:-}" = "--check" ]; then
  if ! diff -r "$want" charts/congress/library >/dev/null 2>&1; then
    echo "charts/congress/library/ differs from library/: run  bash scripts/chart-library.sh" >&2
    exit 1
  fi
  exit 0
fi
rm -rf charts/congress/library
mkdir -p charts/congress/library
cp "$want"/. charts/congress/library/ -r
echo "copied $(ls charts/congress/library | wc -l) library policies into charts/congress/library/"
