#!/usr/bin/env bash
# The compile-time query data in .sqlx/: the store's `sqlx::query!` macros
# are checked against a database migrated from migrations/master, and a
# normal build reads what that check wrote (shared/sqlx.toml).
#
#   deploy/sqlx.sh prepare   rewrite .sqlx/ from the migrated schema
#   deploy/sqlx.sh check     fail when .sqlx/ is not what prepare would write
#
# Needs the cluster of deploy/pg.sh running; uses (and drops) a database of
# its own, landlord_sqlx_schema, on it.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
case "$mode" in prepare|check) ;; *) echo "usage: $0 prepare|check" >&2; exit 2 ;; esac
# A check that passed is a function of what it read: the migrations, the
# query data, the files with query macros, the lock file (sqlx's and
# apalis's versions) and the toolchain. Its inputs' hash is kept, and the
# same inputs are not checked again.
inputs_hash() {
  { cat migrations/master/*.sql Cargo.lock .sqlx/*.json
    grep -rlE 'query(_as|_scalar)?!' shared/src api/src worker/src | sort | xargs cat
    cargo --version; rustc --version; } | sha256sum | cut -d' ' -f1
}
stamp=${LANDLORD_HOME:-$PWD/.landlord}/sqlx-checked
if [ "$mode" = check ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(inputs_hash)" ]; then
  echo "sqlx: .sqlx/ matches the schema (inputs unchanged since the last check)"
  exit 0
fi
eval "$(deploy/pg.sh env)"
db=landlord_sqlx_schema
admin=$POSTGRES_ADMIN_URL
url=${admin%/*}/$db
psql -q -X -v ON_ERROR_STOP=1 "$admin" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
trap 'psql -q -X "$admin" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true' EXIT
for f in migrations/master/*.sql; do
  psql -q -X -v ON_ERROR_STOP=1 "$url" -f "$f" >/dev/null
done
# The tables Landlord reads but others create: sqlx's migration history
# (in the master database and in every tenant database or schema) and
# apalis's queue, from the apalis-postgres source cargo fetched.
psql -q -X -v ON_ERROR_STOP=1 "$url" >/dev/null <<'SQL'
CREATE TABLE _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
);
SQL
apalis=$(cargo metadata --locked --format-version 1 | python3 -c '
import json, sys, os
pkgs = json.load(sys.stdin)["packages"]
print(next(os.path.dirname(p["manifest_path"]) for p in pkgs if p["name"] == "apalis-postgres"))')
for f in "$apalis"/migrations/*.sql; do
  psql -q -X -v ON_ERROR_STOP=1 "$url" -f "$f" >/dev/null
done
out=$(mktemp -d)
stamps=$(mktemp -d)
# Touching the files with query macros makes cargo expand them again. Their
# own times are put back afterwards: left touched, they would make the
# test build after this check recompile three crates for nothing.
files=$(grep -rlE 'query(_as|_scalar)?!' shared/src api/src worker/src)
for f in $files; do touch -r "$f" "$stamps/$(echo "$f" | tr / _)"; done
restore() { for f in $files; do touch -r "$stamps/$(echo "$f" | tr / _)" "$f"; done; rm -rf "$stamps"; }
touch $files
SQLX_OFFLINE_DIR=$out LANDLORD_SQLX_DATABASE_URL=$url \
  cargo check --locked -p landlord-shared -p landlord-api -p landlord-worker --lib --quiet \
  || { restore; exit 1; }
restore
if [ "$mode" = prepare ]; then
  rm -rf .sqlx && mkdir .sqlx && cp "$out"/query-*.json .sqlx/
  echo "sqlx: $(ls .sqlx | wc -l) queries in .sqlx/"
else
  if ! diff -r -q "$out" .sqlx >/dev/null; then
    diff -r -q "$out" .sqlx || true
    echo "sqlx: .sqlx/ is stale; run deploy/sqlx.sh prepare and commit it" >&2
    exit 1
  fi
  echo "sqlx: .sqlx/ matches the schema ($(ls .sqlx | wc -l) queries)"
  mkdir -p "$(dirname "$stamp")"
  inputs_hash > "$stamp"
fi
rm -rf "$out"
