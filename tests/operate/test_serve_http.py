"""`fluxworld serve` as a process, seen from outside: /metrics, /health, JSON log lines.

The server is driven by the tiny example's batches (every op, every rejection
reason), so what /metrics counts can be checked against what `fluxworld
replay` computes from the same files.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from click.testing import CliRunner

from pipeline.__main__ import cli
from pipeline.formats.worldfile import load_world
from pipeline.view import WorldView
from tests.operate.scraping import Lines, get, ready, samples, value

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WORLD, BATCHES = EXAMPLES / "tiny.world.json", EXAMPLES / "tiny.batches.jsonl"
DRIVEN_TICKS = 30


def replayed(tmp_path: Path) -> tuple[Counter[str], Counter[str], WorldView]:
    """Rule rejections by reason and effects by kind of the driven ticks, and the world after them."""
    effects, final = tmp_path / "effects.jsonl", tmp_path / "final.world.json"
    result = CliRunner().invoke(cli, ["replay", str(WORLD), str(BATCHES), "--effects", str(effects),
                                      "--dump-state", str(final)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in effects.read_text().splitlines()]
    return (Counter(e["reason"] for e in lines if e["type"] == "rejected"), Counter(e["type"] for e in lines),
            WorldView.from_world(load_world(final)))


def test_serve_answers_metrics_and_health_and_logs_json(fresh_dsn: str, tmp_path: Path) -> None:
    rejections, effects, final = replayed(tmp_path)
    driven = sum(len(json.loads(line)["commands"]) for line in BATCHES.read_text().splitlines())
    server = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "serve", "--db", fresh_dsn, "--world", str(WORLD), "--drive", str(BATCHES),
         "--ticks", "100000", "--hz", "50", "--no-xmpp", "--http", "127.0.0.1:0", "--log-format", "json",
         "--summary-every", "0.5", "--checkpoint-every", "20"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = Lines(server.stderr)
    try:
        port = lines.until(lambda r: r.get("event") == "http")["port"]
        assert get(port, "/health/live")[0] == 200           # at once: the loop answers before the world is up
        status, body = ready(port)
        while status != 200:                                  # not ready until recovered and ticking
            assert status == 503 and body["failing"] and not body["ready"], body
            time.sleep(0.05)
            status, body = ready(port)
        assert body["checks"] == {"recovered": True, "database": True, "ticking": True}

        lines.until(lambda r: r.get("event") == "summary" and r["tick"] > DRIVEN_TICKS)
        page = samples(get(port, "/metrics")[1])
        assert value(page, "fluxworld_ticks_total") > DRIVEN_TICKS
        assert value(page, "fluxworld_world_tick") > DRIVEN_TICKS
        assert value(page, "fluxworld_commands_total", outcome="accepted") == driven
        assert value(page, "fluxworld_commands_total", outcome="refused") == 0
        for reason, count in rejections.items():                 # every rule rejection, by its reason code
            assert value(page, "fluxworld_rule_rejections_total", reason=reason) == count, reason
        assert sum(v for (name, _), v in page.items() if name == "fluxworld_rule_rejections_total") == \
            sum(rejections.values())
        assert value(page, "fluxworld_effects_total", kind="chat") == effects["chat"]   # only commands chat
        assert value(page, "fluxworld_effects_total", kind="rejected") == effects["rejected"]
        assert value(page, "fluxworld_tick_seconds_count") > DRIVEN_TICKS
        assert value(page, "fluxworld_stage_seconds_count", stage="transform") > DRIVEN_TICKS
        assert value(page, "fluxworld_commit_seconds_count") > DRIVEN_TICKS
        assert value(page, "fluxworld_commit_rows_sum") > 0
        assert value(page, "fluxworld_players_online") == final.online_count > 0
        assert value(page, "fluxworld_entities") == final.entity_count == len(final)
        assert value(page, "fluxworld_database_outages_total") == 0
        assert value(page, "fluxworld_database_available") == 1
        assert value(page, "fluxworld_snapshots_total", outcome="written") >= DRIVEN_TICKS // 20
        assert value(page, "fluxworld_snapshots_total", outcome="failed") == 0
        assert value(page, "fluxworld_snapshot_tick") % 20 == 0 and value(page, "fluxworld_snapshot_bytes") > 0
        assert not [name for name, _ in page if name.startswith("fluxworld_gateway")]    # --no-xmpp
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    seen = lines.rest()
    assert server.returncode == 0, "".join(seen)
    records = [json.loads(line) for line in seen]                # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r.get("event") == "recovered" and r["tick"] == 0 for r in records)
    assert records[-1]["event"] == "stopped" and records[-1]["tick"] > DRIVEN_TICKS
