"""The shard gate's decisions: which mail a group takes, which commands are its own.

Peers (the other groups' databases) is faked at the seam here; the real one
runs in tests/live/test_shard_campaign.py and tests/persistence/test_shards.py.
"""

from __future__ import annotations

import asyncio

import numpy as np

from persistence.shards import ZoneGroup
from pipeline.server.shard import ELSEWHERE, ShardGate
from pipeline.view import WorldView
from schema._generated.layout import TRANSIT_DTYPE, TransitKind
from tests.support import npc, player, world
from vocabulary.records import pack_entity
from vocabulary.types import Incoming

ZONES = [{"id": 1, "width": 32, "height": 32, "spawn_x": 1, "spawn_y": 1},
         {"id": 2, "width": 32, "height": 32, "spawn_x": 2, "spawn_y": 2}]


OURS, THEIRS = ZoneGroup("1", frozenset({1}), "db_z1"), ZoneGroup("2", frozenset({2}), "db_z2")


class FakePeers:
    """The other group sent `mail`; `players` are in some group's registry."""

    groups = [OURS, THEIRS]

    def __init__(self, mail: list[bytes], players: set[int]) -> None:
        self.mail, self.registered, self.asked = mail, players, []

    async def wait_committed(self, tick: int) -> None:
        pass

    async def sent(self, tick: int) -> dict[ZoneGroup, bytes]:
        return {THEIRS: b"".join(self.mail)}

    async def players(self, ids: list[int], before_tick: int) -> set[int]:
        self.asked.append(sorted(ids))
        return self.registered & set(ids)


def item(kind: int, sender: int, to: int, amount: int = 0, record: bytes = b"") -> bytes:
    a = np.zeros(1, dtype=TRANSIT_DTYPE)
    a["kind"], a["from_id"], a["to_id"], a["amount"], a["arrive_tick"] = kind, sender, to, amount, 5
    if record:
        a["record"] = np.frombuffer(record, dtype=np.uint8)
    return a.tobytes()


def gate(mail: list[bytes], registered: set[int], sent: bytes = b"") -> tuple[ShardGate, FakePeers, WorldView]:
    """Our group holds players 10 and 11 and npc 12, and sent `sent` last tick."""
    view = WorldView.from_world(world(player(10, 1, 1, zone=1), player(11, 1, 1, zone=1), npc(12, 2, 2, zone=1),
                                      zones=ZONES)).arriving(sent)
    peers = FakePeers(mail, registered)
    return ShardGate(OURS, peers), peers, view   # type: ignore[arg-type]


def test_a_group_takes_its_travellers_and_the_money_of_players_it_holds():
    arriving = pack_entity(**player(30, 2, 2, zone=1))
    leaving = pack_entity(**player(31, 2, 2, zone=2))
    mail = [item(TransitKind.credit, 40, 10, 3) + item(TransitKind.traveller, 0, 31, record=leaving),
            item(TransitKind.refund, 41, 30, 2) + item(TransitKind.traveller, 0, 30, record=arriving)
            + item(TransitKind.credit, 42, 50, 1)]
    g, peers, view = gate(mail, registered={50})
    taken = np.frombuffer(asyncio.run(g.arrivals(5, view)), dtype=TRANSIT_DTYPE)
    # the traveller to zone 1 first, then the credit to 10 and the refund to 30 (which arrives here), in mail order
    assert taken["kind"].tolist() == [TransitKind.traveller, TransitKind.credit, TransitKind.refund]
    assert taken["to_id"].tolist() == [30, 10, 30]
    assert peers.asked == []      # 50 is no player of ours, and 42 neither: not ours to ask about


def test_a_credit_to_nobody_goes_to_the_group_holding_its_sender_which_refunds_it():
    mail = [item(TransitKind.credit, 10, 777, 4), item(TransitKind.credit, 11, 12, 2),
            item(TransitKind.credit, 11, 99, 1)]
    g, peers, view = gate(mail, registered={99})
    taken = np.frombuffer(asyncio.run(g.arrivals(5, view)), dtype=TRANSIT_DTYPE)
    # 777 is nobody and 12 an npc: both come back to their senders here; 99 is a player elsewhere
    assert taken["to_id"].tolist() == [777, 12]
    assert peers.asked == [[12, 99, 777]]


def test_commands_of_players_held_elsewhere_are_refused_and_new_players_join_their_zone():
    g, peers, view = gate([], registered={60})
    commands = [{"player": 10, "seq": 1, "op": "move", "dx": 1, "dy": 0},
                {"player": 20, "seq": 1, "op": "move", "dx": 1, "dy": 0},          # not ours
                {"player": 60, "seq": 1, "op": "join", "zone": 1, "name": "x"},    # made by another group
                {"player": 61, "seq": 1, "op": "join", "zone": 1, "name": "y"},    # new, in our zone
                {"player": 62, "seq": 1, "op": "join", "zone": 2, "name": "z"}]    # new, in another's zone
    kept, refused = asyncio.run(g.admit(5, view, [Incoming(c, None, 0.0) for c in commands]))
    assert [i.command["player"] for i in kept] == [10, 61]
    assert [(r.incoming.command["player"], r.reason) for r in refused] == [(20, ELSEWHERE), (60, ELSEWHERE),
                                                                           (62, ELSEWHERE)]


def test_a_player_our_last_tick_sent_elsewhere_is_a_player_before_our_commit_registers_it():
    # 70 joined here last tick and travelled at once to zone 2; our commit (its registry row) may still be
    # on its way, but the mail shows it in flight: a credit to it is zone 2's, a join of it is refused.
    leaving = pack_entity(**player(70, 2, 2, zone=2))
    g, peers, view = gate([], registered=set(), sent=item(TransitKind.traveller, 0, 70, record=leaving)
                          + item(TransitKind.credit, 10, 70, 3))
    taken = asyncio.run(g.arrivals(5, view))
    assert taken == b"" and peers.asked == []
    kept, refused = asyncio.run(g.admit(5, view.arriving(taken), [
        Incoming({"player": 70, "seq": 9, "op": "join", "zone": 1, "name": "again"}, None, 0.0)]))
    assert kept == [] and [r.reason for r in refused] == [ELSEWHERE]
