"""The OpenID Connect provider, as a relying party meets it: discovery, the authorization code
flow through the scan, tokens checked with another library (PyJWT) against the JWKS, userinfo,
refresh rotation, and the refusals that keep it safe."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
from dataclasses import replace
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import jwt as pyjwt
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestServer

from tests.conftest import Browser, MakeBrowser, MakeServer
from tests.fakewechat import FakeWeChat
from tests.helpers import new_scene, poll, push, run_wxlogin
from wxlogin.clients import OidcClient
from wxlogin.clock import FakeClock
from wxlogin.storage.queries import set_group

SECRET = "wordpress-secret-0123456789"
# WordPress's plugin registers a redirect with a query string: it must match byte for byte.
WORDPRESS = "https://blog.example/wp-admin/admin-ajax.php?action=openid-connect-authorize"
SPA = "https://app.example/callback"
NEXTCLOUD = "https://cloud.example/apps/user_oidc/code"
ODD_SECRET = "a+b%2Fc/d=e:f-0123456789"  # Nextcloud sends it without form-urlencoding
GRAFANA = "https://grafana.example/login/generic_oauth"
CLIENTS = (
    OidcClient("wordpress", (WORDPRESS,), SECRET, email="substitute",
               post_logout_redirect_uris=("https://blog.example/",)),
    OidcClient("spa", (SPA,)),  # public: PKCE required
    OidcClient("nextcloud", (NEXTCLOUD,), ODD_SECRET, id_token_alg="ES256"),
    OidcClient("grafana", (GRAFANA,), SECRET, allowed_groups=("admin",)),
)
ISSUER = "http://127.0.0.1:8080"


@pytest.fixture
async def idp(make_server: MakeServer) -> TestServer:
    return await make_server(oidc_clients=CLIENTS)


def verifier_and_challenge() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def query_of(response: ClientResponse) -> dict[str, str]:
    location = response.headers["Location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def authorize(browser: Browser, **params: str) -> ClientResponse:
    base = {"response_type": "code", "scope": "openid profile", "client_id": "wordpress",
            "redirect_uri": WORDPRESS, "state": "st-1", "nonce": "n-1"}
    response: ClientResponse = await browser.get(
        "/oidc/authorize", params={**base, **params}, allow_redirects=False
    )
    return response


async def log_in(browser: Browser, phone: Browser, fw: FakeWeChat, who: str = "ada") -> None:
    scene = await new_scene(browser)
    assert (await push(phone, scene, fw.mint(who), nickName="Ada")).status == 200
    assert (await poll(browser, scene))[1]["status"] == "confirmed"


async def logged_in(
    browser: MakeBrowser, idp: TestServer, fw: FakeWeChat
) -> tuple[Browser, Browser, Browser]:
    """A browser logged in by a scan, the phone that scanned, and a relying party's client."""
    desk, phone, site = await browser(idp), await browser(idp), await browser(idp)
    await log_in(desk, phone, fw)
    return desk, phone, site


async def code_for(browser: Browser, **params: str) -> dict[str, str]:
    response = await authorize(browser, **params)
    assert response.status == 302, await response.text()
    found = query_of(response)
    assert "code" in found, found
    return found


def basic(client_id: str, secret: str) -> dict[str, str]:
    """client_secret_basic as RFC 6749 §2.3.1 has it: each part form-urlencoded first."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


async def exchange(client: Browser, code: str, *, auth: dict[str, str] | None = None,
                   **form: str) -> ClientResponse:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": WORDPRESS, **form}
    response: ClientResponse = await client.post("/oidc/token", data=data, headers=auth)
    return response


def verified(id_token: str, jwks: dict[str, Any], audience: str,
             clock: FakeClock | None = None) -> dict[str, Any]:
    """As a relying party checks it, with another library; times against the test's clock."""
    kid = pyjwt.get_unverified_header(id_token)["kid"]
    jwk = next(key for key in jwks["keys"] if key["kid"] == kid)
    claims: dict[str, Any] = pyjwt.decode(
        id_token, pyjwt.PyJWK(jwk).key, algorithms=["RS256"], audience=audience, issuer=ISSUER,
        options={"require": ["exp", "iat", "iss", "sub", "aud", "auth_time"],
                 "verify_exp": False, "verify_iat": False},
    )
    if clock is not None:
        now = clock.now().timestamp()
        assert claims["iat"] <= now < claims["exp"] and claims["auth_time"] <= now
    return claims


