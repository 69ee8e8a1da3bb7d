-- Users: keyed by WeChat's unionid when it gives one; otherwise an identity (appid, openid) is
-- the only key. Several mini programs share a user through unionid.
CREATE TABLE users (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    unionid     text UNIQUE,
    nickname    text NOT NULL DEFAULT '',
    avatar_url  text NOT NULL DEFAULT '',
    disabled    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE identities (
    appid       text NOT NULL,
    openid      text NOT NULL,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (appid, openid)
);
CREATE INDEX identities_user_id ON identities (user_id);

-- Server-side sessions. The cookie carries a random id; only its keyed hash is stored, so a dump
-- holds no usable cookie. `predecessor` is the pre-login session, kept until the new one is first
-- used, so that a login answer lost on the wire can be delivered again (see docs/design.md).
CREATE TABLE sessions (
    id_hash      bytea PRIMARY KEY,
    data         jsonb NOT NULL,
    user_id      bigint REFERENCES users (id) ON DELETE CASCADE,
    predecessor  bytea,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_predecessor ON sessions (predecessor) WHERE predecessor IS NOT NULL;
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Login attempts. `expired` is never stored: it is derived from expires_at by every reader.
CREATE TABLE scenes (
    scene          text PRIMARY KEY CHECK (scene ~ '^[0-9A-Za-z]{1,32}$'),
    owner          text NOT NULL,          -- the creating browser's key, kept in its session
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'scanned', 'confirmed', 'denied')),
    appid          text NOT NULL,          -- the mini program that draws the code
    claimant       text,                   -- user key of whoever scanned or confirmed
    user_id        bigint REFERENCES users (id) ON DELETE SET NULL,
    browser_agent  text NOT NULL DEFAULT '',
    browser_ip     text NOT NULL DEFAULT '',
    code_image     bytea,
    code_type      text,
    drawing_until  timestamptz,            -- lease of the process drawing the code
    login_nonce    bytea,                  -- set by the single-use login gate
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL
);
CREATE INDEX scenes_expires_at ON scenes (expires_at);

-- One code, one step: what each wx.login code was used for and the answer given, so that an
-- identical retry is answered again without asking WeChat, and any other use is refused.
CREATE TABLE code_ledger (
    code_hash     bytea PRIMARY KEY,       -- sha256 of the code
    step          text NOT NULL,
    scene         text NOT NULL,
    request_hash  bytea NOT NULL,
    answer_status integer,                 -- NULL while the step is in flight
    answer        jsonb,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL
);
CREATE INDEX code_ledger_expires_at ON code_ledger (expires_at);

-- Access tokens shared by every process, refreshed by one at a time. The token is sealed with a
-- key derived from the AppSecret (which every process has and a dump does not); its sha256 names
-- the token that failed when WeChat rejects one.
CREATE TABLE access_tokens (
    appid        text PRIMARY KEY,
    token_sealed bytea NOT NULL,
    token_hash   bytea NOT NULL,
    expires_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
