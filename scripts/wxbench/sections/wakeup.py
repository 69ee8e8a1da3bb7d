"""Section 2: wake-up latency, pushCode sent -> the waiting poll answered, in one process and
across two, at a steady rate and in a burst."""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from typing import TYPE_CHECKING, Any

from ..client import Conn, Failed
from ..common import bounded, now, sleep_until
from ..generator import emit, label
from ..steps import Codes, create_scene, open_polls, poll, push
from ..tables import errors_text, say, spread, table

if TYPE_CHECKING:
    from ..bench import Bench


# --- the load generator's side (a process of its own) --------------------------------------------


async def push_and_wait(
    phone: Conn, scene: str, code: str, answer: asyncio.Task[tuple[float, float]]
) -> tuple[float, float, float]:
    """pushCode sent -> (browser answered, pushCode answered, browser after push reply), ms."""
    if answer.done():
        raise Failed("poll answered before the push")
    sent = now()
    try:
        await push(phone, scene, code)
    except BaseException:
        answer.cancel()
        raise
    pushed = now()
    _, answered = await answer
    return (answered - sent) * 1000, (pushed - sent) * 1000, (answered - pushed) * 1000


async def answered_at(browser: Conn, scene: str, wait: int) -> tuple[float, float]:
    status = await poll(browser, scene, wait, "pending")
    if status != "confirmed":
        raise Failed(f"GET poll answered {status}")
    return 0.0, now()


async def job_wakeup(job: dict[str, Any]) -> None:
    """Section 2: the browser's poll is waiting on `poll_port`; the phone pushes to
    `push_port`; time from pushCode sent to the poll's answer."""
    poll_port, push_port = job["poll_port"], job["push_port"]
    codes = Codes(job["fake_port"])
    rows: list[tuple[float, float, float]] = []
    errors: Counter[str] = Counter()

    if job["mode"] == "steady":
        total = round(job["rate"] * job["seconds"])
        await codes.fill(total)
        phones: asyncio.Queue[Conn] = asyncio.Queue()
        for _ in range(16):
            phone = Conn(push_port)
            await phone.open()
            phones.put_nowait(phone)

        async def login() -> None:
            browser = Conn(poll_port)
            try:
                scene, _ = await create_scene(browser)
                answer = asyncio.create_task(answered_at(browser, scene, 30))
                await asyncio.sleep(job["delay"])  # the poll is waiting by now
                try:
                    phone = phones.get_nowait()
                except asyncio.QueueEmpty:
                    phone = Conn(push_port)
                try:
                    rows.append(await push_and_wait(phone, scene, await codes.take(), answer))
                finally:
                    phones.put_nowait(phone)
            except (Failed, OSError, asyncio.IncompleteReadError) as exc:
                errors[label(exc)] += 1
            finally:
                browser.close()

        started = now()
        logins = []
        for index in range(total):
            await sleep_until(started + index / job["rate"])
            logins.append(asyncio.create_task(login()))
        await asyncio.gather(*logins)
    else:
        total = job["n"]
        await codes.fill(total)
        browsers = [Conn(poll_port) for _ in range(total)]
        phone_conns = [Conn(push_port) for _ in range(total)]
        made = await bounded(50, [functools.partial(create_scene, b) for b in browsers])
        await bounded(100, [phone.open for phone in phone_conns])
        answers: list[asyncio.Task[tuple[float, float]]] = []
        held = await open_polls(total, lambda i: answers.append(asyncio.create_task(
            answered_at(browsers[i], made[i][0], 50))), poll_port)
        if held < total:
            errors[f"only {held} of {total} polls seen waiting before the burst"] += 1
        await asyncio.sleep(0.2)
        burst_codes = [await codes.take() for _ in range(total)]
        results = await asyncio.gather(
            *(push_and_wait(phone_conns[i], made[i][0], burst_codes[i], answers[i])
              for i in range(total)), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                errors[label(result)] += 1
            else:
                rows.append(result)
        for conn in browsers + phone_conns:
            conn.close()
    emit("result", rows=rows, errors=dict(errors))


# --- the orchestrator's side: measure and print --------------------------------------------------


async def run(bench: Bench) -> None:
    plan, a, b = bench.plan, bench.a, bench.b
    assert a is not None and b is not None
    started = now()
    say("\n## 2. Wake-up latency: pushCode sent → the waiting poll answered\n")
    rows = []
    loads = [
        (f"steady {plan.rate:g} logins/s for {plan.steady_seconds:g} s",
         {"mode": "steady", "rate": plan.rate, "seconds": plan.steady_seconds,
          "delay": 0.1}),
        (f"burst of {plan.burst:,} at once", {"mode": "burst", "n": plan.burst}),
    ]
    for load, job in loads:
        for path, target in (("(i) one process: poll on A, push to A", a),
                             ("(ii) across two: poll on A, push to B", b)):
            generator = await bench.generator({
                "kind": "wakeup", **job, "poll_port": a.port, "push_port": target.port,
                "fake_port": bench.fake_port})
            result = await bench.finish(generator)
            await bench.until_waiting(a, 0, 30)
            data = result["rows"]
            rows.append([
                load, path, str(len(data)),
                spread([r[0] for r in data]), spread([r[1] for r in data]),
                spread([r[2] for r in data]), errors_text(result["errors"])])
    say(table(["load", "path", "logins", "**push sent → browser answered**, "
               "p50 / p99 / max (ms)", "pushCode round trip, p50 / p99 / max (ms)",
               "browser answered − push answered, p50 / p99 / max (ms)", "errors"], rows))
    say("\nSteady: each browser makes its scene on A, starts its poll, and the phone "
        "pushes 100 ms later on one of 16 kept-alive phone connections. Burst: all polls "
        "are seen waiting in A's wxlogin_waiting_polls first, then every push is sent at "
        "once, each on its own open connection. A and B are single `serve` processes "
        f"(pool of {bench.pool_size} each) on one database; "
        "the WeChat stand-in answers jscode2session from this process.")
    bench.footer(started)
