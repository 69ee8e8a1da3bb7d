"""The app's typed keys and the services every handler reads: below the handlers and the factory,
so that both import it and neither imports the other."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Middleware

from ..clock import Clock
from ..login.notify import Hub
from ..login.operations import Login
from ..login.steps import Steps
from ..metrics import Metrics
from ..settings import Settings
from ..storage.sessions import PgStorage
from ..wechat.client import WeChat
from ..wechat.official_account import OfficialAccountClient
from .limits import Limits

MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Services:
    """What exists only while the app runs (made in `services_ctx`)."""

    pool: asyncpg.Pool
    wechat: Mapping[str, WeChat]
    primary_appid: str  # the mini program meant when a request names none
    draw_appid: str  # the mini program whose codes new scenes show
    hub: Hub
    login: Login  # what the login's operations need, for every front door
    storage: PgStorage
    steps: Steps
    session_middleware: Middleware
    decoding: asyncio.Semaphore  # avatar decodes at a time
    limits: Limits
    metrics: Metrics
    official_account: OfficialAccountClient | None = None  # WXLOGIN_OA_*


SETTINGS = web.AppKey("settings", Settings)
# The path the app is mounted under inside a host application ("" when it runs on its own):
# every URL it hands out, in JSON, HTML and the scripts, starts with it.
BASE = web.AppKey("base", str)
METRICS = web.AppKey("metrics", Metrics)
CLOCK = web.AppKey("clock", Clock)
SERVICES = web.AppKey("services", Services)
