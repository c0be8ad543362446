#!/usr/bin/env bash
# Generates the client's types from a running API's /openapi.json,
# type-checks the client and its test against them, and runs the test
# against that API. Needs node and npm (Debian's); installs the pinned npm
# packages on first use (npm's own cache keeps them).
#
#   LANDLORD_API_URL=… LANDLORD_API_TOKEN=… TENANT=… clients/typescript/test.sh
set -euo pipefail
cd "$(dirname "$0")"
: "${LANDLORD_API_URL:?}" "${LANDLORD_API_TOKEN:?}" "${TENANT:?}"
if [ ! -x node_modules/.bin/tsc ] || [ package-lock.json -nt node_modules/.installed ]; then
  npm ci --no-audit --no-fund --loglevel=error >&2
  touch node_modules/.installed
fi
curl -fsS "$LANDLORD_API_URL/openapi.json" -o openapi.json
node_modules/.bin/openapi-typescript openapi.json -o src/schema.d.ts >&2
node_modules/.bin/tsc -p . >&2
node dist/test/e2e.js
