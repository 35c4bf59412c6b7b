"""The world as an XEP-0114 component: the server's only module that imports slixmpp.

In: presence available from a player's JID joins its entity (an unknown
JID gets an account allocated: whoever the XMPP server lets log in may
play); unavailable leaves. Chat messages are parsed (protocol.py) into
Incoming commands for the runner's Inbox, with the sender's entity as
sender and the bare JID as reply_to; text commands get seq = the player's
last + 1, tracked here. Out (pipeline.ports.Outbox): refusals at once,
then after each commit ONE message per player with its rejections, chat,
area-of-interest changes and `acked`, its highest seq the tick committed.
The connection is supervised: if it drops, reconnect with exponential
backoff while the tick loop runs on.
"""

from __future__ import annotations

import asyncio
import logging
import time
import xml.etree.ElementTree as ET
from typing import Any, Protocol, cast

from slixmpp import ComponentXMPP
from slixmpp.stanza import Message, Presence
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from schema._generated.layout import Kind

from ..batches import batch_commands_json
from ..context import TickContext
from ..effects import effects_json
from ..records import unpack_entity, unpack_zone
from ..runner import Inbox
from ..types import Incoming, Unreadable
from ..view import WorldView
from . import Endpoint
from .protocol import (
    COMMAND_NS,
    HELP,
    LocalQuery,
    PlayerReport,
    Request,
    look_text,
    make_command,
    parse_payload,
    parse_text,
    refusal,
)

log = logging.getLogger(__name__)

BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0     # seconds between reconnection attempts
ID_GAP = 100        # new accounts start this far above next_id: ids the world may create meanwhile
NEAR = 10           # the area of interest's distance, for `look`
NAME_BYTES = 32
DROPPED = "dropped: the server is overloaded, try again"


class Accounts(Protocol):
    async def account(self, jid: str) -> int | None: ...
    async def allocate_account(self, jid: str, at_least: int) -> int: ...


