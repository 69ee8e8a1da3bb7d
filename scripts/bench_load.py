"""Load benchmark on a real PostgreSQL: waiting browsers, wake-up latency, logins per second,
WeChat calls per login, and 1-second interval polling against long-polling.

`./scripts/bench` (full figures, several minutes) or `./scripts/bench --quick` (a smoke run)
starts everything itself: the embedded PostgreSQL, the WeChat stand-in (tests/fakewechat.py)
served over HTTP from this process, `python -m wxlogin serve` processes, and load generators:
this script again, run with --generator in separate processes, each a tiny HTTP/1.1 client on
asyncio streams with one keep-alive connection and one session cookie per simulated browser.
Every section prints a markdown table as it completes; all processes and temporary folders
go on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import functools
import json
import logging
import math
import os
import random
import re
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
COOKIE = "wxlogin"
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36 wxbench"
)
OPEN = ("pending", "scanned")
LAG = "wxlogin_event_loop_lag_seconds"
PR_SET_PDEATHSIG = 1
T = TypeVar("T")


def now() -> float:
    return time.perf_counter()


def die_with_parent() -> None:
    """In a child, before exec: SIGTERM when this benchmark dies, even by SIGKILL."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


# --- a tiny HTTP/1.1 client: one keep-alive connection, one cookie ------------------------------


class Failed(Exception):
    """A step answered other than expected; str() is its label in the error counts."""


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)

    def label(self, what: str) -> str:
        try:
            error = self.json().get("error", "")
        except (ValueError, AttributeError):
            error = ""
        return f"{what} {self.status} {error}".strip()


