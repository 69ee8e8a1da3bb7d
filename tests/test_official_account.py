"""The official account's callback, `/wechat/oa`: its URL check (the console's server
configuration) with WeChat's own vector, refusals, and the settings that configure it."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import defusedxml.ElementTree as ElementTree  # type: ignore[import-untyped]
import pytest
import zxingcpp
from PIL import Image

from tests.conftest import MakeBrowser, MakeServer
from tests.fakewechat import FakeWeChat, Fault
from tests.helpers import new_scene, poll, push
from wxlogin.clock import FakeClock
from wxlogin.settings import OfficialAccount, Settings, SettingsError
from wxlogin.wechat.oa_crypto import MessageCrypto, signature

ACCOUNT = OfficialAccount("wxoa0000000000001", "oa-secret", "AAAAA")
SIGNED = {"signature": "899cf89e464efb63f54ddac96b0a0a235f53aa78", "timestamp": "1714037059",
          "nonce": "486452656", "echostr": "7313253485710846171"}


async def test_the_url_check_answers_echostr_when_signed(
    make_server: MakeServer, browser: MakeBrowser,
) -> None:
    server = await make_server(oa=ACCOUNT)
    console = await browser(server)
    answer = await console.get("/wechat/oa", params=SIGNED)
    assert answer.status == 200 and await answer.text() == SIGNED["echostr"]
    assert answer.headers["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize("change", [
    {"signature": "899cf89e464efb63f54ddac96b0a0a235f53aa79"},  # one digit off
    {"timestamp": "1714037060"},  # signed for another moment
    {"signature": ""}, {"nonce": "x" * 500}, {"echostr": ""},
])
async def test_an_unsigned_url_check_is_refused(
    make_server: MakeServer, browser: MakeBrowser, change: dict[str, str],
) -> None:
    server = await make_server(oa=ACCOUNT)
    answer = await (await browser(server)).get("/wechat/oa", params={**SIGNED, **change})
    assert answer.status == 403 and (await answer.json())["error"] == "bad_signature"


async def test_without_an_official_account_there_is_no_callback(
    make_server: MakeServer, browser: MakeBrowser,
) -> None:
    answer = await (await browser(await make_server())).get("/wechat/oa", params=SIGNED)
    assert answer.status == 404 and (await answer.json())["error"] == "not_found"


BASE = {"WXLOGIN_APPID": "wx0000000000000001", "WXLOGIN_SECRET": "s" * 32}


def test_the_official_account_settings() -> None:
    settings = Settings.from_env({
        **BASE, "WXLOGIN_OA_APPID": "wxoa1", "WXLOGIN_OA_SECRET": "oa-secret-canary",
        "WXLOGIN_OA_TOKEN": "Tok3nCanary", "WXLOGIN_OA_AES_KEY": "a" * 43})
    assert settings.oa is not None and settings.oa.token == "Tok3nCanary"
    shown = repr(settings)
    assert "wxoa1" in shown and "oa-secret-canary" not in shown and "Tok3nCanary" not in shown
    assert "a" * 43 not in shown
    assert Settings.from_env(BASE).oa is None
    for broken, said in (
        ({"WXLOGIN_OA_APPID": "wxoa1"}, "WXLOGIN_OA_SECRET must be set"),
        ({"WXLOGIN_OA_APPID": "wxoa1", "WXLOGIN_OA_SECRET": "x", "WXLOGIN_OA_TOKEN": "a!"},
         "WXLOGIN_OA_TOKEN is 3 to 32"),
        ({"WXLOGIN_OA_APPID": "wxoa1", "WXLOGIN_OA_SECRET": "x", "WXLOGIN_OA_TOKEN": "abc",
          "WXLOGIN_OA_AES_KEY": "short"}, "EncodingAESKey: 43"),
        ({"WXLOGIN_OA_AES_KEY": "a" * 43}, "needs WXLOGIN_OA_APPID"),
    ):
        with pytest.raises(SettingsError) as raised:
            Settings.from_env({**BASE, **broken})
        assert said in str(raised.value), raised.value


# --- the flow --------------------------------------------------------------------------------

OA_APPID, OA_SECRET, TOKEN = "wxoa0000000000002", "oa-secret-canary-5eed", "Tok3n"
AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@pytest.fixture(autouse=True)
def the_account_is_known_to_wechat(fw: FakeWeChat) -> None:
    fw.apps[OA_APPID] = OA_SECRET


@contextlib.asynccontextmanager
async def database_held(pg_url: str, statement: str, *args: object) -> AsyncIterator[None]:
    """Another connection holds `statement`'s locks until the block ends: a stalled database."""
    blocker = await asyncpg.connect(pg_url)
    transaction = blocker.transaction()
    await transaction.start()
    try:
        await blocker.execute(statement, *args)
        yield
    finally:
        await transaction.rollback()
        await blocker.close()


