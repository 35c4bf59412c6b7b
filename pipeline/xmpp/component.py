"""The gateway's XMPP side: an XEP-0114 component (the gateway's only importer of slixmpp).

In: presence available from a player's JID joins its entity (an unknown
JID gets an account allocated: whoever the XMPP server lets log in may
play); unavailable leaves. Chat messages are parsed (protocol.py) into
commands for the world (pipeline/link/client.py; a world split into shards:
pipeline/link/router.py), with the sender's entity as player; text
commands get seq = the player's last + 1, tracked here.
Out: refusals at once; everything else through the Fanout, one message per
player at most once per its send period. Stanzas go out as text, many per
write. The XMPP connection is supervised: if it drops, reconnect with
exponential backoff; the world ticks on regardless, in another process.
"""

from __future__ import annotations

import asyncio
import logging
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable, Sequence, cast

from slixmpp import ComponentXMPP
from slixmpp.stanza import Presence
from slixmpp.xmlstream import XMLStream

from schema._generated.layout import ZONE_SIZE
from vocabulary.records import unpack_entity, unpack_zone
from vocabulary.types import Batch, TickResult

from ..blocks import seq_ceiling, wall_microseconds
from ..formats.batches import check_command
from ..formats.jsoninput import Bad, path_str
from ..link.client import NOT_LINKED, WorldClient
from ..link.merged import Lookup
from ..link.router import ShardLink, ShardRouter, World
from ..stages.negotiate import Buckets
from ..view import WorldView
from . import Endpoint, stanzas
from .fanout import Fanout, cadence
from .players import Accounts, Players
from .presence import PresenceSync, sessions
from .protocol import (
    COMMAND_NS,
    HELP,
    LocalQuery,
    Parsed,
    ParseError,
    Request,
    UpdatesSetting,
    look_text,
    make_command,
    parse_payload,
    parse_text,
)

log = logging.getLogger(__name__)

_BODY = "{jabber:component:accept}body"
_COMMAND = f"{{{COMMAND_NS}}}command"

BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0     # seconds between reconnection attempts
QUESTION_RATE, QUESTION_BURST = 2.0, 5    # look, help, updates: answered here, limited like commands
NAME_BYTES = 32
BOT_HZ = 10.0       # how often a player that sends payloads hears from the world, until it says otherwise
STATUS_EVERY = 1.0  # seconds between the gateway's reports to the world
PROBE_GRACE = 3.0   # seconds the players' servers have to answer a probe before silence means offline


class DirectMessages(XMLStream):
    """Mixed into a slixmpp stream: a message goes straight to `on_message` as the parsed
    element, with no stanza object, no JID object and no match against every registered
    handler. Messages are nearly all of a gateway's input (and of a load-test bot's), and
    those steps were most of their CPU per message; everything else goes the usual way."""

    on_message: Callable[[ET.Element], None] | None = None

    def _spawn_event(self, xml: ET.Element) -> None:
        if self.on_message is not None and xml.tag == f"{{{self.default_ns}}}message":
            self.on_message(xml)
        else:
            super()._spawn_event(xml)


class _Component(DirectMessages, ComponentXMPP):
    pass