class Conn:
    """A browser (its own connection and cookie) or a phone (no cookie is ever set for it)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookie: str | None = None
        self.requests = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(HOST, self.port)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def request(self, method: str, path: str, payload: Any = None) -> Reply:
        body = b"" if payload is None else json.dumps(payload).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{self.port}",
                 f"User-Agent: {USER_AGENT}", "Accept: */*"]
        if self.cookie:
            lines.append(f"Cookie: {COOKIE}={self.cookie}")
        if payload is not None:
            lines.append("Content-Type: application/json")
        if method != "GET":
            lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        for attempt in (0, 1):
            if self._writer is None or self._writer.is_closing():
                await self.open()
            reader, writer = self._reader, self._writer
            assert reader is not None and writer is not None
            try:
                writer.write(data)
                head = await reader.readuntil(b"\r\n\r\n")
                break
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                # A keep-alive connection the server had closed: once more on a new one.
                self.close()
                partial = isinstance(exc, asyncio.IncompleteReadError) and exc.partial
                if attempt or partial:
                    raise
        assert reader is not None
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                self._keep_cookie(value)
            else:
                headers[name] = value
        if "content-length" in headers:
            content = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            content = await self._chunked(reader)
        elif status in (204, 304) or method == "HEAD":
            content = b""
        else:
            content = await reader.read()
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        self.requests += 1
        return Reply(status, content, headers)

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append((await reader.readexactly(size + 2))[:-2])

    def _keep_cookie(self, value: str) -> None:
        name, _, rest = value.partition("=")
        if name.strip() == COOKIE:
            cookie = rest.split(";", 1)[0].strip()
            self.cookie = cookie if cookie and cookie != '""' else None


async def get_metrics(port: int) -> str:
    conn = Conn(port)
    try:
        reply = await conn.request("GET", "/metrics")
        return reply.body.decode()
    finally:
        conn.close()


async def gauge(port: int, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", await get_metrics(port), re.MULTILINE)
    return float(match.group(1)) if match else math.nan


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - now()))


async def bounded(limit: int, jobs: Iterable[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the jobs, at most `limit` at once, keeping their order."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(one(job) for job in jobs)))


# --- the browser's and the phone's steps ---------------------------------------------------------


async def create_scene(browser: Conn) -> tuple[str, str]:
    reply = await browser.request("POST", "/api/scenes")
    if reply.status != 201:
        raise Failed(reply.label("POST /api/scenes"))
    body = reply.json()
    return body["scene"], urlsplit(body["code_url"]).path


async def draw(browser: Conn, code_path: str) -> None:
    reply = await browser.request("GET", code_path)
    if reply.status != 200 or not reply.body:
        raise Failed(reply.label("GET code"))


async def phone_step(phone: Conn, path: str, payload: dict[str, str]) -> Reply:
    reply = await phone.request("POST", path, payload)
    if reply.status != 200:
        raise Failed(reply.label(f"POST {path.rsplit('/', 1)[-1]}"))
    return reply


async def scan(phone: Conn, scene: str, code: str) -> None:
    await phone_step(phone, f"/api/scenes/{scene}/scan", {"code": code})


async def push(phone: Conn, scene: str, code: str) -> None:
    await phone_step(phone, "/api/pushCode", {"scene": scene, "code": code})


async def poll(browser: Conn, scene: str, wait: int, since: str | None = None) -> str:
    query = f"wait={wait}" + (f"&since={since}" if since else "")
    reply = await browser.request("GET", f"/api/scenes/{scene}?{query}")
    if reply.status != 200:
        raise Failed(reply.label("GET poll"))
    status: str = reply.json()["status"]
    return status


async def until_confirmed(browser: Conn, scene: str, wait: int = 25) -> float:
    """Long-poll as the login page does (passing the last status as `since`); the moment the
    browser learns it is logged in."""
    status = "pending"
    while True:
        status = await poll(browser, scene, wait, status)
        if status == "confirmed":
            return now()
        if status not in OPEN:
            raise Failed(f"GET poll answered {status}")


async def timed(step: Awaitable[T]) -> tuple[T, float]:
    result = await step
    return result, now()


class Codes:
    """Fresh wx.login codes, minted in batches by the stand-in before they are needed: `per`
    codes for each person (a scan and a pushCode must come from the same WeChat user)."""

    def __init__(self, fake_port: int, per: int = 1) -> None:
        self._conn = Conn(fake_port)
        self._per = per
        self._people: deque[list[str]] = deque()
        self._lock = asyncio.Lock()

    async def fill(self, people: int) -> None:
        async with self._lock:
            while len(self._people) < people:
                want = max(500, min(5000, people - len(self._people)))
                reply = await self._conn.request(
                    "POST", f"/_bench/mint?n={want}&per={self._per}")
                self._people.extend(reply.json()["people"])

    async def person(self) -> list[str]:
        if not self._people:
            await self.fill(1)
        return self._people.popleft()

    async def take(self) -> str:
        return (await self.person())[0]


async def open_polls(
    count: int, start: Callable[[int], None], port: int, batch: int = 250,
    timeout: float = 60.0,
) -> int:
    """Start `count` long-polls in batches, each once the server holds the ones before it
    (its wxlogin_waiting_polls), so setting them up never queues for the database pool.
    Returns how many the server was seen holding at the end."""
    base = await gauge(port, "wxlogin_waiting_polls")
    sent = 0
    seen = base
    for first in range(0, count, batch):
        for index in range(first, min(count, first + batch)):
            start(index)
        sent = min(count, first + batch)
        deadline = now() + timeout
        while now() < deadline:
            await asyncio.sleep(0.02)
            seen = await gauge(port, "wxlogin_waiting_polls")
            if seen - base >= sent:
                break
    return int(seen - base)


# --- generator jobs (run in separate processes) ---------------------------------------------------


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def command() -> dict[str, Any]:
    line = await asyncio.to_thread(sys.stdin.readline)
    return json.loads(line) if line.strip() else {"cmd": "stop"}


def label(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, Failed) else type(exc).__name__


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


JOBS: dict[str, Callable[[dict[str, Any]], Coroutine[Any, Any, None]]] = {
    "waiting": job_waiting, "wakeup": job_wakeup, "logins": job_logins, "compare": job_compare,
    "idle": job_idle,
}


def generator_main() -> None:
    job = json.loads(sys.stdin.readline())
    asyncio.run(JOBS[job["kind"]](job))


# --- the orchestrator: processes, measurements, tables --------------------------------------------


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _stat(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2:].split()


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parents.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy (all cores, any process) since boot."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLOCK_TICKS


def cpu_seconds(pids: Iterable[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = _stat(pid)
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


SAMPLE = re.compile(r"^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


class Scrape:
    """One /metrics answer, parsed."""

    def __init__(self, text: str) -> None:
        self.samples: list[tuple[str, dict[str, str], float]] = []
        for line in text.splitlines():
            match = SAMPLE.match(line)
            if match and not line.startswith("#"):
                labels = dict(LABEL.findall(match.group(2) or ""))
                self.samples.append((match.group(1), labels, float(match.group(3))))

    def value(self, name: str, **labels: str) -> float:
        return sum(v for n, ls, v in self.samples
                   if n == name and all(ls.get(k) == want for k, want in labels.items()))

    def buckets(self, name: str) -> dict[float, float]:
        return {float(ls["le"]): v for n, ls, v in self.samples if n == f"{name}_bucket"}

    def requests(self) -> Counter[str]:
        """Answers by route and status, /metrics and /healthz left out."""
        found: Counter[str] = Counter()
        for n, ls, v in self.samples:
            if n == "wxlogin_http_requests_total" and ls.get("route") not in (
                    "/metrics", "/healthz"):
                found[f"{ls.get('method')} {ls.get('route')} {ls.get('status')}"] += int(v)
        return found


async def probe(port: int, into: list[tuple[float, float]], every: float = 0.02) -> None:
    """Forever: a request the server answers without the database (a 404), timed; a busy
    event loop shows as a slow answer."""
    conn = Conn(port)
    try:
        while True:
            sent = now()
            await conn.request("GET", "/bench-probe-404")
            into.append((sent, (now() - sent) * 1000))
            await asyncio.sleep(every)
    finally:
        conn.close()


async def scrape(port: int) -> Scrape:
    return Scrape(await get_metrics(port))


def lag_summary(before: Scrape, after: Scrape) -> tuple[int, float, str]:
    """Samples taken, the share above 10 ms, and the bucket holding the 99th percentile."""
    old, new = before.buckets(LAG), after.buckets(LAG)
    delta = {le: count - old.get(le, 0.0) for le, count in new.items()}
    total = delta.get(math.inf, 0.0)
    if not total:
        return 0, math.nan, "-"
    above = (total - delta.get(0.01, 0.0)) / total
    p99 = next(le for le in sorted(delta) if delta[le] >= 0.99 * total)
    where = "> 2.5 s" if math.isinf(p99) else f"≤ {p99 * 1000:g} ms"
    return int(total), above, where


def percentile(values: list[float], share: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def spread(values: list[float], digits: int = 1) -> str:
    if not values:
        return "-"
    return " / ".join(f"{v:.{digits}f}" for v in (
        percentile(values, 0.5), percentile(values, 0.99), max(values)))


def errors_text(errors: Counter[str] | dict[str, int]) -> str:
    if not errors:
        return "0"
    return "; ".join(f"{k}: {v}" for k, v in sorted(errors.items(), key=lambda kv: -kv[1]))


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def say(text: str = "") -> None:
    print(text, flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class Plan:
    waiting: int
    hold: float
    release_push: int
    rate: float
    steady_seconds: float
    burst: int
    concurrency: int
    warmup: float
    login_seconds: float
    browsers: int
    delays: tuple[float, float]
    idle_spread: float
    idle_window: float


FULL = Plan(waiting=10_000, hold=10.0, release_push=20, rate=50.0, steady_seconds=10.0,
            burst=1000, concurrency=64, warmup=3.0, login_seconds=20.0, browsers=200,
            delays=(3.0, 15.0), idle_spread=50.0, idle_window=60.0)
QUICK = Plan(waiting=500, hold=3.0, release_push=10, rate=50.0, steady_seconds=2.0, burst=100,
             concurrency=32, warmup=1.0, login_seconds=4.0, browsers=30, delays=(2.0, 5.0),
             idle_spread=50.0, idle_window=10.0)


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    log_seen: int = 0

    @property
    def pid(self) -> int:
        return self.process.pid


class Generator:
    """A load generator process: a job in on stdin, JSON events out on stdout."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path) -> None:
        self.process = process
        self.log = log

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode())

    async def until(self, event: str) -> dict[str, Any]:
        assert self.process.stdout is not None
        while True:
            line = await self.process.stdout.readline()
            if not line:
                await self.process.wait()
                tail = self.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"load generator exited ({self.process.returncode}):\n{tail}")
            message: dict[str, Any] = json.loads(line)
            if message.get("event") == event:
                return message

    async def close(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


# A statement in PostgreSQL's log (log_line_prefix '%m [%p] db=%d '): the backend, the SQL.
LOGGED = re.compile(r"\[(\d+)\] db=postgres LOG:  (?:statement|execute [^:]*): (.*)")


class Monitor:
    """A connection to a side database of the same cluster (so its own queries never count)."""

    def __init__(self, conn: Any, log: Path) -> None:
        self.conn = conn
        self.log = log

    async def activity(self) -> tuple[int, int, list[str]]:
        rows = await self.conn.fetch(
            "SELECT state, left(query, 70) AS query FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
        busy = [f"{r['state']}: {r['query']}" for r in rows if r["state"] != "idle"]
        return len(rows), len(busy), busy

    async def log_statements(self, on: bool) -> None:
        if on:
            await self.conn.execute("ALTER SYSTEM SET log_statement = 'all'")
            await self.conn.execute("ALTER SYSTEM SET log_line_prefix = '%m [%p] db=%d '")
        else:
            await self.conn.execute("ALTER SYSTEM RESET log_statement")
            await self.conn.execute("ALTER SYSTEM RESET log_line_prefix")
        await self.conn.execute("SELECT pg_reload_conf()")
        await asyncio.sleep(1.0)

    def log_size(self) -> int:
        return self.log.stat().st_size

    def statements(self, start: int) -> tuple[int, int, int]:
        """What the `postgres` database ran since `start`, from its log: (the server's own
        statements, its transactions, asyncpg's reset-on-release queries).

        A transaction is a BEGIN … COMMIT block or a statement outside one, followed per backend.
        Counted here rather than from pg_stat_database, whose counters reach it whenever each
        backend next publishes them: once some of an earlier section's arrived in this one's
        window."""
        with self.log.open("rb") as handle:
            handle.seek(start)
            text = handle.read().decode(errors="replace")
        own = transactions = resets = 0
        in_block: set[str] = set()
        for line in text.splitlines():
            match = LOGGED.search(line)
            if match is None:
                continue
            backend, sql = match.groups()
            if sql.startswith("SELECT pg_advisory_unlock_all()"):
                resets += 1
                continue
            own += 1
            word = sql.split(None, 1)[0].rstrip(";").upper() if sql.strip() else ""
            if word in ("BEGIN", "START"):
                in_block.add(backend)
                transactions += 1
            elif word in ("COMMIT", "ROLLBACK", "END"):
                in_block.discard(backend)
            elif backend not in in_block:
                transactions += 1
        return own, transactions, resets


class Bench:
    def __init__(self, args: argparse.Namespace, plan: Plan, work: Path) -> None:
        self.args = args
        self.plan = plan
        self.work = work
        self.logs = work / "logs"
        self.logs.mkdir()
        self.url = ""
        self.fake: Any = None
        self.fake_port = 0
        self.servers: list[Server] = []
        self.generators: list[Generator] = []
        self.monitor: Monitor | None = None
        # The servers read it from the environment they inherit; the tables name it.
        self.pool_size = int(os.environ.get("WXLOGIN_DB_POOL_SIZE", "10"))
        self.a: Server | None = None
        self.b: Server | None = None
        self.pg_pid = 0
        self.login_runs: list[tuple[str, dict[str, Any], Counter[str]]] = []

    # -- processes --

    def server_env(self, port: int) -> dict[str, str]:
        from tests.fakewechat import APPID, SECRET

        return {
            **os.environ, "WXLOGIN_DATABASE_URL": self.url, "WXLOGIN_HOST": HOST,
            "WXLOGIN_PORT": str(port), "WXLOGIN_APPID": APPID, "WXLOGIN_SECRET": SECRET,
            "WXLOGIN_WECHAT_API_BASE": f"http://{HOST}:{self.fake_port}",
            "WXLOGIN_DATA_DIR": str(self.work / "data"), "WXLOGIN_LOG_LEVEL": "WARNING",
            "WXLOGIN_LOG_FORMAT": "text",
            "WXLOGIN_COOKIE_SECRET": "bench-cookie-secret-0123456789abcdefgh",
            # Every simulated browser and phone is 127.0.0.1: the limits would stop them.
            "WXLOGIN_SCENES_PER_MINUTE": "0", "WXLOGIN_STEPS_PER_MINUTE": "0",
            "WXLOGIN_POLLS_PER_SESSION": "0", "WXLOGIN_POLLS_PER_IP": "0",
            "WXLOGIN_DRAW_BUDGET": "0",
        }

    async def start_server(self, name: str, workers: int = 1) -> Server:
        port = free_port()
        log = self.logs / f"{name}.log"
        command = [sys.executable, "-m", "wxlogin", "serve"]
        if name == "A" and self.args.profile:
            # Wall-clock samples of server A's main thread, written when it stops (SIGTERM).
            command[1:1] = ["-m", "pyinstrument", "--renderer", "text",
                            "--outfile", str(Path(self.args.profile).resolve())]
        if workers > 1:
            command += ["--workers", str(workers)]
        with log.open("ab") as out:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                command, cwd=ROOT, env=self.server_env(port), stdin=subprocess.DEVNULL,
                stdout=out, stderr=out, preexec_fn=die_with_parent, start_new_session=True)
        server = Server(name, port, process, log)
        self.servers.append(server)
        deadline = now() + 60
        while now() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server {name} exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError):
                conn = Conn(port)
                reply = await conn.request("GET", "/healthz")
                conn.close()
                if reply.status == 200:
                    return server
            await asyncio.sleep(0.1)
        raise RuntimeError(f"server {name} never became healthy:\n{log.read_text()[-3000:]}")

    async def stop_server(self, server: Server) -> None:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            deadline = now() + 20
            while server.process.poll() is None and now() < deadline:
                await asyncio.sleep(0.05)
            if server.process.poll() is None:
                server.process.kill()
                server.process.wait()
        if server in self.servers:
            self.servers.remove(server)

    async def generator(self, job: dict[str, Any]) -> Generator:
        log = self.logs / f"generator-{len(self.generators)}.log"
        with log.open("ab") as err:
            process = await asyncio.create_subprocess_exec(
                sys.executable, str(Path(__file__).resolve()), "--generator",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
                limit=1 << 26, preexec_fn=die_with_parent, start_new_session=True, cwd=ROOT)
        generator = Generator(process, log)
        self.generators.append(generator)
        generator.send(job)
        return generator

    async def finish(self, generator: Generator) -> dict[str, Any]:
        result = await generator.until("result")
        await generator.close()
        self.generators.remove(generator)
        return result

    async def until_waiting(self, server: Server, count: float, timeout: float) -> float:
        deadline = now() + timeout
        value = await gauge(server.port, "wxlogin_waiting_polls")
        while value != count and now() < deadline:
            await asyncio.sleep(0.1)
            value = await gauge(server.port, "wxlogin_waiting_polls")
        return value

    def server_log_news(self) -> list[str]:
        """Warnings and errors the servers logged since the last call, counted by message."""
        seen: Counter[str] = Counter()
        for server in self.servers:
            with server.log.open("rb") as handle:
                handle.seek(server.log_seen)
                text = handle.read().decode(errors="replace")
                server.log_seen = handle.tell()
            for line in text.splitlines():
                match = re.search(r" (WARNING|ERROR|CRITICAL) (.*)", line)
                if match:
                    message = re.sub(r"\[[0-9a-f-]+\] ", "", match.group(2))[:140]
                    seen[f"{server.name}: {match.group(1)} {message}"] += 1
        return [f"{count} × {message}" for message, count in seen.most_common(8)]

    def footer(self, started: float) -> None:
        news = self.server_log_news()
        say(f"\n_took {now() - started:.0f} s; load average after: {loadavg()}; "
            f"server log warnings/errors: {'none' if not news else ''}_")
        for line in news:
            say(f"- `{line}`")

    # -- sections --

    async def waiting(self) -> None:
        plan, a = self.plan, self.a
        assert a is not None and self.monitor is not None
        started = now()
        count = plan.waiting
        say(f"\n## 1. Waiting browsers ({count:,} long-polls on one process)\n")
        rss_before = rss_kb(a.pid)
        generator = await self.generator(
            {"kind": "waiting", "port": a.port, "count": count, "concurrency": 100, "wait": 50})
        created = await generator.until("created")
        rss_created = rss_kb(a.pid)
        generator.send({"cmd": "poll"})
        polling = await generator.until("polling")
        reached = await self.until_waiting(a, count, 60)
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
            total, nonidle, queries = await self.monitor.activity()
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
                        "fake_port": self.fake_port})
        result = await self.finish(generator)
        released = now()
        left = await self.until_waiting(a, 0, 60)
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
        self.footer(started)

    async def wakeups(self) -> None:
        plan, a, b = self.plan, self.a, self.b
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
                generator = await self.generator({
                    "kind": "wakeup", **job, "poll_port": a.port, "push_port": target.port,
                    "fake_port": self.fake_port})
                result = await self.finish(generator)
                await self.until_waiting(a, 0, 30)
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
            f"(pool of {self.pool_size} each) on one database; "
            "the WeChat stand-in answers jscode2session from this process.")
        self.footer(started)

    async def logins(self) -> None:
        plan, a = self.plan, self.a
        assert a is not None
        started = now()
        say(f"\n## 3. Full logins per second, {plan.concurrency} people logging in back to back "
            "(create, draw the code, long-poll, scan, pushCode, logged in)\n")
        workers = await self.start_server("W", workers=2)
        rows = []
        try:
            for name, server in (("1 process", a), ("`--workers 2`, one port", workers)):
                calls_before = Counter(self.fake.calls)
                generator = await self.generator({
                    "kind": "logins", "port": server.port, "fake_port": self.fake_port,
                    "concurrency": plan.concurrency, "warmup": plan.warmup,
                    "seconds": plan.login_seconds})
                await generator.until("window_start")
                groups = {
                    "server": process_tree(server.pid),
                    "PostgreSQL": process_tree(self.pg_pid),
                    "stand-in (this process)": [os.getpid()],
                    "load generator": [generator.process.pid],
                }
                cpu0 = {k: cpu_seconds(pids) for k, pids in groups.items()}
                busy0, t0 = machine_busy(), now()
                in_use: list[float] = []
                sampler = asyncio.create_task(self.sample_pool(server, in_use))
                await generator.until("window_end")
                cpu1 = {k: cpu_seconds(pids) for k, pids in groups.items()}
                busy1, elapsed = machine_busy(), now() - t0
                sampler.cancel()
                result = await self.finish(generator)
                calls = Counter(self.fake.calls)
                calls.subtract(calls_before)
                self.login_runs.append((name, result, calls))
                used = {k: (cpu1[k] - cpu0[k]) / elapsed * 100 for k in groups}
                other = (busy1 - busy0) / elapsed * 100 - sum(used.values())
                cpu = " / ".join(f"{v:.0f}" for v in used.values()) + f" / {max(other, 0):.0f}"
                size = self.pool_size
                pool = (f"{statistics.mean(in_use):.1f} ({sum(v >= size for v in in_use)} of "
                        f"{len(in_use)} at {size})" if in_use else "-")
                rows.append([
                    name, f"**{result['in_window'] / result['seconds']:.0f}**",
                    f"{result['in_window']}", spread(result["durations"], 0), cpu, pool,
                    errors_text(result["errors"])])
        finally:
            await self.stop_server(workers)
        say(table(["server", "logins/s", f"logins in the {plan.login_seconds:g} s window",
                   "one login, p50 / p99 / max (ms)",
                   "CPU % of one core: server / PostgreSQL / stand-in / load generator / "
                   "anything else on the machine",
                   "pool connections in use, mean of scrapes every 0.5 s", "errors"], rows))
        say(f"\nThe machine has {os.cpu_count()} cores for all of it: the server, PostgreSQL, "
            "the WeChat stand-in and the load generator. Each login is a new browser "
            f"(connection and cookie); {plan.warmup:g} s of warm-up are not counted.")
        self.footer(started)

    async def sample_pool(self, server: Server, into: list[float]) -> None:
        while True:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                into.append((await scrape(server.port)).value(
                    "wxlogin_db_pool_connections_in_use"))
            await asyncio.sleep(0.5)

    def wechat_calls(self) -> None:
        say("\n## 4. WeChat calls per login (the stand-in's counters, over section 3)\n")
        apis = [("getwxacodeunlimit (code draws)", "getwxacodeunlimit"),
                ("stable_token (token fetches)", "stable_token"),
                ("cgi-bin/token (token fetches, fallback)", "token"),
                ("jscode2session (code exchanges)", "jscode2session")]
        header = ["WeChat API"]
        for name, result, _calls in self.login_runs:
            header.append(f"{name}: calls / per completed login ({result['completed']} logins,"
                          f" {result['attempts']} begun)")
        rows = []
        for title, key in apis:
            row = [title]
            for _name, result, calls in self.login_runs:
                per = calls[key] / result["completed"] if result["completed"] else math.nan
                row.append(f"{calls[key]} / **{per:.3f}**")
            rows.append(row)
        say(table(header, rows))
        say("\nLogins begun before the window closed were all finished, so every call counted "
            "belongs to a login counted here (a login begun but failed counts in 'begun').")

    async def compare(self) -> None:
        plan, a = self.plan, self.a
        assert a is not None and self.monitor is not None
        started = now()
        lo, hi = plan.delays
        rng = random.Random(self.args.seed)  # noqa: S311 - a benchmark's fixed draw
        delays = [rng.uniform(lo, hi) for _ in range(plan.browsers)]
        say(f"\n## 5. Interval polling (GET …?wait=0 every 1 s) against long-polling "
            f"(wait=50&since=…, as the login page does), {plan.browsers} browsers at once each, "
            f"scan-and-confirm after {lo:g}–{hi:g} s (uniform, seed {self.args.seed})\n")
        await self.monitor.log_statements(True)
        measured: dict[str, dict[str, float]] = {}
        errors: dict[str, str] = {}
        try:
            for approach in ("interval", "long"):
                log0 = self.monitor.log_size()
                metrics0 = (await scrape(a.port)).requests()
                generator = await self.generator({
                    "kind": "compare", "port": a.port, "fake_port": self.fake_port,
                    "approach": approach, "delays": delays, "interval": 1.0, "wait": 50})
                result = await self.finish(generator)
                metrics1 = (await scrape(a.port)).requests()
                own, transactions, resets = self.monitor.statements(log0)
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
            await self.monitor.log_statements(False)
        generator = await self.generator({
            "kind": "idle", "port": a.port, "browsers": plan.browsers, "seed": self.args.seed,
            "spread": plan.idle_spread, "window": plan.idle_window, "interval": 1.0, "wait": 50})
        idle = await self.finish(generator)
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
        self.footer(started)

    # -- everything --

    async def run(self) -> None:
        import asyncpg
        from aiohttp import web
        from wxlogin.storage.embedded_pg import EmbeddedPostgres

        from tests.fakewechat import FakeWeChat

        class BenchWeChat(FakeWeChat):
            """The stand-in plus one control: many codes minted in one call."""

            async def mint_many(self, request: web.Request) -> web.Response:
                """`n` people, `per` codes each: what wx.login gives them, one call each."""
                count = min(int(request.query.get("n", "1")), 10_000)
                per = min(int(request.query.get("per", "1")), 10)
                people = []
                for _ in range(count):
                    openid = "o" + secrets.token_hex(12)
                    people.append([self.mint(openid) for _ in range(per)])
                return web.json_response({"people": people})

            def app(self) -> web.Application:
                app = super().app()
                app.router.add_post("/_bench/mint", self.mint_many)
                return app

        async with contextlib.AsyncExitStack() as stack:
            pg = EmbeddedPostgres(self.work / "pg")
            self.url = pg.start()
            stack.callback(pg.stop)
            self.pg_pid = int((pg.pgdata / "postmaster.pid").read_text().split()[0])
            admin = await asyncpg.connect(self.url)
            await admin.execute("CREATE DATABASE benchmon")
            await admin.close()
            conn = await asyncpg.connect(self.url.replace("@/postgres?", "@/benchmon?"))
            stack.push_async_callback(conn.close)
            self.monitor = Monitor(conn, pg.data_dir / "postgres.log")

            self.fake = BenchWeChat()
            runner = web.AppRunner(self.fake.app(), access_log=None)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            self.fake_port = free_port()
            await web.TCPSite(runner, HOST, self.fake_port, backlog=4096).start()

            stack.push_async_callback(self.stop_all)
            self.a = await self.start_server("A")
            self.b = await self.start_server("B")
            sections = self.args.sections
            if "1" in sections:
                await self.waiting()
            if "2" in sections:
                await self.wakeups()
            if "3" in sections:
                await self.logins()
                self.wechat_calls()
            if "5" in sections:
                await self.compare()

    async def stop_all(self) -> None:
        for generator in list(self.generators):
            await generator.close()
        await asyncio.gather(*(self.stop_server(s) for s in list(self.servers)))


