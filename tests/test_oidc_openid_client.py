"""An independent, strict relying party against the provider: panva's openid-client (npm,
OpenID-certified) does discovery, PKCE + nonce + state, the code grant (checking the ID token's
signature through the JWKS, `iss`, `aud`, `exp`, `iat`, `nonce`, and the `iss` response
parameter), userinfo, refresh, refuses a spent refresh token, and builds the logout URL. A
browser logs in through the scan in between, and logs out through that URL. ./scripts/test
installs the npm package (tests/rp/package-lock.json)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MakeBrowser, MakeServer
from tests.fakewechat import FakeWeChat
from tests.test_oidc import log_in
from wxlogin.clients import OidcClient
from wxlogin.clock import FakeClock

RP = Path(__file__).parent / "rp"
REDIRECT = "https://rp.example/cb"
AFTER_LOGOUT = "https://rp.example/bye"
SECRET = "openid-client-secret-0123456789"


@pytest.fixture
def clock() -> FakeClock:
    """Real time: the relying party checks `iat` and `exp` against its own clock."""
    return FakeClock(datetime.now(UTC))


async def node(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "node", str(RP / "openid-client.mjs"), *args, cwd=RP,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode().strip()


async def test_openid_client_logs_in_through_the_scan(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, tmp_path: Path
) -> None:
    server = await make_server(listen=True, oidc_clients=(
        OidcClient("openid-client", (REDIRECT,), SECRET,
                   post_logout_redirect_uris=(AFTER_LOGOUT,)),
    ))
    issuer = str(server.make_url("")).rstrip("/")
    state = tmp_path / "rp.json"
    state.write_text(json.dumps({"issuer": issuer, "client_id": "openid-client",
                                 "client_secret": SECRET, "redirect_uri": REDIRECT,
                                 "post_logout_redirect_uri": AFTER_LOGOUT}))
    url = await node("start", str(state))
    assert url.startswith(f"{issuer}/oidc/authorize?")

    desk, phone = await browser(server), await browser(server)
    url = url.removeprefix(issuer)  # the test client takes paths
    first = await desk.get(url, allow_redirects=False)
    assert first.status == 303  # not logged in: to the hosted page first
    await log_in(desk, phone, fw, "grace")
    back = await desk.get(url, allow_redirects=False)
    assert back.status == 302
    callback = back.headers["Location"]
    assert callback.startswith(REDIRECT + "?")

    result: dict[str, Any] = json.loads(await node("finish", str(state), callback))
    claims = result["claims"]
    assert claims["iss"] == issuer and claims["aud"] == "openid-client"
    assert claims["name"] == "Ada" and claims["preferred_username"].startswith("wx_")
    assert result["userinfo"]["sub"] == claims["sub"]
    assert result["refreshed"]["sub"] == claims["sub"]
    assert result["token_type"].lower() == "bearer"
    assert "offline_access" in result["scope"]
    assert result["reuse"] == "invalid_grant"

    # RP-initiated logout, through the URL the relying party builds from discovery.
    logout = result["logout"]
    assert logout.startswith(f"{issuer}/oidc/logout?")
    left = await desk.get(logout.removeprefix(issuer), allow_redirects=False)
    assert left.status == 302 and left.headers["Location"] == f"{AFTER_LOGOUT}?state=bye"
    assert (await desk.get("/api/me")).status == 401
