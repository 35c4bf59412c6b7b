"""Reading results.json values and writing them for people: shared by the summary
(loadtest/report.py) and the plots (loadtest/plots.py)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


def dig(data: Any, *keys: str) -> Any:
    """data[k1][k2]..., or None when a level is missing or null (a section not measured)."""
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def num(value: Any, missing: float = math.nan) -> float:
    # NaN leaves a gap in a line plot; stacks and bar bottoms pass 0.0 instead.
    return missing if value is None else float(value)


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def shard_count(run: Mapping[str, Any]) -> int:
    """The shard processes a run ticked the world in (1: one process)."""
    return int(dig(run, "shards", "count") or 1)


def series_label(run: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> str:
    """The engine, and the shard count when the runs have more than one."""
    engine = str(run.get("engine") or "?")
    if len({shard_count(r) for r in runs}) == 1:
        return engine
    n = shard_count(run)
    return f"{engine} {'1 process' if n == 1 else f'{n} shards'}"


def by_series(runs: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """The runs of each engine and shard count, by player count."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        out.setdefault(series_label(run, runs), []).append(run)
    return {label: sorted(mine, key=lambda r: r.get("players") or 0) for label, mine in out.items()}


def capacity(runs: Sequence[Mapping[str, Any]], limit_ms: float) -> dict[str, tuple[float | None, str]]:
    """Per series, the players at which its tick p99 reaches `limit_ms`, interpolated between the
    two runs either side, with how it was found: "", "below" (every run was over it, the fewest
    players given) or "above" (none was, the most given)."""
    out: dict[str, tuple[float | None, str]] = {}
    for label, mine in by_series(runs).items():
        points = [(num(run.get("players")), num(dig(run, "tick_ms", "p99"))) for run in mine]
        points = [(n, p99) for n, p99 in points if not math.isnan(p99)]
        if not points:
            out[label] = (None, "")
        elif points[0][1] > limit_ms:
            out[label] = (points[0][0], "below")
        else:
            crossing = next(((a, b) for a, b in zip(points, points[1:]) if a[1] <= limit_ms < b[1]), None)
            if crossing is None:
                out[label] = (points[-1][0], "above")
            else:
                (n0, t0), (n1, t1) = crossing
                out[label] = (n0 + (n1 - n0) * (limit_ms - t0) / (t1 - t0), "")
    return out


def run_labels(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    out = [series_label(run, runs) for run in runs]
    if len({run.get("players") for run in runs}) > 1:
        out = [f"{label} {count_text(run.get('players'))}" for label, run in zip(out, runs)]
    if len(set(out)) < len(out):  # the same engine twice: tell the runs apart
        out = [f"{label} #{i + 1}" for i, label in enumerate(out)]
    return out


def count_text(value: Any) -> str:
    return "-" if missing(value) else f"{round(value):,}"


def rate_text(value: Any) -> str:
    return "-" if missing(value) else f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def ms_text(value: Any) -> str:
    return "-" if missing(value) else f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"


def ms_list(section: Any, keys: Sequence[str]) -> str:
    return " / ".join(ms_text(dig(section, key)) for key in keys)


def percent_text(value: Any) -> str:
    return "-" if missing(value) else f"{value:.1f}"


def ratio_text(value: Any) -> str:
    return "-" if missing(value) else f"{value:.2f}x"


def yes_text(value: Any) -> str:
    return "-" if value is None else "yes" if value else "NO"
