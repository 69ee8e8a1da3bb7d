"""The OpenAPI description (server/wxlogin/http/openapi.py), held to the server.

It is valid OpenAPI 3.1; its operations are exactly the app's API routes; its error codes have the
server's statuses; every success answer of a whole login matches it; and a live server (the real
PostgreSQL, the WeChat stand-in) fuzzed by schemathesis never answers 5xx, nor a status, content
type, header or body the description does not give.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from aiohttp import FormData, web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from PIL import Image
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Ok

from tests.conftest import MakeBrowser, MakeServer
from tests.fakewechat import FakeWeChat, Fault
from tests.helpers import api_error_codes, new_scene, poll, push, session_cookie, step
from wxlogin import errors
from wxlogin.clock import FakeClock
from wxlogin.http import openapi, openapi_schema
from wxlogin.http.app import create_app
from wxlogin.login.scenes import valid_scene
from wxlogin.settings import Settings

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]
DOCUMENT = openapi.document()
OPERATIONS = [(method.upper(), path) for path, item in DOCUMENT["paths"].items() for method in item]
# Not API: the HTML pages, their scripts and styles, and sandbox mode's stand-ins.
PAGES = {"/", "/login", "/account", "/invite/{token}"}
# The owner's page and its form actions (303 or a page on success, JSON errors otherwise).
NOT_API = ("/static", "/sandbox/", "/admin", "/api/admin/", "/wechat/", "/oa/confirm/")
# Being added beside this description; described already, so its route must come.
EXPECTED = {("GET", "/metrics")}


def api_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route but the pages, aiohttp's `{name:regex}` as `{name}`."""
    found = set()
    for route in app.router.routes():
        assert route.resource is not None
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", route.resource.canonical)
        if route.method == "HEAD" or path in PAGES or path.startswith(NOT_API):
            continue
        found.add((route.method, path))
    return found


# --- the document ------------------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1() -> None:
    for base in ("", "/wxlogin"):
        document = openapi.document(base)
        validate(document, cls=OpenAPIV31SpecValidator)
        assert document["openapi"].startswith("3.1")
        assert document["servers"] == [{"url": base or "/", "description": "this server"}]
    operations = list(schemathesis.openapi.from_dict(openapi.document()).get_all_operations())
    assert len(operations) == len(OPERATIONS)
    assert all(isinstance(operation, Ok) for operation in operations)


@pytest.mark.parametrize("sandbox", [False, True], ids=["credentials", "sandbox"])
def test_it_describes_exactly_the_api_routes(
    settings: Settings, clock: FakeClock, sandbox: bool
) -> None:
    if sandbox:
        settings = replace(settings, appid=None, secret=None)
    app = create_app(settings, clock=clock)
    described = set(OPERATIONS)
    assert api_routes(app) | EXPECTED == described, (
        "a route to describe in wxlogin/http/openapi.py (or to list in PAGES here if it is a page)"
    )


def test_the_pages_are_left_out_on_purpose() -> None:
    description = DOCUMENT["info"]["description"]
    for page in ("`/login`", "`/`", "`/account`", "`/static/…`", "`/sandbox/…`"):
        assert page in description
    assert not any(path in PAGES or path.startswith(NOT_API) for _, path in OPERATIONS)


def test_every_error_code_has_the_servers_status() -> None:
    def subclasses(cls: type[errors.ApiError]) -> Iterator[type[errors.ApiError]]:
        for child in cls.__subclasses__():
            yield child
            yield from subclasses(child)

    classes: list[type[errors.ApiError]] = [errors.ApiError, *subclasses(errors.ApiError)]
    for cls in classes:
        if cls.code != "scene_conflict":  # abstract
            assert openapi_schema.ERRORS[cls.code][0] == cls.status, cls
    for status, (code, _) in errors._HTTP_CODES.items():
        assert openapi_schema.ERRORS[code][0] == status
    served = api_error_codes() | {code for code, _ in errors._HTTP_CODES.values()}
    assert set(openapi_schema.ERRORS) == served
    assert DOCUMENT["components"]["schemas"]["Error"]["properties"]["error"]["enum"] == sorted(
        served
    )


def test_error_answers_say_retry_after_where_the_server_does() -> None:
    for item in DOCUMENT["paths"].values():
        for operation in item.values():
            for status, response in operation["responses"].items():
                headers = response.get("headers", {})
                assert ("Retry-After" in headers) == (status in ("429", "503")), operation


