"""Every route the login answers, in one list: what the OpenAPI test holds the description to."""

from __future__ import annotations

from aiohttp import web

from . import admin, browser, miniprogram, official_account, oidc, openapi, ops, pages


def routes(*, sandbox: bool) -> list[web.AbstractRouteDef]:
    return [
        *pages.routes(sandbox),
        *admin.routes(),
        web.post("/api/scenes", browser.create_scene),
        web.get("/api/scenes/{scene}/code", browser.scene_code),
        web.get("/api/scenes/{scene}/link", browser.scene_link),
        web.get("/api/scenes/{scene}", browser.poll),
        web.get("/api/me", browser.me),
        web.post("/api/logout", browser.logout),
        web.post("/api/pushCode", miniprogram.push_code),
        web.post("/api/scenes/{scene}/scan", miniprogram.scan),
        web.post("/api/scenes/{scene}/deny", miniprogram.deny),
        web.post("/api/avatar", miniprogram.upload_avatar),
        web.post("/api/miniprogram/token", miniprogram.miniprogram_token),
        web.get("/api/avatars/{avatar}.jpg", miniprogram.avatar),
        web.get("/api/auth", ops.forward_auth),
        web.get("/healthz", ops.healthz),
        web.get("/wechat/oa", official_account.url_check, allow_head=False),
        web.post("/wechat/oa", official_account.event),
        web.get("/oa/confirm/{token}", official_account.confirm_page, allow_head=False),
        web.post("/oa/confirm/{token}", official_account.confirm_page),
        web.get("/api/openapi.json", openapi.openapi),
        web.get("/metrics", ops.metrics),
        web.get("/.well-known/openid-configuration", oidc.discovery),
        web.get("/oidc/jwks", oidc.jwks),
        web.get("/oidc/authorize", oidc.authorize, allow_head=False),
        web.post("/oidc/authorize", oidc.authorize),
        web.post("/oidc/token", oidc.token),
        web.get("/oidc/userinfo", oidc.userinfo, allow_head=False),
        web.get("/oidc/logout", oidc.end_session, allow_head=False),
        web.post("/oidc/logout", oidc.end_session),
        web.post("/oidc/userinfo", oidc.userinfo),
    ]
