"""A shard's side of a sharded world: the barrier, the mail, and which commands are its own.

docs/scale-out.md. A shard ticks one zone group. Before its tick T it waits
until every other group has committed T-1 (the barrier; its own commit of
T-1 may still be on its way), then reads what every group's tick T-1 sent
(`command_log.sent`, the mail; its own is the transit it just made) and
takes its part:
- a traveller whose destination is one of its zones;
- a refund whose `to` it holds;
- a credit whose `to` it holds as a player; or, when `to` was no player
  anywhere at the start of T (no group's registry has it before T), the
  credit goes to the group that holds its `from`, whose rules then turn it
  into a refund, exactly as one process would.
"Holds" means at the start of T: in its world, or arriving to it at T. So
every item goes to exactly one group, decided from what was committed by
T-1 alone. What it took goes into the engine as the world's transit and into
the tick's log row (`arrivals`), so the group's log replays alone.

A command whose player the shard does not hold at the start of the tick is
refused as `elsewhere`, never logged; so is a join that would create a
player another group made, or in a zone of another group. The gateway sends
such a command again to the shard its view then names.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Callable

import numpy as np

from persistence.database import Database, open_database
from persistence.errors import Fenced
from persistence.migrator import migrate
from persistence.shards import Peers, ZoneGroup, sibling_dsn
from schema._generated.layout import ENTITY_DTYPE, TRANSIT_DTYPE, Op, TransitKind
from vocabulary.errors import StoreUnavailable
from vocabulary.types import CommandBlock, Incoming, Refusal, Unreadable

from ..blocks import block_command, block_records, block_senders, select
from ..context import TickContext
from ..view import WorldView
from .retry import Outages, until_available

if TYPE_CHECKING:
    from ..operate.state import ServerState

log = logging.getLogger(__name__)

ELSEWHERE = "elsewhere"


class ShardGate:
    def __init__(self, group: ZoneGroup, peers: Peers, outages: Outages | None = None) -> None:
        self.group, self.peers, self.outages = group, peers, outages
        self.in_flight: set[int] = set()     # the players in the last mail, whatever their destination

    async def open(self, ctx: TickContext, drain: Callable[[], list[Incoming | CommandBlock]]) -> TickContext:
        """The tick with its arrivals (in its view, and for the engine: pipeline/stages/project.py)
        and the input that is the shard's: what `drain` gives once the barrier is passed."""
        ctx.arrivals = await self.arrivals(ctx.tick, ctx.view)
        ctx.view = ctx.view.arriving(ctx.arrivals)
        ctx.incoming, refused = await self.admit(ctx.tick, ctx.view, drain())
        ctx.refusals.extend(refused)
        return ctx

    async def arrivals(self, tick: int, view: WorldView) -> bytes:
        """What the shard takes from the mail for tick `tick`, in the world's transit order.
        `view` is the world after tick-1: its transit is what this shard sent then, which it
        knows before its own commit of tick-1 lands (the tick is computed beside that commit)."""
        peers = self.peers
        await until_available(f"tick {tick}: waiting for every zone group's tick {tick - 1}",
                              lambda: peers.wait_committed(tick - 1), tick=tick, outages=self.outages)
        others = await until_available(f"tick {tick}: reading the mail", lambda: peers.sent(tick - 1), tick=tick,
                                       outages=self.outages)
        mail = [view.transit if group == self.group else others[group] for group in peers.groups]
        packed = b"".join(mail)
        items = np.frombuffer(packed, dtype=TRANSIT_DTYPE)
        travellers = np.flatnonzero(items["kind"] == TransitKind.traveller)
        records = np.frombuffer(items["record"][travellers].tobytes(), dtype=ENTITY_DTYPE)
        mine = np.isin(records["zone"], list(self.group.zones))
        arriving = travellers[mine][np.argsort(records["id"][mine], kind="stable")]
        arriving_ids = set(records["id"][mine].tolist())
        # Players in flight anywhere: players, though perhaps not yet in the registry (this shard's own
        # commit of tick-1, which registered those it made then, may still be on its way).
        self.in_flight = set(records["id"].tolist())

        def holds(player: int) -> bool:
            return player in arriving_ids or view.is_player(player)

        money = np.flatnonzero(items["kind"] != TransitKind.traveller)
        take = np.zeros(len(money), dtype=bool)
        unsure: list[int] = []          # credits to no player of ours, from a player of ours
        for i, (kind, to, sender) in enumerate(zip(items["kind"][money].tolist(), items["to_id"][money].tolist(),
                                                   items["from_id"][money].tolist())):
            if holds(to):
                take[i] = True
            elif kind == TransitKind.credit and holds(sender) and to not in self.in_flight:
                unsure.append(i)
        if unsure:
            wanted = items["to_id"][money[unsure]].astype(np.int64).tolist()
            players = await until_available(f"tick {tick}: reading the player registry",
                                            lambda: peers.players(wanted, tick), tick=tick, outages=self.outages)
            take[unsure] = [to not in players for to in wanted]
        # Whole records, byte for byte (indexing the structured array would copy fields, not padding).
        raw = np.frombuffer(packed, dtype=np.dtype((np.void, TRANSIT_DTYPE.itemsize)))
        return bytes(raw[np.concatenate([arriving, money[take]])].tobytes())

    async def admit(self, tick: int, view: WorldView,
                    incoming: list[Incoming | CommandBlock]) -> tuple[list[Incoming | CommandBlock], list[Refusal]]:
        """The tick's input less what another shard must take (`view`: with the tick's arrivals)."""
        commands = [_fields(item) for item in incoming]
        # A join by a player the shard does not hold creates it, unless another group made it already.
        joins = [player for fields in commands for player, op, _ in fields
                 if op == Op.join and view.find(player) is None]
        made: set[int] = set()
        if joins:
            made = await until_available(f"tick {tick}: reading the player registry",
                                         lambda: self.peers.players(joins, tick), tick=tick, outages=self.outages)
            made |= self.in_flight

        def ours(player: int, op: int, zone: int) -> bool:
            if view.find(player) is not None:
                return True
            return op == Op.join and zone in self.group.zones and player not in made

        kept: list[Incoming | CommandBlock] = []
        refused: list[Refusal] = []
        for item, fields in zip(incoming, commands):
            mask = np.array([ours(*f) for f in fields], dtype=bool)
            if mask.all():
                kept.append(item)
            elif isinstance(item, Incoming):
                refused.append(Refusal(item, ELSEWHERE))
            else:
                senders = block_senders(item)
                for i in np.flatnonzero(~mask).tolist():
                    refused.append(Refusal(Incoming(block_command(item, i), int(senders[i]) or None, item.received),
                                           ELSEWHERE))
                if mask.any():
                    commands_kept, text = select(item, mask)
                    kept.append(CommandBlock(commands_kept, text, senders[mask].tobytes(), item.received))
        return kept, refused


