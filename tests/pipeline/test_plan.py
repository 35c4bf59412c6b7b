"""Plan: fragment change detection against the previous view, and the SQL it makes."""

from __future__ import annotations

import asyncio

import pytest

from persistence.fragments import FRAGMENTS
from pipeline.context import TickContext
from pipeline.records import pack_entity
from pipeline.stages.plan import DELETE_SQL, UNNEST_MAX, Plan, fragment_changes, fragment_statements
from pipeline.types import Batch, SqlCopy, SqlStatement, TickResult
from pipeline.view import WorldView
from tests.support import item, npc, player, world


def columns_for(new: list[dict], old: list[dict | None]) -> dict:
    return fragment_changes(b"".join(pack_entity(**e) for e in new), [pack_entity(**o) if o else None for o in old])


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
    for statement in fragment_statements(changes, [3]):
        assert isinstance(statement, SqlStatement)
        assert "neil" not in statement.sql and "$1" in statement.sql
    assert fragment_statements({}, [3])[0] == SqlStatement(DELETE_SQL, ([3],))


def test_deletes_come_first_and_identity_before_other_fragments():
    sqls = [s.sql for s in fragment_statements(columns_for([player(9, 1, 1)], [None]), [5])]
    assert sqls[0].startswith("DELETE FROM entity_identity")
    assert sqls[1].startswith("INSERT INTO entity_identity")
    assert len(sqls) == 1 + len(FRAGMENTS)


def test_large_writes_go_through_copy():
    many = [player(i, i % 50, 1) for i in range(1, UNNEST_MAX + 2)]
    moved = [player(i, i % 50, 2) for i in range(1, UNNEST_MAX + 2)]
    statements = fragment_statements(columns_for(moved, many), [])
    copy = statements[0]
    assert isinstance(copy, SqlCopy) and copy.table == "entity_position" and len(copy.records) == UNNEST_MAX + 1
    assert copy.temp_table in copy.then.sql and copy.then.args == ()


@pytest.mark.parametrize("count", [0, 1])
def test_the_plan_stage_builds_the_ticks_write(count):
    w = world(player(1, 5, 5), item(2, 5, 6))
    view = WorldView.from_world(w)
    moved = pack_entity(**player(1, 6, 5, last_seq=1)) if count else b""
    result = TickResult(tick=1, next_id=3, effects=b"", recipients=b"", changed=moved,
                        removed=(2).to_bytes(8, "little"))
    ctx = TickContext(tick=1, batch=Batch(1, b"c" * 64, b"t"), view=view, result=result, world_hash=b"h" * 32)
    ctx = asyncio.run(Plan()(ctx))
    assert ctx.write is not None
    assert (ctx.write.tick, ctx.write.next_id, ctx.write.commands, ctx.write.text) == (1, 3, b"c" * 64, b"t")
    assert ctx.write.statements[0] == SqlStatement(DELETE_SQL, ([2],))
    assert len(ctx.write.statements) == 1 + 2 * count
