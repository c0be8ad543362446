-- The template registry (seed 003): one row per template database built and
-- checked, by key and version. The version is derived from the migrations
-- the template was built from, so a new migration means a new template
-- beside the old one, never an old template changed in place.
CREATE TABLE tenant_templates (
    key         text NOT NULL,
    version     text NOT NULL,
    database    text NOT NULL UNIQUE,
    migrations  bigint[] NOT NULL,
    built_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, version)
);

-- Which template a tenant database was cloned from.
ALTER TABLE tenants ADD COLUMN template_key text, ADD COLUMN template_version text;