def oa_account(safe: bool = False) -> OfficialAccount:
    return OfficialAccount(OA_APPID, OA_SECRET, TOKEN, AES if safe else None)


def event_xml(openid: str, event: str, key: str, created: int) -> str:
    return (f"<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{created}</CreateTime>"
            f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
            f"<EventKey><![CDATA[{key}]]></EventKey><Ticket><![CDATA[gQ-ticket]]></Ticket></xml>")


NOW = int(FakeClock().now().timestamp())  # the servers' injected clock, where tests start


async def deliver(client: Any, xml: str, *, safe: bool = False, forge: bool = False,
                  at: int = NOW) -> tuple[int, str]:
    """What WeChat sends: signed (and in safe mode encrypted, with msg_signature)."""
    timestamp, nonce = str(at), secrets.token_hex(5)
    query = {"timestamp": timestamp, "nonce": nonce,
             "signature": signature(TOKEN if not forge else "wrong", timestamp, nonce)}
    body = xml
    if safe:
        sealed = MessageCrypto(OA_APPID, AES).encrypt(xml)
        query.update(encrypt_type="aes", msg_signature=signature(TOKEN, timestamp, nonce, sealed))
        body = (f"<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName>"
                f"<Encrypt><![CDATA[{sealed}]]></Encrypt></xml>")
    answer = await client.post("/wechat/oa", params=query, data=body.encode(),
                               headers={"Content-Type": "text/xml"})
    return answer.status, await answer.text()


def content_of(reply: str, *, safe: bool = False) -> str:
    root = ElementTree.fromstring(reply)
    if safe:
        root = ElementTree.fromstring(MessageCrypto(OA_APPID, AES).decrypt(
            root.findtext("Encrypt") or ""))
    return root.findtext("Content") or ""


def confirm_path(content: str) -> str:
    found = re.search(r'href="[^"]*?(/oa/confirm/[A-Za-z0-9_-]+)"', content)
    assert found, content
    return found.group(1)


async def oa_scene(desk: Any) -> str:
    made = await desk.post("/api/scenes", json={"kind": "oa"})
    assert made.status == 201, await made.text()
    scene: str = (await made.json())["scene"]
    return scene


@pytest.mark.parametrize("safe", [False, True], ids=["plaintext", "safe-mode"])
async def test_follow_confirm_and_the_browser_is_logged_in(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: Any, safe: bool,
) -> None:
    server = await make_server(oa=oa_account(safe), listen=True)
    desk, wechat, phone = await browser(server), await browser(server), await browser(server)
    scene = await oa_scene(desk)
    code = await desk.get(f"/api/scenes/{scene}/code")
    assert code.status == 200 and code.headers["Content-Type"] == "image/png"
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(await code.read())).convert("L"))
    assert len(decoded) == 1, (fw.calls, code.headers)
    assert decoded[0].text.startswith("http://weixin.qq.com/q/gQ")
    assert fw.qrcodes[0]["action_name"] == "QR_STR_SCENE"
    assert fw.qrcodes[0]["action_info"] == {"scene": {"scene_str": scene}}

    status, reply = await deliver(wechat, event_xml("o-follower", "subscribe",
                                                    f"qrscene_{scene}", 1700000001), safe=safe)
    assert status == 200
    content = content_of(reply, safe=safe)
    assert "/oa/confirm/" in content and "秒前" in content  # the context, and the link
    _, polled = await poll(desk, scene, wait=0)
    assert polled["status"] == "scanned"

    path = confirm_path(content)
    page = await phone.get(path)
    assert page.status == 200 and 'id="oa-confirm"' in await page.text()
    done = await phone.post(path, data={"action": "confirm"},
                            headers={"Origin": str(server.make_url("")).rstrip("/")})
    assert done.status == 200, await done.text()
    _, polled = await poll(desk, scene, wait=0)
    assert polled["status"] == "confirmed"
    assert (await desk.get("/api/me")).status == 200
    again = await phone.post(path, data={"action": "confirm"},
                             headers={"Origin": str(server.make_url("")).rstrip("/")})
    assert again.status == 410  # single use
    assert await db.fetchval("SELECT count(*) FROM wxlogin.oa_events") == 1


