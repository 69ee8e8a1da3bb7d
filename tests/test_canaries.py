"""Secret canaries (SECURITY.md T12, T14): what must never show up anywhere.

The session_key (a known 16-byte value, looked for raw, in hex and in base64), the AppSecret,
the cookie secret, the access tokens, every js_code and every session cookie id are canaries. After
a full login, and after a flow in which the stand-in fails every endpoint in every way, none of them
may appear in any response body or header (a session id only in its own Set-Cookie), in the logs
captured at DEBUG for every logger, or in any row of any table. The sessions table holds a keyed
hash of the cookie id, never the id itself.

Log records written by the WeChat stand-in's own HTTP server (its access log naming the URLs the
server called, which carry secret and js_code by WeChat's design) are the stand-in's, not the
server's, and are set aside; they are used only to check that stable_token keeps the secret out of
its URL.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any, cast

import asyncpg
import pytest

from tests.conftest import COOKIE_SECRET, Browser, MakeBrowser
from tests.fakewechat import APPID, SECRET, FakeWeChat, Fault
from tests.helpers import new_scene, session_cookie
from wxlogin.clock import FakeClock
from wxlogin.storage.sessions import PgStorage

SESSION_KEY = bytes.fromhex("5ca1ab1e0ddba11c0ffeefacade15bad")
TOKEN = "ACCESS_TOKEN_canary_" + "7e57" * 8  # seeded into the stand-in, so known up front
COOKIE_NAMES = ("wxlogin", "__Host-wxlogin")
STAND_IN_REQUEST = re.compile(r'"[A-Z]+ /(?:cgi-bin|wxa|sns)/')
FORMAT = logging.Formatter("%(name)s %(levelname)s %(message)s")


# --- recording everything the server answers -----------------------------------------------------


@dataclass
class Reply:
    method: str
    path: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Recorder:
    replies: list[Reply] = field(default_factory=list)
    session_ids: set[str] = field(default_factory=set)

    async def send(self, client: Browser, method: str, path: str, **kwargs: Any) -> Reply:
        response = await client.request(method, path, **kwargs)
        reply = Reply(
            method, path, response.status, list(response.headers.items()), await response.read()
        )
        self.replies.append(reply)
        for name, value in reply.headers:
            if name.lower() == "set-cookie":
                cookie: SimpleCookie = SimpleCookie()
                cookie.load(value)
                for key in COOKIE_NAMES:
                    if key in cookie and cookie[key].value:
                        self.session_ids.add(cookie[key].value)
        return reply


# --- the canaries --------------------------------------------------------------------------------


def key_forms(key: bytes) -> dict[str, str]:
    standard, urlsafe = base64.b64encode(key).decode(), base64.urlsafe_b64encode(key).decode()
    return {
        "session_key hex": key.hex(),
        "session_key HEX": key.hex().upper(),
        "session_key base64": standard,
        "session_key base64 unpadded": standard.rstrip("="),
        "session_key urlsafe base64": urlsafe.rstrip("="),
    }


def secret_canaries(fw: FakeWeChat, codes: list[str]) -> dict[str, str]:
    """Label -> text that must appear nowhere (not even in a Set-Cookie header)."""
    canaries = key_forms(SESSION_KEY)
    canaries["AppSecret"] = SECRET
    canaries["AppSecret prefix"] = SECRET[:17]
    canaries["cookie secret"] = COOKIE_SECRET
    canaries["cookie secret prefix"] = COOKIE_SECRET[:20]
    canaries["access token prefix"] = "ACCESS_TOKEN_canary"
    for n, token in enumerate(sorted({TOKEN, *fw.tokens.values(), *fw.revoked})):
        canaries[f"access token {n}"] = token
    for n, code in enumerate(codes):
        canaries[f"js_code {n}"] = code
    return canaries


def session_canaries(recorder: Recorder) -> dict[str, str]:
    """Label -> session id: allowed only in the Set-Cookie header that hands it out."""
    return {f"session id {n}": sid for n, sid in enumerate(sorted(recorder.session_ids))}


def found(text: str, canaries: dict[str, str]) -> list[str]:
    return [label for label, value in canaries.items() if value in text]


# --- where they must not be ----------------------------------------------------------------------


def assert_responses_clean(
    recorder: Recorder, secrets_: dict[str, str], sessions: dict[str, str]
) -> None:
    assert recorder.replies
    everything = {**secrets_, **sessions}
    for reply in recorder.replies:
        where = f"{reply.method} {reply.path} -> {reply.status}"
        body = reply.body.decode("latin-1")
        assert not found(body, everything), (where, found(body, everything))
        assert SESSION_KEY not in reply.body, where
        for name, value in reply.headers:
            canaries = secrets_ if name.lower() == "set-cookie" else everything
            assert not found(f"{name}: {value}", canaries), (where, name, found(value, canaries))


def log_texts(caplog: pytest.LogCaptureFixture) -> tuple[list[str], list[str]]:
    """(the server's records, the stand-in's own HTTP records), each formatted in full."""
    ours, stand_in = [], []
    for record in caplog.records:
        text = FORMAT.format(record)
        if (
            record.name.startswith("aiohttp.")
            and record.name != "aiohttp.client"
            and STAND_IN_REQUEST.search(text)
        ):
            stand_in.append(text)
        else:
            ours.append(text)
    return ours, stand_in


def assert_logs_clean(
    caplog: pytest.LogCaptureFixture, secrets_: dict[str, str], sessions: dict[str, str]
) -> None:
    ours, stand_in = log_texts(caplog)
    assert any(text.startswith("wxlogin") for text in ours), "no server log was captured"
    everything = {**secrets_, **sessions}
    for text in ours:
        assert not found(text, everything), (found(text, everything), text)
        assert SESSION_KEY.decode("latin-1") not in text
    # The stand-in saw every WeChat call: stable_token carried the secret in its body only.
    token_calls = [text for text in stand_in if "/cgi-bin/stable_token" in text]
    assert token_calls, "the stand-in's access log was not captured"
    assert not any(SECRET in text for text in token_calls)


async def dump(
    db: asyncpg.Connection[asyncpg.Record],
) -> tuple[dict[str, int], str, list[bytes]]:
    """Every row of every table of ours: (row counts, text, raw byte values)."""
    counts: dict[str, int] = {}
    parts: list[str] = []
    blobs: list[bytes] = []
    tables = await db.fetch(
        "SELECT quote_ident(tablename) AS name FROM pg_tables WHERE schemaname = 'wxlogin'"
        " ORDER BY tablename"
    )
    for table in tables:
        rows = await db.fetch(f"SELECT * FROM wxlogin.{table['name']}")
        counts[table["name"]] = len(rows)
        for row in rows:
            for column, value in row.items():
                if isinstance(value, bytes):
                    blobs.append(value)
                    text = " ".join(
                        (value.hex(), base64.b64encode(value).decode(), value.decode("latin-1"))
                    )
                else:
                    text = str(value)
                parts.append(f"{table['name']}.{column}={text}")
    return counts, "\n".join(parts), blobs


async def assert_database_clean(
    db: asyncpg.Connection[asyncpg.Record], secrets_: dict[str, str], sessions: dict[str, str]
) -> dict[str, int]:
    counts, text, blobs = await dump(db)
    everything = {**secrets_, **sessions}
    assert not found(text, everything), found(text, everything)
    assert not any(SESSION_KEY in blob for blob in blobs)
    for label, session_id in sessions.items():
        plain = hashlib.sha256(session_id.encode()).digest()
        assert plain.hex() not in text, f"{label} is stored as an unkeyed hash"
    return counts


def storage(clock: FakeClock) -> PgStorage:
    """The server's own keyed hash of a cookie id (no pool needed for that)."""
    return PgStorage(cast(asyncpg.Pool, None), clock, COOKIE_SECRET, ttl=3600, secure=False)


