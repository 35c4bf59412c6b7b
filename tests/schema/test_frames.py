"""Our hand-specialised frame codec against flatc's generated Python, both ways."""

import flatbuffers
import pytest
from fluxworld import CommandFrame as flatc_command_frame
from fluxworld import TickResult as flatc_tick_result
from fluxworld import WorldFrame as flatc_world_frame
from fluxworld.Entity import CreateEntity
from fluxworld.WorldFrame import WorldFrame
from fluxworld.Zone import CreateZone

from pipeline.engines.frames import COMMAND_FRAME, TICK_RESULT, WORLD_FRAME, FrameError, arrivals_frame
from schema._generated.layout import ENTITY_SIZE, TransitKind
from vocabulary.records import pack_commands, pack_entity, pack_transit, pack_zone, unpack_entity, unpack_zone


def test_world_frame_we_write_flatc_reads():
    zones = pack_zone(7, 64, 32, 1, 2) + pack_zone(9, 10, 10, 0, 0)
    ents = pack_entity(id=5, kind=0, zone=7, x=3, y=4, hp=90, max_hp=100, gold=-1 + 2**40, name="ada") + \
        pack_entity(id=6, kind=2, zone=9, item_type=1, amount=12)
    buf = WORLD_FRAME.encode({"seed": 2**63 + 5, "tick": 11, "next_id": 99, "replace": 1,
                              "zones": zones, "entities": ents})
    w = WorldFrame.GetRootAs(buf, 0)
    assert (w.Seed(), w.Tick(), w.NextId(), w.Replace()) == (2**63 + 5, 11, 99, True)
    assert [w.Zones(i).Id() for i in range(w.ZonesLength())] == [7, 9]
    e = w.Entities(0)
    assert (e.Id(), e.Hp(), e.Gold(), e.NameLen(), bytes(e.Name()[:3])) == (5, 90, 2**40 - 1, 3, b"ada")
    assert w.Entities(1).Amount() == 12


def test_world_frame_flatc_writes_we_read():
    b = flatbuffers.Builder(1024)
    flatc_world_frame.StartEntitiesVector(b, 1)
    CreateEntity(b, 42, 7, 0, 0, 0, 3, 1, 50, 60, 10, 2, 1, 4, 5, 0, 0, 0, 0, 1, 2, list(b"hi") + [0] * 30)
    ents = b.EndVector()
    flatc_world_frame.StartZonesVector(b, 1)
    CreateZone(b, 1, 64, 64, 32, 32, 2**62 + 2**30)
    zones = b.EndVector()
    flatc_world_frame.Start(b)
    flatc_world_frame.AddSeed(b, 3)          # tick and next_id left at default: absent from the vtable
    flatc_world_frame.AddZones(b, zones)
    flatc_world_frame.AddEntities(b, ents)
    b.Finish(flatc_world_frame.End(b))
    got = WORLD_FRAME.decode(bytes(b.Output()))
    assert (got["seed"], got["tick"], got["next_id"], got["replace"]) == (3, 0, 0, 0)
    assert unpack_zone(got["zones"]) == dict(id=1, width=64, height=64, spawn_x=32, spawn_y=32, next_id=2**62 + 2**30)
    entity = unpack_entity(got["entities"][:ENTITY_SIZE])
    assert (entity["id"], entity["gold"], entity["hp"], entity["max_hp"], entity["name"]) == (42, 7, 50, 60, "hi")


def test_command_frame_round_trip_through_flatc():
    packed, text = pack_commands([
        {"player": 1, "seq": 1, "op": "join", "zone": 3, "name": "zoë"},
        {"player": 1, "seq": 2, "op": "move", "dx": -1, "dy": 1},
        {"player": 1, "seq": 3, "op": "say", "text": "hello"}])
    buf = COMMAND_FRAME.encode({"tick": 8, "commands": packed, "text": text})
    f = flatc_command_frame.CommandFrame.GetRootAs(buf, 0)
    assert f.Tick() == 8 and f.CommandsLength() == 3
    join, move, say = (f.Commands(i) for i in range(3))
    assert (join.Op(), join.Zone(), join.TextLen()) == (0, 3, len("zoë".encode()))
    assert (move.Dx(), move.Dy()) == (-1, 1)
    assert bytes(f.TextAsNumpy())[say.TextOffset():say.TextOffset() + say.TextLen()] == b"hello"
    back = COMMAND_FRAME.decode(buf)
    assert bytes(back["commands"]) == packed and bytes(back["text"]) == text


