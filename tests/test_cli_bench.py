"""`fluxworld bench`: the figures it prints are about the work it claims to time."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from pipeline.__main__ import cli
from pipeline.bench import bench_world
from schema._generated.layout import ENTITY_DTYPE


def run(*args: str) -> list[dict]:
    result = CliRunner().invoke(cli, ["bench", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_reducers_bench_times_both_engines_and_packs_the_crowd():
    spread, crowd = run("reducers", "--entities", "4000", "--ticks", "3", "--commands", "60", "--json"), \
        run("reducers", "--entities", "4000", "--ticks", "3", "--commands", "60", "--crowd", "300", "--json")
    assert spread[0]["crowd"] == 0 and crowd[0]["crowd"] == 300
    for figures in (spread[0], crowd[0]):
        assert figures["wasm_ms"] > 0 and figures["python_ms"] > 0 and figures["speedup"] > 0
        assert 0 < figures["max_sightings_per_observer"] <= 64


def test_the_crowd_stands_in_one_21x21_square_and_everyone_else_is_spread():
    world, online, _, _ = bench_world(10_000, 7, online_players=1_000, crowd=400)
    records = np.frombuffer(world.entities, dtype=ENTITY_DTYPE)
    players = records[np.isin(records["id"], online)]
    crowd, rest = players[:400], players[400:]
    for axis in ("x", "y"):
        assert crowd[axis].max() - crowd[axis].min() == 20
        assert rest[axis].max() - rest[axis].min() > 200


def test_replay_bench_replays_the_files_it_wrote_as_replay_does(tmp_path):
    (figures,) = run("replay", "--players", "60", "--ticks", "6", "--commands", "25", "--dir", str(tmp_path))
    assert figures["ticks"] == 6 and figures["commands"] == 150 and figures["commands_per_s"] > 0
    replayed = CliRunner().invoke(cli, ["replay", str(tmp_path / "bench.world.json"),
                                        str(tmp_path / "bench.batches.jsonl"), "--json"])
    assert json.loads(replayed.stdout)["final_hash"] == figures["final_hash"]
