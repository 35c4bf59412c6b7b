"""The two workloads: a world to seed, and each tick a block of commands from its players.

- mmo: N online players, PLAYERS_PER_ZONE to a 512x512 zone, each zone
  also holding half as many npcs, as many items and half as many offline
  players, all placed at random: a player sees about two others and an npc
  or two within its area of interest (distance 10), and npcs near players
  hunt them. Each command is drawn from a mix: mostly moves, some attacks,
  pickups, chat, potions and gifts of gold, and played as a client would
  (loadtest/sight.py): attack the npc next to you or step toward the nearest
  one you see, the same for loot, drink only a potion you have.
- crowd: N online players in one 21x21 square of one zone, with a tenth as
  many npcs and items among them, the zone's spawn point in its middle: they
  keep moving (stepping back in at the edge), chatting and fighting (players
  and npcs alike) inside it, so everybody is within sight of everybody and
  every area of interest is full.
- transfer: the SpacetimeDB keynote's bank. N accounts (players, all online,
  INITIAL_GOLD each), placed 11 cells apart so that no account sees another
  (a balance change is seen only by its owner); every command moves 1..100
  gold between two accounts drawn by TransferStream (Zipf, `alpha`).

Commands are generated as packed Command records with numpy, never as dicts:
the load must cost far less than the server it measures.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from pipeline.blocks import make_block
from schema._generated.layout import COMMAND_DTYPE, ItemType, Kind, Op
from vocabulary.records import pack_entity, pack_zone
from vocabulary.types import CommandBlock, TickResult, WorldData

from .sight import Sight
from .transfers import TransferStream

PLAYERS_PER_ZONE = 1_000
ZONE_SIDE = 512
INITIAL_GOLD = 1_000_000_000   # hot accounts lose gold fast at alpha 1.5 (the stream redraws self-transfers)
ACCOUNT_SPACING = 11          # > the area of interest's distance 10: accounts do not see each other
CHAT = "hello there".encode()

# (op, share of commands) for the mmo mix; transfers are small gifts to other online players (of the
# zone the giver was born in: after a travel, a gift crosses zones), travels go to another zone.
MMO_MIX = ((Op.move, 0.69), (Op.attack, 0.08), (Op.pickup, 0.07), (Op.say, 0.05), (Op.use, 0.04),
           (Op.transfer, 0.06), (Op.travel, 0.01))


class Scenario(Protocol):
    name: str
    world: WorldData
    players: np.ndarray[Any, Any]     # the online players' entity ids

    def block(self, count: int, received: float) -> CommandBlock:
        """The next `count` commands, each from its own player as sender."""
        ...

    def see(self, result: TickResult) -> None:
        """What a committed tick changed, for players who act on what they see."""
        ...


class Seqs:
    """Each player's next seqs: strictly increasing, also within one block."""

    def __init__(self, max_id: int) -> None:
        self.last = np.zeros(max_id + 1, dtype=np.uint64)

    def assign(self, players: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        order = np.argsort(players, kind="stable")
        grouped = players[order]
        index = np.arange(len(grouped))
        starts = np.ones(len(grouped), dtype=bool)
        starts[1:] = grouped[1:] != grouped[:-1]
        rank = index - np.maximum.accumulate(np.where(starts, index, 0))
        seqs = np.empty(len(players), dtype=np.uint64)
        seqs[order] = self.last[grouped] + rank.astype(np.uint64) + 1
        self.last += np.bincount(players, minlength=len(self.last)).astype(np.uint64)
        return seqs


class Mix:
    """A mix of ops, (op, share) pairs: each command's op drawn by its share."""

    def __init__(self, shares: tuple[tuple[Op, float], ...]) -> None:
        self.ops = np.array([op for op, _ in shares], dtype=np.uint8)
        self.shares = np.array([share for _, share in shares])

    def draw(self, rng: np.random.Generator, players: np.ndarray[Any, Any], seqs: Seqs) -> np.ndarray[Any, Any]:
        """Command records for `players`, with their next seqs and an op drawn from the mix."""
        records = np.zeros(len(players), dtype=COMMAND_DTYPE)
        records["player"] = players
        records["seq"] = seqs.assign(players.astype(np.int64))
        records["op"] = self.ops[rng.choice(len(self.ops), len(players), p=self.shares)]
        return records


def chatting_block(records: np.ndarray[Any, Any], players: np.ndarray[Any, Any], received: float) -> CommandBlock:
    """The block of these records, every `say` saying CHAT."""
    chats = records["op"] == Op.say
    records["text_len"][chats] = len(CHAT)
    # Offsets as pack_commands makes them: the text length before each command.
    records["text_offset"] = np.concatenate(([0], np.cumsum(records["text_len"])[:-1])).astype(np.uint32)
    return make_block(records, CHAT * int(chats.sum()), players, received)


class MmoScenario:
    name = "mmo"

    def __init__(self, players: int, seed: int, *, online: bool = True) -> None:
        self.world, self._zone_members = mmo_world(players, seed, online=online)
        self.players = np.concatenate([m["players"] for m in self._zone_members])
        self._sight = Sight(self.world)
        self._seqs = Seqs(self.world.next_id)
        self._rng = np.random.default_rng(seed + 1)
        self._mix = Mix(MMO_MIX)

    def block(self, count: int, received: float) -> CommandBlock:
        rng = self._rng
        players = rng.choice(self.players, count)
        records = self._mix.draw(rng, players, self._seqs)
        op = records["op"].copy()
        self._sight.act(players, op, records, rng)
        zone = ((players - 1) // ZONE_STRIDE).astype(np.int64)     # the zone a player was born in
        trips = op == Op.travel
        if trips.any():       # to any other zone (zones are 1..Z), one tick behind as the players see it
            here = self._sight.zone[self._sight.slots(players[trips])]
            hop = rng.integers(1, max(2, len(self._zone_members)), trips.sum())   # one zone: same_zone
            records["zone"][trips] = (here - 1 + hop) % len(self._zone_members) + 1
        for z in np.flatnonzero(np.bincount(zone[op == Op.transfer], minlength=len(self._zone_members))).tolist():
            chosen = (op == Op.transfer) & (zone == z)      # a gift to anyone of the zone: any distance
            records["target"][chosen] = rng.choice(self._zone_members[z]["players"], chosen.sum())
        gifts = op == Op.transfer
        records["amount"][gifts] = rng.integers(1, 11, gifts.sum())
        return chatting_block(records, players, received)

    def see(self, result: TickResult) -> None:
        self._sight.see(result)


CROWD_SIDE = 21
CROWD_ZONE = 128
# (op, share) for the crowd: the mmo's verbs, weighted to movement, talk and fights.
CROWD_MIX = ((Op.move, 0.55), (Op.attack, 0.20), (Op.say, 0.15), (Op.pickup, 0.05), (Op.use, 0.05))


class CrowdScenario:
    name = "crowd"

    def __init__(self, players: int, seed: int) -> None:
        self.world = crowd_world(players, seed)
        self.players = np.arange(1, players + 1, dtype=np.uint64)
        self._sight = Sight(self.world)
        self._seqs = Seqs(self.world.next_id)
        self._rng = np.random.default_rng(seed + 1)
        self._mix = Mix(CROWD_MIX)
        self._low = CROWD_ZONE // 2 - CROWD_SIDE // 2
        self._high = self._low + CROWD_SIDE - 1

    def block(self, count: int, received: float) -> CommandBlock:
        rng = self._rng
        players = rng.choice(self.players, count)
        records = self._mix.draw(rng, players, self._seqs)
        self._sight.act(players, records["op"].copy(), records, rng, prey=(Kind.npc, Kind.player))
        self._keep_inside(players.astype(np.int64), records)
        return chatting_block(records, players, received)

    def _keep_inside(self, me: np.ndarray[Any, Any], records: np.ndarray[Any, Any]) -> None:
        """A step that would leave the square turns back in (positions as last seen)."""
        moves = records["op"] == Op.move
        for axis, step in (("x", "dx"), ("y", "dy")):
            at = getattr(self._sight, axis)[me]
            records[step][moves & (at <= self._low)] = 1
            records[step][moves & (at >= self._high)] = -1

    def see(self, result: TickResult) -> None:
        self._sight.see(result)


def crowd_world(players: int, seed: int) -> WorldData:
    """`players` online players, players // 10 npcs and as many items, all in one
    CROWD_SIDE square around the spawn point of one CROWD_ZONE zone."""
    rng = np.random.default_rng(seed)
    centre = CROWD_ZONE // 2
    low = centre - CROWD_SIDE // 2
    extra = max(1, players // 10)
    xs, ys = rng.integers(low, low + CROWD_SIDE, (2, players + 2 * extra)).tolist()
    records = []
    for i in range(players + 2 * extra):
        eid, x, y = i + 1, xs[i], ys[i]
        if i < players:
            records.append(pack_entity(id=eid, kind=Kind.player, zone=1, x=x, y=y, hp=100, max_hp=100, attack=10,
                                       defense=2, gold=int(rng.integers(0, 50)), potions=int(rng.integers(0, 3)),
                                       online=1, name=f"player{eid}"))
        elif i < players + extra:
            records.append(pack_entity(id=eid, kind=Kind.npc, zone=1, x=x, y=y, hp=30, max_hp=30, attack=6,
                                       defense=1, gold=int(rng.integers(0, 10)), name=f"rat{eid}", home_x=x, home_y=y))
        else:
            records.append(pack_entity(id=eid, kind=Kind.item, zone=1, x=x, y=y, item_type=ItemType.potion, amount=1))
    zone = pack_zone(1, CROWD_ZONE, CROWD_ZONE, centre, centre)
    return WorldData(seed, 0, players + 2 * extra + 1, zone, b"".join(records))


class TransferScenario:
    name = "transfer"

    def __init__(self, accounts: int, seed: int, alpha: float) -> None:
        self.world = bank_world(accounts, seed)
        self.players = np.arange(1, accounts + 1, dtype=np.uint64)
        self.stream = TransferStream(accounts, alpha, seed)
        self._seqs = Seqs(accounts)

    def block(self, count: int, received: float) -> CommandBlock:
        sender, receiver, amount = self.stream.take(count)
        players = sender + 1                  # account index i is entity i + 1
        records = np.zeros(count, dtype=COMMAND_DTYPE)
        records["player"] = players
        records["seq"] = self._seqs.assign(players)
        records["target"] = receiver + 1
        records["amount"] = amount
        records["op"] = Op.transfer
        return make_block(records, b"", players, received)

    def see(self, result: TickResult) -> None:
        """Bank clients act on their own stream, not on what they see."""


ZONE_STRIDE = 3 * PLAYERS_PER_ZONE       # ids per zone: players, then npcs, items, offline players


def mmo_world(players: int, seed: int, *,
              online: bool = True) -> tuple[WorldData, list[dict[str, np.ndarray[Any, Any]]]]:
    """The world and, per zone, its players', npcs' and items' ids.

    Zone z holds ids z*ZONE_STRIDE + 1.. : its `players` first, so a player's
    zone follows from its id. online=False leaves them offline (XMPP
    presence brings them online)."""
    rng = np.random.default_rng(seed)
    records, zones, members = [], [], []
    for z in range(math.ceil(players / PLAYERS_PER_ZONE)):
        here = min(PLAYERS_PER_ZONE, players - z * PLAYERS_PER_ZONE)
        first = z * ZONE_STRIDE + 1
        kinds = ["player"] * here + ["npc"] * (here // 2) + ["item"] * here + ["offline"] * (here // 2)
        xs, ys = rng.integers(0, ZONE_SIDE, len(kinds)), rng.integers(0, ZONE_SIDE, len(kinds))
        ids: dict[str, list[int]] = {"players": [], "npcs": [], "items": []}
        for i, (kind, x, y) in enumerate(zip(kinds, xs.tolist(), ys.tolist())):
            eid, gold = first + i, int(rng.integers(0, 50))
            if kind in ("player", "offline"):
                records.append(pack_entity(id=eid, kind=Kind.player, zone=z + 1, x=x, y=y, hp=100, max_hp=100,
                                           attack=10, defense=2, gold=gold, potions=int(rng.integers(0, 3)),
                                           online=int(kind == "player" and online), name=f"player{eid}"))
                if kind == "player":
                    ids["players"].append(eid)
            elif kind == "npc":
                ids["npcs"].append(eid)
                records.append(pack_entity(id=eid, kind=Kind.npc, zone=z + 1, x=x, y=y, hp=30, max_hp=30, attack=6,
                                           defense=1, gold=gold // 5, name=f"rat{eid}", home_x=x, home_y=y))
            else:
                ids["items"].append(eid)
                is_gold = rng.random() < 0.7
                records.append(pack_entity(id=eid, kind=Kind.item, zone=z + 1, x=x, y=y,
                                           item_type=ItemType.gold if is_gold else ItemType.potion,
                                           amount=int(rng.integers(1, 20)) if is_gold else 1))
        zones.append(pack_zone(z + 1, ZONE_SIDE, ZONE_SIDE, ZONE_SIDE // 2, ZONE_SIDE // 2))
        members.append({k: np.array(v, dtype=np.uint64) for k, v in ids.items()})
    next_id = len(zones) * ZONE_STRIDE + 1
    return WorldData(seed, 0, next_id, b"".join(zones), b"".join(records)), members


def bank_world(accounts: int, seed: int) -> WorldData:
    """`accounts` online players with INITIAL_GOLD each, on a grid 11 cells apart in one zone."""
    per_row = math.ceil(math.sqrt(accounts))
    side = min(65535, per_row * ACCOUNT_SPACING)
    if (per_row - 1) * ACCOUNT_SPACING >= side:
        raise ValueError(f"{accounts} accounts do not fit one zone {ACCOUNT_SPACING} cells apart")
    records = [pack_entity(id=i + 1, kind=Kind.player, zone=1, x=(i % per_row) * ACCOUNT_SPACING,
                           y=(i // per_row) * ACCOUNT_SPACING, hp=100, max_hp=100, attack=10, defense=2,
                           gold=INITIAL_GOLD, online=1, name=f"acct{i + 1}") for i in range(accounts)]
    return WorldData(seed, 0, accounts + 1, pack_zone(1, side, side, 0, 0), b"".join(records))


def make_scenario(name: str, players: int, seed: int, alpha: float) -> Scenario:
    if name == "mmo":
        return MmoScenario(players, seed)
    if name == "crowd":
        return CrowdScenario(players, seed)
    if name == "transfer":
        return TransferScenario(players, seed, alpha)
    raise ValueError(f"unknown scenario {name!r}: mmo, crowd or transfer")
