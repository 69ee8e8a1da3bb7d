"""docs/deploy/nginx.conf, run by a real nginx: anonymous visitors are sent to the login, and
after logging in through the sandbox the site is served with the user in trusted headers."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import signal
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from tests.conftest import free_port
from wxlogin.clock import FakeClock
from wxlogin.http.app import create_app
from wxlogin.settings import Settings
from wxlogin.storage.queries import set_group

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "docs" / "deploy" / "nginx.conf"
SEEN = web.AppKey("seen", list)


def nginx_binary() -> str:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(found).exists(), "nginx is missing: ./scripts/test installs Debian's nginx-light"
    return found


@pytest.fixture
async def stack(aiohttp_server: Any, settings: Settings, clock: FakeClock,
                tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    front, login_port = free_port(), free_port()
    # The site behind the proxy: it shows what nginx tells it about the visitor.
    site = web.Application()
    site[SEEN] = []

    async def page(request: web.Request) -> web.Response:
        request.app[SEEN].append(dict(request.headers))
        return web.json_response({
            "user": request.headers.get("X-Wxlogin-User-Id", ""),
            "nickname": unquote(request.headers.get("X-Wxlogin-Nickname", "")),
            "groups": request.headers.get("X-Wxlogin-Groups", ""),
        })

    site.router.add_get("/{tail:.*}", page)
    site_server = await aiohttp_server(site)
    login = replace(settings, appid=None, secret=None, port=login_port,
                    public_url=f"http://127.0.0.1:{front}",
                    trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))
    await aiohttp_server(create_app(login, clock=clock, recheck_every=0.5), port=login_port)

    conf = SHIPPED.read_text()
    conf = conf.replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{login_port};")
    conf = conf.replace("server 127.0.0.1:3000;", f"server 127.0.0.1:{site_server.port};")
    conf = conf.replace("listen 80;", f"listen 127.0.0.1:{front};")
    assert conf.count(str(front)) == 1 and conf.count(str(login_port)) == 1
    (tmp_path / "site.conf").write_text(conf)
    (tmp_path / "nginx.conf").write_text(f"""
        worker_processes 1;
        error_log {tmp_path}/error.log;
        pid {tmp_path}/nginx.pid;
        events {{ worker_connections 64; }}
        http {{
            access_log off;
            client_body_temp_path {tmp_path}/body;
            proxy_temp_path {tmp_path}/proxy;
            include {tmp_path}/site.conf;
        }}
    """)
    process = await asyncio.create_subprocess_exec(
        nginx_binary(), "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
        "-g", "daemon off;" + (" user root;" if os.geteuid() == 0 else ""),
    )
    base = f"http://127.0.0.1:{front}"
    async with aiohttp.ClientSession() as probe:
        for _ in range(100):
            try:
                async with probe.get(base + "/api/me") as response:
                    if response.status == 401:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        else:
            raise AssertionError((tmp_path / "error.log").read_text())
    yield {"base": base, "login": f"http://127.0.0.1:{login_port}",
           "database_url": settings.database_url or ""}
    process.send_signal(signal.SIGQUIT)
    await asyncio.wait_for(process.wait(), 10)


async def test_a_site_behind_nginx_and_the_login(stack: dict[str, str]) -> None:
    base = stack["base"]
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as browser, \
            aiohttp.ClientSession() as phone:
        headers = {"X-Wxlogin-User-Id": "999", "X-Wxlogin-Nickname": "forged"}
        async with browser.get(base + "/articles/7", allow_redirects=False,
                               headers=headers) as response:
            assert response.status == 302
            assert response.headers["Location"].endswith("/login?next=/articles/7")
        async with browser.get(base + "/admin/users", allow_redirects=False) as response:
            assert response.status == 302  # anonymous: to the login, as everywhere

        async with browser.get(base + "/login?next=/articles/7") as response:
            assert response.status == 200 and "wxlogin-code" in await response.text()
        async with browser.post(base + "/api/scenes") as response:
            scene = (await response.json())["scene"]
        async with browser.get(f"{base}/api/scenes/{scene}/code") as response:
            assert response.status == 200
        async with phone.post(base + "/sandbox/wechat/_phone/login", allow_redirects=False,
                              json={"nickname": "Ōno 小野"}) as response:
            assert response.status == 302  # nginx exposes only the login's own paths
        async with phone.post(f"{base}/api/scenes/{scene}/scan",
                              json={"code": await sandbox_code(stack, "Ōno 小野")}) as r:
            assert r.status == 200
        async with phone.post(f"{base}/api/pushCode",
                              json={"scene": scene, "code": await sandbox_code(stack, "Ōno 小野"),
                                    "nickName": "Ōno 小野"}) as r:
            assert r.status == 200
        async with browser.get(f"{base}/api/scenes/{scene}", params={"wait": "5"}) as r:
            assert (await r.json())["status"] == "confirmed"

        async with browser.get(base + "/articles/7", headers=headers) as response:
            assert response.status == 200
            seen = await response.json()
        assert seen == {"user": "1", "nickname": "Ōno 小野", "groups": ""}  # ours, not forged

        # The part for one group: 403 until the owner puts the visitor in it.
        async with browser.get(base + "/admin/users", allow_redirects=False) as response:
            assert response.status == 403
        conn = await asyncpg.connect(stack["database_url"])
        try:
            await set_group(conn, 1, "admin", True, datetime.now(UTC))
        finally:
            await conn.close()
        async with browser.get(base + "/admin/users",
                               headers={"X-Wxlogin-Groups": "forged"}) as response:
            assert response.status == 200
            assert (await response.json())["groups"] == "admin"
        # wxlogin's own owner's page (`/admin` exactly) and its actions, and invitation links,
        # pass through too.
        async with browser.get(base + "/admin") as response:
            assert response.status == 200 and 'id="activity"' in await response.text()
        async with browser.post(base + "/api/admin/invitations", data={"uses": "1"},
                                headers={"Origin": base}) as response:
            assert response.status == 200
            page = await response.text()
        link = page.split('id="shown-value" readonly value="', 1)[1].split('"', 1)[0]
        assert link.startswith(base + "/invite/")
        async with aiohttp.ClientSession() as newcomer, newcomer.get(
                link, headers={"Accept": "text/html"}) as response:
            assert response.status == 200 and "wxlogin-code" in await response.text()

        async with browser.post(base + "/api/logout") as response:
            assert response.status == 204
        async with browser.get(base + "/articles/7", allow_redirects=False) as response:
            assert response.status == 302


async def sandbox_code(stack: dict[str, str], nickname: str) -> str:
    """wx.login, asked of the sandbox directly (nginx does not expose /sandbox/)."""
    login_base = stack["login"]
    async with aiohttp.ClientSession() as http, http.post(
        login_base + "/sandbox/wechat/_phone/login", json={"nickname": nickname}
    ) as response:
        code: str = (await response.json())["code"]
        return code
