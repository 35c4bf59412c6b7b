"""What the tick loop counts as it goes: Prometheus counters and histograms.

prometheus_client keeps them (pipeline/operate serves them over HTTP); the
summary the tick loop logs reads quantiles off the buckets, as Prometheus'
histogram_quantile does: exact to a bucket's width, which the buckets below
keep under ~25% of the value.

Everything here is counted from what a tick already holds (its context, its
result's effect array), once per tick, with label children bound up front:
a few microseconds a tick, plus one numpy bincount over the effects. What
is read off live state at scrape time instead (players online, the gateway,
database outages) is pipeline/operate/scrape.py.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections import deque

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram

from schema._generated.layout import COMMAND_SIZE, EffectKind, Reason

from .context import TickContext
from .effects import effect_array
from .server.retry import Outages
from .stages.transform import TRAPPED

# 50 µs .. 2 s, each bucket about 1.25x the one before.
BUCKETS = tuple(round(50e-6 * 1.25 ** i, 7) for i in range(48))
# Rows one commit writes: 0 (a tick that changed nothing still moves the header) .. 100,000.
ROW_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000)

# A refusal's reason is free text ("out of order: seq 5 is not above ..."); its label is the
# words before the colon, from this fixed set, so no player's input ever becomes a label.
REFUSAL_KINDS = ("malformed", "too_large", "not_allowed", "out_of_order", "rate_limited", "dropped", "trapped",
                 "elsewhere", "other")
_PREFIXES = {kind.replace("_", " ") for kind in REFUSAL_KINDS}
MISSES_KEPT = 256       # recent late ticks remembered, for readiness's look at the last few seconds


def refusal_kind(reason: str) -> str:
    """The label of a refusal reason: one of REFUSAL_KINDS."""
    if reason == TRAPPED:
        return "trapped"
    head = reason.partition(":")[0]
    return head.replace(" ", "_") if head in _PREFIXES else "other"


class TickMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.stage_seconds = Histogram("fluxworld_stage_seconds", "Time one stage took in one tick",
                                       ["stage"], buckets=BUCKETS, registry=r)
        self.tick_seconds = Histogram("fluxworld_tick_seconds", "Negotiate to plan, one tick", buckets=BUCKETS,
                                      registry=r)
        self.commit_seconds = Histogram("fluxworld_commit_seconds", "One tick's commit: its one transaction, "
                                        "the successful attempt", buckets=BUCKETS, registry=r)
        self.commit_rows = Histogram("fluxworld_commit_rows", "Changed fragment rows one tick's commit writes",
                                     buckets=ROW_BUCKETS, registry=r)
        self.ticks = Counter("fluxworld_ticks", "Ticks run", registry=r)
        self.missed = Counter("fluxworld_missed_ticks", "Tick slots skipped because a tick ran late", registry=r)
        self.commands = Counter("fluxworld_commands", "Commands by outcome: accepted into a batch, refused "
                                "(answered at once), dropped by a full inbox", ["outcome"], registry=r)
        self.refused = Counter("fluxworld_commands_refused", "Refused commands by the refusal's kind", ["reason"],
                               registry=r)
        self.rejections = Counter("fluxworld_rule_rejections", "Commands the rules rejected, by reason code",
                                  ["reason"], registry=r)
        self.effects = Counter("fluxworld_effects", "Effects of committed ticks, by kind", ["kind"], registry=r)
        self.traps = Counter("fluxworld_engine_traps", "Ticks on which the rules trapped and transform left the "
                             "failing commands out", registry=r)
        # Bound once: labels() is a locked dict lookup, and these are counted every tick.
        self._outcome = {o: self.commands.labels(o) for o in ("accepted", "refused", "dropped")}
        self._refused = {k: self.refused.labels(k) for k in REFUSAL_KINDS}
        self._rejections = {reason.value: self.rejections.labels(reason.name) for reason in Reason if reason}
        self._effects = {kind.value: self.effects.labels(kind.name) for kind in EffectKind}
        self._dropped_seen = 0
        self.outages = Outages()
        self.computed_at: float | None = None     # time.monotonic() when the last tick's compute ended
        self.committed_at: float | None = None    # ... and when the last commit landed
        self.misses: deque[tuple[float, int]] = deque(maxlen=MISSES_KEPT)   # (when, slots skipped)

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stage_seconds.labels(stage).observe(seconds)

    def computed(self, ctx: TickContext, seconds: float) -> None:
        """A tick's compute ended: its time, what it accepted and refused."""
        self.tick_seconds.observe(seconds)
        self.ticks.inc()
        self._outcome["accepted"].inc(len(ctx.batch.commands) // COMMAND_SIZE)
        if ctx.refusals:
            self._outcome["refused"].inc(len(ctx.refusals))
            # Most of a flood's refusals share one text: classify each distinct text once.
            kinds = Tally[str]()
            for reason, count in Tally(r.reason for r in ctx.refusals).items():
                kinds[refusal_kind(reason)] += count
            for kind, count in kinds.items():
                self._refused[kind].inc(count)
        if ctx.trapped:
            self.traps.inc()
        self.computed_at = time.monotonic()

    def committed(self, ctx: TickContext) -> None:
        """A tick committed and its effects went out: the commit's time and rows, the effects by kind."""
        if "commit" in ctx.timings:
            self.commit_seconds.observe(ctx.timings["commit"])
        if ctx.write is not None:
            self.commit_rows.observe(ctx.write.rows)
        if ctx.result is not None and ctx.result.effects:
            effects = effect_array(ctx.result)
            kinds = np.bincount(effects["kind"], minlength=len(self._effects))
            for kind in np.flatnonzero(kinds).tolist():
                child = self._effects.get(kind) or self.effects.labels(str(kind))     # a kind unknown here
                child.inc(int(kinds[kind]))
            if kinds[EffectKind.rejected]:
                reasons = np.bincount(effects["reason"][effects["kind"] == EffectKind.rejected])
                for reason in np.flatnonzero(reasons).tolist():
                    child = self._rejections.get(reason) or self.rejections.labels(str(reason))   # a code unknown here
                    child.inc(int(reasons[reason]))
        self.committed_at = time.monotonic()

    def dropped(self, total: int) -> None:
        """The inbox has dropped `total` commands since it was made (it keeps the count)."""
        if total > self._dropped_seen:
            self._outcome["dropped"].inc(total - self._dropped_seen)
            self._dropped_seen = total

    def miss(self, slots: int) -> None:
        self.missed.inc(slots)
        self.misses.append((time.monotonic(), slots))

    def missed_since(self, moment: float) -> int:
        """Slots skipped since `moment` (time.monotonic()), as far back as MISSES_KEPT late ticks go."""
        return sum(slots for when, slots in self.misses if when >= moment)

    def quantile(self, q: float, stage: str | None = None) -> float:
        """Seconds below which a fraction q of the observations fall (bucket upper bound)."""
        name = "fluxworld_stage_seconds_bucket" if stage else "fluxworld_tick_seconds_bucket"
        buckets = [(float(s.labels["le"]), s.value) for m in self.registry.collect() for s in m.samples
                   if s.name == name and (stage is None or s.labels.get("stage") == stage)]
        if not buckets or buckets[-1][1] == 0:
            return 0.0
        total = buckets[-1][1]
        for bound, count in buckets:
            if count >= q * total:
                return bound
        return buckets[-2][0]

    def summary_fields(self) -> dict[str, float]:
        """The summary's figures as fields of a log record (the JSON log format shows them)."""
        return {"ticks": int(self.ticks._value.get()), "missed": int(self.missed._value.get()),
                "tick_p50_ms": round(1000 * self.quantile(0.5), 3),
                "tick_p99_ms": round(1000 * self.quantile(0.99), 3)}

    def summary(self, stages: list[str]) -> str:
        parts = [f"{s} p50 {1000 * self.quantile(0.5, s):.2f} p99 {1000 * self.quantile(0.99, s):.2f}"
                 for s in stages]
        return (f"ticks {int(self.ticks._value.get())} missed {int(self.missed._value.get())} | "
                f"tick p50 {1000 * self.quantile(0.5):.2f} p99 {1000 * self.quantile(0.99):.2f} ms | "
                + " | ".join(parts) + " (ms)")
