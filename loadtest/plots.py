"""The load test's plots, as matplotlib Figure objects (never pyplot, so nothing
global is left behind in a long-lived process): which are drawn is in
`figures`; loadtest/report.py writes them beside results.json."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter

from pipeline.server.runner import STAGES

from .breakdown import PARTS
from .values import by_series, count_text, dig, num, run_labels

DPI = 100
PERCENTILES = ("p50", "p90", "p99", "max")
BASELINE_LABEL = "baseline (one transaction per command)"
ECHO_LABEL = "bare echo component"
TIME_AXIS = "time since start (s)"
# Stages get their own palette so they never look like a run's colour (runs use C0, C1, ...).
STAGE_COLORS = [colormaps["Set2"](i) for i in range(len(STAGES))]
PART_COLORS = [colormaps["Pastel1"](i) for i in range(len(PARTS))]


def figures(results: Mapping[str, Any]) -> dict[str, Figure]:
    """Every plot that has something to show, by file name."""
    runs: list[Mapping[str, Any]] = results.get("runs") or []
    out = {"throughput.png": _throughput(results, runs), "tick_latency.png": _tick_latency(results, runs),
           "stages.png": _stages(results, runs)}
    if len(runs) >= 2:
        out["engines.png"] = _engines(results, runs)
    if any(run.get("latency_ms") for run in runs):
        out["latency.png"] = _latency(results, runs)
    if any(dig(run, "ack_breakdown_ms", "parts") for run in runs):
        out["ack_breakdown.png"] = _ack_breakdown(results, runs)
    if len({run.get("players") for run in runs}) > 1:
        out["scaling.png"] = _scaling(results, runs)
    return out


def _throughput(results: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> Figure:
    figure, (ax,) = _figure(results, "Throughput")
    for i, (label, run) in enumerate(zip(run_labels(runs), runs)):
        timeline = run.get("timeline") or []
        if timeline:
            ax.plot(_times(timeline), _per_second(timeline, "offered"), ":", color=f"C{i}", label=f"{label} offered")
            ax.plot(_times(timeline), _per_second(timeline, "committed"), color=f"C{i}", label=f"{label} committed")
    baseline = dig(results, "baseline", "commands_per_s")
    if baseline is not None:
        ax.axhline(baseline, color="black", linestyle="--", label=BASELINE_LABEL)
    echo = dig(results, "echo", "round_trips_per_s")
    if echo is not None:
        ax.axhline(echo, color="grey", linestyle="--", label=ECHO_LABEL)
    _finish(ax, "offered and committed commands", "commands/s", empty=not any(r.get("timeline") for r in runs))
    ax.set_ylim(bottom=0)
    return figure


def _tick_latency(results: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> Figure:
    figure, axes = _figure(results, "Tick compute time (negotiate..plan)", rows=max(len(runs), 1), sharey=True)
    hz = dig(results, "options", "hz")
    for ax, label, run in zip(axes, run_labels(runs), runs):
        timeline = run.get("timeline") or []
        for q in PERCENTILES if timeline else ():
            ax.plot(_times(timeline), [num(dig(p, "tick_ms", q)) for p in timeline], label=q)
        if hz:
            ax.axhline(1000 / hz, color="red", linestyle="--", label="tick period")
        _finish(ax, f"{label}: tick time per interval", "ms", empty=not timeline)
    if not runs:
        _finish(axes[0], "tick time per interval", "ms", empty=True)
    return figure


def _stages(results: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> Figure:
    figure, axes = _figure(results, "Time per stage", rows=max(len(runs), 1), sharey=True)
    for ax, label, run in zip(axes, run_labels(runs), runs):
        timeline = run.get("timeline") or []
        if timeline:
            # A stack cannot have holes: an interval with no ticks adds nothing.
            ax.stackplot(_times(timeline), *([num(dig(p, "stage_ms", s), 0.0) for p in timeline] for s in STAGES),
                         labels=STAGES, colors=STAGE_COLORS)
        _finish(ax, f"{label}: mean ms per tick, stacked (actuate overlaps the next tick)", "ms per tick",
                empty=not timeline, stacked=True)
    if not runs:
        _finish(axes[0], "mean ms per tick, stacked", "ms per tick", empty=True)
    return figure


def _engines(results: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> Figure:
    figure, (rates, ticks, stages) = _figure(results, "Engines compared", cols=3, size=(15, 5))
    labels = run_labels(runs)
    _grouped_bars(rates, ["offered", "committed"],
                  [(label, f"C{i}", [num(dig(run, "rates", k)) for k in ("offered_per_s", "committed_per_s")])
                   for i, (label, run) in enumerate(zip(labels, runs))], "{:,.0f}")
    _finish(rates, "commands/s", "commands/s", xlabel=None)
    _grouped_bars(ticks, ["tick p50", "tick p99", "commit p99"],
                  [(label, f"C{i}", [num(dig(run, *k)) for k in
                                     (("tick_ms", "p50"), ("tick_ms", "p99"), ("commit_ms", "p99"))])
                   for i, (label, run) in enumerate(zip(labels, runs))], "{:,.1f}")
    _finish(ticks, "tick and commit time", "ms", xlabel=None)
    bottom = [0.0] * len(runs)
    for stage, color in zip(STAGES, STAGE_COLORS):
        means = [num(dig(run, "stage_ms", stage, "mean"), 0.0) for run in runs]
        stages.bar(labels, means, bottom=bottom, label=stage, color=color)
        bottom = [b + m for b, m in zip(bottom, means)]
    _finish(stages, "mean ms per tick, by stage", "ms per tick", xlabel=None, stacked=True)
    return figure


def _latency(results: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> Figure:
    figure, (ax,) = _figure(results, "Command-to-effect latency")
    series = [(label, f"C{i}", [num(dig(run, "latency_ms", q)) for q in PERCENTILES])
              for i, (label, run) in enumerate(zip(run_labels(runs), runs)) if run.get("latency_ms")]
    echo = dig(results, "echo", "latency_ms")
    if echo:
        series.append((ECHO_LABEL, "grey", [num(echo.get(q)) for q in PERCENTILES]))
    _grouped_bars(ax, list(PERCENTILES), series, "{:,.1f}")
    _finish(ax, "command to effect", "ms", xlabel="percentile")
    return figure


def _ack_breakdown(results: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> Figure:
    """Each part's mean over every ack and over the slowest 1%, stacked: each stack is that mean latency."""
    figure, (every, slowest) = _figure(results, "Where an acknowledgement's time goes", cols=2, sharey=True)
    timed = [(label, run) for label, run in zip(run_labels(runs), runs) if dig(run, "ack_breakdown_ms", "parts")]
    labels = [label for label, _ in timed]
    for ax, key, title in ((every, "mean", "mean over every command"),
                           (slowest, "slowest_1pct_mean", "mean over the slowest 1%")):
        bottom = [0.0] * len(timed)
        for part, color in zip(PARTS, PART_COLORS):
            values = [num(dig(run, "ack_breakdown_ms", "parts", part, key), 0.0) for _, run in timed]
            ax.bar(labels, values, bottom=bottom, label=part, color=color)
            bottom = [b + v for b, v in zip(bottom, values)]
        _finish(ax, title, "ms", xlabel=None, stacked=ax is slowest)
    return figure


