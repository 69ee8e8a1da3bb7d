"""`scripts/bench` keeps working: a small run of every section against real `wxlogin serve`
processes, with no error anywhere. Its figures are not judged here (benchmarks, not timed tests);
docs/performance.md holds them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_benchmark_runs_every_section_without_an_error() -> None:
    result = subprocess.run(  # noqa: S603 - our own interpreter and package
        [sys.executable, "scripts/wxbench", "--quick", "--idle-spread", "2", "--idle-window", "3"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    for section in ("## 1. Waiting browsers", "## 2. Wake-up latency", "## 3. Full logins",
                    "## 4. WeChat calls per login", "## 5. Interval polling"):
        assert section in out, section
    assert out.count("server log warnings/errors: none") == 4, out
    # Every errors cell says 0 (or is empty): no request of any section failed. They stand in an
    # "errors" column (sections 2 and 3) or on a row named "errors…" (sections 1 and 5).
    in_columns = in_rows = 0
    for header, *body in tables(out.splitlines()):
        if "errors" in header:
            column = header.index("errors")
            assert all(row[column] in ("0", "") for row in body), (header, body)
            in_columns += len(body)
        for row in body:
            if row[0].startswith("errors"):
                assert all(cell in ("0", "") for cell in row[1:]), row
                in_rows += 1
    assert in_columns >= 6  # four wake-up rows, two logins-per-second rows
    assert in_rows >= 3  # the waiting browsers' generator; both comparisons of section 5
    # The counts that are exact, whatever the machine: one draw, two code exchanges per login.
    assert re.search(r"\| getwxacodeunlimit \(code draws\) \| \d+ / \*\*1\.000\*\*", out)
    assert re.search(r"\| jscode2session \(code exchanges\) \| \d+ / \*\*2\.000\*\*", out)
    assert "| wxlogin_db_pool_connections_in_use during the hold (min / max) | 0 / 0 |" in out


@pytest.fixture(scope="module")
def on_request() -> str:
    """One small run of the sections that run only on request (6, 7, 8): one set of servers
    and one database for the three."""
    result = subprocess.run(  # noqa: S603 - our own interpreter and package
        [sys.executable, "scripts/wxbench", "--quick", "--sections", "678"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("server log warnings/errors: none") == 3, result.stdout
    return result.stdout


def section(out: str, number: int) -> str:
    """The output of one section: from its heading to the next one."""
    found = re.search(rf"^## {number}\..*?(?=^## |\Z)", out, re.M | re.S)
    assert found, out
    return found.group(0)


def rows_of(out: str) -> dict[str, list[str]]:
    return {row[0]: row[1:] for _, *body in tables(out.splitlines()) for row in body}


def test_the_openid_connect_section_runs_without_an_error(on_request: str) -> None:
    out = section(on_request, 6)
    assert "## 6. OpenID Connect" in out
    rows = rows_of(out)
    assert rows["errors"] == ["0"]
    assert float(rows["SQL statements"][0]) > 0  # the statement log was read


def test_the_owners_page_section_runs_without_an_error(on_request: str) -> None:
    out = section(on_request, 7)
    assert "## 7. The owner's page" in out
    rows = rows_of(out)
    assert "99,9" in rows["seeding (users, scenes, one sweep into the daily funnel)"][0]
    assert "Execution Time" in out  # the slowest query's plan


def test_the_official_account_section_runs_without_an_error(on_request: str) -> None:
    out = section(on_request, 8)
    assert "## 8. The official account" in out
    assert rows_of(out)["errors"] == ["0"]


def tables(lines: list[str]) -> list[list[list[str]]]:
    """The markdown tables in the output, each as rows of cells, its header first."""
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*lines, ""]:
        if not line.startswith("| "):
            if current:
                found.append(current)
            current = []
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not all(set(cell) <= {"-"} for cell in cells):  # not the separator row
            current.append(cells)
    return found
