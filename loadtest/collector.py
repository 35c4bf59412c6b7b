"""What a load-test run measures: per committed tick, per second, and over the run.

The pipeline calls `Collector.committed` for every tick once it is durable
(Pipeline's on_committed), with each stage's time; the driver reports what
it offered; the inbox counts what it dropped. Once a second `sample` closes
an interval of the timeline, with the CPU used meanwhile by this process
(the server) and by PostgreSQL's processes. Percentiles are exact, over
every tick, not read off histogram buckets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import psutil

from pipeline.context import TickContext
from pipeline.effects import most_sightings
from pipeline.server.runner import BESIDE, COMPUTE_STAGES, STAGES
from schema._generated.layout import EFFECT_DTYPE, EffectKind

SHORTEST_INTERVAL = 0.5     # seconds: a shorter last interval joins the one before it


@dataclass
class Totals:
    offered: int = 0
    committed: int = 0
    refused: int = 0
    dropped: int = 0
    rule_rejected: int = 0
    ticks: int = 0
    rows_written: int = 0

    def minus(self, other: Totals) -> Totals:
        return Totals(**{k: v - getattr(other, k) for k, v in vars(self).items()})


@dataclass
class _Tick:
    compute: float
    stages: dict[str, float]
    effects: int                # every effect of the tick
    most_sightings: int         # the most area-of-interest effects one observer got


class CpuMeter:
    """CPU used by a changing set of processes since the last reading, as percent of one core.

    `processes()` is asked anew at every reading, so that processes started
    meanwhile (a PostgreSQL backend for a new pool connection) count too,
    from their start; one that exits takes its last interval with it."""

    def __init__(self, processes: Callable[[], list[psutil.Process]]) -> None:
        self.processes = processes
        self._seen = self._times()
        self._at = time.monotonic()

    def _times(self) -> dict[int, float]:
        out = {}
        for p in self.processes():
            try:
                times = p.cpu_times()
            except psutil.Error:          # gone meanwhile
                continue
            out[p.pid] = times.user + times.system
        return out

    def read(self) -> float:
        now, times = time.monotonic(), self._times()
        used = sum(t - self._seen.get(pid, 0.0) for pid, t in times.items())
        percent = 100.0 * used / max(1e-9, now - self._at)
        self._seen, self._at = times, now
        return percent


def postgres_processes(pgdata: Path | None) -> Callable[[], list[psutil.Process]]:
    """The embedded server's postmaster and its backends (none for an external server)."""

    def find() -> list[psutil.Process]:
        if pgdata is None:
            return []
        try:
            postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
            return [postmaster, *postmaster.children(recursive=True)]
        except (OSError, ValueError, IndexError, psutil.Error):
            return []

    return find


def percentiles(values: list[float] | np.ndarray[Any, Any], *, scale: float = 1000.0) -> dict[str, float]:
    """mean, p50, p90, p99, max of `values` (seconds), in ms."""
    if len(values) == 0:
        return {"mean": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    a = np.asarray(values, dtype=np.float64) * scale
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"mean": round(float(a.mean()), 3), "p50": round(float(p50), 3), "p90": round(float(p90), 3),
            "p99": round(float(p99), 3), "max": round(float(a.max()), 3)}


