"""The output: percentiles and error counts as table cells, markdown tables, lines printed."""

from __future__ import annotations

import math
from collections import Counter


def percentile(values: list[float], share: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def spread(values: list[float], digits: int = 1) -> str:
    if not values:
        return "-"
    return " / ".join(f"{v:.{digits}f}" for v in (
        percentile(values, 0.5), percentile(values, 0.99), max(values)))


def errors_text(errors: Counter[str] | dict[str, int]) -> str:
    if not errors:
        return "0"
    return "; ".join(f"{k}: {v}" for k, v in sorted(errors.items(), key=lambda kv: -kv[1]))


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def say(text: str = "") -> None:
    print(text, flush=True)
