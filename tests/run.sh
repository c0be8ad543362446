#!/usr/bin/env bash
# Runs every test: starts the test services (a private Postgres from the
# distro's packages), then the whole workspace's tests against them.
set -euo pipefail
cd "$(dirname "$0")/.."
export LANDLORD_HOME=${LANDLORD_HOME:-$PWD/.landlord}
deploy/pg.sh start
eval "$(deploy/pg.sh env)"
# Integration tests start real worker processes and servers; two at a time
# keeps a 2-core machine responsive.
exec cargo test --workspace --locked -- --test-threads="${TEST_THREADS:-4}" "$@"
