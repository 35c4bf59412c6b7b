"""The fluxworld command line. It only wires the parts together."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from tqdm import tqdm

from vocabulary.errors import CheckFailed, FluxworldError, InputError

from .engines.engine import ENGINES, default_engine

if TYPE_CHECKING:
    from .operate.http import HttpOptions

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _fail(exc: FluxworldError) -> None:
    click.echo(f"fluxworld: {exc}", err=True)
    sys.exit(EXIT_BAD_INPUT if isinstance(exc, InputError) else EXIT_FAILED)


class _Commands(click.Group):
    """The commands that live with their packages load only when used (`replay` never pays
    for PostgreSQL's or the load test's imports)."""

    ELSEWHERE = {"db": "persistence.cli:db_group", "world": "persistence.cli:world_group",
                 "log": "persistence.cli:log_group", "player": "pipeline.xmpp.cli:player_group",
                 "gateway": "pipeline.xmpp.cli:gateway",
                 "loadtest": "loadtest.cli:loadtest", "faults": "loadtest.faults:faults",
                 "timetravel": "loadtest.travelbench:timetravel_command",
                 "recoverytime": "loadtest.travelbench:recovery_command"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.ELSEWHERE])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.ELSEWHERE:
            return super().get_command(ctx, name)
        module, _, attr = self.ELSEWHERE[name].partition(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log what the engine and stages do.")
def cli(verbose: bool) -> None:
    """fluxworld: an MMO world server whose game rules are pure reducers."""
    from .operate.logs import setup_logging

    setup_logging(logging.INFO if verbose else logging.WARNING)    # in $FLUXWORLD_LOG_FORMAT (serve sets it)


@cli.command()
@click.option("--force", is_flag=True, help="Rebuild every step even if its inputs did not change.")
def build(force: bool) -> None:
    """Generate code from the schema, compile the reducers, precompile the module."""
    from .engines.wasm.build import build as run_build
    from .engines.wasm.wasmtime_host import WASMTIME_VERSION, capabilities

    try:
        run_build(say=lambda line: click.echo(line, err=True), force=force)
    except FluxworldError as exc:
        _fail(exc)
    caps = ", ".join(f"{name} {'yes' if ok else 'no'}" for name, ok in capabilities().items())
    click.echo(f"wasmtime {WASMTIME_VERSION}: {caps}", err=True)


@cli.command()
@click.argument("world", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("batches", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--engine", type=click.Choice([*ENGINES, "both"]), default=None,
              help="Reducer engine (default: $FLUXWORLD_ENGINE or wasm); both = run the two and compare.")
@click.option("--dump-state", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the final world as a world file.")
@click.option("--effects", "effects_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Write every effect as JSON Lines, one per effect, with its tick.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object at the end.")
@click.option("--db", default=None,
              help="Also commit every tick to PostgreSQL and check the world read back: a DSN (whose stored "
                   "world it replaces) or embedded (its own database, never the server's).")
@click.option("--zones", "zone_groups", multiple=True, metavar="Z1,Z2,...",
              help="Also print this zone group's zone hash after every tick (repeatable): what a shard of it "
                   "logs (docs/scale-out.md, `fluxworld shards export`).")
def replay(world: Path, batches: Path, engine: str | None, dump_state: Path | None,
           effects_path: Path | None, as_json: bool, db: str | None, zone_groups: tuple[str, ...]) -> None:
    """Run BATCHES against WORLD and print the world hash after every tick."""
    from persistence.shards import parse_zones

    from .formats.worldfile import dump_world
    from .replay import count_batches, replay_into
    from .replay import replay as run_replay

    engine = engine or default_engine()
    effects_out = effects_path.open("w") if effects_path else None
    try:
        zone_sets = tuple(parse_zones(group) for group in zone_groups)
        if zone_sets and db is not None:
            raise InputError("--zones prints zone hashes of a replay in memory: leave out --db")
        total = count_batches(batches) if sys.stderr.isatty() else None    # for the bar, only where one shows
        with tqdm(total=total, unit="tick", desc="replay", disable=None, file=sys.stderr) as bar:
            if db is None:
                report, view = asyncio.run(run_replay(world, batches, engine, effects_out=effects_out,
                                                      on_batch=lambda: bar.update(1), zone_sets=zone_sets))
            else:
                report, view = asyncio.run(replay_into(db, world, batches, engine, effects_out=effects_out,
                                                       on_batch=lambda: bar.update(1)))
    except FluxworldError as exc:
        _fail(exc)
    finally:
        if effects_out:
            effects_out.close()
    if dump_state:
        dump_world(view.to_world(), dump_state)
    if as_json:
        click.echo(json.dumps(report.as_json()))
    else:
        for offset, digest in enumerate(report.hashes):
            zones = "".join(f" zones {name} {hashes[offset]}" for name, hashes in report.zone_hashes.items())
            click.echo(f"{report.final_tick - report.ticks + 1 + offset} {digest}{zones}")
        click.echo(f"replayed {report.ticks} ticks ({report.commands} commands, {report.rejected} rejected) "
                   f"with {report.engine}: final tick {report.final_tick} hash {report.final_hash}", err=True)


@cli.command()
@click.option("--db", default="embedded", show_default=True,
              help="embedded (a private PostgreSQL under the state directory) or a postgresql:// DSN.")
@click.option("--engine", type=click.Choice(ENGINES), default=None, help="Reducer engine (default: wasm).")
@click.option("--hz", type=click.FloatRange(min=0.1, max=1000), default=20.0, show_default=True,
              help="Ticks a second.")
@click.option("--world", type=click.Path(path_type=Path, dir_okay=False),
              help="World file to seed an empty database with (default: a starter world).")
@click.option("--drive", type=click.Path(path_type=Path, dir_okay=False),
              help="Feed this batches file in as live input, each batch at its tick; stop at its end.")
@click.option("--ticks", type=click.IntRange(min=0), help="Stop after this many ticks.")
@click.option("--rate", type=float, default=20.0, show_default=True, help="Commands a second per player.")
@click.option("--burst", type=int, default=10, show_default=True, help="Commands a player may send at once.")
@click.option("--xmpp/--no-xmpp", default=None,
              help="Let players in over XMPP (default: yes, except with --drive).")
@click.option("--xmpp-server", metavar="HOST:PORT",
              help="An existing XMPP server's component port (default: start a private Prosody).")
@click.option("--component", default="world.fluxworld.localhost", show_default=True, help="The component's JID.")
@click.option("--secret-file", type=click.Path(path_type=Path, dir_okay=False),
              help="File holding the component's secret (with --xmpp-server).")
@click.option("--link", type=click.Path(path_type=Path, dir_okay=False),
              help="The socket XMPP gateways connect to (default: one in a fresh private directory).")
@click.option("--http", "http", metavar="HOST:PORT|off", envvar="FLUXWORLD_HTTP",
              help="Serve /metrics, /health/live and /health/ready there (default: 127.0.0.1:8020, or, if that "
                   "is taken, none); off: no HTTP.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="Log lines as text (default) or as one JSON object a line (also $FLUXWORLD_LOG_FORMAT).")
@click.option("--summary-every", type=click.FloatRange(min=0.1), default=10.0, show_default=True, metavar="SECONDS",
              help="How often the tick loop logs a summary of its timings.")
@click.option("--checkpoint-every", type=click.IntRange(min=0), default=None, metavar="TICKS",
              help="Write a snapshot of the world after every TICKS-th tick (default 1200, a minute at 20 Hz: time "
                   "travel replays at most this many ticks); 0: none.")
@click.option("--keep-ticks", type=click.IntRange(min=0), default=None, metavar="N",
              help="After each snapshot, prune the command log as `fluxworld log prune --keep-ticks N` does "
                   "(default: keep it all).")
@click.option("--zones", metavar="Z1,Z2,...",
              help="Run a shard: tick this zone group of a world split with `fluxworld world split` "
                   "(docs/scale-out.md), once no other shard's lease holds it.")
@click.option("--shards", type=click.IntRange(min=1), default=None, metavar="N",
              help="Serve the world as N zone groups on this machine: split it (once), run a shard for each, "
                   "one gateway over them all, and keep them running (docs/scale-out.md).")
@click.option("--lease", type=click.FloatRange(min=0.2, max=600), default=2.0, show_default=True, metavar="SECONDS",
              help="A shard's lease on its zone group: a dead shard's group waits this long for another.")
def serve(db: str, engine: str | None, hz: float, world: Path | None, drive: Path | None, ticks: int | None,
          rate: float, burst: int, xmpp: bool | None, xmpp_server: str | None, component: str,
          secret_file: Path | None, link: Path | None, http: str | None, log_format: str | None,
          summary_every: float, checkpoint_every: int | None, keep_ticks: int | None, zones: str | None,
          shards: int | None, lease: float) -> None:
    """Run the world server: the tick loop against PostgreSQL, players over XMPP."""
    from .operate import logs
    from .server.serve import ServeOptions, XmppOptions
    from .server.serve import serve as run_serve

    if log_format is not None:
        logs.use_format(log_format)
    as_json = logs.log_format() == "json"
    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger("pipeline").setLevel(logging.INFO)
    xmpp_options = None
    if xmpp or (xmpp is None and (drive is None or xmpp_server is not None)):
        from .xmpp.cli import host_port

        server = host_port(xmpp_server, "--xmpp-server") if xmpp_server is not None else None
        xmpp_options = XmppOptions(server=server, component=component, secret_file=secret_file)
    if keep_ticks is not None and checkpoint_every == 0:
        raise click.BadParameter("prunes behind snapshots: it needs --checkpoint-every above 0",
                                 param_hint="--keep-ticks")
    try:
        from persistence.shards import parse_zones

        zone_group = None if zones is None else parse_zones(zones)
        if zone_group is not None and shards is not None:
            raise InputError("--zones runs one shard, --shards all of them: give one")
        if zone_group is not None and xmpp_options is not None:
            raise InputError("a shard's players come through the world's one gateway (`fluxworld gateway "
                             "--world` each shard's --link): run shards with --no-xmpp and --link PATH, or --drive")
        http_options = _http_options(http)
        options = ServeOptions(db=db, engine=engine or default_engine(), hz=hz, world=world, drive=drive,
                               ticks=ticks, rate=rate, burst=burst, xmpp=xmpp_options, link=link, http=http_options,
                               summary_every=summary_every, keep_ticks=keep_ticks, zones=zone_group, lease=lease,
                               **({} if checkpoint_every is None else {"checkpoint_every": checkpoint_every}))
        if shards is not None:
            from .server.cluster import serve_shards

            tick = asyncio.run(serve_shards(options, shards))
        else:
            tick = asyncio.run(run_serve(options))
    except FluxworldError as exc:
        if as_json:     # the last words in the format the log collector reads
            logging.getLogger("pipeline.server.serve").error("fluxworld: %s", exc, extra={"event": "failed"})
            sys.exit(EXIT_BAD_INPUT if isinstance(exc, InputError) else EXIT_FAILED)
        _fail(exc)
    if as_json:
        logging.getLogger("pipeline.server.serve").info("stopped at tick %d", tick,
                                                        extra={"event": "stopped", "tick": tick})
    else:
        click.echo(f"stopped at tick {tick}", err=True)


def _http_options(http: str | None) -> HttpOptions | None:
    """--http: off, HOST:PORT (which must be free), or nothing (the default address, if it is free)."""
    from .operate.http import HttpOptions, parse_address

    if http is None:
        return HttpOptions(required=False)
    if http.strip().lower() == "off":
        return None
    host, port = parse_address(http.strip())
    return HttpOptions(host, port)


@cli.command()
@click.option("--db", default="embedded", show_default=True, help="embedded or a postgresql:// DSN.")
@click.option("--http", "http", metavar="HOST:PORT", default="127.0.0.1:8021", show_default=True,
              help="Where the console listens.")
def console(db: str, http: str) -> None:
    """Serve the browser console of a stored world, no world server running: its map, its entities,
    time travel through its command log. The page needs the admin token in the state directory."""
    from persistence.embedded import state_dir

    from .operate.http import parse_address
    from .operate.stored import serve_console

    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger("pipeline").setLevel(logging.INFO)
    try:
        host, port = parse_address(http.strip())
        asyncio.run(serve_console(db, host, port, state_dir()))
    except FluxworldError as exc:
        _fail(exc)


@cli.group()
def shards() -> None:
    """A world split into zone groups, one shard process each (docs/scale-out.md)."""


@shards.command("export")
@click.argument("world_path", metavar="WORLD", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("batches_path", metavar="BATCHES", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--db", default="embedded", show_default=True, help="The split world's database: embedded or a DSN.")
def shards_export(world_path: Path, batches_path: Path, db: str) -> None:
    """Write the world as it was split (WORLD) and every zone group's log merged, a batch a tick (BATCHES):
    `fluxworld replay WORLD BATCHES --zones G ...` gives each group's logged zone hashes."""
    from persistence.database import open_database

    from .formats.batches import batch_line
    from .formats.worldfile import dump_world
    from .server.shardcheck import read_shard_logs

    async def run() -> None:
        async with open_database(db) as database:
            logs = await read_shard_logs(database.dsn)
        dump_world(logs.origin, world_path)
        with open(batches_path, "w", encoding="utf-8", newline="\n") as out:
            for tick in range(logs.origin.tick + 1, logs.last_tick + 1):
                batch, missing = logs.batch(tick)
                if batch is None:
                    raise CheckFailed(f"tick {tick}: no log row in zone group(s) {', '.join(missing)}")
                out.write(batch_line(batch) + "\n")
        click.echo(f"wrote the world split at tick {logs.origin.tick} to {world_path} and ticks "
                   f"{logs.origin.tick + 1}..{logs.last_tick} of zone groups {'; '.join(g.name for g in logs.groups)} "
                   f"to {batches_path}: `fluxworld replay {world_path} {batches_path} "
                   + " ".join(f"--zones {g.name}" for g in logs.groups) + "`")

    try:
        asyncio.run(run())
    except FluxworldError as exc:
        _fail(exc)


