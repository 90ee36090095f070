-- The alerting tick asks only for alerts whose acknowledgement deadline may have passed (open, not yet
-- escalated, not suppressed, opened long enough ago) instead of reading every open alert each tick.
CREATE INDEX IF NOT EXISTS alerts_escalation_due ON alerts (opened_at)
    WHERE state = 'open' AND NOT escalated AND NOT suppressed;
