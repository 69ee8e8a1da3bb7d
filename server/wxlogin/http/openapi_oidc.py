"""The OpenAPI description of the OpenID Connect endpoints (http/oidc.py).

Their errors are the protocol's: the token and userinfo endpoints answer RFC 6749's `error` and
`error_description` (and `message`, like every other answer); the authorization endpoint sends
the browser back to the client, or shows a page when it cannot.
"""

from __future__ import annotations

from .openapi_schema import (
    ALWAYS,
    DATABASE,
    FORM,
    JSON,
    Schema,
    error_schema,
    errors_for,
    json_body,
    obj,
    operation,
)

OAUTH_CODES = (
    "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
    "unsupported_grant_type", "invalid_scope", "invalid_token",
)
OAUTH_ERROR: Schema = obj({
    "error": {"type": "string", "enum": list(OAUTH_CODES)},
    "error_description": {"type": "string"},
    "message": {"type": "string"},
})
STRING: Schema = {"type": "string"}
CLAIMS: Schema = obj({
    "sub": {"type": "string", "maxLength": 255},
    "name": STRING, "preferred_username": STRING, "picture": STRING, "email": STRING,
    "email_verified": {"type": "boolean"},
    "groups": {"type": "array", "items": STRING},
}, "name", "preferred_username", "picture", "email", "email_verified", "groups")


def oauth_errors(*statuses: int, form_errors: tuple[str, ...] = ()) -> dict[str, Schema]:
    """The protocol's error answers, beside the server's own (a malformed form, a database
    that cannot be reached) where both share a status."""
    responses = errors_for(*form_errors, *DATABASE)
    for status in statuses:
        protocol: Schema = {"description": "An OAuth 2.0 error (RFC 6749 §5.2, RFC 6750 §3).",
                            "content": {JSON: {"schema": OAUTH_ERROR}}}
        if str(status) in responses:  # one answer or the other
            ours = responses[str(status)]["content"][JSON]["schema"]
            protocol["content"][JSON]["schema"] = {"anyOf": [OAUTH_ERROR, ours]}
        responses[str(status)] = protocol
    return responses


def form_body(properties: dict[str, Schema], *optional: str) -> Schema:
    return {"required": True, "content": {FORM: {"schema": obj(properties, *optional,
                                                                 closed=False)}}}


AUTHORIZE_PARAMETERS = [
    {"name": name, "in": "query", "required": name in ("client_id", "redirect_uri"),
     "schema": STRING}
    for name in ("response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
                 "code_challenge", "code_challenge_method", "prompt", "max_age")
]
LOGOUT_PARAMETERS = [
    {"name": name, "in": "query", "required": False, "schema": STRING}
    for name in ("id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales")
]
AUTHORIZE_RESPONSES: Schema = {
    "302": {"description": "Back to the client's redirect_uri, with `code`, `state` and `iss`, "
            "or with `error` (RFC 6749 §4.1.2.1)."},
    "303": {"description": "To the hosted login page, which comes back to this request."},
    "400": {"description": "An unknown client or an unregistered redirect_uri: a page for the "
            "person, never a redirect (or a malformed form, as JSON).",
            "content": {"text/html": {"schema": STRING},
                        JSON: {"schema": error_schema(["bad_request"])}}},
}


def oidc_paths() -> dict[str, Schema]:
    authorize = {
        "summary": "The authorization endpoint: response_type=code, PKCE S256, prompt, max_age.",
        "tags": ["identity"],
        "responses": {**errors_for("body_too_large", *DATABASE), **AUTHORIZE_RESPONSES},
    }
    logout = {
        "summary": "RP-initiated logout: ends the wxlogin session (at once with an id_token_hint "
                   "naming the person, else after they confirm), then back to the client.",
        "tags": ["identity"],
        "responses": {
            **errors_for("forbidden_origin", "body_too_large", *DATABASE),
            "200": {"description": "A page: confirm logging out, or logged out.",
                    "content": {"text/html": {"schema": STRING}}},
            "302": {"description": "Back to the registered post_logout_redirect_uri, with state."},
            "400": {"description": "An unregistered post_logout_redirect_uri: a page, no redirect "
                    "(or a malformed form, as JSON).",
                    "content": {"text/html": {"schema": STRING},
                                JSON: {"schema": error_schema(["bad_request"])}}},
        },
    }
    userinfo_answers = {"200": json_body("The claims the access token's scopes allow.", CLAIMS),
                        **oauth_errors(401, form_errors=("bad_request", "body_too_large"))}
    return {
        "/.well-known/openid-configuration": {"get": operation(
            "discovery", "identity", "OpenID Connect Discovery: the issuer and its endpoints.",
            {"200": json_body("The provider's metadata.", obj({
                "issuer": STRING, "authorization_endpoint": STRING, "token_endpoint": STRING,
                "userinfo_endpoint": STRING, "jwks_uri": STRING,
            }, closed=False))},
            ALWAYS,
        )},
        "/oidc/jwks": {"get": operation(
            "jwks", "identity", "The public keys that sign this server's tokens (RFC 7517): "
            "the current and next key of each algorithm, and retired ones still worth checking.",
            {"200": {
                "description": "A JSON Web Key Set.",
                "content": {"application/jwk-set+json": {"schema": obj({
                    "keys": {"type": "array", "items": obj({
                        "kty": {"enum": ["RSA", "EC"]}, "kid": STRING,
                        "alg": {"enum": ["RS256", "ES256"]}, "use": {"const": "sig"},
                    }, closed=False)},
                })}},
            }},
            DATABASE,
        )},
        "/oidc/authorize": {
            "get": {**authorize, "operationId": "authorize", "parameters": AUTHORIZE_PARAMETERS},
            "post": {**authorize, "operationId": "authorizeByForm",
                     "requestBody": form_body({"client_id": STRING, "redirect_uri": STRING},
                                              "client_id", "redirect_uri")},
        },
        "/oidc/token": {"post": operation(
            "token", "identity", "The token endpoint: authorization_code (with PKCE) and "
            "refresh_token grants; client_secret_basic, client_secret_post, or a public client.",
            {"200": json_body("Tokens.", obj({
                "access_token": STRING, "token_type": {"const": "Bearer"},
                "expires_in": {"type": "integer"}, "scope": STRING, "id_token": STRING,
                "refresh_token": STRING,
            }, "refresh_token")),
             **oauth_errors(400, 401, form_errors=("bad_request", "body_too_large"))},
            (),
            requestBody=form_body({"grant_type": STRING}),
        )},
        "/oidc/logout": {
            "get": {**logout, "operationId": "endSession", "parameters": LOGOUT_PARAMETERS},
            "post": {**logout, "operationId": "endSessionByForm",
                     "requestBody": form_body({"confirm": STRING}, "confirm")},
        },
        "/oidc/userinfo": {
            "get": operation("userinfo", "identity", "Claims for a bearer access token.",
                             userinfo_answers, ()),
            "post": operation("userinfoByPost", "identity", "Claims for a bearer access token "
                              "(in the header, or as `access_token` in a form).",
                              userinfo_answers, ()),
        },
    }
