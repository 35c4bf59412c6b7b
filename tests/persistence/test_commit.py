"""commit_tick: the planned writes, header and log row in one transaction, never twice."""

from __future__ import annotations

import asyncio
import hashlib

import numpy as np
import pytest

from persistence.database import open_database
from persistence.errors import DatabaseError, DatabaseUnavailable, NoWorld, TickConflict
from pipeline.stages import plan
from pipeline.stages.plan import fragment_changes, tick_write
from schema._generated.layout import ENTITY_DTYPE, ENTITY_SIZE, Kind
from tests.persistence.worlds import generated_world
from vocabulary.hashing import world_hash
from vocabulary.records import pack_commands, pack_entity
from vocabulary.types import SqlCopy, SqlStatement, TickWrite, WorldData


@pytest.fixture
async def db(migrated_dsn):
    async with open_database(migrated_dsn) as database:
        yield database


def records_of(world: WorldData) -> np.ndarray:
    # A writable copy of the exact bytes: ndarray.copy() of this padded dtype
    # need not copy the padding, which the world hash covers.
    return np.frombuffer(bytearray(world.entities), dtype=ENTITY_DTYPE)


def next_tick(world: WorldData, records: np.ndarray, removed: list[int] = (), *,
              extra: list[bytes] = ()) -> tuple[WorldData, TickWrite]:
    """The world after a tick that leaves `records` (minus `removed`, plus `extra`), and
    the write plan makes for it, exactly as the live pipeline would."""
    before = {int(r["id"]): r.tobytes() for r in records_of(world)}
    after = {int(r["id"]): r.tobytes() for r in records if int(r["id"]) not in removed}
    after.update((int.from_bytes(e[:8], "little"), e) for e in extra)
    changed_ids = sorted(i for i in after if before.get(i) != after[i])
    changed = b"".join(after[i] for i in changed_ids)
    changes = fragment_changes(changed, b"".join(before.get(i, bytes(ENTITY_SIZE)) for i in changed_ids))
    new = WorldData(world.seed, world.tick + 1, max([world.next_id, *(i + 1 for i in after)]), world.zones,
                    b"".join(after[i] for i in sorted(after)))
    commands, text = pack_commands([{"player": 1, "seq": world.tick + 1, "op": "say", "text": "hi"}])
    return new, tick_write(new.tick, new.next_id, bytes.fromhex(world_hash(new)), commands, text, changes,
                           list(removed))


HEADER_AND_LOG = ("WITH header AS (UPDATE world SET tick = $1, next_id = $2, world_hash = $3 WHERE tick < $1 "
                  "RETURNING tick), log AS (INSERT INTO command_log (tick, commands, text, world_hash) "
                  "SELECT $1, $4, $5, $3 FROM header)")


def written(tick: int, next_id: int, *ctes: str, args: tuple[object, ...] = (),
            copies: tuple[SqlCopy, ...] = ()) -> TickWrite:
    """A hand-made tick: the header and log row plus `ctes` (their parameters from $6)."""
    sql = ", ".join([HEADER_AND_LOG, *ctes]) + " SELECT tick FROM header"
    return TickWrite(tick, next_id, b"h", b"", b"", SqlStatement(sql, (tick, next_id, b"h", b"", b"", *args)),
                     copies)


async def seeded(db, entities: int = 3_000) -> tuple[WorldData, np.ndarray]:
    world = generated_world(entities)
    await db.store().seed(world)
    return world, records_of(world)


async def test_small_writes_go_through_unnest_and_land_with_header_and_log(db):
    world, records = await seeded(db)
    living = np.flatnonzero(records["kind"] != Kind.item)[:10]
    records["x"][living] = (records["x"][living] + 1) % 16
    records["gold"][living[:3]] += 5
    records["hp"][living[3:6]] = records["max_hp"][living[3:6]]
    removed = [int(records["id"][50])]
    newcomer = pack_entity(id=world.next_id, kind=Kind.player, zone=7, x=1, y=1, hp=5, max_hp=9, name="new")
    new, write = next_tick(world, records, removed, extra=[newcomer])
    assert not write.copies
    store = db.store()
    await store.commit_tick(write)
    assert await store.load_world() == new
    assert await store.stored_hash() == (new.tick, write.world_hash)
    assert await store.last_log() == (new.tick, write.world_hash)


