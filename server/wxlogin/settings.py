"""Settings: read once from the environment, validated together, secrets kept out of repr."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from .clients import OidcClient, parse_clients

ENV_VERSIONS = ("release", "trial", "develop")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("auto", "json", "text")
REGISTRATIONS = ("open", "approval", "invite")
PHONE_MODES = ("off", "optional", "required")
MOBILE_LINKS = ("url_link", "scheme", "plain")


class SettingsError(Exception):
    """Every problem found in the environment, reported at once."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class App:
    """One mini program's credentials."""

    appid: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class OfficialAccount:
    appid: str
    secret: str = field(repr=False)
    token: str = field(repr=False)
    aes_key: str | None = field(default=None, repr=False)
    aes_key_previous: str | None = field(default=None, repr=False)


OA_TOKEN = re.compile(r"[A-Za-z0-9]{3,32}")  # the console's rule for the Token
AES_KEY = re.compile(r"[A-Za-z0-9]{43}")


def parse_official_account(
    text: Callable[[str], str | None]
) -> tuple[OfficialAccount | None, list[str]]:
    names = ("WXLOGIN_OA_APPID", "WXLOGIN_OA_SECRET", "WXLOGIN_OA_TOKEN")
    appid, secret, token = (text(name) for name in names)
    key, previous = text("WXLOGIN_OA_AES_KEY"), text("WXLOGIN_OA_AES_KEY_PREVIOUS")
    if appid is None and secret is None and token is None:
        extra = [n for n, v in (("WXLOGIN_OA_AES_KEY", key),
                                ("WXLOGIN_OA_AES_KEY_PREVIOUS", previous)) if v is not None]
        return None, [f"{name} needs WXLOGIN_OA_APPID, WXLOGIN_OA_SECRET and WXLOGIN_OA_TOKEN"
                      for name in extra]
    problems = [f"{name} must be set with the other two" for name, value
                in zip(names, (appid, secret, token), strict=True) if value is None]
    if token is not None and not OA_TOKEN.fullmatch(token):
        problems.append("WXLOGIN_OA_TOKEN is 3 to 32 letters or digits, as in the console")
    for name, value in (("WXLOGIN_OA_AES_KEY", key), ("WXLOGIN_OA_AES_KEY_PREVIOUS", previous)):
        if value is not None and not AES_KEY.fullmatch(value):
            problems.append(f"{name} is the console's EncodingAESKey: 43 letters or digits")
    if previous is not None and key is None:
        problems.append("WXLOGIN_OA_AES_KEY_PREVIOUS needs WXLOGIN_OA_AES_KEY")
    if problems or appid is None or secret is None or token is None:
        return None, problems
    return OfficialAccount(appid, secret, token, key, previous), []


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str | None = field(default=None, repr=False)
    data_dir: Path = Path(".wxlogin")
    appid: str | None = None
    secret: str | None = field(default=None, repr=False)
    wechat_api_base: str = "https://api.weixin.qq.com"
    page: str = "pages/login/login"
    env_version: str = "release"
    scene_ttl: int = 300
    cookie_secret: str | None = field(default=None, repr=False)
    watermark_max_age: int = 600
    public_url: str = "http://127.0.0.1:8080"
    session_ttl: int = 7 * 24 * 3600
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    apps: tuple[App, ...] = ()
    log_level: str = "INFO"
    log_format: str = "auto"
    sandbox_force: bool = False
    place_header: str | None = None
    draw_appid: str | None = None
    # Limits (0 switches one off): per client address and per session, in each process; the
    # draw budget across all processes, safely under WeChat's 5,000 draws a minute.
    scenes_per_minute: int = 30
    steps_per_minute: int = 60
    polls_per_session: int = 8
    polls_per_ip: int = 500
    draw_budget: int = 2000
    # Per process; a waiting poll holds none, so this bounds concurrent queries, not browsers.
    pool_size: int = 10
    oidc_clients: tuple[OidcClient, ...] = ()
    # Who may log in: anyone (open), newcomers once the owner approves them, or only through an
    # invitation link. The audit is kept this many days.
    registration: str = "open"
    audit_days: int = 180
    # Phone numbers from WeChat's getPhoneNumber button (verified, non-individual mini programs),
    # and the kind of link that opens the mini program from a phone's own browser.
    phone: str = "off"
    mobile_link: str = "url_link"
    # The official account (its follow-or-scan login): appid, secret, the console's Token, and
    # safe mode's EncodingAESKey (with the previous one while the console changes it).
    oa: OfficialAccount | None = None
    code_kind: str = "wxacode"  # what a new scene shows unless it asks: wxacode or oa

    @property
    def sandbox(self) -> bool:
        return self.appid is None and self.secret is None

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def public_origin(self) -> str:
        """As browsers send it in `Origin`: a default port is left out."""
        parts = urlsplit(self.public_url)
        default = {"http": 80, "https": 443}[parts.scheme]
        host = (parts.hostname or "").lower()
        if ":" in host:
            host = f"[{host}]"
        port = "" if parts.port in (None, default) else f":{parts.port}"
        return f"{parts.scheme}://{host}{port}"

    @property
    def all_apps(self) -> tuple[App, ...]:
        """The primary app first, then the standbys."""
        primary = (App(self.appid, self.secret),) if self.appid and self.secret else ()
        return primary + self.apps

    def sandbox_api_base(self, base: str = "") -> str:
        """Where the server reaches its own sandbox stand-in: itself, over loopback."""
        return f"http://{url_host(reachable_host(self.host))}:{self.port}{base}/sandbox/wechat"

    def with_database_url(self, url: str) -> Settings:
        return replace(self, database_url=url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        problems: list[str] = []

        def text(name: str, default: str | None = None) -> str | None:
            value = env.get(name, "").strip()
            return value or default

        def integer(name: str, default: int, low: int, high: int) -> int:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError:
                problems.append(f"{name} must be a whole number, not {raw!r}")
                return default
            if not low <= value <= high:
                problems.append(f"{name} must be between {low} and {high}, not {value}")
            return value

        appid, secret = text("WXLOGIN_APPID"), text("WXLOGIN_SECRET")
        if (appid is None) != (secret is None):
            missing = "WXLOGIN_SECRET" if secret is None else "WXLOGIN_APPID"
            problems.append(
                f"{missing} is unset: set both WXLOGIN_APPID and WXLOGIN_SECRET "
                "(the mini program's credentials), or neither"
            )

        env_version = text("WXLOGIN_ENV_VERSION", "release") or "release"
        if env_version not in ENV_VERSIONS:
            problems.append(f"WXLOGIN_ENV_VERSION must be one of {', '.join(ENV_VERSIONS)}")

        page = text("WXLOGIN_PAGE", "pages/login/login") or ""
        if page.startswith("/") or "?" in page or not page:
            problems.append(
                "WXLOGIN_PAGE must be a mini-program page path without a leading '/' or a query, "
                "e.g. pages/login/login"
            )

        public_url = (text("WXLOGIN_PUBLIC_URL") or "").rstrip("/")
        port = integer("WXLOGIN_PORT", 8080, 0, 65535)
        host = text("WXLOGIN_HOST", "127.0.0.1") or "127.0.0.1"
        if not public_url:
            public_url = f"http://{url_host(reachable_host(host))}:{port}"
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append("WXLOGIN_PUBLIC_URL must be an http:// or https:// address")

        api_base = (text("WXLOGIN_WECHAT_API_BASE") or "https://api.weixin.qq.com").rstrip("/")
        if urlsplit(api_base).scheme not in ("http", "https"):
            problems.append("WXLOGIN_WECHAT_API_BASE must be an http(s) URL")

        cookie_secret = text("WXLOGIN_COOKIE_SECRET")
        if cookie_secret is not None and len(cookie_secret) < 32:
            problems.append("WXLOGIN_COOKIE_SECRET must be at least 32 characters")

        proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for item in (text("WXLOGIN_TRUSTED_PROXIES") or "").split(","):
            if item.strip():
                try:
                    proxies.append(ipaddress.ip_network(item.strip(), strict=False))
                except ValueError:
                    problems.append(f"WXLOGIN_TRUSTED_PROXIES: {item.strip()!r} is not an address")

        apps: list[App] = []
        for item in (text("WXLOGIN_APPS") or "").split(","):
            if item.strip():
                standby_id, _, standby_secret = item.strip().partition(":")
                if not standby_id or not standby_secret:
                    problems.append("WXLOGIN_APPS takes appid:secret pairs separated by commas")
                else:
                    apps.append(App(standby_id, standby_secret))
        if text("WXLOGIN_PLACE_HEADER") and not proxies:
            problems.append(
                "WXLOGIN_PLACE_HEADER is believed only from WXLOGIN_TRUSTED_PROXIES: set both"
            )
        draw = text("WXLOGIN_DRAW_APPID")
        if draw is not None and draw != appid and draw not in {a.appid for a in apps}:
            problems.append(
                "WXLOGIN_DRAW_APPID must be WXLOGIN_APPID or one of the appids in WXLOGIN_APPS"
            )
        if apps and appid is None:
            problems.append("WXLOGIN_APPS needs a primary WXLOGIN_APPID/WXLOGIN_SECRET too")

        sandbox_force = (text("WXLOGIN_SANDBOX_FORCE") or "").lower() in ("1", "true", "yes")
        if appid is None and secret is None and not sandbox_force:
            # Both what browsers are told and where it listens: 0.0.0.0 and :: are every
            # interface, public ones included.
            for what, address in (("WXLOGIN_PUBLIC_URL", parts.hostname or ""),
                                  ("WXLOGIN_HOST", host)):
                if not private_host(address):
                    problems.append(
                        "sandbox mode (no WXLOGIN_APPID/WXLOGIN_SECRET) runs a fake WeChat that "
                        f"logs anyone in; it refuses {what}={address}, which is not a loopback "
                        "or private address. Set the mini program's credentials, use a "
                        "loopback or private address (e.g. your LAN address), or set "
                        "WXLOGIN_SANDBOX_FORCE=1 if you really mean it"
                    )

        log_level = (text("WXLOGIN_LOG_LEVEL", "INFO") or "INFO").upper()
        if log_level not in LOG_LEVELS:
            problems.append(f"WXLOGIN_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")

        log_format = (text("WXLOGIN_LOG_FORMAT", "auto") or "auto").lower()
        if log_format not in LOG_FORMATS:
            problems.append("WXLOGIN_LOG_FORMAT must be auto, json or text")

        oidc_clients, client_problems = parse_clients(text("WXLOGIN_OIDC_CLIENTS"))
        problems.extend(client_problems)

        registration = (text("WXLOGIN_REGISTRATION", "open") or "open").lower()
        if registration not in REGISTRATIONS:
            problems.append(f"WXLOGIN_REGISTRATION must be one of {', '.join(REGISTRATIONS)}")

        phone = (text("WXLOGIN_PHONE", "off") or "off").lower()
        if phone not in PHONE_MODES:
            problems.append(f"WXLOGIN_PHONE must be one of {', '.join(PHONE_MODES)}")
        mobile_link = (text("WXLOGIN_MOBILE_LINK", "url_link") or "url_link").lower()
        if mobile_link not in MOBILE_LINKS:
            problems.append(f"WXLOGIN_MOBILE_LINK must be one of {', '.join(MOBILE_LINKS)}")

        oa, oa_problems = parse_official_account(text)
        problems.extend(oa_problems)
        code_kind = (text("WXLOGIN_CODE_KIND", "wxacode") or "wxacode").lower()
        if code_kind not in ("wxacode", "oa"):
            problems.append("WXLOGIN_CODE_KIND must be wxacode or oa")
        elif code_kind == "oa" and oa is None and not oa_problems:
            problems.append("WXLOGIN_CODE_KIND=oa needs WXLOGIN_OA_APPID, WXLOGIN_OA_SECRET and "
                            "WXLOGIN_OA_TOKEN")

        settings = cls(
            host=host,
            port=port,
            database_url=text("WXLOGIN_DATABASE_URL") or text("DATABASE_URL"),
            data_dir=Path(text("WXLOGIN_DATA_DIR", ".wxlogin") or ".wxlogin"),
            appid=appid,
            secret=secret,
            wechat_api_base=api_base,
            page=page,
            env_version=env_version,
            scene_ttl=integer("WXLOGIN_SCENE_TTL", 300, 10, 24 * 3600),
            cookie_secret=cookie_secret,
            watermark_max_age=integer("WXLOGIN_WATERMARK_MAX_AGE", 600, 0, 10**9),
            public_url=public_url,
            session_ttl=integer("WXLOGIN_SESSION_TTL", 7 * 24 * 3600, 60, 400 * 24 * 3600),
            scenes_per_minute=integer("WXLOGIN_SCENES_PER_MINUTE", 30, 0, 10**6),
            steps_per_minute=integer("WXLOGIN_STEPS_PER_MINUTE", 60, 0, 10**6),
            polls_per_session=integer("WXLOGIN_POLLS_PER_SESSION", 8, 0, 10**6),
            polls_per_ip=integer("WXLOGIN_POLLS_PER_IP", 500, 0, 10**6),
            draw_budget=integer("WXLOGIN_DRAW_BUDGET", 2000, 0, 5000),
            pool_size=integer("WXLOGIN_DB_POOL_SIZE", 10, 1, 1000),
            trusted_proxies=tuple(proxies),
            apps=tuple(apps),
            log_level=log_level,
            log_format=log_format,
            sandbox_force=sandbox_force,
            place_header=text("WXLOGIN_PLACE_HEADER"),
            draw_appid=text("WXLOGIN_DRAW_APPID"),
            oidc_clients=oidc_clients,
            registration=registration,
            audit_days=integer("WXLOGIN_AUDIT_DAYS", 180, 1, 100 * 366),
            phone=phone,
            mobile_link=mobile_link,
            oa=oa,
            code_kind=code_kind,
        )
        if problems:
            raise SettingsError(problems)
        return settings


def reachable_host(host: str) -> str:
    """The address to dial for a listening host: the wildcard ones mean loopback here."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def private_host(host: str) -> bool:
    """Loopback, private or link-local addresses, and names that only resolve locally."""
    host = host.lower().strip("[]")
    if host == "localhost" or host.endswith((".localhost", ".local", ".lan", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if address.is_unspecified:  # 0.0.0.0 and :: listen on every interface, public ones too
        return False
    return address.is_loopback or address.is_private or address.is_link_local
