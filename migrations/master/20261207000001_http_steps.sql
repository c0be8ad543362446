-- Custom http steps (a plan's executors). An executor that accepts the
-- work reports its end later, by a callback carrying a one-time token: the
-- step waits in 'awaiting', holding no worker, until the callback or its
-- deadline.
ALTER TABLE workflow_steps DROP CONSTRAINT workflow_steps_status_check;
ALTER TABLE workflow_steps ADD CONSTRAINT workflow_steps_status_check
    CHECK (status IN ('pending', 'running', 'retrying', 'completed', 'failed', 'skipped',
                      'compensating', 'compensated', 'awaiting'));

-- SHA-256 of the attempt's callback token (the token itself is only ever
-- sent to the executor); cleared when the callback is taken, so a token
-- works once.
ALTER TABLE workflow_steps ADD COLUMN callback_token_hash bytea;
-- What the executor reported, until the engine applies it to the attempt.
ALTER TABLE workflow_steps ADD COLUMN callback jsonb;
-- When an accepted attempt that has not called back counts as failed.
ALTER TABLE workflow_steps ADD COLUMN awaiting_until timestamptz;

CREATE UNIQUE INDEX workflow_steps_callback_token ON workflow_steps (callback_token_hash)
    WHERE callback_token_hash IS NOT NULL;