async def test_large_writes_go_through_copy(db, run_sql, monkeypatch):
    monkeypatch.setattr(plan, "UNNEST_MAX", 1_000)     # the world is smaller than the real threshold
    world, records = await seeded(db)
    moved = np.arange(1_500)
    records["y"][moved] = (records["y"][moved] + 3) % 16
    new, write = next_tick(world, records)
    assert write.copies
    store = db.store()
    await store.commit_tick(write)
    assert await store.load_world() == new
    # a second COPY tick on the same pool reuses the temp table (the statement emptied it)
    records["y"][moved] = (records["y"][moved] + 1) % 16
    newer, write = next_tick(new, records)
    await store.commit_tick(write)
    assert await store.load_world() == newer
    (row,) = run_sql(db.dsn, "SELECT count(*) AS n FROM command_log")
    assert row["n"] == 2


async def test_hand_written_statement_and_copy(db):
    world, records = await seeded(db, 200)
    ids = [int(i) for i in records["id"][:4]]
    store = db.store()
    copy = SqlCopy("entity_wealth", "tmp_wealth_test", ("id", "gold", "potions", "amount"),
                   [(i, 77, 0, 0) if records["kind"][k] != Kind.item else (i, 0, 0, 3) for k, i in enumerate(ids)])
    await store.commit_tick(written(
        world.tick + 1, world.next_id,
        "p AS (UPDATE entity_position SET x = 0 WHERE id = ANY($6::bigint[]))",
        "w AS (UPDATE entity_wealth w SET gold = t.gold, potions = t.potions, amount = t.amount "
        "FROM tmp_wealth_test t WHERE w.id = t.id)", args=(ids[:2],), copies=(copy,)))
    loaded = np.frombuffer((await store.load_world()).entities, dtype=ENTITY_DTYPE)
    assert loaded["x"][:2].tolist() == [0, 0]
    assert [int(v) for v in np.where(loaded["kind"][:4] == Kind.item, loaded["amount"][:4], loaded["gold"][:4])] \
        == [3 if k == Kind.item else 77 for k in loaded["kind"][:4]]


@pytest.mark.parametrize("bad", [
    "bad AS (UPDATE entity_wealth SET gold = gold / 0)",
    # a deferred foreign key fails only at COMMIT
    "bad AS (INSERT INTO entity_position (id, zone, x, y) VALUES (4611686018427387904, 1, 0, 0))",
])
async def test_a_failing_statement_stores_nothing_of_the_tick(db, bad):
    world, records = await seeded(db)
    records["x"][:5] = 0
    _, write = next_tick(world, records)
    sql = write.statement.sql.replace(" SELECT tick FROM header", f", {bad} SELECT tick FROM header")
    write = TickWrite(write.tick, write.next_id, write.world_hash, write.commands, write.text,
                      SqlStatement(sql, write.statement.args))
    store = db.store()
    with pytest.raises(DatabaseError, match=f"tick {write.tick}: .*nothing of the tick was stored"):
        await store.commit_tick(write)
    assert await store.load_world() == world
    assert await store.stored_hash() == (world.tick, bytes.fromhex(world_hash(world)))
    assert await store.last_log() is None


async def test_a_tick_is_never_applied_twice(db):
    world, records = await seeded(db)
    records["gold"][:3] += 1
    new, write = next_tick(world, records)
    store = db.store()
    await store.commit_tick(write)
    with pytest.raises(TickConflict, match="already committed"):
        await store.commit_tick(write)
    stale = written(world.tick, new.next_id)
    with pytest.raises(TickConflict, match="not after the stored world's tick"):
        await store.commit_tick(stale)
    assert await store.load_world() == new
    assert await store.log_count() == 1


async def test_a_tick_needs_a_world(db):
    with pytest.raises(NoWorld):
        await db.store().commit_tick(written(1, 1))


