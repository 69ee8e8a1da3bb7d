"""A server's /metrics, parsed; its event-loop lag; a probe of its responsiveness."""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter

from .client import Conn, get_metrics
from .common import now

LAG = "wxlogin_event_loop_lag_seconds"

SAMPLE = re.compile(r"^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


class Scrape:
    """One /metrics answer, parsed."""

    def __init__(self, text: str) -> None:
        self.samples: list[tuple[str, dict[str, str], float]] = []
        for line in text.splitlines():
            match = SAMPLE.match(line)
            if match and not line.startswith("#"):
                labels = dict(LABEL.findall(match.group(2) or ""))
                self.samples.append((match.group(1), labels, float(match.group(3))))

    def value(self, name: str, **labels: str) -> float:
        return sum(v for n, ls, v in self.samples
                   if n == name and all(ls.get(k) == want for k, want in labels.items()))

    def buckets(self, name: str) -> dict[float, float]:
        return {float(ls["le"]): v for n, ls, v in self.samples if n == f"{name}_bucket"}

    def requests(self) -> Counter[str]:
        """Answers by route and status, /metrics and /healthz left out."""
        found: Counter[str] = Counter()
        for n, ls, v in self.samples:
            if n == "wxlogin_http_requests_total" and ls.get("route") not in (
                    "/metrics", "/healthz"):
                found[f"{ls.get('method')} {ls.get('route')} {ls.get('status')}"] += int(v)
        return found


async def probe(port: int, into: list[tuple[float, float]], every: float = 0.02) -> None:
    """Forever: a request the server answers without the database (a 404), timed; a busy
    event loop shows as a slow answer."""
    conn = Conn(port)
    try:
        while True:
            sent = now()
            await conn.request("GET", "/bench-probe-404")
            into.append((sent, (now() - sent) * 1000))
            await asyncio.sleep(every)
    finally:
        conn.close()


async def scrape(port: int) -> Scrape:
    return Scrape(await get_metrics(port))


def lag_summary(before: Scrape, after: Scrape) -> tuple[int, float, str]:
    """Samples taken, the share above 10 ms, and the bucket holding the 99th percentile."""
    old, new = before.buckets(LAG), after.buckets(LAG)
    delta = {le: count - old.get(le, 0.0) for le, count in new.items()}
    total = delta.get(math.inf, 0.0)
    if not total:
        return 0, math.nan, "-"
    above = (total - delta.get(0.01, 0.0)) / total
    p99 = next(le for le in sorted(delta) if delta[le] >= 0.99 * total)
    where = "> 2.5 s" if math.isinf(p99) else f"≤ {p99 * 1000:g} ms"
    return int(total), above, where
