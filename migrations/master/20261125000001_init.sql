-- Master database (seed 001, extended with the engine's own tables).

CREATE TABLE tenants (
    id                uuid PRIMARY KEY,
    name              text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9]{3,30}$'),
    plan              text,
    realm_name        text,
    postgres_db       text,
    mongo_db          text,
    qdrant_collection text,
    storage_path      text,
    status            text NOT NULL CHECK (status IN ('provisioning', 'active', 'suspended', 'deleting', 'deleted')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workflow_runs (
    id           uuid PRIMARY KEY,
    workflow_id  text NOT NULL UNIQUE,
    kind         text NOT NULL CHECK (kind IN ('provision')),
    tenant_name  text NOT NULL,
    tenant_id    uuid REFERENCES tenants (id),
    params       jsonb NOT NULL DEFAULT '{}',
    rollback     boolean NOT NULL,
    status       text NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'compensating', 'compensated', 'compensation_failed')),
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX workflow_runs_tenant_name ON workflow_runs (tenant_name, created_at DESC);

CREATE TABLE workflow_steps (
    run_id          uuid NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
    position        integer NOT NULL CHECK (position >= 0),
    name            text NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'running', 'retrying', 'completed', 'failed', 'skipped', 'compensating', 'compensated')),
    attempts        integer NOT NULL DEFAULT 0,
    undo_attempts   integer NOT NULL DEFAULT 0,
    output          jsonb,
    last_error      text,
    started_at      timestamptz,
    finished_at     timestamptz,
    compensated_at  timestamptz,
    PRIMARY KEY (run_id, position),
    UNIQUE (run_id, name)
);

CREATE TABLE tenant_provision_logs (
    id          uuid PRIMARY KEY,
    tenant_id   uuid REFERENCES tenants (id),
    run_id      uuid REFERENCES workflow_runs (id) ON DELETE CASCADE,
    step        text NOT NULL,
    status      text NOT NULL CHECK (status IN ('success', 'error', 'retrying', 'skipped', 'compensated')),
    message     text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_provision_logs_tenant ON tenant_provision_logs (tenant_id, created_at);

CREATE TABLE tenant_connections (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    service     text NOT NULL CHECK (service IN ('postgres', 'mongodb', 'qdrant')),
    db_name     text NOT NULL,
    host        text,
    port        integer CHECK (port BETWEEN 1 AND 65535),
    username    text,
    secret_ref  text,
    options     jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, service)
);

-- Every external resource a step created, so operators can list what a
-- suspended tenant still holds and deprovisioning knows what to drop.
CREATE TABLE tenant_resources (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    run_id       uuid REFERENCES workflow_runs (id) ON DELETE SET NULL,
    step         text NOT NULL,
    kind         text NOT NULL,
    name         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz,
    UNIQUE (tenant_id, kind, name)
);

-- Outbox: written in the same transaction as the status change it reports.
CREATE TABLE events (
    id               uuid PRIMARY KEY,
    tenant_id        uuid REFERENCES tenants (id),
    run_id           uuid REFERENCES workflow_runs (id) ON DELETE SET NULL,
    type             text NOT NULL,
    payload          jsonb NOT NULL,
    idempotency_key  text NOT NULL UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz
);

-- Generated credentials, encrypted with the key in LANDLORD_SECRET_KEY
-- (AES-256-GCM); rows are addressed by the secret_ref stored elsewhere.
CREATE TABLE secrets (
    ref         text PRIMARY KEY,
    nonce       bytea NOT NULL,
    ciphertext  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
