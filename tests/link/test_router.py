"""The gateway's router over shards (pipeline/link/router.py), with the shards' links faked at the seam.

Each shard's WorldClient is real but never connects: a test sets its view
as a snapshot or a tick frame would, records what the router submits to it,
and plays the frames and refusals a shard sends through the client's own
listener, in whatever order the links would deliver them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest

from pipeline.link.client import NOT_LINKED
from pipeline.link.router import ELSEWHERE, MAX_RETRIES, MISROUTED, NOWHERE, ShardLink, ShardRouter, parse_world
from pipeline.server.shard import ELSEWHERE as SHARD_ELSEWHERE
from pipeline.view import WorldView
from pipeline.xmpp import Endpoint
from pipeline.xmpp.cli import world_links
from pipeline.xmpp.gateway import GatewayProcess
from pipeline.xmpp.players import _usable
from schema._generated.layout import TransitKind
from tests.support import npc, player, world
from vocabulary.records import pack_commands, pack_entity, pack_transit, unpack_entity, unpack_zone
from vocabulary.types import Batch, TickResult

ZONES = [dict(id=1, width=64, height=64, spawn_x=32, spawn_y=32), dict(id=2, width=48, height=48, spawn_x=24,
                                                                      spawn_y=24)]
ADA, BEA = 10, 11       # ada in zone 1 (shard 0), bea in zone 2 (shard 1)


class Gateway:
    """The router's listener: what the gateway would be told."""

    def __init__(self) -> None:
        self.worlds = 0
        self.ticks: list[tuple[int, Any]] = []
        self.refused: list[tuple[int, str, dict[str, Any] | None]] = []

    def on_world(self, view: Any) -> None:
        self.worlds += 1

    def on_tick(self, view: Any, result: TickResult, batch: Batch) -> None:
        self.ticks.append((result.tick, view))

    def on_refused(self, sender: int, reason: str, command: dict[str, Any] | None) -> None:
        self.refused.append((sender, reason, command))


class Shards:
    def __init__(self) -> None:
        self.gateway = Gateway()
        self.router = ShardRouter([ShardLink(frozenset({1}), Path("/nonexistent/z1.sock")),
                                   ShardLink(frozenset({2}), Path("/nonexistent/z2.sock"))], self.gateway, "test")
        self.sent: list[list[dict[str, Any]]] = [[], []]
        for i, client in enumerate(self.router.clients):
            client.submit = lambda command, sender, i=i: self.sent[i].append(command)  # type: ignore[method-assign]

    def snapshot(self, shard: int, view: WorldView) -> None:
        client = self.router.clients[shard]
        client.view = view
        client.linked.set()
        assert client.on_linked is not None
        client.on_linked(True)
        client.listener.on_world(view)

    def tick(self, shard: int, view: WorldView, *commands: dict[str, Any]) -> None:
        client = self.router.clients[shard]
        client.view = view
        packed, text = pack_commands(list(commands))
        client.listener.on_tick(view, TickResult(view.tick, view.next_id, b"", b"", b"", b""),
                                Batch(view.tick, packed, text))

    def refuse(self, shard: int, command: dict[str, Any], reason: str = ELSEWHERE) -> None:
        self.router.clients[shard].listener.on_refused(command["player"], reason, dict(command))


def zone_view(zone: int, *entities: dict[str, Any], tick: int = 5, next_id: int | None = None,
              transit: bytes = b"", zone_next_id: int | None = None) -> WorldView:
    zones = [dict(z, next_id=zone_next_id) if z["id"] == zone and zone_next_id is not None else z for z in ZONES]
    return WorldView.from_world(world(*[dict(e, zone=zone) for e in entities], zones=zones, tick=tick,
                                      next_id=next_id, transit=transit))


def travelling(entity: dict[str, Any], to_zone: int, arrive_tick: int) -> bytes:
    return pack_transit(TransitKind.traveller, arrive_tick, record=pack_entity(**dict(entity, zone=to_zone, x=24,
                                                                                     y=24)))


ADA_RECORD = player(ADA, 3, 3, online=1, last_seq=7, name="ada")
BEA_RECORD = player(BEA, 5, 5, online=1, last_seq=2, name="bea")


@pytest.fixture
def shards() -> Shards:
    s = Shards()
    s.snapshot(0, zone_view(1, ADA_RECORD, npc(1, 9, 9), next_id=12))
    s.snapshot(1, zone_view(2, BEA_RECORD, next_id=40, zone_next_id=2**62 + 2 * 2**30 + 5))
    return s


def move(who: int, seq: int) -> dict[str, Any]:
    return {"player": who, "seq": seq, "op": "move", "dx": 1, "dy": 0}


def test_the_shards_elsewhere_is_the_routers() -> None:
    assert ELSEWHERE == SHARD_ELSEWHERE


