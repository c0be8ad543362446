-- Delivery state of each outbox event per channel (webhook, novu).
CREATE TABLE event_deliveries (
    event_id      uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    channel       text NOT NULL CHECK (channel IN ('webhook', 'novu')),
    status        text NOT NULL CHECK (status IN ('pending', 'retrying', 'delivered', 'failed', 'skipped')),
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    delivered_at  timestamptz,
    PRIMARY KEY (event_id, channel)
);
