#!/usr/bin/env bash
# Runs the engine benchmark against a private Postgres and the test stack;
# writes bench/results.md. `--no-stack` skips the full-tenant phase;
# BENCH_ONLY=tracing runs only the tracing on/off comparison and refreshes
# that section of bench/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export LANDLORD_HOME=${LANDLORD_HOME:-$PWD/.landlord}
deploy/pg.sh start
eval "$(deploy/pg.sh env)"
if [ "${1:-}" = "--no-stack" ]; then
  shift
else
  deploy/stack.sh start
  eval "$(deploy/stack.sh env)"
fi
exec cargo bench --bench engine "$@"
