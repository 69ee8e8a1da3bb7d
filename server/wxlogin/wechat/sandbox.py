"""Sandbox mode: a WeChat stand-in inside the server, so the whole flow runs with no account.

It answers the same HTTP API the real client calls (`stable_token`, `cgi-bin/token`,
`getwxacodeunlimit`, `jscode2session`, `getuserphonenumber`, `generate_urllink`,
`generatescheme`) under /sandbox/wechat, and the server's ordinary
WeChatClient talks to it over loopback HTTP: nothing in the login flow knows it is a sandbox.
The "mini-program code" it draws is a standard QR code of the phone page's URL, which plays the
companion mini program: pick a test user, `wx.login`, scan, confirm or decline.

Its appid, secret and test users live only in the data dir. It is mounted only when no WeChat
credentials are configured, and refuses public addresses unless forced (see settings).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import defusedxml.ElementTree as defused  # type: ignore[import-untyped]
import segno
from aiohttp import web
from PIL import Image, ImageDraw, ImageFont

from ..clock import Clock
from ..errors import BadInput
from ..settings import OfficialAccount, SettingsError
from ..text import storable
from . import crypto
from .oa_crypto import MessageCrypto, signature

log = logging.getLogger("wxlogin.sandbox")

PREFIX = "/sandbox/wechat"
CODE_LIFETIME = 300
SEED_USERS = [{"nickname": "小明", "unionid": True}, {"nickname": "Alice", "unionid": False}]
MAX_USERS = 50


@dataclass
class SandboxState:
    appid: str
    secret: str = field(repr=False)
    users: list[dict[str, Any]]
    path: Path

    @classmethod
    def load(cls, data_dir: Path) -> SandboxState:
        """The sandbox's credentials and test users, made once and kept in the data dir (0600)."""
        path = data_dir / "sandbox.json"
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(str(raw["appid"]), str(raw["secret"]), list(raw["users"]), path)
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError):
            raise SettingsError([
                f"{path} is damaged; delete it and the sandbox makes a new one "
                "(its test users start afresh)"
            ]) from None
        data_dir.mkdir(parents=True, exist_ok=True)
        state = cls("wx" + secrets.token_hex(8), secrets.token_urlsafe(24), list(SEED_USERS), path)
        state.save()
        return state

    def save(self) -> None:
        """Written aside and renamed into place, so the file is never seen half-written."""
        body = json.dumps({"appid": self.appid, "secret": self.secret, "users": self.users},
                          ensure_ascii=False, indent=2).encode("utf-8")
        fd, draft = tempfile.mkstemp(dir=self.path.parent, prefix=".sandbox.")  # 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(draft, self.path)
        except BaseException:
            os.unlink(draft)
            raise

    def remember(self, nickname: str, unionid: bool) -> None:
        entry = {"nickname": nickname, "unionid": unionid}
        if entry not in self.users:
            self.users = [entry, *self.users][:MAX_USERS]
            self.save()

    def identity(self, nickname: str, unionid: bool) -> tuple[str, str | None]:
        """A test user's openid (and unionid) follow from its nickname: the same name is the
        same person in every run, and nothing about it is real."""
        digest = hashlib.sha256(f"{self.secret}\0{nickname}".encode()).hexdigest()
        return "o" + digest[:27], ("u" + digest[27:54] if unionid else None)

    def official_account(self) -> OfficialAccount:
        """The official account the sandbox plays: its credentials follow from the sandbox's
        secret (the same in every run, never real); safe mode on, as recommended."""
        def derived(label: str) -> str:
            return hmac.new(self.secret.encode(), label.encode(), hashlib.sha256).hexdigest()

        return OfficialAccount("wxoa" + derived("oa appid")[:14], derived("oa secret")[:32],
                               derived("oa token")[:32], derived("oa aes key")[:43])

    def phone_of(self, nickname: str) -> str:
        """A test user's phone number: mainland-shaped, the same for the same name, not real
        (the 19x range with a fixed sandbox prefix)."""
        digest = hashlib.sha256(f"{self.secret}\0phone\0{nickname}".encode()).hexdigest()
        return "1990" + str(int(digest[:12], 16) % 10**7).zfill(7)


@dataclass
class IssuedCode:
    openid: str
    unionid: str | None
    nickname: str
    session_key: bytes = field(repr=False)
    issued: float