async def test_discovery_names_the_issuer_byte_for_byte(idp: TestServer, browser: MakeBrowser
                                                        ) -> None:
    client = await browser(idp)
    found = await (await client.get("/.well-known/openid-configuration")).json()
    assert found["issuer"] == ISSUER
    assert found["jwks_uri"] == f"{ISSUER}/oidc/jwks"
    assert found["code_challenge_methods_supported"] == ["S256"]
    assert found["authorization_response_iss_parameter_supported"] is True


async def test_a_whole_login_through_the_scan_with_client_secret_basic(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat, clock: FakeClock
) -> None:
    desk, phone, site = await browser(idp), await browser(idp), await browser(idp)
    anonymous = await authorize(desk)
    assert anonymous.status == 303  # to the hosted login page, and back to this request
    login = urlsplit(anonymous.headers["Location"])
    assert login.path == "/login"
    back = parse_qs(login.query)["next"][0]
    assert back.startswith("/oidc/authorize?")

    await log_in(desk, phone, fw)
    returned = await desk.get(back, allow_redirects=False)
    assert returned.status == 302
    assert returned.headers["Location"].startswith(WORDPRESS + "&")  # its own query kept
    found = query_of(returned)
    assert found["state"] == "st-1" and found["iss"] == ISSUER

    answer = await exchange(site, found["code"], auth=basic("wordpress", SECRET))
    assert answer.status == 200 and answer.headers["Cache-Control"] == "no-store"
    tokens = await answer.json()
    assert tokens["token_type"] == "Bearer" and "refresh_token" not in tokens
    jwks = await (await site.get("/oidc/jwks")).json(content_type=None)
    claims = verified(tokens["id_token"], jwks, "wordpress", clock)
    assert claims["azp"] == "wordpress" and claims["nonce"] == "n-1"
    assert claims["name"] == "Ada" and claims["preferred_username"].startswith("wx_")
    assert claims["preferred_username"].isascii()
    assert "ada" not in claims["sub"] and len(claims["sub"]) <= 255  # opaque, not the openid
    half = hashlib.sha256(tokens["access_token"].encode()).digest()[:16]
    assert claims["at_hash"] == base64.urlsafe_b64encode(half).decode().rstrip("=")

    for method in ("GET", "POST"):
        info = await site.request(method, "/oidc/userinfo",
                                  headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert info.status == 200
        assert (await info.json())["sub"] == claims["sub"]  # WordPress checks they are equal

    # The same person again: the same sub.
    again = await code_for(desk)
    second = await (await exchange(site, again["code"], auth=basic("wordpress", SECRET))).json()
    assert verified(second["id_token"], jwks, "wordpress")["sub"] == claims["sub"]


async def test_client_secret_post_and_the_substitute_email(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    desk, phone, site = await logged_in(browser, idp, fw)
    found = await code_for(desk, scope="openid profile email")
    answer = await exchange(site, found["code"], client_id="wordpress", client_secret=SECRET)
    tokens = await answer.json()
    claims = pyjwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["email"] == f"{claims['sub']}@127.0.0.1.invalid"
    assert claims["email_verified"] is False


async def test_a_wrong_secret_is_invalid_client(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    desk, phone, site = await logged_in(browser, idp, fw)
    found = await code_for(desk)
    refused = await exchange(site, found["code"], auth=basic("wordpress", "wrong-secret-xx"))
    assert refused.status == 401 and refused.headers["Cache-Control"] == "no-store"
    assert (await refused.json())["error"] == "invalid_client"


async def test_a_code_redeemed_twice_fails_and_revokes_what_it_gave(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    desk, phone, site = await logged_in(browser, idp, fw)
    code = (await code_for(desk))["code"]
    auth = basic("wordpress", SECRET)
    first = await (await exchange(site, code, auth=auth)).json()
    replay = await exchange(site, code, auth=auth)
    assert replay.status == 400 and (await replay.json())["error"] == "invalid_grant"
    info = await site.get("/oidc/userinfo",
                          headers={"Authorization": f"Bearer {first['access_token']}"})
    assert info.status == 401 and "invalid_token" in info.headers["WWW-Authenticate"]


async def test_codes_live_a_minute(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat, clock: FakeClock
) -> None:
    desk, phone, site = await logged_in(browser, idp, fw)
    code = (await code_for(desk))["code"]
    clock.advance(61)
    late = await exchange(site, code, auth=basic("wordpress", SECRET))
    assert late.status == 400 and (await late.json())["error"] == "invalid_grant"


async def test_pkce_for_a_public_client(idp: TestServer, browser: MakeBrowser, fw: FakeWeChat
                                        ) -> None:
    desk, phone, site = await logged_in(browser, idp, fw)
    spa = {"client_id": "spa", "redirect_uri": SPA}
    without = await authorize(desk, **spa)
    assert without.status == 302 and query_of(without)["error"] == "invalid_request"
    plain = await authorize(desk, **spa, code_challenge="x" * 43, code_challenge_method="plain")
    assert query_of(plain)["error"] == "invalid_request"

    verifier, challenge = verifier_and_challenge()
    found = await code_for(desk, **spa, code_challenge=challenge, code_challenge_method="S256")
    wrong = await exchange(site, found["code"], code_verifier="w" * 43, client_id="spa",
                           redirect_uri=SPA)
    assert wrong.status == 400 and (await wrong.json())["error"] == "invalid_grant"
    found = await code_for(desk, **spa, code_challenge=challenge, code_challenge_method="S256")
    right = await exchange(site, found["code"], code_verifier=verifier, client_id="spa",
                           redirect_uri=SPA)
    assert right.status == 200, await right.text()
    public_secret = await exchange(site, "x", client_secret="anything", client_id="spa",
                                   redirect_uri=SPA)
    assert public_secret.status == 401


async def test_a_verifier_without_a_stored_challenge_is_refused(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    """A PKCE downgrade: the attacker's request carried no challenge."""
    desk, phone, site = await logged_in(browser, idp, fw)
    found = await code_for(desk)
    refused = await exchange(site, found["code"], auth=basic("wordpress", SECRET),
                             code_verifier="v" * 43)
    assert refused.status == 400 and (await refused.json())["error"] == "invalid_grant"


@pytest.mark.parametrize("redirect_uri", [
    WORDPRESS + "&x=1", WORDPRESS.replace("action=", "action=x"), "https://blog.example/",
    WORDPRESS.replace("https://blog.example", "https://blog.example.evil.example"),
    WORDPRESS.upper(), "https://evil.example/?" + WORDPRESS,
])
async def test_an_unregistered_redirect_uri_gets_a_page_never_a_redirect(
    idp: TestServer, browser: MakeBrowser, redirect_uri: str
) -> None:
    refused = await authorize(await browser(idp), redirect_uri=redirect_uri, prompt="none")
    assert refused.status == 400 and "Location" not in refused.headers
    assert refused.content_type == "text/html"


async def test_an_unknown_client_gets_a_page(idp: TestServer, browser: MakeBrowser) -> None:
    refused = await authorize(await browser(idp), client_id="nobody")
    assert refused.status == 400 and "Location" not in refused.headers


async def test_prompt_none_answers_login_required_to_the_client(
    idp: TestServer, browser: MakeBrowser
) -> None:
    answer = await authorize(await browser(idp), prompt="none")
    assert answer.status == 302
    found = query_of(answer)
    assert answer.headers["Location"].startswith(WORDPRESS + "&")
    assert (found["error"], found["state"], found["iss"]) == ("login_required", "st-1", ISSUER)


async def test_prompt_login_and_max_age_send_a_logged_in_browser_to_log_in_again(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat, clock: FakeClock
) -> None:
    desk, phone = await browser(idp), await browser(idp)
    await log_in(desk, phone, fw)
    for params in ({"prompt": "login"}, {"max_age": "60"}):
        clock.advance(120)
        again = await authorize(desk, **params)
        assert again.status == 303, params
        back = parse_qs(urlsplit(again.headers["Location"]).query)["next"][0]
        assert "prompt=login" not in back
        # Back before logging in again: still sent to log in.
        assert (await desk.get(back, allow_redirects=False)).status == 303
        await log_in(desk, phone, fw)
        done = await desk.get(back, allow_redirects=False)
        assert done.status == 302 and "code" in query_of(done)


async def test_refresh_tokens_rotate_and_a_reused_one_revokes_its_family(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    desk, phone, site = await logged_in(browser, idp, fw)
    found = await code_for(desk, scope="openid profile offline_access")
    auth = basic("wordpress", SECRET)
    first = await (await exchange(site, found["code"], auth=auth)).json()

    async def refresh(token: str) -> ClientResponse:
        response: ClientResponse = await site.post(
            "/oidc/token", data={"grant_type": "refresh_token", "refresh_token": token},
            headers=auth)
        return response

    second = await refresh(first["refresh_token"])
    assert second.status == 200
    rotated = await second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    reused = await refresh(first["refresh_token"])  # stolen and replayed
    assert reused.status == 400 and (await reused.json())["error"] == "invalid_grant"
    assert (await refresh(rotated["refresh_token"])).status == 400  # the family is revoked
    info = await site.get("/oidc/userinfo",
                          headers={"Authorization": f"Bearer {rotated['access_token']}"})
    assert info.status == 401


async def test_a_disabled_user_cannot_refresh(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat, db: Any, pg_url: str
) -> None:
    desk, phone, site = await logged_in(browser, idp, fw)
    found = await code_for(desk, scope="openid offline_access")
    auth = basic("wordpress", SECRET)
    tokens = await (await exchange(site, found["code"], auth=auth)).json()
    user_id = await db.fetchval("SELECT id FROM wxlogin.users")
    code, _, err = await run_wxlogin(pg_url, "users", "disable", str(user_id))
    assert code == 0, err
    # Every token of theirs ends at once, not only when next presented.
    assert await db.fetchval("SELECT count(*) FROM wxlogin.oidc_tokens"
                             " WHERE revoked_at IS NULL") == 0
    refused = await site.post("/oidc/token", headers=auth, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refused.status == 400 and (await refused.json())["error"] == "invalid_grant"
    info = await site.get("/oidc/userinfo",
                          headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status == 401


def test_the_clients_setting_is_checked() -> None:
    from wxlogin.settings import Settings, SettingsError

    good = json.dumps([{"client_id": "a", "client_secret": "s" * 16,
                        "redirect_uris": ["https://a.example/cb?x=1"]}])
    assert Settings.from_env({"WXLOGIN_OIDC_CLIENTS": good}).oidc_clients[0].client_id == "a"
    for bad in ("{", "{}", '[{"client_id": "a"}]',
                '[{"client_id": "a", "redirect_uris": ["/relative"]}]',
                '[{"client_id": "a", "client_secret": "short", "redirect_uris": ["https://a"]}]'):
        with pytest.raises(SettingsError, match="WXLOGIN_OIDC_CLIENTS"):
            Settings.from_env({"WXLOGIN_OIDC_CLIENTS": bad})
    assert replace(Settings(), oidc_clients=CLIENTS).oidc_clients[1].public


async def test_a_code_redeemed_by_many_at_once_gives_tokens_once_then_revokes_them(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    """An intercepted code raced against its rightful redemption: exactly one wins, and the
    losers' replay revokes what the winner got, however the requests interleave."""
    desk, phone, site = await logged_in(browser, idp, fw)
    code = (await code_for(desk))["code"]
    answers = await asyncio.gather(*(
        exchange(site, code, auth=basic("wordpress", SECRET)) for _ in range(20)
    ))
    assert sorted(a.status for a in answers) == [200] + [400] * 19
    winner = await next(a for a in answers if a.status == 200).json()
    info = await site.get("/oidc/userinfo",
                          headers={"Authorization": f"Bearer {winner['access_token']}"})
    assert info.status == 401


async def test_codes_and_refresh_tokens_belong_to_their_client(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    desk, phone, site = await logged_in(browser, idp, fw)
    code = (await code_for(desk, scope="openid offline_access"))["code"]
    stolen = await exchange(site, code, auth=basic("nextcloud", ODD_SECRET))
    assert stolen.status == 400 and (await stolen.json())["error"] == "invalid_grant"
    code = (await code_for(desk))["code"]
    elsewhere = await exchange(site, code, auth=basic("wordpress", SECRET),
                               redirect_uri=WORDPRESS + "&x=1")
    assert elsewhere.status == 400  # redirect_uri must be the authorization request's
    code = (await code_for(desk, scope="openid offline_access"))["code"]
    tokens = await (await exchange(site, code, auth=basic("wordpress", SECRET))).json()
    other = await site.post("/oidc/token", headers=basic("nextcloud", ODD_SECRET), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert other.status == 400 and (await other.json())["error"] == "invalid_grant"
    id_as_bearer = await site.get("/oidc/userinfo",
                                  headers={"Authorization": f"Bearer {tokens['id_token']}"})
    assert id_as_bearer.status == 401


async def test_basic_credentials_are_read_encoded_or_raw(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    desk, phone, site = await logged_in(browser, idp, fw)
    raw = "Basic " + base64.b64encode(f"nextcloud:{ODD_SECRET}".encode()).decode()
    for auth in (basic("nextcloud", ODD_SECRET), {"Authorization": raw}):
        code = (await code_for(desk, client_id="nextcloud", redirect_uri=NEXTCLOUD))["code"]
        answer = await site.post("/oidc/token", headers=auth, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": NEXTCLOUD})
        assert answer.status == 200, await answer.text()
        claims = pyjwt.decode((await answer.json())["id_token"],
                              options={"verify_signature": False})
        assert "email" not in claims  # only for clients that asked for a substitute


async def test_a_client_limited_to_groups_admits_only_their_members(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat, db: Any, clock: FakeClock
) -> None:
    desk, phone, site = await logged_in(browser, idp, fw)
    refused = await authorize(desk, client_id="grafana", redirect_uri=GRAFANA)
    assert refused.status == 302 and query_of(refused)["error"] == "access_denied"
    user_id = await db.fetchval("SELECT id FROM wxlogin.users")
    entry = await db.fetchrow("SELECT actor, action, subject, detail->>'reason' AS reason"
                              " FROM wxlogin.audit")  # a refused login, in the audit
    assert tuple(entry) == (f"user:{user_id}", "login_refused", "client:grafana",
                            "not_in_allowed_groups")
    await set_group(db, user_id, "admin", True, clock.now())
    found = await code_for(desk, client_id="grafana", redirect_uri=GRAFANA,
                           scope="openid profile groups")
    answer = await site.post("/oidc/token", headers=basic("grafana", SECRET), data={
        "grant_type": "authorization_code", "code": found["code"], "redirect_uri": GRAFANA})
    tokens = await answer.json()
    claims = pyjwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["groups"] == ["admin"]
    info = await site.get("/oidc/userinfo",
                          headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert (await info.json())["groups"] == ["admin"]


async def test_a_repeated_state_is_refused_without_echoing_either(
    idp: TestServer, browser: MakeBrowser
) -> None:
    client = await browser(idp)
    answer = await client.get("/oidc/authorize?response_type=code&scope=openid&client_id="
                              f"spa&redirect_uri={SPA}&state=a&state=b", allow_redirects=False)
    assert answer.status == 302
    found = query_of(answer)
    assert found["error"] == "invalid_request" and "state" not in found


async def test_a_made_up_marker_does_not_skip_logging_in_again(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat, clock: FakeClock
) -> None:
    desk, phone = await browser(idp), await browser(idp)
    await log_in(desk, phone, fw)
    clock.advance(3600)
    for marker in ("0", str(int(clock.now().timestamp()) - 3000), "9" * 10):
        again = await authorize(desk, max_age="60", wxlogin_after=marker)
        assert again.status == 303, marker


async def test_a_lost_answer_to_a_second_login_is_delivered_again(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    """Logged in already, the person logs in again; the poll's answer (the new cookie) is
    lost, so the browser polls again with its old session: it gets the same new session."""
    desk, phone = await browser(idp), await browser(idp)
    await log_in(desk, phone, fw)
    old = next(c for c in desk.session.cookie_jar if c.key == "wxlogin").value
    scene = await new_scene(desk)
    assert (await push(phone, scene, fw.mint("ada"))).status == 200
    first = await desk.get(f"/api/scenes/{scene}")
    new = SimpleCookie(first.headers["Set-Cookie"])["wxlogin"].value
    assert new != old
    desk.session.cookie_jar.clear()  # the answer never arrived: the old cookie it is
    desk.session.cookie_jar.update_cookies({"wxlogin": old}, response_url=desk.make_url("/"))
    second = await desk.get(f"/api/scenes/{scene}")
    assert second.status == 200
    assert SimpleCookie(second.headers["Set-Cookie"])["wxlogin"].value == new
    assert (await desk.get("/api/me")).status == 200


@pytest.mark.parametrize(("where", "value"), [
    ("authorize", {"max_age": "²"}), ("authorize", {"nonce": "\x00"}),
    ("authorize", {"state": "\x00"}), ("authorize", {"wxlogin_after": "٣"}),
    ("token", {"code_verifier": "é" * 50}), ("basic", {"Authorization": "Basic éé"}),
    ("bearer", {"Authorization": "Bearer \udcff" + "a" * 40}),
])
async def test_malformed_input_is_refused_never_a_500(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat, where: str, value: dict[str, str]
) -> None:
    desk, phone, site = await logged_in(browser, idp, fw)
    if where == "authorize":
        answer = await authorize(desk, **value)
        assert answer.status in (302, 303)
        return
    if where == "bearer":
        answer = await site.get("/oidc/userinfo", headers={
            "Authorization": value["Authorization"].encode("utf-8", "surrogateescape")
            .decode("latin-1")})
        assert answer.status == 401
        return
    code = (await code_for(desk))["code"]
    auth = value if where == "basic" else basic("wordpress", SECRET)
    answer = await exchange(site, code, auth=auth, **(value if where == "token" else {}))
    assert answer.status in (400, 401)
    assert (await answer.json())["error"] in ("invalid_grant", "invalid_client")


async def id_token_for(desk: Browser, site: Browser) -> str:
    code = (await code_for(desk))["code"]
    tokens = await (await exchange(site, code, auth=basic("wordpress", SECRET))).json()
    token: str = tokens["id_token"]
    return token


async def test_logout_with_an_id_token_hint_ends_the_session_and_goes_back(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    desk, phone, site = await logged_in(browser, idp, fw)
    hint = await id_token_for(desk, site)
    unregistered = await desk.get("/oidc/logout", allow_redirects=False, params={
        "id_token_hint": hint, "post_logout_redirect_uri": "https://evil.example/"})
    assert unregistered.status == 400 and "Location" not in unregistered.headers
    assert (await desk.get("/api/me")).status == 200  # refused: nothing ended
    answer = await desk.get("/oidc/logout", allow_redirects=False, params={
        "id_token_hint": hint, "post_logout_redirect_uri": "https://blog.example/",
        "state": "bye"})
    assert answer.status == 302
    assert answer.headers["Location"] == "https://blog.example/?state=bye"
    assert (await desk.get("/api/me")).status == 401


async def test_logout_without_a_hint_asks_first_and_another_site_cannot_force_it(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    desk, phone = await browser(idp), await browser(idp)
    await log_in(desk, phone, fw)
    asked = await desk.get("/oidc/logout", params={"client_id": "wordpress", "ui_locales": "en"})
    assert asked.status == 200 and 'name="confirm" value="yes"' in await asked.text()
    assert (await desk.get("/api/me")).status == 200  # a link alone logs nobody out
    forged = await desk.post("/oidc/logout", data={"confirm": "yes"},
                             headers={"Origin": "https://evil.example"})
    assert forged.status == 403 and (await desk.get("/api/me")).status == 200
    done = await desk.post("/oidc/logout", data={"confirm": "yes", "client_id": "wordpress"},
                           headers={"Origin": ISSUER})
    assert done.status == 200 and (await desk.get("/api/me")).status == 401


async def test_a_forged_hint_does_not_log_out_without_asking(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    desk, phone = await browser(idp), await browser(idp)
    await log_in(desk, phone, fw)
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("=")
    claims = base64.urlsafe_b64encode(json.dumps({"iss": ISSUER, "sub": "x"}).encode())
    forged = f"{header}.{claims.decode().rstrip('=')}."
    asked = await desk.get("/oidc/logout", params={"id_token_hint": forged})
    assert asked.status == 200 and 'name="confirm"' in await asked.text()
    assert (await desk.get("/api/me")).status == 200


async def test_ui_locales_choose_the_login_pages_language(
    idp: TestServer, browser: MakeBrowser
) -> None:
    answer = await authorize(await browser(idp), ui_locales="zh-CN en")
    assert answer.status == 303
    assert parse_qs(urlsplit(answer.headers["Location"]).query)["lang"] == ["zh"]


async def test_cors_only_for_public_clients_origins_and_only_where_they_need_it(
    idp: TestServer, browser: MakeBrowser
) -> None:
    client = await browser(idp)
    spa, other = "https://app.example", "https://blog.example"  # blog's client is confidential
    preflight = await client.options("/oidc/token", headers={
        "Origin": spa, "Access-Control-Request-Method": "POST"})
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == spa
    for path in ("/oidc/jwks", "/.well-known/openid-configuration"):
        found = await client.get(path, headers={"Origin": spa})
        assert found.headers["Access-Control-Allow-Origin"] == spa
        assert "Access-Control-Allow-Origin" not in (
            await client.get(path, headers={"Origin": other})).headers
    refused = await client.get("/oidc/userinfo", headers={"Origin": spa})
    assert refused.status == 401 and refused.headers["Access-Control-Allow-Origin"] == spa
    page = await client.get("/oidc/authorize", headers={"Origin": spa}, allow_redirects=False)
    assert "Access-Control-Allow-Origin" not in page.headers


async def test_nextcloud_sends_a_claims_parameter_and_gets_an_es256_id_token(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    """user_oidc adds `claims` (tolerated, not used) and may want ES256; it checks the token by
    `kid`, and `iss`, `aud`, `azp` and `nonce`."""
    desk, phone, site = await logged_in(browser, idp, fw)
    code = (await code_for(desk, client_id="nextcloud", redirect_uri=NEXTCLOUD,
                           claims=json.dumps({"id_token": {"email": None}})))["code"]
    answer = await site.post("/oidc/token", headers=basic("nextcloud", ODD_SECRET), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": NEXTCLOUD})
    id_token = (await answer.json())["id_token"]
    header = pyjwt.get_unverified_header(id_token)
    assert header["alg"] == "ES256"
    jwks = await (await site.get("/oidc/jwks")).json(content_type=None)
    jwk = next(key for key in jwks["keys"] if key["kid"] == header["kid"])
    claims = pyjwt.decode(id_token, pyjwt.PyJWK(jwk).key, algorithms=["ES256"],
                          audience="nextcloud", issuer=ISSUER,
                          options={"verify_exp": False, "verify_iat": False})
    assert claims["azp"] == "nextcloud" and claims["nonce"] == "n-1"


async def test_gitea_needs_a_numeric_exp_and_the_discovery_issuer_byte_for_byte(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    desk, phone, site = await logged_in(browser, idp, fw)
    discovered = await (await site.get("/.well-known/openid-configuration")).json()
    code = (await code_for(desk))["code"]
    tokens = await (await exchange(site, code, auth=basic("wordpress", SECRET))).json()
    payload = tokens["id_token"].split(".")[1]
    raw = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert type(raw["exp"]) is int and type(raw["iat"]) is int
    assert raw["iss"] == discovered["issuer"]


async def test_an_old_or_foreign_hint_asks_first_and_two_sites_get_a_page(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat, clock: FakeClock
) -> None:
    """Only an ID token of this very login logs out unasked: not one from an earlier login of
    the same person, nor the mini program's access token; a client_id that is not the hint's
    audience is refused outright."""
    desk, phone, site = await logged_in(browser, idp, fw)
    old_hint = await id_token_for(desk, site)
    clock.advance(5)
    await log_in(desk, phone, fw)  # a new login: a new session
    asked = await desk.get("/oidc/logout", params={"id_token_hint": old_hint})
    assert asked.status == 200 and 'name="confirm"' in await asked.text()
    mini = await (await phone.post("/api/miniprogram/token", json={"code": fw.mint("ada")})).json()
    asked = await desk.get("/oidc/logout", params={"id_token_hint": mini["access_token"]})
    assert asked.status == 200 and 'name="confirm"' in await asked.text()
    assert (await desk.get("/api/me")).status == 200
    hint = await id_token_for(desk, site)
    mixed = await desk.get("/oidc/logout", allow_redirects=False, params={
        "id_token_hint": hint, "client_id": "nextcloud"})
    assert mixed.status == 400 and (await desk.get("/api/me")).status == 200


async def test_the_confirm_page_lets_its_form_go_back_to_the_registered_address(
    idp: TestServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    desk, phone = await browser(idp), await browser(idp)
    await log_in(desk, phone, fw)
    asked = await desk.get("/oidc/logout", params={
        "client_id": "wordpress", "post_logout_redirect_uri": "https://blog.example/"})
    assert "form-action 'self' https://blog.example;" in asked.headers["Content-Security-Policy"]
    done = await desk.post("/oidc/logout", allow_redirects=False, headers={"Origin": ISSUER},
                           data={"confirm": "yes", "client_id": "wordpress",
                                 "post_logout_redirect_uri": "https://blog.example/"})
    assert done.status == 302 and done.headers["Location"] == "https://blog.example/"


async def test_cors_answers_always_vary_by_origin(idp: TestServer, browser: MakeBrowser) -> None:
    client = await browser(idp)
    for origin in (None, "https://app.example", "https://other.example"):
        headers = {"Origin": origin} if origin else {}
        answer = await client.get("/oidc/jwks", headers=headers)
        assert "Origin" in answer.headers["Vary"], origin


async def test_a_redirect_uri_with_a_bad_port_is_refused_at_start() -> None:
    from wxlogin.settings import Settings, SettingsError

    for uri in ("https://a.example:99999/cb", "https://a.example:abc/cb"):
        bad = json.dumps([{"client_id": "a", "redirect_uris": [uri]}])
        with pytest.raises(SettingsError, match="redirect_uris"):
            Settings.from_env({"WXLOGIN_OIDC_CLIENTS": bad})