@shards.command("check")
@click.option("--db", default="embedded", show_default=True, help="The split world's database: embedded or a DSN.")
@click.option("--engine", type=click.Choice(ENGINES), default=None, help="Reducer engine (default: wasm).")
def shards_check(db: str, engine: str | None) -> None:
    """Replay every zone group's log in one process: each tick's zone hashes must be the shards'."""
    from persistence.database import open_database

    from .server.shardcheck import check_shards

    async def run() -> None:
        async with open_database(db) as database:
            report = await check_shards(database.dsn, engine)
        click.echo(f"zone groups {'; '.join(report.groups)}: {report.ticks} ticks, {report.commands} commands, "
                   f"{report.compared} zone hashes compared up to tick {report.final_tick}")
        if report.whole_world:
            click.echo(report.whole_world)
        for problem in report.problems:
            click.echo(f"MISMATCH {problem}")
        if not report.ok:
            raise CheckFailed(f"{len(report.problems)} mismatch(es)")

    try:
        asyncio.run(run())
    except FluxworldError as exc:
        _fail(exc)


@cli.group()
def bench() -> None:
    """Benchmarks that print figures."""


@bench.command("reducers")
@click.option("--entities", type=int, multiple=True, default=[10_000], show_default=True,
              help="Entities in the world; repeat to compare sizes in one run.")