class XmppGateway:
    def __init__(self, endpoint: Endpoint, world: Path | Sequence[ShardLink], accounts: Accounts, *,
                 bot_hz: float = BOT_HZ, players_domain: str | None = None) -> None:
        """`world`: the world server's link socket, or each shard's zones and link (a world split
        into zone groups, pipeline/link/router.py: players still talk to one component).
        `players_domain`: the gateway answers for the accounts of this XMPP domain only, as one of
        several gateways, each on its own XMPP server, on one world (None: every account)."""
        self.endpoint, self.bot_hz, self.players_domain = endpoint, bot_hz, players_domain
        self.players = Players(accounts)
        hello = f"xmpp {endpoint.component}"
        self.world: World = WorldClient(world, self, hello=hello) if isinstance(world, Path) else \
            ShardRouter(world, self, hello=hello)
        self.fanout = Fanout(endpoint.component)
        self.connected = asyncio.Event()
        self.stanzas_in = self.stanzas_out = self.bytes_out = 0
        self.xmpp_sessions = 0          # sessions with the XMPP server begun: the first, then each reconnect
        self._stopping = False
        self._ended = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._entity, self._jid = self.players.entity, self.players.jid     # JID -> entity and back
        self._joined: set[int] = set()             # players this gateway has joined
        self._seq: dict[int, int] = {}             # entity -> last seq handed out or seen
        self._turns: dict[str, int] = {}           # jid -> presences seen: the latest one wins
        self._refusals: dict[str, list[tuple[str, str]]] = {}    # jid -> answers to send together
        self.presence = PresenceSync(self._send_presence)
        self._questions = Buckets(QUESTION_RATE, QUESTION_BURST)   # negotiate's token buckets
        self._tasks: set[asyncio.Future[None]] = set()
        self.xmpp = _Component(endpoint.component, endpoint.secret)  # type: ignore[no-untyped-call]
        self.xmpp.add_event_handler("session_start", self._on_session_start)
        self.xmpp.add_event_handler("disconnected", self._on_ended)
        self.xmpp.add_event_handler("connection_failed", self._on_ended)
        self.xmpp.add_event_handler("presence_available", self._on_available)
        self.xmpp.add_event_handler("presence_unavailable", self._on_unavailable)
        self.xmpp.add_event_handler("presence_subscribe", self._on_subscribe)
        self.xmpp.on_message = self._on_message

    @property
    def view(self) -> Lookup | None:
        return self.world.view

    # ------------------------------------------------------------ connection

    def start(self) -> None:
        self.world.start()
        self._task = asyncio.create_task(self._supervise())
        self._reporting = asyncio.create_task(self._report())

    async def _report(self) -> None:
        while True:
            self._status()
            await asyncio.sleep(STATUS_EVERY)

    def _status(self) -> None:
        self.world.status(self.connected.is_set(), self.stanzas_in, self.stanzas_out, self.bytes_out,
                          self.xmpp_sessions)

    async def stop(self) -> None:
        self._stopping = True
        self._ended.set()
        if self.connected.is_set():
            await self.xmpp.disconnect(wait=1.0)
        self.xmpp.cancel_connection_attempt()
        if self._task is not None:
            await self._task
        self._reporting.cancel()
        await self.world.stop()

    async def _supervise(self) -> None:
        delay = BACKOFF_FIRST
        while not self._stopping:
            self._ended.clear()
            self.xmpp.connect(self.endpoint.host, self.endpoint.port)
            await self._ended.wait()
            self.xmpp.cancel_connection_attempt()   # we pace retries, not slixmpp (1, 3, 7 ... s)
            was_connected = self.connected.is_set()
            self.connected.clear()
            self._status()
            if self._stopping:
                break
            delay = BACKOFF_FIRST if was_connected else min(delay * 2, BACKOFF_MAX)
            log.warning("xmpp: not connected to %s:%d; retrying in %.1f s", self.endpoint.host, self.endpoint.port,
                        delay)
            await asyncio.sleep(delay)

    def _on_session_start(self, _: Any) -> None:
        log.info("xmpp: component %s connected to %s:%d", self.endpoint.component, self.endpoint.host,
                 self.endpoint.port)
        self.connected.set()
        self.xmpp_sessions += 1
        self._status()
        self._later(self._probe())

    def _on_ended(self, _: Any) -> None:
        self._ended.set()

    def _send(self, data: str) -> None:
        if self.connected.is_set():
            raw = data.encode()
            self.bytes_out += len(raw)
            self.xmpp.send_raw(raw)

    def send(self, jid: str, body: str, payload: str = "") -> None:
        self.stanzas_out += 1
        self._send(stanzas.message(jid, self.endpoint.component, body, payload))

    # ------------------------------------------------------------ in

    def _later(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)      # a reference, so the task is not collected mid-way
        task.add_done_callback(self._tasks.discard)

    def _presence_turn(self, jid: str) -> int:
        turn = self._turns[jid] = self._turns.get(jid, 0) + 1
        return turn

    def _on_available(self, presence: Presence) -> None:
        # A plain handler, so its turn is taken in the order presences arrive (slixmpp runs a
        # coroutine handler later, after the plain handlers of the presences that follow it).
        self.stanzas_in += 1
        jid = presence["from"].bare
        self._later(self._available(jid, self._presence_turn(jid)))

    async def _available(self, jid: str, turn: int) -> None:
        try:
            view = self.view
            if view is not None:
                await self.players.lookup(jid, _as_view(view))    # the first time, a wait on the database
            if self._turns.get(jid) == turn:            # no later presence of this JID came meanwhile
                await self._join(jid, None)
        except Exception:   # a bad stanza, or the database away: log it, never stop the component
            log.exception("xmpp: presence from %s", jid)

    def _on_unavailable(self, presence: Presence) -> None:
        self.stanzas_in += 1
        jid = presence["from"].bare
        self._presence_turn(jid)
        entity = self._entity.get(jid)
        if entity is not None and self.view is not None:
            self._joined.discard(entity)
            self.fanout.leave(entity)
            self.presence.want(entity, False, self.view)

    def _send_presence(self, entity: int, online: bool) -> int | None:
        jid = self._jid.get(entity)
        if jid is None:
            return None
        return self._submit(entity, self._join_request(jid, entity, None) if online else Request("leave", {}))

    def _on_subscribe(self, presence: Presence) -> None:
        # A chat client adds the world to its roster: accept, and ask for the player's presence in
        # return, so that its plain available and unavailable (not only directed ones) reach us.
        jid = presence["from"].bare
        self.xmpp.send_presence(pto=jid, pfrom=self.endpoint.component, ptype="subscribed")
        self.xmpp.send_presence(pto=jid, pfrom=self.endpoint.component, ptype="subscribe")
        self.xmpp.send_presence(pto=jid, pfrom=self.endpoint.component)

    async def _probe(self) -> None:
        """On (re)connecting: ask every known player's presence (their servers answer for those who
        let us subscribe); after PROBE_GRACE, whoever the world has online and did not answer
        available is taken offline: after a restart nobody stays in the world without a presence."""
        try:
            accounts = await self.players.accounts.accounts()
        except Exception:
            log.exception("xmpp: cannot read the accounts to probe")
            return
        if self.players_domain is not None:
            accounts = {jid: e for jid, e in accounts.items() if jid.rpartition("@")[2] == self.players_domain}
        for jid, entity in accounts.items():
            self.players.know(jid, entity)
            self.xmpp.send_presence(pto=jid, pfrom=self.endpoint.component, ptype="probe")
        await asyncio.sleep(PROBE_GRACE)
        view = self.view
        if view is None:
            return
        for entity in accounts.values():
            if view.online(entity) and entity not in self._joined:
                self.presence.want(entity, False, view)

    def _on_message(self, xml: ET.Element) -> None:
        if xml.get("type", "normal") not in ("chat", "normal"):
            return      # errors and groupchat: answering them could loop
        self.stanzas_in += 1
        sender = xml.get("from", "")
        jid = sender.partition("/")[0]     # the XMPP server stamps `from`: a full JID, normalised
        elements = xml.findall(_COMMAND)
        element = elements[0] if elements else None
        parsed: Parsed
        try:
            if len(elements) > 1:
                parsed = ParseError(f"one command per message; this one has {len(elements)}")
            elif element is not None:
                parsed = parse_payload(element)
            else:
                body = xml.find(_BODY)
                if body is None:
                    return      # chat states, receipts: nothing to answer
                parsed = parse_text(body.text or "")
        except Exception:
            log.exception("xmpp: message from %s", sender)
            self.send(jid, "refused: the server could not handle that message")
            return
        payload = element is not None
        entity = self._entity.get(jid)
        if entity is not None and entity in self._joined:
            self._handle(jid, entity, parsed, payload)      # the common case: no task, no await
        else:
            self._later(self._handle_joining(jid, parsed, payload))

    async def _handle_joining(self, jid: str, parsed: Any, payload: bool) -> None:
        if not payload:
            # A person who just wrote to the world: ask to see their presence, so going offline leaves
            # it (their client asks them once; a server whose user already agreed answers by itself).
            self.xmpp.send_presence(pto=jid, pfrom=self.endpoint.component, ptype="subscribe")
        try:
            joining = isinstance(parsed, Request) and parsed.op == "join"
            entity = await self._join(jid, parsed if joining else None)
            if entity is not None and not joining:
                self._handle(jid, entity, parsed, payload)
        except Exception:
            log.exception("xmpp: message from %s", jid)
            self.send(jid, "refused: the server could not handle that message")

    def _handle(self, jid: str, entity: int, parsed: Any, payload: bool) -> None:
        recipient = self.fanout.players.get(entity)
        if recipient is not None and recipient.human == payload:
            # What the player last sent says what it reads: a program sending payloads reads
            # payloads, at the rate bots get (unless it chose one); a person reads the body.
            recipient.human = not payload
            if not recipient.chosen:
                setting = UpdatesSetting("hz", self.bot_hz) if payload else UpdatesSetting("digest")
                recipient.every, _ = cadence(setting, self.world.hz)
        if isinstance(parsed, (LocalQuery, UpdatesSetting)) and not self._questions.take_one(entity, time.monotonic()):
            self.send(jid, *stanzas.refused(f"rate limited: at most {QUESTION_BURST} questions at once, "
                                            f"{QUESTION_RATE:g} a second", None))
        elif isinstance(parsed, LocalQuery):
            self.send(jid, HELP if parsed.what == "help" else self._look(entity))
        elif isinstance(parsed, UpdatesSetting):
            every, said = cadence(parsed, self.world.hz)
            if recipient is not None:
                recipient.every, recipient.chosen = every, True
            self.send(jid, said)
        elif isinstance(parsed, ParseError):
            self.world.unreadable(entity, parsed.reason)
        elif parsed.op == "join":     # asked for: answered like any command (already_online, if so)
            self._submit(entity, self._join_request(jid, entity, parsed))
        else:
            self._submit(entity, parsed)

    async def _join(self, jid: str, request: Request | None) -> int | None:
        """The JID's entity, joining the world first unless this gateway has joined it (or
        `request`, a join the player sent, asks again); None when the world is not reachable."""
        view = self.view
        if view is None:
            self.send(jid, *stanzas.refused(NOT_LINKED, None))
            return None
        entity = await self.players.lookup(jid, _as_view(view))
        if entity in self._joined and request is None:
            return entity
        self._joined.add(entity)
        self.fanout.join(entity, jid, cadence(UpdatesSetting("digest"), self.world.hz)[0], self.world.hz)
        if request is None:
            self.presence.want(entity, True, view)
        else:
            self._submit(entity, self._join_request(jid, entity, request))
        return entity

    def _join_request(self, jid: str, entity: int, request: Request | None) -> Request:
        """A join with every field: the player's saved zone (else the first) and its JID's name, unless it gave them."""
        fields = dict(request.fields) if request is not None else {}
        if "zone" not in fields:
            record = self.view.get(entity) if self.view is not None else None
            fields["zone"] = unpack_entity(record)["zone"] if record else \
                unpack_zone(self.view.zones[:ZONE_SIZE])["id"] if self.view is not None else 1
        if "name" not in fields:
            fields["name"] = jid.split("@")[0].encode()[:NAME_BYTES].decode(errors="ignore") or "player"
        return Request("join", fields, seq=request.seq if request else None, player=request.player if request else None)

    def _submit(self, entity: int, request: Request) -> int | None:
        """Send the command to the world; its seq, or None when it was not well typed (refused at once)."""
        last = self._seq.get(entity, 0)
        if self.view is not None:
            last = max(last, self.view.last_seq(entity) or 0)
        seq = request.seq if request.seq is not None else last + 1
        if request.player in (None, entity) and 0 < seq <= seq_ceiling(last, wall_microseconds()):
            self._seq[entity] = max(last, seq)      # what negotiate refuses moves nothing
        command = make_command(request, entity, seq)
        try:
            check_command((), command)
        except Bad as bad:
            where = path_str(bad.path)
            self.world.unreadable(entity, f"{where + ': ' if where else ''}{bad.message}")
            return None
        self.world.submit(command, entity)
        return seq

    def _look(self, entity: int) -> str:
        """The player and its area of interest (its 31 nearest): at most 32 records, whatever the world."""
        view = self.view
        record = view.get(entity) if view is not None else None
        if view is None or record is None:
            return look_text(None, [])
        near = [r for r in map(view.get, self.fanout.areas.get(entity, ())) if r is not None]
        return look_text(unpack_entity(record), sorted(map(unpack_entity, near), key=lambda e: e["id"]))

    # ------------------------------------------------------------ from the world (link.client.Listener)

    def on_world(self, view: Lookup) -> None:
        self.fanout.reset()

    def on_tick(self, view: Lookup, result: TickResult, batch: Batch) -> None:
        self.presence.on_tick(view, batch)
        if log.isEnabledFor(logging.INFO):
            for entity, online in sessions(result, batch):
                log.info("%s (player %d) %s the world", self._jid.get(entity, "a player"), entity,
                         "joined" if online else "left")
        # Two writes: the acks and whatever else concerns its player go before the rest is rendered.
        first, rest = self.fanout.deliver(view, result, batch, self.presence.sent)
        for messages in (first, list(rest)):
            if messages:
                self.stanzas_out += len(messages)
                self._send("".join(messages))

    def on_refused(self, sender: int, reason: str, command: dict[str, Any] | None) -> None:
        """Refusals are answered one message a player for all that arrive together (a flood's
        hundreds in one tick cost Prosody one stanza, not hundreds)."""
        if self.presence.on_refused(sender, command.get("seq") if isinstance(command, dict) else None):
            return      # presence's own join or leave: sent again after the next tick
        jid = self._jid.get(sender)
        if jid is None:
            return
        if not self._refusals:
            asyncio.get_running_loop().call_soon(self._send_refusals)
        self._refusals.setdefault(jid, []).append(stanzas.refused(reason, command))

    def _send_refusals(self) -> None:
        refusals, self._refusals = self._refusals, {}
        for jid, answers in refusals.items():
            self.send(jid, "\n".join(body for body, _ in answers), "".join(payload for _, payload in answers))


def _as_view(view: Lookup) -> WorldView:
    """Players reads only `get` and `next_id`, which a merged view of shards has too."""
    return cast(WorldView, view)
