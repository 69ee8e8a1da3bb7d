-- OpenID Connect clients kept in the database (`wxlogin clients add`), beside those declared in
-- WXLOGIN_OIDC_CLIENTS. A secret is kept as its SHA-256 (it is shown once, when made); a client
-- without one is public and must use PKCE.
CREATE TABLE oidc_clients (
    client_id                  text PRIMARY KEY,
    name                       text NOT NULL,
    secret_hash                bytea,
    redirect_uris              text[] NOT NULL,
    post_logout_redirect_uris  text[] NOT NULL DEFAULT '{}',
    email                      text CHECK (email IN ('substitute')),
    allowed_groups             text[] NOT NULL DEFAULT '{}',
    created_at                 timestamptz NOT NULL
);
