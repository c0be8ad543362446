#!/usr/bin/env bash
# Peer benchmark: DBOS Transact Go (github.com/dbos-inc/dbos-transact-golang,
# the version pinned in go.mod, from the Go module proxy) on the same
# Postgres as Landlord's engine benchmark. Builds main.go once into
# $LANDLORD_HOME/peers/dbos-go (again only when go.mod, go.sum or main.go
# change), then runs it against a throwaway database that it drops at the end.
#   bench/peers/dbos-go/run.sh             (latency 30, drain 300, kills 20 + 3)
#   BENCH_SMALL=1 bench/peers/dbos-go/run.sh   (latency 5, drain 30, kills 3 + 1: a smoke check)
# BENCH_PG_URL points at the server (its database part is where the bench
# database is created from); default: the cluster of deploy/pg.sh, which
# must already be running (this script neither starts nor stops it).
# Needs go >= 1.26.0 on PATH. Prints markdown only on stdout; progress and
# build output go to stderr. BENCH_VERBOSE=1 shows DBOS's info logs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
home=${LANDLORD_HOME:-$root/.landlord}
out=$home/peers/dbos-go
bin=$out/dbos-go-bench
export BENCH_PG_URL=${BENCH_PG_URL:-postgres://postgres:landlord@127.0.0.1:54329/postgres}

command -v go >/dev/null || { echo "dbos-go peer needs go >= 1.26.0 on PATH" >&2; exit 1; }
stamp=$(cd "$here" && cat go.mod go.sum main.go | sha256sum | cut -d' ' -f1)
if [ ! -x "$bin" ] || [ "$(cat "$out/stamp" 2>/dev/null || true)" != "$stamp" ]; then
  mkdir -p "$out"
  echo "building $bin" >&2
  (cd "$here" && go build -buildvcs=false -o "$bin.tmp" .) >&2
  mv "$bin.tmp" "$bin"
  echo "$stamp" > "$out/stamp"
fi

# A fresh database per run; the binary creates and drops it, and the trap
# drops it too if the binary dies before its own cleanup.
export BENCH_DB_NAME="dbosgo_bench_$(date +%s)_$RANDOM"
cleanup() { "$bin" drop "$BENCH_DB_NAME" >&2 || true; }
trap cleanup EXIT
"$bin" run
