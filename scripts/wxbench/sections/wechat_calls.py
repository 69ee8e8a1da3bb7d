"""Section 4: WeChat calls per login, from the stand-in's counters over section 3's runs."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..tables import say, table

if TYPE_CHECKING:
    from ..bench import Bench


def run(bench: Bench) -> None:
    say("\n## 4. WeChat calls per login (the stand-in's counters, over section 3)\n")
    apis = [("getwxacodeunlimit (code draws)", "getwxacodeunlimit"),
            ("stable_token (token fetches)", "stable_token"),
            ("cgi-bin/token (token fetches, fallback)", "token"),
            ("jscode2session (code exchanges)", "jscode2session")]
    header = ["WeChat API"]
    for name, result, _calls in bench.login_runs:
        header.append(f"{name}: calls / per completed login ({result['completed']} logins,"
                      f" {result['attempts']} begun)")
    rows = []
    for title, key in apis:
        row = [title]
        for _name, result, calls in bench.login_runs:
            per = calls[key] / result["completed"] if result["completed"] else math.nan
            row.append(f"{calls[key]} / **{per:.3f}**")
        rows.append(row)
    say(table(header, rows))
    say("\nLogins begun before the window closed were all finished, so every call counted "
        "belongs to a login counted here (a login begun but failed counts in 'begun').")
