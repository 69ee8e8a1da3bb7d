"""Section 3: full logins per second, people logging in back to back on one process and on
`--workers 2`; the stand-in's counters over each run are kept for section 4."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
from collections import Counter
from typing import TYPE_CHECKING, Any

from ..client import Conn, Failed
from ..common import bounded, now, sleep_until
from ..generator import emit, label
from ..metrics import scrape
from ..procfs import cpu_seconds, machine_busy, process_tree
from ..steps import Codes, create_scene, draw, push, scan, until_confirmed
from ..tables import errors_text, say, spread, table

if TYPE_CHECKING:
    from ..bench import Bench, Server


# --- the load generator's side (a process of its own) --------------------------------------------


async def login_once(browser: Conn, phone: Conn, codes: Codes) -> None:
    """A whole login: create, draw the code, long-poll meanwhile, scan, confirm, logged in."""
    scene, code_path = await create_scene(browser)
    await draw(browser, code_path)
    waiting = asyncio.create_task(until_confirmed(browser, scene))
    try:
        scan_code, push_code = await codes.person()
        await scan(phone, scene, scan_code)
        await push(phone, scene, push_code)
        await waiting
    finally:
        waiting.cancel()


async def job_logins(job: dict[str, Any]) -> None:
    """Section 3: `concurrency` people logging in back to back, each login a new browser."""
    port, users = job["port"], job["concurrency"]
    codes = Codes(job["fake_port"], per=2)
    await codes.fill(users * 8)
    finished: list[float] = []
    durations: list[float] = []
    errors: Counter[str] = Counter()
    attempts = 0
    phones = [Conn(port) for _ in range(users)]
    await bounded(100, [phone.open for phone in phones])
    started = now()
    window = (started + job["warmup"], started + job["warmup"] + job["seconds"])

    async def marks() -> None:
        await sleep_until(window[0])
        emit("window_start")
        await sleep_until(window[1])
        emit("window_end")

    async def person(phone: Conn) -> None:
        nonlocal attempts
        while now() < window[1]:
            attempts += 1
            browser = Conn(port)
            began = now()
            try:
                await login_once(browser, phone, codes)
                finished.append(now())
                durations.append((now() - began) * 1000)
            except (Failed, OSError, asyncio.IncompleteReadError) as exc:
                errors[label(exc)] += 1
                await asyncio.sleep(0.2)
            finally:
                browser.close()

    await asyncio.gather(marks(), *(person(phone) for phone in phones))
    for phone in phones:
        phone.close()
    in_window = sum(window[0] <= moment < window[1] for moment in finished)
    emit("result", in_window=in_window, seconds=job["seconds"], completed=len(finished),
         attempts=attempts, durations=durations, errors=dict(errors))


# --- the orchestrator's side: measure and print --------------------------------------------------


async def run(bench: Bench) -> None:
    plan, a = bench.plan, bench.a
    assert a is not None
    started = now()
    say(f"\n## 3. Full logins per second, {plan.concurrency} people logging in back to back "
        "(create, draw the code, long-poll, scan, pushCode, logged in)\n")
    workers = await bench.start_server("W", workers=2)
    rows = []
    try:
        for name, server in (("1 process", a), ("`--workers 2`, one port", workers)):
            calls_before = Counter(bench.fake.calls)
            generator = await bench.generator({
                "kind": "logins", "port": server.port, "fake_port": bench.fake_port,
                "concurrency": plan.concurrency, "warmup": plan.warmup,
                "seconds": plan.login_seconds})
            await generator.until("window_start")
            groups = {
                "server": process_tree(server.pid),
                "PostgreSQL": process_tree(bench.pg_pid),
                "stand-in (this process)": [os.getpid()],
                "load generator": [generator.process.pid],
            }
            cpu0 = {k: cpu_seconds(pids) for k, pids in groups.items()}
            busy0, t0 = machine_busy(), now()
            in_use: list[float] = []
            sampler = asyncio.create_task(sample_pool(server, in_use))
            await generator.until("window_end")
            cpu1 = {k: cpu_seconds(pids) for k, pids in groups.items()}
            busy1, elapsed = machine_busy(), now() - t0
            sampler.cancel()
            result = await bench.finish(generator)
            calls = Counter(bench.fake.calls)
            calls.subtract(calls_before)
            bench.login_runs.append((name, result, calls))
            used = {k: (cpu1[k] - cpu0[k]) / elapsed * 100 for k in groups}
            other = (busy1 - busy0) / elapsed * 100 - sum(used.values())
            cpu = " / ".join(f"{v:.0f}" for v in used.values()) + f" / {max(other, 0):.0f}"
            size = bench.pool_size
            pool = (f"{statistics.mean(in_use):.1f} ({sum(v >= size for v in in_use)} of "
                    f"{len(in_use)} at {size})" if in_use else "-")
            rows.append([
                name, f"**{result['in_window'] / result['seconds']:.0f}**",
                f"{result['in_window']}", spread(result["durations"], 0), cpu, pool,
                errors_text(result["errors"])])
    finally:
        await bench.stop_server(workers)
    say(table(["server", "logins/s", f"logins in the {plan.login_seconds:g} s window",
               "one login, p50 / p99 / max (ms)",
               "CPU % of one core: server / PostgreSQL / stand-in / load generator / "
               "anything else on the machine",
               "pool connections in use, mean of scrapes every 0.5 s", "errors"], rows))
    say(f"\nThe machine has {os.cpu_count()} cores for all of it: the server, PostgreSQL, "
        "the WeChat stand-in and the load generator. Each login is a new browser "
        f"(connection and cookie); {plan.warmup:g} s of warm-up are not counted.")
    bench.footer(started)


async def sample_pool(server: Server, into: list[float]) -> None:
    while True:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            into.append((await scrape(server.port)).value(
                "wxlogin_db_pool_connections_in_use"))
        await asyncio.sleep(0.5)
