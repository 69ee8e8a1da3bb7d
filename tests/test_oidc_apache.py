"""Apache with Debian's mod_auth_openidc as a relying party, configured exactly as docs/oidc.md
says, driven by Chromium: from the protected page through the scan (sandbox mode) and back to the
page, which prints REMOTE_USER and the claims; then logout through wxlogin; then a key rotation
and a second login with Apache still running. ./scripts/test installs the Debian packages."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, expect

from tests.conftest import free_port
from tests.test_browser import TIMEOUT, read_code, snap
from wxlogin.clients import OidcClient
from wxlogin.clock import FakeClock
from wxlogin.http.app import create_app
from wxlogin.settings import Settings
from wxlogin.storage import signing

ROOT = Path(__file__).resolve().parent.parent
MODULES = Path("/usr/lib/apache2/modules")
SECRET = "apache-client-secret-0123456789"
WHOAMI = """#!/bin/sh
printf 'Content-Type: text/plain\\n\\n'
echo "REMOTE_USER=$REMOTE_USER"
env | grep '^OIDC_CLAIM_' | sort
"""


def documented_config() -> str:
    text = (ROOT / "docs" / "oidc.md").read_text()
    found = re.search(r"<!-- example: apache -->\n```apache\n(.*?)```", text, re.S)
    assert found is not None
    return found.group(1)


@pytest.fixture
def clock() -> FakeClock:
    """Real time: Apache checks `iat` and `exp` against its own clock."""
    return FakeClock(datetime.now(UTC))


@pytest.fixture
def apache_port() -> int:
    return free_port()


@pytest.fixture
async def provider(
    aiohttp_server: Any, settings: Settings, clock: FakeClock, apache_port: int
) -> TestServer:
    """wxlogin in sandbox mode, with Apache registered as a client."""
    port = free_port()
    apache = f"http://127.0.0.1:{apache_port}"
    client = OidcClient("apache-3f9a1c2e", (f"{apache}/private/redirect_uri",), SECRET,
                        post_logout_redirect_uris=(f"{apache}/",))
    sandboxed = replace(settings, appid=None, secret=None, port=port,
                        public_url=f"http://127.0.0.1:{port}", oidc_clients=(client,))
    server: TestServer = await aiohttp_server(
        create_app(sandboxed, clock=clock, recheck_every=0.5), port=port
    )
    return server


@pytest.fixture
def apache(provider: TestServer, apache_port: int) -> Iterator[str]:
    binary = shutil.which("apache2") or "/usr/sbin/apache2"
    assert Path(binary).exists(), "Apache is missing: ./scripts/test installs apache2"
    assert (MODULES / "mod_auth_openidc.so").exists(), "libapache2-mod-auth-openidc is missing"
    # Apache's children run as nobody: everything they read must be readable by anyone.
    work = Path(tempfile.mkdtemp(prefix="wxlogin-apache-"))
    work.chmod(0o755)
    (work / "www").mkdir(mode=0o755)
    script = work / "www" / "whoami.cgi"
    script.write_text(WHOAMI)
    script.chmod(0o755)
    issuer = str(provider.make_url("")).rstrip("/")
    site = f"http://127.0.0.1:{apache_port}"
    config = documented_config()
    for placeholder, value in (("https://login.example.com", issuer),
                               ("https://www.example.com", site),
                               ("THE-CLIENT-SECRET", SECRET)):
        config = config.replace(placeholder, value)
    modules = ("mpm_event", "authn_core", "authz_core", "authz_user", "auth_openidc", "cgid",
               "alias", "mime")
    (work / "apache.conf").write_text("\n".join([
        "ServerRoot /etc/apache2", f"Listen 127.0.0.1:{apache_port}", "ServerName 127.0.0.1",
        f"PidFile {work}/apache.pid", f"ErrorLog {work}/error.log", "LogLevel warn",
        "User nobody", "Group nogroup", f"ScriptSock {work}/cgid.sock",
        *(f"LoadModule {name}_module {MODULES}/mod_{name}.so" for name in modules),
        "TypesConfig /etc/mime.types", f"DocumentRoot {work}/www",
        f'ScriptAlias /private/whoami "{script}"',
        f'<Directory "{work}/www">\n    Require all granted\n</Directory>',
        config,
    ]) + "\n")
    checked = subprocess.run([binary, "-f", str(work / "apache.conf"), "-t"],  # noqa: S603
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(  # noqa: S603
        [binary, "-f", str(work / "apache.conf"), "-DFOREGROUND"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        yield site
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log = (work / "error.log").read_text() if (work / "error.log").exists() else ""
        shutil.rmtree(work, ignore_errors=True)
        print(log[-4000:])


async def scan_and_confirm(desk: Page, chromium: Browser, nickname: str, shot: str) -> None:
    phone = await (await chromium.new_context(viewport={"width": 390, "height": 844})).new_page()
    await phone.goto(await read_code(desk))
    await snap(desk, f"apache-{shot}-1-login-page")
    await phone.locator("#phone-nickname").fill(nickname)
    await phone.locator("#phone-continue").click()
    await expect(phone.locator("#phone-context")).to_be_visible(timeout=TIMEOUT)
    await phone.locator("#phone-confirm").click()
    await expect(phone.locator("#phone-status")).to_contain_text("Logged in", timeout=TIMEOUT)
    await phone.context.close()


async def test_apache_protects_a_page_with_the_scan(
    apache: str, provider: TestServer, chromium: Browser,
    db: asyncpg.Connection[asyncpg.Record], clock: FakeClock,
) -> None:
    context = await chromium.new_context(locale="en-US")
    desk = await context.new_page()
    await desk.goto(f"{apache}/private/whoami")
    issuer = str(provider.make_url("")).rstrip("/")
    await expect(desk).to_have_url(re.compile(re.escape(f"{issuer}/login?")), timeout=TIMEOUT)
    await scan_and_confirm(desk, chromium, "Grace", "first")
    await expect(desk).to_have_url(f"{apache}/private/whoami", timeout=TIMEOUT)
    page = await desk.locator("body").inner_text()
    await snap(desk, "apache-first-2-protected-page")
    assert re.search(r"^REMOTE_USER=wx_[a-z0-9]{12}$", page, re.M), page
    assert "OIDC_CLAIM_name=Grace" in page and "OIDC_CLAIM_iss=" + issuer in page

    # Logout through wxlogin: Apache sends the browser to the end-session endpoint and back.
    await desk.goto(f"{apache}/private/redirect_uri?logout={apache}/")
    await expect(desk).to_have_url(f"{apache}/", timeout=TIMEOUT)
    assert await logged_out(desk, issuer)  # wxlogin's session ended too

    # A new signing key while Apache runs: the next login is signed with a key Apache has
    # had in the JWKS since before (published ahead), and it still verifies.
    old = await signing.current(db, "RS256")
    await signing.rotate(db, clock.now(), force=True)
    new = await signing.current(db, "RS256")
    assert old is not None and new is not None and new.kid != old.kid
    await desk.goto(f"{apache}/private/whoami")
    await expect(desk).to_have_url(re.compile(re.escape(f"{issuer}/login?")), timeout=TIMEOUT)
    await scan_and_confirm(desk, chromium, "Grace", "second")
    await expect(desk).to_have_url(f"{apache}/private/whoami", timeout=TIMEOUT)
    assert "OIDC_CLAIM_name=Grace" in await desk.locator("body").inner_text()
    await context.close()


async def logged_out(page: Page, issuer: str) -> bool:
    answer = await page.request.get(f"{issuer}/api/me")
    return answer.status == 401