@click.option("--commands", type=int, default=1_000, show_default=True, help="Commands a tick.")
@click.option("--ticks", type=int, default=40, show_default=True, help="Ticks timed per engine.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--crowd", type=click.IntRange(min=0), default=0, show_default=True,
              help="Pack this many online players into one 21x21 square (at least 1,000 are online).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def bench_reducers(entities: tuple[int, ...], commands: int, ticks: int, seed: int, crowd: int,
                   as_json: bool) -> None:
    """Time project+transform per tick for both engines on the same world and batches.

    Prints one figures object per world size; with several sizes, a last
    object gives the WASM time of each size as a ratio to the first.
    """
    from .bench import run_reducer_bench

    runs = []
    for n in entities:
        figures = run_reducer_bench(entities=n, commands=commands, ticks=ticks, seed=seed, crowd=crowd,
                                    progress=lambda msg: click.echo(msg, err=True))
        runs.append(figures)
        if as_json:
            click.echo(json.dumps(figures))
        else:
            click.echo("  ".join(f"{key} {value}" for key, value in figures.items()))
    if len(runs) > 1:
        base = runs[0]
        scaling = {"wasm_scaling": {str(r["entities"]): round(r["wasm_ms"] / base["wasm_ms"], 2) for r in runs},
                   "relative_to": base["entities"]}
        click.echo(json.dumps(scaling) if as_json else f"wasm time relative to {base['entities']}: {scaling}")


