"""Section 1: waiting browsers, C long-polls held by one process: its memory, its event loop,
the database connections they take (none), and the wake-up of a few while the rest wait."""

from __future__ import annotations

import asyncio
import functools
import statistics
from collections import Counter
from typing import TYPE_CHECKING, Any

from ..client import Conn, Failed
from ..common import bounded, now
from ..generator import command, emit, label
from ..metrics import lag_summary, probe, scrape
from ..procfs import rss_kb
from ..steps import Codes, create_scene, open_polls, poll, push
from ..tables import errors_text, say, spread, table

if TYPE_CHECKING:
    from ..bench import Bench


# --- the load generator's side (a process of its own) --------------------------------------------


async def job_waiting(job: dict[str, Any]) -> None:
    """Section 1: C browsers, each with its own scene, cookie and connection, long-polling."""
    port, count, wait = job["port"], job["count"], job["wait"]
    browsers = [Conn(port) for _ in range(count)]
    scenes = [""] * count
    errors: Counter[str] = Counter()

    async def create(index: int) -> None:
        for _attempt in range(5):
            try:
                scenes[index], _ = await create_scene(browsers[index])
                return
            except (Failed, OSError, asyncio.IncompleteReadError) as exc:
                errors["create: " + label(exc)] += 1
                browsers[index].close()
                await asyncio.sleep(0.5)

    started = now()
    await bounded(job["concurrency"], [functools.partial(create, i) for i in range(count)])
    emit("created", seconds=now() - started, errors=dict(errors))
    await command()

    answered: dict[int, float] = {}
    answers: Counter[str] = Counter()
    repolls = 0

    async def hold(index: int) -> None:
        nonlocal repolls
        while True:
            try:
                status = await poll(browsers[index], scenes[index], wait, "pending")
            except (Failed, OSError, asyncio.IncompleteReadError) as exc:
                errors["poll: " + label(exc)] += 1
                await asyncio.sleep(1.0)
                continue
            if status != "pending":
                answered[index] = now()
                answers[status] += 1
                return
            repolls += 1

    tasks: list[asyncio.Task[None]] = []
    started = now()
    held = await open_polls(count, lambda i: tasks.append(asyncio.create_task(hold(i))), port)
    emit("polling", seconds=now() - started, held=held, errors=dict(errors))

    release = await command()
    wake: list[float] = []
    codes = Codes(release["fake_port"])
    phone = Conn(port)
    for index in range(min(release.get("push", 0), count)):
        code = await codes.take()
        sent = now()
        try:
            await push(phone, scenes[index], code)
            await tasks[index]
            wake.append((answered[index] - sent) * 1000)
        except (Failed, OSError) as exc:
            errors["push: " + label(exc)] += 1
    phone.close()
    for task in tasks:
        task.cancel()
    for browser in browsers:
        browser.close()  # the rest of the browsers go away (tabs closed)
    await asyncio.sleep(0.2)
    emit("result", wake_ms=wake, errors=dict(errors), repolls=repolls, answers=dict(answers))


# --- the orchestrator's side: measure and print --------------------------------------------------