def test_the_view_and_linked_wait_for_every_shard() -> None:
    s = Shards()
    s.snapshot(0, zone_view(1, ADA_RECORD))
    assert s.router.view is None and not s.router.linked.is_set() and s.gateway.worlds == 0
    s.snapshot(1, zone_view(2, BEA_RECORD))
    assert s.router.view is not None and s.router.linked.is_set() and s.gateway.worlds == 1
    s.router.clients[1].linked.clear()
    s.router.clients[1].on_linked(False)  # type: ignore[misc]
    assert not s.router.linked.is_set()


def test_commands_go_to_the_shard_holding_their_player(shards: Shards) -> None:
    shards.router.submit(move(ADA, 8), ADA)
    shards.router.submit(move(BEA, 3), BEA)
    assert shards.sent == [[move(ADA, 8)], [move(BEA, 3)]]


def test_a_new_player_joins_through_its_zones_shard_and_its_next_commands_follow(shards: Shards) -> None:
    join = {"player": 50, "seq": 1, "op": "join", "zone": 2, "name": "cy"}
    shards.router.submit(join, 50)
    shards.router.submit(move(50, 2), 50)          # before any tick made cy: it follows the join
    assert shards.sent == [[], [join, move(50, 2)]]
    shards.router.submit({"player": 51, "seq": 1, "op": "join", "zone": 9, "name": "dy"}, 51)
    shards.router.submit(move(52, 1), 52)
    assert [(sender, reason) for sender, reason, _ in shards.gateway.refused] == \
        [(51, "dropped: no server of the world holds zone 9"), (52, NOWHERE)]


def test_the_merged_view_answers_as_one_world(shards: Shards) -> None:
    view = shards.router.view
    assert view is not None
    assert unpack_entity(view.get(ADA))["name"] == "ada" and unpack_entity(view.find(BEA))["name"] == "bea"
    assert view.get(999) is None and view.find(999) is None and not view.online(999)
    assert view.online(ADA) and view.last_seq(BEA) == 2 and view.last_seq(1) is None   # npc 1: no player
    assert view.next_id == 40                      # the largest: accounts are allocated above it
    zone_two = unpack_zone(view.zones[24:48])      # zone 2's record as its own shard has it
    assert zone_two["id"] == 2 and zone_two["next_id"] == 2**62 + 2 * 2**30 + 5
    assert view.online_count == 2 and view.entity_count == 3
    assert _usable(ADA, view) and _usable(BEA, view)     # pipeline/xmpp/players.py reads it too


def test_a_traveller_is_never_lost_between_the_two_shards_frames(shards: Shards) -> None:
    """ada travels at tick 6: zone 1's shard has her in flight, zone 2's shows her at 7; the frames
    of tick 7 come in either order."""
    router, view = shards.router, shards.router.view
    assert view is not None
    shards.tick(0, zone_view(1, npc(1, 9, 9), tick=6, next_id=12, transit=travelling(ADA_RECORD, 2, 7)),
                {"player": ADA, "seq": 8, "op": "travel", "zone": 2})
    assert router.holder(ADA) == 1 and view.online(ADA) and unpack_entity(view.get(ADA))["zone"] == 2
    router.submit(move(ADA, 9), ADA)
    assert shards.sent[1] == [move(ADA, 9)]       # to where she arrives
    shards.tick(0, zone_view(1, npc(1, 9, 9), tick=7, next_id=12))      # zone 1's frame 7 first: nothing in flight
    assert router.holder(ADA) == 1 and view.online(ADA) and view.last_seq(ADA) == 7
    assert ADA in router.handover
    shards.tick(1, zone_view(2, BEA_RECORD, dict(ADA_RECORD, x=24, y=24), tick=7, next_id=40))
    assert router.holder(ADA) == 1 and view.online(ADA) and not router.handover
    assert all(isinstance(v.get(ADA), bytes) for _, v in shards.gateway.ticks)


def test_an_elsewhere_refusal_is_sent_again_where_the_view_then_says(shards: Shards) -> None:
    """ada travelled at tick 6, but her move went to zone 1's shard before its frame said so."""
    router = shards.router
    router.submit(move(ADA, 8), ADA)
    shards.refuse(0, move(ADA, 8))
    assert shards.gateway.refused == [] and shards.sent == [[move(ADA, 8)], []]     # waits for a frame
    router.submit(move(ADA, 9), ADA)              # behind it, in order
    shards.tick(0, zone_view(1, tick=6, next_id=12, transit=travelling(ADA_RECORD, 2, 7)))
    assert shards.sent == [[move(ADA, 8)], [move(ADA, 8), move(ADA, 9)]]
    assert shards.gateway.refused == [] and router.resent == 1


def test_a_players_commands_keep_their_order_when_its_shard_changes(shards: Shards) -> None:
    router = shards.router
    router.submit(move(ADA, 8), ADA)              # to zone 1's shard, unanswered yet
    shards.tick(0, zone_view(1, tick=6, next_id=12, transit=travelling(ADA_RECORD, 2, 7)))
    router.submit(move(ADA, 9), ADA)              # she is zone 2's now, but 8 may still land
    assert shards.sent == [[move(ADA, 8)], []]
    shards.refuse(0, move(ADA, 8))                # it did not: both go to zone 2's shard, 8 first
    assert shards.sent == [[move(ADA, 8)], [move(ADA, 8), move(ADA, 9)]]