@dataclass
class Collector:
    pgdata: Path | None = None
    totals: Totals = field(default_factory=Totals)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    ticks: list[_Tick] = field(default_factory=list)
    # tick -> (when it took its commands, when it had committed and sent its results), time.monotonic()
    tick_times: dict[int, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.started = time.monotonic()
        self._interval_start = 0
        self._previous = Totals()
        self._entry_base = (self._previous, 0)     # where the newest entry began: (totals, tick index)
        this = psutil.Process()
        self._server_cpu = CpuMeter(lambda: [this])
        self._postgres_cpu = CpuMeter(postgres_processes(self.pgdata))
        self.server_cpu_start = psutil.Process().cpu_times()
        self.cpu_percent: dict[str, list[float]] = {"server": [], "postgres": []}

    def committed(self, ctx: TickContext) -> None:
        assert ctx.result is not None, "a committed tick has its result"
        self.tick_times[ctx.tick] = (ctx.began, time.monotonic())
        t = self.totals
        t.ticks += 1
        t.committed += len(ctx.batch.commands) // 64
        t.refused += len(ctx.refusals)
        if ctx.write is not None:
            t.rows_written += ctx.write.rows
        effects = np.frombuffer(ctx.result.effects, dtype=EFFECT_DTYPE)
        t.rule_rejected += int(np.count_nonzero(effects["kind"] == EffectKind.rejected))
        compute = sum(ctx.timings.get(s, 0.0) for s in COMPUTE_STAGES)
        self.ticks.append(_Tick(compute, {s: ctx.timings.get(s, 0.0) for s in (*STAGES, *BESIDE)}, len(effects),
                                most_sightings(ctx.result)))

    def sample(self, *, last: bool = False) -> dict[str, Any]:
        """Close the interval since the last sample: one timeline entry. The `last`
        one (after the drain), when much shorter than an interval, is folded into
        the entry before it rather than plotted as a rate over a sliver of time."""
        now = time.monotonic()
        server, postgres = self._server_cpu.read(), self._postgres_cpu.read()
        if last and self.timeline and now - self.started - self.timeline[-1]["t"] < SHORTEST_INTERVAL:
            folded = self.timeline.pop()
            since = now - self.started - folded["t"]
            length = folded["t"] - (self.timeline[-1]["t"] if self.timeline else 0.0)
            server = (folded["cpu_percent"] * length + server * since) / (length + since)
            postgres = (folded["postgres_cpu_percent"] * length + postgres * since) / (length + since)
            for series in self.cpu_percent.values():
                series.pop()
            self._previous, self._interval_start = self._entry_base
        self._entry_base = (self._previous, self._interval_start)
        delta = self.totals.minus(self._previous)
        self._previous = Totals(**vars(self.totals))
        ticks = self.ticks[self._interval_start:]
        self._interval_start = len(self.ticks)
        self.cpu_percent["server"].append(server)
        self.cpu_percent["postgres"].append(postgres)
        tick_ms = percentiles([t.compute for t in ticks])
        entry = {"t": round(now - self.started, 3), "offered": delta.offered, "committed": delta.committed,
                 "refused": delta.refused, "dropped": delta.dropped, "ticks": delta.ticks,
                 "tick_ms": {k: tick_ms[k] for k in ("p50", "p90", "p99", "max")},
                 "stage_ms": {s: round(1000 * float(np.mean([t.stages[s] for t in ticks])), 3) if ticks else 0.0
                              for s in STAGES},
                 "rows": delta.rows_written, "cpu_percent": round(server, 1),
                 "postgres_cpu_percent": round(postgres, 1)}
        self.timeline.append(entry)
        return entry

    def summary(self, seconds: float, missed_ticks: int) -> dict[str, Any]:
        """The run's figures over its measured window (results.json "runs" entries, less the identity)."""
        t = self.totals
        cpu = psutil.Process().cpu_times()
        server_cpu = (cpu.user - self.server_cpu_start.user) + (cpu.system - self.server_cpu_start.system)
        return {
            "seconds": round(seconds, 3),
            "totals": {**vars(t), "missed_ticks": missed_ticks},
            "rates": {"offered_per_s": round(t.offered / seconds, 1),
                      "committed_per_s": round(t.committed / seconds, 1),
                      "rows_per_s": round(t.rows_written / seconds, 1)},
            "tick_ms": percentiles([x.compute for x in self.ticks]),
            "commit_ms": percentiles([x.stages["actuate"] for x in self.ticks]),
            "stage_ms": {s: {k: v for k, v in percentiles([x.stages[s] for x in self.ticks]).items()
                             if k in ("mean", "p50", "p99")} for s in (*STAGES, *BESIDE)},
            "effects": {"per_tick": percentiles([x.effects for x in self.ticks], scale=1.0),
                        "most_sightings_per_observer": max((x.most_sightings for x in self.ticks), default=0)},
            "cpu": {"server_percent": round(100 * server_cpu / seconds, 1), "server_cpu_s": round(server_cpu, 2),
                    "other_percent": {"postgres": round(float(np.mean(self.cpu_percent["postgres"])), 1)
                                      if self.cpu_percent["postgres"] else None}},
        }