async def test_a_lost_connection_is_retryable_and_a_landed_retry_is_recognised(db, run_sql):
    world, records = await seeded(db, 100)
    store = db.store()
    records["x"][:2] = 3
    new, write = next_tick(world, records)
    # Kill the pool's connection: the commit fails as unavailable and stores nothing ...
    run_sql(db.dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    with pytest.raises(DatabaseUnavailable):
        await store.commit_tick(write)
    assert await store.log_count() == 0
    # ... and the runner's retry of the same write commits it once.
    await store.commit_tick(write)
    assert await store.load_world() == new
    # Had the lost commit landed, the retry finds its log row and applies nothing again.
    store._unsure_tick = write.tick
    await store.commit_tick(write)
    assert await store.log_count() == 1
    with pytest.raises(TickConflict):
        await store.commit_tick(write)


def test_world_hash_is_stored_as_sha256_bytes():
    world = generated_world(10)
    assert len(bytes.fromhex(world_hash(world))) == hashlib.sha256().digest_size
    assert len(world.entities) % ENTITY_SIZE == 0


async def test_recovery_racing_commits_never_sees_half_a_tick(db):
    """A server killed with its tick statement in flight is recovered while that statement commits:
    recovery reads header, world and log in one snapshot, so every tick is seen whole or not at all."""
    from pipeline.server.recovery import recover

    world, records = await seeded(db, entities=300)
    store = db.store()
    writes, state = [], world
    for _ in range(40):
        records["x"][:5] = (records["x"][:5] + 1) % 16
        state, write = next_tick(state, records)
        writes.append(write)

    async def commit_all() -> None:
        for write in writes:
            await store.commit_tick(write)

    committing = asyncio.ensure_future(commit_all())
    seen = set()
    while not committing.done():
        seen.add((await recover(store)).tick)      # RecoveryError if it ever saw half a tick
    await committing
    assert (await recover(store)).tick == world.tick + 40 and len(seen) > 1


async def test_a_cancelled_tick_statement_writes_nothing_and_is_retried(db):
    """An operator's pg_cancel_backend (or a deadlock, or a timeout) is a failure that passes:
    a StoreUnavailable the runner retries, not the end of the server."""
    from vocabulary.errors import StoreUnavailable

    world, records = await seeded(db, entities=300)
    store = db.store()
    records["x"][:5] = (records["x"][:5] + 1) % 16
    after, write = next_tick(world, records)
    async with db.pool.acquire() as locker:
        async with locker.transaction():
            await locker.execute("SELECT 1 FROM world FOR UPDATE")       # the tick statement will wait here
            committing = asyncio.ensure_future(store.commit_tick(write))
            for _ in range(100):
                await asyncio.sleep(0.02)
                waiting = await locker.fetchval("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                if waiting:
                    break
            assert await locker.fetchval("SELECT pg_cancel_backend($1)", waiting)
            with pytest.raises(StoreUnavailable, match="QueryCanceledError.*nothing was written"):
                await committing
    assert await store.load_world() == world                            # nothing of it landed
    await store.commit_tick(write)                                      # the retry
    assert await store.load_world() == after


async def test_a_second_server_fences_off_the_first(db, migrated_dsn):
    """Two servers on one database: the one that took the world last is the only one that writes."""
    from persistence.errors import Fenced

    world, records = await seeded(db, entities=300)
    first = db.store()
    await first.take_writer()
    records["x"][:5] = (records["x"][:5] + 1) % 16
    one, write_one = next_tick(world, records)
    await first.commit_tick(write_one)
    async with open_database(migrated_dsn) as other:
        second = other.store()
        await second.take_writer()                   # a restart, or a rival: the first is fenced off
        records["x"][:5] = (records["x"][:5] + 1) % 16
        two, write_two = next_tick(one, records)
        with pytest.raises(Fenced, match="another server has taken this world"):
            await first.commit_tick(write_two)
        assert await second.load_world() == one      # the fenced write left nothing
        await second.commit_tick(write_two)
        assert await second.load_world() == two
