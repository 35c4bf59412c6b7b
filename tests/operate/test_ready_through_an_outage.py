"""Readiness follows the database: 503 naming `database` while it is away, 200 once ticks go on.

The server runs in-process (as tests/live/test_outage.py runs it) against a
PostgreSQL of the test's own, which the test stops and starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any, Awaitable, Callable

import asyncpg
import pytest

from persistence.embedded import EmbeddedServer
from pipeline.operate import health
from pipeline.operate.http import HttpOptions
from pipeline.server.serve import ServeOptions, serve
from tests.live.test_recovery import WORLD, long_batches
from tests.operate.scraping import aget, aready, samples, value


async def eventually(what: str, check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"not {what} within {timeout} s"
        await asyncio.sleep(0.05)


async def http_port(caplog: pytest.LogCaptureFixture) -> int:
    for _ in range(600):
        for record in caplog.records:
            if getattr(record, "event", None) == "http":
                port: int = getattr(record, "port")
                return port
        await asyncio.sleep(0.05)
    raise AssertionError("serve never said where it serves HTTP")


@pytest.fixture
def own_postgres(tmp_path: Path) -> Any:
    server = EmbeddedServer(tmp_path / "pgdata").start()
    yield server
    server.stop()


async def test_ready_says_database_while_it_is_away(own_postgres: EmbeddedServer, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "MISSED_WINDOW", 1.0)      # the slots the outage skipped stop counting sooner
    caplog.set_level(logging.INFO, logger="pipeline")
    admin = await asyncpg.connect(own_postgres.uri("postgres"))
    await admin.execute("CREATE DATABASE operate")
    await admin.close()
    drive = tmp_path / "drive.jsonl"
    long_batches(drive, 20)
    options = ServeOptions(db=own_postgres.uri("operate"), world=WORLD, drive=drive, ticks=100_000, hz=50,
                           http=HttpOptions("127.0.0.1", 0))
    running = asyncio.create_task(serve(options))
    port = await http_port(caplog)

    async def ready() -> bool:
        return (await aready(port))[0] == 200

    async def database_failing() -> bool:
        status, body = await aready(port)
        return status == 503 and "database" in body["failing"]

    try:
        await eventually("ready", ready)
        await asyncio.to_thread(own_postgres.stop)
        await eventually("unready for the database", database_failing)
        page = samples((await aget(port, "/metrics"))[1])        # a scrape answers in an outage too
        assert value(page, "fluxworld_database_available") == 0
        assert value(page, "fluxworld_database_outages_total") == 1
        await asyncio.sleep(0.5)
        await asyncio.to_thread(own_postgres.start)
        await eventually("ready again", ready)
        page = samples((await aget(port, "/metrics"))[1])
        assert value(page, "fluxworld_database_available") == 1
        assert value(page, "fluxworld_database_outages_total") == 1
        assert value(page, "fluxworld_database_outage_seconds_total") >= 0.5
        assert value(page, "fluxworld_missed_ticks_total") > 0       # the slots it waited through
        events = [getattr(r, "event", None) for r in caplog.records]
        assert "database_outage" in events and "database_back" in events
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(running, 60)
