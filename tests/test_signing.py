"""The OpenID Connect signing keys: made once in PostgreSQL for every process, published in the
JWKS before they sign, rotated on the owner's word, and kept published while their tokens live."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import jwt as pyjwt
import pytest
from aiohttp.test_utils import TestServer
from joserfc import jwt as jose_jwt

from tests.conftest import MakeBrowser
from wxlogin.clock import FakeClock
from wxlogin.storage import signing
from wxlogin.storage.sweeper import sweep_once

ROOT = Path(__file__).resolve().parent.parent


async def fetch_jwks(browser: MakeBrowser, server: TestServer) -> dict[str, Any]:
    client = await browser(server)
    response = await client.get("/oidc/jwks")
    assert response.status == 200
    assert response.content_type == "application/jwk-set+json"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    body: dict[str, Any] = await response.json(content_type=None)
    return body


def signed_by(key: signing.SigningKey) -> str:
    header = {"alg": key.alg, "kid": key.kid}
    return jose_jwt.encode(header, {"iss": "https://login.example", "sub": "s"}, key.imported())


def verify(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """As a relying party does it, with another library: the key by the token's `kid`."""
    kid = pyjwt.get_unverified_header(token)["kid"]
    jwk = next(jwk for jwk in jwks["keys"] if jwk["kid"] == kid)
    key = pyjwt.PyJWK(jwk)
    claims: dict[str, Any] = pyjwt.decode(token, key.key, algorithms=[jwk["alg"]])
    return claims


async def keys_in(db: asyncpg.Connection[asyncpg.Record]) -> list[tuple[str, str]]:
    return [(key.alg, key.state) for key in await signing.every_key(db)]


async def test_processes_asking_together_make_one_current_and_one_next_key_per_algorithm(
    pg_url: str, clock: FakeClock, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    conns = [await asyncpg.connect(pg_url) for _ in range(6)]
    try:
        await asyncio.gather(*(signing.ensure(conn, clock.now()) for conn in conns))
    finally:
        for conn in conns:
            await conn.close()
    assert sorted(await keys_in(db)) == [
        ("ES256", "current"), ("ES256", "next"), ("RS256", "current"), ("RS256", "next")
    ]


async def test_the_jwks_publishes_current_and_next_keys_which_verify_elsewhere(
    server: TestServer, browser: MakeBrowser, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    jwks = await fetch_jwks(browser, server)  # the first need makes them
    assert sorted((jwk["alg"], jwk["kty"]) for jwk in jwks["keys"]) == [
        ("ES256", "EC"), ("ES256", "EC"), ("RS256", "RSA"), ("RS256", "RSA")
    ]
    assert all(jwk["use"] == "sig" and "d" not in jwk for jwk in jwks["keys"])  # public only
    for alg in signing.ALGORITHMS:
        current = await signing.current(db, alg)
        assert current is not None
        assert verify(signed_by(current), jwks)["sub"] == "s"
    # Asked again, the same keys: nothing is made twice.
    assert await fetch_jwks(browser, server) == jwks


async def test_rotation_publishes_before_signing_and_keeps_the_old_key_while_it_matters(
    server: TestServer, browser: MakeBrowser, clock: FakeClock,
    db: asyncpg.Connection[asyncpg.Record],
) -> None:
    await fetch_jwks(browser, server)
    old = await signing.current(db, "RS256")
    assert old is not None
    token = signed_by(old)
    before = await keys_in(db)

    # The next key was published a moment ago: relying parties may not have it yet.
    with pytest.raises(signing.TooSoon) as soon:
        await signing.rotate(db, clock.now())
    assert soon.value.ready_at == old.created_at + signing.PUBLISHED_BEFORE_SIGNING
    assert await keys_in(db) == before  # nothing changed

    clock.advance(3600)
    promoted = await signing.rotate(db, clock.now())
    assert {key.alg for key in promoted} == set(signing.ALGORITHMS)
    new = await signing.current(db, "RS256")
    assert new is not None and new.kid != old.kid
    jwks = await fetch_jwks(browser, server)
    assert len(jwks["keys"]) == 6  # retired, current and a new next, per algorithm
    assert verify(token, jwks)["sub"] == "s"  # a token the old key signed still checks out
    assert verify(signed_by(new), jwks)["sub"] == "s"

    clock.advance(signing.RETIRED_KEPT.total_seconds() - 60)
    assert (await sweep_once(db, clock.now()))["signing_keys"] == 0
    clock.advance(120)
    assert (await sweep_once(db, clock.now()))["signing_keys"] == 2
    jwks = await fetch_jwks(browser, server)
    assert old.kid not in {jwk["kid"] for jwk in jwks["keys"]} and len(jwks["keys"]) == 4


def wxlogin_keys(pg_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "wxlogin", "keys", *args], cwd=ROOT, capture_output=True,
        text=True, env={**os.environ, "WXLOGIN_DATABASE_URL": pg_url}, timeout=60, check=False,
    )


async def test_the_owner_lists_and_rotates_keys_from_the_command_line(
    pg_url: str, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    listed = await asyncio.to_thread(wxlogin_keys, pg_url, "list")
    assert listed.returncode == 0, listed.stderr
    assert sorted(line.split()[:2] for line in listed.stdout.splitlines()) == [
        ["ES256", "current"], ["ES256", "next"], ["RS256", "current"], ["RS256", "next"]
    ]
    refused = await asyncio.to_thread(wxlogin_keys, pg_url, "rotate")
    assert refused.returncode == 1 and "published too recently" in refused.stderr
    assert "Traceback" not in refused.stderr
    nexts = {key.kid for key in await signing.every_key(db) if key.state == "next"}
    forced = await asyncio.to_thread(wxlogin_keys, pg_url, "rotate", "--force")
    assert forced.returncode == 0, forced.stderr
    assert {line.split()[-1] for line in forced.stdout.splitlines()
            if line.startswith("now signing with")} == nexts
    states = sorted(state for _, state in await keys_in(db))
    assert states == ["current", "current", "next", "next", "retired", "retired"]
