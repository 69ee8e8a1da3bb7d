"""Section 8: the official account's way in. A browser long-polls an `oa` scene; WeChat (the
stand-in's role, played here) delivers a signed `SCAN` event to `/wechat/oa`; timed from sending
the event to the browser's poll answering `scanned`, and the callback's own answer time."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from typing import TYPE_CHECKING

import aiohttp

from ..common import HOST, now
from ..tables import errors_text, say, spread, table

if TYPE_CHECKING:
    from ..bench import Bench

OA_APPID = "wxbenchofficial0001"
OA_SECRET = "bench-oa-secret-0123456789"  # noqa: S105 - the benchmark's own stand-in account
OA_TOKEN = "BenchToken"  # noqa: S105


def signature(*parts: str) -> str:
    from wxlogin.wechat.oa_crypto import signature as sign

    return sign(*parts)


async def one_event(base: str, n: int, times: dict[str, list[float]],
                    errors: Counter[str]) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser, \
            aiohttp.ClientSession() as wechat:
        async with browser.post(f"{base}/api/scenes", json={"kind": "oa"}) as made:
            if made.status != 201:
                errors[f"scene {made.status}"] += 1
                return
            scene = (await made.json())["scene"]

        async def wait() -> tuple[str, float]:
            async with browser.get(f"{base}/api/scenes/{scene}",
                                   params={"wait": "30", "since": "pending"}) as polled:
                return str((await polled.json())["status"]), time.perf_counter()

        waiting = asyncio.create_task(wait())
        await asyncio.sleep(0.05)  # the poll is held by now
        stamp, nonce = str(int(time.time())), secrets.token_hex(4)
        xml = (f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA["
               f"o-bench-{n}]]></FromUserName><CreateTime>{1700000000 + n}</CreateTime>"
               f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[SCAN]]></Event>"
               f"<EventKey><![CDATA[{scene}]]></EventKey></xml>")
        sent = time.perf_counter()
        async with wechat.post(f"{base}/wechat/oa", data=xml.encode(), params={
            "signature": signature(OA_TOKEN, stamp, nonce), "timestamp": stamp, "nonce": nonce,
        }) as answered:
            body = await answered.text()
        replied = time.perf_counter()
        status, woke = await waiting  # when the browser's answer arrived
        if answered.status != 200 or "/oa/confirm/" not in body or status != "scanned":
            errors[f"event {answered.status} / poll {status}"] += 1
            return
        times["reply"].append((replied - sent) * 1000)
        times["wake"].append((woke - sent) * 1000)


async def run(bench: Bench) -> None:
    assert bench.a is not None
    events = 30 if bench.args.quick else 200
    say(f"## 8. The official account: a signed SCAN event → the waiting browser's poll answers "
        f"`scanned`, {events} events one after another (server A)")
    say()
    base = f"http://{HOST}:{bench.a.port}"
    times: dict[str, list[float]] = {"reply": [], "wake": []}
    errors: Counter[str] = Counter()
    started = now()
    for n in range(events):
        await one_event(base, n, times, errors)
    say(table(["from sending the event to…", "p50 / p99 / max (ms)"], [
        ["the callback's passive reply (signature, unionid lookup, claim, confirm link)",
         spread(times["reply"])],
        ["**the browser's long-poll answering `scanned`**", f"**{spread(times['wake'])}**"],
        ["errors", errors_text(errors)],
    ]))
    say()
    bench.footer(started)
