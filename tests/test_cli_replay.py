"""`fluxworld replay` as FORMATS.md specifies it: options, output, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.__main__ import cli
from pipeline.formats.worldfile import load_world
from pipeline.replay import _compare
from vocabulary.errors import DivergenceError
from vocabulary.hashing import world_hash
from vocabulary.types import TickResult

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WORLD, BATCHES = EXAMPLES / "tiny.world.json", EXAMPLES / "tiny.batches.jsonl"


def run(*args: str) -> "object":
    return CliRunner().invoke(cli, ["replay", *map(str, args)])


def test_json_summary_has_exactly_the_documented_keys(engine_name):
    result = run(WORLD, BATCHES, "--json", "--engine", engine_name)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary) == {"ticks", "final_tick", "final_hash", "hashes", "engine", "commands", "rejected"}
    assert summary["engine"] == engine_name
    assert summary["ticks"] == len(summary["hashes"]) == summary["final_tick"] == 34   # a gap runs empty ticks
    assert summary["final_hash"] == summary["hashes"][-1]
    assert summary["commands"] > 0 and 0 < summary["rejected"] < summary["commands"]


def test_both_engines_agree_and_match_each_alone():
    both = json.loads(run(WORLD, BATCHES, "--json", "--engine", "both").stdout)
    wasm = json.loads(run(WORLD, BATCHES, "--json", "--engine", "wasm").stdout)
    python = json.loads(run(WORLD, BATCHES, "--json", "--engine", "python").stdout)
    assert both["hashes"] == wasm["hashes"] == python["hashes"]


def test_hashes_are_the_same_with_and_without_the_area_of_interest(tmp_path, engine_name, monkeypatch):
    """Without --effects the reducers skip the area of interest; the worlds must not notice."""
    import pipeline.replay as replay_module

    asked = []
    lane = replay_module.Lane

    def spy(*args, sights=True, **kw):
        asked.append(sights)
        return lane(*args, sights=sights, **kw)

    monkeypatch.setattr(replay_module, "Lane", spy)
    plain = json.loads(run(WORLD, BATCHES, "--json", "--engine", engine_name).stdout)
    written = json.loads(run(WORLD, BATCHES, "--json", "--engine", engine_name,
                             "--effects", tmp_path / "e.jsonl").stdout)
    assert asked == [False, True]
    assert plain == written
    assert any('"type":"enter"' in line for line in (tmp_path / "e.jsonl").read_text().splitlines())


def test_text_output_is_one_tick_and_hash_a_line(engine_name):
    result = run(WORLD, BATCHES, "--engine", engine_name)
    lines = result.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == [str(t) for t in range(1, 35)]
    assert all(len(line.split()[1]) == 64 for line in lines)


def test_dump_state_is_the_final_world_and_dumps_are_byte_identical(tmp_path, engine_name):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    summary = json.loads(run(WORLD, BATCHES, "--json", "--engine", engine_name, "--dump-state", first).stdout)
    run(WORLD, BATCHES, "--engine", engine_name, "--dump-state", second)
    assert first.read_bytes() == second.read_bytes()
    assert world_hash(load_world(first)) == summary["final_hash"]


def test_effects_are_json_lines_with_their_tick(tmp_path, engine_name):
    out = tmp_path / "effects.jsonl"
    run(WORLD, BATCHES, "--engine", engine_name, "--effects", out)
    effects = [json.loads(line) for line in out.read_text().splitlines()]
    types = {e["type"] for e in effects}
    assert {"rejected", "chat", "died", "respawned", "enter", "update", "leave"} <= types
    assert [e["tick"] for e in effects] == sorted(e["tick"] for e in effects)


@pytest.mark.parametrize("split", [15, 31])
def test_a_replay_continues_from_its_dumped_state(tmp_path, engine_name, split):
    """Replaying ticks 1..34 equals replaying 1..split, dumping, then the rest from the dump
    (after tick 31 a player is in flight between zones: the dump holds it)."""
    lines = BATCHES.read_text().splitlines()
    head = [line for line in lines if json.loads(line)["tick"] <= split]
    tail = [line for line in lines if json.loads(line)["tick"] > split]
    (tmp_path / "head.jsonl").write_text("\n".join(head) + "\n")
    (tmp_path / "tail.jsonl").write_text("\n".join(tail) + "\n")
    whole = json.loads(run(WORLD, BATCHES, "--json", "--engine", engine_name).stdout)
    run(WORLD, tmp_path / "head.jsonl", "--engine", engine_name, "--dump-state", tmp_path / "mid.json")
    rest = json.loads(run(tmp_path / "mid.json", tmp_path / "tail.jsonl", "--json", "--engine", engine_name).stdout)
    assert rest["final_hash"] == whole["final_hash"]
    assert rest["hashes"] == whole["hashes"][split:]


@pytest.mark.parametrize("world_text, where", [
    ('{"format": "fluxworld.world/3"}', "bad.json:1: format"),
    ('{\n "format": "fluxworld.world/1",\n "seed": -1, "tick": 0, "next_id": 1, "zones": [], "entities": []}',
     "bad.json:3: seed"),
    ("not json", "bad.json:1:"),
])
def test_bad_world_exits_2_naming_the_place(tmp_path, world_text, where):
    bad = tmp_path / "bad.json"
    bad.write_text(world_text)
    result = run(bad, BATCHES)
    assert result.exit_code == 2
    assert where in result.stderr


def test_bad_batch_exits_2_naming_file_line_and_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"tick": 1, "commands": []}\n'
                   '{"tick": 2, "commands": [{"player": 1, "seq": 1, "op": "move", "dx": "1", "dy": 0}]}\n')
    result = run(WORLD, bad)
    assert result.exit_code == 2
    assert f"{bad}:2" in result.stderr and "commands[0].dx" in result.stderr


def test_a_stale_seq_is_bad_input(tmp_path):
    bad = tmp_path / "stale.jsonl"
    bad.write_text('{"tick": 1, "commands": [{"player": 1, "seq": 5, "op": "leave"}]}\n'
                   '{"tick": 2, "commands": [{"player": 1, "seq": 5, "op": "leave"}]}\n')
    result = run(WORLD, bad)
    assert result.exit_code == 2 and f"{bad}:2" in result.stderr and "seq" in result.stderr


def test_missing_files_exit_2(tmp_path):
    assert run(tmp_path / "nope.json", BATCHES).exit_code == 2
    assert run(WORLD, tmp_path / "nope.jsonl").exit_code == 2


def test_divergence_names_the_tick_and_what_differs():
    a = TickResult(3, 10, b"", b"", b"\x01" * 120, b"")
    b = TickResult(3, 10, b"", b"", b"\x02" * 120, b"")
    with pytest.raises(DivergenceError, match="tick 3: changed differ first at element 0"):
        _compare(3, "wasm", a, b"w", "python", b, b"w")
    with pytest.raises(DivergenceError, match="tick 3: world hashes differ: wasm 7731, python 7732"):
        _compare(3, "wasm", a, b"w1", "python", a, b"w2")


def test_the_installed_console_script_runs():
    done = subprocess.run([sys.executable, "-m", "pipeline", "replay", str(WORLD), str(BATCHES), "--json",
                           "--engine", "python"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ticks"] == 34


@pytest.mark.parametrize("zone_next_id", [2**62 + 2**30, 2**62 + 2**31])
def test_a_world_play_reaches_at_the_range_edges_loads_again(tmp_path, engine_name, zone_next_id):
    """At the last tick, a kill sets respawn_tick and the killer's next_action_tick past 2^62,
    and its gold drop takes the zone's next_id (or, with its range used up, stays with the dead)."""
    from pipeline.formats.worldfile import dump_world
    from tests.support import ZONE, player, world
    from vocabulary.records import unpack_zone

    edge = world(player(1, 5, 5), player(2, 6, 5, hp=5, gold=30), tick=2**62 - 1, next_id=2**62,
                 zones=[dict(ZONE, next_id=zone_next_id)])
    dump_world(edge, tmp_path / "edge.json")
    line = {"tick": 2**62, "commands": [{"player": 1, "seq": 1, "op": "attack", "target": 2}]}
    (tmp_path / "b.jsonl").write_text(json.dumps(line) + "\n")
    result = run(tmp_path / "edge.json", tmp_path / "b.jsonl", "--engine", engine_name,
                 "--dump-state", tmp_path / "after.json")
    assert result.exit_code == 0, result.output
    after = load_world(tmp_path / "after.json")
    assert after.tick == 2**62 and unpack_zone(after.zones)["next_id"] == min(zone_next_id + 1, 2**62 + 2**31)
    (tmp_path / "none.jsonl").write_text("")
    assert run(tmp_path / "after.json", tmp_path / "none.jsonl", "--engine", engine_name).exit_code == 0
