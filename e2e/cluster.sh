#!/usr/bin/env bash
# A throwaway Kubernetes control plane for the e2e tests: etcd + kube-apiserver v1.20.2 on
# free loopback ports, token authentication (one admin token, group system:masters) and RBAC.
# There is no kubelet, scheduler or controller-manager: objects are stored and watched, nothing
# runs pods. The ServiceAccount admission plugin is off (no controller creates the `default`
# ServiceAccount, and a pod naming none would be refused).
#
# usage: e2e/cluster.sh up DIR [--owner PID]
#          Starts a cluster whose files live in DIR (created if missing) and returns once
#          /readyz answers ok (~3-5 s; fails after $CONGRESS_E2E_READY_TIMEOUT s, default 60,
#          printing the log tail). Writes:
#            DIR/kubeconfig   server https://127.0.0.1:PORT, insecure-skip-tls-verify, token
#            DIR/operator.kubeconfig  the same server as the user `congress-operator` (no rights
#                             until RBAC grants them)
#            DIR/port         the apiserver's secure port      DIR/token   the admin bearer token
#            DIR/server       https://127.0.0.1:PORT
#            DIR/{etcd,apiserver,watchdog}.pid, DIR/{etcd,apiserver,watchdog}.log
#          and prints `kubeconfig=DIR/kubeconfig` and `server=https://127.0.0.1:PORT` on stdout.
#          A watchdog (its own session, stdio on DIR/watchdog.log, so it does not hold the
#          caller's pipes) tears the cluster down when PID exits (default: this script's parent,
#          i.e. the caller), so a test that crashes or is interrupted leaves nothing running.
#        e2e/cluster.sh down DIR
#          Stops the cluster now (apiserver, etcd, watchdog) and removes DIR/etcd. Idempotent.
#        e2e/cluster.sh status DIR
#          Exits 0 when the cluster in DIR is up and ready, 1 otherwise.
# env:   CONGRESS_E2E_CACHE          where install.sh put kube-apiserver (default $HOME/.cache/congress-e2e)
#        CONGRESS_E2E_READY_TIMEOUT  seconds to wait for /readyz (default 60)
# etcd is taken from PATH. Run e2e/install.sh first.
set -euo pipefail

CACHE="${CONGRESS_E2E_CACHE:-$HOME/.cache/congress-e2e}"
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"

