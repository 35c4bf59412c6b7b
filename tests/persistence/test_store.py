"""Seeding and loading: every fragment kind and entity kind round-trips to the same world hash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from persistence.database import open_database
from persistence.errors import DatabaseError, NoWorld, WorldExists
from persistence.fragments import FRAGMENTS
from pipeline.formats.worldfile import load_world
from schema._generated.layout import ENTITY_DTYPE, ENTITY_SIZE
from tests.persistence.worlds import generated_world
from vocabulary.hashing import world_hash
from vocabulary.records import Kind
from vocabulary.types import WorldData

TINY = Path(__file__).resolve().parents[2] / "examples" / "tiny.world.json"


@pytest.fixture
async def store(migrated_dsn):
    async with open_database(migrated_dsn) as db:
        yield db.store()


def kinds_of(world: WorldData) -> dict[int, int]:
    records = np.frombuffer(world.entities, dtype=ENTITY_DTYPE)
    return {int(k): int(n) for k, n in zip(*np.unique(records["kind"], return_counts=True))}


@pytest.mark.parametrize("make", [lambda: load_world(TINY), lambda: generated_world(10_000)],
                         ids=["tiny", "generated-10k"])
async def test_seed_then_load_gives_the_same_world(store, make):
    world = make()
    assert set(kinds_of(world)) == {Kind.player, Kind.npc, Kind.item}
    await store.seed(world)
    loaded = await store.load_world()
    assert loaded == world
    assert world_hash(loaded) == world_hash(world)
    assert await store.stored_hash() == (world.tick, bytes.fromhex(world_hash(world)))
    assert await store.last_log() is None


async def test_each_kind_has_exactly_its_fragments(store, migrated_dsn, run_sql):
    world = generated_world(2_000)
    await store.seed(world)
    counts = kinds_of(world)
    for fragment in FRAGMENTS:
        (row,) = run_sql(migrated_dsn, f"SELECT count(*) AS n FROM {fragment.table}")
        assert row["n"] == sum(counts.get(k, 0) for k in fragment.kinds), fragment.table


async def test_load_entities_returns_those_that_exist_in_id_order(store):
    world = generated_world(500)
    await store.seed(world)
    records = np.frombuffer(world.entities, dtype=ENTITY_DTYPE)
    wanted = [int(i) for i in records["id"][[400, 3, 77, 250]]] + [2**62 + 5, 2**64 - 1]
    got = await store.load_entities(wanted)
    expected = b"".join(world.entities[i * ENTITY_SIZE:(i + 1) * ENTITY_SIZE] for i in (3, 77, 250, 400))
    assert got == expected
    assert await store.load_entities([]) == await store.load_entities([2**64 - 1]) == b""


async def test_seeding_over_a_world_needs_replace_which_empties_the_log(store, migrated_dsn, run_sql):
    tiny = load_world(TINY)
    await store.seed(tiny)
    with pytest.raises(WorldExists, match="--replace"):
        await store.seed(generated_world(10))
    run_sql(migrated_dsn, "INSERT INTO command_log (tick, commands, text, world_hash) VALUES (9, '', '', '')")
    other = generated_world(300, seed=9)
    await store.seed(other, replace=True)
    assert await store.load_world() == other
    assert await store.log_count() == 0


async def test_an_empty_database_has_no_world(store):
    assert await store.stored_hash() is None
    with pytest.raises(NoWorld, match="world load"):
        await store.load_world()


async def test_an_empty_world_round_trips(store):
    empty = WorldData(seed=1, tick=5, next_id=1, zones=b"", entities=b"")
    await store.seed(empty)
    assert await store.load_world() == empty


@pytest.mark.parametrize("damage, message", [
    ("DELETE FROM entity_vitals WHERE id = (SELECT min(id) FROM entity_vitals)", "has no entity_vitals row"),
    ("INSERT INTO entity_session SELECT id, true, 1 FROM entity_identity WHERE kind = 2 LIMIT 1",
     "has no such fragment"),
])
async def test_tables_that_disagree_are_reported(store, migrated_dsn, run_sql, damage, message):
    await store.seed(load_world(TINY))
    run_sql(migrated_dsn, damage)
    with pytest.raises(DatabaseError, match=message):
        await store.load_world()


async def test_player_accounts_get_ids_above_next_id_and_each_other(migrated_dsn):
    from persistence.database import create_pool
    from persistence.store import WorldStore

    pool = await create_pool(migrated_dsn)
    try:
        store = WorldStore(pool)
        assert await store.account("ada@x") is None
        assert await store.allocate_account("ada@x", at_least=1000) == 1000
        assert await store.allocate_account("bob@x", at_least=900) == 1001
        assert await store.allocate_account("cy@x", at_least=5000) == 5000
        assert (await store.account("ada@x"), await store.account("bob@x")) == (1000, 1001)
        assert await store.allocate_account("ada@x", at_least=10) == 5001   # re-pointed, never reused
    finally:
        await pool.close()


async def test_assigned_accounts_replace_those_of_the_same_jids_or_entities(migrated_dsn):
    from persistence.database import create_pool
    from persistence.store import WorldStore

    pool = await create_pool(migrated_dsn)
    try:
        store = WorldStore(pool)
        await store.assign_accounts({"bot0@a": 2, "bot1@a": 3})
        await store.assign_accounts({"bot0@a": 2, "bot1@b": 3})     # a run whose bot1 is on another server
        assert (await store.account("bot0@a"), await store.account("bot1@b"), await store.account("bot1@a")) == \
            (2, 3, None)
    finally:
        await pool.close()


async def test_what_is_in_flight_and_the_zones_next_ids_are_stored_and_move_with_each_tick(store):
    """docs/rules.md "Zones": transit and the zones' next_ids are part of the world; the database holds them."""
    from pipeline.stages.plan import tick_write
    from schema._generated.layout import ZONE_DTYPE, ZONE_SIZE, TransitKind
    from vocabulary.records import pack_entity, pack_transit, pack_zone, unpack_entity, unpack_zone

    world = load_world(TINY)
    zones = [unpack_zone(world.zones[i:i + ZONE_SIZE]) for i in range(0, len(world.zones), ZONE_SIZE)]
    moved_zones = b"".join(pack_zone(**{**z, "next_id": z["next_id"] + 5}) for z in zones)
    records = [world.entities[i:i + ENTITY_SIZE] for i in range(0, len(world.entities), ENTITY_SIZE)]
    player = next(r for r in records if unpack_entity(r)["kind"] == Kind.player)
    there = zones[-1]
    traveller = pack_entity(**{**unpack_entity(player), "zone": there["id"], "x": there["spawn_x"],
                               "y": there["spawn_y"]})
    transit = (pack_transit(TransitKind.traveller, world.tick + 1, to_id=unpack_entity(player)["id"],
                            record=traveller)
               + pack_transit(TransitKind.credit, world.tick + 1, from_id=unpack_entity(player)["id"], to_id=999,
                              amount=3))
    flying = WorldData(world.seed, world.tick, world.next_id, moved_zones,
                       b"".join(r for r in records if r is not player), transit)
    await store.seed(flying)
    loaded = await store.load_world()
    assert loaded == flying and world_hash(loaded) == world_hash(flying)

    arrived = b"".join(pack_zone(**{**z, "next_id": z["next_id"] + 6}) for z in zones)
    await store.commit_tick(tick_write(world.tick + 1, world.next_id, b"h" * 32, b"", b"", {}, [], transit=b"",
                                       zones=arrived))
    after = await store.load_world()
    assert after.transit == b"" and after.zones == arrived
    assert np.frombuffer(after.zones, dtype=ZONE_DTYPE)["next_id"].tolist() == \
        [z["next_id"] + 6 for z in zones]
