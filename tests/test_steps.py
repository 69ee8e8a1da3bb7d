"""The phone's steps: one winner, one code per step, claimant-only, identity keys (T2, T7, T24)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from tests.conftest import MakeBrowser, MakeServer
from tests.fakewechat import APPID, FakeWeChat
from tests.helpers import me, new_scene, poll, push, step
from wxlogin.settings import App


async def together(*coroutines: Any) -> list[Any]:
    """Release every request at once from one barrier."""
    gate = asyncio.Event()

    async def run(coroutine: Any) -> Any:
        await gate.wait()
        return await coroutine

    tasks = [asyncio.create_task(run(c)) for c in coroutines]
    await asyncio.sleep(0)
    gate.set()
    return await asyncio.gather(*tasks)


async def test_fifty_concurrent_pushes_one_winner(
    browser: MakeBrowser, fw: FakeWeChat, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    b1, phone = await browser(), await browser()
    scene = await new_scene(b1)
    responses = await together(*(push(phone, scene, fw.mint(f"user-{i}")) for i in range(50)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] + [409] * 49
    losers = {(await r.json())["error"] for r in responses if r.status == 409}
    assert losers <= {"scene_already_confirmed", "scene_already_claimed"}
    assert await db.fetchval("SELECT count(*) FROM wxlogin.users") == 1
    winner = [await r.json() for r in responses if r.status == 200][0]
    status, body = await poll(b1, scene, wait=0)
    assert body["user"] == winner["user"]


async def test_fifty_concurrent_scans_one_claimant(browser: MakeBrowser, fw: FakeWeChat) -> None:
    b1, phone = await browser(), await browser()
    scene = await new_scene(b1)
    codes = [fw.mint(f"user-{i}") for i in range(50)]
    responses = await together(*(step(phone, scene, "scan", code) for code in codes))
    statuses = [r.status for r in responses]
    assert sorted(statuses) == [200] + [409] * 49
    winner = statuses.index(200)
    # Only the claimant may confirm; everyone else is refused without touching the scene.
    loser_openid = f"user-{(winner + 1) % 50}"
    response = await push(phone, scene, fw.mint(loser_openid))
    assert (response.status, (await response.json())["error"]) == (409, "scene_already_claimed")
    _, body = await poll(b1, scene, wait=0)
    assert body["status"] == "scanned"
    response = await push(phone, scene, fw.mint(f"user-{winner}"))
    assert response.status == 200


async def test_scan_context_and_the_browser_sees_scanned(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    b1 = await browser(headers={
        "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/126.0 Safari/537.36"
    })
    phone = await browser()
    scene = await new_scene(b1)
    waiting = asyncio.create_task(poll(b1, scene, wait=10))
    await asyncio.sleep(0.1)
    response = await step(phone, scene, "scan", fw.mint("alice"))
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "scanned"
    assert body["context"]["browser"] == "Chrome" and body["context"]["os"] == "Windows"
    assert body["context"]["site"] == "127.0.0.1"
    assert body["context"]["created_seconds_ago"] == 0
    status, answer = await asyncio.wait_for(waiting, 2)
    assert answer["status"] == "scanned" and "user" not in answer
    assert await me(b1) == 401
    # The next poll, since=scanned, waits for the confirmation.
    waiting = asyncio.create_task(poll(b1, scene, wait=10, since="scanned"))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    assert (await push(phone, scene, fw.mint("alice"))).status == 200
    _, answer = await asyncio.wait_for(waiting, 2)
    assert answer["status"] == "confirmed"


async def test_deny_is_terminal(browser: MakeBrowser, fw: FakeWeChat) -> None:
    b1, phone = await browser(), await browser()
    scene = await new_scene(b1)
    response = await step(phone, scene, "deny", fw.mint("passer-by"))  # nobody scanned yet
    assert (response.status, (await response.json())["error"]) == (409, "scene_not_scanned")
    _, body = await poll(b1, scene, wait=0)
    assert body["status"] == "pending"
    assert (await step(phone, scene, "scan", fw.mint("bob"))).status == 200
    response = await step(phone, scene, "deny", fw.mint("mallory"))
    assert response.status == 409  # only the claimant declines
    response = await step(phone, scene, "deny", fw.mint("bob"))
    assert (response.status, await response.json()) == (200, {"status": "denied"})
    _, body = await poll(b1, scene, wait=0)
    assert body["status"] == "denied"
    response = await push(phone, scene, fw.mint("bob"))
    assert (response.status, (await response.json())["error"]) == (409, "scene_denied")
    response = await b1.get(f"/api/scenes/{scene}/code")
    assert response.status == 410 and response.content_type == "application/json"
    assert await me(b1) == 401


async def test_identical_retry_is_answered_from_the_ledger(
    browser: MakeBrowser, fw: FakeWeChat, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    b1, phone = await browser(), await browser()
    scene = await new_scene(b1)
    code = fw.mint("carol")
    first = await push(phone, scene, code, nickName="Carol")
    again = await push(phone, scene, code, nickName="Carol")
    assert first.status == again.status == 200
    assert await first.json() == await again.json()
    assert fw.code_calls[code] == 1

    # Two identical pushes at once (a double tap): two 200s, one WeChat call.
    scene = await new_scene(b1)
    code = fw.mint("carol")
    responses = await together(push(phone, scene, code), push(phone, scene, code))
    assert [r.status for r in responses] == [200, 200]
    assert fw.code_calls[code] == 1
    assert await db.fetchval("SELECT count(*) FROM wxlogin.users") == 1


async def test_a_code_is_bound_to_its_first_scene_and_step(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    b1, b2, phone = await browser(), await browser(), await browser()
    scene_a, scene_b = await new_scene(b1), await new_scene(b2)
    code = fw.mint("dave")
    assert (await push(phone, scene_a, code)).status == 200

    response = await push(phone, scene_b, code)
    assert (response.status, (await response.json())["error"]) == (400, "code_already_used")
    _, body = await poll(b2, scene_b, wait=0)
    assert body["status"] == "pending"
    assert await me(b2) == 401

    response = await push(phone, scene_a, code, iv="AAAAAAAAAAAAAAAAAAAAAA==",
                          encryptedData="AAAAAAAAAAAAAAAAAAAAAA==")
    assert (response.status, (await response.json())["error"]) == (409, "code_reused")
    response = await step(phone, scene_a, "deny", code)
    assert (response.status, (await response.json())["error"]) == (409, "code_reused")
    assert fw.code_calls[code] == 1

    # A captured scan code cannot confirm: pushCode needs a fresh wx.login.
    scene_c = await new_scene(b1)
    scan_code = fw.mint("erin")
    assert (await step(phone, scene_c, "scan", scan_code)).status == 200
    response = await push(phone, scene_c, scan_code)
    assert response.status == 409
    _, body = await poll(b1, scene_c, wait=0)
    assert body["status"] == "scanned"


async def test_unknown_scenes_cost_no_wechat_call(browser: MakeBrowser, fw: FakeWeChat) -> None:
    phone = await browser()
    bodies = set()
    for i in range(20):
        scene = f"{i:02d}" + "Z" * 22
        for response in (
            await push(phone, scene, fw.mint()),
            await step(phone, scene, "scan", fw.mint()),
            await step(phone, scene, "deny", fw.mint()),
        ):
            assert response.status == 404
            bodies.add(await response.text())
    assert len(bodies) == 1
    assert fw.calls["jscode2session"] == 0


async def test_identity_keys(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat,
    db: asyncpg.Connection[asyncpg.Record],
) -> None:
    fw.apps["wx-standby"] = "standby-secret"
    server = await make_server(apps=(App("wx-standby", "standby-secret"),))
    b1, phone = await browser(server), await browser(server)

    async def login(code: str, **extra: Any) -> dict[str, Any]:
        scene = await new_scene(b1)
        response = await push(phone, scene, code, **extra)
        assert response.status == 200, await response.text()
        user: dict[str, Any] = (await response.json())["user"]
        return user

    same_name_1 = await login(fw.mint("openid-x"), nickName="Sam")
    same_name_2 = await login(fw.mint("openid-y"), nickName="Sam")
    assert same_name_1["id"] != same_name_2["id"]

    primary = await login(fw.mint("openid-p", "union-1"))
    standby = await login(fw.mint("openid-s", "union-1", appid="wx-standby"), appid="wx-standby")
    assert primary["id"] == standby["id"]

    before = await login(fw.mint("openid-late"), nickName="Late")
    after = await login(fw.mint("openid-late", "union-late"))
    assert before["id"] == after["id"] and after["nickname"] == "Late"
    assert await db.fetchval(
        "SELECT unionid FROM wxlogin.users WHERE id = $1", int(after["id"])
    ) == "union-late"

    # A code of the standby app exchanged as the primary's is refused by WeChat.
    response = await push(phone, await new_scene(b1), fw.mint("openid-s", appid="wx-standby"))
    assert (response.status, (await response.json())["error"]) == (400, "code_rejected")
    response = await push(phone, await new_scene(b1), fw.mint(), appid="wx-unknown")
    assert (response.status, (await response.json())["error"]) == (400, "bad_request")


async def test_placeholder_profile_is_no_profile(browser: MakeBrowser, fw: FakeWeChat) -> None:
    b1, phone = await browser(), await browser()
    response = await push(phone, await new_scene(b1), fw.mint("frank"), nickName="Frank",
                          avatarUrl="https://thirdwx.qlogo.cn/a.png")
    assert (await response.json())["user"]["avatar_url"] == "https://thirdwx.qlogo.cn/a.png"
    response = await push(phone, await new_scene(b1), fw.mint("frank"), nickName="微信用户",
                          avatarUrl="wxfile://tmp_123.png")
    user = (await response.json())["user"]
    assert user["nickname"] == "Frank" and user["avatar_url"] == "https://thirdwx.qlogo.cn/a.png"


async def test_profile_is_returned_same_shape_for_new_and_known_users(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    b1, phone = await browser(), await browser()
    first = await (await push(phone, await new_scene(b1), fw.mint("gina"))).json()
    second = await (await push(phone, await new_scene(b1), fw.mint("gina"))).json()
    assert first.keys() == second.keys() and first["user"].keys() == second["user"].keys()
    assert APPID not in str(first) and "gina" not in str(first)


async def test_the_drawing_app_can_be_switched_without_losing_users(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    fw.apps["wx-standby"] = "standby-secret"
    standby = (App("wx-standby", "standby-secret"),)
    before = await make_server(apps=standby)
    b1, phone = await browser(before), await browser(before)
    scene = await new_scene(b1)
    await b1.get(f"/api/scenes/{scene}/code")
    first = await (await push(phone, scene, fw.mint("p-openid", "union-x"))).json()

    after = await make_server(apps=standby, draw_appid="wx-standby")  # the primary is suspended
    b2, phone2 = await browser(after), await browser(after)
    scene = await new_scene(b2)
    await b2.get(f"/api/scenes/{scene}/code")
    second = await push(phone2, scene, fw.mint("s-openid", "union-x", appid="wx-standby"),
                        appid="wx-standby")
    assert second.status == 200
    assert (await second.json())["user"]["id"] == first["user"]["id"]
    assert len(fw.drawn) == 2  # one code per scene, the second drawn with the standby's token
    assert set(fw.tokens) == {APPID, "wx-standby"}
