"""project with `arrivals`: what is in flight replaced before a tick (docs/abi.md, docs/rules.md "Zones").

Each test runs one world two ways: ticks played, then an arrivals frame
(pipeline.engines.frames.arrivals_frame); and the same entities, zones and
transit loaded anew with a replace frame. The two must be the same world,
byte for byte, and stay so through the ticks after.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from pipeline.engines.engine import create_engine
from pipeline.engines.frames import WORLD_FRAME, arrivals_frame
from schema._generated.layout import ENTITY_SIZE, TransitKind
from tests.rules.kit import cmd, sightings
from tests.support import ZONE, Session, npc, player, world
from vocabulary.hashing import canonical_bytes
from vocabulary.records import TRANSIT, pack_entity, pack_transit
from vocabulary.types import WorldData

ZONE2 = dict(id=2, width=30, height=20, spawn_x=7, spawn_y=8)
ZONES = [ZONE, ZONE2]


def send(sender: int, seq: int, to: int, amount: int) -> dict[str, Any]:
    return cmd(sender, seq, "transfer", to=to, amount=amount)


def in_flight(engine: Any) -> Session:
    """After tick 1: traveller 3 on its way to zone 2, and a credit from 1 to 2 of 20."""
    s = Session(engine, world(player(1, 5, 5, gold=50), player(2, 7, 9, zone=2, gold=1), player(3, 6, 5, gold=4),
                              npc(5, 12, 12, zone=2, next_action_tick=10**6), zones=ZONES))
    s.step(send(1, 1, 2, 20), cmd(3, 1, "travel", zone=2))
    assert [(t["kind"], t["to_id"]) for t in s.transit()] == [(TransitKind.traveller, 3), (TransitKind.credit, 2)]
    return s


def replaced(s: Session, transit: bytes, *upserted: bytes) -> WorldData:
    """The session's world with these entities upserted and this transit: what a replace frame loads."""
    w = s.world()
    records = {int.from_bytes(w.entities[i:i + 8], "little"): w.entities[i:i + ENTITY_SIZE]
               for i in range(0, len(w.entities), ENTITY_SIZE)}
    for record in upserted:
        records[int.from_bytes(record[:8], "little")] = record
    entities = b"".join(records[id] for id in sorted(records))
    return dataclasses.replace(w, entities=entities, transit=transit)


def same_world(a: Session, b: Session, expected: WorldData | None = None) -> None:
    assert bytes(a.engine.canonical()) == bytes(b.engine.canonical())
    if expected is not None:
        assert bytes(a.engine.canonical()) == canonical_bytes(expected)


def same_tick(a: Session, b: Session, *commands: dict[str, Any]) -> list[dict[str, Any]]:
    """One tick on both: identical TickResult (sightings included) and world; the effects."""
    result_a, effects_a = a.step(*commands)
    result_b, effects_b = b.step(*commands)
    assert result_a == result_b and effects_a == effects_b
    same_world(a, b)
    return effects_a


def new_transit(s: Session) -> bytes:
    """Traveller 3 as it flies, a traveller 4 from another shard, credit 1 -> 2 kept, a credit
    from 9 (a player elsewhere) to 2, and a credit from 1 to 88, which is no player here."""
    traveller3 = bytes(s.world().transit[:TRANSIT.size])
    four = pack_entity(**player(4, 7, 8, zone=2, gold=6, last_seq=3))
    return b"".join([traveller3, pack_transit(TransitKind.traveller, 2, to_id=4, record=four),
                     pack_transit(TransitKind.credit, 2, from_id=1, to_id=2, amount=20),
                     pack_transit(TransitKind.credit, 2, from_id=9, to_id=2, amount=7),
                     pack_transit(TransitKind.credit, 2, from_id=1, to_id=88, amount=3)])


def test_arrivals_make_the_world_a_replace_frame_would_load(make_engine: Callable[[], Any]) -> None:
    a = in_flight(make_engine())
    transit = new_transit(a)
    six = pack_entity(**player(6, 9, 9, zone=2, gold=2))
    expected = replaced(a, transit, six)
    a.engine.project(arrivals_frame(transit, six))
    b = Session(make_engine(), expected)
    same_world(a, b, expected)
    assert a.world().transit == transit and a.world().tick == 1 and a.zones() == b.zones()

    # Tick 2: travellers arrive, credits to a player here are credited, the one to 88 comes back.
    effects = same_tick(a, b, cmd(2, 1, "move", dx=1, dy=0))
    now = a.entities()
    assert now[2]["gold"] == 1 + 20 + 7 and now[1]["gold"] == 30
    assert (now[3]["zone"], now[3]["x"], now[3]["y"]) == (2, 7, 8) and now[4]["gold"] == 6
    assert [(t["kind"], t["arrive_tick"], t["from_id"], t["to_id"], t["amount"]) for t in a.transit()] == \
        [(TransitKind.refund, 3, 88, 1, 3)]
    # An arriving traveller's area at the start of the tick was itself alone.
    seen = sightings(effects)
    assert ("enter", 4, 3) in seen and ("enter", 4, 6) in seen and ("enter", 6, 4) in seen
    assert not [s for s in seen if s[1] == s[2] and s[0] != "update"]

    same_tick(a, b)
    assert a.entities()[1]["gold"] == 33 and a.transit() == []


