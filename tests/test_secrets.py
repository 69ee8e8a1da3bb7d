"""Generated secrets live in PostgreSQL: made once by whichever process comes first, shared by all,
an explicitly set one always wins, and an old data-dir key is carried over on upgrade."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from wxlogin.clock import FakeClock
from wxlogin.storage.secrets import COOKIE, SecretUnreadable, cookie_secret

CLOCK = FakeClock()


async def stored(conn: asyncpg.Connection[asyncpg.Record]) -> list[str]:
    rows = await conn.fetch("SELECT value FROM wxlogin.secrets WHERE name = $1", COOKIE)
    return [row["value"] for row in rows]


async def test_processes_starting_together_share_one_cookie_secret(
    pg_url: str, tmp_path: Path
) -> None:
    # Each "process" has its own connection and its own empty data dir.
    conns = [await asyncpg.connect(pg_url) for _ in range(8)]
    try:
        made = await asyncio.gather(*(
            cookie_secret(conn, None, tmp_path / f"data{i}", CLOCK.now())
            for i, conn in enumerate(conns)
        ))
        assert len(set(made)) == 1 and len(made[0]) >= 32
        assert await stored(conns[0]) == [made[0]]
        # A restart (or a machine joining later) reads the same one.
        assert await cookie_secret(conns[0], None, tmp_path / "later", CLOCK.now()) == made[0]
    finally:
        for conn in conns:
            await conn.close()
    assert not any(tmp_path.iterdir())  # nothing is written to the data dirs


async def test_a_configured_cookie_secret_wins_and_is_not_stored(
    pg_url: str, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        configured = "set-in-the-environment-0123456789abcdef"
        assert await cookie_secret(conn, configured, tmp_path, CLOCK.now()) == configured
        assert await stored(conn) == []
    finally:
        await conn.close()


async def test_an_old_data_dir_secret_is_carried_into_the_database(
    pg_url: str, tmp_path: Path
) -> None:
    old = "kept-in-the-data-dir-by-an-earlier-version-0123"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "cookie_secret").write_text(old + "\n")
    conn = await asyncpg.connect(pg_url)
    try:
        assert await cookie_secret(conn, None, tmp_path / "a", CLOCK.now()) == old
        # A second machine with another old key, or a broken one, joins: the database's key
        # wins everywhere, and a broken file no longer matters.
        (tmp_path / "c").mkdir()
        (tmp_path / "c" / "cookie_secret").write_text("another-old-key-" * 4)
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "cookie_secret").write_text("short")
        assert await cookie_secret(conn, None, tmp_path / "c", CLOCK.now()) == old
        assert await cookie_secret(conn, None, tmp_path / "b", CLOCK.now()) == old
        assert await stored(conn) == [old]
    finally:
        await conn.close()


@pytest.mark.parametrize("broken", ["truncated", "unreadable"])
async def test_a_broken_old_secret_stops_the_first_start(
    pg_url: str, tmp_path: Path, broken: str
) -> None:
    """Replacing it would be for good (the database's key wins from then on) and log everyone
    out, so the first start refuses, saying what to do; nothing is stored."""
    if broken == "truncated":
        (tmp_path / "cookie_secret").write_text("")
    else:
        (tmp_path / "cookie_secret").mkdir()  # reading fails, as a file it may not read would
    conn = await asyncpg.connect(pg_url)
    try:
        with pytest.raises(SecretUnreadable, match="cookie_secret"):
            await cookie_secret(conn, None, tmp_path, CLOCK.now())
        assert await stored(conn) == []
    finally:
        await conn.close()
