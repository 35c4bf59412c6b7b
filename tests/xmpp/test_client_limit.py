"""The private Prosody as it runs (pipeline/xmpp/prosody.py), through a REAL Prosody to the bare
echo: what one client may send (mod_fluxworld_limits.lua): within its burst a client is never held,
beyond it it is read at the rate and nothing is lost; and its allocator."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from loadtest.echo import ECHO_COMPONENT, EchoComponent
from pipeline.xmpp.prosody import CLIENT_BURST, CLIENT_RATE, JEMALLOC, ProsodyServer, prosody_installed
from tests.loadtest.test_wire import PASSWORD, WAIT, logged_in

PAD = "x" * 120     # a command of ~200 bytes, as a player's are


@pytest.fixture(scope="module")
def limited_prosody(tmp_path_factory):
    if not prosody_installed():
        pytest.skip("the prosody binary is missing (apt-get install prosody; .ci/run does it)")
    with ProsodyServer(tmp_path_factory.mktemp("prosody"), extra_components=(ECHO_COMPONENT,),
                       client_rate=CLIENT_RATE) as server:
        server.create_accounts([("ann", PASSWORD), ("mallory", PASSWORD)])
        yield server


def command(seq: int) -> str:
    return (f'<message to="{ECHO_COMPONENT}" type="chat"><command xmlns="urn:x" seq="{seq}">{PAD}</command>'
            "</message>")


async def test_a_player_sending_one_command_after_another_is_never_held(limited_prosody):
    """Prosody's own mod_limits paced every read: ~200 bytes at 4 kB/s stopped the socket for
    50 ms, so 20 commands each sent on the last one's answer took over a second."""
    async with EchoComponent(limited_prosody.endpoint(ECHO_COMPONENT)):
        ann = await logged_in(limited_prosody, "ann")
        ann.send("<presence/>")
        began = time.monotonic()
        for seq in range(20):
            ann.send(command(seq))
            echoed = await asyncio.wait_for(ann.messages.get(), WAIT)
            assert echoed.find("{urn:x}command").get("seq") == str(seq)
        took = time.monotonic() - began
        await ann.close(2.0)
    assert 20 * len(command(0)) < CLIENT_RATE * CLIENT_BURST        # all within the burst
    assert took < 0.5, f"20 round trips took {took:.2f} s: the client was held"


async def test_a_flood_is_read_at_the_rate_and_nothing_of_it_is_lost(limited_prosody):
    """Four times the burst at once: the burst goes through, the rest waits unread at the
    socket and is read at CLIENT_RATE, in order; another client is not held meanwhile."""
    size = len(command(0))
    flood = 4 * CLIENT_RATE * CLIENT_BURST // size
    async with EchoComponent(limited_prosody.endpoint(ECHO_COMPONENT)):
        mallory, ann = await logged_in(limited_prosody, "mallory"), await logged_in(limited_prosody, "ann")
        mallory.send("<presence/>")
        ann.send("<presence/>")
        echoed: list[int] = []

        async def collect() -> None:
            while True:
                echoed.append(int((await mallory.messages.get()).find("{urn:x}command").get("seq")))
        collecting = asyncio.create_task(collect())
        began = time.monotonic()
        for seq in range(flood):
            mallory.send(command(seq))
        await asyncio.sleep(1.0)
        at_one_second = len(echoed)
        ann.send(command(0))
        await asyncio.wait_for(ann.messages.get(), 0.5)      # not behind mallory's flood
        # The rest comes at the rate, (flood - burst) * size / rate: 6 s, and not much faster.
        deadline = began + 3 * (flood * size - CLIENT_RATE * CLIENT_BURST) / CLIENT_RATE
        while len(echoed) < flood and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        took = time.monotonic() - began
        collecting.cancel()
        await asyncio.gather(mallory.close(2.0), ann.close(2.0))
    # The burst, what one read takes beyond it (server_epoll reads 8 kB at a time) and a second's rate.
    allowed_at_one_second = (CLIENT_RATE * CLIENT_BURST + 8192 + CLIENT_RATE) // size
    assert at_one_second <= allowed_at_one_second, f"{at_one_second} of {flood} through in 1 s: not held"
    assert echoed == list(range(flood)), f"{len(echoed)} of {flood} echoed, in order: {echoed == sorted(echoed)}"
    assert took > 0.5 * (flood * size - CLIENT_RATE * CLIENT_BURST) / CLIENT_RATE


def test_prosody_allocates_with_jemalloc_when_it_is_installed(limited_prosody):
    if JEMALLOC is None:
        pytest.skip("libjemalloc2 is not installed (make system installs it)")
    assert str(JEMALLOC.resolve()) in Path(f"/proc/{limited_prosody.pid}/maps").read_text()
