"""`wxlogin users`: the owner lists, shows, disables (ending sessions at once) and enables."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestServer

from tests.conftest import MakeBrowser
from tests.fakewechat import FakeWeChat
from tests.helpers import me, new_scene, poll, push, run_wxlogin

ROOT = Path(__file__).resolve().parent.parent


async def wxlogin(pg_url: str, *args: str) -> tuple[int, str, str]:
    return await run_wxlogin(pg_url, "users", *args)


async def test_disabling_a_user_ends_their_sessions_at_once(
    server: TestServer, browser: MakeBrowser, fw: FakeWeChat, pg_url: str
) -> None:
    b1 = await browser()
    scene = await new_scene(b1)
    response = await push(await browser(), scene, fw.mint("owner-openid", "owner-union"),
                          nickName="Nora")
    user_id = (await response.json())["user"]["id"]
    await poll(b1, scene, wait=0)
    assert await me(b1) == 200
    assert (await b1.get("/api/auth")).status == 200

    code, out, _ = await wxlogin(pg_url, "list")
    assert code == 0 and "Nora" in out and "active" in out
    code, out, _ = await wxlogin(pg_url, "show", user_id)
    assert code == 0 and "owner-openid" in out and "sessions:   1" in out

    code, out, _ = await wxlogin(pg_url, "disable", user_id)
    assert code == 0 and "1 session(s) ended" in out
    assert await me(b1) == 401 and (await b1.get("/api/auth")).status == 401

    scene = await new_scene(b1)  # and they cannot log in again: the phone and browser are told
    again = await push(await browser(), scene, fw.mint("owner-openid", "owner-union"))
    assert again.status == 403 and (await again.json())["error"] == "user_disabled"
    status, body = await poll(b1, scene, wait=0)
    assert status == 200 and body["status"] == "denied" and body["reason"] == "user_disabled"
    assert await me(b1) == 401

    code, out, _ = await wxlogin(pg_url, "enable", user_id)
    assert code == 0 and "enabled" in out
    scene = await new_scene(b1)
    await push(await browser(), scene, fw.mint("owner-openid", "owner-union"))
    await poll(b1, scene, wait=0)
    assert await me(b1) == 200


async def test_unknown_users_and_missing_ids_are_clear(pg_url: str) -> None:
    code, _, err = await wxlogin(pg_url, "show", "999999")
    assert code == 1 and "no user 999999" in err
    code, _, err = await wxlogin(pg_url, "disable")
    assert code == 2 and "needs a user id" in err
