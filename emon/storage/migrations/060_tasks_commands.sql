-- Issue 9: device commands through the alert outbox, cancelled victim re-sends, and room tasks.

-- A command (locate now / pursuit) is a delivery without an alert: alert_id may be NULL, channel 'command'.
ALTER TABLE alert_outbox ALTER COLUMN alert_id DROP NOT NULL;
ALTER TABLE alert_outbox DROP CONSTRAINT IF EXISTS alert_outbox_channel_check;
ALTER TABLE alert_outbox ADD CONSTRAINT alert_outbox_channel_check
    CHECK (channel IN ('victim', 'dispatch', 'command'));
-- 'cancelled': a victim warning no longer re-sent (its alert resolved, or its case closed).
ALTER TABLE alert_outbox DROP CONSTRAINT IF EXISTS alert_outbox_state_check;
ALTER TABLE alert_outbox ADD CONSTRAINT alert_outbox_state_check
    CHECK (state IN ('pending', 'sent', 'acked', 'delivered', 'cancelled'));
ALTER TABLE alert_outbox ADD COLUMN IF NOT EXISTS case_id text;  -- commands: the case that asked
ALTER TABLE alert_outbox ADD COLUMN IF NOT EXISTS cancelled_at timestamptz;
ALTER TABLE alert_outbox ADD COLUMN IF NOT EXISTS reason text;  -- commands: why (recorded here, never sent)

-- Room work items: one model for "inform the victim by phone", "obtain a fresh fix / check", reminders.
CREATE TABLE IF NOT EXISTS room_tasks (
    task_id          uuid PRIMARY KEY,              -- uuid5(kind|subject): a replay makes no second task
    kind             text NOT NULL,
    case_id          text NOT NULL,
    alert_id         uuid,
    title            text NOT NULL,
    priority         text NOT NULL CHECK (priority IN ('critical', 'high', 'normal', 'low')),
    state            text NOT NULL CHECK (state IN ('open', 'done')),
    created_at       timestamptz NOT NULL,
    deadline         timestamptz NOT NULL,
    escalation_level integer NOT NULL DEFAULT 0,
    escalated_at     timestamptz,
    done_at          timestamptz,
    done_by          text,
    note             text,
    detail           jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS room_tasks_open ON room_tasks (deadline) WHERE state = 'open';
CREATE INDEX IF NOT EXISTS room_tasks_case ON room_tasks (case_id, created_at DESC);

CREATE TABLE IF NOT EXISTS room_task_history (
    id      bigserial PRIMARY KEY,
    task_id uuid NOT NULL REFERENCES room_tasks (task_id),
    at      timestamptz NOT NULL,
    actor   text NOT NULL,
    action  text NOT NULL,
    detail  jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS room_task_history_task ON room_task_history (task_id, id);
