"""travel, and what crosses zones one tick later: travellers, credits, refunds (docs/rules.md "Zones")."""

import random

from schema._generated.layout import TransitKind
from tests.rules import oracle
from tests.rules.kit import changed, cmd, reason, rejections, removed, sightings
from tests.support import ZONE, item, npc, player
from vocabulary.ids import zone_first_id

ZONE2 = dict(id=2, width=30, height=20, spawn_x=7, spawn_y=8)
ZONE3 = dict(id=3, width=10, height=10, spawn_x=1, spawn_y=2)
ZONES = [ZONE, ZONE2, ZONE3]


def travel(player_id, seq, zone):
    return cmd(player_id, seq, "travel", zone=zone)


def send(sender, seq, to, amount):
    return cmd(sender, seq, "transfer", to=to, amount=amount)


def test_travel_takes_the_player_out_now_and_to_the_spawn_point_next_tick(start):
    s = start(player(1, 5, 6, gold=9, potions=1, hp=70), zones=ZONES)
    before = s.entities()[1]
    result, effects = s.step(travel(1, 1, 2))
    assert reason(effects) is None
    assert 1 not in s.entities() and removed(result) == [1]
    in_flight = s.transit()
    assert len(in_flight) == 1 and in_flight[0]["kind"] == TransitKind.traveller
    assert (in_flight[0]["arrive_tick"], in_flight[0]["to_id"]) == (2, 1)
    assert in_flight[0]["record"] == {**before, "zone": 2, "x": 7, "y": 8, "last_seq": 1}

    result, effects = s.step()
    assert s.entities()[1] == {**before, "zone": 2, "x": 7, "y": 8, "last_seq": 1}
    assert 1 in changed(result) and s.transit() == []


def test_travel_reasons_in_order(start):
    s = start(player(1, online=0), player(2, hp=0, respawn_tick=50), player(3, online=0, hp=0, respawn_tick=50),
              player(4), player(5, hp=0, respawn_tick=50), zones=ZONES)
    _, effects = s.step(travel(1, 1, 2), travel(2, 1, 2), travel(3, 1, 9), travel(4, 1, 9), travel(4, 2, 1),
                        travel(5, 1, 9), travel(99, 1, 2))
    assert rejections(effects) == [(1, 1, "offline"), (2, 1, "dead"), (3, 1, "offline"), (4, 1, "no_such_zone"),
                                   (4, 2, "same_zone"), (5, 1, "dead"), (99, 1, "not_a_player")]
    assert s.transit() == [] and s.entities()[4]["last_seq"] == 2


def test_observers_see_the_traveller_leave_and_then_enter_where_it_arrives(start):
    s = start(player(1, 5, 5), player(2, 6, 5), player(3, 7, 8, zone=2), zones=ZONES)
    _, effects = s.step(travel(1, 1, 2))
    # In flight it sees itself alone, changed; whoever saw it sees it go.
    assert sightings(effects) == [("update", 1, 1), ("leave", 1, 2), ("leave", 2, 1)]
    _, effects = s.step()
    assert sightings(effects) == [("enter", 1, 3), ("enter", 3, 1)]


def test_a_traveller_arriving_and_acting_at_once_sees_itself_change(start):
    s = start(player(1, 5, 5), zones=ZONES)
    s.step(travel(1, 1, 2))
    _, effects = s.step(cmd(1, 2, "move", dx=1, dy=0))
    assert reason(effects) is None and sightings(effects) == [("update", 1, 1)]
    assert (s.entities()[1]["x"], s.entities()[1]["y"]) == (8, 8)


def test_a_traveller_in_its_travel_tick_is_in_no_zone(start):
    s = start(player(1, 5, 5, gold=10), player(2, 6, 5, gold=10), npc(3, 5, 6), item(4, 5, 5, gold=3),
              zones=ZONES)
    _, effects = s.step(travel(1, 1, 2),
                        cmd(1, 2, "move", dx=1, dy=0), cmd(1, 3, "join", zone=1, name="again"),
                        send(1, 4, 2, 5), travel(1, 5, 3), cmd(1, 6, "pickup", item=4),
                        cmd(2, 1, "attack", target=1), send(2, 2, 1, 4))
    assert rejections(effects) == [(1, 2, "offline"), (1, 3, "already_online"), (1, 4, "offline"),
                                   (1, 5, "offline"), (1, 6, "offline"), (2, 1, "no_target")]
    # Its commands advanced its last_seq in flight; the transfer to it is a credit, due next tick.
    traveller, credit = s.transit()
    assert traveller["record"]["last_seq"] == 6 and traveller["record"]["gold"] == 10
    assert (credit["kind"], credit["from_id"], credit["to_id"], credit["amount"]) == (TransitKind.credit, 2, 1, 4)
    s.step()
    assert s.entities()[1]["gold"] == 14 and s.entities()[1]["zone"] == 2 and s.entities()[2]["gold"] == 6


def test_a_cross_zone_transfer_is_credited_at_the_start_of_the_next_tick(start):
    s = start(player(1, gold=50), player(2, 5, 5, zone=2, online=0), zones=ZONES)
    result, effects = s.step(send(1, 1, 2, 20))
    assert reason(effects) is None
    assert s.entities()[1]["gold"] == 30 and s.entities()[2]["gold"] == 0
    assert sorted(changed(result)) == [1]
    assert [(t["kind"], t["arrive_tick"], t["from_id"], t["to_id"], t["amount"]) for t in s.transit()] == \
        [(TransitKind.credit, 2, 1, 2, 20)]
    result, _ = s.step()
    assert s.entities()[2]["gold"] == 20 and sorted(changed(result)) == [2] and s.transit() == []


