"""Prometheus metrics, served at GET /metrics: the login funnel, WeChat calls, waiting polls,
the database pool, limits and housekeeping. One registry per app (not the library's global one),
so several apps in one process (tests, a host with the login mounted) keep their own numbers.

The numbers are this process's; with several processes, scrape each (or sum them in queries).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# WeChat's entry scene values (WECHAT.md 10), as the metrics and the owner's page name them.
ARRIVALS = {0: "unknown", 1047: "scanned", 1048: "long_press", 1049: "album", 1065: "scheme",
            1194: "url_link", 1167: "url_link", 1286: "plain_scheme"}
FUNNEL = ("created", "reused", "drawn", "scanned", "confirmed", "denied", "refused", "expired",
          "logged_in")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.funnel = Counter(
            "wxlogin_logins", "Login attempts reaching each step: created (a new scene), reused "
            "(a browser's live scene handed back), drawn (its code drawn), scanned, confirmed, "
            "denied, refused (turned away by the owner's rules), expired (counted when swept), "
            "logged_in (the browser got its session)",
            ["step"], registry=self.registry,
        )
        for step in FUNNEL:
            self.funnel.labels(step)  # every step shows, at 0 until it happens
        self.wechat_calls = Counter(
            "wxlogin_wechat_calls", "Calls to WeChat's API by API and outcome",
            ["api", "outcome"], registry=self.registry,
        )
        self.wechat_seconds = Histogram(
            "wxlogin_wechat_call_seconds", "Time WeChat took to answer, by API", ["api"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 15), registry=self.registry,
        )
        self.requests = Counter(
            "wxlogin_http_requests", "Answers by route and status",
            ["method", "route", "status"], registry=self.registry,
        )
        self.swept = Counter(
            "wxlogin_swept_rows", "Rows removed by the sweeper", ["table"],
            registry=self.registry,
        )
        self.waiting = Gauge(
            "wxlogin_waiting_polls", "Long-polls waiting right now", registry=self.registry
        )
        self.pool_size = Gauge(
            "wxlogin_db_pool_connections", "Database pool connections open",
            registry=self.registry,
        )
        self.pool_busy = Gauge(
            "wxlogin_db_pool_connections_in_use", "Database pool connections lent out",
            registry=self.registry,
        )

        self.arrivals = Counter(
            "wxlogin_logins_by_arrival",
            "Confirmed logins by how the person came into the mini program: scanned (1047), "
            "long_press (1048, in WeChat's browser), album (1049, a saved code), url_link "
            "(1194), scheme (1065), plain_scheme (1286), other, unknown (not told)",
            ["arrival"], registry=self.registry,
        )
        for arrival in (*ARRIVALS.values(), "other"):
            self.arrivals.labels(arrival)
        self.oa_followers = Counter(
            "wxlogin_oa_followers", "New followers of the official account (subscribe events)",
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            "wxlogin_event_loop_lag_seconds",
            "How late the event loop wakes a 0.25 s timer (sampled four times a second)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )

    async def sample_loop_lag(self, every: float = 0.25) -> None:
        """Forever: a busy loop (a long synchronous step anywhere) shows as lag here."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(every)
            self.loop_lag.observe(max(0.0, loop.time() - started - every))

    def step(self, name: str) -> None:
        self.funnel.labels(name).inc()

    def oa_followed(self) -> None:
        self.oa_followers.inc()

    def arrived(self, entry: int | None) -> None:
        """A confirmed login, by how the person came into the mini program."""
        self.arrivals.labels(ARRIVALS.get(entry or 0, "other")).inc()

    def wechat_call(self, api: str, outcome: str, seconds: float) -> None:
        self.wechat_calls.labels(api, outcome).inc()
        self.wechat_seconds.labels(api).observe(seconds)

    def watch(self, waiting: Callable[[], int], size: Callable[[], int],
              idle: Callable[[], int]) -> None:
        """Gauges read when scraped."""
        self.waiting.set_function(lambda: float(waiting()))
        self.pool_size.set_function(lambda: float(size()))
        self.pool_busy.set_function(lambda: float(size() - idle()))

    def exposition(self) -> web.Response:
        response = web.Response(body=generate_latest(self.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response
