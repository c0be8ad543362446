-- Operator actions: deprovisioning runs and cancellation at step boundaries.

ALTER TABLE workflow_runs DROP CONSTRAINT workflow_runs_kind_check;
ALTER TABLE workflow_runs ADD CONSTRAINT workflow_runs_kind_check
    CHECK (kind IN ('provision', 'deprovision_soft', 'deprovision_hard'));

ALTER TABLE workflow_runs DROP CONSTRAINT workflow_runs_status_check;
ALTER TABLE workflow_runs ADD CONSTRAINT workflow_runs_status_check
    CHECK (status IN ('running', 'completed', 'failed', 'cancelled', 'compensating', 'compensated', 'compensation_failed'));

-- Set by `cancel`; the engine stops the run before its next step attempt.
-- NULL: no cancel requested; false: stop; true: stop and compensate.
ALTER TABLE workflow_runs ADD COLUMN cancel_requested boolean;

ALTER TABLE tenant_provision_logs DROP CONSTRAINT tenant_provision_logs_status_check;
ALTER TABLE tenant_provision_logs ADD CONSTRAINT tenant_provision_logs_status_check
    CHECK (status IN ('success', 'error', 'retrying', 'skipped', 'compensated', 'cancelled', 'requested'));

CREATE INDEX workflow_runs_status ON workflow_runs (status, created_at DESC);
