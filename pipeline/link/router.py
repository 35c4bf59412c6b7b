"""A gateway's side of a sharded world: one link per shard, one world to the gateway.

A world split into zone groups (docs/scale-out.md) is ticked by one shard
process per group, each with a link socket of its own. `ShardRouter` holds a
WorldClient per shard and shows the gateway what one WorldClient shows it:
a view (`MergedView`, pipeline/link/merged.py), `linked`, `submit`, `unreadable`, `status`, and the
listener's calls. Players keep one address; the gateway never knows shards.

Routing. A command goes to the shard that holds its player: the shard whose
world has it, or, while it travels, the shard owning the zone its record in
flight names. A join of a player no shard has goes by its `zone`. A shard
refuses as `elsewhere` (pipeline/server/shard.py) every command whose player
it does not hold when its tick starts; such a command is sent again (at most
MAX_RETRIES times) to the shard the merged view then names, once that view
has moved on (a tick frame of the shard that refused it, unless the view
already names another); after that the player is told, never left waiting.

Order. A player's commands reach the world in the order sent: while one
sent to shard A is unanswered (neither in one of A's ticks nor refused), the
player's commands for another shard wait behind it, and a command sent again
goes back in its seq's place among those waiting.

Travel. A player who travels at tick T leaves A's world at T (in A's
transit, its record already in the destination zone) and appears in B's at
T+1. Frames of the two links arrive independently, so the router keeps each
traveller's record in flight (`handover`) until the destination's frame for
its arrival tick came: in between, the merged view finds the player (online,
with its last seq), and its commands go to B. Each shard's tick is handed to
the gateway as it comes, with the merged view: A's updates reach the player
until it leaves, B's once it arrives.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from schema._generated.layout import COMMAND_DTYPE, ENTITY_DTYPE, TRANSIT_DTYPE, TransitKind
from vocabulary.types import Batch, TickResult

from ..view import WorldView
from .client import NOT_LINKED, WorldClient
from .merged import Flight, Lookup, MergedView

log = logging.getLogger(__name__)

ELSEWHERE = "elsewhere"         # pipeline/server/shard.py ELSEWHERE: the shard does not hold the player
MAX_RETRIES = 3                 # times a command refused as elsewhere is sent again
ANSWER_SECONDS = 1.0            # a command unanswered this long no longer holds its player's next ones back
PARK_SECONDS = 3.0              # a command waiting for its shard longer than this is refused
MISROUTED = "dropped: the world's servers could not agree where you are, try again"
NOWHERE = "dropped: you are in no zone of the world; join first"

_U64, _U32 = struct.Struct("<Q"), struct.Struct("<I")
_ZONE = int(dict(ENTITY_DTYPE.fields or {})["zone"][1])


class Listener(Protocol):
    def on_world(self, view: Lookup) -> None: ...
    def on_tick(self, view: Lookup, result: TickResult, batch: Batch) -> None: ...
    def on_refused(self, sender: int, reason: str, command: dict[str, Any] | None) -> None: ...


class World(Protocol):
    """What the gateway uses of the world: a WorldClient (one world server) or a ShardRouter."""

    @property
    def view(self) -> Lookup | None: ...
    @property
    def hz(self) -> float: ...
    @property
    def linked(self) -> asyncio.Event: ...
    def start(self) -> None: ...
    async def stop(self) -> None: ...
    def submit(self, command: dict[str, Any], sender: int) -> None: ...
    def unreadable(self, sender: int, reason: str) -> None: ...
    def status(self, serving: bool, stanzas_in: int, stanzas_out: int, bytes_out: int, xmpp_sessions: int) -> None: ...


@dataclass(frozen=True)
class ShardLink:
    """A shard's zones and its link socket (`fluxworld gateway --world 1,2=PATH`)."""

    zones: frozenset[int]
    path: Path


