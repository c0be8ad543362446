-- Tenant database schema. Built once into the template database; clones get
-- later files as catch-up migrations.
CREATE TABLE users (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email       text NOT NULL UNIQUE,
    display     text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE schemas (
    name        text PRIMARY KEY,
    definition  jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE columns (
    schema_name  text NOT NULL REFERENCES schemas (name) ON DELETE CASCADE,
    name         text NOT NULL,
    type         text NOT NULL,
    PRIMARY KEY (schema_name, name)
);
