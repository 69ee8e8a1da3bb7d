"""Real `wxlogin serve` processes: two on one database, and the embedded PostgreSQL's lifecycle."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from tests.conftest import free_port
from tests.fakewechat import APPID, SECRET, FakeWeChat
from tests.helpers import until_healthy
from wxlogin.storage.migrations import discover

ROOT = Path(__file__).parent.parent


def spawn(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:  # the child keeps its own descriptor
        return subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "wxlogin", "serve", *args], cwd=ROOT,
            env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT,
        )


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


async def test_two_serve_processes_share_logins(
    pg_url: str, fw: FakeWeChat, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    ports = [free_port(), free_port()]
    for i, port in enumerate(ports):
        env = {
            "WXLOGIN_DATABASE_URL": pg_url, "WXLOGIN_PORT": str(port), "WXLOGIN_APPID": APPID,
            "WXLOGIN_SECRET": SECRET, "WXLOGIN_WECHAT_API_BASE": fw.url,
            "WXLOGIN_DATA_DIR": str(tmp_path / "data"),
            "WXLOGIN_COOKIE_SECRET": "shared-cookie-secret-0123456789abcdef",
        }
        processes.append(spawn(env, tmp_path / f"serve{i}.log"))
    for i, port in enumerate(ports):
        await until_healthy(port, processes[i], tmp_path / f"serve{i}.log")
    a, b = (f"http://127.0.0.1:{port}" for port in ports)

    latencies = []
    # Cookies are per host, not per port: one browser talks to both processes.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser, \
            aiohttp.ClientSession() as phone:
        for _ in range(10):
            async with browser.post(f"{a}/api/scenes") as response:
                scene = (await response.json())["scene"]
            async with browser.get(f"{b}/api/scenes/{scene}/code") as response:
                assert response.status == 200 and await response.read() == fw.image

            async def wait_on_a(scene: str = scene) -> tuple[dict[str, object], float]:
                async with browser.get(f"{a}/api/scenes/{scene}", params={"wait": "20"}) as r:
                    body = await r.json()
                return body, time.monotonic()

            waiting = asyncio.create_task(wait_on_a())
            await asyncio.sleep(0.1)
            sent = time.monotonic()
            async with phone.post(f"{b}/api/pushCode",
                                  json={"scene": scene, "code": fw.mint()}) as response:
                assert response.status == 200
            body, answered = await asyncio.wait_for(waiting, 10)
            assert body["status"] == "confirmed"
            latencies.append(answered - sent)
            async with browser.get(f"{b}/api/me") as response:
                assert response.status == 200  # the session is shared through PostgreSQL
            async with browser.post(f"{a}/api/logout") as response:
                assert response.status == 204
    assert fw.calls["stable_token"] == 1  # the token is shared too
    print(f"across processes: push sent -> poll answered median "
          f"{statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")
    assert max(latencies) < 4  # far below the 5 s re-check: NOTIFY woke the poll


async def test_processes_with_their_own_data_dirs_and_no_cookie_secret_share_logins(
    pg_url: str, fw: FakeWeChat, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """Neither is told a cookie secret: the first to start makes one in the database and the
    other uses it, so a browser logged in through one is logged in at the other."""
    ports = [free_port(), free_port()]
    for i, port in enumerate(ports):
        env = {
            "WXLOGIN_DATABASE_URL": pg_url, "WXLOGIN_PORT": str(port), "WXLOGIN_APPID": APPID,
            "WXLOGIN_SECRET": SECRET, "WXLOGIN_WECHAT_API_BASE": fw.url,
            "WXLOGIN_DATA_DIR": str(tmp_path / f"data{i}"), "WXLOGIN_COOKIE_SECRET": "",
        }
        processes.append(spawn(env, tmp_path / f"serve{i}.log"))
    for i, port in enumerate(ports):
        await until_healthy(port, processes[i], tmp_path / f"serve{i}.log")
    a, b = (f"http://127.0.0.1:{port}" for port in ports)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser, \
            aiohttp.ClientSession() as phone:
        async with browser.post(f"{a}/api/scenes") as response:
            scene = (await response.json())["scene"]
        async with browser.get(f"{b}/api/scenes/{scene}", params={"wait": "0"}) as response:
            assert response.status == 200  # b knows a's browser: not 404 scene_not_found
        async with phone.post(f"{b}/api/pushCode",
                              json={"scene": scene, "code": fw.mint()}) as response:
            assert response.status == 200
        async with browser.get(f"{b}/api/scenes/{scene}", params={"wait": "5"}) as response:
            assert (await response.json())["status"] == "confirmed"
        for server in (a, b):
            async with browser.get(f"{server}/api/me") as response:
                assert response.status == 200
    assert not any((tmp_path / f"data{i}").exists() for i in range(2))  # nothing on disk


def postgres_running(data_dir: Path) -> bool:
    pidfile = data_dir / "pgdata" / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_embedded_postgres_stops_with_the_server(
    fw: FakeWeChat, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    data = tmp_path / "data"
    env = {
        "WXLOGIN_PORT": str(free_port()), "WXLOGIN_APPID": APPID, "WXLOGIN_SECRET": SECRET,
        "WXLOGIN_WECHAT_API_BASE": fw.url, "WXLOGIN_DATA_DIR": str(data),
        "WXLOGIN_DATABASE_URL": "", "DATABASE_URL": "",
    }
    for stop in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
        log = tmp_path / f"serve-{stop.name}.log"
        process = spawn(env, log)
        processes.append(process)
        await until_healthy(int(env["WXLOGIN_PORT"]), process, log)
        assert postgres_running(data)
        process.send_signal(stop)
        code = process.wait(20)
        if stop != signal.SIGKILL:
            assert code == 0, log.read_text()
        deadline = time.monotonic() + 10
        while postgres_running(data) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not postgres_running(data), f"PostgreSQL outlived the server after {stop.name}"


async def test_sigterm_answers_every_waiting_poll_then_stops_everything(
    fw: FakeWeChat, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """Graceful shutdown: listening stops, each held long-poll answers its current status at
    once (browsers poll again elsewhere), the pool closes, the embedded PostgreSQL stops."""
    data, port = tmp_path / "data", free_port()
    env = {
        "WXLOGIN_PORT": str(port), "WXLOGIN_APPID": APPID, "WXLOGIN_SECRET": SECRET,
        "WXLOGIN_WECHAT_API_BASE": fw.url, "WXLOGIN_DATA_DIR": str(data),
        "WXLOGIN_DATABASE_URL": "", "DATABASE_URL": "",
    }
    log = tmp_path / "serve.log"
    process = spawn(env, log)
    processes.append(process)
    await until_healthy(port, process, log)
    site = f"http://127.0.0.1:{port}"
    browsers = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
                for _ in range(20)]
    try:
        scenes = []
        for browser in browsers:
            async with browser.post(f"{site}/api/scenes") as response:
                scenes.append((await response.json())["scene"])

        async def wait(browser: aiohttp.ClientSession, scene: str) -> tuple[int, str, float]:
            async with browser.get(f"{site}/api/scenes/{scene}", params={"wait": "50"}) as r:
                return r.status, (await r.json())["status"], time.monotonic()

        polls = [asyncio.create_task(wait(b, s)) for b, s in zip(browsers, scenes, strict=True)]
        await asyncio.sleep(0.5)
        assert not any(p.done() for p in polls)
        stopped = time.monotonic()
        process.send_signal(signal.SIGTERM)
        answers = await asyncio.wait_for(asyncio.gather(*polls), 10)
        assert {(status, state) for status, state, _ in answers} == {(200, "pending")}
        slowest = max(at for _, _, at in answers) - stopped
        assert slowest < 3, f"polls answered {slowest:.1f} s after SIGTERM"
        assert process.wait(20) == 0, log.read_text()
        with pytest.raises(aiohttp.ClientConnectionError):
            async with browsers[0].get(f"{site}/healthz"):
                pass
        assert not postgres_running(data)
        print(f"\nSIGTERM: 20 waiting polls answered within {slowest * 1000:.0f} ms")
    finally:
        for browser in browsers:
            await browser.close()


def workers_of(parent: int) -> set[int]:
    """The pids of `parent`'s children that run the server (not the embedded PostgreSQL)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"postgres" not in command:
            found.add(int(entry.name))
    return found