class SandboxWeChat:
    def __init__(self, state: SandboxState, public_url: str, clock: Clock) -> None:
        self.state = state
        self._public_url = public_url.rstrip("/")
        self._clock = clock
        # The same token after a restart (the client keeps it in PostgreSQL), and for every
        # process sharing this data dir.
        self._token = "sandbox-" + hmac.new(
            state.secret.encode(), b"access token", hashlib.sha256
        ).hexdigest()
        self._codes: dict[str, IssuedCode] = {}
        self._used: set[str] = set()
        self._phone_codes: dict[str, tuple[str, float]] = {}  # code: (number, issued)
        self._followers: dict[str, str] = {}  # the account's openid: unionid

    def phone_url(self, scene: str) -> str:
        return f"{self._public_url}/sandbox/phone?scene={scene}"

    @staticmethod
    def _error(errcode: int, errmsg: str) -> web.Response:
        return web.json_response(
            {"errcode": errcode, "errmsg": f"{errmsg} rid: sandbox-{secrets.token_hex(4)}"}
        )

    def _secret_is(self, given: str) -> bool:
        return secrets.compare_digest(
            given.encode("utf-8", "surrogatepass"), self.state.secret.encode()
        )

    def _now(self) -> float:
        return self._clock.now().timestamp()

    # --- WeChat's API ---------------------------------------------------------------------------

    async def stable_token(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._error(47001, "data format error")
        if not isinstance(body, dict):
            return self._error(47001, "data format error")
        return self._token_answer(body.get("appid"), body.get("secret"))

    async def token(self, request: web.Request) -> web.Response:
        return self._token_answer(request.query.get("appid"), request.query.get("secret"))

    def _token_answer(self, appid: object, secret: object) -> web.Response:
        account = self.state.official_account()
        if appid == account.appid:  # the account's own token (the same string: a stand-in)
            if secret != account.secret:
                return self._error(40125, "invalid appsecret")
            return web.json_response({"access_token": self._token, "expires_in": 7200})
        if appid != self.state.appid:
            return self._error(40013, "invalid appid")
        if not isinstance(secret, str) or not self._secret_is(secret):
            return self._error(40125, "invalid appsecret")
        return web.json_response({"access_token": self._token, "expires_in": 7200})

    async def draw(self, request: web.Request) -> web.Response:
        if request.query.get("access_token") != self._token:
            return self._error(40001, "invalid credential, access_token is invalid or not latest")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._error(40169, "invalid length for scene, or the data is not json string")
        scene = body.get("scene") if isinstance(body, dict) else None
        if not isinstance(scene, str) or not 0 < len(scene) <= 32:
            return self._error(40169, "invalid length for scene")
        # WeChat labels every code image/jpeg, whatever it is; the client sniffs the bytes.
        return web.Response(body=sandbox_code(self.phone_url(scene)), content_type="image/jpeg")

    async def phone_number(self, request: web.Request) -> web.Response:
        if request.query.get("access_token") != self._token:
            return self._error(40001, "invalid credential, access_token is invalid or not latest")
        try:
            code = json.loads(await request.read()).get("code")
        except (ValueError, AttributeError):
            return self._error(47001, "data format error")
        found = self._phone_codes.pop(code, None) if isinstance(code, str) else None
        if found is None or self._now() - found[1] > CODE_LIFETIME:
            return self._error(40029, "invalid code")
        return web.json_response({"errcode": 0, "errmsg": "ok", "phone_info": {
            "phoneNumber": found[0], "purePhoneNumber": found[0], "countryCode": "86",
            "watermark": {"timestamp": int(self._now()), "appid": self.state.appid},
        }})

    async def link(self, request: web.Request) -> web.Response:
        """A URL Link opens the stand-in phone page, as a real one opens WeChat; a scheme is
        shaped like WeChat's (only a phone with WeChat could follow it)."""
        if request.query.get("access_token") != self._token:
            return self._error(40001, "invalid credential, access_token is invalid or not latest")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._error(47001, "data format error")
        target = body.get("jump_wxa", body) if isinstance(body, dict) else None
        query = target.get("query") if isinstance(target, dict) else None
        if not isinstance(query, str) or not query.startswith("s=") or len(query) > 34:
            return self._error(40212, "invalid query")
        if request.path.endswith("generate_urllink"):
            return web.json_response({"errcode": 0, "errmsg": "ok",
                                      "url_link": f"{self._public_url}/sandbox/phone?"
                                                  f"{query}&entry=1194"})
        return web.json_response({"errcode": 0, "errmsg": "ok",
                                  "openlink": f"weixin://dl/business/?t=sandbox{query[2:]}"})

    # --- the official account it plays -----------------------------------------------------

    def follower(self, nickname: str, unionid: bool) -> tuple[str, str | None]:
        """A test user as the account's follower: their own openid under the account, and the
        same unionid as in the mini program (one Open Platform account binds both)."""
        digest = hashlib.sha256(f"{self.state.secret}\0oa\0{nickname}".encode()).hexdigest()
        return "oa" + digest[:26], self.state.identity(nickname, unionid)[1]

    async def qrcode(self, request: web.Request) -> web.Response:
        if request.query.get("access_token") != self._token:
            return self._error(40001, "invalid credential, access_token is invalid or not latest")
        try:
            body = json.loads(await request.read())
            scene = body["action_info"]["scene"]["scene_str"]
        except (ValueError, KeyError, TypeError):
            return self._error(40053, "invalid action info")
        if not isinstance(scene, str) or not 0 < len(scene) <= 64:
            return self._error(40053, "invalid action info")
        return web.json_response({"ticket": "sandbox" + secrets.token_hex(8),
                                  "expire_seconds": body.get("expire_seconds", 60),
                                  "url": f"{self._public_url}/sandbox/oa?scene={scene}"})

    async def oa_user_info(self, request: web.Request) -> web.Response:
        if request.query.get("access_token") != self._token:
            return self._error(40001, "invalid credential, access_token is invalid or not latest")
        openid = request.query.get("openid", "")
        answer: dict[str, Any] = {"subscribe": 1, "openid": openid, "language": "zh_CN"}
        unionid = self._followers.get(openid)
        if unionid:
            answer["unionid"] = unionid
        return web.json_response(answer)

    async def deliver(self, request: web.Request) -> web.Response:
        """What WeChat does when a test user scans the account's QR: a signed, safe-mode event
        to the server's real callback; the passive reply comes back decrypted, for the page."""
        body = await _json_object(request)
        nickname, scene, event = body.get("nickname"), body.get("scene"), body.get("event")
        if (not isinstance(nickname, str) or not 0 < len(nickname.strip()) <= 32
                or not storable(nickname) or not isinstance(scene, str) or len(scene) > 64
                or event not in ("subscribe", "SCAN")):
            raise BadInput("Send a `nickname`, the `scene` and `event` subscribe or SCAN.")
        unionid = bool(body.get("unionid"))
        self.state.remember(nickname.strip(), unionid)
        openid, union = self.follower(nickname.strip(), unionid)
        if union:
            self._followers[openid] = union
        account = self.state.official_account()
        assert account.aes_key is not None
        key = f"qrscene_{scene}" if event == "subscribe" else scene
        xml = (f"<xml><ToUserName><![CDATA[gh_sandbox]]></ToUserName><FromUserName><![CDATA["
               f"{openid}]]></FromUserName><CreateTime>{int(self._now())}</CreateTime><MsgType>"
               f"<![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event><EventKey><![CDATA["
               f"{key}]]></EventKey></xml>")
        crypto = MessageCrypto(account.appid, account.aes_key)
        sealed = crypto.encrypt(xml)
        stamp, nonce = str(int(self._now())), secrets.token_hex(5)
        query = {"signature": signature(account.token, stamp, nonce), "timestamp": stamp,
                 "nonce": nonce, "encrypt_type": "aes",
                 "msg_signature": signature(account.token, stamp, nonce, sealed)}
        async with aiohttp.ClientSession() as http, http.post(
            f"{self._public_url}/wechat/oa", params=query,
            data=f"<xml><Encrypt><![CDATA[{sealed}]]></Encrypt></xml>".encode(),
        ) as answered:
            reply = await answered.text()
        if answered.status != 200 or reply == "success":
            return web.json_response({"reply": None, "status": answered.status})
        outer = defused.fromstring(reply)
        inner = defused.fromstring(crypto.decrypt(outer.findtext("Encrypt") or ""))
        return web.json_response({"reply": inner.findtext("Content") or ""})

    async def jscode2session(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("appid") != self.state.appid or not self._secret_is(query.get("secret", "")):
            return self._error(40125, "invalid appsecret")
        code = query.get("js_code", "")
        issued = self._codes.get(code)
        if issued is None or self._now() - issued.issued > CODE_LIFETIME:
            return self._error(40029, "invalid code")
        if code in self._used:
            return self._error(40163, "code been used")
        self._used.add(code)
        answer = {
            "openid": issued.openid,
            "session_key": base64.b64encode(issued.session_key).decode(),
        }
        if issued.unionid:
            answer["unionid"] = issued.unionid
        return web.Response(text=json.dumps(answer), content_type="text/plain")

    # --- what the mini program's runtime does on the phone --------------------------------------

    async def wx_login(self, request: web.Request) -> web.Response:
        """`wx.login()` for a test user: a fresh single-use code."""
        body = await _json_object(request)
        nickname = body.get("nickname")
        if (not isinstance(nickname, str) or not 0 < len(nickname.strip()) <= 32
                or not storable(nickname) or not nickname.isprintable()):
            raise BadInput("`nickname` must be 1 to 32 printable characters.")
        nickname = nickname.strip()
        unionid = bool(body.get("unionid"))
        self.state.remember(nickname, unionid)
        openid, union = self.state.identity(nickname, unionid)
        self._forget_old_codes()
        code = "sandbox" + secrets.token_hex(12)
        self._codes[code] = IssuedCode(openid, union, nickname, os.urandom(16), self._now())
        return web.json_response({"code": code})

    async def user_info(self, request: web.Request) -> web.Response:
        """`wx.getUserInfo()` after that `wx.login()`: the profile, encrypted with the session
        key WeChat gave that code, as the real runtime does."""
        body = await _json_object(request)
        issued = self._codes.get(str(body.get("code", "")))
        if issued is None:
            raise BadInput("That code was not issued by this sandbox.")
        data: dict[str, Any] = {
            "openId": issued.openid,
            "nickName": issued.nickname,
            "avatarUrl": "",
            "watermark": {"appid": self.state.appid, "timestamp": int(self._now())},
        }
        if issued.unionid:
            data["unionId"] = issued.unionid
        iv = os.urandom(16)
        return web.json_response({
            "iv": base64.b64encode(iv).decode(),
            "encryptedData": crypto.encrypt(issued.session_key, iv, data),
        })

    async def phone_code(self, request: web.Request) -> web.Response:
        """The getPhoneNumber button, tapped by the test user of a `wx.login` code: a one-time
        code for their number."""
        body = await _json_object(request)
        issued = self._codes.get(str(body.get("code", "")))
        if issued is None:
            raise BadInput("That code was not issued by this sandbox.")
        code = "sandboxphone" + secrets.token_hex(12)
        self._phone_codes[code] = (self.state.phone_of(issued.nickname), self._now())
        return web.json_response({"code": code, "phone": self.state.phone_of(issued.nickname)})

    async def users(self, _request: web.Request) -> web.Response:
        return web.json_response({"users": self.state.users})

    def _forget_old_codes(self) -> None:
        cutoff = self._now() - CODE_LIFETIME
        for code in [c for c, issued in self._codes.items() if issued.issued < cutoff]:
            del self._codes[code]
            self._used.discard(code)
        for code in [c for c, (_, at) in self._phone_codes.items() if at < cutoff]:
            del self._phone_codes[code]

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(f"{PREFIX}/cgi-bin/stable_token", self.stable_token),
            web.get(f"{PREFIX}/cgi-bin/token", self.token),
            web.post(f"{PREFIX}/wxa/getwxacodeunlimit", self.draw),
            web.get(f"{PREFIX}/sns/jscode2session", self.jscode2session),
            web.post(f"{PREFIX}/wxa/business/getuserphonenumber", self.phone_number),
            web.post(f"{PREFIX}/wxa/generate_urllink", self.link),
            web.post(f"{PREFIX}/wxa/generatescheme", self.link),
            web.post(f"{PREFIX}/_phone/login", self.wx_login),
            web.post(f"{PREFIX}/_phone/phonecode", self.phone_code),
            web.post(f"{PREFIX}/cgi-bin/qrcode/create", self.qrcode),
            web.get(f"{PREFIX}/cgi-bin/user/info", self.oa_user_info),
            web.post(f"{PREFIX}/_oa/deliver", self.deliver),
            web.post(f"{PREFIX}/_phone/userinfo", self.user_info),
            web.get(f"{PREFIX}/_phone/users", self.users),
        ]


def sandbox_code(url: str) -> bytes:
    """A standard QR code of `url` (segno), with "SANDBOX" written under its quiet zone (Pillow)
    so that nobody takes it for a real mini-program code."""
    drawn = io.BytesIO()
    segno.make(url, error="m").save(drawn, kind="png", scale=8, border=4, dark="#111111")
    qr = Image.open(drawn).convert("L")
    label_height = 28
    canvas = Image.new("L", (qr.width, qr.height + label_height), 255)
    canvas.paste(qr, (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=18)
    text = "SANDBOX"
    width = draw.textlength(text, font=font)
    draw.text(((qr.width - width) / 2, qr.height - 6), text, fill=90, font=font)
    out = io.BytesIO()
    canvas.save(out, "PNG", optimize=True)
    return out.getvalue()


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except ValueError:
        raise BadInput("The body must be a JSON object.") from None
    if not isinstance(body, dict):
        raise BadInput("The body must be a JSON object.")
    return body
