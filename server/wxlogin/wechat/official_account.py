"""The official account's side of WeChat's API (WECHAT.md 11): its own access token (shared
across processes like the mini program's), the temporary QR that stands for a scene, and the
follower's unionid.

It is a `WeChatClient` whose "code" is the account's temporary QR: `qrcode/create` with
`QR_STR_SCENE` answers a `url`, drawn into a PNG here (segno), so the rest of the login (the
drawer that draws once per scene, the page that shows it) treats it like a mini-program code.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import segno

from ..errors import WeChatError
from .client import CodeImage, WeChatClient, WxSession

log = logging.getLogger("wxlogin.wechat")


def qr_png(url: str) -> bytes:
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="png", scale=8, border=4, dark="#111111")
    return out.getvalue()


class OfficialAccountClient(WeChatClient):
    def __init__(self, *, ttl: int, **kwargs: Any) -> None:
        super().__init__(page="", env_version="release", **kwargs)
        self._ttl = ttl

    async def draw_code(self, scene: str) -> CodeImage:
        payload = {"expire_seconds": self._ttl, "action_name": "QR_STR_SCENE",
                   "action_info": {"scene": {"scene_str": scene}}}

        async def call(token: str) -> CodeImage:
            async with self._observed("qrcode_create"):
                body = await self._request(
                    "qrcode_create", "POST", "/cgi-bin/qrcode/create",
                    params={"access_token": token}, json=payload,
                )
                answer = self._json("qrcode_create", body)
                self._check("qrcode_create", answer)
                url = answer.get("url")
                if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                    log.error("wechat qrcode/create answered no url")
                    raise WeChatError()
                return CodeImage(qr_png(url), "image/png")

        result: CodeImage = await self._deadline(self._with_token(call))
        return result

    async def unionid(self, openid: str) -> str | None:
        """The follower's unionid, when the account is bound to an Open Platform account (then
        the same person as the mini program's users); None otherwise."""

        async def call(token: str) -> str | None:
            async with self._observed("user_info"):
                body = await self._request(
                    "user_info", "GET", "/cgi-bin/user/info",
                    params={"access_token": token, "openid": openid, "lang": "zh_CN"},
                )
                answer = self._json("user_info", body)
                self._check("user_info", answer)
                found = answer.get("unionid")
                return found if isinstance(found, str) and found else None

        result: str | None = await self._deadline(self._with_token(call))
        return result

    async def code2session(self, code: str) -> WxSession:
        raise WeChatError("An official account has no wx.login codes.")
