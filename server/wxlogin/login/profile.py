"""A person's profile as the phone sends it: plain fields, or WeChat's encrypted user data."""

from __future__ import annotations

from datetime import datetime

from ..errors import InvalidEncryptedData
from ..storage.queries import PLACEHOLDER_NICKNAMES
from ..wechat import crypto
from ..wechat.client import WxSession

MAX_NICKNAME = 64


def https_only(value: str | None) -> str | None:
    """Only an https URL is kept: WeChat's temporary local paths (wxfile://, http://tmp/) and
    anything else are dropped rather than stored."""
    return value if value and value.startswith("https://") else None


def read_profile(
    wx: WxSession,
    *,
    appid: str,
    nickname: str | None,
    avatar_url: str | None,
    iv: str | None,
    encrypted: str | None,
    now: datetime,
    max_age: int,
) -> crypto.Profile:
    """The profile to keep: decrypted data (checked against WeChat's answer to the code) wins over
    the plain fields, except for getUserInfo's anonymised placeholder, which is no profile."""
    profile = crypto.Profile(nickname, avatar_url)
    if iv is None or encrypted is None:
        return profile
    try:
        decrypted = crypto.decrypt_profile(
            wx.session_key, iv, encrypted, appid=appid, openid=wx.openid, unionid=wx.unionid,
            now=now, max_age=max_age,
        )
    except crypto.DecryptError:
        raise InvalidEncryptedData() from None
    if decrypted.nickname in PLACEHOLDER_NICKNAMES:
        decrypted = crypto.Profile(None, None)
    return crypto.Profile(
        (decrypted.nickname or "")[:MAX_NICKNAME] or nickname,
        https_only(decrypted.avatar_url) or avatar_url,
    )