def parse_world(value: str) -> ShardLink | Path:
    """`ZONES=PATH` (a shard: zone ids separated by commas) or a plain PATH (one world server)."""
    left, sep, right = value.partition("=")
    parts = left.split(",")
    if sep and right and all(p.strip().isdigit() for p in parts):
        return ShardLink(frozenset(int(p) for p in parts), Path(right))
    return Path(value)


@dataclass
class _Pending:
    """A command on its way: waiting for its shard, or sent again after an `elsewhere`."""

    command: dict[str, Any]
    sender: int
    since: float
    attempts: int = 0               # elsewhere refusals so far
    refused_by: int | None = None   # the shard that refused it last, and its view's tick then
    refused_tick: int = -1

    @property
    def seq(self) -> int:
        seq = self.command.get("seq")
        return seq if isinstance(seq, int) else 0


@dataclass
class _Sent:
    """A player's last command sent, until its shard answers (a tick carries it, or a refusal)."""

    shard: int
    seq: int
    until: float


class _ShardListener:
    """One shard's WorldClient calls the router, naming the shard."""

    def __init__(self, router: ShardRouter, shard: int) -> None:
        self.router, self.shard = router, shard

    def on_world(self, view: WorldView) -> None:
        self.router._on_world(self.shard, view)

    def on_tick(self, view: WorldView, result: TickResult, batch: Batch) -> None:
        self.router._on_tick(self.shard, view, result, batch)

    def on_refused(self, sender: int, reason: str, command: dict[str, Any] | None) -> None:
        self.router._on_refused(self.shard, sender, reason, command)