def test_a_traveller_taken_out_of_flight_is_no_observer_any_more(make_engine: Callable[[], Any]) -> None:
    """Traveller 3 forwarded elsewhere: gone from the world; its id joined afresh is a new player."""
    a = in_flight(make_engine())
    credit = a.world().transit[TRANSIT.size:]
    a.engine.project(arrivals_frame(credit))
    b = Session(make_engine(), replaced(a, credit))
    same_world(a, b)
    effects = same_tick(a, b)
    assert 3 not in a.entities() and a.entities()[2]["gold"] == 21 and a.transit() == []
    assert not [s for s in sightings(effects) if 3 in s[1:]]
    effects = same_tick(a, b, cmd(3, 9, "join", zone=1, name="again"))
    assert ("enter", 3, 3) in sightings(effects) and 3 in a.entities()    # a new player: it had no area


def test_a_traveller_landed_by_the_frame_itself_observes_as_a_player(make_engine: Callable[[], Any]) -> None:
    """The same frame takes traveller 3 out of flight and upserts it, online, where it lands."""
    a = in_flight(make_engine())
    credit = a.world().transit[TRANSIT.size:]
    landed = pack_entity(**player(3, 8, 9, zone=2, gold=4, last_seq=1))
    a.engine.project(arrivals_frame(credit, landed))
    b = Session(make_engine(), replaced(a, credit, landed))
    same_world(a, b)
    same_tick(a, b, cmd(3, 2, "move", dx=1, dy=0))
    same_tick(a, b, cmd(2, 1, "move", dx=-1, dy=0))
    assert a.entities()[3]["x"] == 9


def test_an_empty_arrivals_frame_clears_what_is_in_flight(make_engine: Callable[[], Any]) -> None:
    a = in_flight(make_engine())
    a.engine.project(WORLD_FRAME.encode({"replace": 0, "transit": a.world().transit[:TRANSIT.size]}))
    assert len(a.transit()) == 2          # without arrivals, the frame's transit is ignored
    a.engine.project(arrivals_frame(b""))
    assert a.transit() == [] and a.world().transit == b""
    b = Session(make_engine(), replaced(a, b""))
    same_world(a, b, replaced(a, b""))
    same_tick(a, b)
    assert 3 not in a.entities() and a.entities()[2]["gold"] == 1 and a.transit() == []


def test_arrivals_after_ticks_that_skipped_their_sightings(make_engine: Callable[[], Any]) -> None:
    a = in_flight(make_engine())
    a.step(sights=False)                     # traveller 3 arrives, unseen
    a.step(cmd(3, 2, "travel", zone=1), sights=False)
    # Travellers first, ascending id: 3, then 4 from another shard.
    transit = a.world().transit + pack_transit(TransitKind.traveller, 4, to_id=4,
                                               record=pack_entity(**player(4, 30, 30, zone=1)))
    a.engine.project(arrivals_frame(transit))
    b = Session(make_engine(), replaced(a, transit))
    same_world(a, b)
    same_tick(a, b)


def test_both_engines_agree_on_arrivals() -> None:
    """The same ticks and arrivals frames on the WASM module and the Python twin, side by side."""
    w, p = in_flight(create_engine("wasm")), in_flight(create_engine("python"))
    same_world(w, p)
    transit = new_transit(w)
    six = pack_entity(**player(6, 9, 9, zone=2, gold=2))
    for s in (w, p):
        s.engine.project(arrivals_frame(transit, six))
    same_world(w, p)
    same_tick(w, p, cmd(2, 1, "move", dx=1, dy=0), cmd(4, 4, "travel", zone=1))
    same_tick(w, p)
    for s in (w, p):
        s.engine.project(arrivals_frame(b""))
    same_world(w, p)
    same_tick(w, p, cmd(3, 9, "travel", zone=1))
