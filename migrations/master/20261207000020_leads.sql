-- Seed 004's signup: a lead (who signs up) verifies its email address,
-- then creates its tenant, which waits in 'pending_provision' until an
-- operator starts provisioning it with the subscription's plan.
ALTER TABLE tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_check
    CHECK (status IN ('pending_provision', 'provisioning', 'active', 'suspended', 'deleting', 'deleted'));

CREATE TABLE leads (
    id                 uuid PRIMARY KEY,
    email              text NOT NULL,
    first_name         text NOT NULL,
    last_name          text NOT NULL,
    company_name       text NOT NULL,
    address            jsonb NOT NULL,
    -- The peer address of the request, for the per-client rate limit.
    client_addr        text NOT NULL,
    -- SHA-256 of the verification token; the token itself reaches the
    -- lead through the notification channels only.
    verification_hash  text NOT NULL,
    -- An unverified lead cannot be verified after this.
    expires_at         timestamptz NOT NULL,
    verified_at        timestamptz,
    -- The tenant the lead created (once: its signed token is then used).
    tenant_id          uuid UNIQUE REFERENCES tenants (id),
    domains            text[] NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX leads_email_recent ON leads (lower(email), created_at);
CREATE INDEX leads_client_recent ON leads (client_addr, created_at);
