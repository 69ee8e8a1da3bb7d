"""The OpenID Connect clients (relying parties) declared in WXLOGIN_OIDC_CLIENTS."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True)
class OidcClient:
    client_id: str
    redirect_uris: tuple[str, ...]
    client_secret: str | None = field(default=None, repr=False)  # None: a public client
    post_logout_redirect_uris: tuple[str, ...] = ()
    name: str = ""
    email: str | None = None  # "substitute": a made-up address for RPs that demand one
    allowed_groups: tuple[str, ...] = ()
    secret_hash: bytes | None = field(default=None, repr=False)  # a database client's
    id_token_alg: str = "RS256"  # noqa: S105 - its id_token_signed_response_alg, not a secret

    @property
    def public(self) -> bool:
        return self.client_secret is None and self.secret_hash is None

    def secret_matches(self, offered: str) -> bool:
        if self.client_secret is not None:
            return hmac.compare_digest(self.client_secret.encode(), offered.encode())
        if self.secret_hash is not None:
            return hmac.compare_digest(self.secret_hash, secret_hash(offered))
        return False


def secret_hash(secret: str) -> bytes:
    """How a database client's secret is kept: made by us with 256 bits, so a plain SHA-256
    is enough (there is no password to guess)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()


def absolute_url(value: object) -> bool:
    if not isinstance(value, str) or len(value) > 2048:
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - reading it checks it (a port over 65535, letters)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.fragment


def parse_clients(raw: str | None) -> tuple[tuple[OidcClient, ...], list[str]]:
    """The clients, and every problem with them (the setting is WXLOGIN_OIDC_CLIENTS)."""
    if not raw:
        return (), []
    name = "WXLOGIN_OIDC_CLIENTS"
    try:
        items = json.loads(raw)
    except ValueError:
        return (), [f"{name} must be a JSON array of client objects"]
    if not isinstance(items, list):
        return (), [f"{name} must be a JSON array of client objects"]
    clients: list[OidcClient] = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        where, known = f"{name}[{index}]", len(problems)
        if not isinstance(item, dict):
            problems.append(f"{where} must be an object")
            continue
        client_id, secret = item.get("client_id"), item.get("client_secret")
        uris, logout = item.get("redirect_uris"), item.get("post_logout_redirect_uris", [])
        groups = item.get("allowed_groups", [])
        if not isinstance(client_id, str) or not client_id or len(client_id) > 255:
            problems.append(f"{where}: client_id must be a non-empty string")
            continue
        if client_id in seen:
            problems.append(f"{where}: client_id {client_id!r} is declared twice")
        seen.add(client_id)
        if secret is not None and (not isinstance(secret, str) or len(secret) < 16):
            problems.append(f"{where}: client_secret must be at least 16 characters (or absent"
                            " for a public client, which must use PKCE)")
        if not isinstance(uris, list) or not uris or not all(map(absolute_url, uris)):
            problems.append(f"{where}: redirect_uris must be a non-empty list of http(s) URLs")
        if not isinstance(logout, list) or not all(map(absolute_url, logout)):
            problems.append(f"{where}: post_logout_redirect_uris must be a list of http(s) URLs")
        if item.get("email") not in (None, "substitute"):
            problems.append(f'{where}: email may only be "substitute"')
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            problems.append(f"{where}: allowed_groups must be a list of group names")
        if item.get("id_token_signed_response_alg", "RS256") not in ("RS256", "ES256"):
            problems.append(f"{where}: id_token_signed_response_alg must be RS256 or ES256")
        if not isinstance(item.get("name", ""), str):
            problems.append(f"{where}: name must be a string")
        if len(problems) > known:  # this one is not a client
            continue
        assert isinstance(uris, list)
        clients.append(OidcClient(
            client_id=client_id, redirect_uris=tuple(uris), client_secret=secret,
            post_logout_redirect_uris=tuple(logout), name=item.get("name", ""),
            email=item.get("email"), allowed_groups=tuple(groups),
            id_token_alg=item.get("id_token_signed_response_alg", "RS256"),
        ))
    return tuple(clients), problems
