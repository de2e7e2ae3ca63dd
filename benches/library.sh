#!/usr/bin/env bash
# The policy library's figures, on a throwaway kube-apiserver (e2e/cluster.sh; run
# e2e/install.sh once):
#   install   the operator (--library=configmap:..., the chart's way, the ConfigMap made from
#             library/) installs every shipped LibraryPolicy: seconds from the operator's
#             start until all exist;
#   activate  a Policy per library policy (libraryRef, default parameters) applied at once:
#             seconds until every one is Accepted=True (its Datasources' manifests applied
#             first, so their schemas are known; nothing needs to be polled);
#   upgrade   every shipped policy given a new version in the ConfigMap (as `helm upgrade`
#             does): seconds until every LibraryPolicy has it (each old version archived).
# Also `congress test library/tests` and `congress check -f library/` wall times.
#
# usage: bash benches/library.sh [path/to/congress]   (default target/release/congress)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-target/release/congress}"
[ -x "$BIN" ] || { echo "no $BIN: cargo build --release first" >&2; exit 2; }
T="$(mktemp -d)"
OP_PID=""
cleanup() {
  [ -n "$OP_PID" ] && kill "$OP_PID" 2>/dev/null || true
  bash e2e/cluster.sh down "$T/cluster" >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
wait_for() { # wait_for WHAT COMMAND...: poll every 50 ms, 120 s at most
  local what="$1"; shift
  for _ in $(seq 1 2400); do
    "$@" && return 0
    sleep 0.05
  done
  echo "timed out waiting for $what" >&2
  exit 1
}

n_policies=$(ls library/openstack/*.yaml library/kubernetes/*.yaml | wc -l)
start=$(now); "$BIN" test library/tests >/dev/null; echo "RESULT library test: $(since "$start") s ($(ls library/tests/*/*.test.yaml | wc -l) test files)"
start=$(now); "$BIN" check -f library/ >/dev/null; echo "RESULT library check: $(since "$start") s"

bash e2e/cluster.sh up "$T/cluster" >/dev/null
export KUBECONFIG="$T/cluster/kubeconfig"
kubectl apply -f crds/ >/dev/null
kubectl wait --for condition=established --timeout=60s crd --all >/dev/null
kubectl create namespace congress-system >/dev/null
mkdir -p "$T/library"
cp library/openstack/*.yaml library/kubernetes/*.yaml "$T/library/"
configmap() { kubectl -n congress-system create configmap congress-library --from-file="$T/library" --dry-run=client -o yaml | kubectl apply -f - >/dev/null; }
configmap

count_libs() { [ "$(kubectl get librarypolicies -o name 2>/dev/null | grep -vc '\.v' || true)" -ge "$n_policies" ]; }
start=$(now)
RUST_LOG=warn "$BIN" operator --http-addr 127.0.0.1:0 --leader-election=false --log-format text \
  --library configmap:congress-system/congress-library 2>"$T/operator.log" &
OP_PID=$!
wait_for "the library installed" count_libs
echo "RESULT library install: $n_policies LibraryPolicies in $(since "$start") s"

kubectl apply -f library/datasources/ >/dev/null
for f in library/openstack/*.yaml library/kubernetes/*.yaml; do
  name=$(basename "$f" .yaml)
  printf 'apiVersion: congress.dev/v1alpha1\nkind: Policy\nmetadata: {name: %s}\nspec:\n  libraryRef: {name: %s}\n---\n' "$name" "$name"
done > "$T/activations.yaml"
accepted() {
  [ "$(kubectl get policies -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Accepted")].status}{"\n"}{end}' | grep -c True || true)" -ge "$n_policies" ]
}
start=$(now)
kubectl apply -f "$T/activations.yaml" >/dev/null
wait_for "every activation accepted" accepted
echo "RESULT library activate: $n_policies Policies Accepted in $(since "$start") s"

sed -i 's/^  version: 1\.0\.0$/  version: 1.1.0/' "$T"/library/*.yaml
upgraded() { [ "$(kubectl get librarypolicies -o jsonpath='{range .items[*]}{.spec.version}{"\n"}{end}' | grep -c '^1\.1\.0$' || true)" -ge "$n_policies" ]; }
start=$(now)
configmap
wait_for "the library upgraded" upgraded
echo "RESULT library upgrade: $n_policies LibraryPolicies at 1.1.0 in $(since "$start") s"