class ShardRouter:
    def __init__(self, shards: Sequence[ShardLink], listener: Listener, hello: str) -> None:
        if not shards:
            raise ValueError("a sharded world has at least one shard")
        self.shards = list(shards)
        self.zone_owner: dict[int, int] = {}
        for i, shard in enumerate(self.shards):
            for zone in shard.zones:
                if zone in self.zone_owner:
                    raise ValueError(f"zone {zone} is named by two shards' links")
                self.zone_owner[zone] = i
        self.listener = listener
        self.clients = [WorldClient(s.path, _ShardListener(self, i), hello) for i, s in enumerate(self.shards)]
        for client in self.clients:
            client.on_linked = self._link_changed
        self.linked = asyncio.Event()       # every shard's link is up and holds a snapshot
        self.handover: dict[int, Flight] = {}    # travellers in flight, until their destination shows them
        self.merged = MergedView(self)
        self._sent: dict[int, _Sent] = {}
        self._waiting: dict[int, list[_Pending]] = {}      # player -> its commands held back, by seq
        self._retries: dict[tuple[int, int], tuple[int, float]] = {}    # (player, seq) -> (attempts, when)
        self._ours: set[int] = set()        # players whose commands went through this router
        self.resent = self.misrouted = 0    # commands sent again after an elsewhere; refused at last

    # ------------------------------------------------------------ what the gateway sees

    @property
    def view(self) -> MergedView | None:
        """The merged world once every shard has sent its snapshot (before that, a player of a
        shard not heard from would look like nobody, and get a new account)."""
        return self.merged if all(c.view is not None for c in self.clients) else None

    @property
    def hz(self) -> float:
        return self.clients[0].hz

    def start(self) -> None:
        for client in self.clients:
            client.start()

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.clients))

    def status(self, serving: bool, stanzas_in: int, stanzas_out: int, bytes_out: int, xmpp_sessions: int) -> None:
        for client in self.clients:
            client.status(serving, stanzas_in, stanzas_out, bytes_out, xmpp_sessions)

    def unreadable(self, sender: int, reason: str) -> None:
        holder = self.holder(sender)
        self.clients[holder if holder is not None else 0].unreadable(sender, reason)

    # ------------------------------------------------------------ routing

    def holder(self, player: int) -> int | None:
        """The shard that holds `player` (in its world, or arriving there), or None."""
        best, tick = None, -1
        for i, client in enumerate(self.clients):
            view = client.view
            if view is not None and view.tick > tick and view.get(player) is not None:
                best, tick = i, view.tick
        if best is not None:
            return best
        flight = self.handover.get(player)
        if flight is not None:
            return flight.shard
        for client in self.clients:
            record = client.view.find(player) if client.view is not None else None
            if record is not None:
                return self.zone_owner.get(_U32.unpack_from(record, _ZONE)[0])
        return None

    def _target(self, player: int, command: dict[str, Any], now: float) -> int | None:
        holder = self.holder(player)
        if holder is not None:
            return holder
        sent = self._sent.get(player)
        if sent is not None and sent.until > now:
            return sent.shard       # a join on its way there, most likely
        if command.get("op") == "join":
            return self.zone_owner.get(command.get("zone", -1))
        return None

    def submit(self, command: dict[str, Any], sender: int) -> None:
        """Send a well-typed command to the shard holding its player (or hold it back: module doc)."""
        self._route(_Pending(command, sender, time.monotonic()))

    def _route(self, pending: _Pending) -> None:
        player = pending.command["player"]
        waiting = self._waiting.get(player)
        if waiting is not None:
            bisect.insort(waiting, pending, key=lambda p: p.seq)
            self._release(player)
            return
        now = time.monotonic()
        target = self._target(player, pending.command, now)
        if target is None:
            self._give_up(pending, self._nowhere(pending.command))
        elif self._blocked(player, target, now):
            self._waiting[player] = [pending]
        else:
            self._send(target, pending, now)

    def _blocked(self, player: int, target: int, now: float) -> bool:
        sent = self._sent.get(player)
        return sent is not None and sent.shard != target and sent.until > now

    def _send(self, shard: int, pending: _Pending, now: float) -> None:
        player = pending.command["player"]
        self._ours.add(player)
        self._sent[player] = _Sent(shard, pending.seq, now + ANSWER_SECONDS)
        self.clients[shard].submit(pending.command, pending.sender)

    def _release(self, player: int) -> None:
        """Send what waits for `player`, in seq order, as far as its shard is known and free."""
        waiting = self._waiting.get(player)
        now = time.monotonic()
        while waiting:
            pending = waiting[0]
            if now - pending.since > PARK_SECONDS:
                waiting.pop(0)
                self._give_up(pending, MISROUTED if pending.attempts else NOT_LINKED)
                continue
            target = self._target(player, pending.command, now)
            if target is None:
                waiting.pop(0)
                self._give_up(pending, self._nowhere(pending.command))
                continue
            if self._blocked(player, target, now):
                return
            if pending.refused_by == target:
                view = self.clients[target].view
                if view is None or view.tick <= pending.refused_tick:
                    return      # the view still names the shard that refused it: wait for its next frame
            waiting.pop(0)
            if pending.attempts:
                self.resent += 1
            self._send(target, pending, now)
        self._waiting.pop(player, None)

    def _nowhere(self, command: dict[str, Any]) -> str:
        if command.get("op") == "join" and command.get("zone") not in self.zone_owner:
            return f"dropped: no server of the world holds zone {command.get('zone')}"
        return NOWHERE

    def _give_up(self, pending: _Pending, reason: str) -> None:
        if pending.attempts:
            self.misrouted += 1
            self._retries.pop((pending.command["player"], pending.seq), None)
        self.listener.on_refused(pending.sender, reason, pending.command)

    # ------------------------------------------------------------ from the shards

    def _link_changed(self, _: bool) -> None:
        if all(c.linked.is_set() for c in self.clients):
            self.linked.set()
        else:
            self.linked.clear()

    def _on_world(self, shard: int, view: WorldView) -> None:
        held = set(np.frombuffer(view.packed(), dtype=ENTITY_DTYPE)["zone"].tolist())
        if not held <= self.shards[shard].zones:
            log.error("link: the shard at %s holds entities of zones %s, but --world gave it zones %s: its "
                      "players' commands will be refused as elsewhere", self.shards[shard].path,
                      ",".join(map(str, sorted(held))), ",".join(map(str, sorted(self.shards[shard].zones))))
        self._follow(view)
        if self.view is not None:
            self.listener.on_world(self.merged)
        self._release_all()

    def _on_tick(self, shard: int, view: WorldView, result: TickResult, batch: Batch) -> None:
        self._follow(view)
        self._answered(shard, batch)
        self.listener.on_tick(self.merged, result, batch)
        self._release_all()

    def _on_refused(self, shard: int, sender: int, reason: str, command: dict[str, Any] | None) -> None:
        player = command.get("player") if isinstance(command, dict) else None
        if command is None or not isinstance(player, int):
            self.listener.on_refused(sender, reason, command)
            return
        pending = _Pending(command, sender, time.monotonic())
        sent = self._sent.get(player)
        if sent is not None and sent.shard == shard and sent.seq == pending.seq:
            del self._sent[player]
        if reason != ELSEWHERE:
            self._retries.pop((player, pending.seq), None)
            self.listener.on_refused(sender, reason, command)
            return
        if player not in self._ours:
            return      # another gateway's player (a shard tells every gateway): that gateway sends it again
        attempts = self._retries.get((player, pending.seq), (0, 0.0))[0] + 1
        if attempts > MAX_RETRIES:
            pending.attempts = attempts
            log.warning("link: player %d's command (seq %d) refused as elsewhere %d times; the player is told",
                        player, pending.seq, attempts)
            self._give_up(pending, MISROUTED)
            return
        self._retries[(player, pending.seq)] = (attempts, pending.since)
        log.debug("link: player %d's command (seq %d) was for another shard than %s; sent again", player,
                  pending.seq, self.shards[shard].path)
        view = self.clients[shard].view
        pending.attempts, pending.refused_by, pending.refused_tick = attempts, shard, view.tick if view else -1
        bisect.insort(self._waiting.setdefault(player, []), pending, key=lambda p: p.seq)
        self._release(player)

    def _follow(self, view: WorldView) -> None:
        """Travellers the view has in flight join the handover; those whose destination has
        reached their arrival tick leave it."""
        if view.transit:
            items = np.frombuffer(view.transit, dtype=TRANSIT_DTYPE)
            travellers = items[items["kind"] == TransitKind.traveller]
            for raw, arrive in zip(travellers["record"], travellers["arrive_tick"].tolist()):
                record = raw.tobytes()
                shard = self.zone_owner.get(_U32.unpack_from(record, _ZONE)[0])
                if shard is not None:
                    self.handover[_U64.unpack_from(record)[0]] = Flight(record, shard, arrive)
        if self.handover:
            for entity, flight in list(self.handover.items()):
                there = self.clients[flight.shard].view
                if there is not None and there.tick >= flight.arrive_tick:
                    del self.handover[entity]

    def _answered(self, shard: int, batch: Batch) -> None:
        """A tick of `shard` carried these commands: their players' next ones may go elsewhere."""
        sent, retries = self._sent, self._retries
        if not sent and not retries:
            return
        commands = np.frombuffer(batch.commands, dtype=COMMAND_DTYPE)
        for player, seq in zip(commands["player"].tolist(), commands["seq"].tolist()):
            last = sent.get(player)
            if last is not None and last.shard == shard and last.seq == seq:
                del sent[player]
            if retries:
                retries.pop((player, seq), None)
        if len(retries) > 1000:     # those answered by nothing (a link dropped): forgotten after a while
            old = time.monotonic() - 10 * PARK_SECONDS
            for key in [k for k, (_, when) in retries.items() if when < old]:
                del retries[key]

    def _release_all(self) -> None:
        for player in list(self._waiting):
            self._release(player)

