#!/usr/bin/env bash
# Peer benchmark: DBOS Transact Python on the same Postgres as Landlord's
# engine benchmark (bench/engine.rs). Creates a venv with `dbos` from PyPI,
# then runs bench.py against a throwaway database that it drops at the end.
#   bench/peers/dbos/run.sh            (N: latency 30, drain 300)
#   BENCH_SMALL=1 bench/peers/dbos/run.sh   (latency 5, drain 30: a smoke check)
# BENCH_PG_URL points at the server (its database part is where the bench
# database is created from); default: the cluster of deploy/pg.sh, which
# must already be running (this script neither starts nor stops it).
# DBOS_VERSION pins the dbos version (default: the newest on PyPI).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
home=${LANDLORD_HOME:-$root/.landlord}
venv=$home/bench-venv
export BENCH_PG_URL=${BENCH_PG_URL:-postgres://postgres:landlord@127.0.0.1:54329/postgres}

if [ ! -x "$venv/bin/python" ]; then
  mkdir -p "$home"
  python3 -m venv "$venv"
fi
spec=dbos${DBOS_VERSION:+==$DBOS_VERSION}
if ! "$venv/bin/python" -c 'import dbos' 2>/dev/null || [ -n "${DBOS_VERSION:-}" ]; then
  "$venv/bin/pip" install -q --disable-pip-version-check "$spec"
fi

# A fresh database per run; bench.py creates and drops it, and the trap
# drops it too if bench.py dies before its own cleanup.
export BENCH_DB_NAME="dbos_bench_$(date +%s)_$RANDOM"
cleanup() { "$venv/bin/python" "$here/bench.py" --drop "$BENCH_DB_NAME" || true; }
trap cleanup EXIT
"$venv/bin/python" "$here/bench.py"
