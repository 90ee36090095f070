-- Several instances (issue 11): PostgreSQL decides who evaluates. One row per lease; ``epoch`` grows by one
-- at every change of owner, and every write an owner makes checks (owner, epoch, not expired) in its own
-- transaction (emon.storage.lease.Fence), so an owner frozen past its lease cannot act any more.
CREATE TABLE IF NOT EXISTS cluster_leases (
    name       text PRIMARY KEY,
    owner      text NOT NULL,
    epoch      bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
-- Live instances (heartbeats), for operators and the lease holder's view of the cluster.
CREATE TABLE IF NOT EXISTS cluster_members (
    instance_id text PRIMARY KEY,
    started_at  timestamptz NOT NULL DEFAULT now(),
    seen_at     timestamptz NOT NULL DEFAULT now()
);
-- The lease holder reads every instance's new fixes by storing time (emon.cluster.feed).
CREATE INDEX IF NOT EXISTS fixes_received ON fixes (received_at);
-- Every instance follows devices and cases registered through any other (emon.cluster.sync): a change
-- wakes the listeners; they re-read the tables (and re-read everything after a reconnect, because a
-- notification sent while a listener is away is lost).
CREATE OR REPLACE FUNCTION emon_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_changes', TG_TABLE_NAME);
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS devices_notify ON devices;
CREATE TRIGGER devices_notify AFTER INSERT OR UPDATE OR DELETE ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION emon_notify_change();
DROP TRIGGER IF EXISTS cases_notify ON cases;
CREATE TRIGGER cases_notify AFTER INSERT OR UPDATE OR DELETE ON cases
    FOR EACH STATEMENT EXECUTE FUNCTION emon_notify_change();