def _scaling(results: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> Figure:
    """Against players, per engine and shard count: tick time beside a line through the origin from
    the fewest players (what linear cost would be) and the half-period limit capacity() reads; effects;
    and the CPU the runs took of the machine."""
    figure, (ticks, sights, cpu) = _figure(results, "Scaling", cols=3, size=(18, 5.5))
    hz = dig(results, "options", "hz")
    for i, (label, mine) in enumerate(by_series(runs).items()):
        players = [num(run.get("players")) for run in mine]
        for key, style in (("mean", "-o"), ("p99", "--o")):
            ticks.plot(players, [num(dig(run, "tick_ms", key)) for run in mine], style, color=f"C{i}",
                       label=f"{label} tick {key}")
        beside = [num(dig(run, "stage_ms", "sightings", "mean")) for run in mine]
        if any(not math.isnan(b) for b in beside):
            ticks.plot(players, beside, ":o", color=f"C{i}", label=f"{label} sightings mean (beside)")
        base = num(dig(mine[0], "tick_ms", "mean")) / max(players[0], 1)
        ticks.plot([0, players[-1]], [0, base * players[-1]], color="grey", linewidth=0.8,
                   label=f"{label}: linear from {count_text(players[0])}" if i == 0 else None)
        sights.plot(players, [num(dig(run, "effects", "per_tick", "mean")) for run in mine], "-o", color=f"C{i}",
                    label=f"{label} effects/tick")
        sights.plot(players, [num(dig(run, "effects", "most_sightings_per_observer")) for run in mine], "--o",
                    color=f"C{i}", label=f"{label} most sightings, one observer, one tick")
        server = [num(dig(run, "cpu", "server_percent")) for run in mine]
        postgres = [num(dig(run, "cpu", "other_percent", "postgres"), 0.0) for run in mine]
        cpu.plot(players, [s + p for s, p in zip(server, postgres)], "-o", color=f"C{i}",
                 label=f"{label} server(s) + PostgreSQL")
        cpu.plot(players, server, ":o", color=f"C{i}", label=f"{label} server(s)")
    if hz:
        ticks.axhline(500 / hz, color="red", linestyle="--", linewidth=0.8, label="half the tick period")
    sights.axhline(64, color="red", linestyle="--", linewidth=0.8, label="64: an area's old and new members")
    cores = dig(results, "machine", "cpus")
    if cores:
        cpu.axhline(100 * cores, color="red", linestyle="--", linewidth=0.8, label=f"the machine: {cores} cores")
    _finish(ticks, "tick time against players", "ms", xlabel="players")
    _finish(sights, "effects against players", "count", xlabel="players")
    _finish(cpu, "CPU against players (100 = one core)", "% of a core", xlabel="players")
    sights.set_yscale("log")
    cpu.set_ylim(bottom=0)
    return figure


def _figure(results: Mapping[str, Any], title: str, rows: int = 1, cols: int = 1,
            size: tuple[float, float] | None = None, sharey: bool = False) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=size or (10, 2 + 3.5 * rows), dpi=DPI, layout="constrained")
    axes = list(figure.subplots(rows, cols, squeeze=False, sharey=sharey).flat)
    options = results.get("options") or {}
    counts = [options.get("players"), *(options.get("more_players") or ())]
    hz = options.get("hz")
    figure.suptitle(f"{title} - {options.get('scenario', '?')} scenario, {options.get('transport', '?')}, "
                    f"{', '.join(count_text(n) for n in counts)} players, {'-' if hz is None else f'{hz:g}'} Hz")
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
        rates.append(num(point.get(key)) / seconds if seconds > 0 else math.nan)
    return rates
