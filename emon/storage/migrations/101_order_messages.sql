-- Issue 16: paperwork through the durable outbox, on its own channels (never the emergency dispatch webhook):
-- 'police_orders' (CAP about an order imposed/extended/changed/ended) and 'prosecutor' (violation reports).
ALTER TABLE alert_outbox DROP CONSTRAINT IF EXISTS alert_outbox_channel_check;
ALTER TABLE alert_outbox ADD CONSTRAINT alert_outbox_channel_check
    CHECK (channel IN ('victim', 'dispatch', 'command', 'police_orders', 'prosecutor'));

-- The last order version police systems were told about, per case.
CREATE TABLE IF NOT EXISTS order_police_notices (
    case_id    text PRIMARY KEY,
    version    integer NOT NULL,
    extensions integer NOT NULL,
    ended      boolean NOT NULL DEFAULT false,
    at         timestamptz NOT NULL
);
