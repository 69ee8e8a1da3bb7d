"""The migration runner: ledgered, idempotent, safe when two processes start at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from wxlogin.storage.migrations import discover, migrate


async def fresh_database(pg_url: str, name: str) -> str:
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return pg_url.replace("/postgres?", f"/{name}?") if "/postgres?" in pg_url else (
        pg_url.rsplit("/", 1)[0] + f"/{name}"
    )


async def test_run_twice_applies_everything_then_nothing(pg_url: str) -> None:
    url = await fresh_database(pg_url, "wxlogin_migrate_twice")
    conn = await asyncpg.connect(url)
    try:
        first = await migrate(conn)
        assert first == [m.name for m in discover()] and first
        assert await migrate(conn) == []
        tables = {r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'wxlogin'")}
        assert {"users", "identities", "sessions", "scenes", "code_ledger", "access_tokens",
                "avatars", "schema_migrations"} <= tables
    finally:
        await conn.close()


async def test_two_runners_at_once_migrate_once(pg_url: str) -> None:
    url = await fresh_database(pg_url, "wxlogin_migrate_race")
    conns = [await asyncpg.connect(url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        assert sorted(len(r) for r in results) == [0, 0, 0, len(discover())]
        assert await conns[0].fetchval("SELECT count(*) FROM wxlogin.schema_migrations") == len(
            discover())
    finally:
        for conn in conns:
            await conn.close()


async def test_a_failing_migration_is_rolled_back_whole(pg_url: str, tmp_path: Path) -> None:
    url = await fresh_database(pg_url, "wxlogin_migrate_fail")
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE a (x int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE b (x int); SELECT broken;")
    conn = await asyncpg.connect(url)
    try:
        with pytest.raises(asyncpg.PostgresError):
            await migrate(conn, tmp_path)
        assert await conn.fetchval("SELECT to_regclass('wxlogin.a') IS NOT NULL")
        assert await conn.fetchval("SELECT to_regclass('wxlogin.b') IS NULL")
        assert await conn.fetchval("SELECT count(*) FROM wxlogin.schema_migrations") == 1
    finally:
        await conn.close()


async def test_a_host_database_with_its_own_tables_of_the_same_names(pg_url: str) -> None:
    # A site sharing its database: its users and schema_migrations (dbmate's, say) stay its own.
    url = await fresh_database(pg_url, "wxlogin_migrate_host")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL);"
            "INSERT INTO users (email) VALUES ('a@example.com');"
            "CREATE TABLE schema_migrations (version text PRIMARY KEY);"
            "INSERT INTO schema_migrations VALUES ('0001'), ('0002'), ('0003');"
        )
        assert await migrate(conn) == [m.name for m in discover()]
        assert await conn.fetchval("SELECT count(*) FROM wxlogin.users") == 0
        assert await conn.fetchval("SELECT email FROM public.users") == "a@example.com"
        assert await conn.fetchval("SELECT count(*) FROM public.schema_migrations") == 3
        assert await conn.fetchval("SHOW search_path") == '"$user", public'
    finally:
        await conn.close()


def test_badly_named_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "init.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="NNNN_name"):
        discover(tmp_path)