async def test_a_repeated_event_counts_once_and_gets_the_same_reply(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: Any,
) -> None:
    server = await make_server(oa=oa_account())
    desk, wechat = await browser(server), await browser(server)
    scene = await oa_scene(desk)
    xml = event_xml("o-twice", "SCAN", scene, 1700000002)
    first, second = await deliver(wechat, xml), await deliver(wechat, xml)
    assert first == second and first[0] == 200
    assert await db.fetchval("SELECT count(*) FROM wxlogin.oa_confirms") == 1
    # SCAN after subscribe (or before it): the same follower again, harmless.
    status, reply = await deliver(wechat, event_xml("o-twice", "subscribe",
                                                    f"qrscene_{scene}", 1700000003))
    assert status == 200 and "/oa/confirm/" in content_of(reply)


async def test_forged_or_malformed_events_change_nothing(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: Any,
) -> None:
    server = await make_server(oa=oa_account(safe=True))
    desk, wechat = await browser(server), await browser(server)
    scene = await oa_scene(desk)
    xml = event_xml("o-forger", "SCAN", scene, 1700000004)
    status, _ = await deliver(wechat, xml, forge=True)
    assert status == 403
    bomb = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><xml><Content>&b;</Content></xml>')
    status, _ = await deliver(wechat, bomb)
    assert status == 400
    status, _ = await deliver(wechat, "not xml at all")
    assert status == 400
    _, polled = await poll(desk, scene, wait=0)
    assert polled["status"] == "pending"
    assert await db.fetchval("SELECT count(*) FROM wxlogin.oa_events") == 0


async def test_twenty_taps_on_one_confirm_link_confirm_once(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat,
) -> None:
    server = await make_server(oa=oa_account(), listen=True)
    desk, wechat, phone = await browser(server), await browser(server), await browser(server)
    scene = await oa_scene(desk)
    _, reply = await deliver(wechat, event_xml("o-tapper", "SCAN", scene, 1700000005))
    path = confirm_path(content_of(reply))
    origin = {"Origin": str(server.make_url("")).rstrip("/")}
    answers = await asyncio.gather(*(
        phone.post(path, data={"action": "confirm" if n % 2 else "deny"}, headers=origin)
        for n in range(20)))
    assert sorted(a.status for a in answers) == [200] + [410] * 19


async def test_a_link_expires_and_cannot_be_taken_by_another_follower(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, clock: Any,
) -> None:
    server = await make_server(oa=oa_account(), listen=True)
    desk, wechat, phone = await browser(server), await browser(server), await browser(server)
    scene = await oa_scene(desk)
    _, reply = await deliver(wechat, event_xml("o-first", "SCAN", scene, 1700000006))
    first_link = confirm_path(content_of(reply))
    _, reply = await deliver(wechat, event_xml("o-second", "SCAN", scene, 1700000007))
    assert "/oa/confirm/" not in content_of(reply)  # someone else's scene now: no link
    foreign = await phone.post(first_link, data={"action": "confirm"},
                               headers={"Origin": "https://evil.example"})
    assert foreign.status == 403 and (await foreign.json())["error"] == "forbidden_origin"
    clock.advance(6 * 60)
    origin = {"Origin": str(server.make_url("")).rstrip("/")}
    late = await phone.post(first_link, data={"action": "confirm"}, headers=origin)
    assert late.status == 410


async def test_oa_and_mini_program_users_with_one_unionid_are_one_user(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: Any,
) -> None:
    fw.unionids["o-oa-person"] = "union-same-person"
    server = await make_server(oa=oa_account(), listen=True)
    desk, wechat, phone = await browser(server), await browser(server), await browser(server)
    scene = await new_scene(desk)  # the mini program's code
    await push(phone, scene, fw.mint("o-mp-person", "union-same-person"))
    desk2 = await browser(server)
    scene = await oa_scene(desk2)
    _, reply = await deliver(wechat, event_xml("o-oa-person", "SCAN", scene, 1700000008))
    origin = {"Origin": str(server.make_url("")).rstrip("/")}
    assert (await phone.post(confirm_path(content_of(reply)), data={"action": "confirm"},
                             headers=origin)).status == 200
    assert await db.fetchval("SELECT count(*) FROM wxlogin.users") == 1
    assert await db.fetchval("SELECT count(*) FROM wxlogin.identities") == 2


