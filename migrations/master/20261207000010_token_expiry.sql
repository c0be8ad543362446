-- API tokens may expire: a signup service's token need not live forever.
-- NULL: until revoked.
ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;
