"""Settings: read once, validated together, secrets out of repr, every one documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wxlogin.settings import Settings, SettingsError

ROOT = Path(__file__).parent.parent


def test_defaults_follow_the_contract() -> None:
    s = Settings.from_env({})
    assert (s.host, s.port, s.database_url) == ("127.0.0.1", 8080, None)
    assert s.data_dir == Path(".wxlogin") and s.sandbox
    assert s.wechat_api_base == "https://api.weixin.qq.com"
    assert (s.page, s.env_version, s.scene_ttl) == ("pages/login/login", "release", 300)
    assert s.public_url == "http://127.0.0.1:8080" and not s.secure_cookies


def test_database_url_fallback_and_precedence() -> None:
    assert Settings.from_env({"DATABASE_URL": "postgresql://a"}).database_url == "postgresql://a"
    both = {"DATABASE_URL": "postgresql://a", "WXLOGIN_DATABASE_URL": "postgresql://b"}
    assert Settings.from_env(both).database_url == "postgresql://b"


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({
            "WXLOGIN_APPID": "wx1", "WXLOGIN_PORT": "eighty", "WXLOGIN_ENV_VERSION": "beta",
            "WXLOGIN_PAGE": "/pages/login/login", "WXLOGIN_SCENE_TTL": "1",
            "WXLOGIN_PUBLIC_URL": "ftp://x", "WXLOGIN_COOKIE_SECRET": "short",
            "WXLOGIN_TRUSTED_PROXIES": "nonsense", "WXLOGIN_APPS": "broken",
        })
    text = str(caught.value)
    for name in ("WXLOGIN_SECRET", "WXLOGIN_PORT", "WXLOGIN_ENV_VERSION", "WXLOGIN_PAGE",
                 "WXLOGIN_SCENE_TTL", "WXLOGIN_PUBLIC_URL", "WXLOGIN_COOKIE_SECRET",
                 "WXLOGIN_TRUSTED_PROXIES", "WXLOGIN_APPS"):
        assert name in text
    assert len(caught.value.problems) == 9


def test_secrets_stay_out_of_repr() -> None:
    s = Settings.from_env({"WXLOGIN_APPID": "wx1", "WXLOGIN_SECRET": "s3cr3t-canary",
                           "WXLOGIN_COOKIE_SECRET": "c" * 40,
                           "WXLOGIN_DATABASE_URL": "postgresql://u:pw-canary@h/db",
                           "WXLOGIN_APPS": "wx2:standby-canary"})
    text = repr(s)
    assert "s3cr3t" not in text and "c" * 40 not in text and "pw-canary" not in text
    assert "standby-canary" not in text and "wx2" in text
    assert [a.appid for a in s.all_apps] == ["wx1", "wx2"]


CREDENTIALS = {"WXLOGIN_APPID": "wx1", "WXLOGIN_SECRET": "s"}


def test_https_public_url_makes_cookies_secure() -> None:
    s = Settings.from_env({**CREDENTIALS, "WXLOGIN_PUBLIC_URL": "https://Login.Example.com/"})
    assert s.secure_cookies and s.public_origin == "https://login.example.com"


def test_the_public_origin_is_what_browsers_send() -> None:
    for url, origin in (("https://Login.Example.com:443/", "https://login.example.com"),
                        ("http://127.0.0.1:80", "http://127.0.0.1"),
                        ("http://[::1]:8080/x", "http://[::1]:8080")):
        env = {**CREDENTIALS, "WXLOGIN_PUBLIC_URL": url}
        assert Settings.from_env(env).public_origin == origin


def test_the_sandbox_listens_only_on_private_addresses() -> None:
    for host in ("0.0.0.0", "::", "93.184.216.34"):
        with pytest.raises(SettingsError, match="WXLOGIN_HOST"):
            Settings.from_env({"WXLOGIN_HOST": host})
        assert Settings.from_env({"WXLOGIN_HOST": host, **CREDENTIALS}).host == host
    lan = Settings.from_env({"WXLOGIN_HOST": "192.168.1.20"})
    assert lan.public_url == "http://192.168.1.20:8080"
    assert lan.sandbox_api_base() == "http://192.168.1.20:8080/sandbox/wechat"
    six = Settings.from_env({"WXLOGIN_HOST": "::", "WXLOGIN_SANDBOX_FORCE": "1"})
    assert six.public_url == "http://[::1]:8080"
    assert six.sandbox_api_base() == "http://[::1]:8080/sandbox/wechat"


def test_the_sandbox_stays_off_the_public_internet() -> None:
    for url in ("http://127.0.0.1:8080", "http://localhost:8080", "http://192.168.1.20:8080",
                "http://10.0.0.5", "http://[::1]:8080", "http://laptop.local:8080"):
        assert Settings.from_env({"WXLOGIN_PUBLIC_URL": url}).sandbox
    for url in ("https://login.example.com", "http://8.8.8.8:8080"):
        with pytest.raises(SettingsError, match="WXLOGIN_SANDBOX_FORCE"):
            Settings.from_env({"WXLOGIN_PUBLIC_URL": url})
        forced = Settings.from_env({"WXLOGIN_PUBLIC_URL": url, "WXLOGIN_SANDBOX_FORCE": "1"})
        assert forced.sandbox and forced.sandbox_force
        assert Settings.from_env({**CREDENTIALS, "WXLOGIN_PUBLIC_URL": url}).sandbox is False


def test_the_log_level_is_checked() -> None:
    assert Settings.from_env({"WXLOGIN_LOG_LEVEL": "debug"}).log_level == "DEBUG"
    with pytest.raises(SettingsError, match="WXLOGIN_LOG_LEVEL"):
        Settings.from_env({"WXLOGIN_LOG_LEVEL": "chatty"})


def test_every_setting_is_documented_in_the_readme() -> None:
    source = (ROOT / "server" / "wxlogin" / "settings.py").read_text()
    names = set(re.findall(r'"((?:WXLOGIN_|DATABASE_URL)[A-Z_]*)"', source))
    readme = (ROOT / "README.md").read_text()
    missing = sorted(name for name in names if f"`{name}`" not in readme)
    assert not missing, f"README.md does not document {missing}"


def test_every_error_code_is_documented() -> None:
    from tests.helpers import api_error_codes
    from wxlogin import errors

    codes = api_error_codes() | {code for code, _ in errors._HTTP_CODES.values()}
    codes -= {"http_error"}  # no route answers it
    documented = (ROOT / "docs" / "api.md").read_text()
    missing = sorted(code for code in codes if f"`{code}`" not in documented)
    assert not missing, f"docs/api.md does not list {missing}"


def test_the_drawing_app_must_be_a_configured_one() -> None:
    env = {**CREDENTIALS, "WXLOGIN_APPS": "wx2:s2"}
    assert Settings.from_env({**env, "WXLOGIN_DRAW_APPID": "wx2"}).draw_appid == "wx2"
    with pytest.raises(SettingsError, match="WXLOGIN_DRAW_APPID"):
        Settings.from_env({**env, "WXLOGIN_DRAW_APPID": "wx9"})
