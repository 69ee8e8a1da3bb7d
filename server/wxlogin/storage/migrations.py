"""Apply sql/NNNN_name.sql files in order, each once, each in its own transaction.

A session-level advisory lock serialises runners, so two processes starting at once migrate once.
Released files are never edited; a change is a new file.

Everything lives in the `wxlogin` schema, so the login can share a database (and a pool) with
the site it serves: a host's own `users` or `schema_migrations` table never meets ours. The
files name tables bare and run with the schema as their search_path; queries at run time name
the schema themselves, since a shared pool's connections carry the host's search_path.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from .db import Conn, session_lock

log = logging.getLogger("wxlogin.migrations")

LOCK_KEY = 0x77786C6F67696E  # "wxlogin"
SCHEMA = "wxlogin"
NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str


def sql_dir() -> Path:
    package = Path(__file__).resolve().parent.parent
    packaged = package / "sql"  # in a wheel (see pyproject's force-include)
    return packaged if packaged.is_dir() else package.parent.parent / "sql"  # in a checkout


def discover(folder: Path | None = None) -> list[Migration]:
    found = []
    for path in sorted((folder or sql_dir()).glob("*.sql")):
        match = NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration file name {path.name!r} is not NNNN_name.sql")
        found.append(Migration(match.group(1), path.stem, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError("two migration files share a number")
    return found


async def migrate(conn: Conn, folder: Path | None = None) -> list[str]:
    """Apply what is missing; returns the names applied (empty when up to date)."""
    migrations = discover(folder)
    applied: list[str] = []
    async with session_lock(conn, LOCK_KEY, wait=True):
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_migrations ("
            " version text PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {
            r["version"]
            for r in await conn.fetch(f"SELECT version FROM {SCHEMA}.schema_migrations")
        }
        for migration in migrations:
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(f"SET LOCAL search_path TO {SCHEMA}")
                await conn.execute(migration.sql)
                await conn.execute(
                    f"INSERT INTO {SCHEMA}.schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            log.info("applied migration %s", migration.name)
            applied.append(migration.name)
    return applied
