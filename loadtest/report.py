"""The load test's report: a terminal summary, results.json and PNG plots.

`summary_table(results)` is what the terminal shows; `write_report(results,
directory)` writes results.json and the plots. results.json is the public
contract of the report, schema 1. Times are milliseconds; CPU percentages are
of ONE core (100 = one core busy); null marks a section that was not measured.

    {"schema": 1, "started_at": ISO 8601 str, "command_line": str,
     "options": {"scenario": "mmo"|"crowd"|"transfer", "players": int, "more_players": [int], "hz": float,
                 "duration": float,
                 "transport": "inproc"|"xmpp", "engine": "wasm"|"python"|"both", "db": str,
                 "rate": float, "alpha": float, "seed": int, "shards": int, "more_shards": [int], ...},
     "machine": {"cpus": int, "python": str, "platform": str, "postgres": str|null},
     "runs": [{                                    # one per player count and engine
         "engine": str, "scenario": str, "transport": str, "players": int,
         "seconds": float,                         # the measured window
         "totals": {"offered", "committed", "refused", "dropped", "rule_rejected",
                    "ticks", "missed_ticks", "rows_written"},                  # ints
         "rates": {"offered_per_s", "committed_per_s", "rows_per_s",
                   "answered_per_s"},                # xmpp only: answers the bots got, on their clock
         "tick_ms": {"mean", "p50", "p90", "p99", "max"},    # compute: negotiate..plan
         "commit_ms": {"mean", "p50", "p90", "p99", "max"},  # actuate; overlaps the next tick's compute
         "stage_ms": {STAGE: {"mean", "p50", "p99"}},        # STAGE: pipeline.server.runner.STAGES, then BESIDE
                                                             # (sightings: on the engine's thread, off the path)
         "effects": {"per_tick": {"mean", "p50", "p90", "p99", "max"},   # effects a tick (counts)
                     "most_sightings_per_observer": int},  # the most enter/update/leave one observer got in a tick
         "cpu": {"server_percent": float, "server_cpu_s": float, "other_percent": {process: float}},
         "stanzas_per_s": {"in": float, "out": float, "bytes_out": float},   # xmpp only: the gateway's
         "latency_ms": {"count", "p50", "p90", "p99", "max"} | null,   # xmpp: command -> effect
         "checks": {"accounted": bool, "gold_conserved": bool|null,
                    "gold_before": int|null, "gold_after": int|null,
                    "db_matches": bool|null},          # the world read back from PostgreSQL hashes as in memory
         "timeline": [{                            # contiguous ~1 s intervals
             "t": float,                           # s since start at the interval's end
             "offered", "committed", "refused", "dropped", "ticks": int,   # counts within the interval
             "tick_ms": {"p50", "p90", "p99", "max"}, "stage_ms": {STAGE: float},  # mean ms per tick
             "rows": int, "cpu_percent": float}],
         "baseline_ratio": float|null,             # committed_per_s / baseline commands_per_s
         "echo_ratio": float|null,                 # answered_per_s / its own echo's round_trips_per_s
         "echo": {...} | absent,                   # xmpp: the echo with this run's bots, shaped as below
         "shards": {                               # --shards N only (loadtest/sharded.py); then totals are
                                                   # summed over shards (ticks, missed_ticks: the most any shard
                                                   # had; totals.elsewhere: refused as another shard's), tick_ms
                                                   # and commit_ms are per tick the slowest shard's, and checks
                                                   # add "shards_check": bool|null, "travels_arrive": bool
             "count": int,
             "groups": [{"zones": str, "database": str, "ticks", "missed_ticks", "start_tick", "final_tick": int,
                         "tick_ms", "mail_ms", "commit_ms": {"mean", "p50", "p90", "p99", "max"},
                         "offered", "committed", "refused", "elsewhere", "dropped", "rule_rejected",
                         "left_in_inbox", "held", "travels_left", "travels_arrived": int,
                         "server_percent": float, "db_matches": bool}],
             "mail_ms": {"mean", "p50", "p90", "p99", "max"},    # barrier and mail, before each tick (all shards)
             "travel_ticks": {"travels": int, "in_flight_at_end": int, "never_arrived": int,
                              "between_shards"|"within_shard"|"all": {"count": int, "p50", "p99": float|null,
                                                                       "max": int|null},  # arrival - leaving tick
                              "between_shards_ms": {"p50", "p99", "max"}|null},  # leaving tick's commit to
                                                                                 # the arrival tick's (wall clock)
             "shards_check": {"ok": bool, "ticks", "compared", "commands", "final_tick": int, "whole_world": str,
                              "problems": [str], "seconds": float} | null}}],   # null: --no-shards-check
     "baseline": {"connections": int, "commands_per_s": float, "committed": int, "rejected": int,
                  "seconds": float, "sweep": [{"connections": int, "commands_per_s": float}],
                  "latency_ms": {"p50", "p99", "max"}} | null,
     "echo": {"bots": int, "round_trips_per_s": float, "latency_ms": {"count", "p50", "p90", "p99", "max"},
              "timeline": [{"t", "sent", "answered"}]} | null}

Plots: throughput.png, tick_latency.png and stages.png always; engines.png
when there are two runs or more; latency.png when some run measured latency;
scaling.png when the runs have different player counts (loadtest/plots.py).
With several player counts the summary ends with the players each engine
and shard count carries at a tick p99 of half the period (values.capacity).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tabulate import tabulate

from pipeline.server.runner import BESIDE, STAGES

from .breakdown import PARTS
from .plots import BASELINE_LABEL, DPI, ECHO_LABEL, PERCENTILES, figures
from .values import (
    capacity,
    count_text,
    dig,
    ms_list,
    ms_text,
    percent_text,
    rate_text,
    ratio_text,
    run_labels,
    yes_text,
)


def summary_table(results: dict[str, Any]) -> str:
    """One column per run, then a line each for the baseline and the echo when they ran."""
    runs: list[dict[str, Any]] = results.get("runs") or []
    rows: list[list[str]] = []

    def row(name: str, *path: str, fmt: Callable[[Any], str] | None = None) -> None:
        rows.append([name, *((fmt or count_text)(dig(run, *path)) for run in runs)])

    row("offered cmd/s", "rates", "offered_per_s", fmt=rate_text)
    row("committed cmd/s", "rates", "committed_per_s", fmt=rate_text)
    row("refused", "totals", "refused")
    row("dropped", "totals", "dropped")
    row("rule-rejected", "totals", "rule_rejected")
    rows.append(["ticks (missed)", *(f"{count_text(dig(r, 'totals', 'ticks'))} "
                                     f"({count_text(dig(r, 'totals', 'missed_ticks'))})" for r in runs)])
    rows.append(["tick p50/p90/p99/max ms", *(ms_list(r.get("tick_ms"), PERCENTILES) for r in runs)])
    row("commit p99 ms", "commit_ms", "p99", fmt=ms_text)
    for stage in STAGES:
        row(f"{stage} mean ms", "stage_ms", stage, "mean", fmt=ms_text)
    for stage in BESIDE:
        row(f"{stage} mean ms (beside)", "stage_ms", stage, "mean", fmt=ms_text)
    row("server CPU %", "cpu", "server_percent", fmt=percent_text)
    for process in sorted({name for r in runs for name in dig(r, "cpu", "other_percent") or {}}):
        row(f"{process} CPU %", "cpu", "other_percent", process, fmt=percent_text)
    row("DB rows/s", "rates", "rows_per_s", fmt=rate_text)
    row("effects/tick p50", "effects", "per_tick", "p50", fmt=rate_text)
    row("max sightings/observer/tick", "effects", "most_sightings_per_observer")
    if any(r.get("stanzas_per_s") for r in runs):
        row("stanzas/s in (gateway)", "stanzas_per_s", "in", fmt=rate_text)
        row("stanzas/s out (gateway)", "stanzas_per_s", "out", fmt=rate_text)
        row("kB/s out (gateway)", "stanzas_per_s", "bytes_out", fmt=lambda v: rate_text(v / 1000 if v else v))
    if any(r.get("latency_ms") for r in runs):
        rows.append(["latency p50/p99 ms", *(ms_list(r.get("latency_ms"), ("p50", "p99")) for r in runs)])
    if any(dig(r, "ack_breakdown_ms", "parts") for r in runs):
        for part in PARTS:
            rows.append([f"  {part} p50/p99 ms", *(ms_list(dig(r, "ack_breakdown_ms", "parts", part), ("p50", "p99"))
                                                    for r in runs)])
        rows.append(["  the slowest 1%, each part ms", *(" / ".join(
            ms_text(dig(r, "ack_breakdown_ms", "parts", part, "slowest_1pct_mean")) for part in PARTS) for r in runs)])
    if any(r.get("flood") for r in runs):
        row("flooding bots", "flood", "bots")
        row("flood sent cmd/s", "flood", "sent_per_s", fmt=rate_text)
        rows.append(["flood answered / refused", *(f"{count_text(dig(r, 'flood', 'answered'))} / "
                                                   f"{count_text(dig(r, 'flood', 'refused'))}" for r in runs)])
    if any(r.get("console") for r in runs):
        row("console frames/s (watched)", "console", "frames_per_s")
        row("console kB a frame", "console", "frame_kb")
        row("console ms/s on the loop", "console", "loop_ms_per_s")
    if any(r.get("baseline_ratio") is not None for r in runs):
        row("x baseline", "baseline_ratio", fmt=ratio_text)
    if any(r.get("echo_ratio") is not None for r in runs):
        row("answered cmd/s (bots)", "rates", "answered_per_s", fmt=rate_text)
        row("x echo", "echo_ratio", fmt=ratio_text)
        rows.append(["echo latency p50/p99 ms", *(ms_list(dig(r, "echo", "latency_ms"), ("p50", "p99")) for r in runs)])
    row("commands accounted", "checks", "accounted", fmt=yes_text)
    rows.append(["gold conserved", *(_gold(r.get("checks") or {}) for r in runs)])
    row("database = memory", "checks", "db_matches", fmt=yes_text)
    if any(r.get("shards") for r in runs):
        row("shards", "shards", "count")
        row("refused elsewhere", "totals", "elsewhere")
        rows.append(["mail wait p50/p99 ms", *(ms_list(dig(r, "shards", "mail_ms"), ("p50", "p99")) for r in runs)])
        rows.append(["travel ticks p50/p99/max (between shards)",
                     *(ms_list(dig(r, "shards", "travel_ticks", "between_shards"), ("p50", "p99", "max"))
                       for r in runs)])
        rows.append(["travel ms p50/p99 (commit to commit)",
                     *(ms_list(dig(r, "shards", "travel_ticks", "between_shards_ms"), ("p50", "p99"))
                       for r in runs)])
        rows.append(["travels between / within shards",
                     *(f"{count_text(dig(r, 'shards', 'travel_ticks', 'between_shards', 'count'))} / "
                       f"{count_text(dig(r, 'shards', 'travel_ticks', 'within_shard', 'count'))}" for r in runs)])
        row("travels all arrived", "checks", "travels_arrive", fmt=yes_text)
        rows.append(["shards check (s)", *(_shards_check(dig(r, "shards", "shards_check")) for r in runs)])

    lines = [tabulate(rows, headers=["", *run_labels(runs)], colalign=("left", *("right",) * len(runs)),
                      disable_numparse=True) if runs else "no runs"]
    for label, run in zip(run_labels(runs), runs):
        for shard in dig(run, "shards", "groups") or []:
            lines.append(_shard_line(label, shard))
    if len({run.get("players") for run in runs}) > 1 and results.get("options", {}).get("hz"):
        lines.append(_capacity_line(runs, 500 / results["options"]["hz"]))
    baseline, echo = results.get("baseline"), results.get("echo")
    if baseline:
        sweep = ", ".join(f"{count_text(s.get('connections'))} -> {rate_text(s.get('commands_per_s'))}"
                          for s in baseline.get("sweep") or [])
        lines.append(f"{BASELINE_LABEL}: {rate_text(baseline.get('commands_per_s'))} cmd/s with "
                     f"{count_text(baseline.get('connections'))} connections (best); sweep connections -> cmd/s: "
                     f"{sweep or '-'}")
    if echo:
        lines.append(f"{ECHO_LABEL}: {rate_text(echo.get('round_trips_per_s'))} round trips/s with "
                     f"{count_text(echo.get('bots'))} bots; latency p50/p99 "
                     f"{ms_list(echo.get('latency_ms'), ('p50', 'p99'))} ms")
    return "\n".join(lines)


def write_report(results: dict[str, Any], directory: Path) -> list[Path]:
    """Write results.json and every plot that has something to show; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "results.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    written = [path]
    for name, figure in figures(results).items():
        figure.savefig(directory / name, dpi=DPI)
        written.append(directory / name)
    return written


