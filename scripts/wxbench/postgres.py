"""PostgreSQL seen from the side: its client connections (pg_stat_activity) and the statements
and transactions in its log."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

# A statement in PostgreSQL's log (log_line_prefix '%m [%p] db=%d '): the backend, the SQL.
LOGGED = re.compile(r"\[(\d+)\] db=postgres LOG:  (?:statement|execute [^:]*): (.*)")


class Monitor:
    """A connection to a side database of the same cluster (so its own queries never count)."""

    def __init__(self, conn: Any, log: Path) -> None:
        self.conn = conn
        self.log = log

    async def activity(self) -> tuple[int, int, list[str]]:
        rows = await self.conn.fetch(
            "SELECT state, left(query, 70) AS query FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
        busy = [f"{r['state']}: {r['query']}" for r in rows if r["state"] != "idle"]
        return len(rows), len(busy), busy

    async def log_statements(self, on: bool) -> None:
        if on:
            await self.conn.execute("ALTER SYSTEM SET log_statement = 'all'")
            await self.conn.execute("ALTER SYSTEM SET log_line_prefix = '%m [%p] db=%d '")
        else:
            await self.conn.execute("ALTER SYSTEM RESET log_statement")
            await self.conn.execute("ALTER SYSTEM RESET log_line_prefix")
        await self.conn.execute("SELECT pg_reload_conf()")
        await asyncio.sleep(1.0)

    def log_size(self) -> int:
        return self.log.stat().st_size

    def statements(self, start: int) -> tuple[int, int, int]:
        """What the `postgres` database ran since `start`, from its log: (the server's own
        statements, its transactions, asyncpg's reset-on-release queries).

        A transaction is a BEGIN … COMMIT block or a statement outside one, followed per backend.
        Counted here rather than from pg_stat_database, whose counters reach it whenever each
        backend next publishes them: once some of an earlier section's arrived in this one's
        window."""
        with self.log.open("rb") as handle:
            handle.seek(start)
            text = handle.read().decode(errors="replace")
        own = transactions = resets = 0
        in_block: set[str] = set()
        for line in text.splitlines():
            match = LOGGED.search(line)
            if match is None:
                continue
            backend, sql = match.groups()
            if sql.startswith("SELECT pg_advisory_unlock_all()"):
                resets += 1
                continue
            own += 1
            word = sql.split(None, 1)[0].rstrip(";").upper() if sql.strip() else ""
            if word in ("BEGIN", "START"):
                in_block.add(backend)
                transactions += 1
            elif word in ("COMMIT", "ROLLBACK", "END"):
                in_block.discard(backend)
            elif backend not in in_block:
                transactions += 1
        return own, transactions, resets
