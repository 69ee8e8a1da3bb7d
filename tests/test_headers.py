"""Browser-facing defences on every answer: CSP without inline script, frame-ancestors 'none',
nosniff, Referrer-Policy, HSTS under https, no CORS; foreign Origins refused on every change."""

from __future__ import annotations

import asyncpg
import pytest

from tests.conftest import MakeBrowser, MakeServer
from tests.fakewechat import FakeWeChat
from tests.helpers import new_scene

EVIL = {"Origin": "https://evil.example"}


async def test_every_kind_of_answer_carries_the_headers(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    server = await make_server()
    b1 = await browser(server)
    scene = await new_scene(b1)
    answers = {
        "json": await b1.get(f"/api/scenes/{scene}?wait=0"),
        "image": await b1.get(f"/api/scenes/{scene}/code"),
        "error": await b1.get("/api/nothing-here"),
        "html": await b1.get("/login"),
        "script": await b1.get("/static/wxlogin.js"),
        "redirect": await b1.get("/account", allow_redirects=False),
        "health": await b1.get("/healthz"),
    }
    assert answers["redirect"].status == 302 and answers["error"].status == 404
    for kind, response in answers.items():
        headers = response.headers
        csp = headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, kind
        assert headers.get("X-Content-Type-Options") == "nosniff", kind
        assert headers.get("Referrer-Policy") == "same-origin", kind
        assert "Strict-Transport-Security" not in headers, kind  # plain http
        assert not [h for h in headers if h.lower().startswith("access-control-")], kind
    assert "script-src 'self'" in answers["html"].headers["Content-Security-Policy"]
    assert answers["json"].headers["Content-Security-Policy"].startswith("default-src 'none'")


async def test_hsts_when_served_over_https(make_server: MakeServer, browser: MakeBrowser) -> None:
    server = await make_server(public_url="https://login.example.com")
    b1 = await browser(server)
    for path in ("/login", "/healthz", "/api/me"):
        response = await b1.get(path)
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000", path


@pytest.mark.parametrize(("path", "body"), [
    ("/api/scenes", None),
    ("/api/logout", None),
    ("/api/pushCode", {"scene": "SCENE", "code": "CODE"}),
    ("/api/scenes/SCENE/scan", {"code": "CODE"}),
    ("/api/scenes/SCENE/deny", {"code": "CODE"}),
])
async def test_a_foreign_origin_changes_nothing(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat,
    db: asyncpg.Connection[asyncpg.Record], path: str, body: dict[str, str] | None,
) -> None:
    server = await make_server()
    owner = await browser(server)
    scene = await new_scene(owner)
    victim = await browser(server)
    code = fw.mint()
    payload = None
    if body is not None:
        payload = {k: {"SCENE": scene, "CODE": code}.get(v, v) for k, v in body.items()}
    response = await victim.post(path.replace("SCENE", scene), json=payload, headers=EVIL)
    assert response.status == 403
    assert (await response.json())["error"] == "forbidden_origin"
    assert await db.fetchval("SELECT status FROM wxlogin.scenes") == "pending"
    assert await db.fetchval("SELECT count(*) FROM wxlogin.scenes") == 1
    assert sum(fw.code_calls.values()) == 0  # WeChat was never asked
