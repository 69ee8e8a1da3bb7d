"""examples/blog run as its one command does (`python -m examples.blog`), in sandbox mode: the
login under /wxlogin on the blog's port, the sandbox's stand-in reached under the prefix too."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import zxingcpp
from PIL import Image
from yarl import URL

from tests.conftest import free_port
from tests.helpers import until_healthy

ROOT = Path(__file__).resolve().parent.parent


async def test_the_example_blog_in_sandbox_mode(pg_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WXLOGIN_")}
    env.update(WXLOGIN_DATABASE_URL=pg_url, WXLOGIN_PORT=str(port),
               WXLOGIN_DATA_DIR=str(tmp_path / "data"))
    log = tmp_path / "blog.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "examples.blog"], cwd=ROOT, env=env, stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        await until_healthy(port, process, log, path="/wxlogin/healthz")
        site = f"http://127.0.0.1:{port}"
        assert f"blog: open {site}/posts/hello" in log.read_text()
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(site, cookie_jar=jar) as reader, \
                aiohttp.ClientSession(site) as phone:
            page = await (await reader.get("/posts/hello")).text()
            assert "Log in with WeChat to comment" in page

            made = await (await reader.post("/wxlogin/api/scenes")).json()
            scene = made["scene"]
            drawn = await reader.get(made["code_url"])
            assert drawn.status == 200
            qr = zxingcpp.read_barcodes(Image.open(io.BytesIO(await drawn.read())))
            phone_page = URL(qr[0].text)
            assert (phone_page.path, phone_page.query["scene"]) == (
                "/wxlogin/sandbox/phone", scene)

            async def wx_login() -> str:
                answer = await phone.post("/wxlogin/sandbox/wechat/_phone/login",
                                          json={"nickname": "小明", "unionid": True})
                code: str = (await answer.json())["code"]
                return code

            scanned = await phone.post(f"/wxlogin/api/scenes/{scene}/scan",
                                       json={"code": await wx_login()})
            assert scanned.status == 200, await scanned.text()
            code = await wx_login()
            profile: dict[str, Any] = await (await phone.post(
                "/wxlogin/sandbox/wechat/_phone/userinfo", json={"code": code})).json()
            pushed = await phone.post("/wxlogin/api/pushCode",
                                      json={"scene": scene, "code": code, **profile})
            assert pushed.status == 200, await pushed.text()
            answer = await (await reader.get(f"/wxlogin/api/scenes/{scene}",
                                             params={"since": "scanned"})).json()
            assert answer["status"] == "confirmed", answer

            page = await (await reader.get("/posts/hello")).text()
            assert '<strong id="me">小明</strong>' in page
            posted = await reader.post("/posts/hello/comments", data={"body": "你好"})
            assert posted.status == 200 and str(posted.url) == f"{site}/posts/hello"
            assert "<strong>小明</strong>: 你好" in await posted.text()
    finally:
        process.terminate()
        process.wait(15)
