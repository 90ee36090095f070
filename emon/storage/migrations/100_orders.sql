-- Issue 16: the order's term as duties (reminders, decisions, expiry) and violation reports to the prosecutor.

-- What has been done about one term of a case's order (the watch of emon/orders/lifecycle.py).
CREATE TABLE IF NOT EXISTS order_watch (
    case_id     text NOT NULL,
    valid_until timestamptz NOT NULL,
    reminded    integer[] NOT NULL DEFAULT '{}',   -- offsets (days) already reminded of
    decision    text CHECK (decision IN ('extended', 'let_expire', 'replaced')),
    expired_at  timestamptz,                       -- when the end was noticed
    PRIMARY KEY (case_id, valid_until)
);

-- Every decision about an order's end: who, when, why; an extension entered after the end has a gap.
CREATE TABLE IF NOT EXISTS order_decisions (
    id           bigserial PRIMARY KEY,
    case_id      text NOT NULL,
    decided_at   timestamptz NOT NULL,
    decided_by   text NOT NULL,
    decision     text NOT NULL CHECK (decision IN ('extended', 'let_expire', 'replaced')),
    reason       text NOT NULL,
    old_until    timestamptz,
    new_until    timestamptz,
    from_version integer,
    to_version   integer,
    gap_from     timestamptz,
    gap_to       timestamptz
);
CREATE INDEX IF NOT EXISTS order_decisions_case ON order_decisions (case_id, id);

-- One per confirmed violation (its alert): the task "report to the prosecutor" and the report sent.
CREATE TABLE IF NOT EXISTS violation_reports (
    alert_id    uuid PRIMARY KEY,
    task_id     uuid NOT NULL,
    case_id     text NOT NULL,
    units       text[] NOT NULL,
    kind        text NOT NULL,
    risk        text NOT NULL,
    opened_at   timestamptz NOT NULL,
    due_at      timestamptz NOT NULL,
    reported_at timestamptz,
    reported_by text,
    assessment  text,
    report      jsonb
);
CREATE INDEX IF NOT EXISTS violation_reports_opened ON violation_reports (opened_at);
