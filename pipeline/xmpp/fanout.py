"""What each player is owed, gathered between its sends: coalesced, then one stanza.

A player chooses how often it hears news from the world (`every` N ticks:
bots 10 a second by default, people a digest every DIGEST_SECONDS; see
`cadence`), and whatever concerns it goes the tick it happens, with the
news gathered so far: a rejection, chat, its own command taking effect
(so an acknowledgement never waits for the period), being killed, and
being hurt, at most once every CALM_SECONDS (a rat bites every other tick:
a message a bite would be ten a second).
In between, its news accumulates here and coalesces: an entity that changed
three times is sent once, as it stands when the message goes; one that
came into sight and went again is not sent at all; chat and rejections are
events and all of them are kept, in order. `acked` is the player's highest
seq committed since its last message.

Per tick the work is numpy over the tick's effects (which of them concern
this gateway's players) and then Python per effect that does; rendering
is per message sent, with each entity rendered once per tick (stanzas.py).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from schema._generated.layout import COMMAND_DTYPE, ENTITY_DTYPE, EffectKind, Op, Reason
from vocabulary.records import unpack_entity
from vocabulary.types import Batch, TickResult

from ..effects import effect_array
from ..link.merged import Lookup
from . import stanzas
from .protocol import UpdatesSetting

_ENTER, _UPDATE, _LEAVE = EffectKind.enter.value, EffectKind.update.value, EffectKind.leave.value
_REASONS = {r.value: r.name for r in Reason}
DIGEST_SECONDS = 5.0
NEVER = 1 << 62         # `every` for a player who wants no periodic news at all
CALM_SECONDS = 1.0      # at least this between messages sent only because the player was hurt
_HP, _HP_AT = struct.Struct("<i"), int(dict(ENTITY_DTYPE.fields or {})["hp"][1])    # a record's hp, where
_OPS = {o.value: o.name for o in Op}


@dataclass
class News:
    acked: int | None = None
    rejected: list[tuple[int, str, str]] = field(default_factory=list)     # (seq, op, reason)
    chat: list[tuple[int, str, str]] = field(default_factory=list)         # (from, name, text)
    seen: dict[int, bool] = field(default_factory=dict)                    # entity -> entered since the last send
    left: dict[int, None] = field(default_factory=dict)                    # an ordered set


@dataclass
class Recipient:
    """A joined player as the gateway serves it."""

    jid: str
    every: int = 1                  # at most one message every `every` ticks
    chosen: bool = False            # the player set `every` itself
    human: bool = True              # a body with a human line (a program sending payloads reads the payload)
    calm: int = 1                   # ticks in CALM_SECONDS
    hp: int | None = None           # its own hp when last looked at (a drop concerns it)
    last_sent: int = -(1 << 62)


def cadence(setting: UpdatesSetting, hz: float) -> tuple[int, str]:
    """(every, what to tell the player) for an `updates` setting, the world ticking `hz` a second."""
    if setting.mode == "live":
        return 1, f"updates: live, every tick ({hz:g} a second)"
    if setting.mode == "digest":
        return max(1, round(DIGEST_SECONDS * hz)), \
            f"updates: digest, a summary every {DIGEST_SECONDS:g} s; what happens to you at once"
    if setting.mode == "off":
        return NEVER, "updates: off; only what happens to you"
    every = max(1, math.ceil(hz / (setting.hz or hz) - 1e-9))
    return every, f"updates: every {every} tick{'s' if every > 1 else ''} ({hz / every:g} a second); " \
        "what happens to you at once"


class Fanout:
    def __init__(self, component: str) -> None:
        self.component = component
        self.players: dict[int, Recipient] = {}
        self.areas: dict[int, set[int]] = {}    # player -> its area of interest, as its sightings say (for `look`)
        self.entities = stanzas.EntityText()
        self._news: dict[int, News] = {}
        self._ids: np.ndarray | None = None
        self.sent = 0               # stanzas rendered, for the gateway's counters

    def join(self, player: int, jid: str, every: int, hz: float) -> None:
        if player not in self.players:
            self.players[player] = Recipient(jid, every, calm=max(1, round(CALM_SECONDS * hz)))
            self.areas[player] = set()
            self._ids = None

    def leave(self, player: int) -> None:
        if self.players.pop(player, None) is not None:
            self._news.pop(player, None)
            self.areas.pop(player, None)
            self._ids = None

    def news(self, player: int) -> News:
        news = self._news.get(player)
        if news is None:
            news = self._news[player] = News()
        return news

    def reset(self) -> None:
        """A fresh snapshot of the world: nothing rendered before is known to hold."""
        self.entities.clear()

    def on_tick(self, view: Lookup, result: TickResult, batch: Batch,
                implicit: dict[int, int]) -> Iterator[str]:
        """Gather the tick's news for this gateway's players; yield the messages now due.
        `implicit` maps a player to the seq of its last join or leave that presence made."""
        first, rest = self.deliver(view, result, batch, implicit)
        yield from first
        yield from rest

    def deliver(self, view: Lookup, result: TickResult, batch: Batch,
                implicit: dict[int, int]) -> tuple[list[str], Iterator[str]]:
        """on_tick's messages in two parts: those that carry what concerns their player (an ack, a
        rejection, chat, a hurt), rendered, and, to render after them, those due for the period
        only. Acks are what players wait on: the gateway writes them before rendering the rest."""
        self.entities.forget(np.frombuffer(result.changed, dtype=ENTITY_DTYPE)["id"].tolist())
        self.entities.forget(np.frombuffer(result.removed, dtype="<u8").tolist())
        if self.players:
            self._gather(view, result, batch, implicit)
        urgent, periodic = self._due(view, result.tick)
        return [self._send(view, result.tick, p) for p in urgent], \
            (self._send(view, result.tick, p) for p in periodic)

    def _gather(self, view: Lookup, result: TickResult, batch: Batch, implicit: dict[int, int]) -> None:
        if self._ids is None:
            self._ids = np.fromiter(self.players, dtype=np.uint64, count=len(self.players))
        effects = effect_array(result)
        ours = np.isin(effects["subject"], self._ids)
        kinds = effects["kind"]
        sightings = effects[ours & (kinds >= _ENTER)]
        news, areas = self.news, self.areas
        last, n, area = -1, News(), set()
        for observer, entity, kind in zip(sightings["subject"].tolist(), sightings["object"].tolist(),
                                          sightings["kind"].tolist()):
            if observer != last:    # an observer's sightings come together: one lookup for them all
                last, n, area = observer, news(observer), areas[observer]
            if kind == _LEAVE:
                area.discard(entity)
                if not n.seen.pop(entity, False):
                    n.left[entity] = None
            else:
                area.add(entity)
                n.left.pop(entity, None)
                if kind == _ENTER:
                    n.seen[entity] = True
                else:
                    n.seen.setdefault(entity, False)
        rejections = effects[ours & (kinds == EffectKind.rejected)]
        commands = np.frombuffer(batch.commands, dtype=COMMAND_DTYPE)
        if len(rejections):
            ops = dict(zip(zip(commands["player"].tolist(), commands["seq"].tolist()), commands["op"].tolist()))
            for player, seq, reason in zip(rejections["subject"].tolist(), rejections["object"].tolist(),
                                           rejections["reason"].tolist()):
                name = _REASONS[reason]
                if implicit.get(player) == seq and name in ("already_online", "offline"):
                    continue    # presence said what the world already knew
                news(player).rejected.append((seq, _OPS.get(ops.get((player, seq), -1), "command"), name))
        recipients = np.frombuffer(result.recipients, dtype="<u8")
        for chat in effects[kinds == EffectKind.chat].tolist():
            speaker, _, text_offset, text_len, list_offset, list_count = chat[:6]
            heard = [p for p in recipients[list_offset:list_offset + list_count].tolist() if p in self.players]
            if heard:
                record = view.get(speaker)
                name = unpack_entity(record)["name"] if record else ""
                said = batch.text[text_offset:text_offset + text_len].decode()
                for player in heard:
                    news(player).chat.append((speaker, name, said))
        mine = np.isin(commands["player"], self._ids)
        for player, seq in zip(commands["player"][mine].tolist(), commands["seq"][mine].tolist()):
            n = news(player)
            if n.acked is None or seq > n.acked:
                n.acked = seq

    def _due(self, view: Lookup, tick: int) -> tuple[list[int], list[int]]:
        """(players owed a message for what concerns them, players owed one for the period only)."""
        players = self.players
        urgent, periodic = [], []
        for p, n in self._news.items():
            if n.acked is not None or n.rejected or n.chat:
                urgent.append(p)
            elif tick - players[p].last_sent >= players[p].every:
                periodic.append(p)      # sent anyway: no need to look at its hp
            elif self._hurt(view, tick, p, players[p], n):
                urgent.append(p)
        return urgent, periodic

    def _send(self, view: Lookup, tick: int, player: int) -> str:
        news = self._news.pop(player)
        recipient = self.players[player]
        recipient.last_sent = tick
        self.sent += 1
        return self.render(view, tick, recipient, news)

    @staticmethod
    def _hurt(view: Lookup, tick: int, player: int, recipient: Recipient, news: News) -> bool:
        """Whether the player was killed, or hurt and last heard from at least `calm` ticks ago, since
        its hp was last looked at (regeneration is not news)."""
        if player not in news.seen:
            return False
        record = view.get(player)
        hp = _HP.unpack_from(record, _HP_AT)[0] if record is not None else None
        hurt = hp is not None and recipient.hp is not None and hp < recipient.hp
        recipient.hp = hp
        return hurt and (hp == 0 or tick - recipient.last_sent >= recipient.calm)

    def render(self, view: Lookup, tick: int, recipient: Recipient, news: News) -> str:
        seen, left = [], list(news.left)
        # A traveller is shown where it will arrive: its record in flight stands there already.
        get, line, described = view.find, self.entities.line, self.entities.description
        human = recipient.human
        for entity, entered in news.seen.items():
            record = get(entity)
            if record is None:
                left.append(entity)     # gone from the world since (an item picked up)
            else:
                seen.append((entity, entered, line(entity, record), described(entity, record) if human else ""))
        body, payload = stanzas.update(tick, news.acked, news.rejected, news.chat, seen, left, recipient.human)
        return stanzas.message(recipient.jid, self.component, body, payload)