def test_a_credit_to_no_player_comes_back_the_tick_after(start):
    s = start(player(1, gold=50), npc(2, 5, 5, zone=2), zones=ZONES)
    s.step(send(1, 1, 2, 20), send(1, 2, 77, 5))    # an npc of another zone, and no entity at all
    assert s.entities()[1]["gold"] == 25
    s.step()
    assert s.entities()[1]["gold"] == 25 and s.entities()[2]["gold"] == 0
    assert [(t["kind"], t["arrive_tick"], t["from_id"], t["to_id"], t["amount"]) for t in s.transit()] == \
        [(TransitKind.refund, 3, 2, 1, 20), (TransitKind.refund, 3, 77, 1, 5)]
    result, _ = s.step()
    assert s.entities()[1]["gold"] == 50 and 1 in changed(result) and s.transit() == []


def test_no_target_is_the_sender_or_a_non_player_of_its_zone(start):
    s = start(player(1, gold=50), npc(2, 5, 5), item(3, 4, 4, gold=1), zones=ZONES)
    _, effects = s.step(send(1, 1, 1, 5), send(1, 2, 2, 5), send(1, 3, 3, 5))
    assert rejections(effects) == [(1, 1, "no_target"), (1, 2, "no_target"), (1, 3, "no_target")]
    assert s.transit() == [] and s.entities()[1]["gold"] == 50


def test_a_credit_reaches_a_player_who_travelled_meanwhile(start):
    s = start(player(1, gold=50), player(2, 5, 5, zone=2), zones=ZONES)
    s.step(send(1, 1, 2, 20), travel(2, 1, 3))
    s.step()
    after = s.entities()[2]
    assert (after["zone"], after["gold"]) == (3, 20) and s.transit() == []


def test_ids_created_in_two_zones_do_not_collide(start):
    s = start(player(1, 5, 5), npc(2, 6, 5, hp=1, gold=3, next_action_tick=10_000),
              player(3, 5, 5, zone=2), npc(4, 6, 5, zone=2, hp=1, gold=4, next_action_tick=10_000),
              zones=ZONES, next_id=10)
    result, _ = s.step(cmd(1, 1, "attack", target=2), cmd(3, 1, "attack", target=4))
    one, two = zone_first_id(1), zone_first_id(2)
    assert (s.entities()[one]["amount"], s.entities()[two]["amount"]) == (3, 4)
    assert s.entities()[one]["zone"] == 1 and s.entities()[two]["zone"] == 2
    assert {z: s.zones()[z]["next_id"] for z in (1, 2, 3)} == {1: one + 1, 2: two + 1, 3: zone_first_id(3)}
    assert result.next_id == 10


def test_a_join_with_an_id_from_play_is_not_a_player(start):
    s = start(player(1), zones=ZONES)
    result, effects = s.step(cmd(2**62, 1, "join", zone=1, name="x"), cmd(2**62 - 1, 1, "join", zone=1, name="y"))
    assert rejections(effects) == [(2**62, 1, "not_a_player")]
    assert 2**62 not in s.entities() and 2**62 - 1 in s.entities() and result.next_id == 2**62


def test_transit_keeps_travellers_first_by_id_then_the_gold_as_it_was_sent(start):
    s = start(player(1, gold=50), player(4, 1, 1), player(3, 2, 2), player(2, 5, 5, zone=2), zones=ZONES)
    s.step(send(1, 1, 77, 5))
    s.step(send(1, 2, 2, 6), travel(4, 1, 3), travel(3, 1, 2))
    kinds = [(t["kind"], t["from_id"], t["to_id"], t["amount"]) for t in s.transit()]
    assert kinds == [(TransitKind.traveller, 0, 3, 0), (TransitKind.traveller, 0, 4, 0),
                     (TransitKind.refund, 77, 1, 5), (TransitKind.credit, 1, 2, 6)]


def test_a_traveller_arrives_before_the_npcs_act(start):
    s = start(player(1, 5, 5, hp=50), npc(2, 5, 6), npc(3, 8, 8, zone=2), zones=ZONES)
    s.step(travel(1, 1, 2))   # npc 2 bites first (6 - 2): npcs act before the commands
    assert s.transit()[0]["record"]["hp"] == 46
    s.step()
    # Npc 2 has no one to bite any more; npc 3, next to the spawn point, has.
    assert s.entities()[1]["hp"] == 42
    assert s.entities()[3]["next_action_tick"] == 4 and s.entities()[2]["next_action_tick"] == 3


def test_crowds_travelling_into_a_crowd_see_what_the_rule_says(start):
    """Many leave and arrive at one spawn point at once, where a crowd stands: each tick's
    sightings are the oracle's, whose areas are found by sorting the whole world."""
    rng = random.Random(5)
    zones = [dict(id=1, width=6, height=6, spawn_x=2, spawn_y=2),
             dict(id=2, width=5, height=5, spawn_x=2, spawn_y=2)]
    s = start(*(player(i, rng.randrange(6), rng.randrange(6)) for i in range(1, 41)),
              *(npc(i, rng.randrange(5), rng.randrange(5), zone=2, next_action_tick=10**6) for i in range(100, 140)),
              zones=zones)
    seqs: dict[int, int] = {}
    before: tuple[dict, dict] = (s.entities(), {})
    for _ in range(6):
        commands = []
        for p in rng.sample(range(1, 41), 25):
            seqs[p] = seqs.get(p, 0) + 1
            commands.append(travel(p, seqs[p], rng.choice([1, 2])) if rng.random() < 0.6
                            else cmd(p, seqs[p], "move", dx=rng.choice([-1, 1]), dy=0))
        _, effects = s.step(*commands)
        after = (s.entities(), {t["to_id"]: t["record"] for t in s.transit()})
        assert sightings(effects) == oracle.sightings(before[0], after[0], before[1], after[1])
        before = after
