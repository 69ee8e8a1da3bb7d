"""WeChat's three server APIs behind one small interface.

Rules (WECHAT.md): never judge by HTTP status, since errors come as JSON with HTTP 200; sniff the
code image's bytes; never log URLs (secret, js_code and access_token ride in query strings) nor
pass WeChat's errmsg on; every call has a timeout and the whole operation a deadline, so an answer
always comes within the contract's 15 seconds.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import aiohttp
import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..clock import Clock
from ..errors import (
    ApiError,
    CodeRejected,
    PhoneCodeRejected,
    WeChatBusy,
    WeChatError,
    WeChatUnreachable,
)
from ..storage import queries
from ..storage.db import acquire

log = logging.getLogger("wxlogin.wechat")

ATTEMPT_TIMEOUT = aiohttp.ClientTimeout(total=5, connect=3)
DEADLINE = 12.0  # token + call + one retry
ANSWER_BUDGET = 14.0  # whatever WeChat does, every request is answered within the contract's 15 s
REFRESH_MARGIN = timedelta(seconds=120)
TOKEN_ERRORS = {40001, 40014, 42001}
BUSY = {-1: 2, 45009: 60, 45011: 60}
CODE_REFUSED = {40029, 40163, 40226}
PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff"

OPERATOR_HINTS = {
    41030: (
        "WeChat refused the mini-program page: it is not published, or not in app.json. Publish "
        "the page, or set WXLOGIN_ENV_VERSION=trial/develop for an unpublished build, and check "
        "WXLOGIN_PAGE (no leading '/', no query)."
    ),
    40013: "WeChat does not know this appid: check WXLOGIN_APPID.",
    40125: "WeChat refused the app secret: check WXLOGIN_SECRET.",
    40164: "WeChat refused this server's IP address: add it to the mini program's IP whitelist.",
    40129: "WeChat refused the scene's characters.",
    40097: "WeChat refused an argument: check WXLOGIN_ENV_VERSION and WXLOGIN_PAGE.",
    48001: (
        "The mini program is not authorised for this API (phone numbers and links need a "
        "verified, non-individual mini program)."
    ),
    45063: "The mini program has no permission to draw codes.",
}


# Page and build problems are told to whoever sees them (the site owner testing their setup);
# credential and network problems only to the log.
PUBLIC_HINTS = {41030, 40097, 40129}


@dataclass(frozen=True)
class WxSession:
    openid: str
    unionid: str | None
    session_key: bytes = field(repr=False)


@dataclass(frozen=True)
class Phone:
    """A number from getuserphonenumber: E.164 (`+8613800138000`), as WeChat split it."""

    number: str
    pure: str
    country: str


@dataclass(frozen=True)
class CodeImage:
    data: bytes
    content_type: str


class WeChat(Protocol):
    appid: str

    async def draw_code(self, scene: str) -> CodeImage: ...

    async def code2session(self, code: str) -> WxSession: ...

    async def phone_number(self, code: str) -> Phone: ...

    async def mobile_link(self, kind: str, scene: str) -> str: ...


class _Disconnected(aiohttp.ClientConnectionError):
    """WeChat hung up mid-request: never re-sent, since a js_code may already be spent."""


async def _never_resend(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    # aiohttp silently retries an idempotent request once after a disconnect; turning the error
    # into one it does not retry (from inside its retry loop) stops that.
    try:
        return await handler(request)
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        raise _Disconnected(str(exc)) from exc


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _rid(errmsg: object) -> str:
    match = re.search(r"rid:\s*([\w-]+)", str(errmsg))
    return match.group(1) if match else "-"


def sniff(data: bytes) -> str | None:
    if data.startswith(PNG):
        return "image/png"
    if data.startswith(JPEG):
        return "image/jpeg"
    return None


class WeChatClient:
    """One mini program's client. The access token lives in PostgreSQL, shared by every process;
    a per-process cache behind a lock keeps concurrent callers to one refresh."""

    def __init__(
        self,
        *,
        http: aiohttp.ClientSession,
        api_base: str,
        appid: str,
        secret: str,
        pool: asyncpg.Pool,
        clock: Clock,
        page: str,
        env_version: str,
        observe: Callable[[str, str, float], None] = lambda api, outcome, seconds: None,
    ) -> None:
        self.appid = appid
        self._observe = observe  # (api, outcome, seconds) of every call, for the metrics
        self._secret = secret
        self._http = http
        self._base = api_base.rstrip("/")
        self._pool = pool
        self._clock = clock
        self._page = page
        self._env_version = env_version
        self._cached: tuple[str, datetime] | None = None
        # The token rests in PostgreSQL sealed under a key only the processes know.
        self._seal = AESGCM(hashlib.sha256(b"wxlogin access token\0" + secret.encode()).digest())
        self._lock = asyncio.Lock()
        self._stable = True  # falls back to cgi-bin/token if a stand-in lacks stable_token

    def __repr__(self) -> str:
        return f"WeChatClient(appid={self.appid!r})"

    # --- transport -----------------------------------------------------------------------------

    async def _request(self, api: str, method: str, path: str, **kwargs: Any) -> bytes:
        # Exceptions are reduced to their type name and dropped (`from None`): aiohttp's carry
        # the URL, and with it the secret, js_code or access token.
        try:
            async with self._http.request(
                method, self._base + path, timeout=ATTEMPT_TIMEOUT, allow_redirects=False,
                middlewares=(_never_resend,), **kwargs,
            ) as response:
                body = await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            log.warning("wechat %s unreachable: %s", api, type(exc).__name__)
            raise WeChatUnreachable() from None
        except (aiohttp.ClientError, ValueError) as exc:  # a malformed reply
            log.error("wechat %s answered malformed HTTP: %s", api, type(exc).__name__)
            raise WeChatError() from None
        if status == 404 and api == "stable_token":
            raise _NoStableToken()
        if status != 200:
            log.error("wechat %s answered HTTP %s", api, status)
            raise WeChatError()
        return body

    @contextlib.asynccontextmanager
    async def _observed(self, api: str) -> AsyncIterator[None]:
        started, outcome = time.perf_counter(), "ok"
        try:
            yield
        except BaseException as exc:
            outcome = OUTCOMES.get(type(exc), "error")
            raise
        finally:
            self._observe(api, outcome, time.perf_counter() - started)

    def _json(self, api: str, body: bytes) -> dict[str, Any]:
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            log.error("wechat %s answered something that is not a JSON object", api)
            raise WeChatError()
        return answer

    def _check(self, api: str, answer: dict[str, Any], refused: set[int] | None = None) -> None:
        errcode = answer.get("errcode", 0)
        if errcode in (0, None):
            return
        rid = _rid(answer.get("errmsg"))
        if not isinstance(errcode, int):
            log.error("wechat %s answered a malformed errcode (rid %s)", api, rid)
            raise WeChatError()
        if errcode in BUSY:
            log.warning("wechat %s busy: errcode %s (rid %s)", api, errcode, rid)
            raise WeChatBusy(BUSY[errcode])
        if errcode in TOKEN_ERRORS:
            raise _TokenRejected(errcode)
        if refused and errcode in refused:
            log.info("wechat %s refused the code: errcode %s (rid %s)", api, errcode, rid)
            raise CodeRejected()
        hint = OPERATOR_HINTS.get(errcode, "")
        log.error("wechat %s failed: errcode %s (rid %s) %s", api, errcode, rid, hint)
        if errcode in PUBLIC_HINTS:
            raise WeChatError(hint)
        raise WeChatError(
            f"WeChat refused the request (errcode {errcode}); the site's operator can find "
            "what to change in the server log."
        )

    async def _deadline(self, work: Awaitable[Any]) -> Any:
        try:
            async with asyncio.timeout(DEADLINE):
                return await work
        except TimeoutError:
            raise WeChatUnreachable() from None

    # --- access token --------------------------------------------------------------------------

    async def _fetch_token(self) -> tuple[str, int]:
        async with self._observed("stable_token" if self._stable else "token"):
            return await self._fetch_token_once()

    async def _fetch_token_once(self) -> tuple[str, int]:
        if self._stable:
            try:
                body = await self._request(
                    "stable_token", "POST", "/cgi-bin/stable_token",
                    json={
                        "grant_type": "client_credential", "appid": self.appid,
                        "secret": self._secret, "force_refresh": False,
                    },
                )
            except _NoStableToken:
                log.warning("stable_token is missing at the API base; using cgi-bin/token")
                self._stable = False
        if not self._stable:
            body = await self._request(
                "token", "GET", "/cgi-bin/token",
                params={
                    "grant_type": "client_credential", "appid": self.appid,
                    "secret": self._secret,
                },
            )
        answer = self._json("token", body)
        try:
            self._check("token", answer)
        except _TokenRejected:
            raise WeChatError() from None
        token, expires_in = answer.get("access_token"), answer.get("expires_in")
        if (
            not isinstance(token, str)
            or not 0 < len(token) <= 512
            or not isinstance(expires_in, int)
            or not 0 < expires_in <= 24 * 3600
        ):
            log.error("wechat token answer lacks access_token/expires_in")
            raise WeChatError()
        return token, expires_in

    async def check_credentials(self) -> int:
        """Ask WeChat for a token now, without keeping it: its lifetime in seconds. For
        `wxlogin doctor`, which must prove the appid and secret, not find a cached token."""
        _token, expires_in = await self._deadline(self._fetch_token())
        return int(expires_in)

    async def access_token(self, stale: str | None = None) -> str:
        """A token with at least REFRESH_MARGIN left; `stale` names one WeChat just rejected."""

        def usable(entry: tuple[str, datetime] | None) -> bool:
            return (
                entry is not None
                and entry[0] != stale
                and entry[1] - self._clock.now() > REFRESH_MARGIN
            )

        if usable(self._cached):
            assert self._cached is not None
            return self._cached[0]
        async with self._lock:
            if usable(self._cached):
                assert self._cached is not None
                return self._cached[0]
            async with acquire(self._pool) as conn, conn.transaction():
                # One process at a time refreshes; the others then read its token.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext($1))", f"wxlogin.token:{self.appid}"
                )
                if stale is not None:
                    await queries.token_expire(conn, self.appid, _digest(stale), self._clock.now())
                entry = self._unseal(await queries.token_get(conn, self.appid))
                if not usable(entry):
                    token, expires_in = await self._fetch_token()
                    now = self._clock.now()
                    entry = (token, now + timedelta(seconds=expires_in))
                    nonce = os.urandom(12)
                    sealed = nonce + self._seal.encrypt(nonce, token.encode(), self.appid.encode())
                    await queries.token_put(
                        conn, self.appid, sealed, _digest(token), entry[1], now
                    )
                    log.info("wechat access token refreshed for %s", self.appid)
            self._cached = entry
            assert entry is not None
            return entry[0]

    def _unseal(self, row: tuple[bytes, datetime] | None) -> tuple[str, datetime] | None:
        if row is None:
            return None
        sealed, expires_at = row
        try:
            token = self._seal.decrypt(sealed[:12], sealed[12:], self.appid.encode())
        except (InvalidTag, ValueError):
            return None  # sealed under another secret: fetch a new token
        return token.decode(), expires_at

    async def _with_token(self, call: Callable[[str], Awaitable[Any]]) -> Any:
        token = await self.access_token()
        try:
            return await call(token)
        except _TokenRejected as first:
            log.warning("wechat rejected the access token (errcode %s); refreshing", first.errcode)
        token = await self.access_token(stale=token)
        try:
            return await call(token)
        except _TokenRejected as second:
            log.error("wechat rejected a fresh access token too (errcode %s)", second.errcode)
            raise WeChatError("WeChat keeps rejecting the access token; try again later.") from None

    # --- the two calls the login flow makes ----------------------------------------------------

    async def draw_code(self, scene: str) -> CodeImage:
        payload = json.dumps(
            {
                "scene": scene,
                "page": self._page,
                "check_path": self._env_version == "release",
                "env_version": self._env_version,
            }
        )

        async def call(token: str) -> CodeImage:
            async with self._observed("getwxacodeunlimit"):
                return await attempt(token)

        async def attempt(token: str) -> CodeImage:
            body = await self._request(
                "getwxacodeunlimit", "POST", "/wxa/getwxacodeunlimit",
                params={"access_token": token}, data=payload,
                headers={"Content-Type": "application/json"},
            )
            content_type = sniff(body)
            if content_type is not None:
                return CodeImage(body, content_type)
            if body.lstrip()[:1] == b"{":
                self._check("getwxacodeunlimit", self._json("getwxacodeunlimit", body))
            log.error("wechat getwxacodeunlimit answered neither an image nor an error")
            raise WeChatError()

        result: CodeImage = await self._deadline(self._with_token(call))
        return result

    async def code2session(self, code: str) -> WxSession:
        async def call() -> WxSession:
            async with self._observed("jscode2session"):
                return await exchange()

        async def exchange() -> WxSession:
            body = await self._request(
                "jscode2session", "GET", "/sns/jscode2session",
                params={
                    "appid": self.appid, "secret": self._secret, "js_code": code,
                    "grant_type": "authorization_code",
                },
            )
            answer = self._json("jscode2session", body)
            try:
                self._check("jscode2session", answer, refused=CODE_REFUSED)
            except _TokenRejected:
                raise WeChatError() from None
            openid, unionid, key = (
                answer.get("openid"), answer.get("unionid"), answer.get("session_key")
            )
            if not isinstance(openid, str) or not openid or not isinstance(key, str):
                log.error("wechat jscode2session answer lacks openid/session_key")
                raise WeChatError()
            try:
                session_key = base64.b64decode(key, validate=True)
            except (binascii.Error, ValueError):
                session_key = b""
            if len(session_key) != 16:
                log.error("wechat jscode2session gave a session_key that is not 16 bytes")
                raise WeChatError()
            if not isinstance(unionid, str) or not unionid:
                unionid = None
            return WxSession(openid, unionid, session_key)

        result: WxSession = await self._deadline(call())
        return result

    async def phone_number(self, code: str) -> Phone:
        """The number behind a getPhoneNumber button's code (single use, 5 minutes)."""

        async def call(token: str) -> Phone:
            async with self._observed("getuserphonenumber"):
                body = await self._request(
                    "getuserphonenumber", "POST", "/wxa/business/getuserphonenumber",
                    params={"access_token": token}, json={"code": code},
                )
                answer = self._json("getuserphonenumber", body)
                try:
                    self._check("getuserphonenumber", answer, refused=PHONE_REFUSED)
                except CodeRejected:
                    raise PhoneCodeRejected() from None
                phone = phone_from(answer, self.appid)
                if phone is None:
                    log.error("wechat getuserphonenumber answered no phone_info for this appid")
                    raise WeChatError()
                return phone

        result: Phone = await self._deadline(self._with_token(call))
        return result

    async def mobile_link(self, kind: str, scene: str) -> str:
        """A URL Link or an encrypted URL Scheme opening the login page on `scene` (as query
        `s`), valid a day; LinkRefused when WeChat will not make one."""
        path, field_name = LINK_PATHS[kind]
        target = {"path": self._page, "query": f"s={scene}", "env_version": self._env_version}
        payload = target if kind == "url_link" else {"jump_wxa": target}

        async def call(token: str) -> str:
            async with self._observed(path.rsplit("/", 1)[1]):
                body = await self._request(
                    path.rsplit("/", 1)[1], "POST", path, params={"access_token": token},
                    json={**payload, "expire_type": 1, "expire_interval": 1},
                )
                answer = self._json(path, body)
                errcode = answer.get("errcode", 0)
                if errcode in LINK_REFUSED:
                    log.warning("wechat %s refused: errcode %s (rid %s)", path, errcode,
                                _rid(answer.get("errmsg")))
                    raise LinkRefused(errcode, LINK_REFUSED[errcode])
                self._check(path, answer)
                link = answer.get(field_name)
                # (http: only the sandbox's stand-in, whose "WeChat" is a page on loopback)
                if not isinstance(link, str) or not link.startswith(
                    ("https://", "weixin://", "http://")
                ):
                    log.error("wechat %s answered no link", path)
                    raise WeChatError()
                return link

        result: str = await self._deadline(self._with_token(call))
        return result


