"""WeChat misbehaving, seen from outside (WECHAT.md §0-3 and §7, SECURITY.md R9-R15).

Every fault the stand-in can produce maps to the contract's answer: busy is 503 with Retry-After,
unreachable or slow is 504 within 15 s, anything else unexpected is 502, a refused code is 400.
A failed draw is never served as an image nor kept; a scene costs one successful draw however
often it is fetched; the access token is refreshed once per incident, never with force_refresh,
and shared through PostgreSQL; a login code is sent to WeChat once, and a scene that cannot take
the step costs no WeChat call at all.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from aiohttp import ClientResponse

from tests.conftest import Browser, MakeBrowser, MakeServer
from tests.fakewechat import FakeWeChat, Fault
from tests.helpers import new_scene, poll, push
from wxlogin.clock import FakeClock
from wxlogin.settings import Settings

PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff"
DRAW = "getwxacodeunlimit"
SESSION = "jscode2session"
UNKNOWN_SCENE = "Zz9" * 8  # valid syntax, never created


# --- helpers -------------------------------------------------------------------------------------


async def error_of(response: ClientResponse) -> dict[str, Any]:
    """The contract's error: JSON {"error", "message"}; never an image, never WeChat's errmsg."""
    raw = await response.read()
    assert response.content_type == "application/json", (response.content_type, raw[:40])
    assert not raw.startswith(PNG) and not raw.startswith(JPEG)
    body = json.loads(raw)
    assert isinstance(body, dict) and set(body) == {"error", "message"}, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["message"], str) and body["message"]
    assert "fake error" not in body["message"] and "rid:" not in body["message"], body
    return body


def retry_after(response: ClientResponse) -> int:
    value = response.headers.get("Retry-After")
    assert value is not None, "a 503 must carry Retry-After"
    assert value.isdigit(), value
    seconds = int(value)
    assert seconds >= 1
    return seconds


async def owner_with_scene(browser: MakeBrowser) -> tuple[Browser, str]:
    owner = await browser()
    return owner, await new_scene(owner)


async def fetch_code(owner: Browser, scene: str) -> ClientResponse:
    response: ClientResponse = await owner.get(f"/api/scenes/{scene}/code")
    return response


async def assert_image(response: ClientResponse, fw: FakeWeChat) -> None:
    assert response.status == 200, await response.text()
    assert response.content_type == "image/png"
    assert await response.read() == fw.image


async def assert_status(owner: Browser, scene: str, expected: str) -> None:
    status, body = await poll(owner, scene, wait=0, since="expired")
    assert status == 200, body
    assert body["status"] == expected, body


# --- drawing the code ----------------------------------------------------------------------------


@pytest.mark.parametrize("errcode", [-1, 45009])
async def test_busy_draw_is_503_with_retry_after_and_not_kept(
    browser: MakeBrowser, fw: FakeWeChat, errcode: int
) -> None:
    owner, scene = await owner_with_scene(browser)
    fw.fail(DRAW, Fault(errcode=errcode))

    response = await fetch_code(owner, scene)
    assert response.status == 503
    retry_after(response)
    await error_of(response)
    assert fw.calls[DRAW] == 1

    # The failure was not kept: the next fetch draws again, and that success is kept.
    await assert_image(await fetch_code(owner, scene), fw)
    assert fw.calls[DRAW] == 2
    await assert_image(await fetch_code(owner, scene), fw)
    assert fw.calls[DRAW] == 2


async def test_frequency_limit_asks_for_a_longer_wait_than_busy(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    owner, scene = await owner_with_scene(browser)
    fw.fail(DRAW, Fault(errcode=-1), Fault(errcode=45009))
    busy = await fetch_code(owner, scene)
    limited = await fetch_code(owner, scene)
    assert (busy.status, limited.status) == (503, 503)
    assert retry_after(limited) > retry_after(busy)


async def test_unpublished_page_41030_is_502_telling_the_operator_what_to_set(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    owner, scene = await owner_with_scene(browser)
    fw.fail(DRAW, Fault(errcode=41030))
    response = await fetch_code(owner, scene)
    assert response.status == 502
    body = await error_of(response)
    assert "WXLOGIN_ENV_VERSION" in body["message"], body
    assert "publish" in body["message"].lower(), body
    await assert_image(await fetch_code(owner, scene), fw)
    assert fw.calls[DRAW] == 2


@pytest.mark.parametrize(
    ("errcode", "status"),
    [
        (-1, 503),
        (45009, 503),
        (41030, 502),
        (40129, 502),
        (40169, 502),
        (40097, 502),
        (85096, 502),
        (45063, 502),
        (47001, 502),
        (48001, 502),
        (99999, 502),
    ],
)
async def test_json_error_with_http_200_is_never_served_as_an_image(
    browser: MakeBrowser, fw: FakeWeChat, errcode: int, status: int
) -> None:
    owner, scene = await owner_with_scene(browser)
    fw.fail(DRAW, Fault(errcode=errcode))
    response = await fetch_code(owner, scene)
    assert response.status == status
    await error_of(response)
    if status == 503:
        retry_after(response)
    assert fw.calls[DRAW] == 1

    await assert_image(await fetch_code(owner, scene), fw)
    assert fw.calls[DRAW] == 2


@pytest.mark.parametrize(
    "fault",
    [
        Fault(body=b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00;"),
        Fault(body=b"<html><body>502 Bad Gateway</body></html>"),
        Fault(body=b""),
        Fault(body=b"[1, 2, 3]"),
        Fault(body=b"{not json at all"),
        Fault(body=b'{"errcode": "busy", "errmsg": "fake error rid: 1"}'),
        Fault(body=b'{"ok": true}'),
        Fault(body=PNG[:4]),
        Fault(body=JPEG[:2]),
        Fault(body=b"\x00\x00\x00\x0cjP  \r\n\x87\n"),
        Fault(http_status=500),
    ],
    ids=["gif", "html", "empty", "json-array", "broken-json", "odd-errcode", "json-no-errcode",
         "truncated-png", "truncated-jpeg", "jpeg2000", "http-500"],
)
async def test_draw_answer_neither_png_nor_jpeg_nor_json_error_is_502_and_not_kept(
    browser: MakeBrowser, fw: FakeWeChat, fault: Fault
) -> None:
    owner, scene = await owner_with_scene(browser)
    fw.fail(DRAW, fault)
    response = await fetch_code(owner, scene)
    assert response.status == 502
    await error_of(response)
    await assert_image(await fetch_code(owner, scene), fw)
    assert fw.calls[DRAW] == 2


async def test_json_error_after_blank_space_is_still_an_error(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    owner, scene = await owner_with_scene(browser)
    fw.fail(DRAW, Fault(body=b' \r\n\t{"errcode": 45009, "errmsg": "fake error rid: 9"}'))
    response = await fetch_code(owner, scene)
    assert response.status == 503
    retry_after(response)
    await error_of(response)


async def test_jpeg_is_served_as_jpeg_with_its_bytes_unchanged(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    fw.image = JPEG + b"\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4 + b"\xff\xd9"
    owner, scene = await owner_with_scene(browser)
    response = await fetch_code(owner, scene)
    assert response.status == 200
    assert response.content_type == "image/jpeg"
    assert await response.read() == fw.image


async def test_draw_dropped_connection_is_504_and_not_kept(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    owner, scene = await owner_with_scene(browser)
    fw.fail(DRAW, Fault(drop=True))
    response = await fetch_code(owner, scene)
    assert response.status == 504
    await error_of(response)
    assert fw.calls[DRAW] == 1
    await assert_image(await fetch_code(owner, scene), fw)
    assert fw.calls[DRAW] == 2


async def test_draw_hang_is_504_within_15_seconds_and_not_kept(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    owner, scene = await owner_with_scene(browser)
    fw.fail(DRAW, Fault(delay=20))
    started = time.monotonic()
    response = await fetch_code(owner, scene)
    elapsed = time.monotonic() - started
    assert response.status == 504
    await error_of(response)
    assert elapsed < 15, elapsed
    await assert_image(await fetch_code(owner, scene), fw)
    assert fw.calls[DRAW] == 2


async def test_100_concurrent_fetches_share_one_draw(browser: MakeBrowser, fw: FakeWeChat) -> None:
    owner, scene = await owner_with_scene(browser)
    fw.fail(DRAW, Fault(delay=0.5))  # slow enough that every fetch arrives during the draw
    go = asyncio.Event()

    async def fetch() -> tuple[int, str, bytes]:
        await go.wait()
        response = await fetch_code(owner, scene)
        return response.status, response.content_type, await response.read()

    tasks = [asyncio.create_task(fetch()) for _ in range(100)]
    await asyncio.sleep(0)
    go.set()
    answers = await asyncio.gather(*tasks)
    assert {answer[:2] for answer in answers} == {(200, "image/png")}
    assert {answer[2] for answer in answers} == {fw.image}
    assert fw.calls[DRAW] == 1
    assert fw.calls["stable_token"] == 1

    await assert_image(await fetch_code(owner, scene), fw)
    assert fw.calls[DRAW] == 1


async def test_concurrent_fetches_share_one_failed_draw_then_retry(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    owner, scene = await owner_with_scene(browser)
    fw.fail(DRAW, Fault(delay=0.5, errcode=-1))
    go = asyncio.Event()

    async def fetch() -> tuple[int, bytes]:
        await go.wait()
        response = await fetch_code(owner, scene)
        return response.status, await response.read()

    tasks = [asyncio.create_task(fetch()) for _ in range(20)]
    await asyncio.sleep(0)
    go.set()
    answers = await asyncio.gather(*tasks)
    assert {status for status, _ in answers} == {503}
    assert not any(body.startswith(PNG) for _, body in answers)
    assert fw.calls[DRAW] == 1
    await assert_image(await fetch_code(owner, scene), fw)
    assert fw.calls[DRAW] == 2


async def test_another_browser_cannot_make_the_code_be_drawn(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    _owner, scene = await owner_with_scene(browser)
    stranger = await browser()
    response = await fetch_code(stranger, scene)
    assert response.status in (403, 404)
    await error_of(response)
    assert fw.calls[DRAW] == 0


# --- the access token ----------------------------------------------------------------------------


async def test_revoked_token_is_refreshed_once_and_the_draw_retried(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    owner, first = await owner_with_scene(browser)
    await assert_image(await fetch_code(owner, first), fw)
    assert (fw.calls["stable_token"], fw.calls[DRAW]) == (1, 1)

    fw.revoke_tokens()
    owner, second = await owner_with_scene(browser)  # (a browser's live scene is reused)
    await assert_image(await fetch_code(owner, second), fw)
    assert fw.calls["stable_token"] == 2  # one refresh
    assert fw.calls[DRAW] == 3  # the rejected draw and its one retry
    assert fw.calls["force_refresh"] == 0

    owner, third = await owner_with_scene(browser)
    await assert_image(await fetch_code(owner, third), fw)
    assert (fw.calls["stable_token"], fw.calls[DRAW]) == (2, 4)
    assert fw.calls["force_refresh"] == 0


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
async def test_one_token_error_is_refreshed_and_retried(
    browser: MakeBrowser, fw: FakeWeChat, errcode: int
) -> None:
    owner, scene = await owner_with_scene(browser)
    fw.fail(DRAW, Fault(errcode=errcode))
    await assert_image(await fetch_code(owner, scene), fw)
    assert fw.calls["stable_token"] == 2
    assert fw.calls[DRAW] == 2
    assert fw.calls["force_refresh"] == 0


async def test_token_rejected_twice_in_a_row_is_502(browser: MakeBrowser, fw: FakeWeChat) -> None:
    owner, scene = await owner_with_scene(browser)
    fw.fail(DRAW, Fault(errcode=40001), Fault(errcode=40001))
    response = await fetch_code(owner, scene)
    assert response.status == 502
    await error_of(response)
    assert fw.calls[DRAW] == 2  # one retry, no loop
    assert fw.calls["stable_token"] == 2  # one refresh
    assert fw.calls["force_refresh"] == 0

    await assert_image(await fetch_code(owner, scene), fw)  # not kept
    assert fw.calls[DRAW] == 3
    assert fw.calls["stable_token"] == 2
    assert fw.calls["force_refresh"] == 0


async def test_cold_start_concurrent_draws_fetch_the_token_once(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    owners = [await browser() for _ in range(20)]
    scenes = [await new_scene(owner) for owner in owners]
    fw.fail("stable_token", Fault(delay=0.3))  # every draw waits on the first token
    go = asyncio.Event()

    async def fetch(owner: Browser, scene: str) -> tuple[int, bytes]:
        await go.wait()
        response = await fetch_code(owner, scene)
        return response.status, await response.read()

    tasks = [asyncio.create_task(fetch(o, s)) for o, s in zip(owners, scenes, strict=True)]
    await asyncio.sleep(0)
    go.set()
    answers = await asyncio.gather(*tasks)
    assert answers == [(200, fw.image)] * len(scenes)
    assert fw.calls["stable_token"] == 1
    assert fw.calls["token"] == 0
    assert fw.calls["force_refresh"] == 0
    assert fw.calls[DRAW] == len(scenes)


async def test_cold_start_on_two_servers_fetches_the_token_once(
    browser: MakeBrowser, make_server: MakeServer, fw: FakeWeChat
) -> None:
    other = await make_server()
    owners = [await browser(target) for target in (None, other) for _ in range(10)]
    work = [(owner, await new_scene(owner)) for owner in owners]
    fw.fail("stable_token", Fault(delay=0.3))
    go = asyncio.Event()

    async def fetch(owner: Browser, scene: str) -> tuple[int, bytes]:
        await go.wait()
        response = await fetch_code(owner, scene)
        return response.status, await response.read()

    tasks = [asyncio.create_task(fetch(owner, scene)) for owner, scene in work]
    await asyncio.sleep(0)
    go.set()
    answers = await asyncio.gather(*tasks)
    assert answers == [(200, fw.image)] * len(work)
    assert fw.calls["stable_token"] == 1
    assert fw.calls["force_refresh"] == 0
    assert fw.calls[DRAW] == len(work)


async def test_missing_stable_token_falls_back_to_cgi_bin_token(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    fw.has_stable_token = False
    owner, scene = await owner_with_scene(browser)
    await assert_image(await fetch_code(owner, scene), fw)
    assert fw.calls["token"] == 1
    assert fw.calls["stable_token"] == 0  # the stand-in answers 404 before counting

    owner, second = await owner_with_scene(browser)
    await assert_image(await fetch_code(owner, second), fw)
    assert fw.calls["token"] == 1  # cached, not minted per draw
    assert fw.calls[DRAW] == 2


async def test_token_is_shared_through_postgresql(
    browser: MakeBrowser, make_server: MakeServer, fw: FakeWeChat
) -> None:
    owner, scene = await owner_with_scene(browser)
    await assert_image(await fetch_code(owner, scene), fw)
    assert fw.calls["stable_token"] == 1

    other = await make_server()
    owner2 = await browser(other)
    scene2 = await new_scene(owner2)
    await assert_image(await fetch_code(owner2, scene2), fw)
    assert fw.calls["stable_token"] == 1
    assert fw.calls["token"] == 0
    assert fw.calls[DRAW] == 2


async def test_token_refreshed_by_one_server_is_used_by_the_other(
    browser: MakeBrowser, make_server: MakeServer, fw: FakeWeChat
) -> None:
    other = await make_server()
    owner, owner2 = await browser(), await browser(other)
    await assert_image(await fetch_code(owner, await new_scene(owner)), fw)
    await assert_image(await fetch_code(owner2, await new_scene(owner2)), fw)
    assert fw.calls["stable_token"] == 1

    fw.revoke_tokens()
    owner, owner2 = await browser(), await browser(other)
    await assert_image(await fetch_code(owner, await new_scene(owner)), fw)
    assert fw.calls["stable_token"] == 2
    # The other process's cached token is dead too; it refreshes from the shared row, and
    # WeChat is not asked again.
    await assert_image(await fetch_code(owner2, await new_scene(owner2)), fw)
    assert fw.calls["stable_token"] == 2
    assert fw.calls["force_refresh"] == 0


# --- pushCode and jscode2session -----------------------------------------------------------------


@pytest.mark.parametrize(("errcode", "wait"), [(-1, None), (45009, None), (45011, 60)])
async def test_busy_push_is_503_and_its_identical_retry_does_not_ask_again(
    browser: MakeBrowser, fw: FakeWeChat, errcode: int, wait: int | None
) -> None:
    owner, scene = await owner_with_scene(browser)
    phone = await browser()
    code = fw.mint()
    fw.fail(SESSION, Fault(errcode=errcode))

    response = await push(phone, scene, code)
    assert response.status == 503
    seconds = retry_after(response)
    if wait is not None:
        assert seconds == wait
    body = await error_of(response)
    assert fw.code_calls[code] == 1
    await assert_status(owner, scene, "pending")

    again = await push(phone, scene, code)
    assert again.status == 503
    assert again.headers.get("Retry-After") == response.headers.get("Retry-After")
    assert await error_of(again) == body
    assert fw.code_calls[code] == 1  # the code, perhaps spent, is never re-sent
    assert fw.calls[SESSION] == 1
    await assert_status(owner, scene, "pending")

    fresh = await push(phone, scene, fw.mint())
    assert fresh.status == 200, await fresh.text()
    await assert_status(owner, scene, "confirmed")


@pytest.mark.parametrize("errcode", [40029, 40163, 40226])
async def test_refused_code_is_400_and_the_scene_stays_pending(
    browser: MakeBrowser, fw: FakeWeChat, errcode: int
) -> None:
    owner, scene = await owner_with_scene(browser)
    phone = await browser()
    code = fw.mint()
    fw.fail(SESSION, Fault(errcode=errcode))

    response = await push(phone, scene, code)
    assert response.status == 400
    body = await error_of(response)
    assert body["error"] == "code_rejected"
    assert fw.code_calls[code] == 1
    await assert_status(owner, scene, "pending")

    fresh = await push(phone, scene, fw.mint())
    assert fresh.status == 200, await fresh.text()
    await assert_status(owner, scene, "confirmed")


async def test_code_wechat_never_issued_is_400(browser: MakeBrowser, fw: FakeWeChat) -> None:
    owner, scene = await owner_with_scene(browser)
    phone = await browser()
    response = await push(phone, scene, "not-a-code-wechat-issued")
    assert response.status == 400
    assert (await error_of(response))["error"] == "code_rejected"
    await assert_status(owner, scene, "pending")


async def test_hanging_jscode2session_is_504_within_15_seconds(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    owner, scene = await owner_with_scene(browser)
    phone, bystander = await browser(), await browser()
    code = fw.mint()
    fw.fail(SESSION, Fault(delay=20))

    started = time.monotonic()
    pushing = asyncio.create_task(push(phone, scene, code))
    await asyncio.sleep(0.5)
    assert not pushing.done()
    # Other requests are not held up by the stalled call.
    quick = time.monotonic()
    await new_scene(bystander)
    await assert_status(owner, scene, "pending")
    assert time.monotonic() - quick < 2

    response = await pushing
    elapsed = time.monotonic() - started
    assert response.status == 504
    await error_of(response)
    assert elapsed < 15, elapsed
    assert fw.code_calls[code] == 1
    await assert_status(owner, scene, "pending")

    fresh = await push(phone, scene, fw.mint())
    assert fresh.status == 200, await fresh.text()
    await assert_status(owner, scene, "confirmed")


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        (Fault(http_status=500), 502),
        (Fault(http_status=404), 502),
        (Fault(body=b"<html>upstream trouble</html>"), 502),
        (Fault(body=b"[]"), 502),
        (Fault(body=b'{"openid": "o-without-key"}'), 502),
        (Fault(body=b'{"session_key": "AAAAAAAAAAAAAAAAAAAAAA=="}'), 502),
        (Fault(body=b'{"openid": "o-short-key", "session_key": "c2hvcnQ="}'), 502),
        (Fault(body=b'{"openid": "o-bad-key", "session_key": "not base64!!"}'), 502),
        (Fault(errcode=40125), 502),
        (Fault(errcode=40013), 502),
        (Fault(drop=True), 504),
    ],
    ids=["http-500", "http-404", "html", "json-array", "no-session-key", "no-openid",
         "short-key", "bad-base64-key", "bad-secret", "bad-appid", "dropped"],
)
async def test_unexpected_jscode2session_answers_never_confirm_or_resend(
    browser: MakeBrowser, fw: FakeWeChat, fault: Fault, status: int
) -> None:
    owner, scene = await owner_with_scene(browser)
    phone = await browser()
    code = fw.mint()
    fw.fail(SESSION, fault)

    response = await push(phone, scene, code)
    # The code may be spent after any of these: WeChat must see it once (an HTTP client that
    # silently re-sends a GET on a dropped connection breaks this).
    assert (response.status, fw.code_calls[code]) == (status, 1), await response.text()
    await error_of(response)
    await assert_status(owner, scene, "pending")

    fresh = await push(phone, scene, fw.mint())
    assert fresh.status == 200, await fresh.text()


async def test_unknown_scene_costs_no_wechat_call(browser: MakeBrowser, fw: FakeWeChat) -> None:
    phone = await browser()
    code = fw.mint()
    response = await push(phone, UNKNOWN_SCENE, code)
    assert response.status == 404
    await error_of(response)
    assert fw.calls[SESSION] == 0 and fw.code_calls[code] == 0


async def test_expired_scene_costs_no_wechat_call(
    browser: MakeBrowser, fw: FakeWeChat, clock: FakeClock, settings: Settings
) -> None:
    owner, scene = await owner_with_scene(browser)
    phone = await browser()
    clock.advance(settings.scene_ttl + 1)
    code = fw.mint()
    response = await push(phone, scene, code)
    assert response.status == 410
    await error_of(response)
    assert fw.calls[SESSION] == 0 and fw.code_calls[code] == 0
    await assert_status(owner, scene, "expired")
    # Nor is its code drawn any more.
    drawn = await fetch_code(owner, scene)
    assert drawn.status == 410
    await error_of(drawn)
    assert fw.calls[DRAW] == 0


async def test_confirmed_scene_costs_no_wechat_call(browser: MakeBrowser, fw: FakeWeChat) -> None:
    owner, scene = await owner_with_scene(browser)
    phone = await browser()
    first = await push(phone, scene, fw.mint())
    assert first.status == 200, await first.text()
    assert fw.calls[SESSION] == 1

    code = fw.mint()
    response = await push(phone, scene, code)
    assert response.status == 409
    await error_of(response)
    assert fw.calls[SESSION] == 1 and fw.code_calls[code] == 0
