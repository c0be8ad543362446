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
eval "$(deploy/pg.sh env)"
db=landlord_sqlx_schema
admin=$POSTGRES_ADMIN_URL
url=${admin%/*}/$db
psql -q -X -v ON_ERROR_STOP=1 "$admin" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
trap 'psql -q -X "$admin" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true' EXIT
for f in migrations/master/*.sql; do
  psql -q -X -v ON_ERROR_STOP=1 "$url" -f "$f" >/dev/null
done
out=$(mktemp -d)
# Touching the store makes cargo expand every query macro again.
touch shared/src/store/*.rs
SQLX_OFFLINE_DIR=$out LANDLORD_SQLX_DATABASE_URL=$url \
  cargo check --locked -p landlord-shared --lib --quiet
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
fi
rm -rf "$out"