def _fields(item: Incoming | CommandBlock) -> list[tuple[int, int, int]]:
    """(player, op, zone) of each command; none for one negotiate will refuse as malformed."""
    if isinstance(item, CommandBlock):
        records = block_records(item)
        return list(zip(records["player"].tolist(), records["op"].tolist(), records["zone"].tolist()))
    command = item.command
    if isinstance(command, Unreadable) or not isinstance(command.get("player"), int) or command.get("op") not in _OPS:
        return []
    zone = command.get("zone")
    return [(command["player"], _OPS[command["op"]], zone if isinstance(zone, int) else -1)]


_OPS = {op.name: int(op) for op in Op}


class Shard:
    """A shard process's hold on its zone group: its database, its lease, its gate."""

    def __init__(self, group: ZoneGroup, database: Database, peers: Peers, lease: float,
                 outages: Outages | None) -> None:
        self.group, self.database, self.lease = group, database, lease
        self.store = database.store()
        self.checkpoints = database.checkpoints()
        self.gate = ShardGate(group, peers, outages)
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self.lost = False
        self._renewing: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, world_dsn: str, group: ZoneGroup, found: list[ZoneGroup], lease: float,
                   stack: AsyncExitStack, state: ServerState) -> Shard:
        dsn = sibling_dsn(world_dsn, group.database)
        await migrate(dsn)
        database = await stack.enter_async_context(open_database(dsn))
        state.dsn = dsn
        peers = Peers(world_dsn, found, own=group)
        stack.push_async_callback(peers.close)
        log.info("shard of zone group %s (database %s); %d groups in the world", group.name, group.database,
                 len(found), extra={"event": "shard"})
        return cls(group, database, peers, lease, state.metrics.outages)

    async def take(self, stop: asyncio.Event) -> int:
        """Take the group's lease, waiting while another holder's runs: the fence token. From then
        on the lease is renewed every third of it; once it is lost (another took the group), `stop`
        is set."""
        waited = False
        while (token := await self.store.take_lease(self.holder, self.lease)) is None:
            if not waited:
                holder, left = await self.store.lease()
                log.warning("zone group %s is held by %s for %.1f s more; waiting for its lease",
                            self.group.name, holder, left or 0.0, extra={"event": "lease_wait"})
                waited = True
            await asyncio.sleep(self.lease / 4)
        log.info("took zone group %s (fence %d)", self.group.name, token, extra={"event": "lease_taken"})
        self._keep_lease(stop)
        return token

    def _keep_lease(self, stop: asyncio.Event) -> None:
        async def renew() -> None:
            while not stop.is_set():
                await asyncio.sleep(self.lease / 3)
                try:
                    held = await self.store.renew_lease(self.lease)
                except StoreUnavailable as e:
                    log.warning("renewing the lease: %s", e)
                    continue
                if not held:
                    self.lost = True
                    log.error("zone group %s was taken by another shard: this one stops and writes nothing more",
                              self.group.name, extra={"event": "lease_lost"})
                    stop.set()
        self._renewing = asyncio.create_task(renew(), name="lease")

    async def close(self) -> None:
        if self._renewing is not None:
            self._renewing.cancel()
            await asyncio.gather(self._renewing, return_exceptions=True)
        if self.lost:
            raise Fenced(f"zone group {self.group.name}: another shard took it; this one stopped")
        try:
            await self.store.release_lease()
        except StoreUnavailable as e:
            log.warning("could not release the lease (the next holder waits it out): %s", e)
