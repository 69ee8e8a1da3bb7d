"""The package as users get it: the wheel and sdist built from this checkout, the wheel installed
into a fresh venv outside it, and that install migrating, serving and logging a user in from an
empty directory, with nothing of the checkout on its path.

About 6 s on 2 cores with uv's cache warm (as scripts/bootstrap.sh leaves it): `uv build` (the
sdist, then the wheel from the sdist) ~1.5 s, the venv ~0.6 s, the first import ~1.2 s (bytecode),
`wxlogin migrate` on a new embedded PostgreSQL ~2 s, `wxlogin serve` up ~0.5 s.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path, PurePosixPath

import aiohttp
import pytest

from tests.conftest import free_port
from tests.helpers import until_healthy
from wxlogin.i18n import STRINGS
from wxlogin.storage.migrations import discover
from wxlogin.version import __version__

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "server" / "wxlogin"
DIST_INFO = f"wxacode_login-{__version__}.dist-info"
SDIST_ROOT = f"wxacode_login-{__version__}"
# Never in an sdist: local environments, caches, generated files.
LOCAL = {".venv", "node_modules", "test-artifacts", ".wxlogin", "__pycache__", ".git",
         ".pytest_cache", ".mypy_cache", ".ruff_cache"}


@pytest.fixture(autouse=True)
def clean_db() -> None:
    """Overrides conftest's: the installed package brings its own database here."""


