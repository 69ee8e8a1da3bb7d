"""Push-to-browser wake-up latency, in one process and across two, on a real PostgreSQL.

Starts the embedded PostgreSQL, the WeChat stand-in and two `wxlogin serve` processes sharing the
database, then runs logins driven only over HTTP: a browser long-polls its scene on process A
while the "phone" pushes the code to A (one process) or to B (across processes). Prints a table.
Run it with ./scripts/bench-wakeup [LOGINS].
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import free_port  # noqa: E402
from tests.fakewechat import APPID, SECRET, FakeWeChat  # noqa: E402
from tests.helpers import until_healthy  # noqa: E402
from wxlogin.storage.embedded_pg import EmbeddedPostgres  # noqa: E402


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def run(logins: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="wxbench-"))
    pg = EmbeddedPostgres(work / "pg")
    url = pg.start()
    fake = FakeWeChat()
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    fake_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", fake_port).start()
    ports = [free_port(), free_port()]
    servers = []
    for port in ports:
        env = {**os.environ, "WXLOGIN_DATABASE_URL": url, "WXLOGIN_PORT": str(port),
               "WXLOGIN_APPID": APPID, "WXLOGIN_SECRET": SECRET,
               "WXLOGIN_WECHAT_API_BASE": f"http://127.0.0.1:{fake_port}",
               "WXLOGIN_DATA_DIR": str(work / "data"), "WXLOGIN_LOG_LEVEL": "WARNING",
               "WXLOGIN_COOKIE_SECRET": "bench-cookie-secret-0123456789abcdefgh",
               # Every simulated browser and phone is 127.0.0.1: the limits would stop them.
               "WXLOGIN_SCENES_PER_MINUTE": "0", "WXLOGIN_STEPS_PER_MINUTE": "0",
               "WXLOGIN_POLLS_PER_IP": "0", "WXLOGIN_DRAW_BUDGET": "0"}
        servers.append(subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "wxlogin", "serve"], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    a, b = (f"http://127.0.0.1:{port}" for port in ports)
    try:
        for port in ports:
            await until_healthy(port)
        rows = []
        async with aiohttp.ClientSession() as phone:
            for label, push_to in (("one process", a), ("across two processes", b)):
                wake, trip, after = [], [], []
                for _ in range(logins):
                    jar = aiohttp.CookieJar(unsafe=True)
                    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
                        async with browser.post(f"{a}/api/scenes") as response:
                            scene = (await response.json())["scene"]
                        poll = asyncio.create_task(
                            browser.get(f"{a}/api/scenes/{scene}", params={"wait": "20"}))
                        await asyncio.sleep(0.02)
                        code = fake.mint()
                        sent = time.perf_counter()
                        async with phone.post(f"{push_to}/api/pushCode",
                                              json={"scene": scene, "code": code}) as response:
                            assert response.status == 200, await response.text()
                        pushed = time.perf_counter()
                        answer = await poll
                        answered = time.perf_counter()
                        assert (await answer.json())["status"] == "confirmed"
                        answer.release()
                        wake.append((answered - sent) * 1000)
                        trip.append((pushed - sent) * 1000)
                        after.append((answered - pushed) * 1000)
                rows.append((label, wake, trip, after))
        print(f"\nwake-up latency, {logins} logins each, 2 serve processes on one embedded "
              f"PostgreSQL (pool 10 each), this machine ({os.cpu_count()} cores)\n")
        print("| path | push sent → browser answered, p50 / p99 / max (ms) "
              "| pushCode round trip, p50 (ms) "
              "| browser answered after push reply, p50 / p99 (ms) |")
        print("| --- | --- | --- | --- |")
        for label, wake, trip, late in rows:
            print(f"| {label} | {statistics.median(wake):.1f} / {percentile(wake, 0.99):.1f} / "
                  f"{max(wake):.1f} | {statistics.median(trip):.1f} | "
                  f"{statistics.median(late):.1f} / {percentile(late, 0.99):.1f} |")
        print(f"\nWeChat calls: {dict(fake.calls)}")
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            server.wait(20)
        await runner.cleanup()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
