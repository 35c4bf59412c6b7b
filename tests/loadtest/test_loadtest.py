"""Short load-test runs, in-process, against the real embedded PostgreSQL and the real engines.

Each checks what a report must hold: every offered command committed,
refused or dropped; gold conserved, in memory and as stored; the stored
world equal to the one in memory; the report's files written.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from loadtest.options import LoadOptions
from loadtest.report import write_report
from loadtest.run import failed_checks, run_loadtest
from loadtest.scenarios import INITIAL_GOLD
from pipeline.engines.engine import default_engine


def run(**options: Any) -> dict[str, Any]:
    opts = LoadOptions(**{"engine": default_engine(), "duration": 1.5, "hz": 20.0, **options})
    return asyncio.run(run_loadtest(opts, progress=lambda title: lambda entry: None, note=lambda line: None))


def assert_accounted(run_: dict[str, Any]) -> None:
    t = run_["totals"]
    assert t["offered"] > 0 and t["committed"] > 0
    assert t["offered"] == t["committed"] + t["refused"] + t["dropped"]
    assert run_["checks"]["accounted"] is True
    assert sum(e["offered"] for e in run_["timeline"]) == t["offered"]


def test_mmo_in_process_commits_every_offered_command(pg_server, tmp_path):
    results = run(scenario="mmo", players=300, rate=4.0)
    (only,) = results["runs"]
    assert_accounted(only)
    assert only["checks"] == {**only["checks"], "gold_conserved": True, "db_matches": True}
    assert only["totals"]["rule_rejected"] > 0            # the mix hits out_of_range and no_item
    assert only["totals"]["rows_written"] > 0 and only["tick_ms"]["p50"] > 0
    assert results["machine"]["postgres"] and not failed_checks(results)
    written = {p.name for p in write_report(results, tmp_path)}
    assert {"results.json", "throughput.png", "tick_latency.png", "stages.png"} <= written
    assert json.loads((tmp_path / "results.json").read_text())["runs"][0]["totals"] == only["totals"]


def test_crowd_keeps_everyone_in_sight_and_no_observer_over_64_sightings(pg_server):
    results = run(scenario="crowd", players=400, rate=4.0)
    (only,) = results["runs"]
    assert_accounted(only)
    assert only["checks"] == {**only["checks"], "gold_conserved": True, "db_matches": True}
    effects = only["effects"]
    # 400 players in a 21x21 square: every area full, every tick someone moves in each.
    assert effects["per_tick"]["p50"] > 400
    assert 0 < effects["most_sightings_per_observer"] <= 64


def test_several_player_counts_run_one_after_another_and_plot_how_the_tick_scales(tmp_path):
    results = run(scenario="crowd", players=150, more_players=(300,), db="none", duration=1.0)
    assert [r["players"] for r in results["runs"]] == [150, 300]
    for r in results["runs"]:
        assert_accounted(r)
        assert r["stage_ms"]["sightings"]["mean"] > 0          # measured beside the tick's path
    assert "scaling.png" in {p.name for p in write_report(results, tmp_path)}


def test_transfer_is_durable_conserves_gold_and_is_compared_to_the_baseline(pg_server, run_sql):
    results = run(scenario="transfer", players=2_000, rate=2.0, alpha=1.5, baseline_connections=(2, 4))
    (only,) = results["runs"]
    assert_accounted(only)
    assert only["checks"]["gold_conserved"] and only["checks"]["db_matches"]
    assert only["checks"]["gold_before"] == 2_000 * INITIAL_GOLD
    baseline = results["baseline"]
    assert baseline["commands_per_s"] > 0 and baseline["balance_conserved"]
    assert only["baseline_ratio"] == pytest.approx(only["rates"]["committed_per_s"] / baseline["commands_per_s"],
                                                   rel=0.01)
    dsn = pg_server.uri("fluxworld_bench")
    (row,) = run_sql(dsn, "SELECT sum(gold)::bigint AS gold, count(*) AS n FROM entity_wealth")
    assert (row["gold"], row["n"]) == (2_000 * INITIAL_GOLD, 2_000)
    (log,) = run_sql(dsn, "SELECT count(*) AS ticks FROM command_log")
    assert log["ticks"] == only["totals"]["ticks"]


def test_an_overloaded_server_drops_and_counts_what_it_cannot_queue():
    # 100,000 commands a second offered, and room to queue 10 ms of them: ticks of 5,000 cannot fit.
    results = run(scenario="transfer", players=200, rate=500.0, db="none", duration=1.0, queue_seconds=0.01)
    (only,) = results["runs"]
    assert_accounted(only)
    assert only["totals"]["dropped"] > 0 and only["checks"]["db_matches"] is None


def test_both_engines_run_side_by_side(tmp_path):
    results = run(scenario="mmo", players=100, engine="both", db="none", duration=1.0)
    assert [r["engine"] for r in results["runs"]] == ["wasm", "python"]
    for r in results["runs"]:
        assert_accounted(r)
    assert "engines.png" in {p.name for p in write_report(results, tmp_path)}


def test_the_command_line_prints_a_summary_and_writes_the_report(pg_server, tmp_path):
    report = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "pipeline", "loadtest", "--scenario", "transfer", "--players", "500",
                           "--duration", "1", "--db", "none", "--report", str(report)],
                          capture_output=True, text=True, timeout=120, env={**os.environ})
    assert done.returncode == 0, done.stderr
    assert "committed cmd/s" in done.stdout and "commands accounted" in done.stdout
    assert json.loads((report / "results.json").read_text())["options"]["scenario"] == "transfer"


def test_bad_options_exit_2_naming_them(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pipeline", "loadtest", "--db", "mysql://x",
                           "--report", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--db" in done.stderr


def test_over_xmpp_bots_play_and_the_echo_is_measured_beside_them(pg_server, tmp_path):
    from pipeline.xmpp.prosody import prosody_installed

    if not prosody_installed():
        pytest.skip("the prosody binary is missing (apt-get install prosody; .ci/run does it)")
    results = run(scenario="mmo", transport="xmpp", players=12, duration=2.0)
    (only,) = results["runs"]
    assert_accounted(only)
    assert only["checks"]["gold_conserved"] and only["checks"]["db_matches"]
    assert only["latency_ms"]["count"] > 0 and only["rates"]["answered_per_s"] > 0
    assert only["swarm"]["sent"] == only["totals"]["offered"] - 2 * 12       # + each bot's join and leave
    assert results["echo"]["round_trips_per_s"] > 0 and only["echo_ratio"] > 0
    # Nearly every ack is timed by the world (not those of its last ticks after the drain), and
    # each part is what a tick's clock says: at 20 Hz a command waits at most a period for its tick.
    parts = only["ack_breakdown_ms"]["parts"]
    assert 0.9 * only["latency_ms"]["count"] <= only["ack_breakdown_ms"]["count"] <= only["latency_ms"]["count"]
    assert 0 < parts["to the tick"]["p50"] < parts["to the tick"]["p99"] < 1000 / 20 + 100
    assert 0 < parts["tick and commit"]["p50"] and 0 < parts["back"]["p50"]
    assert {"latency.png", "ack_breakdown.png"} <= {p.name for p in write_report(results, tmp_path)}


def test_xmpp_runs_the_mmo_scenario_only_and_needs_a_database():
    from vocabulary.errors import InputError

    with pytest.raises(InputError, match="xmpp runs the mmo scenario"):
        run(scenario="transfer", transport="xmpp", players=10)
    with pytest.raises(InputError, match="needs a database"):
        run(scenario="mmo", transport="xmpp", players=10, db="none")


def test_the_last_sliver_of_a_run_joins_the_interval_before_it():
    from loadtest.collector import Collector

    collector = Collector()
    collector.totals.offered = 10
    collector.sample()
    collector.totals.offered = 15                  # a few more, a moment later (the drain)
    entry = collector.sample(last=True)
    assert len(collector.timeline) == 1 and entry["offered"] == 15


def test_bots_spread_over_two_xmpp_servers_each_with_its_gateway_on_one_world(pg_server):
    from pipeline.xmpp.prosody import prosody_installed

    if not prosody_installed():
        pytest.skip("the prosody binary is missing (apt-get install prosody; .ci/run does it)")
    # Every bot joins through its own server's gateway before the clock starts, or the swarm fails.
    results = run(scenario="mmo", transport="xmpp", players=12, duration=2.0, xmpp_servers=2, open_loop=True,
                  rate=2.0)
    (only,) = results["runs"]
    assert_accounted(only)
    assert only["xmpp_servers"] == 2 and only["checks"]["gold_conserved"] and only["checks"]["db_matches"]
    assert only["swarm"]["sent"] == only["totals"]["offered"] - 2 * 12 and only["latency_ms"]["count"] > 0
    assert results["echo"]["answered"] == results["echo"]["sent"] > 0      # both echoes answered their bots


def test_each_xmpp_run_is_compared_with_the_echo_of_its_own_bots():
    from loadtest.run import _ratios

    def xmpp_run(answered, echoed):
        return {"rates": {"committed_per_s": answered, "answered_per_s": answered},
                "echo": {"round_trips_per_s": echoed, "latency_ms": {"p50": 1.0, "p99": 2.0}}}

    results = {"baseline": None, "runs": [xmpp_run(900.0, 1000.0), xmpp_run(1500.0, 2000.0)]}
    results["echo"] = results["runs"][0]["echo"]
    _ratios(results)
    assert [r["echo_ratio"] for r in results["runs"]] == [0.9, 0.75]