async def test_a_slow_database_still_gets_wechat_an_answer_within_5_s(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: Any, pg_url: str,
) -> None:
    server = await make_server(oa=oa_account())
    desk, wechat = await browser(server), await browser(server)
    scene = await oa_scene(desk)
    # The database stalls: nothing can touch the events table until this ends.
    async with database_held(pg_url, "LOCK TABLE wxlogin.oa_events IN ACCESS EXCLUSIVE MODE"):
        started = time.monotonic()
        status, reply = await deliver(wechat, event_xml("o-patient", "SCAN", scene, 1700000009))
        took = time.monotonic() - started
    assert status == 200 and reply == "success" and took < 5.0, (took, reply)
    # Nothing half-done: no event kept, the scene untouched; WeChat's retry then works.
    assert await db.fetchval("SELECT count(*) FROM wxlogin.oa_events") == 0
    _, polled = await poll(desk, scene, wait=0)
    assert polled["status"] == "pending"
    status, reply = await deliver(wechat, event_xml("o-patient", "SCAN", scene, 1700000009))
    assert status == 200 and "/oa/confirm/" in content_of(reply)


async def test_other_events_get_success_and_dead_scenes_a_polite_reply(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: Any,
) -> None:
    server = await make_server(oa=oa_account())
    wechat = await browser(server)
    text = ("<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA["
            "o-chatty]]></FromUserName><CreateTime>1700000010</CreateTime><MsgType><![CDATA["
            "text]]></MsgType><Content><![CDATA[hello]]></Content></xml>")
    assert await deliver(wechat, text) == (200, "success")
    plain_follow = event_xml("o-fan", "subscribe", "", 1700000011)  # followed, no scene
    assert await deliver(wechat, plain_follow) == (200, "success")
    status, reply = await deliver(wechat, event_xml("o-late", "SCAN", "NoSuchScene1", 1700000012))
    assert status == 200 and "已失效" in content_of(reply)  # the scene is unknown
    status, reply = await deliver(wechat, event_xml("o-odd", "SCAN", "bad scene!", 1700000013))
    assert status == 200 and "不是登录二维码" in content_of(reply)
    metrics = await (await wechat.get("/metrics")).text()
    assert "wxlogin_oa_followers_total 1.0" in metrics  # the plain follow counted


async def test_the_default_kind_of_code(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: Any,
) -> None:
    server = await make_server(oa=oa_account(), code_kind="oa")
    desk = await browser(server)
    scene = (await (await desk.post("/api/scenes")).json())["scene"]
    assert await db.fetchval("SELECT appid FROM wxlogin.scenes WHERE scene = $1", scene) == (
        OA_APPID)
    other = await browser(server)
    made = await other.post("/api/scenes", json={"kind": "wxacode"})
    assert made.status == 201
    bad = await other.post("/api/scenes", json={"kind": "carrier-pigeon"})
    assert bad.status == 400 and (await bad.json())["error"] == "bad_request"
    without = await make_server()
    refused = await (await browser(without)).post("/api/scenes", json={"kind": "oa"})
    assert refused.status == 400
    with pytest.raises(SettingsError):
        Settings.from_env({**BASE, "WXLOGIN_CODE_KIND": "oa"})



async def test_safe_mode_refuses_plaintext_and_old_signatures_are_refused(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: Any,
) -> None:
    server = await make_server(oa=oa_account(safe=True))
    desk, wechat = await browser(server), await browser(server)
    scene = await oa_scene(desk)
    xml = event_xml("o-victim", "SCAN", scene, 1700000020)
    assert (await deliver(wechat, xml))[0] == 403  # a plaintext body: it could be anyone's
    _, polled = await poll(desk, scene, wait=0)
    assert polled["status"] == "pending"
    status, reply = await deliver(wechat, xml, safe=True)
    assert status == 200 and "/oa/confirm/" in content_of(reply, safe=True)
    # Without a key (plaintext mode), a signed query older than 5 minutes carries no body.
    plain = await make_server(oa=oa_account())
    desk, wechat = await browser(plain), await browser(plain)
    scene = await oa_scene(desk)
    xml = event_xml("o-victim", "SCAN", scene, 1700000021)
    assert (await deliver(wechat, xml, at=NOW - 3600))[0] == 403
    assert (await deliver(wechat, xml, at=NOW + 3600))[0] == 403
    _, polled = await poll(desk, scene, wait=0)
    assert polled["status"] == "pending"


