"""Where an acknowledgement's time goes (loadtest/breakdown.py), on acks made up to a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest.breakdown import Acks, ack_breakdown


def test_each_latency_is_cut_at_its_ticks_start_and_commit():
    # Tick 7 takes its commands at t=10.000 and has committed at 10.008; tick 8 at 10.050 and 10.062.
    ticks = {7: (10.000, 10.008), 8: (10.050, 10.062)}
    # Sent at 9.990, acked by tick 7, back at 10.013: 10 ms to the tick, 8 ms in it, 5 ms back.
    acks = Acks(sent=np.array([9.990, 10.020, 10.030]), latency_ms=np.array([23.0, 52.0, 44.0]),
                tick=np.array([7, 8, 99]))       # tick 99: never recorded (the echo's, or after the drain)
    b = ack_breakdown(acks, ticks)
    assert b["count"] == 2
    assert b["parts"]["to the tick"]["mean"] == pytest.approx((10 + 30) / 2)
    assert b["parts"]["tick and commit"]["mean"] == pytest.approx((8 + 12) / 2)
    assert b["parts"]["back"]["mean"] == pytest.approx((5 + 10) / 2)
    # The slowest 1% of two acks is the slower one: sent at 10.020, back at 10.072.
    assert [b["parts"][p]["slowest_1pct_mean"] for p in ("to the tick", "tick and commit", "back")] == \
        pytest.approx([30, 12, 10])


def test_the_parts_of_every_ack_add_up_to_its_latency():
    rng = np.random.default_rng(1)
    starts = {t: (t * 0.05, t * 0.05 + rng.uniform(0.002, 0.02)) for t in range(100)}
    tick = rng.integers(1, 100, 2_000)
    sent = np.array([starts[t][0] - rng.uniform(0.001, 0.06) for t in tick.tolist()])
    back = np.array([starts[t][1] for t in tick.tolist()]) + rng.uniform(0.001, 0.03, 2_000)
    b = ack_breakdown(Acks(sent, (back - sent) * 1000.0, tick), starts)
    means = [part["mean"] for part in b["parts"].values()]
    assert sum(means) == pytest.approx(float(((back - sent) * 1000.0).mean()), abs=0.02)


def test_no_timed_ack_is_an_empty_breakdown():
    assert ack_breakdown(Acks(np.array([1.0]), np.array([3.0]), np.array([-1])), {}) == {"count": 0, "parts": {}}
