-- What a run needs is decided when it is created (issue 9): each step
-- names the backend it needs (NULL: the master database only), and a
-- worker without that backend leaves the step for one that has it.
ALTER TABLE workflow_steps ADD COLUMN needs text
    CHECK (needs IN ('keycloak', 'postgres', 'mongo', 'qdrant', 's3', 'folder'));
-- Set while no worker that picked the step up could run it; cleared when
-- one that can claims it.
ALTER TABLE workflow_steps ADD COLUMN waiting_for text;

-- A crash is not a failed attempt: an attempt is open from its claim until
-- its outcome commits. Claiming a step whose attempt is still open means
-- that attempt's worker died; it is counted as lost, not against the retry
-- budget for transient errors.
ALTER TABLE workflow_steps ADD COLUMN attempt_open boolean NOT NULL DEFAULT false;
ALTER TABLE workflow_steps ADD COLUMN lost_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE workflow_steps ADD COLUMN undo_lost_attempts integer NOT NULL DEFAULT 0;

-- The provision logs of waiting and cancelled-or-rolled-back runs.
ALTER TABLE tenant_provision_logs DROP CONSTRAINT tenant_provision_logs_status_check;
ALTER TABLE tenant_provision_logs ADD CONSTRAINT tenant_provision_logs_status_check
    CHECK (status IN ('success', 'error', 'retrying', 'skipped', 'compensated', 'cancelled', 'requested', 'waiting'));
