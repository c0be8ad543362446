#!/usr/bin/env bash
# A private PostgreSQL cluster from the distro's binaries, for the embedded
# default and the tests. Idempotent.
#
#   deploy/pg.sh start   install the package if missing, initdb once, start
#   deploy/pg.sh stop
#   deploy/pg.sh env     print the exports that point landlord at it
#
# LANDLORD_HOME (default ./.landlord) holds the data; LANDLORD_PG_PORT
# (default 54329) is its loopback port. LANDLORD_PG_STATS=1 at start loads
# pg_stat_statements (read and reset in the postgres database: see
# docs/benchmarks.md), for profiling; stop first if the cluster runs.
set -euo pipefail

home=${LANDLORD_HOME:-$PWD/.landlord}
port=${LANDLORD_PG_PORT:-54329}
pgdir=$home/pg
# As root the cluster runs as the postgres account, which must be able to
# reach the data directory; a checkout under a private folder falls back to
# a directory named after the checkout's path.
if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1; then
  mkdir -p "$home"
  if ! runuser -u postgres -- test -x "$home"; then
    pgdir=/var/lib/postgresql/landlord-$(printf '%s' "$home" | md5sum | cut -c1-12)
  fi
fi
data=$pgdir/data
log=$pgdir/log
password=landlord

pg_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
}

ensure_installed() {
  [ -n "$(pg_bindir)" ] && return
  echo "installing PostgreSQL from the distro's packages..." >&2
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
}

# initdb and postgres refuse to run as root: use the postgres account then.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  ensure_installed
  local bin; bin=$(pg_bindir)
  mkdir -p "$pgdir"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$pgdir"; fi
  if [ ! -s "$data/PG_VERSION" ]; then
    local pwfile; pwfile=$(mktemp); echo "$password" > "$pwfile"; chmod 644 "$pwfile"
    as_owner "$bin/initdb" -D "$data" -U postgres --pwfile="$pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
  fi
  if as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    return
  fi
  local opts="-p $port -k $pgdir -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c shared_buffers=128MB"
  [ "${LANDLORD_PG_STATS:-}" = 1 ] && opts="$opts -c shared_preload_libraries=pg_stat_statements"
  as_owner "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 start -o "$opts" >/dev/null
  if [ "${LANDLORD_PG_STATS:-}" = 1 ]; then
    as_owner "$bin/psql" -q -X -h "$pgdir" -p "$port" -U postgres -d postgres \
      -c "SET client_min_messages = warning" \
      -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
  fi
  echo "postgres running on 127.0.0.1:$port (data in $data)" >&2
}

stop() {
  local bin; bin=$(pg_bindir)
  [ -n "$bin" ] && [ -d "$data" ] || return 0
  as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}

env_exports() {
  local base="postgres://postgres:$password@127.0.0.1:$port"
  echo "export POSTGRES_ADMIN_URL=$base/postgres"
  echo "export MASTER_DATABASE_URL=$base/freeflow_master"
  echo "export LANDLORD_TEST_ADMIN_URL=$base/postgres"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) env_exports ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
