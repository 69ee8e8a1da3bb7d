-- The OpenID Connect provider's grants. Codes and tokens are kept as SHA-256 hashes: a dump
-- holds none that works. A token remembers the code it came from (`grant_hash`), so a code
-- redeemed twice revokes everything the first redemption issued.
ALTER TABLE users ADD COLUMN oidc_sub text UNIQUE;  -- opaque, stable, made on first need

CREATE TABLE oidc_codes (
    code_hash       bytea PRIMARY KEY,
    client_id       text NOT NULL,
    redirect_uri    text NOT NULL,
    user_id         bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope           text NOT NULL,
    nonce           text,
    code_challenge  text,
    auth_time       timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    redeemed_at     timestamptz
);
CREATE INDEX oidc_codes_expires_at ON oidc_codes (expires_at);

CREATE TABLE oidc_tokens (
    token_hash  bytea PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('access', 'refresh')),
    grant_hash  bytea NOT NULL,
    client_id   text NOT NULL,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope       text NOT NULL,
    auth_time   timestamptz NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX oidc_tokens_grant ON oidc_tokens (grant_hash);
CREATE INDEX oidc_tokens_expires_at ON oidc_tokens (expires_at);
