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
# `peers` runs Landlord's engine (BENCH_ONLY=engine) and recovery benches
# unless they are in the list already, then the peer engines of
# bench/peers/ (DBOS Transact Python from PyPI, DBOS Transact Go from the
# Go module proxy, Absurd from PyPI, Restate from npm) on the same
# Postgres, and writes one side-by-side table (bench/peers/compose.py).
# `--no-stack` skips the engine's full-tenant phase; the API benchmark
# needs Postgres only. BENCH_ONLY=tracing makes the engine benchmark run
# only its tracing on/off comparison; BENCH_ONLY=drain (BENCH_ROUNDS
# rounds), BENCH_ONLY=idle and BENCH_ONLY=latency print the drains, an
# idle worker's transactions per second or the Postgres path's latency
# table and write nothing, for comparing builds (LANDLORD_BENCH_BIN names
# the other build's binary).
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
    # Landlord's row is measured in this same invocation.
    [[ " ${benches[*]} " == *" engine "* ]] || BENCH_ONLY=engine cargo bench --locked --bench engine
    [[ " ${benches[*]} " == *" recovery "* ]] || cargo bench --locked --bench recovery
    outs=()
    for peer in dbos dbos-go absurd restate; do
      out=$(mktemp)
      # A peer that cannot be installed or run is reported as not run; the
      # others still are.
      if ! "bench/peers/$peer/run.sh" > "$out"; then
        echo "peer $peer failed (its stderr is above)" >&2
        : > "$out"
      fi
      cat "$out"
      case $peer in
        dbos) name="DBOS Transact Python" ;;
        dbos-go) name="DBOS Transact Go" ;;
        absurd) name="Absurd" ;;
        restate) name="Restate" ;;
      esac
      outs+=("$name=$out")
    done
    machine="$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/ {print $2}') GiB, $(date -u '+%Y-%m-%d %H:%M UTC')"
    section=$(mktemp)
    python3 bench/peers/compose.py bench/results.md "$section" "$machine" "${outs[@]}"
    cat "$section"
    write_section peers "$section"
    rm -f "$section" "${outs[@]#*=}"
    continue
  fi
  cargo bench --locked --bench "$b"
done
