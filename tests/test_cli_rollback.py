"""`stir rollback <table>`: the previous version comes back, and again undoes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
from conftest import PostgresService

STIR = str(Path(sys.executable).parent / "stir")


def stir(postgres: PostgresService, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STIR_")}
    env.update(postgres.env)
    return subprocess.run(
        [STIR, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


async def contents(dsn: str, table: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [row[0] for row in await conn.fetch(f"SELECT v FROM {table} ORDER BY v")]
    finally:
        await conn.close()


async def test_rollback_swaps_the_backup_in_and_back(postgres: PostgresService) -> None:
    conn = await asyncpg.connect(postgres.dsn)
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS rb_served, rb_served_old_bkp;"
            "CREATE TABLE rb_served (v text PRIMARY KEY); INSERT INTO rb_served VALUES ('new');"
            "CREATE TABLE rb_served_old_bkp (v text PRIMARY KEY);"
            "INSERT INTO rb_served_old_bkp VALUES ('old');"
        )
    finally:
        await conn.close()

    done = stir(postgres, "rollback", "rb_served")
    assert done.returncode == 0, done.stderr
    assert "rolled back" in done.stdout
    assert await contents(postgres.dsn, "rb_served") == ["old"]
    assert await contents(postgres.dsn, "rb_served_old_bkp") == ["new"]

    again = stir(postgres, "rollback", "public.rb_served")
    assert again.returncode == 0, again.stderr
    assert await contents(postgres.dsn, "rb_served") == ["new"]


async def test_rollback_without_a_backup_says_so(postgres: PostgresService) -> None:
    done = stir(postgres, "rollback", "never_served")
    assert done.returncode == 1
    assert "never_served_old_bkp" in done.stderr
