-- One driver per run: each delivery of a run's queue job takes the next
-- epoch, and a step is claimed only under the run's current epoch, so a
-- worker presumed dead (its job re-queued and delivered again) that wakes
-- up late can claim nothing.
ALTER TABLE workflow_runs ADD COLUMN driver_epoch bigint NOT NULL DEFAULT 0;
