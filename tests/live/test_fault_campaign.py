"""The fault campaign in short form: each fault once, on a real server and its own embedded PostgreSQL.

The full campaign is `fluxworld faults --trials N`; its figures are in docs/faults.md.
"""

from __future__ import annotations

from loadtest.faults import FAULTS, run_campaign


def test_kills_and_stalls_of_the_server_and_postgres_lose_no_tick_and_double_none(tmp_path):
    result = run_campaign(tmp_path / "campaign", trials=len(FAULTS), seed=3, players=10)
    assert result.ok, "\n".join(result.problems)
    assert set(result.trials) == set(FAULTS) and sum(result.trials.values()) == len(FAULTS)
    assert result.server_starts >= 2      # the first, and the one that finishes after the last fault
