-- Up to when stored fixes and device events have been evaluated and handed to alerting. Written in the
-- same transaction as the evaluation decisions; at start, everything received after it is evaluated
-- again, so a crash between storing (and acknowledging) a batch and evaluating it loses no violation.
CREATE TABLE IF NOT EXISTS eval_watermark (
    id      integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    through timestamptz NOT NULL
);
-- Starts at the migration: a crash right after the very first stored batch is recovered too.
INSERT INTO eval_watermark (id, through) VALUES (1, now()) ON CONFLICT (id) DO NOTHING;
CREATE INDEX IF NOT EXISTS device_events_received ON device_events (received_at);
