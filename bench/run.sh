#!/usr/bin/env bash
# Runs the benchmarks against a private Postgres and the test stack; each
# writes its own section of bench/results.md.
#   bench/run.sh [--no-stack] [engine] [api]   (default: both)
# `--no-stack` skips the engine's full-tenant phase; the API benchmark
# needs Postgres only. BENCH_ONLY=tracing makes the engine benchmark run
# only its tracing on/off comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
export LANDLORD_HOME=${LANDLORD_HOME:-$PWD/.landlord}
deploy/pg.sh start
eval "$(deploy/pg.sh env)"
stack=1
benches=()
for arg in "$@"; do
  case "$arg" in
    --no-stack) stack= ;;
    engine|api) benches+=("$arg") ;;
    *) echo "usage: $0 [--no-stack] [engine] [api]" >&2; exit 2 ;;
  esac
done
[ ${#benches[@]} -gt 0 ] || benches=(engine api)
if [ -n "$stack" ] && [[ " ${benches[*]} " == *" engine "* ]]; then
  deploy/stack.sh start
  eval "$(deploy/stack.sh env)"
fi
for b in "${benches[@]}"; do
  cargo bench --locked --bench "$b"
done
