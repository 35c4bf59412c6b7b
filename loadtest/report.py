"""The load test's report: a terminal summary, results.json and PNG plots.

`summary_table(results)` is what the terminal shows; `write_report(results,
directory)` writes results.json and the plots. results.json is the public
contract of the report, schema 1. Times are milliseconds; CPU percentages are
of ONE core (100 = one core busy); null marks a section that was not measured.

    {"schema": 1, "started_at": ISO 8601 str, "command_line": str,
     "options": {"scenario": "mmo"|"crowd"|"transfer", "players": int, "more_players": [int], "hz": float,
                 "duration": float,
                 "transport": "inproc"|"xmpp", "engine": "wasm"|"python"|"both", "db": str,
                 "rate": float, "alpha": float, "seed": int},
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
         "echo_ratio": float|null,                 # committed_per_s / echo round_trips_per_s
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
scaling.png when the runs have different player counts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter
from tabulate import tabulate

from pipeline.server.runner import BESIDE, STAGES

DPI = 100
PERCENTILES = ("p50", "p90", "p99", "max")
BASELINE_LABEL = "baseline (one transaction per command)"
ECHO_LABEL = "bare echo component"
TIME_AXIS = "time since start (s)"
# Stages get their own palette so they never look like a run's colour (runs use C0, C1, ...).
STAGE_COLORS = [colormaps["Set2"](i) for i in range(len(STAGES))]


def summary_table(results: dict[str, Any]) -> str:
    """One column per run, then a line each for the baseline and the echo when they ran."""
    runs: list[dict[str, Any]] = results.get("runs") or []
    rows: list[list[str]] = []

    def row(name: str, *path: str, fmt: Callable[[Any], str] | None = None) -> None:
        rows.append([name, *((fmt or _int)(_dig(run, *path)) for run in runs)])

    row("offered cmd/s", "rates", "offered_per_s", fmt=_rate)
    row("committed cmd/s", "rates", "committed_per_s", fmt=_rate)
    row("refused", "totals", "refused")
    row("dropped", "totals", "dropped")
    row("rule-rejected", "totals", "rule_rejected")
    rows.append(["ticks (missed)", *(f"{_int(_dig(r, 'totals', 'ticks'))} ({_int(_dig(r, 'totals', 'missed_ticks'))})"
                                     for r in runs)])
    rows.append(["tick p50/p90/p99/max ms", *(_ms_list(r.get("tick_ms"), PERCENTILES) for r in runs)])
    row("commit p99 ms", "commit_ms", "p99", fmt=_ms)
    for stage in STAGES:
        row(f"{stage} mean ms", "stage_ms", stage, "mean", fmt=_ms)
    for stage in BESIDE:
        row(f"{stage} mean ms (beside)", "stage_ms", stage, "mean", fmt=_ms)
    row("server CPU %", "cpu", "server_percent", fmt=_percent)
    for process in sorted({name for r in runs for name in _dig(r, "cpu", "other_percent") or {}}):
        row(f"{process} CPU %", "cpu", "other_percent", process, fmt=_percent)
    row("DB rows/s", "rates", "rows_per_s", fmt=_rate)
    row("effects/tick p50", "effects", "per_tick", "p50", fmt=_rate)
    row("max sightings/observer/tick", "effects", "most_sightings_per_observer")
    if any(r.get("stanzas_per_s") for r in runs):
        row("stanzas/s in (gateway)", "stanzas_per_s", "in", fmt=_rate)
        row("stanzas/s out (gateway)", "stanzas_per_s", "out", fmt=_rate)
        row("kB/s out (gateway)", "stanzas_per_s", "bytes_out", fmt=lambda v: _rate(v / 1000 if v else v))
    if any(r.get("latency_ms") for r in runs):
        rows.append(["latency p50/p99 ms", *(_ms_list(r.get("latency_ms"), ("p50", "p99")) for r in runs)])
    if any(r.get("flood") for r in runs):
        row("flooding bots", "flood", "bots")
        row("flood sent cmd/s", "flood", "sent_per_s", fmt=_rate)
        rows.append(["flood answered / refused", *(f"{_int(_dig(r, 'flood', 'answered'))} / "
                                                   f"{_int(_dig(r, 'flood', 'refused'))}" for r in runs)])
    if any(r.get("console") for r in runs):
        row("console frames/s (watched)", "console", "frames_per_s")
        row("console kB a frame", "console", "frame_kb")
        row("console ms/s on the loop", "console", "loop_ms_per_s")
    if any(r.get("baseline_ratio") is not None for r in runs):
        row("x baseline", "baseline_ratio", fmt=_ratio)
    if any(r.get("echo_ratio") is not None for r in runs):
        row("answered cmd/s (bots)", "rates", "answered_per_s", fmt=_rate)
        row("x echo", "echo_ratio", fmt=_ratio)
    row("commands accounted", "checks", "accounted", fmt=_yes)
    rows.append(["gold conserved", *(_gold(r.get("checks") or {}) for r in runs)])
    row("database = memory", "checks", "db_matches", fmt=_yes)
    if any(r.get("shards") for r in runs):
        row("shards", "shards", "count")
        row("refused elsewhere", "totals", "elsewhere")
        rows.append(["mail wait p50/p99 ms", *(_ms_list(_dig(r, "shards", "mail_ms"), ("p50", "p99")) for r in runs)])
        rows.append(["travel ticks p50/p99/max (between shards)",
                     *(_ms_list(_dig(r, "shards", "travel_ticks", "between_shards"), ("p50", "p99", "max"))
                       for r in runs)])
        rows.append(["travel ms p50/p99 (commit to commit)",
                     *(_ms_list(_dig(r, "shards", "travel_ticks", "between_shards_ms"), ("p50", "p99"))
                       for r in runs)])
        rows.append(["travels between / within shards",
                     *(f"{_int(_dig(r, 'shards', 'travel_ticks', 'between_shards', 'count'))} / "
                       f"{_int(_dig(r, 'shards', 'travel_ticks', 'within_shard', 'count'))}" for r in runs)])
        row("travels all arrived", "checks", "travels_arrive", fmt=_yes)
        rows.append(["shards check (s)", *(_shards_check(_dig(r, "shards", "shards_check")) for r in runs)])

    lines = [tabulate(rows, headers=["", *_labels(runs)], colalign=("left", *("right",) * len(runs)),
                      disable_numparse=True) if runs else "no runs"]
    for label, run in zip(_labels(runs), runs):
        for shard in _dig(run, "shards", "groups") or []:
            lines.append(_shard_line(label, shard))
    baseline, echo = results.get("baseline"), results.get("echo")
    if baseline:
        sweep = ", ".join(f"{_int(s.get('connections'))} -> {_rate(s.get('commands_per_s'))}"
                          for s in baseline.get("sweep") or [])
        lines.append(f"{BASELINE_LABEL}: {_rate(baseline.get('commands_per_s'))} cmd/s with "
                     f"{_int(baseline.get('connections'))} connections (best); sweep connections -> cmd/s: "
                     f"{sweep or '-'}")
    if echo:
        lines.append(f"{ECHO_LABEL}: {_rate(echo.get('round_trips_per_s'))} round trips/s with "
                     f"{_int(echo.get('bots'))} bots; latency p50/p99 "
                     f"{_ms_list(echo.get('latency_ms'), ('p50', 'p99'))} ms")
    return "\n".join(lines)


def write_report(results: dict[str, Any], directory: Path) -> list[Path]:
    """Write results.json and every plot that has something to show; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "results.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    written = [path]
    runs: list[dict[str, Any]] = results.get("runs") or []
    figures = {"throughput.png": _throughput(results, runs), "tick_latency.png": _tick_latency(results, runs),
               "stages.png": _stages(results, runs)}
    if len(runs) >= 2:
        figures["engines.png"] = _engines(results, runs)
    if any(run.get("latency_ms") for run in runs):
        figures["latency.png"] = _latency(results, runs)
    if len({run.get("players") for run in runs}) > 1:
        figures["scaling.png"] = _scaling(results, runs)
    for name, figure in figures.items():
        figure.savefig(directory / name, dpi=DPI)
        written.append(directory / name)
    return written


