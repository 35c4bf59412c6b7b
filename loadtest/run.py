"""`fluxworld loadtest`: run the scenario once per engine, then the comparison, into one results dict.

In order: one run per engine (--engine both: wasm, then python, each on a
freshly seeded world and the same command stream); for transfer with a
database, the same-run baseline (one asyncpg transaction per command, same
database, same stream); for xmpp, the bare echo component through the same
Prosody. Ratios to the baseline and to the echo are filled in at the end.
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
from contextlib import AsyncExitStack
from dataclasses import asdict
from typing import Any, Callable

from persistence.database import BENCH_DATABASE, Database, connect, open_database
from persistence.migrator import migrate

from .inproc import run_inproc
from .options import LoadOptions

Progress = Callable[[dict[str, Any]], None]
Note = Callable[[str], None]


async def run_loadtest(options: LoadOptions, *, progress: Callable[[str], Progress], note: Note) -> dict[str, Any]:
    """`progress(title)` gives a callback that sees each timeline entry of one run; `note` prints a line."""
    options.check()
    results: dict[str, Any] = {
        "schema": 1,
        "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command_line": " ".join(["fluxworld", *sys.argv[1:]]),
        "options": {k: (str(v) if k == "report" else v) for k, v in asdict(options).items()},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "postgres": None},
        "runs": [], "baseline": None, "echo": None,
    }
    async with AsyncExitStack() as stack:
        database: Database | None = None
        if options.db != "none":
            database = await stack.enter_async_context(open_database(options.db, embedded_database=BENCH_DATABASE))
            await migrate(database.dsn)
            results["machine"]["postgres"] = await _server_version(database.dsn)
        for one in options.runs():
            title = f"{one.scenario} {one.transport} {one.engine} {one.players:,} players"
            if one.transport == "xmpp":
                from .xmpp import run_xmpp

                run = await run_xmpp(one, one.engine, database, progress(title), note)
                results["echo"] = results["echo"] or run.get("echo")     # each run keeps its own too
            elif one.shards > 1:
                from .sharded import run_sharded

                title = f"{one.scenario} {one.shards} shards {one.engine} {one.players:,} players"
                run = await run_sharded(one, one.engine, database, progress(title), note)
            else:
                run = await run_inproc(one, one.engine, database, progress(title))
            results["runs"].append({**run, "players": one.players})
        if options.scenario == "transfer" and options.baseline and database is not None:
            results["baseline"] = await _baseline(options, database, note)
    _ratios(results)
    return results


async def _server_version(dsn: str) -> str:
    conn = await connect(dsn)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


async def _baseline(options: LoadOptions, database: Database, note: Note) -> dict[str, Any]:
    from .baseline import run_baseline
    from .scenarios import INITIAL_GOLD
    from .transfers import TransferStream

    note(f"baseline: one transaction per command, {options.players:,} accounts, alpha {options.alpha:g}")
    return await run_baseline(database.dsn, accounts=options.players, initial_balance=INITIAL_GOLD,
                              stream=TransferStream(options.players, options.alpha, options.seed),
                              seconds=options.duration, connections=options.baseline_connections,
                              sweep_seconds=min(2.0, options.duration / 4), progress=note)


def _ratios(results: dict[str, Any]) -> None:
    baseline = (results["baseline"] or {}).get("commands_per_s")
    for run in results["runs"]:
        rate = run["rates"]["committed_per_s"]
        run["baseline_ratio"] = round(rate / baseline, 2) if baseline else None
        # Over XMPP both sides are counted the same way: answers the bots got, on the bots' clock.
        answered = run["rates"].get("answered_per_s", rate)
        echo = (run.get("echo") or results["echo"] or {}).get("round_trips_per_s")    # its own bots' echo
        run["echo_ratio"] = round(answered / echo, 3) if echo else None


def failed_checks(results: dict[str, Any]) -> list[str]:
    """What went wrong, as lines; empty when every check of every run passed."""
    out = []
    for run in results["runs"]:
        for check, ok in run["checks"].items():
            if check in ("accounted", "gold_conserved", "db_matches", "shards_check", "travels_arrive") and ok is False:
                out.append(f"{run['engine']}: check {check} failed ({run['checks']})")
    if results["baseline"] and results["baseline"].get("balance_conserved") is False:
        out.append("baseline: balances not conserved")
    return out
