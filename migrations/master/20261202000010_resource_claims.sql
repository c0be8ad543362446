-- A claim says "this run is about to create this resource" and is written
-- (and committed) only after the resource was seen to be absent. A resource
-- whose mark could not be set in its create request (an S3 bucket, then its
-- marker object; a realm still committing after a killed attempt) is
-- recognised as ours on a later attempt by its claim.
CREATE TABLE resource_claims (
    kind        text NOT NULL,
    name        text NOT NULL,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    run_id      uuid NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, name)
);
