-- Dead letters, bounded (docs/device-contract.md): one row per message with the number of bad
-- elements and the first reasons; the payload is truncated, its full length and SHA-256 kept.
ALTER TABLE dead_letters
    ADD COLUMN IF NOT EXISTS reasons        text[] NOT NULL DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS bad_elements   integer NOT NULL DEFAULT 1,
    ADD COLUMN IF NOT EXISTS payload_len    integer,
    ADD COLUMN IF NOT EXISTS payload_sha256 bytea;
CREATE INDEX IF NOT EXISTS dead_letters_sha256 ON dead_letters (payload_sha256);
