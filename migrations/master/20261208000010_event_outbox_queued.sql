-- Whether the event's delivery job was queued with it. A process with no
-- notification channel writes the event alone (no job nobody would take);
-- a worker with a channel queues the jobs of such events by sweep.
ALTER TABLE events ADD COLUMN queued boolean NOT NULL DEFAULT true;
CREATE INDEX events_unqueued ON events (created_at) WHERE NOT queued;
