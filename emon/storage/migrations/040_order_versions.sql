-- Order versions (issue 12 item 4): every case_history row is one numbered version of the case's
-- document, with who, when and why; decisions and alerts name the version in force.
ALTER TABLE case_history ADD COLUMN IF NOT EXISTS version integer;
ALTER TABLE case_history ADD COLUMN IF NOT EXISTS reason text;
UPDATE case_history h SET version = n.version
  FROM (SELECT id, row_number() OVER (PARTITION BY case_id ORDER BY id) AS version FROM case_history) n
 WHERE h.id = n.id AND h.version IS NULL;
ALTER TABLE case_history ALTER COLUMN version SET NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS case_history_version ON case_history (case_id, version);

ALTER TABLE cases ADD COLUMN IF NOT EXISTS version integer NOT NULL DEFAULT 1;
UPDATE cases c SET version = h.v FROM (SELECT case_id, max(version) AS v FROM case_history GROUP BY case_id) h
 WHERE c.case_id = h.case_id;

-- Legal hold: a case marked as evidence in proceedings keeps its positions past the retention period.
ALTER TABLE cases ADD COLUMN IF NOT EXISTS legal_hold boolean NOT NULL DEFAULT false;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS legal_hold_reason text;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS legal_hold_by text;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS legal_hold_at timestamptz;

ALTER TABLE eval_events ADD COLUMN IF NOT EXISTS order_version integer;
-- The journal step that made the decision (below): a pack takes exactly the decisions of its steps.
ALTER TABLE eval_events ADD COLUMN IF NOT EXISTS journal_n bigint;

-- An alert names the order version in force when it opened. The evaluation edge stamps the version on
-- each decision (explanation.detail.order_version); alerts from device events (tamper, panic, silence)
-- take the case's current version. Kept on updates: the column is not in the alert store's upsert.
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS order_version integer;
CREATE OR REPLACE FUNCTION alerts_order_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.order_version IS NULL THEN
    NEW.order_version := coalesce(
      (NEW.explanation -> 'detail' ->> 'order_version')::integer,
      (SELECT version FROM cases WHERE case_id = NEW.case_id));
  END IF;
  RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS alerts_order_version ON alerts;
CREATE TRIGGER alerts_order_version BEFORE INSERT ON alerts
  FOR EACH ROW EXECUTE FUNCTION alerts_order_version();

-- The evaluation journal: one row per evaluation step that changed a case (a batch of fixes, a tick, a
-- case change, a start), with the decision time it ran at and the fixes it saw. With the snapshots below
-- it makes every decision replayable: state at a snapshot + the steps after it = the decisions made.
CREATE TABLE IF NOT EXISTS eval_journal (
    n        bigserial PRIMARY KEY,
    kind     text NOT NULL CHECK (kind IN ('batch', 'tick', 'case', 'start')),
    now      timestamptz NOT NULL,
    case_ids text[] NOT NULL,                -- the cases a case change or start concerns; '{}': all (batch, tick)
    fixes    jsonb NOT NULL DEFAULT '[]',     -- [[device_id, ts, seq], ...] (batch)
    detail   jsonb NOT NULL DEFAULT '{}'      -- {"version": n} (case), {"config": {...}} (start)
);
CREATE INDEX IF NOT EXISTS eval_journal_cases ON eval_journal USING gin (case_ids);

-- A case's evaluation state right after journal step n (taken at most every EMON_EVIDENCE_SNAPSHOT_S).
CREATE TABLE IF NOT EXISTS eval_snapshots (
    case_id       text NOT NULL,
    n             bigint NOT NULL,
    at            timestamptz NOT NULL,
    order_version integer,
    config        jsonb NOT NULL,
    state         jsonb NOT NULL,
    PRIMARY KEY (case_id, n)
);

-- What retention removed (until the audit log of the access branch takes it over).
CREATE TABLE IF NOT EXISTS retention_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    case_id   text NOT NULL,
    closed_at timestamptz NOT NULL,
    devices   text[] NOT NULL,
    fixes     integer NOT NULL,
    events    integer NOT NULL,
    detail    jsonb NOT NULL DEFAULT '{}'
);