async def test_serve_with_workers_shares_one_port_and_replaces_a_dead_worker(
    fw: FakeWeChat, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    data, port = tmp_path / "data", free_port()
    env = {
        "WXLOGIN_PORT": str(port), "WXLOGIN_APPID": APPID, "WXLOGIN_SECRET": SECRET,
        "WXLOGIN_WECHAT_API_BASE": fw.url, "WXLOGIN_DATA_DIR": str(data),
        "WXLOGIN_DATABASE_URL": "", "DATABASE_URL": "", "WXLOGIN_SCENES_PER_MINUTE": "0",
        "WXLOGIN_STEPS_PER_MINUTE": "0",
    }
    log = tmp_path / "serve.log"
    process = spawn(env, log, "--workers", "3")
    processes.append(process)
    await until_healthy(port, process, log)
    deadline = time.monotonic() + 20
    while len(workers_of(process.pid)) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    first = workers_of(process.pid)
    assert len(first) == 3, log.read_text()
    assert "3 workers" in log.read_text()
    site = f"http://127.0.0.1:{port}"

    async def login(n: int) -> str:
        # A new connection each time, so the poll and the push land on any of the workers.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            async with browser.post(f"{site}/api/scenes") as response:
                scene = (await response.json())["scene"]

            async def wait() -> str:
                async with browser.get(f"{site}/api/scenes/{scene}",
                                       params={"wait": "20"}) as answer:
                    state: str = (await answer.json())["status"]
                    return state

            waiting = asyncio.create_task(wait())
            await asyncio.sleep(0.2)
            async with aiohttp.ClientSession() as phone, phone.post(
                    f"{site}/api/pushCode", json={"scene": scene, "code": fw.mint()}) as pushed:
                assert pushed.status == 200
            # Well within the 5 s re-check: the wake-up crossed workers through NOTIFY.
            return await asyncio.wait_for(waiting, 3)

    assert await asyncio.gather(*(login(n) for n in range(30))) == ["confirmed"] * 30

    victim = next(iter(first))
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = workers_of(process.pid)
        if len(now) == 3 and victim not in now:
            break
        await asyncio.sleep(0.1)
    assert len(workers_of(process.pid)) == 3 and victim not in workers_of(process.pid)
    await until_healthy(port, process, log)
    assert await login(99) == "confirmed"

    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0, log.read_text()
    assert not workers_of(process.pid) and not postgres_running(data)


def test_sandbox_mode_refuses_workers(tmp_path: Path) -> None:
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "wxlogin", "serve", "--workers", "2"], cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("WXLOGIN_")},
             "WXLOGIN_DATA_DIR": str(tmp_path)},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2 and "drop --workers" in result.stderr


