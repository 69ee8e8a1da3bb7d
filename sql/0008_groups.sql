-- Groups a user belongs to (`wxlogin users groups ID add|remove GROUP`): in /api/me, in
-- X-Wxlogin-Groups on /api/auth (which can require one), and in OpenID Connect's `groups`.
CREATE TABLE user_groups (
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, name)
);
CREATE INDEX user_groups_name ON user_groups (name);
