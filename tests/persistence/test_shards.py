"""Zone groups on a real PostgreSQL: split, leases and fencing, what shards read of each other."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from loadtest.shardworld import two_zone_world
from persistence.database import create_pool
from persistence.errors import Fenced
from persistence.shards import Peers, group_of, groups, sibling_dsn, split
from persistence.store import WorldStore
from pipeline.stages.plan import ShardPart, tick_write
from schema._generated.layout import ENTITY_DTYPE, Kind
from vocabulary.errors import InputError
from vocabulary.types import WorldData


@pytest.fixture
def split_world(migrated_dsn, run_sql):
    async def make() -> list:
        pool = await create_pool(migrated_dsn)
        try:
            await WorldStore(pool).seed(two_zone_world(8))
        finally:
            await pool.close()
        return await split(migrated_dsn, [frozenset({1}), frozenset({2})])
    made = asyncio.run(make())
    yield migrated_dsn, made
    for group in made:
        run_sql(sibling_dsn(migrated_dsn, "postgres"), f'DROP DATABASE IF EXISTS "{group.database}" WITH (FORCE)')


def entities(world: WorldData) -> np.ndarray:
    return np.frombuffer(world.entities, dtype=ENTITY_DTYPE)


def test_split_puts_each_zones_entities_in_its_group_and_registers_its_players(split_world):
    dsn, made = split_world

    async def read():
        found = await groups(dsn)
        worlds = []
        for group in found:
            pool = await create_pool(sibling_dsn(dsn, group.database))
            try:
                worlds.append(await WorldStore(pool).load_world())
                registered = await pool.fetch("SELECT id FROM player_registry ORDER BY id")
            finally:
                await pool.close()
            players = entities(worlds[-1])
            assert [r["id"] for r in registered] == players["id"][players["kind"] == Kind.player].tolist()
        return found, worlds
    found, worlds = asyncio.run(read())
    assert [g.zones for g in found] == [frozenset({1}), frozenset({2})] == [g.zones for g in made]
    assert group_of(found, frozenset({2})).database.endswith("_z2")
    whole = entities(two_zone_world(8))
    for group, world in zip(found, worlds):
        assert set(entities(world)["zone"].tolist()) == set(group.zones)
        assert world.zones == two_zone_world(8).zones
    assert sum(len(entities(w)) for w in worlds) == len(whole)


def test_split_refuses_groups_that_do_not_cover_every_zone_once(migrated_dsn):
    async def attempt(zone_sets):
        pool = await create_pool(migrated_dsn)
        try:
            await WorldStore(pool).seed(two_zone_world(4), replace=True)
        finally:
            await pool.close()
        await split(migrated_dsn, zone_sets)
    with pytest.raises(InputError, match="exactly once"):
        asyncio.run(attempt([frozenset({1})]))
    with pytest.raises(InputError, match="exactly once"):
        asyncio.run(attempt([frozenset({1, 2}), frozenset({2})]))


def test_a_lease_is_taken_once_until_it_expires_and_the_one_it_fenced_writes_nothing(split_world):
    dsn, made = split_world

    async def run():
        group_dsn = sibling_dsn(dsn, made[0].database)
        first, second = await create_pool(group_dsn), await create_pool(group_dsn)
        try:
            a, b = WorldStore(first), WorldStore(second)
            token = await a.take_lease("a", 0.3)
            assert token is not None and await b.take_lease("b", 0.3) is None
            assert await a.renew_lease(0.3)
            world = await a.load_world()
            await asyncio.sleep(0.4)                       # a pauses past its lease
            taken = await b.take_lease("b", 5)
            assert taken == token + 1
            assert not await a.renew_lease(0.3)           # a learns it lost the group
            write = tick_write(world.tick + 1, world.next_id, b"h" * 32, b"", b"", {}, [],
                               zones=world.zones, shard=ShardPart(b"", b"z" * 32, []))
            with pytest.raises(Fenced):
                await a.commit_tick(write)                 # and its commit in flight writes nothing
            assert (await b.stored_hash())[0] == world.tick
            await b.commit_tick(write)
            assert (await b.stored_hash())[0] == world.tick + 1
        finally:
            await first.close()
            await second.close()
    asyncio.run(run())


def test_peers_read_every_groups_tick_mail_and_registry(split_world):
    dsn, made = split_world

    async def run():
        peers = Peers(dsn, made, own=made[0])
        try:
            await asyncio.wait_for(peers.wait_committed(0), 5)
            assert await peers.sent(0) == {made[1]: b""}    # the other's; the tick it was split at sent nothing
            assert await peers.players([1000, 1001, 5, 123456], 1) == {1000, 1001}
            assert await peers.players([1000], 0) == set()  # registered at tick 0: not before it
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(peers.wait_committed(1), 0.3)
        finally:
            await peers.close()
    asyncio.run(run())


def test_a_groups_database_is_named_after_its_zones_runs_of_neighbours_as_ranges():
    from persistence.shards import ZoneGroup

    assert ZoneGroup.named(frozenset({2}), "w").database == "w_z2"
    assert ZoneGroup.named(frozenset({*range(1, 26), 30, 31, 40}), "w").database == "w_z1to25_30to31_40"
    with pytest.raises(InputError, match="longer than PostgreSQL allows"):
        ZoneGroup.named(frozenset(range(1, 80, 2)), "w")
