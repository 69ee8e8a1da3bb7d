-- The official account's follow-or-scan login (WXLOGIN_OA_*). A scene shown as the account's
-- QR has the account's appid as its `appid`.

-- Each event once: WeChat retries an unanswered event up to three times, possibly to another
-- process; the reply given is kept so that a retry gets it again.
CREATE TABLE oa_events (
    from_user    text NOT NULL,
    create_time  bigint NOT NULL,
    received_at  timestamptz NOT NULL,
    reply        text,
    PRIMARY KEY (from_user, create_time)
);
CREATE INDEX oa_events_received_at ON oa_events (received_at);

-- The confirm link of a passive reply: single use, short-lived, bound to the follower and the
-- scene they scanned. Only the token's hash is kept.
CREATE TABLE oa_confirms (
    token_hash  bytea PRIMARY KEY,
    scene       text NOT NULL,
    openid      text NOT NULL,
    unionid     text,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX oa_confirms_expires_at ON oa_confirms (expires_at);
