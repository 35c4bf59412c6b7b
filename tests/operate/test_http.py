"""The HTTP side on its own: what it answers before the world is up, and a taken address."""

from __future__ import annotations

import logging
import socket

import pytest

from pipeline.metrics import TickMetrics
from pipeline.operate.http import HttpOptions, HttpServer, parse_address
from pipeline.operate.state import ServerState
from tests.operate.scraping import aget, aready, samples, value
from vocabulary.errors import InputError


async def test_before_the_world_is_recovered_it_is_live_and_not_ready() -> None:
    state = ServerState(TickMetrics(), hz=20.0)
    server = HttpServer(state, HttpOptions("127.0.0.1", 0))
    await server.start()
    try:
        assert server.address is not None
        port = server.address[1]
        status, body = await aready(port)
        assert status == 503
        assert body == {"ready": False, "failing": ["recovered"], "checks": {"recovered": False}}
        assert (await aget(port, "/health/live"))[0] == 200
        status, page = await aget(port, "/metrics")
        assert status == 200
        parsed = samples(page)
        assert value(parsed, "fluxworld_ticks_total") == 0
        assert value(parsed, "fluxworld_database_available") == 1
        assert not [name for name, _ in parsed if name.endswith("_created")]
    finally:
        await server.stop()


async def test_a_taken_address_stops_the_server_when_asked_for_and_is_only_said_by_default(
        caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        asked = HttpServer(ServerState(TickMetrics(), hz=20.0), HttpOptions("127.0.0.1", port))
        with pytest.raises(InputError, match=f"--http 127.0.0.1:{port}: cannot listen there"):
            await asked.start()
        caplog.set_level(logging.WARNING, logger="pipeline.operate")
        default = HttpServer(ServerState(TickMetrics(), hz=20.0), HttpOptions("127.0.0.1", port, required=False))
        await default.start()
        assert default.address is None
        (line,) = [r.getMessage() for r in caplog.records if r.name == "pipeline.operate.http"]
        assert f"cannot listen on 127.0.0.1:{port}" in line and "--http HOST:PORT" in line
        await default.stop()


def test_addresses() -> None:
    assert parse_address("127.0.0.1:8020") == ("127.0.0.1", 8020)
    assert parse_address("[::1]:0") == ("::1", 0)
    for bad in ("8020", "host:", "host:port", ":8020", "h:70000"):
        with pytest.raises(InputError, match="HOST:PORT"):
            parse_address(bad)
