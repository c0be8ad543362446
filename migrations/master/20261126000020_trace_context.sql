-- The run's trace identity ({"run": traceparent, "parent": traceparent}):
-- a run spans many jobs and processes, so its span ids live with the run.
-- NULL for runs created before tracing existed.
ALTER TABLE workflow_runs ADD COLUMN trace_context jsonb;