def package_files() -> list[str]:
    """Every file of the import package in the checkout, as a path inside the wheel."""
    return sorted(
        "wxlogin/" + path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def migration_files() -> list[str]:
    return sorted(path.name for path in (ROOT / "sql").iterdir() if path.is_file())


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # noqa: S603 - our own tools, fixed arguments
        [str(arg) for arg in args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result


def uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert found, "uv is missing: scripts/bootstrap.sh installs it into .venv"
    return found


def uv_env() -> dict[str, str]:
    return {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}


@dataclass(frozen=True)
class Dist:
    wheel: Path
    sdist: Path


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """The sdist, and the wheel built from that sdist (as `uv build` does), outside the checkout."""
    out = tmp_path_factory.mktemp("dist")
    run(uv(), "build", "--python", sys.executable, "--out-dir", out, ROOT,
        cwd=out, env=uv_env())
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(out.iterdir())
    return Dist(wheels[0], sdists[0])


@dataclass(frozen=True)
class Venv:
    path: Path
    python: Path
    site_packages: Path


def clean_env(venv: Venv) -> dict[str, str]:
    """The environment of a user's shell with the venv activated: nothing of this checkout or of
    the test run's configuration (no PYTHONPATH, no WXLOGIN_* or database URL)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("WXLOGIN_", "PYTHON", "VIRTUAL_ENV", "UV_"))
           and key != "DATABASE_URL"}
    env["PATH"] = f"{venv.path / 'bin'}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env["VIRTUAL_ENV"] = str(venv.path)
    return env


@pytest.fixture(scope="module")
def venv(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A fresh venv (under the temporary folder, never /root: the embedded PostgreSQL runs its
    binaries from it as `nobody`) with the wheel and the dependencies its metadata names, held
    to requirements.txt's pins so uv's cache serves them."""
    path = tmp_path_factory.mktemp("venv") / "venv"
    run(uv(), "venv", "--quiet", "--python", sys.executable, path, cwd=path.parent, env=uv_env())
    python = path / "bin" / "python"
    run(uv(), "pip", "install", "--quiet", "--python", python,
        "--constraint", ROOT / "requirements.txt", dist.wheel, cwd=path.parent, env=uv_env())
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
               cwd=path.parent).stdout.strip()
    return Venv(path, python, Path(site))


@pytest.fixture(scope="module")
def empty_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where a user runs `wxlogin` from: nothing in it, so `./.wxlogin` (the default data dir)
    is made here."""
    return tmp_path_factory.mktemp("empty")


# --- What the archives hold --------------------------------------------------------------------


def test_the_wheel_holds_wxlogin_and_all_its_data_and_nothing_else(dist: Dist) -> None:
    with zipfile.ZipFile(dist.wheel) as wheel:
        names = set(wheel.namelist())
        entry_points = wheel.read(f"{DIST_INFO}/entry_points.txt").decode()
    assert {name.split("/", 1)[0] for name in names} == {"wxlogin", DIST_INFO}
    expected = {
        *package_files(),  # every module, wxlogin/py.typed, i18n.json, static/*
        *(f"wxlogin/sql/{name}" for name in migration_files()),
        f"{DIST_INFO}/licenses/LICENSE",
    }
    assert {"wxlogin/py.typed", "wxlogin/i18n.json", "wxlogin/static/wxlogin.js",
            "wxlogin/sql/0001_init.sql"} <= expected
    assert expected - names == set()
    assert {name for name in names if name.startswith("wxlogin/")} == {
        name for name in expected if name.startswith("wxlogin/")
    }
    assert "wxlogin = wxlogin.ops.cli:main" in entry_points
    print(f"\nwheel: {dist.wheel.name}, {dist.wheel.stat().st_size / 1024:.0f} KiB, "
          f"{len(names)} files")


def test_the_sdist_holds_the_sources_and_nothing_local(dist: Dist) -> None:
    with tarfile.open(dist.sdist) as sdist:
        names = {PurePosixPath(name) for name in sdist.getnames()}
    assert {name.parts[0] for name in names} == {SDIST_ROOT}
    inside = {PurePosixPath(*name.parts[1:]).as_posix() for name in names if len(name.parts) > 1}
    required = {
        "pyproject.toml", "README.md", "LICENSE", "PKG-INFO", "requirements.txt",
        *(f"sql/{name}" for name in migration_files()),
        *(f"server/{name}" for name in package_files()),
    }
    assert required - inside == set()
    local = sorted(name for name in inside if LOCAL & set(PurePosixPath(name).parts))
    assert local == [], local


def wheel_metadata(dist: Dist) -> Message:
    with zipfile.ZipFile(dist.wheel) as wheel:
        raw = wheel.read(f"{DIST_INFO}/METADATA").decode("utf-8")
    return email.parser.Parser(policy=email.policy.compat32).parsestr(raw)


def test_the_metadata_is_worth_a_real_package(dist: Dist) -> None:
    metadata = wheel_metadata(dist)
    assert metadata["Name"] == "wxacode-login" and metadata["Version"] == __version__
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    classifiers = metadata.get_all("Classifier") or []
    for wanted in ("Framework :: AsyncIO", "Framework :: aiohttp", "Typing :: Typed",
                   "Programming Language :: Python :: 3.11",
                   "Topic :: Internet :: WWW/HTTP :: Session"):
        assert wanted in classifiers
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    # PEP 639: with a License-Expression, license classifiers are deprecated, and indexes and
    # backends may refuse the pair.
    assert not [c for c in classifiers if c.startswith("License ::")]
    assert metadata["Author"] == "wxacode-login contributors"
    assert "wechat" in (metadata["Keywords"] or "").split(",")
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload() == (ROOT / "README.md").read_text(encoding="utf-8")
    with zipfile.ZipFile(dist.wheel) as wheel:
        license_text = wheel.read(f"{DIST_INFO}/licenses/LICENSE").decode()
    assert license_text == (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "MIT License" in license_text and "wxacode-login contributors" in license_text


# --- The wheel, installed ----------------------------------------------------------------------


def test_the_library_imports_from_the_installed_wheel(venv: Venv, empty_dir: Path) -> None:
    script = (
        "import wxlogin\n"
        "from wxlogin import Settings, create_app, current_user, login_required, mount\n"
        "from wxlogin.storage.migrations import sql_dir\n"
        "print(wxlogin.__file__); print(sql_dir()); print(wxlogin.__version__)\n"
    )
    result = run(venv.python, "-I", "-c", script, cwd=empty_dir, env=clean_env(venv))
    module, sql, version = result.stdout.split("\n")[:3]
    assert Path(module) == venv.site_packages / "wxlogin" / "__init__.py"
    assert Path(sql) == venv.site_packages / "wxlogin" / "sql"
    assert not Path(module).resolve().is_relative_to(ROOT.resolve())
    assert version == __version__
    assert list(empty_dir.iterdir()) == []


@pytest.fixture(scope="module")
def migrated(venv: Venv, empty_dir: Path) -> subprocess.CompletedProcess[str]:
    """`wxlogin migrate`, the console script, against the embedded PostgreSQL that the installed
    package starts under ./.wxlogin (and stops again)."""
    return run(venv.path / "bin" / "wxlogin", "migrate", cwd=empty_dir, env=clean_env(venv))


def test_wxlogin_migrate_applies_the_packaged_migrations(
    migrated: subprocess.CompletedProcess[str], empty_dir: Path
) -> None:
    names = [migration.name for migration in discover()]  # the checkout's sql/
    assert len(names) == len(migration_files())
    assert migrated.stdout.strip() == "applied: " + ", ".join(names), migrated.stderr
    assert (empty_dir / ".wxlogin" / "pgdata" / "PG_VERSION").is_file()


@pytest.fixture(scope="module")
def site(
    venv: Venv, empty_dir: Path, migrated: subprocess.CompletedProcess[str]
) -> Iterator[str]:
    """`wxlogin serve` from the venv, in sandbox mode (no credentials) on a free port."""
    port = free_port()
    log = empty_dir.parent / "serve.log"  # not in the empty directory itself
    env = {**clean_env(venv), "WXLOGIN_PORT": str(port)}
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603
            [str(venv.path / "bin" / "wxlogin"), "serve"], cwd=empty_dir, env=env,
            stdout=output, stderr=subprocess.STDOUT,
        )
    try:
        asyncio.run(until_healthy(port, process, log))
        assert "SANDBOX MODE" in log.read_text()
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError(f"serve ignored SIGTERM:\n{log.read_text()}") from None
    assert code == 0, log.read_text()


async def test_a_whole_login_against_the_installed_server(site: str) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(site, cookie_jar=jar) as browser, \
            aiohttp.ClientSession(site) as phone:

        async def wx_login(nickname: str) -> str:
            """The sandbox phone's `wx.login` as a test user: a fresh code for each step."""
            async with phone.post("/sandbox/wechat/_phone/login",
                                  json={"nickname": nickname}) as response:
                assert response.status == 200, await response.text()
                code: str = (await response.json())["code"]
                return code

        async with browser.post("/api/scenes") as response:
            assert response.status == 201, await response.text()
            scene = (await response.json())["scene"]
        async with browser.get(f"/api/scenes/{scene}/code") as response:
            assert response.status == 200 and response.content_type == "image/png"
            assert (await response.read()).startswith(b"\x89PNG")
        async with phone.get("/sandbox/phone", params={"scene": scene}) as response:
            assert response.status == 200 and response.content_type == "text/html"

        async with phone.post(f"/api/scenes/{scene}/scan",
                              json={"code": await wx_login("Packager")}) as response:
            assert response.status == 200, await response.text()
            assert (await response.json())["status"] == "scanned"
        code = await wx_login("Packager")
        async with phone.post("/sandbox/wechat/_phone/userinfo", json={"code": code}) as response:
            assert response.status == 200, await response.text()
            profile = await response.json()  # iv and encryptedData, as wx.getUserInfo gives
        async with phone.post("/api/pushCode",
                              json={"scene": scene, "code": code, **profile}) as response:
            assert response.status == 200, await response.text()
        async with browser.get(f"/api/scenes/{scene}",
                               params={"since": "scanned", "wait": "10"}) as response:
            body = await response.json()
            assert response.status == 200 and body["status"] == "confirmed", body
        async with browser.get("/api/me") as response:
            assert response.status == 200
            assert (await response.json())["user"]["nickname"] == "Packager"


async def test_the_installed_server_has_its_pages_texts_and_static_files(site: str) -> None:
    async with aiohttp.ClientSession(site) as browser:
        for language in ("en", "zh"):
            async with browser.get("/login", headers={"Accept-Language": language}) as response:
                assert response.status == 200 and response.content_type == "text/html"
                assert STRINGS[language]["heading"] in await response.text()
        for name in sorted(path.name for path in (PACKAGE / "static").iterdir()):
            async with browser.get(f"/static/{name}") as response:
                assert response.status == 200, name
                assert await response.read() == (PACKAGE / "static" / name).read_bytes()