log() { printf 'e2e/cluster.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# alive PID: the process exists and is not a zombie.
alive() {
  local st
  [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
  st="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

# ours PID DIR: PID is alive and its command line mentions DIR (guards against reused pids).
ours() {
  alive "$1" && tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# starttime PID: field 22 of /proc/PID/stat (clock ticks since boot), to notice a reused pid.
starttime() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }

# stop_pid DIR PID [SIGNAL]: signal (default TERM) PID if it is ours, KILL it after 10 s.
stop_pid() {
  local pid="$2"
  ours "$pid" "$1" || return 0
  kill -"${3:-TERM}" "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    alive "$pid" || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# stop DIR NAME [SIGNAL]: stop_pid the process in DIR/NAME.pid and remove the pid file.
stop() {
  local pidf="$1/$2.pid"
  [ -f "$pidf" ] || return 0
  stop_pid "$1" "$(cat "$pidf" 2>/dev/null || true)" "${3:-TERM}"
  rm -f "$pidf"
}

teardown() {
  stop "$1" apiserver
  stop "$1" etcd
  rm -rf "$1/etcd"
}

# free_ports N: prints N distinct free TCP ports on 127.0.0.1, chosen at random in
# 10000-32767 (below Linux's ephemeral range, so outgoing connections do not take them).
free_ports() {
  python3 - "$1" <<'EOF'
import random, socket, sys
n, out = int(sys.argv[1]), []
while len(out) < n:
    p = random.randint(10000, 32767)
    if p in out:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        out.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(" ".join(map(str, out)))
EOF
}

tail_logs() {
  local f
  for f in "$1/etcd.log" "$1/apiserver.log"; do
    [ -f "$f" ] || continue
    printf '%s\n' "----- last lines of $f -----" >&2
    tail -n 25 "$f" >&2
  done
}

cmd_up() {
  local dir="" owner="$PPID"
  while [ $# -gt 0 ]; do
    case "$1" in
      --owner) owner="${2:?--owner needs a PID}"; shift 2 ;;
      --owner=*) owner="${1#--owner=}"; shift ;;
      -*) die "unknown option $1" ;;
      *) [ -z "$dir" ] || die "one DIR only"; dir="$1"; shift ;;
    esac
  done
  [ -n "$dir" ] || die "usage: cluster.sh up DIR [--owner PID]"
  alive "$owner" || die "owner $owner is not running"
  local apiserver="$CACHE/kube-apiserver"
  [ -x "$apiserver" ] || die "$apiserver not found: run e2e/install.sh"
  command -v etcd >/dev/null 2>&1 || die "etcd not on PATH: run e2e/install.sh"
  local tool
  for tool in openssl curl python3 setsid; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run e2e/install.sh"
  done

  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if [ -f "$dir/apiserver.pid" ] && ours "$(cat "$dir/apiserver.pid")" "$dir"; then
    die "a cluster is already running in $dir (cluster.sh down $dir first)"
  fi
  cmd_down "$dir"
  mkdir -p "$dir/certs"
  rm -f "$dir/kubeconfig" "$dir/port" "$dir/server" "$dir/token"

  # The watchdog first, so that whatever starts below is torn down if this script dies.
  local ownerstart
  ownerstart="$(starttime "$owner")"
  setsid bash "$SELF" _watch "$dir" "$owner" "$ownerstart" </dev/null >"$dir/watchdog.log" 2>&1 &
  echo $! > "$dir/watchdog.pid"

  local token
  token="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  printf '%s\n' "$token" > "$dir/token"
  echo "$token,admin,admin,system:masters" > "$dir/tokens.csv"
  # A second identity with no permissions until RBAC grants some: the user `congress-operator`,
  # for tests that run the operator with least privilege (DIR/operator.kubeconfig).
  local optoken
  optoken="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  echo "$optoken,congress-operator,congress-operator" >> "$dir/tokens.csv"
  openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
  openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null

  local attempt port eport pport ready deadline rc=1
  local timeout="${CONGRESS_E2E_READY_TIMEOUT:-60}"
  for attempt in 1 2 3; do
    read -r port eport pport <<<"$(free_ports 3)"
    rm -rf "$dir/etcd"
    setsid etcd --name=e2e --data-dir="$dir/etcd" \
      --listen-client-urls="http://127.0.0.1:$eport" --advertise-client-urls="http://127.0.0.1:$eport" \
      --listen-peer-urls="http://127.0.0.1:$pport" --initial-advertise-peer-urls="http://127.0.0.1:$pport" \
      --initial-cluster="e2e=http://127.0.0.1:$pport" --unsafe-no-fsync \
      </dev/null >"$dir/etcd.log" 2>&1 &
    echo $! > "$dir/etcd.pid"
    setsid "$apiserver" --etcd-servers="http://127.0.0.1:$eport" \
      --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$port" --insecure-port=0 \
      --cert-dir="$dir/certs" --token-auth-file="$dir/tokens.csv" --authorization-mode=RBAC \
      --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$dir/sa.pub" \
      --service-account-signing-key-file="$dir/sa.key" --service-cluster-ip-range=10.0.0.0/24 \
      --endpoint-reconciler-type=none --disable-admission-plugins=ServiceAccount --profiling=false \
      </dev/null >"$dir/apiserver.log" 2>&1 &
    echo $! > "$dir/apiserver.pid"

    ready=0
    deadline=$((SECONDS + timeout))
    while [ "$SECONDS" -lt "$deadline" ]; do
      if [ "$(curl -sk --max-time 2 -H "Authorization: Bearer $token" "https://127.0.0.1:$port/readyz" 2>/dev/null)" = ok ]; then
        ready=1
        break
      fi
      if ! alive "$(cat "$dir/etcd.pid")" || ! alive "$(cat "$dir/apiserver.pid")"; then
        break
      fi
      sleep 0.2
    done
    if [ "$ready" -eq 1 ]; then rc=0; break; fi
    # A port taken between choosing and binding: try again on other ports.
    if grep -qs 'address already in use' "$dir/etcd.log" "$dir/apiserver.log"; then
      log "port collision (attempt $attempt), retrying on other ports"
      teardown "$dir"
      continue
    fi
    break
  done
  if [ "$rc" -ne 0 ]; then
    if ! alive "$(cat "$dir/etcd.pid" 2>/dev/null)"; then
      log "etcd exited before the cluster in $dir was ready"
    elif ! alive "$(cat "$dir/apiserver.pid" 2>/dev/null)"; then
      log "kube-apiserver exited before it was ready in $dir"
    else
      log "kube-apiserver did not become ready in $dir within ${timeout}s"
    fi
    tail_logs "$dir"
    cmd_down "$dir"
    exit 1
  fi

  echo "$port" > "$dir/port"
  echo "https://127.0.0.1:$port" > "$dir/server"
  cat > "$dir/kubeconfig.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: https://127.0.0.1:$port
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: $token
contexts:
- name: e2e
  context:
    cluster: e2e
    user: admin
    namespace: default
current-context: e2e
EOF
  mv -f "$dir/kubeconfig.tmp" "$dir/kubeconfig"
  sed -e "s/token: $token/token: $optoken/" -e 's/name: admin/name: congress-operator/' \
    -e 's/user: admin/user: congress-operator/' "$dir/kubeconfig" > "$dir/operator.kubeconfig"
  echo "kubeconfig=$dir/kubeconfig"
  echo "server=https://127.0.0.1:$port"
}

cmd_down() {
  local dir="${1:?usage: cluster.sh down DIR}"
  [ -d "$dir" ] || return 0
  dir="$(cd "$dir" && pwd)"
  # The watchdog first (USR1: exit without tearing down), so that it does not race this teardown.
  stop "$dir" watchdog USR1
  teardown "$dir"
}

cmd_status() {
  local dir="${1:?usage: cluster.sh status DIR}"
  [ -f "$dir/port" ] && [ -f "$dir/token" ] || return 1
  [ "$(curl -sk --max-time 2 -H "Authorization: Bearer $(cat "$dir/token")" \
    "https://127.0.0.1:$(cat "$dir/port")/readyz" 2>/dev/null)" = ok ]
}

# _watch DIR OWNER OWNERSTART (internal): waits for OWNER to exit, then tears DIR down.
# SIGTERM/INT/HUP: tear down now; SIGUSR1 (from `down`): exit without tearing down.
# It remembers the pids it has seen, so it still stops them if DIR was removed meanwhile.
cmd_watch() {
  local dir="$1" owner="$2" ownerstart="$3" epid="" apid=""
  watch_teardown() {
    stop_pid "$dir" "$apid"
    stop_pid "$dir" "$epid"
    teardown "$dir"
    rm -f "$dir/watchdog.pid"
  }
  trap 'watch_teardown; exit 0' TERM INT HUP
  trap 'exit 0' USR1
  while alive "$owner" && [ "$(starttime "$owner")" = "$ownerstart" ]; do
    [ -s "$dir/etcd.pid" ] && epid="$(cat "$dir/etcd.pid" 2>/dev/null || true)"
    [ -s "$dir/apiserver.pid" ] && apid="$(cat "$dir/apiserver.pid" 2>/dev/null || true)"
    sleep 1 &
    wait $! || true
  done
  log "owner $owner exited: tearing down $dir"
  trap - TERM INT HUP
  watch_teardown
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  status) shift; cmd_status "$@" ;;
  _watch) shift; cmd_watch "$@" ;;
  *) sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