async def run(bench: Bench) -> None:
    plan, a = bench.plan, bench.a
    assert a is not None and bench.monitor is not None
    started = now()
    count = plan.waiting
    say(f"\n## 1. Waiting browsers ({count:,} long-polls on one process)\n")
    rss_before = rss_kb(a.pid)
    generator = await bench.generator(
        {"kind": "waiting", "port": a.port, "count": count, "concurrency": 100, "wait": 50})
    created = await generator.until("created")
    rss_created = rss_kb(a.pid)
    generator.send({"cmd": "poll"})
    polling = await generator.until("polling")
    reached = await bench.until_waiting(a, count, 60)
    hold_start = await scrape(a.port)
    waiting, in_use, pool, busy, clients = [], [], [], [], []
    busy_queries: Counter[str] = Counter()
    rss_hold = [rss_kb(a.pid)]
    probes: list[tuple[float, float]] = []
    prober = asyncio.create_task(probe(a.port, probes))
    end = now() + plan.hold
    while now() < end:
        sample = await scrape(a.port)
        waiting.append(sample.value("wxlogin_waiting_polls"))
        in_use.append(sample.value("wxlogin_db_pool_connections_in_use"))
        pool.append(sample.value("wxlogin_db_pool_connections"))
        total, nonidle, queries = await bench.monitor.activity()
        clients.append(total)
        busy.append(nonidle)
        busy_queries.update(queries)
        rss_hold.append(rss_kb(a.pid))
        await asyncio.sleep(0.5)
    hold_end = await scrape(a.port)
    prober.cancel()
    samples, above, p99 = lag_summary(hold_start, hold_end)
    slow = [moment for moment, ms in probes if ms > 20]
    gaps = [b - a for a, b in zip(slow, slow[1:], strict=False) if b - a > 0.5]
    generator_rss = rss_kb(generator.process.pid)
    generator.send({"cmd": "release", "push": plan.release_push,
                    "fake_port": bench.fake_port})
    result = await bench.finish(generator)
    released = now()
    left = await bench.until_waiting(a, 0, 60)
    gone_after = now() - released
    rss_after = rss_kb(a.pid)

    def mb(kb: float) -> str:
        return f"{kb / 1024:.1f}"

    def low_high(values: list[float]) -> str:
        return f"{min(values):g} / {max(values):g}" if values else "-"

    hold_kb = max(rss_hold)
    errors = Counter(created["errors"]) + Counter(result["errors"])
    rows = [
        ["server RSS before (idle, MB)", mb(rss_before)],
        [f"server RSS with {count:,} scenes made, connections open (MB)", mb(rss_created)],
        ["server RSS while they wait (max over the hold, MB)", mb(hold_kb)],
        ["**memory per waiting browser**, (hold − before) / C (KB)",
         f"**{(hold_kb - rss_before) / count:.1f}**"],
        ["… of which the waiting poll itself, (hold − scenes made) / C (KB)",
         f"{(hold_kb - rss_created) / count:.1f}"],
        ["server RSS after they left (MB)", mb(rss_after)],
        [f"event-loop lag over the {plan.hold:g} s hold: samples / share > 10 ms / p99 bucket",
         f"{samples} / {above:.1%} / {p99}"],
        ["responsiveness probe during the hold (a 404 every 20 ms): p50 / p99 / max (ms)",
         spread([ms for _, ms in probes])],
        ["… probes slower than 20 ms / the slowest three (ms) / median gap between stalls",
         f"{len(slow)} of {len(probes)} / "
         + ", ".join(f"{ms:.0f}" for ms in sorted(ms for _, ms in probes)[-3:][::-1])
         + " / " + (f"{statistics.median(gaps):.1f} s" if gaps else "-")],
        ["wxlogin_waiting_polls during the hold (min / max)", low_high(waiting)],
        ["wxlogin_db_pool_connections_in_use during the hold (min / max)", low_high(in_use)],
        ["wxlogin_db_pool_connections open (min / max)", low_high(pool)],
        ["pg_stat_activity non-idle client connections during the hold (min / max)",
         low_high([float(b) for b in busy])],
        ["pg_stat_activity client connections, all states (max)",
         f"{max(clients) if clients else '-'}"],
        [f"time to create {count:,} scenes (100 at a time) / to open the polls",
         f"{created['seconds']:.1f} s / {polling['seconds']:.1f} s"],
        ["polls the server held when the hold began", f"{reached:g} of {count:,}"],
        [f"wake-up of {plan.release_push} pushed one by one while the rest wait, "
         "p50 / p99 / max (ms)", spread(result["wake_ms"])],
        ["waiting polls back to 0 after the other browsers closed their connections",
         f"{gone_after:.1f} s (left: {left:g})"],
        ["polls that ended at wait=50 and polled again", str(result["repolls"])],
        ["load generator RSS while holding them (MB)", mb(generator_rss)],
        ["errors (generator side)", errors_text(errors)],
    ]
    say(table(["measure", "value"], rows))
    if busy_queries:
        say("\nnon-idle connections seen during the hold: " + "; ".join(
            f"{n} × `{q}`" for q, n in busy_queries.most_common(5)))
    bench.footer(started)
