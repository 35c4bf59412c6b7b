"""The load test's report: results.json round-trips, the plots are PNGs, the summary shows the figures."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.report import summary_table, write_report
from pipeline.server.runner import STAGES

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ALWAYS = {"results.json", "throughput.png", "tick_latency.png", "stages.png"}


def make_run(engine, committed_per_s=12345.6, points=3, latency=False):
    timeline = [{"t": float(t), "offered": 13000, "committed": 12300, "refused": 10, "dropped": 0, "ticks": 20,
                 "tick_ms": {"p50": 3.1, "p90": 4.2, "p99": 7.5, "max": 9.9},
                 "stage_ms": {stage: 0.5 + k for k, stage in enumerate(STAGES)},
                 "rows": 24000, "cpu_percent": 88.0} for t in range(1, points + 1)]
    return {
        "engine": engine, "scenario": "transfer", "transport": "xmpp" if latency else "inproc",
        "seconds": float(points),
        "totals": {"offered": 13000 * points, "committed": 12300 * points, "refused": 10 * points, "dropped": 0,
                   "rule_rejected": 4, "ticks": 20 * points, "missed_ticks": 1, "rows_written": 24000 * points},
        "rates": {"offered_per_s": 13000.0, "committed_per_s": committed_per_s, "rows_per_s": 24000.0},
        "tick_ms": {"mean": 3.3, "p50": 3.1, "p90": 4.2, "p99": 7.5, "max": 9.9},
        "commit_ms": {"mean": 6.0, "p50": 5.5, "p90": 8.0, "p99": 12.25, "max": 20.0},
        "stage_ms": {stage: {"mean": 0.5 + k, "p50": 0.5 + k, "p99": 1.0 + k} for k, stage in enumerate(STAGES)},
        "cpu": {"server_percent": 95.5, "server_cpu_s": 2.9, "other_percent": {"postgres": 40.25}},
        "latency_ms": {"count": 500, "p50": 31.0, "p90": 45.0, "p99": 80.0, "max": 120.0} if latency else None,
        "checks": {"accounted": True, "gold_conserved": True, "gold_before": 1000000, "gold_after": 1000000},
        "timeline": timeline,
        "baseline_ratio": committed_per_s / 2500.0,
        "echo_ratio": committed_per_s / 5000.0,
    }


def make_results(engines=("wasm",), latency=False, baseline=True, echo=True):
    return {
        "schema": 1,
        "started_at": "2026-11-21T09:00:00+00:00",
        "command_line": "fluxworld loadtest --scenario transfer",
        "options": {"scenario": "transfer", "players": 1000, "hz": 20.0, "duration": 3.0, "transport": "inproc",
                    "engine": "both" if len(engines) > 1 else engines[0], "db": "embedded", "rate": 13.0,
                    "alpha": 1.1, "seed": 7},
        "machine": {"cpus": 8, "python": "3.11.2", "platform": "linux", "postgres": "16.4"},
        "runs": [make_run(engine, latency=latency) for engine in engines],
        "baseline": {"connections": 4, "commands_per_s": 2500.0, "committed": 7500, "rejected": 0, "seconds": 3.0,
                     "sweep": [{"connections": 1, "commands_per_s": 900.0},
                               {"connections": 4, "commands_per_s": 2500.0}],
                     "latency_ms": {"p50": 1.5, "p99": 4.0, "max": 9.0}} if baseline else None,
        "echo": {"bots": 50, "round_trips_per_s": 5000.0,
                 "latency_ms": {"count": 1000, "p50": 2.0, "p90": 3.0, "p99": 5.0, "max": 8.0},
                 "timeline": [{"t": 1.0, "sent": 5000, "answered": 5000}]} if echo else None,
    }


def assert_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000, path


def written_names(results, directory):
    paths = write_report(results, directory)
    assert all(path.parent == directory and path.is_file() for path in paths)
    for path in paths:
        if path.suffix == ".png":
            assert_png(path)
    return {path.name for path in paths}


def test_results_json_round_trips_in_order(tmp_path):
    results = make_results()
    write_report(results, tmp_path)
    text = (tmp_path / "results.json").read_text()
    loaded = json.loads(text)
    assert loaded == results
    assert list(loaded) == list(results) and list(loaded["runs"][0]) == list(results["runs"][0])   # not sorted
    assert text.startswith('{\n  "schema": 1,')   # indent=2


def test_one_run_writes_the_three_plots_and_no_comparison(tmp_path):
    assert written_names(make_results(), tmp_path) == ALWAYS
    assert set(p.name for p in tmp_path.iterdir()) == ALWAYS


def test_two_runs_with_latency_add_the_engine_comparison_and_latency(tmp_path):
    results = make_results(engines=("wasm", "python"), latency=True)
    assert written_names(results, tmp_path) == ALWAYS | {"engines.png", "latency.png"}


def test_latency_plot_only_when_some_run_measured_it(tmp_path):
    results = make_results(engines=("wasm", "python"))
    assert written_names(results, tmp_path / "a") == ALWAYS | {"engines.png"}
    results["runs"][1]["latency_ms"] = {"count": 3, "p50": 30.0, "p90": 40.0, "p99": 50.0, "max": 60.0}
    assert "latency.png" in written_names(results, tmp_path / "b")


def test_the_directory_is_created(tmp_path):
    directory = tmp_path / "reports" / "run-1"
    write_report(make_results(), directory)
    assert (directory / "results.json").is_file()


def test_summary_shows_the_figures_and_ratios():
    text = summary_table(make_results(engines=("wasm", "python")))
    header = text.splitlines()[0]
    assert "wasm" in header and "python" in header
    assert "committed cmd/s" in text and "12,346" in text           # thousands separators, no decimals
    assert "3.10 / 4.20 / 7.50 / 9.90" in text                      # tick p50/p90/p99/max ms
    assert "12.2" in text                                           # commit p99 ms
    for stage in STAGES:
        assert f"{stage} mean ms" in text
    assert "postgres CPU %" in text and "40.2" in text
    assert "4.94x" in text and "2.47x" in text                      # x baseline, x echo
    assert "x baseline" in text and "x echo" in text
    assert "ticks (missed)" in text and "60 (1)" in text
    assert "commands accounted" in text and "gold conserved" in text
    assert not any(line.startswith("latency") for line in text.splitlines())   # inproc: not measured
    baseline = next(line for line in text.splitlines() if line.startswith("baseline (one transaction per command)"))
    assert "2,500 cmd/s" in baseline and "4 connections" in baseline and "1 -> 900" in baseline
    echo = next(line for line in text.splitlines() if line.startswith("bare echo component"))
    assert "5,000 round trips/s" in echo and "50 bots" in echo


def test_summary_shows_latency_and_omits_absent_sections():
    results = make_results(latency=True, baseline=False, echo=False)
    for run in results["runs"]:
        run["baseline_ratio"] = run["echo_ratio"] = None
    text = summary_table(results)
    assert "latency p50/p99 ms" in text and "31.0 / 80.0" in text
    assert "x baseline" not in text and "x echo" not in text
    assert "baseline (one" not in text and "bare echo" not in text


def test_gold_drift_is_shown():
    results = make_results()
    results["runs"][0]["checks"] = {"accounted": False, "gold_conserved": False, "gold_before": 1000, "gold_after": 990}
    text = summary_table(results)
    assert "NO (1,000 -> 990)" in text


def test_an_empty_timeline_and_zero_ticks_do_not_crash(tmp_path):
    results = make_results(engines=("wasm", "python"), baseline=False, echo=False)
    idle = results["runs"][1]
    idle.update(timeline=[], latency_ms=None, baseline_ratio=None, echo_ratio=None,
                totals={key: 0 for key in idle["totals"]},
                rates={key: 0.0 for key in idle["rates"]},
                tick_ms={key: None for key in idle["tick_ms"]}, commit_ms={key: None for key in idle["commit_ms"]},
                stage_ms={stage: {"mean": None, "p50": None, "p99": None} for stage in STAGES})
    idle["checks"]["gold_conserved"] = None
    results["runs"][0]["timeline"][1]["tick_ms"] = {"p50": None, "p90": None, "p99": None, "max": None}
    results["runs"][0]["timeline"][1]["stage_ms"] = {}
    assert written_names(results, tmp_path) == ALWAYS | {"engines.png"}
    text = summary_table(results)
    assert "0 (0)" in text and "- / - / - / -" in text


def test_no_runs_at_all(tmp_path):
    results = make_results()
    results["runs"] = []
    results["options"] = {}
    assert written_names(results, tmp_path) == ALWAYS
    text = summary_table(results)
    assert text.startswith("no runs") and "bare echo component" in text


def test_the_report_never_touches_pyplot(tmp_path):
    # pyplot keeps global figures and picks a GUI backend; the harness may run inside a long-lived process.
    code = ("import sys; from pathlib import Path; from loadtest.report import write_report;"
            "from tests.loadtest.test_report import make_results;"
            f"write_report(make_results(engines=('wasm', 'python'), latency=True), Path({str(tmp_path)!r}));"
            "assert 'matplotlib.pyplot' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def scaled_run(players, p99, shards=1, server=60.0):
    run = make_run("wasm")
    run.update(players=players, tick_ms={**run["tick_ms"], "p99": p99},
               cpu={"server_percent": server, "server_cpu_s": 1.0, "other_percent": {"postgres": 20.0}})
    if shards > 1:
        run["shards"] = {"count": shards, "groups": [], "mail_ms": None, "travel_ticks": None, "shards_check": None}
    return run


def test_capacity_interpolates_where_each_series_crosses_the_limit():
    from loadtest.values import capacity

    runs = [scaled_run(6000, 15.0), scaled_run(9000, 20.0, shards=2), scaled_run(8000, 20.0),
            scaled_run(12000, 35.0, shards=2), scaled_run(10000, 30.0)]
    found = capacity(runs, 25.0)
    assert list(found) == ["wasm 1 process", "wasm 2 shards"]
    assert found["wasm 1 process"] == (pytest.approx(9000.0), "")        # 20 ms at 8,000, 30 at 10,000
    assert found["wasm 2 shards"] == (pytest.approx(10000.0), "")       # 20 ms at 9,000, 35 at 12,000
    assert capacity(runs[:1], 10.0)["wasm"] == (6000.0, "below")         # over the limit from the first run
    assert capacity(runs[:1], 50.0)["wasm"] == (6000.0, "above")         # never reached it


def test_runs_of_several_shard_counts_are_told_apart_and_compared(tmp_path):
    results = make_results(baseline=False, echo=False)
    results["options"].update(scenario="mmo", players=6000, more_players=[9000])
    results["runs"] = [scaled_run(6000, 15.0), scaled_run(6000, 12.0, shards=2, server=90.0),
                       scaled_run(9000, 35.0), scaled_run(9000, 20.0, shards=2, server=130.0)]
    table = summary_table(results)
    assert "wasm 1 process 6,000" in table and "wasm 2 shards 9,000" in table
    # 1 process: 15 ms at 6,000, 35 at 9,000 -> 25 ms at 7,500; 2 shards never reach it (over 9,000).
    assert "players at tick p99 25 ms (half the period), interpolated: wasm 1 process 7,500; " \
           "wasm 2 shards over 9,000" in table
    assert "scaling.png" in written_names(results, tmp_path)
