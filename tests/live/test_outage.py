"""PostgreSQL going away mid-run: ticks pause, then resume, and nothing is lost."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
from click.testing import CliRunner

from persistence.embedded import EmbeddedServer
from pipeline.__main__ import cli
from pipeline.server.serve import ServeOptions, serve
from tests.live.test_recovery import WORLD, long_batches


def test_ticks_pause_while_the_database_is_away_and_resume_losing_nothing(tmp_path: Path) -> None:
    drive = tmp_path / "drive.jsonl"
    long_batches(drive, 150, seed=3)
    expected = json.loads(CliRunner().invoke(cli, ["replay", str(WORLD), str(drive), "--json"]).stdout)
    server = EmbeddedServer(tmp_path / "pgdata").start()
    try:
        hashes = asyncio.run(run_through_an_outage(server, drive))
    finally:
        server.stop()
    assert hashes == list(zip(range(1, 151), expected["hashes"]))


async def run_through_an_outage(server: EmbeddedServer, drive: Path) -> list[tuple[int, str]]:
    admin = await asyncpg.connect(server.uri("postgres"))
    await admin.execute("CREATE DATABASE outage")
    await admin.close()
    dsn = server.uri("outage")
    running = asyncio.create_task(serve(ServeOptions(db=dsn, world=WORLD, drive=drive, hz=100)))
    committed = await committed_ticks(dsn, at_least=20)
    await asyncio.to_thread(server.stop)            # every connection drops, mid-tick or between ticks
    await asyncio.sleep(1.0)                        # ticks pause: commits fail and are retried
    assert not running.done()
    await asyncio.to_thread(server.start)
    assert await asyncio.wait_for(running, 120) == 150
    assert committed >= 20
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tick, encode(world_hash, 'hex') AS h FROM command_log ORDER BY tick")
    finally:
        await conn.close()
    return [(r["tick"], r["h"]) for r in rows]


async def committed_ticks(dsn: str, at_least: int) -> int:
    for _ in range(600):
        try:
            conn = await asyncpg.connect(dsn)
            try:
                if await conn.fetchval("SELECT to_regclass('command_log') IS NOT NULL"):
                    count: int = await conn.fetchval("SELECT count(*) FROM command_log")
                    if count >= at_least:
                        return count
            finally:
                await conn.close()
        except OSError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} ticks committed in 30 s")
