"""`fluxworld loadtest --shards`: the mmo scenario over shard worker processes, on the real embedded PostgreSQL.

A short real run (2 shards, 2,000 players, two zones) must account for every
command each shard was offered, conserve gold over the merged stored world,
pass `shards check` (the groups' logs replayed in one process), and see
travellers cross between the shards, each arriving a tick or more after it
left.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from loadtest.options import LoadOptions
from loadtest.report import summary_table
from loadtest.run import failed_checks, run_loadtest
from loadtest.sharded import travel_ticks, zone_groups
from pipeline.engines.engine import default_engine
from vocabulary.errors import InputError


def run(**options: Any) -> dict[str, Any]:
    opts = LoadOptions(**{"engine": default_engine(), "hz": 20.0, **options})
    return asyncio.run(run_loadtest(opts, progress=lambda title: lambda entry: None, note=lambda line: None))


def test_two_shards_account_conserve_gold_replay_and_carry_travellers_between_them(pg_server):
    # --rate 4: more travels and cross-zone gifts in a short run (the per-player limit lets 5 a second through).
    results = run(scenario="mmo", players=2_000, shards=2, duration=5.0, rate=4.0)
    (only,) = results["runs"]
    assert not failed_checks(results)
    checks = only["checks"]
    assert checks["accounted"] and checks["gold_conserved"] and checks["db_matches"]
    assert checks["shards_check"] is True and checks["travels_arrive"] is True
    shards = only["shards"]
    assert shards["count"] == 2 and [g["zones"] for g in shards["groups"]] == ["1", "2"]
    check = shards["shards_check"]
    assert check["ok"] and check["ticks"] == only["totals"]["ticks"] == 100 and check["compared"] == 200
    for group in shards["groups"]:
        assert group["ticks"] == 100 and group["final_tick"] == 100 and group["left_in_inbox"] == 0
        assert group["offered"] == group["committed"] + group["refused"] + group["dropped"] > 0
        assert group["elsewhere"] <= group["refused"] and group["held"] > 0
    t = only["totals"]
    assert t["offered"] == t["committed"] + t["refused"] + t["dropped"] and t["committed"] > 0
    assert sum(g["held"] for g in shards["groups"]) <= 2_000
    travel = shards["travel_ticks"]["between_shards"]
    assert travel["count"] > 0 and travel["p50"] >= 1 and travel["max"] >= 1
    assert shards["mail_ms"]["p99"] >= 0 and only["tick_ms"]["p50"] > 0
    table = summary_table(results)
    assert "mail wait p50/p99 ms" in table and "shard 1:" in table and "shard 2:" in table


def test_zone_groups_are_contiguous_and_balanced():
    assert zone_groups(5, 2) == [frozenset({1, 2, 3}), frozenset({4, 5})]
    assert zone_groups(2, 2) == [frozenset({1}), frozenset({2})]
    with pytest.raises(InputError, match="at least 3 zones"):
        zone_groups(2, 3)


def test_travels_are_joined_to_the_first_arrival_after_they_left():
    reports = [{"final_tick": 10, "travels": {"left": [[7, 3, 2], [8, 10, 2]], "arrived": [[9, 5]]}},
               {"final_tick": 10, "travels": {"left": [[9, 4, 1]], "arrived": [[7, 2], [7, 4]]}}]
    joined = travel_ticks(reports)
    assert joined["between_shards"] == {"count": 2, "p50": 1.0, "p99": 1.0, "max": 1}
    assert joined["in_flight_at_end"] == 1 and joined["never_arrived"] == 0 and joined["travels"] == 3


@pytest.mark.parametrize("options, message", [
    ({"transport": "xmpp"}, "--transport inproc"),
    ({"db": "none"}, "needs a database"),
    ({"scenario": "crowd"}, "mmo scenario"),
    ({"players": 1_000}, "at least 2 zones"),
])
def test_shards_refuse_what_they_cannot_run(options, message):
    with pytest.raises(InputError, match=message):
        LoadOptions(**{"scenario": "mmo", "players": 2_000, "shards": 2, **options}).check()


def test_each_shard_count_runs_at_each_player_count_in_turn():
    runs = LoadOptions(scenario="mmo", players=2_000, more_players=(3_000,), shards=1, more_shards=(2,)).runs()
    assert [(r.players, r.shards) for r in runs] == [(2_000, 1), (2_000, 2), (3_000, 1), (3_000, 2)]
    with pytest.raises(InputError, match="--shards 3 needs at least 3 zones"):
        LoadOptions(scenario="mmo", players=2_000, shards=1, more_shards=(3,)).check()


def test_one_process_and_two_shards_side_by_side(pg_server):
    results = run(scenario="mmo", players=2_000, shards=1, more_shards=(2,), duration=2.0, shards_check=False)
    one, two = results["runs"]
    assert "shards" not in one or not one["shards"]
    assert two["shards"]["count"] == 2
    assert not failed_checks(results)
    table = summary_table(results)
    assert "wasm 1 process" in table or "python 1 process" in table
