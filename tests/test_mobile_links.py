"""`GET /api/scenes/{scene}/link`: a link that opens the mini program from the phone's own
browser, made once per scene, and WeChat's refusals remembered so the page falls back at once."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.conftest import MakeBrowser, MakeServer
from tests.fakewechat import APPID, FakeWeChat, Fault
from tests.helpers import new_scene, push


async def test_a_url_link_is_made_once_per_scene_for_its_owner_only(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat,
) -> None:
    server = await make_server()
    desk = await browser(server)
    scene = await new_scene(desk)
    first = await desk.get(f"/api/scenes/{scene}/link")
    assert first.status == 200
    body = await first.json()
    assert body["kind"] == "url_link" and body["url"].startswith("https://wxaurl.cn/")
    again = await (await desk.get(f"/api/scenes/{scene}/link")).json()
    assert again == body and fw.calls["generate_urllink"] == 1
    asked = fw.links[0]
    assert asked["query"] == f"s={scene}" and asked["path"] == "pages/login/login"
    assert asked["expire_type"] == 1 and asked["env_version"] == "release"

    stranger = await browser(server)
    foreign = await stranger.get(f"/api/scenes/{scene}/link")
    assert foreign.status == 404 and (await foreign.json())["error"] == "scene_not_found"
    assert (await push(await browser(server), scene, fw.mint("x"))).status == 200
    closed = await desk.get(f"/api/scenes/{scene}/link")
    assert closed.status == 410 and (await closed.json())["error"] == "scene_closed"


async def test_a_scheme_or_a_plain_scheme(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat,
) -> None:
    server = await make_server(mobile_link="scheme")
    desk = await browser(server)
    scene = await new_scene(desk)
    body = await (await desk.get(f"/api/scenes/{scene}/link")).json()
    assert body["kind"] == "scheme" and body["url"].startswith("weixin://dl/business/?t=")
    assert fw.links[0]["jump_wxa"]["query"] == f"s={scene}"

    plain = await make_server(mobile_link="plain")
    desk = await browser(plain)
    scene = await new_scene(desk)
    body = await (await desk.get(f"/api/scenes/{scene}/link")).json()
    assert body["kind"] == "plain"
    parts = urlsplit(body["url"])
    assert (parts.scheme, parts.netloc, parts.path) == ("weixin", "dl", "/business/")
    query = parse_qs(parts.query)
    assert query["appid"] == [APPID] and query["query"] == [f"s={scene}"]
    assert fw.calls["generatescheme"] == 1  # the plain one asked WeChat nothing


async def test_a_refusal_is_remembered_and_answered_at_once(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat,
) -> None:
    server = await make_server()
    desk = await browser(server)
    fw.fail("generate_urllink", Fault(errcode=40002))  # an individual mini program
    scene = await new_scene(desk)
    refused = await desk.get(f"/api/scenes/{scene}/link")
    assert refused.status == 409 and (await refused.json())["error"] == "link_unavailable"
    assert int(refused.headers["Retry-After"]) > 3600
    other = await browser(server)
    scene = await new_scene(other)
    again = await other.get(f"/api/scenes/{scene}/link")
    assert again.status == 409 and (await again.json())["error"] == "link_unavailable"
    assert fw.calls["generate_urllink"] == 1  # not asked again
    code = await other.get(f"/api/scenes/{scene}/code")
    assert code.status == 200  # the code still works
