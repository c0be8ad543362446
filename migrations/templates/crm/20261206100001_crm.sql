-- The crm template (seed 003's monk_template_crm): the common tenant schema
-- plus accounts, contacts and deals.
CREATE TABLE accounts (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE contacts (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  uuid REFERENCES accounts (id) ON DELETE CASCADE,
    email       text NOT NULL,
    name        text
);

CREATE TABLE deals (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    title       text NOT NULL,
    stage       text NOT NULL DEFAULT 'lead',
    amount      numeric(12, 2)
);

CREATE INDEX idx_deals_account_id ON deals (account_id);
CREATE INDEX idx_deals_stage ON deals (stage);
