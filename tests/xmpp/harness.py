"""A real Prosody, the world server in-process, and real slixmpp clients, for tests.

    prosody        (session fixture) a private Prosody in the session's state dir
    world_server   async context manager: a fresh database seeded with WORLD, the
                   tick loop with its link socket, and the XMPP gateway on that link
                   (in this process, so tests can look inside it) against `prosody`
    Bot            a slixmpp client logged in with PLAIN on loopback, collecting
                   what the world sends it; every wait is bounded
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import tempfile
import xml.etree.ElementTree as ET
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest
from slixmpp import ClientXMPP
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from persistence.database import open_database
from persistence.migrator import migrate
from pipeline.engines.engine import create_engine
from pipeline.link.world import WorldLink
from pipeline.server.recovery import recover
from pipeline.server.runner import Inbox, Pipeline, TickLoop
from pipeline.stages.negotiate import Negotiate
from pipeline.view import WorldView
from pipeline.xmpp.component import XmppGateway
from pipeline.xmpp.prosody import ProsodyServer, prosody_installed
from pipeline.xmpp.protocol import COMMAND_NS, UPDATE_NS, read_left, read_seen
from tests.support import item, npc, player, world
from vocabulary.types import WorldData

HZ = 100.0
WAIT = 5.0
PASSWORD = "pw"
# Each client would build its own SSL context (~30 ms); none is used on loopback, but share one.
SHARED_SSL = ssl.create_default_context()

# alice and bob stand side by side, carol far away; a rat and gold next to alice.
WORLD = world(player(1, 10, 10, online=0, name="alice"), player(2, 11, 10, online=0, name="bob", gold=50),
              player(3, 50, 50, online=0, name="carol"), npc(4, 10, 12, attack=1, hp=3, max_hp=3),
              item(5, 10, 11, gold=7), next_id=100)
ACCOUNTS = {"alice": 1, "bob": 2, "carol": 3}


@pytest.fixture(scope="session")
def prosody(pg_server: Any) -> Any:   # pg_server first: it sets FLUXWORLD_STATE_DIR for the session
    if not prosody_installed():
        pytest.skip("the prosody binary is missing (apt-get install prosody; .ci/run does it)")
    server = ProsodyServer().start()
    server.create_accounts([(name, PASSWORD) for name in (*ACCOUNTS, "dave", "mallory", "frank")])
    yield server
    server.stop()


@dataclass
class Running:
    gateway: XmppGateway
    loop: TickLoop
    link: WorldLink
    inbox: Inbox


@asynccontextmanager
async def world_server(prosody: ProsodyServer, dsn: str, *, rate: float = 200.0, burst: int = 50,
                       per_sender: int | None = None, seed: WorldData = WORLD) -> AsyncIterator[Running]:
    await migrate(dsn)
    async with open_database(dsn) as database:
        store = database.store()
        await store.seed(seed)
        async with database.pool.acquire() as conn:
            for name, entity in ACCOUNTS.items():
                await conn.execute("INSERT INTO player_account VALUES ($1, $2)", f"{name}@{prosody.domain}", entity)
        view = WorldView.from_world(await recover(store))
        engine = create_engine("python")
        engine.project(view.frame())
        inbox = Inbox(per_sender=per_sender)
        directory = Path(tempfile.mkdtemp(prefix="fw-link-"))
        link = WorldLink(directory / "world.sock", inbox, view, HZ)
        await link.start()
        gateway = XmppGateway(prosody.endpoint(), link.path, store)
        gateway.start()
        await asyncio.wait_for(asyncio.gather(gateway.connected.wait(), gateway.world.linked.wait()), WAIT)
        loop = TickLoop(Pipeline(engine, store, link, negotiate=Negotiate(rate=rate, burst=burst)), view, inbox,
                        hz=HZ)
        stop = asyncio.Event()
        task = asyncio.create_task(loop.run(stop))
        try:
            yield Running(gateway, loop, link, inbox)
        finally:
            stop.set()
            await asyncio.wait_for(task, WAIT)
            await gateway.stop()
            await link.stop()
            shutil.rmtree(directory, ignore_errors=True)


class Bot:
    def __init__(self, prosody: ProsodyServer, name: str) -> None:
        self.world = prosody.component
        self.client = ClientXMPP(f"{name}@{prosody.domain}", PASSWORD,
                                 plugin_config={"feature_mechanisms": {"unencrypted_plain": True,
                                                                       "use_mechanisms": ["PLAIN"]}})
        self.client.ssl_context = SHARED_SSL
        self.client.enable_starttls = self.client.enable_direct_tls = False   # plain TCP on loopback
        self.client.enable_plaintext = True
        self.port = prosody.c2s_port
        self.messages: list[tuple[str, ET.Element | None, ET.Element | None]] = []
        self._arrived = asyncio.Event()
        # Every message, with a body or not (the world sends programs that speak payloads none).
        self.client.register_handler(Callback("all messages", MatchXPath("{jabber:client}message"), self._on_message))
        self.seq = 1000
        self.grouped = 0        # messages that carried several refusals

    def _on_message(self, msg: Any) -> None:
        if msg.xml.find("{urn:xmpp:delay}delay") is not None:
            return      # kept offline by Prosody for an earlier test's session of this account
        refusals = msg.xml.findall(f"{{{UPDATE_NS}}}refused")
        if len(refusals) > 1:       # refusals that came together, in one message: one entry each, as sent
            lines = msg["body"].split("\n")
            assert len(lines) == len(refusals), msg
            self.grouped += 1
            self.messages.extend((line, None, refused) for line, refused in zip(lines, refusals))
        else:
            update = msg.xml.find(f"{{{UPDATE_NS}}}update")
            self.messages.append((msg["body"], update, refusals[0] if refusals else None))
        self._arrived.set()

    async def __aenter__(self) -> Bot:
        started = asyncio.Event()
        self.client.add_event_handler("session_start", lambda _: started.set())
        self.client.connect("127.0.0.1", self.port)
        await asyncio.wait_for(started.wait(), WAIT)
        self.client.send_presence()   # available to its server, as chat clients are: bare-JID messages reach it
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.disconnect(wait=1.0)

    def online(self) -> None:
        self.client.send_presence(pto=self.world)

    def offline(self) -> None:
        self.client.send_presence(pto=self.world, ptype="unavailable")

    def say(self, body: str) -> None:
        self.client.send_message(mto=self.world, mbody=body, mtype="chat")

    def command(self, op: str, seq: int | None = None, **attrs: Any) -> int:
        """The structured payload, with this bot's own seq."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        msg = self.client.make_message(mto=self.world, mtype="chat")
        msg.xml.append(ET.Element(f"{{{COMMAND_NS}}}command", {"op": op, "seq": str(seq),
                                                                **{k: str(v) for k, v in attrs.items()}}))
        msg.send()
        return seq

    async def expect(self, wanted: Callable[[str, ET.Element | None, ET.Element | None], bool],
                     timeout: float = WAIT) -> tuple[str, ET.Element | None, ET.Element | None]:
        """The first message (since the last expect) that `wanted` accepts; fails after `timeout`."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for i, m in enumerate(self.messages):
                if wanted(*m):
                    del self.messages[:i + 1]
                    return m
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                last = [m[0] for m in self.messages][-5:]
                raise AssertionError(f"no such message within {timeout} s; the last ones: {last}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def expect_body(self, text: str) -> str:
        return (await self.expect(lambda body, *_: text in (body or "")))[0]


def entity(update: ET.Element | None, entity_id: int) -> dict[str, str] | None:
    """The entity as `update` shows it (values as strings, as tests compare them), or None."""
    seen = update.find(f"{{{UPDATE_NS}}}seen") if update is not None else None
    for e in read_seen(seen.text if seen is not None else None):
        if e["id"] == entity_id:
            return {k: str(v) for k, v in e.items()}
    return None


def left(update: ET.Element | None) -> list[int]:
    gone = update.find(f"{{{UPDATE_NS}}}left") if update is not None else None
    return read_left(gone.text if gone is not None else None)
