"""The database commands: `fluxworld db init|migrate|status`, `world load|dump|split`, `log export|prune`.

pipeline/__main__.py registers COMMANDS on its group. Every command takes
`--db embedded|DSN` (default embedded, or $FLUXWORLD_DB). Exit status: 2 for
bad input (a bad world file or --db value), 1 for any other failure, each
with a one-line "fluxworld: ..." message. Heavy imports (asyncpg, Alembic)
happen inside the commands, so other commands do not pay for them.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, Callable, Coroutine, TypeVar

import click

from vocabulary.errors import FluxworldError, InputError

EXIT_FAILED, EXIT_BAD_INPUT = 1, 2
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _run(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except FluxworldError as exc:
        click.echo(f"fluxworld: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT if isinstance(exc, InputError) else EXIT_FAILED)
    except Exception as exc:
        asyncpg = sys.modules.get("asyncpg")      # imported lazily, by the work, if at all
        if asyncpg is None or not isinstance(exc, asyncpg.PostgresError):
            raise
        detail = f" ({exc.detail})" if getattr(exc, "detail", None) else ""
        click.echo(f"fluxworld: PostgreSQL refused it: {exc.message}{detail} "
                   f"[SQLSTATE {exc.sqlstate}]", err=True)
        sys.exit(EXIT_FAILED)


def _check_db(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from .database import check_db_option

    try:
        return check_db_option(value)
    except InputError as exc:
        raise click.BadParameter(exc.reason) from None


def db_option(command: F) -> F:
    return click.option("--db", default="embedded", show_default=True, envvar="FLUXWORLD_DB",
                        callback=_check_db,
                        help="'embedded' (a private PostgreSQL under the state directory) or a "
                             "postgresql:// DSN of PostgreSQL 14+.")(command)


# ---------------------------------------------------------------- db

@click.group("db")
def db_group() -> None:
    """Create, migrate and inspect the database."""


@db_group.command("init")
@db_option
def db_init(db: str) -> None:
    """Start (creating it if need be) the embedded cluster or connect, create the database, migrate."""
    _run(_migrate(db, init=True))


@db_group.command("migrate")
@db_option
def db_migrate(db: str) -> None:
    """Apply any pending schema migrations."""
    _run(_migrate(db, init=False))


async def _migrate(db: str, *, init: bool) -> None:
    from .database import EMBEDDED, open_database
    from .embedded import pgdata_dir
    from .migrator import migrate, status

    async with open_database(db, pool_max=1) as database:
        before = await status(database.dsn)
        after = await migrate(database.dsn)
    if init and db == EMBEDDED:
        click.echo(f"embedded PostgreSQL data directory: {pgdata_dir()}")
    applied = ", ".join(before.pending) or "none"
    click.echo(f"schema at revision {after.current} (head); migrations applied: {applied}")


@db_group.command("status")
@db_option
def db_status(db: str) -> None:
    """Print the schema revision, the world's tick and hash, and the command log's size."""
    _run(_status(db))


async def _status(db: str) -> None:
    from .database import open_database, redact
    from .migrator import status

    async with open_database(db, pool_max=1) as database:
        click.echo(f"database: {redact(database.dsn)}")
        state = await status(database.dsn)
        pending = f"{len(state.pending)} pending: {', '.join(state.pending)}" if state.pending else "up to date"
        click.echo(f"schema: revision {state.current or 'none'} (head {state.head}, {pending})")
        if state.current is None:
            return
        store, checkpoints = database.store(), database.checkpoints()
        stored, last, rows = await store.stored_hash(), await store.last_log(), await store.log_count()
        first, snapshots = await checkpoints.first_logged(), await checkpoints.count()
        newest = await checkpoints.newest()
    click.echo(f"world: tick {stored[0]}, hash {stored[1].hex()}" if stored else "world: none stored")
    click.echo(f"log: {rows} rows" + (f", ticks {first}..{last[0]}, last hash {last[1].hex()}" if last else ""))
    click.echo(f"snapshots: {snapshots}" + (f", newest at tick {newest[0]}" if newest else ""))


# ---------------------------------------------------------------- world

@click.group("world")
def world_group() -> None:
    """Seed the database from a world file, or dump the stored world."""


@world_group.command("load")
@click.argument("world_file", metavar="WORLD", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--replace", is_flag=True, help="Replace a stored world (and empty the command log).")
@db_option
def world_load(world_file: Path, replace: bool, db: str) -> None:
    """Seed the database with the world in WORLD (a world file)."""
    _run(_world_load(world_file, replace, db))


async def _world_load(world_file: Path, replace: bool, db: str) -> None:
    from pipeline.formats.worldfile import load_world
    from schema._generated.layout import ENTITY_SIZE, ZONE_SIZE
    from vocabulary.hashing import world_hash

    from .database import open_database
    from .migrator import require_current

    world = load_world(world_file)   # bad input fails before any database work
    async with open_database(db) as database:
        await require_current(database.dsn)
        await database.store().seed(world, replace=replace)
    click.echo(f"stored the world of {world_file} at tick {world.tick}: {len(world.entities) // ENTITY_SIZE} entities, "
               f"{len(world.zones) // ZONE_SIZE} zones, hash {world_hash(world)}")


@world_group.command("dump")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@db_option
def world_dump(path: Path, db: str) -> None:
    """Write the stored world to PATH as a world file."""
    _run(_world_dump(path, db))


async def _world_dump(path: Path, db: str) -> None:
    from pipeline.formats.worldfile import dump_world
    from vocabulary.hashing import world_hash

    from .database import open_database
    from .migrator import require_current

    async with open_database(db) as database:
        await require_current(database.dsn)
        world = await database.store().load_world()
    dump_world(world, path)
    click.echo(f"wrote the world at tick {world.tick} to {path}: hash {world_hash(world)}")


@world_group.command("split")
@click.argument("groups", metavar="ZONES...", nargs=-1, required=True)
@click.option("--replace", is_flag=True, help="Split again from the stored world (what the groups ran is lost).")
@db_option
def world_split(groups: tuple[str, ...], replace: bool, db: str) -> None:
    """Split the stored world into zone groups, one database each, for shards (`serve --zones`).

    Each ZONES is a group's zones, separated by commas: `split 1 2` makes two
    groups of one zone; every zone of the world is in exactly one.
    """
    from .shards import parse_zones

    _run(_world_split([parse_zones(g) for g in groups], replace, db))


async def _world_split(zone_sets: list[frozenset[int]], replace: bool, db: str) -> None:
    from .database import open_database
    from .migrator import require_current
    from .shards import split

    async with open_database(db) as database:
        await require_current(database.dsn)
        made = await split(database.dsn, zone_sets, replace=replace, progress=click.echo)
    click.echo(f"split the world into {len(made)} zone groups: " + "; ".join(
        f"zones {g.name} in {g.database} (`fluxworld serve --zones {g.name}`)" for g in made))


# ---------------------------------------------------------------- log

@click.group("log")
def log_group() -> None:
    """The command log: every committed tick's batch."""


