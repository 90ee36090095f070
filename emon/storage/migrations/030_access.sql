-- People, their tokens, the units a case names, and the append-only audit log (issue 12, items 1-3).
CREATE TABLE IF NOT EXISTS users (
    user_id     text PRIMARY KEY,
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('admin', 'probation', 'police', 'prosecutor', 'auditor')),
    units       text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL,
    disabled_at timestamptz
);

-- Tokens belong to a user now; rows of the earlier name/role tokens stay valid as they were.
ALTER TABLE api_tokens ADD COLUMN IF NOT EXISTS token_id text UNIQUE;
ALTER TABLE api_tokens ADD COLUMN IF NOT EXISTS user_id text REFERENCES users (user_id);
ALTER TABLE api_tokens ADD COLUMN IF NOT EXISTS expires_at timestamptz;
ALTER TABLE api_tokens ADD COLUMN IF NOT EXISTS created_by text;
ALTER TABLE api_tokens ADD COLUMN IF NOT EXISTS revoked_by text;
ALTER TABLE api_tokens DROP CONSTRAINT IF EXISTS api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
    CHECK (role IN ('admin', 'probation', 'police', 'prosecutor', 'auditor'));
CREATE INDEX IF NOT EXISTS api_tokens_user ON api_tokens (user_id);

ALTER TABLE cases ADD COLUMN IF NOT EXISTS units text[] NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS cases_units ON cases USING gin (units);

-- One chain: every append locks the head row (SELECT ... FOR UPDATE), so concurrent instances
-- append one after the other and each record names the hash of the one before.
CREATE TABLE IF NOT EXISTS audit_log (
    seq       bigint PRIMARY KEY,
    at        timestamptz NOT NULL,
    user_id   text,
    user_name text NOT NULL,
    role      text NOT NULL,
    action    text NOT NULL,
    outcome   text NOT NULL CHECK (outcome IN ('allowed', 'refused')),
    purpose   text,
    case_id   text,
    device_id text,
    alert_id  text,
    detail    text NOT NULL,
    prev_hash text NOT NULL,
    hash      text NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_case ON audit_log (case_id, seq) WHERE case_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_log_user ON audit_log (user_name, seq);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);

CREATE TABLE IF NOT EXISTS audit_head (
    id                 integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    seq                bigint NOT NULL,
    hash               text NOT NULL,
    checkpoint_seq     bigint NOT NULL DEFAULT 0,
    checkpoint_at      timestamptz
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, repeat('0', 64)) ON CONFLICT (id) DO NOTHING;

CREATE TABLE IF NOT EXISTS audit_checkpoints (
    seq       bigint PRIMARY KEY,
    hash      text NOT NULL,
    at        timestamptz NOT NULL,
    key_id    text NOT NULL,
    signature bytea NOT NULL
);

-- Nothing edits or deletes the log; a superuser who disables this is caught by `emon audit verify`.
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only (% on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
DROP TRIGGER IF EXISTS audit_checkpoints_append_only ON audit_checkpoints;
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
DROP TRIGGER IF EXISTS audit_checkpoints_no_truncate ON audit_checkpoints;
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