@bench.command("pipeline")
@click.option("--db", default="embedded", show_default=True, help="embedded or a postgresql:// DSN.")
@click.option("--commands", type=int, multiple=True, default=[1_000, 10_000], show_default=True,
              help="Commands a tick; repeat for several runs.")
@click.option("--ticks", type=int, default=30, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--engine", type=click.Choice(ENGINES), default=None)
def bench_pipeline(db: str, commands: tuple[int, ...], ticks: int, seed: int, engine: str | None) -> None:
    """Committed ticks and rows a second, whole ticks back to back against PostgreSQL."""
    from .bench import run_pipeline_bench

    for n in commands:
        try:
            figures = asyncio.run(run_pipeline_bench(db=db, commands=n, ticks=ticks, seed=seed,
                                                     engine=engine or default_engine(),
                                                     progress=lambda msg: click.echo(msg, err=True)))
        except FluxworldError as exc:
            _fail(exc)
        click.echo(json.dumps(figures))


@bench.command("replay")
@click.option("--players", type=click.IntRange(min=1), default=2_000, show_default=True,
              help="Online players in the world (all in one 256x256 zone).")
@click.option("--ticks", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--commands", type=click.IntRange(min=1), default=1_000, show_default=True, help="Commands a tick.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--engine", type=click.Choice(ENGINES), default=None)
@click.option("--dir", "directory", type=click.Path(path_type=Path, file_okay=False),
              help="Where to write the world and batches files (default: a temporary directory).")
def bench_replay(players: int, ticks: int, commands: int, seed: int, engine: str | None,
                 directory: Path | None) -> None:
    """Replay without effects, end to end from the files: commands a second.

    Writes a world and a batches file (the crowd forms at the spawn point as
    the dead respawn there), then replays them as `fluxworld replay` does,
    timing the whole run and, apart, reading and checking the batches file.
    """
    import tempfile

    from .bench import run_replay_bench, write_replay_files

    with tempfile.TemporaryDirectory() as scratch:
        target = directory or Path(scratch)
        target.mkdir(parents=True, exist_ok=True)
        click.echo(f"writing {ticks} ticks of {commands} commands for {players} players to {target}", err=True)
        world_path, batches_path = write_replay_files(target, players=players, ticks=ticks, commands=commands,
                                                      seed=seed)
        try:
            figures = asyncio.run(run_replay_bench(world_path, batches_path, engine or default_engine()))
        except FluxworldError as exc:
            _fail(exc)
    click.echo(json.dumps(figures))


def main() -> None:
    cli(prog_name="fluxworld")


if __name__ == "__main__":
    main()
