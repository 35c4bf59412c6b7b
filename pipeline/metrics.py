"""Per-stage timings of every tick: a Prometheus histogram per stage.

prometheus_client keeps the histograms (and can serve them); the summary
the tick loop logs reads quantiles off the buckets, as Prometheus'
histogram_quantile does: exact to a bucket's width, which the buckets below
keep under ~25% of the value.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# 50 µs .. 2 s, each bucket about 1.25x the one before.
BUCKETS = tuple(round(50e-6 * 1.25 ** i, 7) for i in range(48))


class TickMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.stage_seconds = Histogram("fluxworld_stage_seconds", "Time one stage took in one tick",
                                       ["stage"], buckets=BUCKETS, registry=self.registry)
        self.tick_seconds = Histogram("fluxworld_tick_seconds", "Negotiate to plan, one tick",
                                      buckets=BUCKETS, registry=self.registry)
        self.ticks = Counter("fluxworld_ticks", "Ticks run", registry=self.registry)
        self.missed = Counter("fluxworld_missed_ticks", "Tick slots skipped because a tick ran late",
                              registry=self.registry)
        self.commands = Counter("fluxworld_commands", "Commands by outcome", ["outcome"], registry=self.registry)

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stage_seconds.labels(stage).observe(seconds)

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

    def summary(self, stages: list[str]) -> str:
        parts = [f"{s} p50 {1000 * self.quantile(0.5, s):.2f} p99 {1000 * self.quantile(0.99, s):.2f}"
                 for s in stages]
        return (f"ticks {int(self.ticks._value.get())} missed {int(self.missed._value.get())} | "
                f"tick p50 {1000 * self.quantile(0.5):.2f} p99 {1000 * self.quantile(0.99):.2f} ms | "
                + " | ".join(parts) + " (ms)")
