#!/usr/bin/env bash
# Peer benchmark: Restate (restate-server 1.7 and its TypeScript SDK, as plain
# JavaScript on node), the same workload as the other peers. Installs/updates
# the pinned npm packages (package.json beside this file) under
# $LANDLORD_HOME/peers/restate, starts a fresh restate-server there (a new
# base dir per run, on free 127.0.0.1 ports, removed at the end), runs
# bench.mjs, and stops the server and every process the run started in an
# EXIT trap. Restate does not use Postgres (it has its own log and RocksDB).
#   bench/peers/restate/run.sh                (latency 30, drain 300, 20 kills)
#   BENCH_SMALL=1 bench/peers/restate/run.sh  (latency 5, drain 30, 3 kills: a smoke check)
# Prints markdown only on stdout; progress and tool chatter go to stderr
# (the server's and the service's own logs go to files in the run dir, and
# their last lines to stderr if the run fails).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
home=${LANDLORD_HOME:-$root/.landlord}
dir=$home/peers/restate

command -v node >/dev/null || { echo "node is needed on PATH" >&2; exit 1; }
command -v npm >/dev/null || { echo "npm is needed on PATH" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is needed on PATH" >&2; exit 1; }
case $(uname -m) in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "no restate-server npm binary for $(uname -m)" >&2; exit 1 ;;
esac

# Install (or update to the pinned versions) with npm; install scripts are
# skipped (the only one is a download counter of the server package).
mkdir -p "$dir"
cp "$here/package.json" "$dir/package.json"
installed() {
  node -e '
    const [dir, ...names] = process.argv.slice(1);
    const want = require(dir + "/package.json").dependencies;
    for (const n of names) {
      const v = (() => { try { return require(`${dir}/node_modules/${n}/package.json`).version; } catch { return null; } })();
      const w = want[n] || want[n.replace(/-linux-(x64|arm64)$/, "")];
      if (v !== w) process.exit(1);
    }' "$dir" @restatedev/restate-sdk @restatedev/restate-server "@restatedev/restate-server-linux-$arch"
}
if ! installed; then
  echo "installing the restate npm packages into $dir ..." >&2
  npm install --prefix "$dir" --no-audit --no-fund --ignore-scripts --loglevel=error >&2
  installed || { echo "npm did not install the pinned restate packages" >&2; exit 1; }
fi
server_bin=$dir/node_modules/@restatedev/restate-server-linux-$arch/bin/restate-server
[ -x "$server_bin" ] || chmod +x "$server_bin"

# Leftovers of runs that died without their trap (their server is gone).
for old in "$dir"/run.*; do
  [ -d "$old" ] || continue
  if [ -f "$old/server.pid" ] && kill -0 "$(cat "$old/server.pid")" 2>/dev/null; then continue; fi
  rm -rf "$old"
done

run=$(mktemp -d "$dir/run.XXXXXX")
server_pid=
driver_pid=
# Kill a pid only if it is still one of ours (pids are recycled).
kill_ours() { # signal pid pattern
  local cmd
  [ -r "/proc/$2/cmdline" ] || return 0
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$2/cmdline") || return 0
  case $cmd in *"$3"*) kill "-$1" "$2" 2>/dev/null || true ;; esac
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$driver_pid" ] && kill_ours TERM "$driver_pid" bench.mjs
  # Service processes the driver started (it records every pid in $run/pids).
  if [ -f "$run/pids" ]; then
    while read -r p; do kill_ours TERM "$p" bench.mjs; done <"$run/pids"
    sleep 0.5
    while read -r p; do kill_ours KILL "$p" bench.mjs; done <"$run/pids"
  fi
  [ -n "$driver_pid" ] && kill_ours KILL "$driver_pid" bench.mjs
  if [ -n "$server_pid" ]; then
    kill_ours TERM "$server_pid" restate-server
    for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill_ours KILL "$server_pid" restate-server
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ]; then
    for f in server.log service.log; do
      [ -f "$run/$f" ] && { echo "--- last lines of $f" >&2; tail -n 30 "$run/$f" >&2; }
    done
  fi
  rm -rf "$run"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Four free ports on 127.0.0.1: ingress, admin, fabric (node-to-node), service.
read -r p_ingress p_admin p_fabric p_service < <(node -e '
  const net = require("net");
  const s = [0, 1, 2, 3].map(() => net.createServer());
  Promise.all(s.map((x) => new Promise((r) => x.listen(0, "127.0.0.1", r)))).then(() => {
    console.log(s.map((x) => x.address().port).join(" "));
    s.forEach((x) => x.close());
  });')

echo "restate-server on 127.0.0.1: ingress $p_ingress, admin $p_admin, fabric $p_fabric; base dir $run/data" >&2
RESTATE_LISTEN_MODE=tcp \
RESTATE_BIND_ADDRESS=127.0.0.1:$p_fabric \
RESTATE_INGRESS__BIND_ADDRESS=127.0.0.1:$p_ingress \
RESTATE_ADMIN__BIND_ADDRESS=127.0.0.1:$p_admin \
RESTATE_DISABLE_TELEMETRY=true \
RESTATE_LOG_DISABLE_ANSI_CODES=true \
  "$server_bin" --base-dir "$run/data" --no-logo >"$run/server.log" 2>&1 &
server_pid=$!
echo "$server_pid" >"$run/server.pid"

ingress=http://127.0.0.1:$p_ingress
admin=http://127.0.0.1:$p_admin
for i in $(seq 600); do
  if curl -fs "$admin/health" >/dev/null && curl -fs "$ingress/restate/health" >/dev/null; then break; fi
  kill -0 "$server_pid" 2>/dev/null || { echo "restate-server exited" >&2; exit 1; }
  [ "$i" -eq 600 ] && { echo "restate-server not ready within 60 s" >&2; exit 1; }
  sleep 0.1
done
echo "restate-server $(curl -fs "$admin/version" | sed -E 's/.*"version":"([^"]+)".*/\1/') ready" >&2

BENCH_MODULES=$dir \
BENCH_INGRESS_URL=$ingress \
BENCH_ADMIN_URL=$admin \
BENCH_SERVICE_PORT=$p_service \
BENCH_RUN_DIR=$run \
  node "$here/bench.mjs" driver &
driver_pid=$!
wait "$driver_pid"
