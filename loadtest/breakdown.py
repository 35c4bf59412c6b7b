"""Where an acknowledgement's time goes: each answered command's latency cut in three.

    breakdown = ack_breakdown(swarm["acks"], world.collector.tick_times)   # swarm: loadtest/bots.py

The bots know when each command went and came back, and which tick acked it
(`<update tick= acked=>`); the world knows when that tick took its commands
from the inbox and when it had committed and sent its results to the
gateways. Every process of the run reads one clock (time.monotonic() is the
machine's CLOCK_MONOTONIC), so each latency splits into

- to the tick: the bot, the XMPP server and the gateway on the way in, then
  waiting for the next tick (half a period on average, a period at worst);
- tick and commit: computing the tick and committing it to PostgreSQL;
- back: the gateway's rendering, the XMPP server and the bot on the way out.

Each part gets its p50 and p99, and its mean over the slowest 1% of the
commands: what the tail is made of, which the parts' own p99s do not say.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import numpy as np

PARTS = ("to the tick", "tick and commit", "back")


class Acks(NamedTuple):
    """Every answered command of a swarm (loadtest/bots.py), one element each: when it was sent
    (time.monotonic()), its latency in ms, and the tick that acked it (-1: the echo's)."""

    sent: np.ndarray[Any, Any]
    latency_ms: np.ndarray[Any, Any]
    tick: np.ndarray[Any, Any]


def ack_breakdown(acks: Acks, tick_times: Mapping[int, tuple[float, float]]) -> dict[str, Any]:
    """{"count", "parts": {part: {"p50", "p99", "mean", "slowest_1pct_mean"}}} in ms, over the acks
    whose tick the world recorded (an ack the world did not time, such as the echo's, is left out)."""
    known = np.array([t in tick_times for t in acks.tick.tolist()], dtype=bool)
    sent, latency, ticks = acks.sent[known], acks.latency_ms[known], acks.tick[known]
    if not len(sent):
        return {"count": 0, "parts": {}}
    began, done = (np.array([tick_times[t][i] for t in ticks.tolist()]) for i in (0, 1))
    received = sent + latency / 1000.0
    parts = dict(zip(PARTS, ((began - sent) * 1000.0, (done - began) * 1000.0, (received - done) * 1000.0)))
    slowest = latency >= np.percentile(latency, 99)
    return {"count": int(len(sent)), "parts": {
        name: {"p50": round(float(np.percentile(ms, 50)), 2), "p99": round(float(np.percentile(ms, 99)), 2),
               "mean": round(float(ms.mean()), 2), "slowest_1pct_mean": round(float(ms[slowest].mean()), 2)}
        for name, ms in parts.items()}}
