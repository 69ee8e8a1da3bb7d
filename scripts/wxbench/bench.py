"""The orchestrator: the embedded PostgreSQL, the stand-in, the `wxlogin serve` processes and the
load generators it starts (and stops, whatever happens), and the sections it runs in turn."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .client import Conn, gauge
from .common import HOST, PACKAGE, ROOT, die_with_parent, free_port, now
from .generator import Generator
from .options import Plan
from .postgres import Monitor
from .procfs import loadavg
from .sections import (
    logins,
    official_account,
    oidc,
    owner_page,
    polling,
    waiting,
    wakeup,
    wechat_calls,
)
from .tables import say


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
            "WXLOGIN_DRAW_BUDGET": "0", "WXLOGIN_OIDC_CLIENTS": oidc.CLIENTS,
            "WXLOGIN_OA_APPID": official_account.OA_APPID,
            "WXLOGIN_OA_SECRET": official_account.OA_SECRET,
            "WXLOGIN_OA_TOKEN": official_account.OA_TOKEN,
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
                sys.executable, str(PACKAGE), "--generator",
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

    # -- everything --

    async def run(self) -> None:
        import asyncpg
        from aiohttp import web

        from wxlogin.storage.embedded_pg import EmbeddedPostgres

        from .standin import BenchWeChat

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
            self.fake.apps[official_account.OA_APPID] = official_account.OA_SECRET
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
                await waiting.run(self)
            if "2" in sections:
                await wakeup.run(self)
            if "3" in sections:
                await logins.run(self)
                wechat_calls.run(self)
            if "5" in sections:
                await polling.run(self)
            if "6" in sections:
                await oidc.run(self)
            if "7" in sections:
                await owner_page.run(self)
            if "8" in sections:
                await official_account.run(self)

    async def stop_all(self) -> None:
        for generator in list(self.generators):
            await generator.close()
        await asyncio.gather(*(self.stop_server(s) for s in list(self.servers)))
