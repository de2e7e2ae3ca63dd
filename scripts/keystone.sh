#!/usr/bin/env bash
# Starts a real OpenStack Keystone (identity v3, fernet tokens, sqlite) on 127.0.0.1 for the
# driver tests: user `admin` / password `s3cret` in project `admin`, domain `Default`, region
# `RegionOne`, identity endpoint http://127.0.0.1:PORT/v3. Needs Debian's python3-keystone
# (`e2e/install.sh` installs it). Ready in about 10 s.
#
# usage: scripts/keystone.sh DIR PORT [TOKEN_SECONDS]
#   DIR holds the config, the database, the keys and the logs; the server's pid is written
#   to DIR/keystone.pid. TOKEN_SECONDS sets the token lifetime (default 3600).
set -euo pipefail
dir=${1:?usage: keystone.sh DIR PORT [TOKEN_SECONDS]}
port=${2:?usage: keystone.sh DIR PORT [TOKEN_SECONDS]}
expiration=${3:-3600}
command -v keystone-manage >/dev/null || { echo "keystone-manage not found: run e2e/install.sh" >&2; exit 1; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
conf=$dir/keystone.conf
cat >"$conf" <<CONF
[DEFAULT]
log_file = $dir/keystone.log
[database]
connection = sqlite:///$dir/keystone.db?timeout=30
[token]
provider = fernet
expiration = $expiration
[fernet_tokens]
key_repository = $dir/fernet-keys
[fernet_receipts]
key_repository = $dir/fernet-receipts
[credential]
key_repository = $dir/credential-keys
CONF
manage() { keystone-manage --config-file "$conf" "$@" >>"$dir/manage.log" 2>&1; }
user=$(id -un)
group=$(id -gn)
manage db_sync
# Write-ahead logging: Keystone leaves read transactions open on pooled connections, which in
# sqlite's default journal mode block every writer's commit (30 s, then a 500); in WAL mode
# readers never block the writer.
python3 -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode=WAL")' "$dir/keystone.db"
manage fernet_setup --keystone-user "$user" --keystone-group "$group"
manage credential_setup --keystone-user "$user" --keystone-group "$group"
url="http://127.0.0.1:$port/v3/"
manage bootstrap --bootstrap-password s3cret --bootstrap-region-id RegionOne \
  --bootstrap-admin-url "$url" --bootstrap-public-url "$url" --bootstrap-internal-url "$url"
# setsid: the server outlives this script; the caller stops it by its pid.
setsid keystone-wsgi-public --host 127.0.0.1 --port "$port" -- --config-file "$conf" \
  >"$dir/server.out" 2>&1 </dev/null &
echo $! >"$dir/keystone.pid"
for _ in $(seq 1 120); do
  if curl -sf "http://127.0.0.1:$port/v3" >/dev/null; then
    echo "keystone: http://127.0.0.1:$port/v3"
    exit 0
  fi
  sleep 0.5
done
echo "keystone did not start; see $dir/server.out" >&2
tail -n 20 "$dir/server.out" >&2 || true
exit 1
