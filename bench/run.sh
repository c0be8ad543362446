#!/usr/bin/env bash
# Runs the benchmarks against a private Postgres and the test stack; each
# writes its own section of bench/results.md.
#   bench/run.sh [--no-stack] [engine] [api] [plans] [pooled] [recovery] [peers]   (default: engine api)
# `plans` compares a pooled tenant with a silo one and fills one pooled
# database with 200 tenants (Postgres only). `pooled` compares a full
# pooled tenant with a full silo one on the test stack and drains
# BENCH_POOLED_TENANTS (default 1000) pooled tenants with two workers.
# `recovery` SIGKILLs a worker mid-step 25 times, default settings, and
# times until another worker runs the step again (Postgres only).
# `peers` runs the peer engines of bench/peers/ (DBOS Transact Python from
# PyPI) on the same Postgres and writes their section.
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
    engine|api|plans|pooled|recovery|peers) benches+=("$arg") ;;
    *) echo "usage: $0 [--no-stack] [engine] [api] [plans] [pooled] [recovery] [peers]" >&2; exit 2 ;;
  esac
done
[ ${#benches[@]} -gt 0 ] || benches=(engine api)
if [ -n "$stack" ] && [[ " ${benches[*]} " == *" engine "* || " ${benches[*]} " == *" pooled "* ]]; then
  deploy/stack.sh start
  eval "$(deploy/stack.sh env)"
fi
# Replaces the block between <!-- bench:NAME --> markers in results.md
# with the text of FILE (appends it when the markers are missing).
write_section() {
  python3 -c '
import os, sys
name, src, path = sys.argv[1:4]
text = open(src).read().rstrip()
old = open(path).read() if os.path.exists(path) else ""
begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
block = f"{begin}\n{text}\n{end}\n"
b, e = old.find(begin), old.find(end)
new = old[:b] + block + old[e + len(end):].lstrip("\n") if 0 <= b < e else old.rstrip("\n") + "\n" + block
open(path, "w").write(new)
' "$1" "$2" bench/results.md
}
for b in "${benches[@]}"; do
  if [ "$b" = peers ]; then
    out=$(bench/peers/dbos/run.sh)
    printf '%s\n' "$out"
    section=$(mktemp)
    { echo "## Peer engines ($(date -u '+%Y-%m-%d %H:%M UTC'))"; echo
      echo "10 no-op steps per workflow, on the PostgreSQL of deploy/pg.sh (its own throwaway database); compare with the engine section's runs of the same machine."; echo
      printf '%s\n' "$out"; } > "$section"
    write_section peers "$section"
    rm -f "$section"
    continue
  fi
  cargo bench --locked --bench "$b"
done
