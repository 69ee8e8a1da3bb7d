"""Section 6: OpenID Connect logins. A browser logged in once by a scan goes through a relying
party's round trip again and again: authorize (a code back at once), the code for tokens,
userinfo; timed one after another, then the statements PostgreSQL ran for each, from its log."""

from __future__ import annotations

import base64
import time
from collections import Counter
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import aiohttp

from ..common import HOST, now
from ..steps import Codes
from ..tables import errors_text, say, spread, table

if TYPE_CHECKING:
    from ..bench import Bench

CLIENT_ID = "bench-rp"
CLIENT_SECRET = "bench-rp-secret-0123456789"  # noqa: S105 - the benchmark's own relying party
REDIRECT = "http://127.0.0.1/cb"
CLIENTS = (f'[{{"client_id": "{CLIENT_ID}", "client_secret": "{CLIENT_SECRET}",'
           f' "redirect_uris": ["{REDIRECT}"]}}]')
BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()


async def logged_in_browser(bench: Bench, base: str, browser: aiohttp.ClientSession) -> None:
    """One ordinary login by scan (the pushCode step claims and confirms at once)."""
    codes = Codes(bench.fake_port)
    async with browser.post(f"{base}/api/scenes") as made:
        scene = (await made.json())["scene"]
    async with aiohttp.ClientSession() as phone, phone.post(
            f"{base}/api/pushCode", json={"scene": scene, "code": await codes.take()}) as pushed:
        assert pushed.status == 200, await pushed.text()
    async with browser.get(f"{base}/api/scenes/{scene}", params={"wait": "0"}) as polled:
        assert (await polled.json())["status"] == "confirmed"


async def one_login(base: str, browser: aiohttp.ClientSession, site: aiohttp.ClientSession,
                    times: dict[str, list[float]], errors: Counter[str]) -> None:
    started = time.perf_counter()
    async with browser.get(f"{base}/oidc/authorize", allow_redirects=False, params={
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT,
        "scope": "openid profile", "state": "s", "nonce": "n",
    }) as authorized:
        if authorized.status != 302:
            errors[f"authorize {authorized.status}"] += 1
            return
        code = parse_qs(urlsplit(authorized.headers["Location"]).query)["code"][0]
    coded = time.perf_counter()
    async with site.post(f"{base}/oidc/token", headers={"Authorization": BASIC}, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
    }) as answered:
        if answered.status != 200:
            errors[f"token {answered.status}"] += 1
            return
        access = (await answered.json())["access_token"]
    tokened = time.perf_counter()
    async with site.get(f"{base}/oidc/userinfo",
                        headers={"Authorization": f"Bearer {access}"}) as info:
        if info.status != 200:
            errors[f"userinfo {info.status}"] += 1
            return
        await info.read()
    done = time.perf_counter()
    for name, seconds in (("authorize", coded - started), ("token", tokened - coded),
                          ("userinfo", done - tokened), ("total", done - started)):
        times[name].append(seconds * 1000)


async def run(bench: Bench) -> None:
    assert bench.a is not None and bench.monitor is not None
    logins, counted = (100, 20) if bench.args.quick else (1000, 100)
    say(f"## 6. OpenID Connect: authorize → code → token → userinfo, {logins} logins one after"
        " another by one logged-in browser (server A)")
    say()
    base = f"http://{HOST}:{bench.a.port}"
    times: dict[str, list[float]] = {"authorize": [], "token": [], "userinfo": [], "total": []}
    errors: Counter[str] = Counter()
    started = now()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser, \
            aiohttp.ClientSession() as site:
        await logged_in_browser(bench, base, browser)
        for _ in range(5):  # the signing keys are made on first need; warm up past that
            await one_login(base, browser, site, {k: [] for k in times}, errors)
        for _ in range(logins):
            await one_login(base, browser, site, times, errors)
        await bench.monitor.log_statements(True)
        try:
            mark = bench.monitor.log_size()
            for _ in range(counted):
                await one_login(base, browser, site, {k: [] for k in times}, errors)
            own, transactions, _ = bench.monitor.statements(mark)
        finally:
            await bench.monitor.log_statements(False)
    say(table(["step", "p50 / p99 / max (ms)"], [
        ["authorize (logged in: 302 with a code)", spread(times["authorize"])],
        ["token (the code for tokens, client_secret_basic, an RS256 ID token)",
         spread(times["token"])],
        ["userinfo (bearer)", spread(times["userinfo"])],
        ["**the whole round trip**", f"**{spread(times['total'])}**"],
        ["errors", errors_text(errors)],
    ]))
    say()
    say(table(["per OIDC login (statement log, over " + str(counted) + " more)", "count"], [
        ["SQL statements", f"{own / counted:.1f}"],
        ["database transactions", f"{transactions / counted:.1f}"],
    ]))
    say()
    bench.footer(started)
