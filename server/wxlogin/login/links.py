"""Links that open the mini program on a scene from a phone's own browser (WECHAT.md 10).

A scene's link is made once, like its code, and kept with the scene. WeChat refuses them to
individual mini programs (40002), unpublished ones (85079) and over quota: a refusal is kept per
mini program and kind until it may change, so the server stops asking and the page falls back
to the code at once.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote, urlencode

from ..errors import LinkUnavailable, SceneClosed, SceneExpired
from ..storage.db import acquire
from ..wechat.client import LinkRefused, WeChat
from . import scenes
from .operations import Login, owned


def plain_scheme(appid: str, page: str, env_version: str, scene: str) -> str:
    """The plain scheme needs no API call (the page must be enabled for it in the console)."""
    query = urlencode({"appid": appid, "path": page, "query": f"s={scene}",
                       "env_version": env_version}, quote_via=quote)
    return f"weixin://dl/business/?{query}"


async def mobile_link(login: Login, scene: str, owner: str | None, *, kind: str,
                      wechat: WeChat, page: str, env_version: str) -> str:
    """The scene's link of `kind` for its owner, while it is open; LinkUnavailable when WeChat
    will not make one."""
    found = await owned(login, scene, owner)
    now = login.clock.now()
    state = found.state(now)
    if state == "expired":
        raise SceneExpired()
    if state not in scenes.OPEN:
        raise SceneClosed()
    async with acquire(login.pool) as conn:
        kept = await conn.fetchrow(
            "SELECT s.link, s.link_kind, r.until FROM wxlogin.scenes s"
            " LEFT JOIN wxlogin.link_refusals r ON r.appid = $2 AND r.kind = $3 AND r.until > $4"
            " WHERE s.scene = $1",
            scene, wechat.appid, kind, now,
        )
    if kept is not None and kept["link"] and kept["link_kind"] == kind:
        return str(kept["link"])
    if kept is not None and kept["until"] is not None:
        wait = max(1, int((kept["until"] - now).total_seconds()))
        raise LinkUnavailable(headers={"Retry-After": str(wait)})
    if kind == "plain":
        link = plain_scheme(wechat.appid, page, env_version, scene)
    else:
        try:
            link = await wechat.mobile_link(kind, scene)
        except LinkRefused as refused:
            async with acquire(login.pool) as conn:
                await conn.execute(
                    "INSERT INTO wxlogin.link_refusals (appid, kind, errcode, until)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT (appid, kind) DO UPDATE"
                    " SET errcode = EXCLUDED.errcode, until = EXCLUDED.until",
                    wechat.appid, kind, refused.errcode,
                    now + timedelta(seconds=refused.wait),
                )
            raise LinkUnavailable(headers={"Retry-After": str(refused.wait)}) from None
    async with acquire(login.pool) as conn:
        # The first link made is the scene's (two at once: both valid, one kept).
        kept_link = await conn.fetchval(
            "UPDATE wxlogin.scenes SET link = CASE WHEN link_kind = $3 THEN"
            " COALESCE(link, $2) ELSE $2 END, link_kind = $3 WHERE scene = $1 RETURNING link",
            scene, link, kind,
        )
    return str(kept_link or link)
