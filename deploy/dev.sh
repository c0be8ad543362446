#!/usr/bin/env bash
# The embedded default: a private Postgres cluster (distro binaries), then
# `landlord dev`: migrate, run a worker in-process, provision a demo tenant
# with live progress. No configuration needed.
set -euo pipefail
cd "$(dirname "$0")/.."
export LANDLORD_HOME=${LANDLORD_HOME:-$PWD/.landlord}
deploy/pg.sh start
eval "$(deploy/pg.sh env)"
psql "$POSTGRES_ADMIN_URL" -qtAc "SELECT 1 FROM pg_database WHERE datname = 'freeflow_master'" | grep -q 1 \
  || psql "$POSTGRES_ADMIN_URL" -qc "CREATE DATABASE freeflow_master"
# The secret store's key is generated once and kept beside the cluster.
key_file=$LANDLORD_HOME/secret.key
[ -s "$key_file" ] || (umask 077; head -c 32 /dev/urandom | base64 > "$key_file")
export LANDLORD_SECRET_KEY=$(cat "$key_file")
export TENANT_STORAGE_ROOT=${TENANT_STORAGE_ROOT:-$LANDLORD_HOME/storage/tenants}
# Cargo's own progress (a bar on a terminal, a line per crate otherwise).
# The dev profile, not release: the demo's time is in Postgres, not in our
# code, a cold dev build takes about half a release build's time, and it
# shares its dependencies with the test build of tests/run.sh.
[ -x target/debug/landlord ] || echo "building landlord (dev profile; about 2.5 minutes on 2 cores the first time)" >&2
exec cargo run --locked -- dev "$@"
