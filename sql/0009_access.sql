-- Who may log in (WXLOGIN_REGISTRATION): a user is active, pending the owner's approval, or
-- disabled. One column instead of the old flag, so that "may log in" is one comparison.
ALTER TABLE users ADD COLUMN status text NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'pending', 'disabled'));
UPDATE users SET status = 'disabled' WHERE disabled;
ALTER TABLE users DROP COLUMN disabled;
ALTER TABLE users ADD COLUMN last_login_at timestamptz;
CREATE INDEX users_pending ON users (created_at) WHERE status = 'pending';

-- Why a scene was refused rather than declined (approval_pending, not_invited, user_disabled):
-- the browser's poll says so.
ALTER TABLE scenes ADD COLUMN deny_reason text;

-- Invitations: the link carries a token, of which only the hash is kept (a dump lets no one in).
-- `used < uses` is the single-use gate: one conditional UPDATE per redemption.
CREATE TABLE invitations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash  bytea NOT NULL UNIQUE,
    groups      text[] NOT NULL DEFAULT '{}',
    uses        integer NOT NULL CHECK (uses > 0),
    used        integer NOT NULL DEFAULT 0 CHECK (used <= uses),
    note        text NOT NULL DEFAULT '',
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);

-- A browser (its key, the scenes' owner) that opened an invitation link; its next login
-- redeems it.
CREATE TABLE invitation_browsers (
    owner          text PRIMARY KEY,
    invitation_id  bigint NOT NULL REFERENCES invitations (id) ON DELETE CASCADE,
    bound_at       timestamptz NOT NULL
);

-- Every owner action and every refused login: who, what, whom, when, from which address.
CREATE TABLE audit (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       timestamptz NOT NULL,
    actor    text NOT NULL,
    action   text NOT NULL,
    subject  text NOT NULL DEFAULT '',
    detail   jsonb NOT NULL DEFAULT '{}',
    address  text NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit (at);

-- The funnel of scenes already swept, a row per day (UTC) of their creation: the sweeper adds
-- each scene here in the statement that deletes it, so every scene is counted exactly once.
CREATE TABLE funnel_days (
    day        date PRIMARY KEY,
    created    integer NOT NULL DEFAULT 0,
    scanned    integer NOT NULL DEFAULT 0,
    confirmed  integer NOT NULL DEFAULT 0,
    denied     integer NOT NULL DEFAULT 0,   -- declined by the person who scanned
    refused    integer NOT NULL DEFAULT 0,   -- turned away by the owner's rules
    expired    integer NOT NULL DEFAULT 0
);