class XmppGateway:
    def __init__(self, endpoint: Endpoint, inbox: Inbox, accounts: Accounts, view: WorldView) -> None:
        self.endpoint, self.inbox, self.accounts, self.view = endpoint, inbox, accounts, view
        self.connected = asyncio.Event()
        self._stopping = False
        self._ended = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._entity: dict[str, int] = {}          # bare JID -> entity, once looked up
        self._jid: dict[int, str] = {}             # entity -> bare JID of joined players
        self._seq: dict[int, int] = {}             # entity -> last seq handed out or seen
        self._ops: dict[tuple[int, int], str] = {}  # (entity, seq) -> op, until its tick is delivered
        self._implicit: set[tuple[int, int]] = set()  # joins and leaves presence made
        self.xmpp = ComponentXMPP(endpoint.component, endpoint.secret)  # type: ignore[no-untyped-call]
        self.xmpp.add_event_handler("session_start", self._on_session_start)
        self.xmpp.add_event_handler("disconnected", self._on_ended)
        self.xmpp.add_event_handler("connection_failed", self._on_ended)
        self.xmpp.add_event_handler("presence_available", self._on_available)
        self.xmpp.add_event_handler("presence_unavailable", self._on_unavailable)
        self.xmpp.add_event_handler("presence_subscribe", self._on_subscribe)
        self.xmpp.add_event_handler("message", self._on_message)
        # slixmpp's "message" event only fires for messages with a body; payloads need their own handler.
        self.xmpp.register_handler(Callback(
            "fluxworld command", MatchXPath(f"{{{self.xmpp.default_ns}}}message/{{{COMMAND_NS}}}command"),
            lambda msg: self._tasks_add(asyncio.ensure_future(self._on_message(cast(Message, msg), payload=True)))))
        self._tasks: set[asyncio.Future[None]] = set()

    # ------------------------------------------------------------ connection

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise())

    async def stop(self) -> None:
        self._stopping = True
        self._ended.set()
        if self.connected.is_set():
            await self.xmpp.disconnect(wait=1.0)
        self.xmpp.cancel_connection_attempt()
        if self._task is not None:
            await self._task

    async def _supervise(self) -> None:
        delay = BACKOFF_FIRST
        while not self._stopping:
            self._ended.clear()
            self.xmpp.connect(self.endpoint.host, self.endpoint.port)
            await self._ended.wait()
            self.xmpp.cancel_connection_attempt()   # we pace retries, not slixmpp (1, 3, 7 ... s)
            if self._stopping:
                break
            log.warning("xmpp: not connected to %s:%d; retrying in %.1f s", self.endpoint.host, self.endpoint.port,
                        delay)
            await asyncio.sleep(delay)
            delay = BACKOFF_FIRST if self.connected.is_set() else min(delay * 2, BACKOFF_MAX)
            self.connected.clear()

    def _on_session_start(self, _: Any) -> None:
        log.info("xmpp: component %s connected to %s:%d", self.endpoint.component, self.endpoint.host,
                 self.endpoint.port)
        self.connected.set()

    def _on_ended(self, _: Any) -> None:
        self._ended.set()

    # ------------------------------------------------------------ in

    async def _on_available(self, presence: Presence) -> None:
        try:
            await self._join(presence["from"].bare, None)
        except Exception:   # a bad stanza, or the database away: log it, never stop the component
            log.exception("xmpp: presence from %s", presence["from"])

    async def _on_unavailable(self, presence: Presence) -> None:
        jid = presence["from"].bare
        entity = self._entity.get(jid)
        if entity is not None and self._jid.pop(entity, None) is not None:
            self._submit(jid, entity, Request("leave", {}), implicit=True)

    def _on_subscribe(self, presence: Presence) -> None:
        # Chat clients ask to add the world to their roster: accept, so their presence reaches us.
        self.xmpp.send_presence(pto=presence["from"].bare, pfrom=self.endpoint.component, ptype="subscribed")
        self.xmpp.send_presence(pto=presence["from"].bare, pfrom=self.endpoint.component)

    def _tasks_add(self, task: asyncio.Future[None]) -> None:
        self._tasks.add(task)      # a reference, so the task is not collected mid-way
        task.add_done_callback(self._tasks.discard)

    async def _on_message(self, msg: Message, payload: bool = False) -> None:
        if msg["type"] not in ("chat", "normal"):
            return      # errors and groupchat: answering them could loop
        element = msg.xml.find(f"{{{COMMAND_NS}}}command")
        if (element is not None) != payload:
            return      # a payload with a body: the payload handler takes it, once
        jid = msg["from"].bare
        try:
            parsed = parse_payload(element) if element is not None else parse_text(msg["body"])
            if isinstance(parsed, LocalQuery):
                self.send(jid, HELP if parsed.what == "help" else self._look(jid))
                return
            join_zone = parsed.fields.get("zone") if isinstance(parsed, Request) and parsed.op == "join" else None
            entity = await self._join(jid, join_zone)
            if isinstance(parsed, Request) and parsed.op != "join":
                self._submit(jid, entity, parsed)
            elif not isinstance(parsed, Request):
                self.inbox.put(Incoming(Unreadable(parsed.reason), entity, time.monotonic(), jid))
        except Exception:
            log.exception("xmpp: message from %s", msg["from"])
            self.send(jid, "refused: the server could not handle that message")

    async def _join(self, jid: str, zone: int | None) -> int:
        """The JID's entity, joining the world first unless it has."""
        entity = await self._lookup(jid)
        if entity in self._jid:
            return entity
        self._jid[entity] = jid
        record = self.view.get(entity)
        if zone is None:
            zone = unpack_entity(record)["zone"] if record else unpack_zone(self.view.zones[:12])["id"]
        name = jid.split("@")[0].encode()[:NAME_BYTES].decode(errors="ignore") or "player"
        self._submit(jid, entity, Request("join", {"zone": zone, "name": name}), implicit=True)
        return entity

    async def _lookup(self, jid: str) -> int:
        entity = self._entity.get(jid) or await self.accounts.account(jid)
        record = self.view.get(entity) if entity else None
        if entity is None or (record is not None and record[80] != Kind.player):
            # No account, or its id was taken by something the world made before
            # the player ever joined: a fresh id, above anything the world has used.
            entity = await self.accounts.allocate_account(jid, self.view.next_id + ID_GAP)
        self._entity[jid] = entity
        return entity

    def _submit(self, jid: str, entity: int, request: Request, *, implicit: bool = False) -> None:
        last = max(self._seq.get(entity, 0), self.view.last_seq(entity) or 0)
        seq = request.seq if request.seq is not None else last + 1
        if request.player in (None, entity):
            self._seq[entity] = max(last, seq)
            self._ops[(entity, seq)] = request.op
            if implicit:
                self._implicit.add((entity, seq))
        command = make_command(request, entity, seq)
        log.debug("xmpp: %s sends %s", jid, command)
        if not self.inbox.put(Incoming(command, entity, time.monotonic(), jid)):
            # A full inbox sheds the command: answered now, so no later ack seems to cover it.
            self._ops.pop((entity, seq), None)
            self._implicit.discard((entity, seq))
            self.send(jid, *refusal(DROPPED, command))

    def _look(self, jid: str) -> str:
        entity = self._entity.get(jid)
        record = self.view.get(entity) if entity in self._jid else None
        if record is None:
            return look_text(None, [])
        me = unpack_entity(record)
        near = [e for e in map(unpack_entity, self.view.records())    # O(world): a rare query
                if e["zone"] == me["zone"] and max(abs(e["x"] - me["x"]), abs(e["y"] - me["y"])) <= NEAR
                and (e["kind"] != Kind.player or e["online"])]
        return look_text(me, sorted(near, key=lambda e: e["id"]))

    # ------------------------------------------------------------ out (pipeline.ports.Outbox)

    def send(self, jid: str, body: str, payload: ET.Element | None = None) -> None:
        msg = self.xmpp.make_message(mto=jid, mfrom=self.endpoint.component, mbody=body, mtype="chat")
        if payload is not None:
            msg.xml.append(payload)
        msg.send()

    async def refuse(self, ctx: TickContext) -> None:
        for r in ctx.refusals:
            if isinstance(r.incoming.reply_to, str):
                command = r.incoming.command
                if isinstance(command, dict) and r.incoming.sender is not None:
                    self._ops.pop((r.incoming.sender, command.get("seq", 0)), None)
                self.send(r.incoming.reply_to, *refusal(r.reason, command))

    async def deliver(self, ctx: TickContext) -> None:
        assert ctx.result is not None and ctx.next_view is not None
        self.view = view = ctx.next_view
        reports: dict[int, PlayerReport] = {}

        def report(player: int) -> PlayerReport:
            return reports.setdefault(player, PlayerReport(ctx.tick))

        for e in effects_json(ctx.result, ctx.batch.text):
            kind = e["type"]
            if kind == "rejected":
                key = (e["player"], e["seq"])
                op = self._ops.pop(key, "command")
                if key in self._implicit and e["reason"] in ("already_online", "offline"):
                    continue    # presence said what the world already knew
                report(e["player"]).rejected.append((e["seq"], op, e["reason"]))
            elif kind == "chat":
                speaker = view.get(e["from"])
                name = unpack_entity(speaker)["name"] if speaker else ""
                for player in e["recipients"]:
                    report(player).chat.append((e["from"], name, e["text"]))
            elif kind in ("enter", "update"):
                record = view.get(e["entity"])
                if record is not None:
                    report(e["observer"]).seen.append(unpack_entity(record))
                    if kind == "enter":
                        report(e["observer"]).entered.add(e["entity"])
            elif kind == "leave":
                report(e["observer"]).left.append(e["entity"])
        for c in batch_commands_json(ctx.batch):
            self._ops.pop((c["player"], c["seq"]), None)
            self._implicit.discard((c["player"], c["seq"]))
            # Every player with a command in the tick hears of it, even when nothing changed:
            # acked lets a client (or a load test) tell when its commands took effect.
            news = report(c["player"])
            news.acked = max(news.acked or 0, c["seq"])
        for player, news in reports.items():
            jid = self._jid.get(player)
            if jid is not None:
                self.send(jid, *news.render())