@hypothesis.settings(max_examples=300, deadline=None)
@given(st.text(max_size=40) | st.from_regex(r"[0-9A-Za-z]{1,32}", fullmatch=True))
def test_the_scene_pattern_is_the_servers(value: str) -> None:
    pattern = openapi.SCENE["pattern"]
    matched = re.fullmatch(pattern.removeprefix("^").removesuffix("$"), value) is not None
    assert matched == valid_scene(value)


async def test_it_is_served_with_the_base_path(
    aiohttp_client: Any, settings: Settings, clock: FakeClock
) -> None:
    host = web.Application()
    host.add_subapp("/wxlogin", create_app(settings, clock=clock, base="/wxlogin"))
    client = await aiohttp_client(host)
    response = await client.get("/wxlogin/api/openapi.json")
    assert response.status == 200 and response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert await response.json() == openapi.document("/wxlogin")


# --- a whole login, every answer checked against the description -------------------------------


def image(kind: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(out, kind)
    return out.getvalue()


IMAGES = [image(kind) for kind in ("PNG", "JPEG", "GIF", "WEBP")]


class Api:
    """Calls described operations with schemathesis and checks each answer against the
    description; synchronous (`requests`), so it runs in a thread beside the served app."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.schema = schemathesis.openapi.from_dict(openapi.document())

    def __call__(
        self, method: str, path: str, expect: int, *, session: requests.Session | None = None,
        error: str | None = None, **parts: Any,
    ) -> Any:
        case = self.schema[path][method].Case(**parts)
        with requests.Session() as own:
            response = case.call(base_url=self.base_url, session=session or own, timeout=20)
        # A 5xx asked for (WeChat's trouble) is still described: every other check holds.
        case.validate_response(response, checks=CHECKS if expect < 500 else CHECKS[1:])
        assert response.status_code == expect, response.text
        assert error is None or response.json()["error"] == error, response.text
        return response


def a_whole_login(api: Api, browser: requests.Session, mint: Callable[[str], str]) -> None:
    """Every step, as the login page and the mini program take them, and a few refusals."""
    scenes = "/api/scenes/{scene}"

    def phone(path: str, expect: int, scene: str, code: str) -> Any:
        return api("POST", path, expect, path_parameters={"scene": scene}, body={"code": code},
                   media_type=openapi_schema.JSON)

    api("GET", "/api/me", 401, session=browser)
    scene = api("POST", "/api/scenes", 201, session=browser).json()["scene"]
    api("GET", f"{scenes}/code", 200, session=browser, path_parameters={"scene": scene})
    api("GET", scenes, 200, session=browser, path_parameters={"scene": scene},
        query={"wait": 0})
    api("GET", scenes, 404, path_parameters={"scene": scene}, query={"wait": 0})  # not its owner
    claim = mint("o-ada")
    phone(f"{scenes}/scan", 200, scene, claim)
    phone(f"{scenes}/scan", 200, scene, claim)  # the very same request: the same answer
    phone(f"{scenes}/scan", 409, scene, mint("o-eve"))  # someone else
    avatar = api("POST", "/api/avatar", 200, media_type=openapi_schema.MULTIPART,
                 body={"scene": scene, "code": mint("o-ada"), "avatar": IMAGES[0]}).json()
    api("GET", scenes, 200, session=browser, path_parameters={"scene": scene},
        query={"wait": 0, "since": "pending"})
    pushed = api("POST", "/api/pushCode", 200, media_type=openapi_schema.FORM,
                 body={"scene": scene, "code": mint("o-ada"), "nickName": "Ada"}).json()
    assert pushed["user"]["avatar_url"] == avatar["avatar_url"]
    answer = api("GET", scenes, 200, session=browser, path_parameters={"scene": scene},
                 query={"wait": 0, "since": "scanned"})
    assert answer.json()["user"] == pushed["user"] and "set-cookie" in answer.headers
    api("GET", f"{scenes}/code", 410, session=browser, path_parameters={"scene": scene})
    api("GET", "/api/me", 200, session=browser)
    api("GET", "/api/auth", 200, session=browser)
    api("GET", "/api/avatars/{avatar}.jpg", 200, path_parameters={
        "avatar": avatar["avatar_url"].rsplit("/", 1)[1].removesuffix(".jpg"),
    })
    other = api("POST", "/api/scenes", 201, session=browser).json()["scene"]
    phone(f"{scenes}/deny", 409, other, mint("o-ada"))  # nobody scanned it
    phone(f"{scenes}/deny", 400, other, claim)  # a code spent on another scene
    phone(f"{scenes}/scan", 200, other, mint("o-ada"))
    phone(f"{scenes}/deny", 200, other, mint("o-ada"))
    api("POST", "/api/logout", 204, session=browser)
    api("GET", "/api/auth", 401, session=browser)
    api("GET", "/healthz", 200)
    api("GET", "/metrics", 200)
    assert api("GET", "/api/openapi.json", 200).json() == DOCUMENT


async def test_every_answer_of_a_whole_login_is_as_described(
    server: TestServer, fw: FakeWeChat
) -> None:
    with requests.Session() as browser:
        await asyncio.to_thread(a_whole_login, Api(base(server)), browser, fw.mint)


def refusals(api: Api, browser: requests.Session, mint: Callable[[str], str],
             fail: Callable[..., None], clock: FakeClock) -> None:
    """Answers the happy path never gives: WeChat's trouble, other sites, big bodies, expiry."""
    scene = api("POST", "/api/scenes", 201, session=browser).json()["scene"]
    at: dict[str, Any] = {"path_parameters": {"scene": scene}}
    api("POST", "/api/scenes", 403, headers={"Origin": "https://elsewhere.example"},
        error="forbidden_origin")
    api("GET", "/api/scenes/{scene}", 403, session=browser, query={"wait": 0},
        headers={"Sec-Fetch-Site": "cross-site"}, error="forbidden_origin", **at)
    for fault, status, error in ((Fault(errcode=45009), 503, "wechat_busy"),
                                 (Fault(errcode=41030), 502, "wechat_error"),
                                 (Fault(drop=True), 504, "wechat_unreachable")):
        fail("getwxacodeunlimit", fault)
        api("GET", "/api/scenes/{scene}/code", status, session=browser, error=error, **at)
    api("GET", "/api/scenes/{scene}/code", 200, session=browser, **at)

    def scan(status: int, error: str, code: str) -> None:
        api("POST", "/api/scenes/{scene}/scan", status, body={"code": code},
            media_type=openapi_schema.JSON, error=error, **at)

    for fault, status, error in ((Fault(errcode=-1), 503, "wechat_busy"),
                                 (Fault(drop=True), 504, "wechat_unreachable"),
                                 (Fault(errcode=40163), 400, "code_rejected"),
                                 (Fault(errcode=99999), 502, "wechat_error")):
        fail("jscode2session", fault)
        scan(status, error, mint("o-ada"))
    scan(400, "code_rejected", "never-minted")
    scan(400, "bad_request", "")
    api("POST", "/api/pushCode", 413, media_type=openapi_schema.JSON, error="body_too_large",
        body={"scene": scene, "code": mint("o-ada"), "nickName": "x" * 70_000})
    api("POST", "/api/pushCode", 400, media_type=openapi_schema.JSON,
        error="invalid_encrypted_data",
        body={"scene": scene, "code": mint("o-ada"), "iv": "AAAAAAAAAAAAAAAAAAAAAA==",
              "encryptedData": "AAAAAAAAAAAAAAAAAAAAAA=="})
    clock.advance(3600)
    api("GET", "/api/scenes/{scene}/code", 410, session=browser, error="scene_expired", **at)
    api("GET", "/api/scenes/{scene}", 200, session=browser, query={"wait": 0}, **at)
    scan(410, "scene_expired", mint("o-ada"))


async def test_refusals_are_as_described(
    server: TestServer, fw: FakeWeChat, clock: FakeClock
) -> None:
    with requests.Session() as browser:
        await asyncio.to_thread(refusals, Api(base(server)), browser, fw.mint, fw.fail, clock)


@pytest.mark.parametrize("limit", ["scenes_per_minute", "draw_budget"])
async def test_limits_are_as_described(make_server: MakeServer, limit: str) -> None:
    server = await make_server(**{limit: 1})

    def twice(api: Api) -> None:
        api("POST", "/api/scenes", 201)
        status, error = (429, "rate_limited") if limit == "scenes_per_minute" else (
            503, "login_busy")
        refused = api("POST", "/api/scenes", status, error=error)
        assert int(refused.headers["retry-after"][0]) >= 1

    await asyncio.to_thread(twice, Api(base(server)))


# --- fuzzing -----------------------------------------------------------------------------------

EXAMPLES = 300  # per operation, so a few thousand cases in all


def base(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


@dataclass(frozen=True)
class Seed:
    """Real values among the generated ones, so cases get past "no such scene": a logged-in
    browser's cookie, a live scene it owns, and fresh codes of one WeChat user."""

    scene: str
    cookie: str
    codes: list[str]
    avatar: str


def cases(method: str, path: str, seed: Seed) -> st.SearchStrategy[Case[Any]]:
    operation = schemathesis.openapi.from_dict(openapi.document())[path][method]
    described = DOCUMENT["paths"][path][method.lower()]
    fixed: dict[str, Any] = {}
    if "{scene}" in path:
        fixed["path_parameters"] = {"scene": seed.scene}
    if "{avatar}" in path:
        fixed["path_parameters"] = {"avatar": seed.avatar}
    if "security" in described:
        fixed["cookies"] = {"wxlogin": seed.cookie}
    if "wait" in {parameter["name"] for parameter in described.get("parameters", [])}:
        fixed["query"] = {"wait": 0}  # the owner's poll of a pending scene would hold
    realistic = operation.as_strategy(GenerationMode.POSITIVE, **fixed)
    if "requestBody" in described:
        realistic = st.builds(
            with_real_values, realistic, st.just(seed),
            st.sampled_from(seed.codes) | st.from_regex(r"[a-z0-9]{8,32}", fullmatch=True),
            st.sampled_from(IMAGES),
        )
    return st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
        realistic,
    )


def with_real_values(case: Case[Any], seed: Seed, code: str, picture: bytes) -> Case[Any]:
    body: Any = case.body
    if isinstance(body, dict):
        body["code"] = code
        if "scene" in body:
            body["scene"] = seed.scene
        if case.media_type == openapi_schema.MULTIPART:  # elsewhere `avatar` is just another field
            body["avatar"] = picture
    return case


def fuzz(base_url: str, method: str, path: str, seed: Seed) -> int:
    """Run generated cases (valid, invalid, and valid with real values) of one operation."""
    count = 0

    @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck),
                         phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(cases(method, path, seed))
    def run(case: Case[Any]) -> None:
        nonlocal count
        count += 1
        with requests.Session() as session:
            response = case.call(base_url=base_url, session=session, timeout=20)
        case.validate_response(response, checks=CHECKS)

    run()
    return count