async def test_serve_without_credentials_runs_the_sandbox_and_says_so(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    log = tmp_path / "sandbox.log"
    env = {"WXLOGIN_APPID": "", "WXLOGIN_SECRET": "", "WXLOGIN_PORT": str(port),
           "WXLOGIN_DATA_DIR": str(tmp_path / "data"), "WXLOGIN_DATABASE_URL": "",
           "DATABASE_URL": "", "WXLOGIN_PUBLIC_URL": ""}
    processes.append(spawn(env, log))
    await until_healthy(port, processes[-1], log)
    first_lines = log.read_text().splitlines()[:4]
    assert "SANDBOX MODE" in "\n".join(first_lines)
    assert f"http://127.0.0.1:{port}/" in "\n".join(first_lines)
    assert (tmp_path / "data" / "sandbox.json").stat().st_mode & 0o777 == 0o600


def test_the_sandbox_refuses_a_public_address(tmp_path: Path) -> None:
    base = {**os.environ, "WXLOGIN_APPID": "", "WXLOGIN_SECRET": "",
            "WXLOGIN_DATA_DIR": str(tmp_path), "WXLOGIN_PUBLIC_URL": "https://login.example.com"}
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "wxlogin", "serve"], cwd=ROOT, capture_output=True, text=True,
        env=base, timeout=60,
    )
    assert result.returncode == 2
    assert "WXLOGIN_SANDBOX_FORCE" in result.stderr and "WXLOGIN_APPID" in result.stderr


def test_a_bad_configuration_lists_every_problem(tmp_path: Path) -> None:
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "wxlogin", "serve"], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "WXLOGIN_APPID": "wx1", "WXLOGIN_SECRET": "",
             "WXLOGIN_PORT": "http", "WXLOGIN_DATA_DIR": str(tmp_path)}, timeout=60,
    )
    assert result.returncode == 2
    assert "WXLOGIN_SECRET" in result.stderr and "WXLOGIN_PORT" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("problem", ["more connections than max_connections", "no database"])