# --- phones: a number, and links that open the mini program from a phone's own browser --------

PHONE_REFUSED = {40029, 40013}  # a bad or foreign phone code: the person tries again
LINK_REFUSED = {40002: 24 * 3600, 85079: 3600, 85407: 24 * 3600,  # no permission, unpublished
                44990: 1, 44993: 3600, 85406: 3600}  # per second, per day: seconds to wait
LINK_PATHS = {"url_link": ("/wxa/generate_urllink", "url_link"),
              "scheme": ("/wxa/generatescheme", "openlink")}


class LinkRefused(Exception):
    """WeChat will not make links of this kind for this mini program (for `wait` seconds)."""

    def __init__(self, errcode: int, wait: int) -> None:
        super().__init__(errcode)
        self.errcode, self.wait = errcode, wait


def phone_from(answer: dict[str, Any], appid: str) -> Phone | None:
    """WeChat's `phone_info`, checked: its watermark names this mini program; `countryCode` a
    string or a number (the docs show both)."""
    info = answer.get("phone_info")
    if not isinstance(info, dict):
        return None
    watermark = info.get("watermark")
    pure, country = info.get("purePhoneNumber"), info.get("countryCode")
    if isinstance(country, int) and not isinstance(country, bool):
        country = str(country)
    if (
        not isinstance(watermark, dict) or watermark.get("appid") != appid
        or not isinstance(pure, str) or not re.fullmatch(r"[0-9]{4,15}", pure)
        or not isinstance(country, str) or not re.fullmatch(r"[0-9]{1,4}", country)
    ):
        return None
    return Phone(f"+{country}{pure}", pure, country)


class _NoStableToken(Exception):
    pass


class _TokenRejected(ApiError):
    status = 502
    code = "wechat_error"

    def __init__(self, errcode: int) -> None:
        super().__init__("WeChat rejected the access token.")
        self.errcode = errcode


# The `outcome` label of a call that raised (anything not named here: "error").
OUTCOMES: dict[type[BaseException], str] = {
    WeChatBusy: "busy",
    WeChatUnreachable: "unreachable",
    CodeRejected: "code_rejected",
    _TokenRejected: "token_rejected",
    _NoStableToken: "missing",
    TimeoutError: "timeout",
    asyncio.CancelledError: "cancelled",
}