@log_group.command("export")
@click.option("--from", "--from-tick", "from_tick", type=click.IntRange(min=0),
              help="First tick (default: the first logged).")
@click.option("--to", "to_tick", type=click.IntRange(min=0), help="Last tick (default: the last logged).")
@click.option("--world", "world_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write, as a world file, the newest snapshot before the first tick (the seeded world, "
                   "unless the log was pruned); the batches then start right after it, so `fluxworld replay "
                   "WORLD PATH` replays them.")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@db_option
def log_export(from_tick: int | None, to_tick: int | None, world_path: Path | None, path: Path, db: str) -> None:
    """Write the logged batches of ticks FROM..TO to PATH as a batches file `fluxworld replay` reads.

    They replay from the snapshot before their first tick (the seeded world, unless the log was
    pruned): --world writes it."""
    if from_tick is not None and to_tick is not None and from_tick > to_tick:
        raise click.BadParameter(f"--from {from_tick} is after --to {to_tick}")
    _run(_log_export(from_tick, to_tick, world_path, path, db))


async def _log_export(from_tick: int | None, to_tick: int | None, world_path: Path | None, path: Path,
                      db: str) -> None:
    from pipeline.formats.batches import batch_line
    from pipeline.formats.worldfile import dump_world
    from vocabulary.hashing import world_hash

    from .database import open_database
    from .migrator import require_current
    from .store import BIGINT_MAX

    first = last = None
    count = 0
    async with open_database(db) as database:
        await require_current(database.dsn)
        if await database.store().zone_group():
            raise InputError("this is a zone group's database: its ticks also took what other groups sent, which a "
                             "batches file cannot carry; `fluxworld shards export` writes the whole world's log")
        checkpoints = database.checkpoints()
        first_logged = await checkpoints.first_logged()
        start = from_tick if from_tick is not None else first_logged
        before = BIGINT_MAX if start is None else start - 1
        base = await checkpoints.newest_at_or_below(before) if world_path else None
        low = from_tick
        if world_path is not None:
            if base is None:
                raise FluxworldError(
                    f"no snapshot at or below tick {before}, so no stored world to replay from; a database seeded "
                    f"before seeding wrote a snapshot replays its log from its first tick ({first_logged}) with the "
                    "world file it was seeded with: export without --world and replay with that world file")
            world, digest = base
            if world_hash(world) != digest.hex():
                raise FluxworldError(f"the snapshot of tick {world.tick} does not hash to its stored hash")
            low = world.tick + 1
        # Every log starts right after a snapshot (the seeded world's, or the one pruning kept): say which, so
        # that the batches are replayed from that world and not from another.
        since = await checkpoints.tick_at_or_below(before) if world_path is None and from_tick is None else None
        # Streamed line by line (a long session's log need not fit in memory),
        # each line exactly as pipeline.formats.batches.write_batches writes it.
        with open(path, "w", encoding="utf-8", newline="\n") as out:
            async for batch in database.store().read_log(low, to_tick):
                if first is None and base is not None and batch.tick != low:
                    raise FluxworldError(f"the log no longer holds tick {low} (pruned meanwhile?): export again")
                out.write(batch_line(batch) + "\n")
                first = batch.tick if first is None else first
                last, count = batch.tick, count + 1
    span = f"ticks {first}..{last}" if count else "no ticks"
    click.echo(f"wrote {count} batches ({span}) to {path}")
    if base is not None and world_path is not None:
        dump_world(base[0], world_path)
        click.echo(f"wrote the snapshot of tick {base[0].tick} to {world_path}: hash {base[1].hex()}")
    elif since is not None and count:
        click.echo(f"they replay from the world at tick {since}, the snapshot before them (the seeded world, "
                   "unless the log was pruned): `--world PATH` writes it as a world file")


@log_group.command("prune")
@click.option("--keep-ticks", type=click.IntRange(min=0), required=True, metavar="N",
              help="Keep the newest snapshot at least N ticks old and every tick after it.")
@db_option
def log_prune(keep_ticks: int, db: str) -> None:
    """Delete the command log up to the newest snapshot at least N ticks old, and older snapshots.

    History from that snapshot on stays replayable (`log export --world`); refuses when no snapshot
    is old enough."""
    _run(_log_prune(keep_ticks, db))


async def _log_prune(keep_ticks: int, db: str) -> None:
    from .database import open_database
    from .migrator import require_current

    async with open_database(db) as database:
        await require_current(database.dsn)
        pruned = await database.checkpoints().prune(keep_ticks)
    click.echo(pruned.describe())


COMMANDS = (db_group, world_group, log_group)
