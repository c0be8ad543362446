-- The plan a provisioning run follows, resolved from the catalogue when the
-- run is created: a catalogue edited later changes new runs only. NULL for
-- deprovisioning runs and for runs created before plans existed.
ALTER TABLE workflow_runs ADD COLUMN plan jsonb;
