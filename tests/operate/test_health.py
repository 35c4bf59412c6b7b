"""Readiness, check by check, on a ServerState the test sets by hand."""

from __future__ import annotations

import asyncio

from pipeline.metrics import TickMetrics
from pipeline.operate.health import MISSED_WINDOW, STALE, readiness
from pipeline.operate.state import ServerState


def recovered_state(now: float, hz: float = 20.0, xmpp: bool = False) -> ServerState:
    state = ServerState(TickMetrics(), hz=hz, xmpp=xmpp, recovered_at=now - 10)
    state.metrics.committed_at = state.metrics.computed_at = now - 0.01
    return state


def failing(state: ServerState, now: float) -> list[str]:
    return [name for name, ok in readiness(state, now).items() if not ok]


def test_a_server_ticking_and_committing_is_ready() -> None:
    now = 1000.0
    assert readiness(recovered_state(now), now) == {"recovered": True, "database": True, "ticking": True}


def test_no_commit_for_a_while_or_a_tick_waiting_on_the_database_is_the_database() -> None:
    now = 1000.0
    state = recovered_state(now)
    state.metrics.committed_at = now - STALE - 0.1
    assert failing(state, now) == ["database"]
    state = recovered_state(now)
    state.metrics.outages.enter("tick 5 commit", 5)
    assert failing(state, now) == ["database"]
    state.metrics.outages.leave(5)
    assert failing(state, now) == []
    slow = recovered_state(now, hz=0.1)              # ten seconds a tick: a commit 20 s ago is recent
    slow.metrics.committed_at = slow.metrics.computed_at = now - 20
    assert failing(slow, now) == []


def test_a_streak_of_missed_slots_is_ticking_a_lone_late_tick_is_not(monkeypatch) -> None:
    state = recovered_state(0.0)
    clock = iter([100.0, 101.0])                     # when each late tick is noted
    monkeypatch.setattr("pipeline.metrics.time.monotonic", lambda: next(clock))

    def at(now: float) -> list[str]:
        state.metrics.committed_at = state.metrics.computed_at = now - 0.01
        return failing(state, now)

    state.metrics.miss(2)                            # one late tick at 20 Hz: 2 of the window's 100 slots
    assert at(100.5) == []
    state.metrics.miss(20)                           # then one a whole second late
    assert at(101.5) == ["ticking"]
    assert at(101.0 + MISSED_WINDOW + 0.1) == []     # out of the window, and ticking on time since
    state.stopped = True
    assert at(110.0) == ["ticking"]


def test_the_slots_a_database_outage_cost_do_not_keep_the_server_unready(monkeypatch) -> None:
    now = 100.0
    state = recovered_state(now)
    state.metrics.outages.clock = lambda: now - 0.5       # the outage ended half a second ago
    state.metrics.outages.enter("tick 5 commit", 5)
    state.metrics.outages.leave(5)
    monkeypatch.setattr("pipeline.metrics.time.monotonic", lambda: now - 0.49)
    state.metrics.miss(40)                               # the first tick after it: two seconds of slots
    assert failing(state, now) == []
    monkeypatch.setattr("pipeline.metrics.time.monotonic", lambda: now)
    state.metrics.miss(20)                               # but a server that cannot keep up since is not ready
    assert failing(state, now) == ["ticking"]


def test_with_xmpp_a_gateway_must_serve() -> None:
    now = 1000.0
    state = recovered_state(now, xmpp=True)
    assert failing(state, now) == ["gateway"]
    state.link = type("Link", (), {"serving": asyncio.Event()})()   # type: ignore[assignment]
    state.link.serving.set()
    assert failing(state, now) == []
