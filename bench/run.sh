#!/usr/bin/env bash
# Runs the engine benchmark against a private Postgres; writes bench/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export LANDLORD_HOME=${LANDLORD_HOME:-$PWD/.landlord}
deploy/pg.sh start
eval "$(deploy/pg.sh env)"
exec cargo bench --bench engine "$@"