# --- plots: Figure objects only, never pyplot, so nothing global is left behind in a long-lived process ---

def _throughput(results: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> Figure:
    figure, (ax,) = _figure(results, "Throughput")
    for i, (label, run) in enumerate(zip(_labels(runs), runs)):
        timeline = run.get("timeline") or []
        if timeline:
            ax.plot(_times(timeline), _per_second(timeline, "offered"), ":", color=f"C{i}", label=f"{label} offered")
            ax.plot(_times(timeline), _per_second(timeline, "committed"), color=f"C{i}", label=f"{label} committed")
    baseline = _dig(results, "baseline", "commands_per_s")
    if baseline is not None:
        ax.axhline(baseline, color="black", linestyle="--", label=BASELINE_LABEL)
    echo = _dig(results, "echo", "round_trips_per_s")
    if echo is not None:
        ax.axhline(echo, color="grey", linestyle="--", label=ECHO_LABEL)
    _finish(ax, "offered and committed commands", "commands/s", empty=not any(r.get("timeline") for r in runs))
    ax.set_ylim(bottom=0)
    return figure


def _tick_latency(results: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> Figure:
    figure, axes = _figure(results, "Tick compute time (negotiate..plan)", rows=max(len(runs), 1), sharey=True)
    hz = _dig(results, "options", "hz")
    for ax, label, run in zip(axes, _labels(runs), runs):
        timeline = run.get("timeline") or []
        for q in PERCENTILES if timeline else ():
            ax.plot(_times(timeline), [_num(_dig(p, "tick_ms", q)) for p in timeline], label=q)
        if hz:
            ax.axhline(1000 / hz, color="red", linestyle="--", label="tick period")
        _finish(ax, f"{label}: tick time per interval", "ms", empty=not timeline)
    if not runs:
        _finish(axes[0], "tick time per interval", "ms", empty=True)
    return figure


def _stages(results: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> Figure:
    figure, axes = _figure(results, "Time per stage", rows=max(len(runs), 1), sharey=True)
    for ax, label, run in zip(axes, _labels(runs), runs):
        timeline = run.get("timeline") or []
        if timeline:
            # A stack cannot have holes: an interval with no ticks adds nothing.
            ax.stackplot(_times(timeline), *([_num(_dig(p, "stage_ms", s), 0.0) for p in timeline] for s in STAGES),
                         labels=STAGES, colors=STAGE_COLORS)
        _finish(ax, f"{label}: mean ms per tick, stacked (actuate overlaps the next tick)", "ms per tick",
                empty=not timeline, stacked=True)
    if not runs:
        _finish(axes[0], "mean ms per tick, stacked", "ms per tick", empty=True)
    return figure


def _engines(results: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> Figure:
    figure, (rates, ticks, stages) = _figure(results, "Engines compared", cols=3, size=(15, 5))
    labels = _labels(runs)
    _grouped_bars(rates, ["offered", "committed"],
                  [(label, f"C{i}", [_num(_dig(run, "rates", k)) for k in ("offered_per_s", "committed_per_s")])
                   for i, (label, run) in enumerate(zip(labels, runs))], "{:,.0f}")
    _finish(rates, "commands/s", "commands/s", xlabel=None)
    _grouped_bars(ticks, ["tick p50", "tick p99", "commit p99"],
                  [(label, f"C{i}", [_num(_dig(run, *k)) for k in
                                     (("tick_ms", "p50"), ("tick_ms", "p99"), ("commit_ms", "p99"))])
                   for i, (label, run) in enumerate(zip(labels, runs))], "{:,.1f}")
    _finish(ticks, "tick and commit time", "ms", xlabel=None)
    bottom = [0.0] * len(runs)
    for stage, color in zip(STAGES, STAGE_COLORS):
        means = [_num(_dig(run, "stage_ms", stage, "mean"), 0.0) for run in runs]
        stages.bar(labels, means, bottom=bottom, label=stage, color=color)
        bottom = [b + m for b, m in zip(bottom, means)]
    _finish(stages, "mean ms per tick, by stage", "ms per tick", xlabel=None, stacked=True)
    return figure


def _latency(results: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> Figure:
    figure, (ax,) = _figure(results, "Command-to-effect latency")
    series = [(label, f"C{i}", [_num(_dig(run, "latency_ms", q)) for q in PERCENTILES])
              for i, (label, run) in enumerate(zip(_labels(runs), runs)) if run.get("latency_ms")]
    echo = _dig(results, "echo", "latency_ms")
    if echo:
        series.append((ECHO_LABEL, "grey", [_num(echo.get(q)) for q in PERCENTILES]))
    _grouped_bars(ax, list(PERCENTILES), series, "{:,.1f}")
    _finish(ax, "command to effect", "ms", xlabel="percentile")
    return figure


def _figure(results: Mapping[str, Any], title: str, rows: int = 1, cols: int = 1,
            size: tuple[float, float] | None = None, sharey: bool = False) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=size or (10, 2 + 3.5 * rows), dpi=DPI, layout="constrained")
    axes = list(figure.subplots(rows, cols, squeeze=False, sharey=sharey).flat)
    options = results.get("options") or {}
    counts = [options.get("players"), *(options.get("more_players") or ())]
    hz = options.get("hz")
    figure.suptitle(f"{title} - {options.get('scenario', '?')} scenario, {options.get('transport', '?')}, "
                    f"{', '.join(_int(n) for n in counts)} players, {'-' if hz is None else f'{hz:g}'} Hz")
    return figure, axes


def _finish(ax: Axes, title: str, ylabel: str, empty: bool = False, xlabel: str | None = TIME_AXIS,
            stacked: bool = False) -> None:
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel == "commands/s":
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.grid(True, alpha=0.3)
    if empty:
        ax.text(0.5, 0.5, "no timeline recorded", transform=ax.transAxes, ha="center", va="center", color="grey")
    handles, labels = ax.get_legend_handles_labels()
    if stacked and handles:  # a stack fills the axes, so its legend goes outside, top to bottom like the stack
        ax.legend(handles[::-1], labels[::-1], fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    elif handles:  # legend() on an axes with no labelled artist only warns
        ax.legend(fontsize="small", loc="best")


def _grouped_bars(ax: Axes, groups: Sequence[str], series: Sequence[tuple[str, str, Sequence[float]]],
                  fmt: str) -> None:
    width = 0.8 / max(len(series), 1)
    for i, (label, color, values) in enumerate(series):
        offset = (i - (len(series) - 1) / 2) * width
        bars = ax.bar([g + offset for g in range(len(groups))], values, width, label=label, color=color)
        ax.bar_label(bars, labels=["" if math.isnan(v) else fmt.format(v) for v in values], fontsize="x-small")
    ax.set_xticks(range(len(groups)), groups)


def _times(timeline: Sequence[Mapping[str, Any]]) -> list[float]:
    return [float(point["t"]) for point in timeline]


def _per_second(timeline: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    # Counts are per interval and intervals are contiguous from t=0, so each lasts t - previous t.
    rates, previous = [], 0.0
    for point in timeline:
        seconds, previous = float(point["t"]) - previous, float(point["t"])
        rates.append(_num(point.get(key)) / seconds if seconds > 0 else math.nan)
    return rates


# --- reading and formatting values ---

def _dig(data: Any, *keys: str) -> Any:
    """data[k1][k2]..., or None when a level is missing or null (a section not measured)."""
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _num(value: Any, missing: float = math.nan) -> float:
    # NaN leaves a gap in a line plot; stacks and bar bottoms pass 0.0 instead.
    return missing if value is None else float(value)


def _scaling(results: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> Figure:
    """Tick time and sightings against players, per engine, beside a line through the origin
    from the fewest players: what linear cost would be."""
    figure, (ticks, sights) = _figure(results, "Scaling", cols=2, size=(14, 5))
    for i, engine in enumerate(dict.fromkeys(str(run.get("engine")) for run in runs)):
        mine = sorted((run for run in runs if str(run.get("engine")) == engine), key=lambda r: r.get("players") or 0)
        players = [_num(run.get("players")) for run in mine]
        for key, style in (("mean", "-o"), ("p99", "--o")):
            ticks.plot(players, [_num(_dig(run, "tick_ms", key)) for run in mine], style, color=f"C{i}",
                       label=f"{engine} tick {key}")
        beside = [_num(_dig(run, "stage_ms", "sightings", "mean")) for run in mine]
        if any(not math.isnan(b) for b in beside):
            ticks.plot(players, beside, ":o", color=f"C{i}", label=f"{engine} sightings mean (beside)")
        base = _num(_dig(mine[0], "tick_ms", "mean")) / max(players[0], 1)
        ticks.plot([0, players[-1]], [0, base * players[-1]], color="grey", linewidth=0.8,
                   label=f"{engine}: linear from {_int(players[0])}" if i == 0 else None)
        sights.plot(players, [_num(_dig(run, "effects", "per_tick", "mean")) for run in mine], "-o", color=f"C{i}",
                    label=f"{engine} effects/tick")
        sights.plot(players, [_num(_dig(run, "effects", "most_sightings_per_observer")) for run in mine], "--o",
                    color=f"C{i}", label=f"{engine} most sightings, one observer, one tick")
    sights.axhline(64, color="red", linestyle="--", linewidth=0.8, label="64: an area's old and new members")
    _finish(ticks, "tick time against players", "ms", xlabel="players")
    _finish(sights, "effects against players", "count", xlabel="players")
    sights.set_yscale("log")
    return figure


def _labels(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    labels = [str(run.get("engine") or f"run {i + 1}") for i, run in enumerate(runs)]
    if len({run.get("players") for run in runs}) > 1:
        labels = [f"{label} {_int(run.get('players'))}" for label, run in zip(labels, runs)]
    if len(set(labels)) < len(labels):  # the same engine twice: tell the runs apart
        labels = [f"{label} #{i + 1}" for i, label in enumerate(labels)]
    return labels


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _int(value: Any) -> str:
    return "-" if _missing(value) else f"{round(value):,}"


def _rate(value: Any) -> str:
    return "-" if _missing(value) else f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def _ms(value: Any) -> str:
    return "-" if _missing(value) else f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"


def _ms_list(section: Any, keys: Sequence[str]) -> str:
    return " / ".join(_ms(_dig(section, key)) for key in keys)


def _percent(value: Any) -> str:
    return "-" if _missing(value) else f"{value:.1f}"


def _ratio(value: Any) -> str:
    return "-" if _missing(value) else f"{value:.2f}x"


def _yes(value: Any) -> str:
    return "-" if value is None else "yes" if value else "NO"


def _shards_check(check: Any) -> str:
    if not check:
        return "-"
    return f"{'OK' if check.get('ok') else 'FAILED'} ({_ms(check.get('seconds'))})"


def _shard_line(label: str, shard: Mapping[str, Any]) -> str:
    return (f"{label} shard {shard.get('zones')}: {_int(shard.get('ticks'))} ticks "
            f"({_int(shard.get('missed_ticks'))} missed), tick p50/p99 {_ms_list(shard.get('tick_ms'), ('p50', 'p99'))}"
            f" ms, mail p50/p99 {_ms_list(shard.get('mail_ms'), ('p50', 'p99'))} ms; offered "
            f"{_int(shard.get('offered'))}, committed {_int(shard.get('committed'))}, refused "
            f"{_int(shard.get('refused'))} (elsewhere {_int(shard.get('elsewhere'))}), dropped "
            f"{_int(shard.get('dropped'))}; holds {_int(shard.get('held'))} players; CPU "
            f"{_percent(shard.get('server_percent'))}%")


def _gold(checks: Mapping[str, Any]) -> str:
    conserved = checks.get("gold_conserved")
    if conserved is False:  # show the drift, which is what one needs to start looking
        return f"NO ({_int(checks.get('gold_before'))} -> {_int(checks.get('gold_after'))})"
    return "n/a" if conserved is None else "yes"
