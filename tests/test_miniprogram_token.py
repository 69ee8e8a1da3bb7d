"""The mini program's own login (`POST /api/miniprogram/token`): a fresh wx.login code for a JWT
the site's own API verifies through the JWKS; the same user as the browser logins."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import jwt as pyjwt
import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import MakeBrowser, MakeServer
from tests.fakewechat import APPID, FakeWeChat
from tests.helpers import new_scene, poll, push
from wxlogin.clock import FakeClock

ROOT = Path(__file__).resolve().parent.parent
RP = ROOT / "tests" / "rp"

ISSUER = "http://127.0.0.1:8080"


async def test_a_token_for_the_same_person_as_the_browser_login(
    server: TestServer, browser: MakeBrowser, fw: FakeWeChat,
    db: asyncpg.Connection[asyncpg.Record],
) -> None:
    desk, phone = await browser(server), await browser(server)
    scene = await new_scene(desk)
    pushed = await push(phone, scene, fw.mint("o-web", "u-ada"), nickName="Ada")
    browser_user = (await pushed.json())["user"]
    assert (await poll(desk, scene))[1]["status"] == "confirmed"

    # The same person, in the mini program, on another day (another openid is impossible for
    # one app; the unionid is what joins them across apps).
    answer = await phone.post("/api/miniprogram/token", json={"code": fw.mint("o-web", "u-ada")})
    assert answer.status == 200, await answer.text()
    body: dict[str, Any] = await answer.json()
    assert body["token_type"] == "Bearer" and body["user"] == browser_user
    jwks = await (await phone.get("/oidc/jwks")).json(content_type=None)
    header = pyjwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "at+jwt"
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = pyjwt.decode(body["access_token"], pyjwt.PyJWK(key).key, algorithms=["RS256"],
                          audience=APPID, issuer=ISSUER, options={"verify_exp": False})
    sub = await db.fetchval("SELECT oidc_sub FROM wxlogin.users WHERE id = $1",
                            int(browser_user["id"]))
    assert claims["sub"] == sub and claims["exp"] - claims["iat"] == body["expires_in"]


async def test_a_refused_code_or_a_disabled_user_gets_no_token(
    server: TestServer, browser: MakeBrowser, fw: FakeWeChat,
    db: asyncpg.Connection[asyncpg.Record],
) -> None:
    phone = await browser(server)
    bad = await phone.post("/api/miniprogram/token", json={"code": "never-minted"})
    assert bad.status == 400 and (await bad.json())["error"] == "code_rejected"
    first = await phone.post("/api/miniprogram/token", json={"code": fw.mint("o-eve")})
    assert first.status == 200
    await db.execute("UPDATE wxlogin.users SET status = 'disabled'")
    refused = await phone.post("/api/miniprogram/token", json={"code": fw.mint("o-eve")})
    assert refused.status == 403 and (await refused.json())["error"] == "user_disabled"


def example(language: str) -> str:
    """A verification example from docs/api.md, as a site owner would copy it."""
    text = (ROOT / "docs" / "api.md").read_text()
    found = re.search(rf"<!-- example: {language} -->\n```\w+\n(.*?)```", text, re.S)
    assert found is not None, language
    return found.group(1)


@pytest.fixture
def clock() -> FakeClock:
    """Real time: the documented checks look at `exp` with the machine's clock."""
    return FakeClock(datetime.now(UTC))


async def test_the_documented_checks_accept_the_token(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, tmp_path: Path
) -> None:
    server = await make_server(listen=True)
    issuer = str(server.make_url("")).rstrip("/")
    phone = await browser(server)
    answer = await phone.post("/api/miniprogram/token", json={"code": fw.mint("o-doc")})
    body = await answer.json()
    sub = pyjwt.decode(body["access_token"], options={"verify_signature": False})["sub"]

    def ours(code: str) -> str:
        return code.replace("https://login.example.com", issuer).replace(
            "wx1234567890abcdef", APPID)

    namespace: dict[str, Any] = {}
    exec(ours(example("python")), namespace)  # noqa: S102 - the documentation's own example
    user_of = namespace["user_of"]
    assert await asyncio.to_thread(user_of, f"Bearer {body['access_token']}") == sub
    head, payload, signature = body["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "sub": "someone-else"}).encode())
    with pytest.raises(pyjwt.InvalidSignatureError):  # a token changed on the way
        await asyncio.to_thread(
            user_of, f"Bearer {head}.{forged.decode().rstrip('=')}.{signature}")

    script = RP / f".example-{secrets.token_hex(4)}.mjs"  # beside tests/rp's node_modules
    script.write_text(ours(example("node")) + (
        "\nconsole.log(await userOf(process.argv[2]));\n"
    ))
    try:
        node = await asyncio.create_subprocess_exec(
            "node", str(script), f"Bearer {body['access_token']}", cwd=RP,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(node.communicate(), 60)
    finally:
        script.unlink()
    assert node.returncode == 0, err.decode()
    assert out.decode().strip() == sub
