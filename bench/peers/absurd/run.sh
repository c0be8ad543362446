#!/usr/bin/env bash
# Peer benchmark: Absurd (Postgres-based durable execution; Python SDK
# `absurd-sdk`, schema installed by `absurdctl init` from the SQL bundled in
# the `absurdctl` wheel, no network needed) on the same Postgres as Landlord's
# engine benchmark. Creates/updates a venv with both from PyPI, creates a
# throwaway database, installs the Absurd schema there, runs bench.py and
# drops the database at the end (a trap drops it on failure too).
#   bench/peers/absurd/run.sh              (latency 30, drain 300, kills 3 default + 20 tuned)
#   BENCH_SMALL=1 bench/peers/absurd/run.sh   (latency 5, drain 30, kills 1 + 3: a smoke check)
# BENCH_PG_URL points at the server (its database part is where the bench
# database is created from); default: the cluster of deploy/pg.sh, which
# must already be running (this script neither starts nor stops it).
# ABSURD_VERSION pins absurd-sdk and absurdctl (default 0.5.1).
# Prints markdown only on stdout; progress and tool chatter go to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
home=${LANDLORD_HOME:-$root/.landlord}
venv=$home/peers/absurd-venv
version=${ABSURD_VERSION:-0.5.1}
export BENCH_PG_URL=${BENCH_PG_URL:-postgres://postgres:landlord@127.0.0.1:54329/postgres}

command -v psql >/dev/null || { echo "absurdctl needs psql on PATH" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
  mkdir -p "$home/peers"
  python3 -m venv "$venv"
fi
have=$("$venv/bin/python" - <<'EOF' 2>/dev/null || true
import importlib.metadata as m
print(m.version("absurd-sdk"), m.version("absurdctl"))
EOF
)
if [ "$have" != "$version $version" ]; then
  "$venv/bin/pip" install -q --disable-pip-version-check \
    "absurd-sdk==$version" "absurdctl==$version" >&2
fi

# A fresh database per run, dropped by the trap whatever happens.
export BENCH_DB_NAME="absurd_bench_$(date +%s)_$RANDOM"
cleanup() { "$venv/bin/python" "$here/bench.py" drop "$BENCH_DB_NAME" >&2 || true; }
trap cleanup EXIT
"$venv/bin/python" "$here/bench.py" create "$BENCH_DB_NAME" >&2
db_url=$("$venv/bin/python" "$here/bench.py" url "$BENCH_DB_NAME")
"$venv/bin/absurdctl" init -d "$db_url" >&2
export BENCH_DB_URL=$db_url
"$venv/bin/python" "$here/bench.py" run
