"""`wxlogin clients`: OpenID Connect clients kept in the database, their secret shown once and
kept hashed; the provider knows them at once, in every process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp.test_utils import TestServer

from tests.conftest import MakeBrowser
from tests.fakewechat import FakeWeChat
from tests.helpers import run_wxlogin
from tests.test_oidc import basic, log_in, query_of

ROOT = Path(__file__).resolve().parent.parent
GITEA = "https://git.example/user/oauth2/wxlogin/callback"


async def wxlogin_clients(pg_url: str, *args: str) -> tuple[int, str, str]:
    return await run_wxlogin(pg_url, "clients", *args)


async def token(site: Any, client_id: str, secret: str, code: str) -> int:
    answer = await site.post("/oidc/token", headers=basic(client_id, secret), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": GITEA})
    status: int = answer.status
    return status


async def test_a_client_added_from_the_command_line_logs_people_in(
    server: TestServer, browser: MakeBrowser, fw: FakeWeChat, pg_url: str,
    db: asyncpg.Connection[asyncpg.Record],
) -> None:
    status, out, err = await wxlogin_clients(pg_url, "add", "Gitea", "--redirect-uri", GITEA)
    assert status == 0, err
    made = json.loads(out)
    client_id, secret = made["client_id"], made["client_secret"]
    assert client_id.startswith("gitea-") and len(secret) >= 40
    stored = await db.fetchrow("SELECT * FROM wxlogin.oidc_clients")
    assert stored is not None and secret.encode() not in repr(dict(stored)).encode()

    desk, phone, site = await browser(server), await browser(server), await browser(server)
    await log_in(desk, phone, fw)

    async def code() -> str:
        answer = await desk.get("/oidc/authorize", allow_redirects=False, params={
            "response_type": "code", "scope": "openid", "client_id": client_id,
            "redirect_uri": GITEA})
        assert answer.status == 302, await answer.text()
        found: str = query_of(answer)["code"]
        return found

    assert await token(site, client_id, secret, await code()) == 200

    status, out, _ = await wxlogin_clients(pg_url, "list")
    listed = json.loads(out)
    assert [c["client_id"] for c in listed] == [client_id] and secret not in out

    status, out, _ = await wxlogin_clients(pg_url, "rotate-secret", client_id)
    rotated = json.loads(out)["client_secret"]
    assert status == 0 and rotated != secret
    assert await token(site, client_id, secret, await code()) == 401
    assert await token(site, client_id, rotated, await code()) == 200

    code_now = await code()
    kept = await site.post("/oidc/token", headers=basic(client_id, rotated), data={
        "grant_type": "authorization_code", "code": code_now, "redirect_uri": GITEA})
    access = (await kept.json())["access_token"]
    status, _, _ = await wxlogin_clients(pg_url, "remove", client_id)
    assert status == 0
    info = await site.get("/oidc/userinfo", headers={"Authorization": f"Bearer {access}"})
    assert info.status == 401  # its tokens went with it
    gone = await desk.get("/oidc/authorize", allow_redirects=False, params={
        "response_type": "code", "scope": "openid", "client_id": client_id,
        "redirect_uri": GITEA})
    assert gone.status == 400 and "Location" not in gone.headers


async def test_a_bad_client_is_refused_with_one_clear_line(pg_url: str) -> None:
    status, _, err = await wxlogin_clients(pg_url, "add", "Site", "--redirect-uri", "/relative")
    assert status == 1 and "absolute http(s) URL" in err and "Traceback" not in err
    status, _, err = await wxlogin_clients(pg_url, "remove", "nobody")
    assert status == 1 and "no client nobody" in err
    status, _, err = await wxlogin_clients(pg_url, "add")
    assert status == 2 and "needs a name" in err
