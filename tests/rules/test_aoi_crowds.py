"""The area of interest in crowds: each observer sees itself and its 31 nearest, nothing more."""

import random
from collections import Counter

from tests.rules import oracle
from tests.rules.kit import cmd, non_aoi, sightings
from tests.support import item, npc, player


def entered(effects, observer):
    return sorted(e for kind, o, e in sightings(effects) if o == observer and kind == "enter")


def test_a_joining_player_sees_itself_and_its_31_nearest_by_distance_then_id(start):
    # Spawn is 32,32. Items at distance 1 (ids 100..109), 2 (200..219), 3 (300..339).
    ring1 = [item(100 + i, 31 + i % 3, 31 if i < 3 else 33 if i < 6 else 32) for i in range(8)]
    ring2 = [item(200 + i, 30 + i % 5, 30 if i < 5 else 34) for i in range(10)]
    ring3 = [item(300 + i, 29 + i % 7, 29 if i < 7 else 35) for i in range(14)]
    s = start(*ring1, *ring2, *ring3, next_id=900)
    _, effects = s.step(cmd(900, 1, "join", zone=1, name="ada"))
    # 8 at distance 1 (one spot, 32,32, is the spawn itself), 10 at 2, and the 13 lowest ids at 3.
    assert entered(effects, 900) == sorted([900, *range(100, 108), *range(200, 210), *range(300, 313)])


def test_at_equal_distance_the_lower_ids_are_nearer(start):
    crowd = [player(i, 20, 20) for i in range(2, 60)]
    s = start(*crowd, player(1, 31, 31), next_id=100)
    _, effects = s.step(cmd(1, 1, "move", dx=-1, dy=-1))     # to 30,30: the crowd comes into sight
    assert entered(effects, 1) == list(range(2, 33))
    # Each of the crowd sees the 31 lowest others on its cell, so player 1 enters no one's view.
    assert all(o == 1 for kind, o, e in sightings(effects) if kind == "enter")


def test_an_entity_stepping_nearer_pushes_the_farthest_out(start):
    # Observer 1 at 10,10: 16 items at distance 2 (ids 100..115), then 5 each at 3, 4 and 5
    # (116..130, on rows 13, 14, 15): a full area reaching distance 5.
    ring2 = [item(100 + i, 8 + i % 5, 8 if i < 5 else 12) for i in range(10)]
    ring2 += [item(110 + i, 8 if i < 3 else 12, 9 + i % 3) for i in range(6)]
    rows = [item(116 + i, 8 + i % 5, 13 + i // 5) for i in range(15)]
    s = start(player(1, 10, 10), *ring2, *rows, player(2, 10, 16), next_id=200)
    before = s.entities()
    assert oracle.area(before, 1) == [1, *range(100, 131)]
    _, effects = s.step(cmd(2, 1, "move", dx=0, dy=-1))     # to 10,15: distance 5, and the lowest id there
    assert [(kind, e) for kind, o, e in sightings(effects) if o == 1] == [("enter", 2), ("leave", 130)]
    assert sightings(effects) == oracle.sightings(before, s.entities())


def test_a_still_observer_sees_nothing_of_a_crowd_churning_beyond_its_radius(start):
    near = [item(100 + i, 10 + i % 7 - 3, 10 + i // 7 - 2) for i in range(35)]   # a full area within 2
    far = [player(200 + i, 16, 10) for i in range(20)]                            # distance 6
    s = start(player(1, 10, 10), *near, *far, next_id=300)
    assert oracle.area(s.entities(), 1)[-1] < 200
    _, effects = s.step(*[cmd(200 + i, 1, "move", dx=1, dy=0) for i in range(20)])
    assert [e for e in sightings(effects) if e[1] == 1] == []


def test_say_reaches_the_online_players_of_the_area_at_most_32(start):
    crowd = [player(i, 20, 20) for i in range(2, 80)]
    s = start(player(1, 20, 20), *crowd, next_id=100)
    _, effects = s.step(cmd(40, 1, "say", text="hi"))
    assert non_aoi(effects) == [{"type": "chat", "from": 40, "text": "hi", "recipients": [*range(1, 32), 40]}]


def test_items_and_npcs_take_places_in_the_area_and_so_in_who_hears(start):
    # 31 items and npcs on the speaker's own cell are nearer than the player a step away.
    things = [item(10 + i, 5, 5) for i in range(16)] + [npc(30 + i, 5, 5) for i in range(15)]
    s = start(player(1, 5, 5), player(2, 6, 5), *things, next_id=100)
    _, effects = s.step(cmd(1, 1, "say", text="anyone?"))
    assert non_aoi(effects)[0]["recipients"] == [1]


def test_offline_players_take_no_place(start):
    ghosts = [player(i, 5, 5, online=0) for i in range(2, 60)]
    s = start(player(1, 5, 5), player(70, 9, 9), *ghosts, next_id=100)
    _, effects = s.step(cmd(70, 1, "say", text="hello"))
    assert non_aoi(effects)[0]["recipients"] == [1, 70]


def test_a_moving_crowd_matches_the_rule_and_no_observer_gets_more_than_64(start):
    rng = random.Random(9)
    crowd = [player(i, 30 + rng.randrange(3), 30 + rng.randrange(3)) for i in range(1, 301)]
    stuff = [item(400 + i, 29 + rng.randrange(5), 29 + rng.randrange(5)) for i in range(30)]
    stuff += [npc(500 + i, 28 + rng.randrange(7), 28 + rng.randrange(7)) for i in range(20)]
    s = start(*crowd, *stuff, next_id=600)
    seq = Counter()
    for _ in range(6):
        before = s.entities()
        commands = []
        for p in rng.sample(range(1, 301), 120):
            seq[p] += 1
            roll = rng.random()
            if roll < 0.7:
                commands.append(cmd(p, seq[p], "move", dx=rng.randint(-1, 1), dy=rng.randint(-1, 1)))
            elif roll < 0.8:
                commands.append(cmd(p, seq[p], "leave" if before[p]["online"] else "join", zone=1, name="x"))
            elif roll < 0.9:
                commands.append(cmd(p, seq[p], "pickup", item=400 + rng.randrange(30)))
            else:
                commands.append(cmd(p, seq[p], "say", text="crowded"))
        _, effects = s.step(*commands)
        assert sightings(effects) == oracle.sightings(before, s.entities())
        per_observer = Counter(o for _, o, _ in sightings(effects))
        assert max(per_observer.values(), default=0) <= 64
        for chat in (e for e in effects if e["type"] == "chat"):
            assert len(chat["recipients"]) <= 32


def test_skipping_the_area_of_interest_changes_nothing_but_the_sightings(start, make_engine):
    rng = random.Random(3)
    crowd = [player(i, 10 + rng.randrange(4), 10 + rng.randrange(4)) for i in range(1, 81)]
    skipping, computing = start(*crowd, next_id=100), start(*crowd, next_id=100)
    for tick in range(1, 7):
        commands = [cmd(p, tick, "move", dx=rng.randint(-1, 1), dy=rng.randint(-1, 1))
                    for p in rng.sample(range(1, 81), 30)]
        sights = tick in (1, 4, 6)          # skip ticks 2, 3 and 5, then see again
        a, a_effects = skipping.step(*commands, sights=sights)
        b, b_effects = computing.step(*commands)
        assert bytes(skipping.engine.canonical()) == bytes(computing.engine.canonical())
        assert (a.changed, a.removed, a.next_id) == (b.changed, b.removed, b.next_id)
        assert non_aoi(a_effects) == non_aoi(b_effects)
        assert sightings(a_effects) == (sightings(b_effects) if sights else [])
