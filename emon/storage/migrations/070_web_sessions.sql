-- Browser sessions of the pages: the cookie's SHA-256, the SHA-256 of the token it was opened with
-- (re-validated on every request, so a revoked token ends its sessions), and the CSRF token.
CREATE TABLE IF NOT EXISTS web_sessions (
    session_sha256 text PRIMARY KEY,
    token_sha256   text NOT NULL,
    csrf           text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS web_sessions_token ON web_sessions (token_sha256);
