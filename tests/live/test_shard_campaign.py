"""Shards in short form: two real shard processes of a two-zone world, killed and paused at random.

The full campaign is `fluxworld faults --shards --trials N`; its figures are in docs/scale-out.md.
"""

from __future__ import annotations

from loadtest.shardfaults import SHARD_FAULTS, run_shard_campaign


def test_killed_and_paused_shards_lose_nothing_double_nothing_and_zombies_write_nothing(tmp_path):
    result = run_shard_campaign(tmp_path / "campaign", trials=4, seed=5, players=16, ticks_per_trial=150)
    assert result.ok, "\n".join(result.problems)
    assert set(result.trials) == set(SHARD_FAULTS) and sum(result.trials.values()) == 4
    assert result.fenced_zombies == result.trials["zombie-shard"]
    assert "zone hashes compared up to tick 600" in result.checked
    assert "the stored groups, merged, are the replayed world at tick 600" in result.checked
