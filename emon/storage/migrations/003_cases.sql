-- Cases with their order document, and the evaluation state that must survive a restart.
CREATE TABLE IF NOT EXISTS cases (
    case_id         text PRIMARY KEY,
    risk            text NOT NULL CHECK (risk IN ('low', 'medium', 'high')),
    offender_device text NOT NULL,
    victim_device   text,
    document        jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    closed_at       timestamptz,
    closed_by       text
);
CREATE INDEX IF NOT EXISTS cases_offender ON cases (offender_device) WHERE status = 'open';
CREATE INDEX IF NOT EXISTS cases_victim ON cases (victim_device) WHERE status = 'open';

CREATE TABLE IF NOT EXISTS case_history (
    id         bigserial PRIMARY KEY,
    case_id    text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    changed_by text NOT NULL,
    action     text NOT NULL,
    document   jsonb NOT NULL
);

CREATE TABLE IF NOT EXISTS eval_state (
    case_id    text PRIMARY KEY,
    state      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every evaluation decision, with its explanation (fixes, rule, distances, accuracies, ages).
CREATE TABLE IF NOT EXISTS eval_events (
    id          bigserial PRIMARY KEY,
    case_id     text NOT NULL,
    type        text NOT NULL,
    rule        text NOT NULL,
    at          timestamptz NOT NULL,
    episode     timestamptz NOT NULL,
    decided_at  timestamptz NOT NULL,
    live        boolean NOT NULL,
    explanation jsonb NOT NULL,
    UNIQUE (case_id, type, rule, at, episode)
);
CREATE INDEX IF NOT EXISTS eval_events_case ON eval_events (case_id, at);
