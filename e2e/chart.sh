#!/usr/bin/env bash
# The Helm chart check that CI runs: lints and renders charts/congress, then proves the
# rendered manifests against a real (throwaway) kube-apiserver v1.20.2:
#   1. charts/congress/crds/ are byte-identical to crds/ (the generated CRDs), and
#      charts/congress/library/ holds exactly library/{openstack,kubernetes}/*.yaml;
#   2. `helm lint --strict` (defaults, and with every optional part on);
#   3. `helm template` with defaults and with serviceMonitor.enabled=true +
#      policyReportCRDs.install=true, and checks of what each value renders or refuses;
#   4. starts a cluster (e2e/cluster.sh, torn down on exit), applies the congress CRDs and the
#      chart's PolicyReport/ClusterPolicyReport CRDs, waits for them to be Established, checks
#      the report schema (a full report round-trips, bad ones are refused, printer columns);
#   5. `kubectl apply --dry-run=server` of every rendered manifest (the ServiceMonitor only if
#      its CRD exists, which it does not on this bare API server);
#   6. a real `helm install` (namespace congress-system; nothing runs the pods: there is no
#      kubelet), the ServiceAccount's permissions checked with `kubectl auth can-i --as`,
#      `helm upgrade` (granting `actions.kubernetes.rules`), `helm uninstall`; then again with the report CRDs absent, so that the
#      chart installs them (policyReportCRDs.install=auto) and keeps them on uninstall.
# Exits non-zero, with a message saying what failed, on the first failure.
#
# usage: bash e2e/chart.sh        (from anywhere; runs e2e/install.sh first, which installs
#                                  whatever is missing: see that script)
# env:   CONGRESS_E2E_CACHE       as for install.sh and cluster.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CACHE="${CONGRESS_E2E_CACHE:-$HOME/.cache/congress-e2e}"
CHART=charts/congress
NS=congress-system
PR_CRDS=(policyreports.wgpolicyk8s.io clusterpolicyreports.wgpolicyk8s.io)
SA="system:serviceaccount:$NS:congress"

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'e2e/chart.sh: FAILED: %s\n' "$*" >&2; exit 1; }
on_err() { printf 'e2e/chart.sh: FAILED (exit %s) at line %s: %s\n' "$1" "$2" "$3" >&2; }
trap 'on_err $? $LINENO "$BASH_COMMAND"' ERR

