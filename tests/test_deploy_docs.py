"""docs/deploy/ kept true: every setting it names is one the server reads, its environment file
passes the server's own checks once filled in, its systemd units start a real `wxlogin` command
with the file and paths the walkthrough sets up, and its links lead somewhere."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest

from wxlogin.ops import cli
from wxlogin.settings import Settings, SettingsError
from wxlogin.storage.migrations import SCHEMA

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "docs" / "deploy"
README = DEPLOY / "README.md"
ENV_FILE = DEPLOY / "wxlogin.env"
SERVICE = DEPLOY / "wxlogin.service"
BACKUP = DEPLOY / "wxlogin-backup.service"
TIMER = DEPLOY / "wxlogin-backup.timer"
NGINX = DEPLOY / "nginx.conf"

PLACEHOLDER = "CHANGE-ME"
# What an operator puts in place of each placeholder; any value of the right form will do.
FILLED = {
    "WXLOGIN_APPID": "wx0123456789abcdef",
    "WXLOGIN_SECRET": "0123456789abcdef0123456789abcdef",
    "WXLOGIN_DATABASE_URL": "0123456789abcdef0123456789abcdef0123456789abcdef",  # the password
    "WXLOGIN_COOKIE_SECRET": "c" * 64,
}
REQUIRED = {
    "WXLOGIN_APPID", "WXLOGIN_SECRET", "WXLOGIN_DATABASE_URL", "WXLOGIN_PUBLIC_URL",
    "WXLOGIN_TRUSTED_PROXIES", "WXLOGIN_COOKIE_SECRET", "WXLOGIN_HOST", "WXLOGIN_PORT",
    "WXLOGIN_DATA_DIR",
}

# systemd's EnvironmentFile= takes more than this (quotes, escapes); the shipped file keeps to
# plain KEY=value so that it reads the same everywhere it is copied or grepped.
ASSIGNMENT = re.compile(r"([A-Z][A-Z0-9_]*)=([^\s\"'\\$`#;]*)")


def settings_read() -> set[str]:
    """Every variable wxlogin/settings.py reads, found as tests/test_settings.py finds them."""
    source = (ROOT / "server" / "wxlogin" / "settings.py").read_text()
    return set(re.findall(r'"((?:WXLOGIN_|DATABASE_URL)[A-Z_]*)"', source))


def env_file() -> tuple[dict[str, str], dict[str, str]]:
    """The settings the file sets, and the optional ones it shows commented out."""
    active: dict[str, str] = {}
    examples: dict[str, str] = {}
    for number, line in enumerate(ENV_FILE.read_text().splitlines(), 1):
        where = f"wxlogin.env:{number}: {line!r}"
        if not line.strip():
            continue
        if line.startswith(("#", ";")):
            example = re.fullmatch(r"#(WXLOGIN_\S*)", line)
            if example:
                found = ASSIGNMENT.fullmatch(example[1])
                assert found, f"{where} is a commented-out setting that is not KEY=value"
                examples[found[1]] = found[2]
            continue
        found = ASSIGNMENT.fullmatch(line)
        assert found, f"{where} is not a plain KEY=value line (no export, quotes or comments)"
        assert found[1] not in active, f"{where} sets {found[1]} twice"
        active[found[1]] = found[2]
    return active, examples


def filled_in(values: dict[str, str]) -> dict[str, str]:
    return {
        name: value.replace(PLACEHOLDER, FILLED.get(name, "value-" + "x" * 32))
        for name, value in values.items()
    }


def unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file as {section: {key: [values in order]}}; keys may repeat."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        where = f"{path.name}:{number}: {line!r}"
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        assert not stripped.endswith("\\"), f"{where}: keep each setting on one line"
        header = re.fullmatch(r"\[(Unit|Service|Timer|Install)\]", stripped)
        if header:
            current = sections.setdefault(header[1], {})
            continue
        key, equals, value = stripped.partition("=")
        assert current is not None and equals and re.fullmatch(r"[A-Z][A-Za-z]*", key), where
        current.setdefault(key, []).append(value)
    return sections


def readme() -> str:
    return README.read_text()


def without_code_blocks(markdown: str) -> str:
    return re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)


def anchors(markdown: str) -> set[str]:
    """GitHub's ids for a file's headings."""
    headings = re.findall(r"^#+ (.+)$", without_code_blocks(markdown), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def command(text: str, program: str) -> list[str]:
    """The first shell command in `text` that starts with `program`, continuation lines joined."""
    joined = text.replace("\\\n", " ")
    found = re.search(rf"^{re.escape(program)} .*$", joined, re.M)
    assert found, f"no `{program}` command in the text"
    return shlex.split(found[0], comments=True)


def test_every_setting_the_deploy_files_name_is_read_by_the_server() -> None:
    known = settings_read()
    assert {"WXLOGIN_PUBLIC_URL", "WXLOGIN_COOKIE_SECRET"} <= known  # the regex still works
    for path in (README, ENV_FILE, SERVICE, BACKUP, TIMER):
        named = set(re.findall(r"\bWXLOGIN_[A-Z0-9_]*[A-Z0-9]", path.read_text()))
        unknown = sorted(named - known)
        assert not unknown, f"{path.name} names settings the server does not read: {unknown}"


def test_the_env_file_sets_what_production_needs_and_shows_the_rest_commented_out() -> None:
    active, examples = env_file()
    assert REQUIRED <= set(active), f"wxlogin.env lacks {sorted(REQUIRED - set(active))}"
    assert not set(active) & set(examples), "a setting is both set and shown commented out"
    assert {"WXLOGIN_ENV_VERSION", "WXLOGIN_PLACE_HEADER"} <= set(examples)


def test_the_shipped_placeholders_keep_the_server_from_starting() -> None:
    active, _ = env_file()
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(active)
    assert len(refused.value.problems) == 1
    assert "WXLOGIN_COOKIE_SECRET" in refused.value.problems[0]


def test_the_env_file_filled_in_passes_the_servers_own_checks(tmp_path: Path) -> None:
    active, _ = env_file()
    values = filled_in(active)
    assert not any(PLACEHOLDER in value for value in values.values())
    settings = Settings.from_env(values)
    assert not settings.sandbox and settings.appid == FILLED["WXLOGIN_APPID"]
    assert settings.secure_cookies and settings.public_origin == "https://example.com"
    assert settings.database_url is not None and settings.database_url.startswith("postgresql://")
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert [str(net) for net in settings.trusted_proxies] == ["127.0.0.1/32"]
    assert settings.data_dir == Path("/var/lib/wxlogin")
    # As the file says, the cookie secret is set (so none is generated into the database).
    assert settings.cookie_secret == FILLED["WXLOGIN_COOKIE_SECRET"]


def test_the_optional_examples_are_valid_too() -> None:
    active, examples = env_file()
    settings = Settings.from_env(filled_in({**active, **examples}))
    assert settings.env_version == examples["WXLOGIN_ENV_VERSION"]
    assert settings.draw_appid in {app.appid for app in settings.all_apps}


def test_the_proxies_point_where_wxlogin_listens() -> None:
    active, _ = env_file()
    listen = f"{active['WXLOGIN_HOST']}:{active['WXLOGIN_PORT']}"
    upstream = re.search(r"upstream wxlogin \{\s*server ([^;\s]+);", NGINX.read_text())
    assert upstream and upstream[1] == listen
    text = readme()
    assert f'address: "http://{listen}/api/auth"' in text  # Traefik
    assert f"forward_auth {listen} {{" in text and f"reverse_proxy {listen}\n" in text  # Caddy


def test_the_service_runs_a_real_wxlogin_command(capsys: pytest.CaptureFixture[str]) -> None:
    service = unit(SERVICE)["Service"]
    [exec_start] = service["ExecStart"]
    argv = shlex.split(exec_start)
    # The venv the walkthrough makes, and the console script the package really installs.
    venv = command(readme(), "python3 -m venv")[-1]
    assert command(readme(), f"{venv}/bin/pip")[-1] == "/opt/wxlogin"
    assert argv[0] == f"{venv}/bin/wxlogin"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["wxlogin"] == "wxlogin.ops.cli:main"
    # Its arguments parse with the real command line (--help stops before any settings).
    with pytest.raises(SystemExit) as parsed:
        cli.main([*argv[1:], "--help"])
    assert parsed.value.code == 0 and argv[1] in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:  # and the parser does refuse a wrong one
        cli.main(["server", "--help"])
    assert refused.value.code == 2
    assert service["Type"] in (["simple"], ["exec"]) and service["Restart"] == ["on-failure"]
    assert service["ProtectSystem"] == ["strict"] and service["NoNewPrivileges"] == ["yes"]


def test_the_units_use_the_user_file_and_directory_the_walkthrough_sets_up() -> None:
    text = readme()
    active, _ = env_file()
    useradd = command(text, "useradd")
    install = command(text, "install -o root")
    assert install[-2].endswith("docs/deploy/wxlogin.env")
    for path in (SERVICE, BACKUP):
        service = unit(path)["Service"]
        assert service["EnvironmentFile"] == [install[-1]], path.name
        assert service["User"] == service["Group"] == [useradd[-1]], path.name
    # ProtectSystem=strict leaves only the state directory writable: it is the data dir.
    [state] = unit(SERVICE)["Service"]["StateDirectory"]
    assert active["WXLOGIN_DATA_DIR"] == f"/var/lib/{state}"


def test_the_backup_unit_dumps_the_servers_schema_into_its_own_directory() -> None:
    backup = unit(BACKUP)
    timer = unit(TIMER)
    assert TIMER.stem == BACKUP.stem and "Unit" not in timer.get("Timer", {})
    assert timer["Install"]["WantedBy"] == ["timers.target"]
    [exec_start] = backup["Service"]["ExecStart"]
    assert f"--schema={SCHEMA}" in exec_start and f"--schema={SCHEMA}" in readme()
    # systemd expands % and $ itself: every one meant for date and the shell is doubled.
    assert "%" not in exec_start.replace("%%", "")
    assert "$" not in exec_start.replace("$$", "")
    [state] = backup["Service"]["StateDirectory"]
    [prune] = backup["Service"]["ExecStartPost"]
    assert f"/var/lib/{state} " in prune and f"/var/lib/{state}/" in readme()


def test_every_link_in_the_walkthrough_leads_somewhere() -> None:
    text = readme()
    links = re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", without_code_blocks(text))
    assert len(links) > 5
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue
        target, _, fragment = link.partition("#")
        path = (DEPLOY / target).resolve() if target else README
        assert path.exists(), f"docs/deploy/README.md links to {link}, which does not exist"
        if fragment:
            assert path.suffix == ".md", link
            assert fragment in anchors(path.read_text()), f"no heading for {link}"
