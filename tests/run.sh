#!/usr/bin/env bash
# Runs every test: starts the test services (a private Postgres from the
# distro's packages, then Keycloak, FerretDB, SeaweedFS and the Qdrant
# stand-in via deploy/stack.sh), then the whole workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export LANDLORD_HOME=${LANDLORD_HOME:-$PWD/.landlord}
# tests/pg_outage.rs stops and starts this cluster with deploy/pg.sh.
export LANDLORD_PG_PORT=${LANDLORD_PG_PORT:-54329}
deploy/pg.sh start
eval "$(deploy/pg.sh env)"
# The store's compile-time query data must match the migrations.
deploy/sqlx.sh check
deploy/stack.sh start
eval "$(deploy/stack.sh env)"
# What earlier runs left: test databases and roles, test realms.
tests/sweep.sh
# The stand-in's own contract tests (status codes per the Qdrant spec).
deploy/stack.sh test-qdrant
# podman, buildah and runc (Debian's) for the container image's test;
# helm (built from the Go module proxy once) and docker-compose (Debian's)
# to check the chart and the compose file.
deploy/image.sh install
deploy/charts.sh install
# Chromium and the Python venv for the console's end-to-end test and the
# schemathesis fuzz run.
deploy/browser.sh install
eval "$(deploy/browser.sh env)"
# Integration tests start real worker processes and servers; a few at a
# time keeps a 2-core machine responsive. Test binaries run one after the
# other, so the Keycloak outage test (tests/outage.rs) runs alone.
exec cargo test --workspace --locked -- --test-threads="${TEST_THREADS:-4}" "$@"