def test_a_command_its_shard_took_frees_the_next_to_go_elsewhere(shards: Shards) -> None:
    router = shards.router
    router.submit({"player": ADA, "seq": 8, "op": "travel", "zone": 2}, ADA)
    shards.tick(0, zone_view(1, tick=6, next_id=12, transit=travelling(ADA_RECORD, 2, 7)),
                {"player": ADA, "seq": 8, "op": "travel", "zone": 2})
    router.submit(move(ADA, 9), ADA)
    assert shards.sent[1] == [move(ADA, 9)]


def test_a_command_refused_as_elsewhere_again_and_again_is_refused_to_the_player(shards: Shards) -> None:
    router = shards.router
    router.submit(move(ADA, 8), ADA)
    for tick in range(6, 6 + MAX_RETRIES + 1):
        shards.refuse(0, move(ADA, 8))
        shards.tick(0, zone_view(1, ADA_RECORD, tick=tick, next_id=12))     # still says zone 1's shard holds her
    assert len(shards.sent[0]) == MAX_RETRIES + 1
    assert shards.gateway.refused == [(ADA, MISROUTED, move(ADA, 8))] and router.misrouted == 1


def test_other_refusals_reach_the_gateway_as_they_are(shards: Shards) -> None:
    shards.router.submit(move(BEA, 3), BEA)
    shards.refuse(1, move(BEA, 3), "rate limited")
    shards.router.clients[0].listener.on_refused(ADA, "bad", None)
    assert shards.gateway.refused == [(BEA, "rate limited", move(BEA, 3)), (ADA, "bad", None)]


def test_every_shards_tick_reaches_the_gateway_with_the_merged_view(shards: Shards) -> None:
    shards.tick(1, zone_view(2, BEA_RECORD, tick=6, next_id=40))
    shards.tick(0, zone_view(1, ADA_RECORD, tick=6, next_id=12))
    assert [tick for tick, _ in shards.gateway.ticks] == [6, 6]
    assert all(v.get(ADA) and v.get(BEA) for _, v in shards.gateway.ticks)


def test_a_shard_not_linked_refuses_at_once_as_one_world_server_does() -> None:
    gateway = Gateway()
    router = ShardRouter([ShardLink(frozenset({1}), Path("/nonexistent/z1.sock"))], gateway, "test")
    router.clients[0].view = zone_view(1, ADA_RECORD)
    router.submit(move(ADA, 8), ADA)               # the client is not linked: its own refusal
    assert gateway.refused == [(ADA, NOT_LINKED, move(ADA, 8))]


def test_gateway_world_options() -> None:
    assert parse_world("1,2=/run/z1.sock") == ShardLink(frozenset({1, 2}), Path("/run/z1.sock"))
    assert parse_world("/run/world.sock") == Path("/run/world.sock")
    assert world_links(("/run/world.sock",)) == Path("/run/world.sock")
    assert world_links(("1=/a", "2,3=/b")) == [ShardLink(frozenset({1}), Path("/a")),
                                              ShardLink(frozenset({2, 3}), Path("/b"))]
    for bad in (("/a", "/b"), ("/a", "1=/b"), ("1=/a", "1,2=/b")):
        with pytest.raises(click.BadParameter):
            world_links(bad)
    with pytest.raises(ValueError):
        ShardRouter([ShardLink(frozenset({1}), Path("/a")), ShardLink(frozenset({1}), Path("/b"))], Gateway(), "t")
    endpoint = Endpoint("127.0.0.1", 5347, "world.fluxworld.localhost", "s")
    args = GatewayProcess(endpoint, [ShardLink(frozenset({1}), Path("/a")), ShardLink(frozenset({3, 2}), Path("/b"))],
                          "postgresql:///w").args
    assert args[args.index("gateway") + 1:][:4] == ["--world", "1=/a", "--world", "2,3=/b"]
    assert "/w.sock" in GatewayProcess(endpoint, Path("/w.sock"), "postgresql:///w").args


def test_another_gateways_command_refused_as_elsewhere_is_left_to_it(shards: Shards) -> None:
    shards.refuse(0, move(ADA, 8))                # a shard tells every gateway; this one never sent it
    shards.tick(0, zone_view(1, tick=6, next_id=12, transit=travelling(ADA_RECORD, 2, 7)))
    assert shards.sent == [[], []] and shards.gateway.refused == []


def test_a_shard_given_the_wrong_zones_is_named_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    s = Shards()
    s.snapshot(0, zone_view(2, BEA_RECORD))       # --world 1=... names the socket of zone 2's shard
    assert "holds entities of zones 2, but --world gave it zones 1" in caplog.text