def parse(argv: list[str]) -> tuple[argparse.Namespace, Plan]:
    parser = argparse.ArgumentParser(
        prog="./scripts/bench", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help="small numbers for a smoke run (about 2 minutes)")
    parser.add_argument("--waiting", type=int, metavar="C", help="section 1's waiting browsers")
    parser.add_argument("--burst", type=int, metavar="N", help="section 2's burst size")
    parser.add_argument("--rate", type=float, help="section 2's steady logins per second")
    parser.add_argument("--concurrency", type=int, help="section 3's people at once")
    parser.add_argument("--login-seconds", type=float, help="section 3's measured window")
    parser.add_argument("--browsers", type=int, help="section 5's browsers per approach")
    parser.add_argument("--seed", type=int, default=7, help="section 5's delays (default 7)")
    parser.add_argument("--idle-spread", type=float, metavar="S",
                        help="section 5's pages nobody scans open over S seconds")
    parser.add_argument("--idle-window", type=float, metavar="W",
                        help="section 5's requests of those pages are counted over W seconds")
    parser.add_argument("--sections", default="1235",
                        help="which sections to run, e.g. 35 (default 1235; 4 comes with 3)")
    parser.add_argument("--profile", metavar="FILE",
                        help="run server A under pyinstrument and write its profile to FILE")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    overrides = {"waiting": args.waiting, "burst": args.burst, "rate": args.rate,
                 "concurrency": args.concurrency, "login_seconds": args.login_seconds,
                 "browsers": args.browsers, "idle_spread": args.idle_spread,
                 "idle_window": args.idle_window}
    plan = Plan(**{**plan.__dict__, **{k: v for k, v in overrides.items() if v is not None}})
    return args, plan


async def main_async(args: argparse.Namespace, plan: Plan) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    work = Path(tempfile.mkdtemp(prefix="wxbench-"))
    try:
        await Bench(args, plan, work).run()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    if sys.argv[1:2] == ["--generator"]:
        generator_main()
        return
    sys.path.insert(0, str(ROOT))
    logging.getLogger("wxlogin.postgres").setLevel(logging.ERROR)  # its o+x notice as root
    args, plan = parse(sys.argv[1:])
    say("# wxacode-login load benchmark\n")
    say(f"`$ {shlex.join(['./scripts/bench', *sys.argv[1:]])}`")
    say(f"\n{datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}, load average at start {loadavg()} (other work on "
        "this machine, such as a test run, makes every figure noisier).")
    try:
        asyncio.run(main_async(args, plan))
    except KeyboardInterrupt:
        print("\ninterrupted; everything started was stopped", flush=True)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