def test_a_pool_that_cannot_open_stops_serve_with_one_clear_line(
    pg_url: str, fw: FakeWeChat, tmp_path: Path, problem: str
) -> None:
    env = {**os.environ, "WXLOGIN_APPID": APPID, "WXLOGIN_SECRET": SECRET,
           "WXLOGIN_WECHAT_API_BASE": fw.url, "WXLOGIN_DATA_DIR": str(tmp_path),
           "WXLOGIN_PORT": str(free_port()), "WXLOGIN_DATABASE_URL": pg_url}
    if problem == "no database":
        env["WXLOGIN_DATABASE_URL"] = f"postgresql://wxlogin@127.0.0.1:{free_port()}/wxlogin"
    else:
        env["WXLOGIN_DB_POOL_SIZE"] = "1000"  # the test cluster allows 200
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "wxlogin", "serve"], cwd=ROOT, capture_output=True, text=True,
        env=env, timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert "cannot open the database pool of" in result.stderr
    assert "max_connections" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_a_broken_old_cookie_secret_stops_the_first_serve_with_one_clear_line(
    pg_url: str, fw: FakeWeChat, tmp_path: Path, workers: str,
    db: asyncpg.Connection[asyncpg.Record],
) -> None:
    """An earlier version's key that cannot be read is not silently replaced (for good, in the
    database), which would log everyone out: serve stops and says which file."""
    (tmp_path / "cookie_secret").write_text("cut")
    env = {**os.environ, "WXLOGIN_APPID": APPID, "WXLOGIN_SECRET": SECRET,
           "WXLOGIN_WECHAT_API_BASE": fw.url, "WXLOGIN_DATA_DIR": str(tmp_path),
           "WXLOGIN_PORT": str(free_port()), "WXLOGIN_DATABASE_URL": pg_url,
           "WXLOGIN_COOKIE_SECRET": ""}
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "wxlogin", "serve", "--workers", workers], cwd=ROOT,
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert f"{tmp_path / 'cookie_secret'} holds no usable cookie secret" in result.stderr
    assert "Traceback" not in result.stderr
    assert await db.fetchval("SELECT count(*) FROM wxlogin.secrets") == 0


def test_wxlogin_migrate_applies_then_reports_up_to_date(tmp_path: Path) -> None:
    env = {**os.environ, "WXLOGIN_DATA_DIR": str(tmp_path / "data"),
           "WXLOGIN_DATABASE_URL": "", "DATABASE_URL": ""}
    runs = [
        subprocess.run(  # noqa: S603
            [sys.executable, "-m", "wxlogin", "migrate"], cwd=ROOT, capture_output=True,
            text=True, env=env, timeout=120,
        )
        for _ in range(2)
    ]
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    assert runs[0].stdout.strip() == "applied: " + ", ".join(m.name for m in discover())
    assert runs[1].stdout.strip() == "the database is up to date"
    assert not postgres_running(tmp_path / "data")


async def test_wxlogin_users_uses_the_embedded_database_a_server_is_running(
    fw: FakeWeChat, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    data, port = tmp_path / "data", free_port()
    env = {"WXLOGIN_PORT": str(port), "WXLOGIN_APPID": APPID, "WXLOGIN_SECRET": SECRET,
           "WXLOGIN_WECHAT_API_BASE": fw.url, "WXLOGIN_DATA_DIR": str(data),
           "WXLOGIN_DATABASE_URL": "", "DATABASE_URL": ""}
    log = tmp_path / "serve.log"
    processes.append(spawn(env, log))
    await until_healthy(port, processes[-1], log)
    listing = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wxlogin", "users", "list", cwd=ROOT, env={**os.environ, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(listing.communicate(), 60)
    assert listing.returncode == 0, err.decode()
    assert "nickname" in out.decode()
    assert postgres_running(data)  # still the server's, still up
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 200


def test_the_open_file_limit_is_raised_to_the_hard_one_for_many_waiting_browsers() -> None:
    """`serve` calls this first: each waiting browser is an open socket, and a soft limit of
    1,024 would refuse connections long before memory or CPU run short."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard == resource.RLIM_INFINITY or hard > 256
    script = (
        "import resource; from wxlogin.ops.cli import more_open_files;"
        " print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], more_open_files())"
    )
    result = subprocess.run(  # noqa: S603 - sh with our own interpreter and script
        ["/bin/sh", "-c", 'ulimit -S -n 256 && exec "$0" -c "$1"', sys.executable, script],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )
    before, after = map(int, result.stdout.split())
    assert before == 256
    assert after > 256 and (after == hard or hard == resource.RLIM_INFINITY)


async def test_serve_makes_the_signing_keys_at_its_first_start(
    pg_url: str, fw: FakeWeChat, tmp_path: Path, processes: list[subprocess.Popen[bytes]],
    db: asyncpg.Connection[asyncpg.Record],
) -> None:
    port = free_port()
    processes.append(spawn({
        "WXLOGIN_DATABASE_URL": pg_url, "WXLOGIN_PORT": str(port), "WXLOGIN_APPID": APPID,
        "WXLOGIN_SECRET": SECRET, "WXLOGIN_WECHAT_API_BASE": fw.url,
        "WXLOGIN_DATA_DIR": str(tmp_path / "data"),
    }, tmp_path / "serve.log"))
    await until_healthy(port, processes[0], tmp_path / "serve.log")
    states = await db.fetch("SELECT alg, state FROM wxlogin.signing_keys ORDER BY alg, state")
    assert [(r["alg"], r["state"]) for r in states] == [
        ("ES256", "current"), ("ES256", "next"), ("RS256", "current"), ("RS256", "next")]
