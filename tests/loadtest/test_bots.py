"""The load test's XMPP machinery against a REAL Prosody: the echo component, and bot swarms
against it and against the world server (tests/xmpp/harness.py)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from loadtest.bots import SwarmError, SwarmSpec, run_swarm, summarize
from loadtest.echo import ECHO_COMPONENT, EchoComponent
from pipeline.xmpp.prosody import ProsodyServer, prosody_installed
from tests.xmpp.harness import ACCOUNTS, PASSWORD, world_server
from vocabulary.errors import XmppError
from vocabulary.records import unpack_entity

BOTS = tuple((f"bot{i}", PASSWORD) for i in range(5))


@pytest.fixture(scope="module")
def echo_prosody(tmp_path_factory):
    """A Prosody of our own, declaring the echo component besides the world's (the session's does not)."""
    if not prosody_installed():
        pytest.skip("the prosody binary is missing (apt-get install prosody; .ci/run does it)")
    with ProsodyServer(tmp_path_factory.mktemp("prosody"), extra_components=(ECHO_COMPONENT,)) as server:
        server.create_accounts([*BOTS, *((name, PASSWORD) for name in ACCOUNTS)])
        yield server


def spec(prosody: ProsodyServer, target: str, **fields) -> SwarmSpec:
    return replace(SwarmSpec("127.0.0.1", prosody.c2s_port, prosody.domain, target, BOTS, seconds=1.5, rate=None,
                             workload="echo"), **fields)


def accounted(result: dict) -> bool:
    return result["sent"] == result["answered"] + result["unanswered"] + result["refused"]


async def test_a_closed_loop_swarm_against_the_echo_gets_every_command_back(echo_prosody):
    timeline = []
    async with EchoComponent(echo_prosody.endpoint(ECHO_COMPONENT)) as echo:
        result = await run_swarm(spec(echo_prosody, ECHO_COMPONENT, processes=2), progress=timeline.append)
    assert result["bots"] == 5 and result["answered"] > 0 and accounted(result)
    assert result["unanswered"] == result["refused"] == 0 and echo.echoed == result["sent"]
    assert result["latency_ms"]["count"] == result["answered"] and 0 < result["latency_ms"]["p50"] < 1000
    assert [e["t"] for e in timeline] == [1.0, 1.5] and timeline == result["timeline"]
    assert sum(e["answered"] for e in timeline) <= result["answered"]
    assert result["round_trips_per_s"] > 0 and result["cpu_s"] > 0 and result["login_s"] > 0


async def test_an_open_loop_swarm_sends_about_its_rate(echo_prosody):
    async with EchoComponent(echo_prosody.endpoint(ECHO_COMPONENT)):
        result = await run_swarm(spec(echo_prosody, ECHO_COMPONENT, rate=20.0, seconds=2.0))
    assert 100 < result["sent"] < 300 and accounted(result) and result["unanswered"] == 0   # 5 bots x 20/s x 2 s


async def test_a_swarm_plays_in_the_world_and_its_commands_are_acked(echo_prosody, fresh_dsn):
    accounts = tuple((name, PASSWORD) for name in ACCOUNTS)
    async with world_server(echo_prosody, fresh_dsn) as running:
        result = await run_swarm(spec(echo_prosody, echo_prosody.component, accounts=accounts, workload="mmo",
                                      window=4))
        for _ in range(100):        # at the end the bots left the world
            if not any(online(running.loop.view, entity) for entity in ACCOUNTS.values()):
                break
            await asyncio.sleep(0.02)
        assert not any(online(running.loop.view, entity) for entity in ACCOUNTS.values())
    assert result["bots"] == 3 and result["answered"] > 0 and accounted(result) and result["unanswered"] == 0
    assert result["latency_ms"]["count"] == result["answered"]
    assert result["rejected"] < result["answered"] / 2      # the mix avoids what the rules would reject


def online(view, entity: int) -> bool:
    record = view.get(entity)
    return record is not None and bool(unpack_entity(record)["online"])


async def test_bounces_from_a_component_that_is_not_there_are_not_answers(echo_prosody):
    result = await run_swarm(spec(echo_prosody, ECHO_COMPONENT, seconds=0.5, window=2))    # no echo running
    assert result["sent"] == result["unanswered"] == 10 and result["answered"] == 0


async def test_a_wrong_password_or_a_missing_component_is_a_clear_error(echo_prosody):
    with pytest.raises(SwarmError, match="bot bot0: authentication failed"):
        await run_swarm(spec(echo_prosody, ECHO_COMPONENT, accounts=(("bot0", "wrong"),)))
    with pytest.raises(XmppError, match="echo component nowhere"):
        EchoComponent(replace(echo_prosody.endpoint(ECHO_COMPONENT), component="nowhere.localhost")).start()


def test_latency_summary_is_nearest_rank():
    assert summarize(list(map(float, range(1, 101)))) == {"count": 100, "p50": 50.0, "p90": 90.0, "p99": 99.0,
                                                          "max": 100.0}
    assert summarize([])["count"] == 0
