-- Secrets the server makes for itself when the environment sets none (the session cookie's key
-- now, the OpenID Connect signing keys later): made once, by whichever process comes first, and
-- shared by every process and machine on this database.
CREATE TABLE secrets (
    name        text PRIMARY KEY,
    value       text NOT NULL,
    created_at  timestamptz NOT NULL
);

-- The sweeper empties a used login gate's nonce once its scene has expired; this finds them.
CREATE INDEX scenes_used_nonce ON scenes (expires_at) WHERE login_nonce <> ''::bytea;