def _shards_check(check: Any) -> str:
    if not check:
        return "-"
    return f"{'OK' if check.get('ok') else 'FAILED'} ({ms_text(check.get('seconds'))})"


def _shard_line(label: str, shard: Mapping[str, Any]) -> str:
    return (f"{label} shard {shard.get('zones')}: {count_text(shard.get('ticks'))} ticks "
            f"({count_text(shard.get('missed_ticks'))} missed), tick p50/p99 "
            f"{ms_list(shard.get('tick_ms'), ('p50', 'p99'))}"
            f" ms, mail p50/p99 {ms_list(shard.get('mail_ms'), ('p50', 'p99'))} ms; offered "
            f"{count_text(shard.get('offered'))}, committed {count_text(shard.get('committed'))}, refused "
            f"{count_text(shard.get('refused'))} (elsewhere {count_text(shard.get('elsewhere'))}), dropped "
            f"{count_text(shard.get('dropped'))}; holds {count_text(shard.get('held'))} players; CPU "
            f"{percent_text(shard.get('server_percent'))}%")


def _gold(checks: Mapping[str, Any]) -> str:
    conserved = checks.get("gold_conserved")
    if conserved is False:  # show the drift, which is what one needs to start looking
        return f"NO ({count_text(checks.get('gold_before'))} -> {count_text(checks.get('gold_after'))})"
    return "n/a" if conserved is None else "yes"


def _capacity_line(runs: list[dict[str, Any]], limit_ms: float) -> str:
    """Players each engine and shard count carries at a tick p99 of half the period, and as a ratio
    to the first series (one process, when it ran): what --shards is for."""
    found = capacity(runs, limit_ms)
    first, first_bound = next(iter(found.values()))
    parts = []
    for i, (label, (players, bound)) in enumerate(found.items()):
        text = "-" if players is None else {"below": "under ", "above": "over "}.get(bound, "") + count_text(players)
        if i and players is not None and first and not bound and not first_bound:
            text += f" ({players / first:.2f}x)"
        parts.append(f"{label} {text}")
    return f"players at tick p99 {limit_ms:g} ms (half the period), interpolated: {'; '.join(parts)}"