def test_size_prefixed_tick_result_reads_with_flatc():
    buf = TICK_RESULT.encode({"tick": 4, "next_id": 10, "removed": (3).to_bytes(8, "little")}, size_prefixed=True)
    assert int.from_bytes(buf[:4], "little") == len(buf) - 4
    r = flatc_tick_result.TickResult.GetRootAs(buf, 4)
    assert (r.Tick(), r.NextId(), r.RemovedLength(), r.Removed(0), r.EffectsLength()) == (4, 10, 1, 3, 0)
    assert TICK_RESULT.decode(buf, 4)["tick"] == 4


def test_transit_crosses_both_frames_as_flatc_reads_it():
    traveller = pack_entity(id=5, kind=0, zone=2, x=1, y=1, hp=9, max_hp=10, online=1, name="bo", last_seq=4)
    transit = pack_transit(TransitKind.traveller, 12, to_id=5, record=traveller) + \
        pack_transit(TransitKind.refund, 12, from_id=2**64 - 1, to_id=3, amount=2**62)
    zones = pack_zone(2, 8, 8, 1, 1, 2**62 + 2**31 + 7)
    for codec, root, extra in ((WORLD_FRAME, flatc_world_frame.WorldFrame, {"replace": 1}),
                               (TICK_RESULT, flatc_tick_result.TickResult, {})):
        buf = codec.encode({"tick": 11, "zones": zones, "transit": transit, **extra})
        f = root.GetRootAs(buf, 0)
        assert f.ZonesLength() == 1 and f.Zones(0).NextId() == 2**62 + 2**31 + 7
        assert f.TransitLength() == 2
        first, second = f.Transit(0), f.Transit(1)
        assert (first.Kind(), first.ArriveTick(), first.ToId()) == (TransitKind.traveller, 12, 5)
        assert bytes(first.RecordAsNumpy()) == traveller
        assert (second.Kind(), second.FromId(), second.ToId(), second.Amount()) == \
            (TransitKind.refund, 2**64 - 1, 3, 2**62)
        assert bytes(codec.decode(buf)["transit"]) == transit


def test_arrivals_frame_as_flatc_reads_it_and_older_frames_read_without_it():
    transit = pack_transit(TransitKind.credit, 3, from_id=1, to_id=2, amount=5)
    buf = arrivals_frame(transit, pack_entity(id=4, kind=0, zone=1, name="x"))
    w = WorldFrame.GetRootAs(buf, 0)
    assert (w.Replace(), w.Arrivals(), w.TransitLength(), w.EntitiesLength()) == (False, True, 1, 1)
    assert w.Transit(0).Amount() == 5
    b = flatbuffers.Builder(64)
    flatc_world_frame.Start(b)
    flatc_world_frame.AddReplace(b, True)
    flatc_world_frame.AddArrivals(b, True)
    b.Finish(flatc_world_frame.End(b))
    got = WORLD_FRAME.decode(bytes(b.Output()))
    assert (got["replace"], got["arrivals"]) == (1, 1)
    # A frame written before the field (a vtable one slot shorter) reads it as false.
    old = WORLD_FRAME.encode({"replace": 1})
    vtable_size = int.from_bytes(old[4:6], "little")
    short = bytearray(old)
    short[4:6] = (vtable_size - 2).to_bytes(2, "little")
    assert WORLD_FRAME.decode(bytes(short))["arrivals"] == 0
    assert WorldFrame.GetRootAs(bytes(short), 0).Arrivals() is False


def test_malformed_frames_are_named():
    with pytest.raises(FrameError, match="WorldFrame"):
        WORLD_FRAME.decode(b"\x01\x00")
    with pytest.raises(FrameError, match="whole number"):
        WORLD_FRAME.encode({"entities": b"\0" * 7})
