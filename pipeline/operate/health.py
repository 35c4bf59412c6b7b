"""Readiness: whether the server is doing its job, check by check.

The server is ready when every check holds:
- `recovered`: the world was loaded from PostgreSQL, proven whole and put
  into the engine;
- `database`: no tick waits on an unreachable database now, and the last
  commit (or the recovery, before the first) is recent: within STALE
  seconds or three tick periods, whichever is longer;
- `ticking`: a tick was computed as recently, the tick loop has not
  ended, and it skipped at most MISSED_SHARE of the slots of the last
  MISSED_WINDOW seconds (a lone late tick does not count, a server that
  cannot keep up does; the slots a database outage cost, noted by the first
  tick after it, do not count either: `database` said so while it lasted);
- `gateway` (only when players come over XMPP): a gateway says it serves
  players.
Before the recovery only `recovered` (and `gateway`) are judged: the
others would fail for the same reason and say nothing more.

Liveness is simpler: the handler answering proves the event loop runs.
"""

from __future__ import annotations

import time

from .state import ServerState

STALE = 3.0             # seconds without a commit (or a tick) before the database (or the loop) counts as stuck
MISSED_WINDOW = 5.0     # seconds of slots looked back over
MISSED_SHARE = 0.1      # of those slots, how many may have been skipped


def readiness(state: ServerState, now: float | None = None) -> dict[str, bool]:
    """Each check's name, and whether it holds."""
    now = time.monotonic() if now is None else now
    checks = {"recovered": state.recovered_at is not None}
    if state.recovered_at is not None:
        metrics = state.metrics
        stale = max(STALE, 3 * state.period)
        last_commit = metrics.committed_at or state.recovered_at
        checks["database"] = not metrics.outages.now_out and now - last_commit <= stale
        last_tick = metrics.computed_at or state.recovered_at
        since = now - MISSED_WINDOW
        if metrics.outages.ended_at is not None:     # skip the outage's slots, noted one tick after it ends
            since = max(since, metrics.outages.ended_at + 2 * state.period)
        missed = metrics.missed_since(since)
        checks["ticking"] = (not state.stopped and now - last_tick <= stale
                             and missed <= MISSED_SHARE * MISSED_WINDOW * state.hz)
    if state.xmpp:
        checks["gateway"] = state.link is not None and state.link.serving.is_set()
    return checks
