-- Every instance's room stream shows an alert decided on another within about a second: a changed alert
-- names itself and the instance that changed it (application_name = emon:<instance id>), so the
-- deciding instance, which has already published it, does not publish it twice.
CREATE OR REPLACE FUNCTION emon_notify_alert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_changes',
                      'alert ' || NEW.alert_id || ' ' || coalesce(current_setting('application_name', true), ''));
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS alerts_notify ON alerts;
CREATE TRIGGER alerts_notify AFTER INSERT OR UPDATE ON alerts FOR EACH ROW EXECUTE FUNCTION emon_notify_alert();
