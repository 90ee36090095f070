-- Alerts, their history, the delivery outbox and its attempts, and suppressions (issue 5).
-- Every alert change, its outbox rows and its history row are written in one transaction.
CREATE TABLE IF NOT EXISTS alerts (
    alert_id           uuid PRIMARY KEY,             -- uuid5(case_id|rule|episode): replays cannot duplicate
    case_id            text NOT NULL,
    type               text NOT NULL,
    rule               text NOT NULL,
    episode            timestamptz NOT NULL,
    state              text NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    priority           text NOT NULL CHECK (priority IN ('critical', 'high', 'normal', 'low')),
    recipients         text[] NOT NULL,
    risk               text NOT NULL,
    device_id          text,
    opened_at          timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    acknowledged_at    timestamptz,
    acknowledged_by    text,
    resolved_at        timestamptz,
    resolved_by        text,
    outcome            text,
    late               boolean NOT NULL,
    live               boolean NOT NULL,
    escalated          boolean NOT NULL DEFAULT false,
    suppressed         boolean NOT NULL DEFAULT false,
    distance_m         double precision,
    closest_m          double precision,
    offender_position  jsonb,
    victim_position    jsonb,
    explanation        jsonb NOT NULL,
    ended_at           timestamptz,
    notify_seq         integer NOT NULL DEFAULT 0,
    notified_closest_m double precision,
    delivery_failing   boolean NOT NULL DEFAULT false,
    events             integer NOT NULL DEFAULT 1,
    victim_acked_at    timestamptz,
    UNIQUE (case_id, rule, episode)
);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts (case_id, rule) WHERE state <> 'resolved';
CREATE INDEX IF NOT EXISTS alerts_case ON alerts (case_id, opened_at DESC);

CREATE TABLE IF NOT EXISTS alert_history (
    id       bigserial PRIMARY KEY,
    alert_id uuid NOT NULL REFERENCES alerts (alert_id),
    at       timestamptz NOT NULL,
    actor    text NOT NULL,
    action   text NOT NULL,
    state    text NOT NULL,
    detail   jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS alert_history_alert ON alert_history (alert_id, id);

-- One row per notification to one recipient; delivery_id is the notification_id / webhook-id.
CREATE TABLE IF NOT EXISTS alert_outbox (
    delivery_id     uuid PRIMARY KEY,
    alert_id        uuid NOT NULL REFERENCES alerts (alert_id),
    channel         text NOT NULL CHECK (channel IN ('victim', 'dispatch')),
    target          text NOT NULL,                -- victim device id, or the webhook URL
    msg_type        text NOT NULL,                -- Alert / Update / Cancel (dispatch), notify (victim)
    body            bytea NOT NULL,               -- exactly the bytes sent on every attempt
    state           text NOT NULL CHECK (state IN ('pending', 'sent', 'acked', 'delivered')),
    requires_ack    boolean NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    first_sent_at   timestamptz,
    delivered_at    timestamptz,
    acked_at        timestamptz,
    last_error      text,
    failing         boolean NOT NULL DEFAULT false,
    escalated       boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS alert_outbox_due ON alert_outbox (next_attempt_at) WHERE state IN ('pending', 'sent');
CREATE INDEX IF NOT EXISTS alert_outbox_alert ON alert_outbox (alert_id);

CREATE TABLE IF NOT EXISTS alert_delivery_attempts (
    id          bigserial PRIMARY KEY,
    delivery_id uuid NOT NULL REFERENCES alert_outbox (delivery_id),
    at          timestamptz NOT NULL,
    ok          boolean NOT NULL,
    latency_s   double precision NOT NULL,
    detail      text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS alert_delivery_attempts_delivery ON alert_delivery_attempts (delivery_id, id);

CREATE TABLE IF NOT EXISTS alert_suppressions (
    id         bigserial PRIMARY KEY,
    case_id    text NOT NULL,
    types      text[],                            -- NULL: every type (panic is never suppressed)
    reason     text NOT NULL,
    starts_at  timestamptz NOT NULL,
    until      timestamptz NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alert_suppressions_case ON alert_suppressions (case_id, until);
