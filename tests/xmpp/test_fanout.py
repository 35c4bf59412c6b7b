"""fanout.py: each player's news gathered between its sends, coalesced, one message per send."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pipeline.view import WorldView
from pipeline.xmpp.fanout import NEVER, Fanout, cadence
from pipeline.xmpp.protocol import UPDATE_NS, UpdatesSetting, read_left, read_seen
from schema._generated.layout import EffectKind, Reason
from tests.support import item, npc, player, world
from vocabulary.records import EFFECT, pack_commands, pack_entity
from vocabulary.types import Batch, TickResult

ENTER, UPDATE, LEAVE = EffectKind.enter, EffectKind.update, EffectKind.leave


def sighting(observer: int, entity: int, kind: int) -> bytes:
    return EFFECT.pack(observer, entity, 0, 0, 0, 0, kind, 0)


def tick(view: WorldView, number: int, effects: list[bytes], commands: list[dict] = (), changed: bytes = b"",
         removed: bytes = b"") -> tuple[WorldView, TickResult, Batch]:
    result = TickResult(number, view.next_id, b"".join(effects), b"", changed, removed)
    packed, text = pack_commands(list(commands))
    return view.apply(result), result, Batch(number, packed, text)


def updates(messages: list[str]) -> list[ET.Element]:
    return [ET.fromstring(m).find(f"{{{UPDATE_NS}}}update") for m in messages]


def seen(update: ET.Element) -> list[dict]:
    element = update.find(f"{{{UPDATE_NS}}}seen")
    return read_seen(element.text if element is not None else None)


def left(update: ET.Element) -> list[int]:
    element = update.find(f"{{{UPDATE_NS}}}left")
    return read_left(element.text if element is not None else None)


def test_a_player_hears_once_per_period_and_an_entity_changed_many_times_is_sent_once_as_it_stands():
    view = WorldView.from_world(world(player(1, 5, 5), player(2, 6, 5), npc(3, 7, 5), next_id=10))
    fanout = Fanout("world.x")
    fanout.join(1, "ada@x", every=3, hz=20.0)
    sent = []
    for n, x in ((1, 7), (2, 8), (3, 9), (4, 9)):
        moved = pack_entity(**npc(3, x, 5))
        view, result, batch = tick(view, n, [sighting(1, 3, ENTER if n == 1 else UPDATE)], changed=moved)
        sent.append(list(fanout.on_tick(view, result, batch, {})))
    assert [len(s) for s in sent] == [1, 0, 0, 1]       # at once, then no more than once every 3 ticks
    last = updates(sent[3])[0]
    assert [e["x"] for e in seen(last)] == [9]         # ticks 2-4: once, as it stands


def test_what_came_and_went_between_sends_is_not_sent_and_what_left_is():
    view = WorldView.from_world(world(player(1, 5, 5), npc(3, 7, 5), npc(4, 8, 5), next_id=10))
    fanout = Fanout("world.x")
    fanout.join(1, "ada@x", every=2, hz=20.0)
    view, result, batch = tick(view, 1, [sighting(1, 4, ENTER)])
    assert len(list(fanout.on_tick(view, result, batch, {}))) == 1
    view, result, batch = tick(view, 2, [sighting(1, 3, ENTER), sighting(1, 4, LEAVE)])
    assert list(fanout.on_tick(view, result, batch, {})) == []
    view, result, batch = tick(view, 3, [sighting(1, 3, LEAVE)])
    (update,) = updates(list(fanout.on_tick(view, result, batch, {})))
    assert seen(update) == [] and left(update) == [4]


def test_acks_rejections_chat_and_removed_entities():
    view = WorldView.from_world(world(player(1, 5, 5, name="ada"), player(2, 6, 5, name="bo"), item(5, 5, 6),
                                      next_id=10))
    fanout = Fanout("world.x")
    fanout.join(1, "ada@x", every=1, hz=20.0)
    fanout.join(2, "bo@x", every=1, hz=20.0)
    commands = [{"player": 1, "seq": 7, "op": "move", "dx": 5, "dy": 0}, {"player": 1, "seq": 8, "op": "use"},
                {"player": 2, "seq": 3, "op": "say", "text": "hi ada"}, {"player": 2, "seq": 4, "op": "join",
                                                                          "zone": 1, "name": "bo"}]
    packed, text = pack_commands(commands)
    effects = [EFFECT.pack(1, 7, 0, 0, 0, 0, EffectKind.rejected, Reason.bad_step),
               EFFECT.pack(2, 4, 0, 0, 0, 0, EffectKind.rejected, Reason.already_online),   # presence's join
               EFFECT.pack(2, 0, 0, 6, 0, 2, EffectKind.chat, 0),
               sighting(1, 5, UPDATE)]
    result = TickResult(1, 10, b"".join(effects), (1).to_bytes(8, "little") + (2).to_bytes(8, "little"), b"",
                        (5).to_bytes(8, "little"))     # the item is gone by the time the message is made
    view = view.apply(result)
    ada, bo = updates(list(fanout.on_tick(view, result, Batch(1, packed, text), {2: 4})))
    assert ada.get("acked") == "8" and bo.get("acked") == "4"
    assert [(r.get("seq"), r.get("op"), r.get("reason")) for r in ada.findall(f"{{{UPDATE_NS}}}rejected")] == \
        [("7", "move", "bad_step")]
    assert bo.findall(f"{{{UPDATE_NS}}}rejected") == []       # presence said what the world already knew
    assert [c.text for c in ada.findall(f"{{{UPDATE_NS}}}chat")] == ["hi ada"]
    assert left(ada) == [5]


def test_a_player_who_left_gets_nothing_more():
    view = WorldView.from_world(world(player(1, 5, 5), npc(3, 7, 5), next_id=10))
    fanout = Fanout("world.x")
    fanout.join(1, "ada@x", every=5, hz=20.0)
    view, result, batch = tick(view, 1, [sighting(1, 3, ENTER)])
    assert len(list(fanout.on_tick(view, result, batch, {}))) == 1
    view, result, batch = tick(view, 2, [sighting(1, 3, UPDATE)])
    assert list(fanout.on_tick(view, result, batch, {})) == []
    fanout.leave(1)
    view, result, batch = tick(view, 9, [sighting(1, 3, UPDATE)])
    assert list(fanout.on_tick(view, result, batch, {})) == []


def test_a_digest_waits_for_its_period_but_what_concerns_the_player_goes_at_once():
    """A person's default: others moving waits for the summary; being killed, its own command taking
    effect, a rejection or chat goes the same tick, being hurt too but at most once a second;
    regeneration is not news."""
    every, _ = cadence(UpdatesSetting("digest"), 20.0)
    assert every == 100
    view = WorldView.from_world(world(player(1, 5, 5, hp=50), npc(3, 7, 5), next_id=10))
    fanout = Fanout("world.x")
    fanout.join(1, "ada@x", every=every, hz=20.0)

    def step(number, effects, *, commands=(), changed=()):
        nonlocal view
        view, result, batch = tick(view, number, effects, commands,
                                   b"".join(pack_entity(**e) for e in changed))
        return updates(list(fanout.on_tick(view, result, batch, {})))

    assert len(step(1, [sighting(1, 3, ENTER)])) == 1                       # the first news: no summary sent yet
    assert step(2, [sighting(1, 3, UPDATE)], changed=[npc(3, 8, 5)]) == []  # the rat moved: wait
    assert step(3, [sighting(1, 1, UPDATE)], changed=[player(1, 5, 5, hp=51)]) == []   # regeneration: wait
    assert step(4, [sighting(1, 1, UPDATE)], changed=[player(1, 5, 5, hp=49)]) == []   # bitten, but 3 ticks
    (hurt,) = step(30, [sighting(1, 1, UPDATE)], changed=[player(1, 5, 5, hp=40)])     # after the last: calm
    assert [e["x"] for e in seen(hurt) if e["id"] == 3] == [8]              # with the summary so far
    assert step(31, [sighting(1, 1, UPDATE)], changed=[player(1, 5, 5, hp=39)]) == []  # within a second: wait
    (moved,) = step(32, [sighting(1, 1, UPDATE)], commands=[{"player": 1, "seq": 2, "op": "move", "dx": 1, "dy": 0}],
                    changed=[player(1, 6, 5, hp=39)])                       # its own command: at once
    assert moved.get("acked") == "2"
    assert len(step(33, [sighting(1, 1, UPDATE)], changed=[player(1, 6, 5, hp=0, respawn_tick=43)])) == 1  # killed
    assert step(50, [sighting(1, 3, UPDATE)], changed=[npc(3, 10, 5)]) == []
    assert len(step(133, [sighting(1, 3, UPDATE)], changed=[npc(3, 11, 5)])) == 1    # the period is up


def test_off_sends_only_what_concerns_the_player_and_live_every_tick():
    assert cadence(UpdatesSetting("off"), 20.0)[0] == NEVER
    assert cadence(UpdatesSetting("live"), 20.0)[0] == 1
    assert cadence(UpdatesSetting("hz", 5.0), 20.0)[0] == 4


def test_a_tick_delivers_what_concerns_a_player_before_what_is_only_due_for_the_period():
    view = WorldView.from_world(world(player(1, 5, 5), player(2, 6, 5), npc(3, 7, 5), next_id=10))
    fanout = Fanout("world.x")
    fanout.join(2, "bo@x", every=1, hz=20.0)        # joined first, so first in every dict order
    fanout.join(1, "ada@x", every=1, hz=20.0)
    commands = [{"player": 1, "seq": 7, "op": "use"}]
    view, result, batch = tick(view, 1, [sighting(2, 3, ENTER), sighting(1, 3, ENTER)], commands)
    first, rest = fanout.deliver(view, result, batch, {})
    assert [u.get("acked") for u in updates(first)] == ["7"]            # ada's ack, rendered and written first
    (news,) = updates(list(rest))                                        # bo's news only, after it
    assert news.get("acked") is None and [e["id"] for e in seen(news)] == [3]
