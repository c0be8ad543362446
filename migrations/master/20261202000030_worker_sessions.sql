-- The database session of each live queue worker: a worker SIGKILLed (or
-- cut off) loses its session at once, and the jobs it held are re-queued
-- by any other worker within a sweep, long before its heartbeat is stale.
-- (pid, backend_start) names a session; a reused pid has another start.
CREATE TABLE worker_sessions (
    worker         text PRIMARY KEY,
    pid            integer NOT NULL,
    backend_start  timestamptz NOT NULL,
    registered_at  timestamptz NOT NULL DEFAULT now()
);