T="$(mktemp -d "${TMPDIR:-/tmp}/congress-chart.XXXXXX")"
cleanup() {
  bash "$ROOT/e2e/cluster.sh" down "$T/cluster" >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
# Keep helm's own cache/config/data out of $HOME.
export HELM_CACHE_HOME="$T/helm/cache" HELM_CONFIG_HOME="$T/helm/config" HELM_DATA_HOME="$T/helm/data"

step "install what is missing (e2e/install.sh)"
bash e2e/install.sh
HELM="$CACHE/helm"
[ -x "$HELM" ] || fail "helm not found at $HELM"

step "charts/congress/crds/ matches crds/"
diff -r crds "$CHART/crds" >/dev/null ||
  fail "charts/congress/crds/ differs from crds/: run  cp crds/*.yaml charts/congress/crds/"

step "charts/congress/library/ matches library/"
bash scripts/chart-library.sh --check ||
  fail "charts/congress/library/ differs from library/: run  bash scripts/chart-library.sh"

step "helm lint --strict"
"$HELM" lint --strict "$CHART"
"$HELM" lint --strict "$CHART" --set serviceMonitor.enabled=true --set policyReportCRDs.install=true \
  --set replicaCount=1 --set leaderElection.enabled=false --set logFormat=text

step "helm template"
render() { "$HELM" template congress "$CHART" --namespace "$NS" "$@"; }
count() { grep -c "^kind: $1\$" "$2" || true; }
render > "$T/default.yaml"
render --set serviceMonitor.enabled=true --set policyReportCRDs.install=true > "$T/full.yaml"
render --set policyReportCRDs.install=false --set replicaCount=1 > "$T/minimal.yaml"
cat > "$T/actions.yaml" <<'EOF'
actions:
  kubernetes:
    rules:
      - apiGroups: [""]
        resources: [pods]
        verbs: [patch, delete]
      - apiGroups: [apps]
        resources: [deployments/scale]
        verbs: [patch]
EOF
render -f "$T/actions.yaml" > "$T/actions-rendered.yaml"
for f in default full minimal; do
  echo "$f: $(grep '^kind:' "$T/$f.yaml" | sort | uniq -c | awk '{printf "%s %s, ", $1, $3}')"
done
[ "$(count ServiceMonitor "$T/default.yaml")" -eq 0 ] || fail "ServiceMonitor rendered by default"
[ "$(count ServiceMonitor "$T/full.yaml")" -eq 1 ] || fail "ServiceMonitor not rendered with serviceMonitor.enabled=true"
[ "$(count CustomResourceDefinition "$T/full.yaml")" -eq 2 ] || fail "policy report CRDs not rendered with policyReportCRDs.install=true"
[ "$(count CustomResourceDefinition "$T/minimal.yaml")" -eq 0 ] || fail "policy report CRDs rendered with policyReportCRDs.install=false"
[ "$(count PodDisruptionBudget "$T/default.yaml")" -eq 1 ] || fail "no PodDisruptionBudget with 2 replicas"
[ "$(count PodDisruptionBudget "$T/minimal.yaml")" -eq 0 ] || fail "PodDisruptionBudget rendered with 1 replica"
[ "$(count ClusterRole "$T/default.yaml")" -eq 1 ] || fail "a ClusterRole for actions rendered with actions.kubernetes.rules empty"
[ "$(count ClusterRole "$T/actions-rendered.yaml")" -eq 2 ] || fail "no actions ClusterRole with actions.kubernetes.rules set"
[ "$(count ClusterRoleBinding "$T/actions-rendered.yaml")" -eq 2 ] || fail "no actions ClusterRoleBinding with actions.kubernetes.rules set"
grep -q 'deployments/scale' "$T/actions-rendered.yaml" || fail "the actions rules are not rendered"
shipped_files="$(ls "$CHART"/library/*.yaml | wc -l)"
keys() { render "$@" --show-only templates/library-configmap.yaml | grep -c '^  [a-z0-9-]*\.yaml: ' || true; }
[ "$(keys)" -eq "$shipped_files" ] || fail "the library ConfigMap does not hold one key per file of charts/congress/library/"
[ "$(keys --set 'library.exclude={bad-flavors,unsafe-traffic}')" -eq $((shipped_files - 2)) ] ||
  fail "library.exclude did not leave out the policies it names"
grep -q -- '--library=configmap:$(POD_NAMESPACE)/congress-library' "$T/default.yaml" || fail "the operator is not given the library"
if render --set library.install=false | grep -q -e 'congress-library' -e '--library='; then
  fail "library.install=false still renders the library ConfigMap or flag"
fi
render --set webhook.enabled=true --set webhook.failurePolicy=Ignore --set webhook.timeoutSeconds=3 > "$T/webhook.yaml"
for want in '--webhook-addr=0.0.0.0:9443' '--webhook-failure-policy=Ignore' '--webhook-timeout-seconds=3' \
  '--webhook-service=$(POD_NAMESPACE)/congress:443' 'validatingwebhookconfigurations' 'congress-webhook-tls'; do
  grep -qF -- "$want" "$T/webhook.yaml" || fail "webhook.enabled=true does not render $want"
done
if render --set webhook.enabled=true --set webhook.certSecret=my-tls | grep -q 'congress-webhook-tls'; then
  fail "webhook.certSecret set still renders the generated certificate's Role"
fi
if grep -q -e '--webhook-' "$T/default.yaml"; then fail "the webhook is rendered although webhook.enabled is false"; fi
for bad in 'actions.kubernetes.rules[0].resources={pods}' 'actions.kubernetes.rules[0].verbs={patch}'; do
  if render --set 'actions.kubernetes.rules[0].apiGroups={apps}' --set "$bad" >/dev/null 2>&1; then
    fail "helm template accepted an incomplete rule (--set $bad)"
  fi
done
for bad in policyReportCRDs.install=maybe logFormat=xml; do
  if render --set "$bad" >/dev/null 2>&1; then fail "helm template accepted --set $bad"; fi
done
echo "template checks passed"

step "start a throwaway cluster (e2e/cluster.sh)"
bash e2e/cluster.sh up "$T/cluster" --owner $$
export KUBECONFIG="$T/cluster/kubeconfig"
server_version="$(kubectl get --raw /version | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p')"
echo "server $server_version"

step "apply the congress CRDs and the chart's policy report CRDs"
kubectl apply -f "$CHART/crds/"
render --set policyReportCRDs.install=true --show-only templates/policyreport-crds.yaml > "$T/policyreport-crds.yaml"
kubectl apply -f "$T/policyreport-crds.yaml"
crd_names=()
for f in "$CHART"/crds/*.yaml; do crd_names+=("crd/$(basename "$f" .yaml)"); done
for c in "${PR_CRDS[@]}"; do crd_names+=("crd/$c"); done
kubectl wait --for condition=established --timeout=60s "${crd_names[@]}"

step "policy report schema: a full report round-trips, bad ones are refused"
kubectl create namespace e2e-reports
cat > "$T/report.yaml" <<'EOF'
apiVersion: wgpolicyk8s.io/v1alpha2
kind: PolicyReport
metadata:
  name: congress-approved-registries
  namespace: e2e-reports
scope: {apiVersion: v1, kind: Namespace, name: e2e-reports}
scopeSelector:
  matchLabels: {team: a}
  matchExpressions: [{key: tier, operator: In, values: [web]}]
summary: {pass: 0, fail: 1, warn: 0, error: 0, skip: 0}
results:
- policy: approved-registries
  rule: error
  category: supply-chain
  severity: high
  result: fail
  message: pod e2e-reports/p1 runs image evil.io/x
  source: congress
  scored: true
  timestamp: {seconds: 1700000000, nanos: 5}
  resources:
  - {apiVersion: v1, kind: Pod, name: p1, namespace: e2e-reports, uid: 0000-1111, resourceVersion: "42", fieldPath: "spec.containers[0]"}
  resourceSelector: {matchLabels: {app: web}}
  properties: {row: '["p1", "evil.io/x"]', firstSeen: "2024-01-01T00:00:00Z"}
EOF
kubectl apply -f "$T/report.yaml"
sed -e 's/kind: PolicyReport/kind: ClusterPolicyReport/' -e '/namespace: e2e-reports$/d' "$T/report.yaml" |
  kubectl apply -f -
got="$(kubectl -n e2e-reports get polr congress-approved-registries -o jsonpath='{.results[0].resources[0].uid} {.results[0].timestamp.seconds} {.results[0].properties.firstSeen} {.scopeSelector.matchExpressions[0].values[0]} {.summary.fail} {.results[0].scored}')"
[ "$got" = "0000-1111 1700000000 2024-01-01T00:00:00Z web 1 true" ] || fail "PolicyReport fields pruned or changed: got '$got'"
got="$(kubectl get cpolr congress-approved-registries -o jsonpath='{.results[0].resources[0].fieldPath}')"
[ "$got" = 'spec.containers[0]' ] || fail "ClusterPolicyReport fields pruned or changed: got '$got'"
# (No `| head` or `| grep -q` on a command's output here: with pipefail, SIGPIPE would fail it.)
listing="$(kubectl -n e2e-reports get polr)"
echo "$listing"
header="${listing%%$'\n'*}"
for col in NAME PASS FAIL WARN ERROR SKIP AGE; do
  grep -qw "$col" <<<"$header" || fail "PolicyReport printer column $col missing"
done
listing="$(kubectl get cpolr)"
echo "$listing"
grep -qw FAIL <<<"${listing%%$'\n'*}" || fail "ClusterPolicyReport printer columns missing"
for bad in 's/severity: high/severity: urgent/' 's/result: fail/result: failed/' 's/- policy: approved-registries/- rule2: x/' 's/fail: 1,/fail: -1,/'; do
  if sed "$bad" "$T/report.yaml" | sed 's/name: congress-approved-registries/name: bad/' | kubectl apply -f - >/dev/null 2>&1; then
    fail "the PolicyReport schema accepted a bad report ($bad)"
  fi
done
echo "report schema checks passed"

step "kubectl apply --dry-run=server of the rendered chart"
kubectl create namespace "$NS"
# Rendered for this server's version (PodDisruptionBudget is policy/v1beta1 before 1.21); the
# report CRDs are applied above, the ServiceMonitor is checked separately.
render --kube-version "$server_version" --set policyReportCRDs.install=false -f "$T/actions.yaml" > "$T/server.yaml"
kubectl apply --dry-run=server -f "$T/server.yaml"
render --kube-version "$server_version" --set policyReportCRDs.install=false --set webhook.enabled=true > "$T/server-webhook.yaml"
kubectl apply --dry-run=server -f "$T/server-webhook.yaml"
render --kube-version "$server_version" --set serviceMonitor.enabled=true --show-only templates/servicemonitor.yaml > "$T/servicemonitor.yaml"
if kubectl get crd servicemonitors.monitoring.coreos.com >/dev/null 2>&1; then
  kubectl apply --dry-run=server -f "$T/servicemonitor.yaml"
else
  echo "ServiceMonitor not dry-run: servicemonitors.monitoring.coreos.com is not installed on this server (rendered and linted above)"
fi

step "helm install (report CRDs present and not the release's: policyReportCRDs.install=auto leaves them alone)"
"$HELM" install congress "$CHART" --namespace "$NS" --set image.repository=example.invalid/congress
manifest="$("$HELM" get manifest congress --namespace "$NS")"
if grep -q '^kind: CustomResourceDefinition' <<<"$manifest"; then
  fail "the release took over policy report CRDs it does not own"
fi
kubectl -n "$NS" get deployment/congress serviceaccount/congress service/congress \
  role/congress-leader-election rolebinding/congress-leader-election poddisruptionbudget/congress \
  configmap/congress-library role/congress-library rolebinding/congress-library
shipped="$(kubectl -n "$NS" get configmap/congress-library -o go-template='{{len .data}}')"
[ "$shipped" -eq "$(ls "$CHART"/library/*.yaml | wc -l)" ] ||
  fail "the library ConfigMap holds $shipped manifests, not one per file of charts/congress/library/"
kubectl get clusterrole/congress clusterrolebinding/congress

step "the ServiceAccount's permissions (kubectl auth can-i --as $SA)"
can() { kubectl auth can-i --as="$SA" "$@" >/dev/null 2>&1; }
# RBAC changes reach the authorizer through a watch: allow them a few seconds.
eventually() {
  local _
  for _ in $(seq 1 50); do
    "$@" && return 0
    sleep 0.2
  done
  return 1
}
cannot() { ! can "$@"; }
allowed=(
  "list pods" "watch pods --all-namespaces" "watch namespaces" "get namespaces"
  "list policies.congress.dev" "watch datasources.congress.dev" "patch librarypolicies.congress.dev"
  "update actionrequests.congress.dev" "create actionrequests.congress.dev" "delete actionrequests.congress.dev"
  "patch actionrequests.congress.dev --subresource=status" "patch policies.congress.dev --subresource=status"
  "update datasources.congress.dev --subresource=finalizers"
  "create policyreports.wgpolicyk8s.io -n e2e-reports" "deletecollection policyreports.wgpolicyk8s.io -n e2e-reports"
  "delete clusterpolicyreports.wgpolicyk8s.io" "create events -n e2e-reports" "patch events.events.k8s.io -n e2e-reports"
  "create leases.coordination.k8s.io -n $NS" "update leases.coordination.k8s.io -n $NS"
  "get secrets -n $NS" "create tokenreviews.authentication.k8s.io"
  "create librarypolicies.congress.dev" "watch configmaps -n $NS" "get configmaps -n $NS"
  "create subjectaccessreviews.authorization.k8s.io" "create policies.congress.dev" "delete datasources.congress.dev"
  "delete librarypolicies.congress.dev" "create secrets -n $NS" "delete secrets -n $NS" "update configmaps -n $NS"
)
denied=(
  "delete pods" "create pods" "create secrets -n default" "delete configmaps -n $NS"
  "list secrets -n $NS" "get secrets -n default" "list secrets --all-namespaces" "list deployments.apps"
  "create leases.coordination.k8s.io -n default" "delete events -n e2e-reports"
  "update customresourcedefinitions.apiextensions.k8s.io" "patch pods" "patch nodes"
  "patch deployments.apps --subresource=scale" "delete leases.coordination.k8s.io -n $NS" "get configmaps -n default"
)
for a in "${allowed[@]}"; do
  # shellcheck disable=SC2086 # split the verb, resource and flags
  eventually can $a || fail "the operator's ServiceAccount may not: $a"
done
for d in "${denied[@]}"; do
  # shellcheck disable=SC2086
  if can $d; then fail "the operator's ServiceAccount may (and should not): $d"; fi
done
echo "${#allowed[@]} permissions granted and ${#denied[@]} refused, as expected"

step "helm upgrade (actions.kubernetes.rules granted), helm uninstall"
"$HELM" upgrade congress "$CHART" --namespace "$NS" --hide-notes --set image.repository=example.invalid/congress \
  --set replicaCount=1 --set 'watchedResources[0].apiGroup=apps' --set 'watchedResources[0].resources={deployments}' \
  -f "$T/actions.yaml"
for a in "patch pods -n default" "delete pods" "patch deployments.apps --subresource=scale -n default"; do
  # shellcheck disable=SC2086
  eventually can $a || fail "helm upgrade did not grant actions.kubernetes.rules: $a"
done
if can patch nodes; then fail "actions.kubernetes.rules granted more than its rules (patch nodes)"; fi
eventually can list deployments.apps || fail "helm upgrade did not grant the new watchedResources"
eventually cannot list pods || fail "helm upgrade kept a watchedResources entry that was removed"
if kubectl -n "$NS" get poddisruptionbudget/congress >/dev/null 2>&1; then fail "PodDisruptionBudget kept with 1 replica"; fi
"$HELM" uninstall congress --namespace "$NS"
if kubectl -n "$NS" get deployment/congress >/dev/null 2>&1; then fail "deployment left after helm uninstall"; fi
kubectl get "${crd_names[@]}" >/dev/null || fail "CRDs removed by helm uninstall"

step "helm install with the report CRDs absent: the chart installs them, and keeps them on uninstall"
kubectl delete crd "${PR_CRDS[@]}"
for _ in $(seq 1 50); do
  kubectl get crd "${PR_CRDS[@]}" >/dev/null 2>&1 || break
  sleep 0.2
done
"$HELM" install congress "$CHART" --namespace "$NS" --hide-notes --set image.repository=example.invalid/congress
kubectl wait --for condition=established --timeout=60s "${PR_CRDS[@]/#/crd/}"
"$HELM" upgrade congress "$CHART" --namespace "$NS" --hide-notes --set image.repository=example.invalid/congress
manifest="$("$HELM" get manifest congress --namespace "$NS")"
n="$(grep -c '^kind: CustomResourceDefinition' <<<"$manifest" || true)"
[ "$n" -eq 2 ] || fail "after helm upgrade the release manages $n policy report CRDs, not 2"
"$HELM" uninstall congress --namespace "$NS"
kubectl get crd "${PR_CRDS[@]}" >/dev/null || fail "policy report CRDs removed by helm uninstall (resource-policy: keep)"

trap - ERR
step "chart check passed"