def debug_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    names = {"wxlogin", "aiohttp", "aiohttp_session", "asyncpg", "asyncio"}
    names |= {
        name
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    for name in sorted(names):
        caplog.set_level(logging.DEBUG, logger=name)


def profile(fw: FakeWeChat, code: str, clock: FakeClock, **extra: Any) -> dict[str, str]:
    user = fw.codes[code]
    return fw.encrypt(
        code,
        {
            "openId": user.openid,
            "nickName": "Ada",
            "avatarUrl": "https://example.com/ada.png",
            "watermark": {"appid": APPID, "timestamp": int(clock.now().timestamp())},
            **extra,
        },
    )


# --- the flows -----------------------------------------------------------------------------------


async def test_no_secret_leaks_from_a_full_login(
    browser: MakeBrowser,
    fw: FakeWeChat,
    db: asyncpg.Connection[asyncpg.Record],
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    debug_everywhere(caplog)
    fw.tokens[APPID] = TOKEN
    rec, codes = Recorder(), []

    def mint() -> str:
        code = fw.mint("o-ada", session_key=SESSION_KEY)
        codes.append(code)
        return code

    b1, phone = await browser(), await browser()
    created = await rec.send(b1, "POST", "/api/scenes")
    assert created.status == 201
    scene = created.json()["scene"]
    assert len(rec.session_ids) == 1
    drawn = await rec.send(b1, "GET", f"/api/scenes/{scene}/code")
    assert drawn.status == 200 and drawn.body == fw.image
    assert (await rec.send(b1, "GET", f"/api/scenes/{scene}", params={"wait": "0"})).status == 200

    scanned = await rec.send(phone, "POST", f"/api/scenes/{scene}/scan", json={"code": mint()})
    assert scanned.status == 200, scanned.body
    push_code = mint()
    push_body = {"scene": scene, "code": push_code, **profile(fw, push_code, clock)}
    pushed = await rec.send(phone, "POST", "/api/pushCode", json=push_body)
    assert pushed.status == 200, pushed.body
    assert pushed.json()["user"]["nickname"] == "Ada"  # the session key did decrypt
    retried = await rec.send(phone, "POST", "/api/pushCode", json=push_body)
    assert (retried.status, retried.body) == (pushed.status, pushed.body)

    polled = await rec.send(b1, "GET", f"/api/scenes/{scene}", params={"since": "scanned"})
    assert polled.status == 200 and polled.json()["status"] == "confirmed"
    assert len(rec.session_ids) == 2  # rotated at login
    assert (await rec.send(b1, "GET", "/api/me")).status == 200
    assert (await rec.send(b1, "GET", "/api/auth")).status == 200
    for path in ("/healthz", "/metrics", "/api/openapi.json"):
        await rec.send(b1, "GET", path)

    # The logged-in cookie is stored only as the server's keyed hash.
    logged_in = session_cookie(b1)
    assert logged_in is not None and logged_in in rec.session_ids
    hashes = {row["id_hash"] for row in await db.fetch("SELECT id_hash FROM wxlogin.sessions")}
    assert storage(clock).id_hash(logged_in) in hashes
    assert hashlib.sha256(logged_in.encode()).digest() not in hashes
    await assert_database_clean(db, secret_canaries(fw, codes), session_canaries(rec))

    # Failures around the secrets: a code reused elsewhere, undecryptable data, a bad IV.
    other = (await rec.send(b1, "POST", "/api/scenes")).json()["scene"]
    reused = await rec.send(phone, "POST", "/api/pushCode", json={**push_body, "scene": other})
    assert reused.status == 400
    bad_code = mint()
    tampered = {**profile(fw, bad_code, clock), "encryptedData": push_body["encryptedData"]}
    refused = await rec.send(
        phone, "POST", "/api/pushCode", json={"scene": other, "code": bad_code, **tampered}
    )
    assert refused.status == 400
    flipped_code = mint()
    flipped = profile(fw, flipped_code, clock)
    flipped["iv"] = base64.b64encode(bytes(16)).decode()
    refused = await rec.send(
        phone, "POST", "/api/pushCode", json={"scene": other, "code": flipped_code, **flipped}
    )
    assert refused.status == 400

    assert (await rec.send(b1, "POST", "/api/logout")).status == 204
    assert (await rec.send(b1, "GET", "/api/me")).status == 401

    canaries, sessions = secret_canaries(fw, codes), session_canaries(rec)
    assert len(codes) == 4 and len(sessions) >= 2 and TOKEN in canaries.values()
    assert_responses_clean(rec, canaries, sessions)
    assert_logs_clean(caplog, canaries, sessions)
    counts = await assert_database_clean(db, canaries, sessions)
    assert counts["users"] == 1 and counts["access_tokens"] == 1
    assert counts["code_ledger"] == 4 and counts["scenes"] == 2


async def test_no_secret_leaks_when_wechat_fails_every_endpoint(
    browser: MakeBrowser,
    fw: FakeWeChat,
    db: asyncpg.Connection[asyncpg.Record],
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    debug_everywhere(caplog)
    fw.tokens[APPID] = TOKEN
    rec, codes = Recorder(), []
    # WeChat's error messages echoing secrets back: the server must not pass them on.
    echo = json.dumps(
        {"errcode": 40125, "errmsg": f"invalid appsecret {SECRET} token {TOKEN} rid: 5ca1ab1e"}
    ).encode()
    page_echo = json.dumps(
        {"errcode": 41030, "errmsg": f"invalid page, access_token {TOKEN} rid: 0ddba11"}
    ).encode()

    def mint() -> str:
        code = fw.mint("o-bob", session_key=SESSION_KEY)
        codes.append(code)
        return code

    b1, phone = await browser(), await browser()
    scene = (await rec.send(b1, "POST", "/api/scenes")).json()["scene"]
    code_path = f"/api/scenes/{scene}/code"

    # stable_token fails in every way, then works; then the draw fails in every way.
    fw.fail(
        "stable_token",
        Fault(errcode=-1), Fault(http_status=500), Fault(body=echo), Fault(body=b"<html>"),
        Fault(drop=True), Fault(body=b'{"access_token": 7}'),
    )
    fw.fail(
        "getwxacodeunlimit",
        Fault(errcode=-1), Fault(errcode=45009), Fault(body=page_echo), Fault(body=echo),
        Fault(http_status=500), Fault(drop=True), Fault(body=b"GIF89a"),
        Fault(errcode=40001), Fault(errcode=40001),
    )
    statuses = [(await rec.send(b1, "GET", code_path)).status for _ in range(15)]
    assert statuses[:-1] == [503, 502, 502, 502, 504, 502, 503, 503, 502, 502, 502, 504, 502, 502]
    assert statuses[-1] == 200

    # cgi-bin/token (no stable_token at this base) fails too, after the token is revoked.
    fw.has_stable_token = False
    fw.revoke_tokens()
    fw.fail("token", Fault(errcode=-1), Fault(body=echo), Fault(http_status=500))
    b2 = await browser()  # b1 would get its live scene back, whose code is drawn
    second = (await rec.send(b2, "POST", "/api/scenes")).json()["scene"]
    statuses = [
        (await rec.send(b2, "GET", f"/api/scenes/{second}/code")).status for _ in range(4)
    ]
    assert statuses == [503, 502, 502, 200]

    # jscode2session fails in every way, each time with a fresh code.
    session_faults = [
        Fault(errcode=-1), Fault(errcode=45011), Fault(errcode=40029), Fault(errcode=40163),
        Fault(errcode=40226), Fault(body=echo), Fault(http_status=500), Fault(body=b"<html>"),
        Fault(body=b'{"openid": "o-bob"}'),
        Fault(body=b'{"openid": "o-bob", "session_key": "' + base64.b64encode(SESSION_KEY[:8])
              + b'"}'),
    ]
    for fault in session_faults:
        fw.fail("jscode2session", fault)
        code = mint()
        body = {"scene": scene, "code": code, **profile(fw, code, clock)}
        answer = await rec.send(phone, "POST", "/api/pushCode", json=body)
        assert answer.status in (400, 502, 503), answer.body
        again = await rec.send(phone, "POST", "/api/pushCode", json=body)
        assert (again.status, again.body) == (answer.status, answer.body)
    scan_code = mint()
    fw.fail("jscode2session", Fault(errcode=40029))
    scan = await rec.send(phone, "POST", f"/api/scenes/{scene}/scan", json={"code": scan_code})
    assert scan.status == 400
    # A dropped connection, on a scene of its own (whatever the answer, nothing may leak).
    dropped_scene = (await rec.send(b1, "POST", "/api/scenes")).json()["scene"]
    fw.fail("jscode2session", Fault(drop=True))
    await rec.send(phone, "POST", "/api/pushCode", json={"scene": dropped_scene, "code": mint()})
    fw.faults.clear()
    polled = await rec.send(b1, "GET", f"/api/scenes/{scene}", params={"wait": "0"})
    assert polled.json()["status"] == "pending"

    # Then WeChat recovers and the login completes with the canary key.
    code = mint()
    pushed = await rec.send(
        phone, "POST", "/api/pushCode",
        json={"scene": scene, "code": code, **profile(fw, code, clock)},
    )
    assert pushed.status == 200, pushed.body
    polled = await rec.send(b1, "GET", f"/api/scenes/{scene}", params={"wait": "0"})
    assert polled.json()["status"] == "confirmed"
    assert (await rec.send(b1, "GET", "/api/me")).status == 200

    canaries, sessions = secret_canaries(fw, codes), session_canaries(rec)
    assert len(fw.revoked) >= 1 and len(sessions) >= 2
    assert_responses_clean(rec, canaries, sessions)
    assert_logs_clean(caplog, canaries, sessions)
    await assert_database_clean(db, canaries, sessions)


async def test_access_token_is_not_stored_readable(
    browser: MakeBrowser, fw: FakeWeChat, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    """SECURITY.md §5.6: the token never shows up in a database dump. Processes share it through
    PostgreSQL, so the row must hold it in a form only they can read (e.g. sealed with a key
    derived from the AppSecret), not the bearer token itself."""
    fw.tokens[APPID] = TOKEN
    owner = await browser()
    response = await owner.get(f"/api/scenes/{await new_scene(owner)}/code")
    assert response.status == 200
    assert fw.calls["stable_token"] == 1
    counts, text, blobs = await dump(db)
    assert counts["access_tokens"] == 1
    assert TOKEN not in text and "ACCESS_TOKEN_canary" not in text
    assert not any(TOKEN.encode() in blob for blob in blobs)
