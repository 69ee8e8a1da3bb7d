"""An HTTP stand-in for WeChat's API, the only fake in the suite.

It speaks the real wire shapes (errors as JSON with HTTP 200, raw image bytes on success), makes
codes single-use (a second use gets 40163), counts calls per endpoint and per code, and runs fault
plans: queued errcodes, delays, dropped connections, malformed bodies.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image

from wxlogin.wechat import crypto

APPID = "wx0000000000000001"
SECRET = "app-secret-canary-7d1c0ffee"


@dataclass
class CodeUser:
    appid: str
    openid: str
    unionid: str | None
    session_key: bytes
    nickname: str = ""


@dataclass
class Fault:
    errcode: int | None = None
    delay: float = 0.0
    drop: bool = False
    http_status: int | None = None
    body: bytes | None = None


def tiny_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 128, 0)).save(out, "PNG")
    return out.getvalue()


@dataclass
class FakeWeChat:
    apps: dict[str, str] = field(default_factory=lambda: {APPID: SECRET})
    codes: dict[str, CodeUser] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    calls: Counter[str] = field(default_factory=Counter)
    code_calls: Counter[str] = field(default_factory=Counter)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    drawn: list[dict[str, Any]] = field(default_factory=list)
    image: bytes = field(default_factory=tiny_png)
    has_stable_token: bool = True
    url: str = ""
    phone_codes: dict[str, tuple[str, str]] = field(default_factory=dict)  # code: (appid, pure)
    links: list[dict[str, Any]] = field(default_factory=list)  # what generate_* were asked
    country_as_number: bool = False  # WeChat's example gives countryCode as 86, not "86"
    unionids: dict[str, str] = field(default_factory=dict)  # a follower's openid: unionid
    qrcodes: list[dict[str, Any]] = field(default_factory=list)  # what qrcode/create was asked

    # --- test controls -------------------------------------------------------------------------

    def mint(
        self,
        openid: str | None = None,
        unionid: str | None = None,
        *,
        appid: str = APPID,
        session_key: bytes | None = None,
    ) -> str:
        code = "c" + secrets.token_hex(15)
        self.codes[code] = CodeUser(
            appid, openid or "o" + secrets.token_hex(12), unionid, session_key or os.urandom(16)
        )
        return code

    def encrypt(
        self, code: str, data: dict[str, Any], *, iv: bytes | None = None
    ) -> dict[str, str]:
        vector = iv or os.urandom(16)
        return {
            "iv": base64.b64encode(vector).decode(),
            "encryptedData": crypto.encrypt(self.codes[code].session_key, vector, data),
        }

    def mint_phone(self, number: str = "13800138000", *, appid: str = APPID) -> str:
        """What the getPhoneNumber button hands the mini program: a one-time code."""
        code = "p" + secrets.token_hex(15)
        self.phone_codes[code] = (appid, number)
        return code

    def fail(self, endpoint: str, *faults: Fault) -> None:
        self.faults.setdefault(endpoint, []).extend(faults)

    def revoke_tokens(self) -> None:
        self.revoked.update(self.tokens.values())
        self.tokens.clear()

    # --- the API -------------------------------------------------------------------------------

    async def _fault(self, endpoint: str, request: web.Request) -> web.StreamResponse | None:
        plan = self.faults.get(endpoint)
        if not plan:
            return None
        fault = plan.pop(0)
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.drop:
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if fault.http_status is not None:
            return web.Response(status=fault.http_status, text="upstream trouble")
        if fault.body is not None:
            return web.Response(body=fault.body, content_type="application/json")
        if fault.errcode is not None:
            return self._error(fault.errcode)
        return None

    @staticmethod
    def _error(errcode: int) -> web.Response:
        return web.json_response(
            {"errcode": errcode, "errmsg": f"fake error rid: {secrets.token_hex(4)}"}
        )

    def _token_for(self, appid: str) -> str:
        if appid not in self.tokens:
            self.tokens[appid] = "ACCESS_TOKEN_canary_" + secrets.token_hex(16)
        return self.tokens[appid]

    async def stable_token(self, request: web.Request) -> web.StreamResponse:
        if not self.has_stable_token:
            raise web.HTTPNotFound()
        self.calls["stable_token"] += 1
        body = json.loads(await request.read())
        if body.get("force_refresh"):
            self.calls["force_refresh"] += 1
        if (faulty := await self._fault("stable_token", request)) is not None:
            return faulty
        if self.apps.get(body.get("appid")) != body.get("secret"):
            return self._error(40125)
        return web.json_response(
            {"access_token": self._token_for(body["appid"]), "expires_in": 7200}
        )

    async def token(self, request: web.Request) -> web.StreamResponse:
        self.calls["token"] += 1
        if (faulty := await self._fault("token", request)) is not None:
            return faulty
        query = request.query
        if self.apps.get(query.get("appid", "")) != query.get("secret"):
            return self._error(40125)
        self.tokens.pop(query["appid"], None)  # cgi-bin/token mints a new one every time
        return web.json_response(
            {"access_token": self._token_for(query["appid"]), "expires_in": 7200}
        )

    async def draw(self, request: web.Request) -> web.StreamResponse:
        self.calls["getwxacodeunlimit"] += 1
        if (faulty := await self._fault("getwxacodeunlimit", request)) is not None:
            return faulty
        token = request.query.get("access_token", "")
        if token not in self.tokens.values():
            return self._error(40001)
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._error(47001)
        self.drawn.append(body)
        return web.Response(body=self.image, content_type="image/jpeg")  # WeChat's label

    async def jscode2session(self, request: web.Request) -> web.StreamResponse:
        self.calls["jscode2session"] += 1
        query = request.query
        code = query.get("js_code", "")
        self.code_calls[code] += 1
        if (faulty := await self._fault("jscode2session", request)) is not None:
            return faulty
        if self.apps.get(query.get("appid", "")) != query.get("secret"):
            return self._error(40125)
        user = self.codes.get(code)
        if user is None or user.appid != query.get("appid"):
            return self._error(40029)
        if code in self.used:
            return self._error(40163)
        self.used.add(code)
        answer: dict[str, Any] = {
            "openid": user.openid,
            "session_key": base64.b64encode(user.session_key).decode(),
        }
        if user.unionid:
            answer["unionid"] = user.unionid
        return web.Response(text=json.dumps(answer), content_type="text/plain")

    def _appid_of(self, request: web.Request) -> str | None:
        token = request.query.get("access_token", "")
        found = [appid for appid, t in self.tokens.items() if t == token]
        return found[0] if found else None

    async def _enter(self, api: str, request: web.Request) -> web.StreamResponse | str:
        """What every call with an access token does first: counted, its fault plan run, its
        token checked. The answer to send, or the appid the token belongs to."""
        self.calls[api] += 1
        if (faulty := await self._fault(api, request)) is not None:
            return faulty
        appid = self._appid_of(request)
        return self._error(40001) if appid is None else appid

    async def phone_number(self, request: web.Request) -> web.StreamResponse:
        appid = await self._enter("getuserphonenumber", request)
        if not isinstance(appid, str):
            return appid
        try:
            code = json.loads(await request.read()).get("code")
        except (ValueError, AttributeError):
            return self._error(47001)
        found = self.phone_codes.pop(code, None) if isinstance(code, str) else None
        if found is None:
            return self._error(40029)
        if found[0] != appid:
            return self._error(40013)
        country: int | str = 86 if self.country_as_number else "86"
        return web.json_response({"errcode": 0, "errmsg": "ok", "phone_info": {
            "phoneNumber": found[1], "purePhoneNumber": found[1], "countryCode": country,
            "watermark": {"timestamp": 1700000000, "appid": appid},
        }})

    async def link(self, request: web.Request) -> web.StreamResponse:
        kind = request.path.rsplit("/", 1)[1]
        if not isinstance(entered := await self._enter(kind, request), str):
            return entered
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._error(47001)
        self.links.append({"kind": kind, **body})
        ticket = secrets.token_urlsafe(12)
        if kind == "generate_urllink":
            return web.json_response({"errcode": 0, "errmsg": "ok",
                                      "url_link": f"https://wxaurl.cn/{ticket}"})
        return web.json_response({"errcode": 0, "errmsg": "ok",
                                  "openlink": f"weixin://dl/business/?t={ticket}"})

    async def qrcode(self, request: web.Request) -> web.StreamResponse:
        if not isinstance(entered := await self._enter("qrcode_create", request), str):
            return entered
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._error(47001)
        self.qrcodes.append(body)
        ticket = "gQ" + secrets.token_urlsafe(24)
        return web.json_response({"ticket": ticket, "expire_seconds": body.get("expire_seconds"),
                                  "url": f"http://weixin.qq.com/q/{ticket}"})

    async def user_info(self, request: web.Request) -> web.StreamResponse:
        if not isinstance(entered := await self._enter("user_info", request), str):
            return entered
        openid = request.query.get("openid", "")
        answer: dict[str, Any] = {"subscribe": 1, "openid": openid, "language": "zh_CN"}
        if openid in self.unionids:
            answer["unionid"] = self.unionids[openid]
        return web.json_response(answer)

    async def control_mint(self, request: web.Request) -> web.Response:
        """Test control, not WeChat's: what `wx.login` would hand the mini program."""
        body = await request.json() if request.body_exists else {}
        code = self.mint(body.get("openid"), body.get("unionid"), appid=body.get("appid", APPID))
        return web.json_response({"code": code})

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes(
            [
                web.post("/_fake/mint", self.control_mint),
                web.post("/cgi-bin/stable_token", self.stable_token),
                web.get("/cgi-bin/token", self.token),
                web.post("/wxa/getwxacodeunlimit", self.draw),
                web.get("/sns/jscode2session", self.jscode2session),
                web.post("/wxa/business/getuserphonenumber", self.phone_number),
                web.post("/wxa/generate_urllink", self.link),
                web.post("/wxa/generatescheme", self.link),
                web.post("/cgi-bin/qrcode/create", self.qrcode),
                web.get("/cgi-bin/user/info", self.user_info),
            ]
        )
        return app


def main() -> None:
    """`python -m tests.fakewechat [PORT]`: the stand-in on its own, for driving a real
    `./scripts/serve` by hand. `POST /_fake/mint {"openid"?, "unionid"?}` plays `wx.login`."""
    import sys

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9100
    print(f"fake WeChat on http://127.0.0.1:{port} (appid {APPID}, secret {SECRET})")
    web.run_app(FakeWeChat().app(), host="127.0.0.1", port=port, print=None)


if __name__ == "__main__":
    main()
