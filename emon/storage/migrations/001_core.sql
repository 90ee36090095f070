-- Devices, device events, dead letters and API tokens. Fixes are created in code
-- (TimescaleDB hypertable when available, native partitions otherwise).
CREATE TABLE IF NOT EXISTS devices (
    device_id         text PRIMARY KEY,
    kind              text NOT NULL CHECK (kind IN ('ankle_tag', 'victim_device')),
    owntracks_topic   text UNIQUE,
    report_interval_s integer NOT NULL DEFAULT 60,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS device_events (
    device_id   text NOT NULL,
    ts          timestamptz NOT NULL,
    type        text NOT NULL,
    data        jsonb NOT NULL DEFAULT '{}',
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, ts, type)
);

CREATE TABLE IF NOT EXISTS dead_letters (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text NOT NULL,
    device_id   text,
    reason      text NOT NULL,
    detail      text NOT NULL DEFAULT '',
    payload     bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_received ON dead_letters (received_at);

CREATE TABLE IF NOT EXISTS api_tokens (
    token_sha256 text PRIMARY KEY,
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('admin', 'probation', 'police', 'prosecutor')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
