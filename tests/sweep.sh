#!/usr/bin/env bash
# Drops what earlier test runs left on the private Postgres (and the test
# stack: realms, buckets): each test env
# names its databases and roles t<8 random chars>_… (testkit/src/harness.rs)
# and drops them when it passes, but a failed or killed test leaves them,
# and a kept cluster otherwise grows, over a day of runs enough to fill the
# disk (SeaweedFS then turns read-only). The migrated master templates the
# envs clone (landlord_test_master_<hash>) go too: the run builds its own.
# Only names of those shapes go; the cluster is ours (deploy/pg.sh).
set -euo pipefail
: "${POSTGRES_ADMIN_URL:?run after eval \"\$(deploy/pg.sh env)\"}"
psql -X -q -v ON_ERROR_STOP=1 "$POSTGRES_ADMIN_URL" <<'SQL'
SELECT format('ALTER DATABASE %I IS_TEMPLATE false', datname)
  FROM pg_database WHERE datname ~ '^t[a-z0-9]{8}_' AND datistemplate \gexec
SELECT format('DROP DATABASE %I WITH (FORCE)', datname)
  FROM pg_database
 WHERE datname ~ '^t[a-z0-9]{8}_' OR datname ~ '^landlord_test_master_[0-9a-f]{16}' \gexec
-- A role that still owns something elsewhere stays; the run goes on.
DO $$
DECLARE r text;
BEGIN
  FOR r IN SELECT rolname FROM pg_roles WHERE rolname ~ '^t[a-z0-9]{8}_' LOOP
    BEGIN
      EXECUTE format('DROP ROLE %I', r);
    EXCEPTION WHEN dependent_objects_still_exist THEN
      RAISE NOTICE 'kept role %: %', r, SQLERRM;
    END;
  END LOOP;
END $$;
SQL
# Keycloak realms of test envs (t<8>-… and t<8>_…), when the stack runs:
# each one slows every later Keycloak call down. A delete takes seconds
# with many realms, longer than an admin token lives: one token per delete.
if [ -n "${KEYCLOAK_BASE_URL:-}" ]; then
  python3 - <<'PY'
import json, os, re, urllib.parse, urllib.request
from concurrent.futures import ThreadPoolExecutor
base = os.environ["KEYCLOAK_BASE_URL"].rstrip("/")
def token():
    form = urllib.parse.urlencode({
        "client_id": "admin-cli", "grant_type": "password",
        "username": os.environ["KEYCLOAK_ADMIN_USERNAME"],
        "password": os.environ["KEYCLOAK_ADMIN_PASSWORD"]}).encode()
    url = f"{base}/realms/master/protocol/openid-connect/token"
    return json.load(urllib.request.urlopen(url, form))["access_token"]
def call(method, path):
    req = urllib.request.Request(f"{base}/admin/realms{path}", method=method,
                                 headers={"Authorization": f"Bearer {token()}"})
    return urllib.request.urlopen(req, timeout=120)
realms = [r["realm"] for r in json.load(call("GET", "?briefRepresentation=true"))
          if re.match(r"^t[a-z0-9]{8}[-_]", r["realm"])]
with ThreadPoolExecutor(8) as pool:
    list(pool.map(lambda r: call("DELETE", "/" + r), realms))
if realms:
    print(f"sweep: {len(realms)} test realms deleted")
PY
fi
# Test buckets, when the stack runs: deploy/stack.sh knows SeaweedFS.
if [ -n "${S3_ENDPOINT:-}" ]; then
  "$(dirname "$0")/../deploy/stack.sh" sweep-s3
fi
