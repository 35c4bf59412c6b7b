"""Plan: fragment change detection against the previous view, and the SQL it makes."""

from __future__ import annotations

import asyncio

import pytest

from persistence.fragments import FRAGMENTS
from pipeline.context import TickContext
from pipeline.stages import plan
from pipeline.stages.plan import Plan, ShardPart, created_players, fragment_changes, tick_statement
from pipeline.view import WorldView
from schema._generated.layout import ENTITY_SIZE
from tests.support import item, npc, player, world
from vocabulary.records import pack_entity
from vocabulary.types import Batch, SqlCopy, TickResult

HEAD = (7, 100, b"h" * 32, b"", b"")


def columns_for(new: list[dict], old: list[dict | None]) -> dict:
    return fragment_changes(b"".join(pack_entity(**e) for e in new),
                            b"".join(pack_entity(**o) if o else bytes(ENTITY_SIZE) for o in old))


def rows_for(new: list[dict], old: list[dict | None]) -> dict:
    """The changes as rows per table, easier to read in assertions."""
    return {table: list(zip(*columns)) for table, columns in columns_for(new, old).items()}


def test_a_move_writes_only_the_position_and_the_seq():
    before = player(1, 5, 5, last_seq=3)
    after = player(1, 6, 5, last_seq=4)
    rows = rows_for([after], [before])
    assert rows == {"entity_position": [(1, 1, 6, 5)], "entity_session": [(1, True, 4)]}


def test_an_unchanged_record_writes_nothing():
    assert rows_for([player(1, 5, 5)], [player(1, 5, 5)]) == {}


def test_a_created_entity_writes_every_fragment_its_kind_has():
    assert set(rows_for([item(9, 1, 1, gold=7)], [None])) == {"entity_identity", "entity_position", "entity_wealth"}
    assert set(rows_for([npc(9, 1, 1)], [None])) == {"entity_identity", "entity_position", "entity_wealth",
                                                      "entity_vitals"}
    assert set(rows_for([player(9, 1, 1)], [None])) == {f.table for f in FRAGMENTS}


def test_an_id_reclaimed_by_another_kind_is_written_whole():
    rows = rows_for([player(4, 1, 1, name="new")], [item(4, 1, 1, gold=3)])
    assert set(rows) == {f.table for f in FRAGMENTS}
    assert rows["entity_identity"] == [(4, 0, 0, "new", 0, 0)]


def test_values_travel_as_parameters_never_in_the_sql_text():
    changes = columns_for([player(7, 1, 1, name="o'neil; drop table x")], [None])
    statement, copies = tick_statement(HEAD, changes, [3])
    assert "neil" not in statement.sql and "$11" in statement.sql and not copies
    assert "o'neil; drop table x" in statement.args[statement.args.index([3]) + 1:][3]   # identity's name column


def test_every_write_of_the_tick_waits_on_the_header_moving():
    statement, _ = tick_statement(HEAD, columns_for([player(9, 1, 1)], [None]), [5])
    assert statement.sql.startswith("WITH header AS (UPDATE world SET tick = $1")
    assert ("INSERT INTO command_log (tick, commands, text, world_hash, sent, arrivals, zone_hash) "
            "SELECT $1, $4, $5, $3, $6, $9, $10 FROM header") in statement.sql
    assert "DELETE FROM entity_identity WHERE id = ANY($11::bigint[]) AND EXISTS (SELECT 1 FROM header)" \
        in statement.sql
    assert "transit = $6" in statement.sql           # what is in flight moves with the header, or not at all
    assert "UPDATE zone SET next_id = z.next_id FROM unnest($7::bigint[], $8::bigint[]) AS z(id, next_id), header" \
        in statement.sql
    for fragment in FRAGMENTS:     # a new player writes every fragment, each joined to the header
        assert f"{fragment.table}_rows AS (INSERT INTO {fragment.table} " in statement.sql
    assert statement.sql.count(", header ON CONFLICT") == len(FRAGMENTS)
    assert statement.sql.endswith("SELECT tick FROM header") and statement.args[:5] == HEAD
    assert "pg_notify" not in statement.sql and "player_registry" not in statement.sql


def test_a_shard_registers_the_players_it_made_and_notifies_with_its_tick():
    shard = ShardPart(arrivals=b"a" * 160, zone_hash=b"z" * 32, players=[9])
    statement, _ = tick_statement(HEAD, columns_for([player(9, 1, 1)], [None]), [], shard=shard)
    assert statement.args[8:10] == (b"a" * 160, b"z" * 32)
    assert "INSERT INTO player_registry (id, tick) SELECT unnest($11::bigint[]), $1 FROM header" in statement.sql
    assert statement.args[10] == [9]
    assert "pg_notify('fluxworld_tick', tick::text) FROM header" in statement.sql
    assert statement.sql.endswith("SELECT header.tick FROM header, notify")


def test_created_players_are_new_players_and_ids_a_player_reclaimed():
    new = [player(4, 1, 1), player(5, 1, 1), player(6, 1, 1), item(7, 1, 1, gold=1)]
    old = [item(4, 1, 1, gold=3), None, player(6, 1, 1, name="was"), None]
    changed = b"".join(pack_entity(**e) for e in new)
    previous = b"".join(bytes(ENTITY_SIZE) if e is None else pack_entity(**e) for e in old)
    assert created_players(changed, previous) == [4, 5]


def test_an_id_reclaimed_within_the_tick_is_upserted_not_deleted():
    changes = columns_for([player(4, 1, 1, name="new")], [item(4, 1, 1, gold=3)])
    statement, _ = tick_statement(HEAD, changes, [4, 6])
    assert statement.args[10] == [6]


def test_large_writes_go_through_copy(monkeypatch):
    monkeypatch.setattr(plan, "UNNEST_MAX", 100)
    many = [player(i, i % 50, 1) for i in range(1, 102)]
    moved = [player(i, i % 50, 2) for i in range(1, 102)]
    statement, copies = tick_statement(HEAD, columns_for(moved, many), [])
    (copy,) = copies
    assert isinstance(copy, SqlCopy) and copy.table == "entity_position" and len(copy.records) == 101
    assert f"DELETE FROM {copy.temp_table} RETURNING *" in statement.sql
    assert statement.args[10:] == ()          # no arrays: the rows travel by COPY


@pytest.mark.parametrize("count", [0, 1])
def test_the_plan_stage_builds_the_ticks_write(count):
    w = world(player(1, 5, 5), item(2, 5, 6))
    view = WorldView.from_world(w)
    moved = pack_entity(**player(1, 6, 5, last_seq=1)) if count else b""
    before = pack_entity(**player(1, 5, 5)) if count else b""
    result = TickResult(tick=1, next_id=3, effects=b"", recipients=b"", changed=moved,
                        removed=(2).to_bytes(8, "little"), previous=before)
    ctx = TickContext(tick=1, batch=Batch(1, b"c" * 64, b"t"), view=view, result=result, world_hash=b"h" * 32)
    ctx = asyncio.run(Plan()(ctx))
    assert ctx.write is not None
    assert (ctx.write.tick, ctx.write.next_id, ctx.write.commands, ctx.write.text) == (1, 3, b"c" * 64, b"t")
    assert ctx.write.statement.args[:11] == (1, 3, b"h" * 32, b"c" * 64, b"t", b"", [], [], b"", None, [2])
    assert ctx.write.statement.sql.count("_rows AS (INSERT") == 2 * count     # position and session
    assert ctx.write.rows == 1 + 2 * count