async def seeded(browser: MakeBrowser, fw: FakeWeChat, path: str) -> Seed:
    client, phone = await browser(), await browser()
    first = await new_scene(client)
    assert (await push(phone, first, fw.mint("o-fuzz"))).status == 200
    status, body = await poll(client, first, wait=0)
    assert (status, body["status"]) == (200, "confirmed")
    scene, avatar = await new_scene(client), "A" * 22
    # scan and pushCode start from a pending scene; the other steps are for whoever scanned it.
    if path not in ("/api/scenes/{scene}/scan", "/api/pushCode"):
        assert (await step(phone, scene, "scan", fw.mint("o-fuzz"))).status == 200
        form = FormData({"scene": scene, "code": fw.mint("o-fuzz")})
        form.add_field("avatar", IMAGES[0], filename="avatar.png")
        uploaded = await phone.post("/api/avatar", data=form)
        assert uploaded.status == 200, await uploaded.text()
        avatar = (await uploaded.json())["avatar_url"].rsplit("/", 1)[1].removesuffix(".jpg")
    cookie = session_cookie(client)
    assert cookie is not None
    return Seed(scene, cookie, [fw.mint("o-fuzz") for _ in range(50)], avatar)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
async def test_the_server_answers_as_described(
    server: TestServer, browser: MakeBrowser, fw: FakeWeChat, method: str, path: str
) -> None:
    seed = await seeded(browser, fw, path)
    started = time.monotonic()
    count = await asyncio.to_thread(fuzz, base(server), method, path, seed)
    print(f"{method} {path}: {count} cases in {time.monotonic() - started:.1f} s")
