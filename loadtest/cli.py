"""`fluxworld loadtest`: the command, its progress bar, its summary and its exit status.

Exit status: 0 when every run's checks pass, 1 when one fails (a command
unaccounted for, gold not conserved, the database not matching the world in
memory), 2 on bad options.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, Callable

import click
from tqdm import tqdm

from persistence.database import check_db_option
from vocabulary.errors import FluxworldError, InputError

from .options import DEFAULT_PLAYERS, DEFAULT_RATE, ENGINES, SCENARIOS, TRANSPORTS, LoadOptions

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


@click.command("loadtest")
@click.option("--scenario", type=click.Choice(SCENARIOS), default="mmo", show_default=True,
              help="mmo: players moving, fighting, chatting; crowd: all of them in one 21x21 square; "
                   "transfer: the keynote bank benchmark.")
@click.option("--players", type=click.IntRange(1), multiple=True,
              help="Online players (transfer: accounts). Default: mmo 10,000, crowd 2,000, transfer 100,000. "
                   "Repeat for a run at each count and a plot of how the tick scales (scaling.png).")
@click.option("--hz", type=click.FloatRange(min=0.1, max=1000), default=20.0, show_default=True,
              help="Ticks a second.")
@click.option("--duration", type=click.FloatRange(min=0.5), default=30.0, show_default=True,
              help="Seconds of offered load per run.")
@click.option("--transport", type=click.Choice(TRANSPORTS), default="inproc", show_default=True,
              help="inproc: commands handed to the tick loop in this process; xmpp: real clients via Prosody.")
@click.option("--engine", type=click.Choice(ENGINES), default="wasm", show_default=True,
              help="Reducer engine; both = a run with each, side by side in the report.")
@click.option("--db", default="embedded", show_default=True,
              help="embedded (its bench database, never the server's world), a postgresql:// DSN (whose stored "
                   "world each run replaces), or none.")
@click.option("--report", "report_dir", type=click.Path(path_type=Path, file_okay=False), default="loadtest-report",
              show_default=True, help="Directory for results.json and the plots.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Commands each player offers a second. Default: mmo 2, transfer 1.")
@click.option("--alpha", type=click.FloatRange(min=0), default=1.5, show_default=True,
              help="transfer: Zipf exponent for picking accounts (0 = uniform; 1.5 = the keynote's ~80% contention).")
@click.option("--queue-seconds", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True,
              help="The inbox queues this many seconds of offered load; what arrives beyond it is dropped.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the world and the command stream.")
@click.option("--no-baseline", is_flag=True, help="transfer: skip the one-transaction-per-command baseline.")
@click.option("--baseline-connections", default="4,16,64", show_default=True,
              help="transfer: connection counts the baseline tries; it reports the best.")
@click.option("--no-echo", is_flag=True, help="xmpp: skip the bare echo component.")
@click.option("--open-loop", is_flag=True,
              help="xmpp: each bot offers --rate commands a second (latency under a set load) instead of keeping "
                   "a window of commands outstanding (the rate the server sustains).")
@click.option("--updates-hz", type=click.FloatRange(min=0, min_open=True), default=None,
              help="xmpp: how often each bot hears from the world (default: the gateway's default for bots).")
@click.option("--bot-processes", type=click.IntRange(1), default=1, show_default=True,
              help="xmpp: worker processes the bots are spread over.")
@click.option("--xmpp-servers", type=click.IntRange(1), default=1, show_default=True,
              help="xmpp: run this many Prosody servers (one XMPP domain each, each with a gateway on the one "
                   "world) and spread the bots over them: Prosody is one thread, so one server is one core.")
@click.option("--flooders", type=click.IntRange(0), default=0, show_default=True,
              help="xmpp --open-loop: this many bots send as fast as they can; the world keeps serve's own rate "
                   "limit and inbox, and the latency reported is the other players'.")
@click.option("--console", is_flag=True,
              help="inproc: serve /metrics and the console during the run, watched by a process that reads every "
                   "live frame and asks for a panel and a scrape each second (the console's cost, side by side "
                   "with a run without).")
@click.option("--shards", type=click.IntRange(1), multiple=True,
              help="mmo: split the world's zones into this many contiguous groups, each ticked by a shard worker "
                   "process (barrier, mail, travel and gold across them). Default 1: one process. Repeat (--shards 1 "
                   "--shards 2) for a run of each at every player count, and in scaling.png and the summary the "
                   "players each carries at a tick p99 of half the period.")
@click.option("--no-shards-check", is_flag=True,
              help="--shards: skip `shards check` after the run (it replays every group's log in one process).")
def loadtest(scenario: str, players: tuple[int, ...], hz: float, duration: float, transport: str, engine: str, db: str,
             report_dir: Path, rate: float | None, alpha: float, queue_seconds: float, seed: int, no_baseline: bool,
             baseline_connections: str, no_echo: bool, open_loop: bool, updates_hz: float | None,
             bot_processes: int, xmpp_servers: int, flooders: int, console: bool, shards: tuple[int, ...],
             no_shards_check: bool) -> None:
    """Drive the server with simulated players and report throughput and latency."""
    from .report import summary_table, write_report
    from .run import failed_checks, run_loadtest

    try:
        if db != "none":
            check_db_option(db)
        counts = players or (DEFAULT_PLAYERS[scenario],)
        options = LoadOptions(scenario=scenario, players=counts[0], more_players=counts[1:], hz=hz,
                              duration=duration, transport=transport, engine=engine, db=db, report=report_dir,
                              rate=rate or DEFAULT_RATE[scenario], alpha=alpha, seed=seed, queue_seconds=queue_seconds,
                              baseline=not no_baseline, baseline_connections=_counts(baseline_connections),
                              echo=not no_echo, open_loop=open_loop, updates_hz=updates_hz,
                              bot_processes=bot_processes, xmpp_servers=xmpp_servers, flooders=flooders,
                              console=console,
                              shards=(shards or (1,))[0], more_shards=shards[1:],
                              shards_check=not no_shards_check)
        results = asyncio.run(run_loadtest(options, progress=_progress_bar(duration), note=_note))
    except FluxworldError as exc:
        click.echo(f"fluxworld: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT if isinstance(exc, InputError) else EXIT_FAILED)
    click.echo(summary_table(results))
    written = write_report(results, report_dir)
    click.echo(f"report: {', '.join(str(p) for p in written)}")
    problems = failed_checks(results)
    for line in problems:
        click.echo(f"fluxworld: {line}", err=True)
    sys.exit(EXIT_FAILED if problems else EXIT_OK)


def _counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise InputError(f"--baseline-connections must be a comma-separated list of counts, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise InputError(f"--baseline-connections must be counts of at least 1, got {text!r}")
    return counts


def _note(line: str) -> None:
    tqdm.write(line, file=sys.stderr)


def _progress_bar(duration: float) -> Callable[[str], Callable[[dict[str, Any]], None]]:
    """Per run, a bar over its seconds of load that shows the last second's figures."""

    def start(title: str) -> Callable[[dict[str, Any]], None]:
        bar = tqdm(total=round(duration), desc=title, unit="s", file=sys.stderr, disable=None,
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s {postfix}")

        def update(entry: dict[str, Any]) -> None:
            bar.set_postfix_str(f"committed {entry['committed']:,}/s, tick p99 {entry['tick_ms']['p99']:.1f} ms, "
                                f"dropped {entry['dropped']:,}", refresh=False)
            bar.update(min(entry["t"], duration) - bar.n)
            if bar.n >= duration - 0.05:
                bar.close()

        return update

    return start