async def test_a_failed_unionid_lookup_claims_nothing(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: Any,
) -> None:
    server = await make_server(oa=oa_account())
    desk, wechat = await browser(server), await browser(server)
    scene = await oa_scene(desk)
    fw.fail("user_info", Fault(errcode=-1))  # WeChat busy, once
    status, reply = await deliver(wechat, event_xml("o-bound", "SCAN", scene, 1700000021))
    assert status == 200 and "稍后重新扫码" in content_of(reply)
    assert await db.fetchval("SELECT count(*) FROM wxlogin.oa_events") == 0
    _, polled = await poll(desk, scene, wait=0)
    assert polled["status"] == "pending"
    status, reply = await deliver(wechat, event_xml("o-bound", "SCAN", scene, 1700000021))
    assert status == 200 and "/oa/confirm/" in content_of(reply)  # WeChat's retry works
    # A definite no from WeChat (an odd openid, or a stand-in without user/info): by openid.
    desk = await browser(server)
    scene = await oa_scene(desk)
    fw.fail("user_info", Fault(errcode=40003))
    status, reply = await deliver(wechat, event_xml("o-unknown", "SCAN", scene, 1700000023))
    assert status == 200 and "/oa/confirm/" in content_of(reply)


async def test_odd_create_times_are_not_a_crash(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat,
) -> None:
    server = await make_server(oa=oa_account())
    wechat = await browser(server)
    for created in ("²", "9" * 40, "-1"):
        xml = event_xml("o-odd", "SCAN", "SomeScene1", 0).replace("<CreateTime>0",
                                                                   f"<CreateTime>{created}")
        assert await deliver(wechat, xml) == (200, "success")


async def test_a_stalled_claim_leaves_nothing_half_done(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: Any, pg_url: str,
) -> None:
    server = await make_server(oa=oa_account())
    desk, wechat = await browser(server), await browser(server)
    scene = await oa_scene(desk)
    async with database_held(
        pg_url, "SELECT 1 FROM wxlogin.scenes WHERE scene = $1 FOR UPDATE", scene
    ):
        status, reply = await deliver(wechat, event_xml("o-stalled", "SCAN", scene, 1700000022))
    assert (status, reply) == (200, "success")
    assert await db.fetchval("SELECT count(*) FROM wxlogin.oa_events") == 0
    assert await db.fetchval("SELECT count(*) FROM wxlogin.oa_confirms") == 0
    _, polled = await poll(desk, scene, wait=0)
    assert polled["status"] == "pending"
    status, reply = await deliver(wechat, event_xml("o-stalled", "SCAN", scene, 1700000022))
    assert status == 200 and "/oa/confirm/" in content_of(reply)


async def test_wechats_own_safe_mode_vector_through_the_callback(
    make_server: MakeServer, browser: MakeBrowser,
) -> None:
    """WeChat's decrypt vector (a text message, 2014), posted as WeChat would: taken (signed
    and decrypted; the body is signed, so its age does not matter), answered `success`."""
    from tests.test_oa_crypto import ENCRYPTED, KEY

    account = OfficialAccount("wx2c2769f8efd9abc2", "secret", "spamtest", KEY)
    server = await make_server(oa=account)
    query = {"timestamp": "1409735669", "nonce": "1320562132", "encrypt_type": "aes",
             "signature": signature("spamtest", "1409735669", "1320562132"),
             "msg_signature": "5d197aaffba7e9b25a30732f161a50dee96bd5fa"}
    body = (f"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>"
            f"<Encrypt><![CDATA[{ENCRYPTED}]]></Encrypt></xml>")
    answer = await (await browser(server)).post("/wechat/oa", params=query, data=body.encode())
    assert answer.status == 200 and await answer.text() == "success"
    tampered = {**query, "msg_signature": "5d197aaffba7e9b25a30732f161a50dee96bd5fb"}
    answer = await (await browser(server)).post("/wechat/oa", params=tampered, data=body.encode())
    assert answer.status == 403
