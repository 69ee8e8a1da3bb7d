"""Section 5: 1-second interval polling against long-polling, for people who scan and confirm
(requests, database work, lag) and for open login pages that nobody scans."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections import Counter
from typing import TYPE_CHECKING, Any

from ..client import Conn, Failed
from ..common import now, sleep_until
from ..generator import emit, label
from ..metrics import scrape
from ..steps import OPEN, Codes, create_scene, draw, poll, push, scan
from ..tables import errors_text, percentile, say, table

if TYPE_CHECKING:
    from ..bench import Bench


# --- the load generator's side (a process of its own) --------------------------------------------


async def job_compare(job: dict[str, Any]) -> None:
    """Section 5: people scan and confirm after the given delays while their browsers learn of
    it by 1-second interval polling (`interval`) or by long-polling (`long`)."""
    port, approach = job["port"], job["approach"]
    codes = Codes(job["fake_port"], per=2)
    await codes.fill(len(job["delays"]))
    errors: Counter[str] = Counter()

    async def person(delay: float) -> dict[str, float]:
        browser, phone = Conn(port), Conn(port)
        sent: list[float] = []
        answered: list[float] = []
        try:
            scene, code_path = await create_scene(browser)
            await draw(browser, code_path)
            shown = now()

            async def phone_side() -> None:
                scan_code, push_code = await codes.person()
                await sleep_until(shown + max(0.0, delay - 1.0))
                await scan(phone, scene, scan_code)
                await sleep_until(shown + delay)
                sent.append(now())
                await push(phone, scene, push_code)
                answered.append(now())

            phone_task = asyncio.create_task(phone_side())
            first_poll, polls = now(), 0
            try:
                if approach == "interval":
                    while True:
                        status = await poll(browser, scene, 0)
                        polls += 1
                        if status == "confirmed":
                            break
                        if status not in OPEN:
                            raise Failed(f"GET poll answered {status}")
                        await sleep_until(first_poll + polls * job["interval"])
                    learned = now()
                else:
                    status = "pending"
                    while True:
                        status = await poll(browser, scene, job["wait"], status)
                        polls += 1
                        if status == "confirmed":
                            break
                        if status not in OPEN:
                            raise Failed(f"GET poll answered {status}")
                    learned = now()
                await phone_task
            finally:
                phone_task.cancel()
            return {"requests": browser.requests, "polls": polls,
                    "waiting_s": learned - first_poll, "lag_ms": (learned - sent[0]) * 1000,
                    # The confirmation is committed before either answer leaves the server: how
                    # much later than the phone the browser knew (0 when it knew first).
                    "after_phone_ms": max(0.0, learned - answered[0]) * 1000,
                    "phone_requests": phone.requests}
        finally:
            browser.close()
            phone.close()

    results = await asyncio.gather(*(person(d) for d in job["delays"]), return_exceptions=True)
    people = []
    for result in results:
        if isinstance(result, BaseException):
            errors[label(result)] += 1
        else:
            people.append(result)
    emit("result", people=people, errors=dict(errors))


async def job_idle(job: dict[str, Any]) -> None:
    """Section 5's open login pages that nobody scans: each approach's browsers open their pages
    at moments spread over `spread` seconds, then the poll requests sent in the next `window`
    seconds are counted (the steady state, whatever phase each browser is in)."""
    port, count = job["port"], job["browsers"]
    started = now()
    window = (started + job["spread"], started + job["spread"] + job["window"])
    rng = random.Random(job["seed"])  # noqa: S311 - a benchmark's fixed draw
    errors: Counter[str] = Counter()

    async def page(approach: str, opens_at: float) -> int:
        await sleep_until(started + opens_at)
        browser = Conn(port)
        counted = 0
        try:
            scene, code_path = await create_scene(browser)
            await draw(browser, code_path)
            first, polls, status = now(), 0, "pending"
            while now() < window[1]:
                if approach == "interval":
                    await sleep_until(first + polls * job["interval"])
                    if now() >= window[1]:
                        break
                counted += window[0] <= now()
                polls += 1
                if approach == "interval":
                    status = await poll(browser, scene, 0)
                else:
                    # Cut short at the window's end: only requests sent inside it count.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(window[1] - now()):
                            status = await poll(browser, scene, job["wait"], status)
                if status != "pending":
                    raise Failed(f"GET poll answered {status}")
        except (Failed, OSError, asyncio.IncompleteReadError) as exc:
            errors[label(exc)] += 1
        finally:
            browser.close()
        return counted

    tasks = {approach: [asyncio.create_task(page(approach, rng.uniform(0, job["spread"])))
                        for _ in range(count)] for approach in ("interval", "long")}
    counts = {approach: list(await asyncio.gather(*group)) for approach, group in tasks.items()}
    emit("result", counts=counts, window=job["window"], errors=dict(errors))


# --- the orchestrator's side: measure and print --------------------------------------------------


async def run(bench: Bench) -> None:
    plan, a = bench.plan, bench.a
    assert a is not None and bench.monitor is not None
    started = now()
    lo, hi = plan.delays
    rng = random.Random(bench.args.seed)  # noqa: S311 - a benchmark's fixed draw
    delays = [rng.uniform(lo, hi) for _ in range(plan.browsers)]
    say(f"\n## 5. Interval polling (GET …?wait=0 every 1 s) against long-polling "
        f"(wait=50&since=…, as the login page does), {plan.browsers} browsers at once each, "
        f"scan-and-confirm after {lo:g}–{hi:g} s (uniform, seed {bench.args.seed})\n")
    await bench.monitor.log_statements(True)
    measured: dict[str, dict[str, float]] = {}
    errors: dict[str, str] = {}
    try:
        for approach in ("interval", "long"):
            log0 = bench.monitor.log_size()
            metrics0 = (await scrape(a.port)).requests()
            generator = await bench.generator({
                "kind": "compare", "port": a.port, "fake_port": bench.fake_port,
                "approach": approach, "delays": delays, "interval": 1.0, "wait": 50})
            result = await bench.finish(generator)
            metrics1 = (await scrape(a.port)).requests()
            own, transactions, resets = bench.monitor.statements(log0)
            people = result["people"]
            logins = len(people) or 1
            metrics1.subtract(metrics0)
            served = sum(metrics1.values())
            bad = {k: v for k, v in metrics1.items() if v and not k.endswith((" 200",
                                                                              " 201"))}
            polls = sum(p["polls"] for p in people)
            minutes = sum(p["waiting_s"] for p in people) / 60 or math.nan
            measured[approach] = {
                "browser requests per login": sum(p["requests"] for p in people) / logins,
                "all requests the server answered per login (phone's 2 included)":
                    served / logins,
                "poll requests per minute of waiting for the person": polls / minutes,
                "database transactions per login (statement log)": transactions / logins,
                "SQL statements per login (statement log, pool resets left out)":
                    own / logins,
                "asyncpg pool resets per login (one per connection release)":
                    resets / logins,
                "lag push sent → browser learns, p50 (ms)":
                    percentile([p["lag_ms"] for p in people], 0.5),
                "lag push sent → browser learns, p99 (ms)":
                    percentile([p["lag_ms"] for p in people], 0.99),
                "lag after the phone's answer (0 if the browser knew first), p50 (ms)":
                    percentile([p["after_phone_ms"] for p in people], 0.5),
                "lag after the phone's answer, p99 (ms)":
                    percentile([p["after_phone_ms"] for p in people], 0.99),
                "logins completed": float(len(people)),
            }
            errors[approach] = errors_text(Counter(result["errors"]) + Counter(bad))
    finally:
        await bench.monitor.log_statements(False)
    generator = await bench.generator({
        "kind": "idle", "port": a.port, "browsers": plan.browsers, "seed": bench.args.seed,
        "spread": plan.idle_spread, "window": plan.idle_window, "interval": 1.0, "wait": 50})
    idle = await bench.finish(generator)
    minutes = plan.browsers * idle["window"] / 60
    for approach, counts in idle["counts"].items():
        measured[approach]["**poll requests per waiting-browser-minute**, pages open with "
                           "nobody scanning"] = sum(counts) / minutes
    errors["idle pages"] = errors_text(Counter(idle["errors"]))
    rows = []
    for key in measured["interval"]:
        poll_value, long_value = measured["interval"][key], measured["long"][key]
        ratio = poll_value / long_value if long_value else math.inf
        digits = 0 if "completed" in key else 1
        shown = "" if "completed" in key or not poll_value else f"**{ratio:.1f}×**"
        rows.append([key, f"{poll_value:.{digits}f}", f"{long_value:.{digits}f}", shown])
    rows.append(["errors", errors["interval"], errors["long"], ""])
    rows.append(["errors, pages nobody scans (both approaches)", errors["idle pages"], "", ""])
    say(table(["per login", "interval polling (1 s)", "long-polling", "ratio polling / long"],
              rows))
    say("\nBoth runs on server A alone, one after the other, the same people and delays. "
        "pg_stat_statements is not in the embedded PostgreSQL build, so database work is "
        "counted in PostgreSQL's own log (log_statement = all during this section): "
        "statements, and transactions (a BEGIN … COMMIT block, or a statement outside one). "
        "Pool resets (asyncpg's reset query as a connection goes back) are counted apart. "
        "The lag from the push includes the push's own work (the code exchange with the "
        "stand-in, the user upsert, the commit), the same for both approaches; the "
        "confirmation is committed before either the phone's or the browser's answer "
        "leaves, so the lag after the phone's answer is the polling's own delay. "
        f"Pages nobody scans: {plan.browsers} browsers per approach, at the same time, open "
        f"their pages at moments spread over {plan.idle_spread:g} s; requests sent in the "
        f"next {plan.idle_window:g} s are counted.")
    bench.footer(started)
