"""The embedded PostgreSQL: a password even on its private socket, no clobbering, restarts."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from wxlogin.storage.embedded_pg import EmbeddedPostgres, EmbeddedPostgresError


async def test_the_superuser_needs_the_password(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "data")
    url = pg.start()
    try:
        assert (tmp_path / "data" / "postgres_password").stat().st_mode & 0o777 == 0o600
        conn = await asyncpg.connect(url)
        assert await conn.fetchval("SELECT current_user") == "postgres"
        await conn.close()
        without = url.replace(url[url.index("postgres:"):url.index("@")], "postgres")
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(without)
    finally:
        pg.stop()
    assert pg.start() == url  # a restart finds its cluster and password again
    pg.stop()


def test_a_folder_that_is_not_a_cluster_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "data" / "pgdata").mkdir(parents=True)
    precious = tmp_path / "data" / "pgdata" / "precious.txt"
    precious.write_text("keep me")
    with pytest.raises(EmbeddedPostgresError, match="not empty"):
        EmbeddedPostgres(tmp_path / "data").start()
    assert precious.read_text() == "keep me"
