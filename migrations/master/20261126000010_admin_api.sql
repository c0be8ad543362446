-- Admin API: service tokens, the operator audit trail, Idempotency-Key.

-- API tokens for service callers. Only the SHA-256 of the token is kept:
-- tokens are 256-bit random strings, so a fast hash is enough (no salt or
-- slow KDF needed) and lets a request find its row by an index lookup.
CREATE TABLE api_tokens (
    id            uuid PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    token_hash    text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    permissions   text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz
);

-- Who did what to which tenant or run, and how it ended.
CREATE TABLE audit_log (
    id          uuid PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    actor_kind  text NOT NULL CHECK (actor_kind IN ('token', 'jwt', 'cli')),
    action      text NOT NULL,
    target      text NOT NULL,
    status      integer,
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at DESC);
CREATE INDEX audit_log_target ON audit_log (target, at DESC);

-- An Idempotency-Key is bound to the tenant name of its first request;
-- the run itself stays anchored on provision-tenant-{name}, so a key can
-- never give one name a second run. The row is written in the same
-- transaction as the run.
CREATE TABLE idempotency_keys (
    key          text PRIMARY KEY,
    tenant_name  text NOT NULL,
    run_id       uuid REFERENCES workflow_runs (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX workflow_runs_kind ON workflow_runs (kind, created_at DESC);
CREATE INDEX tenants_created ON tenants (created_at DESC, id DESC);
