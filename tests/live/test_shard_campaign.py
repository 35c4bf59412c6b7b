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


def test_serve_shards_splits_runs_and_stops_the_world_in_one_command(tmp_path):
    import os
    import subprocess
    import sys

    from loadtest.shardworld import two_zone_world, write_two_zone_drive
    from pipeline.formats.worldfile import dump_world

    dump_world(two_zone_world(12), tmp_path / "world.json")
    write_two_zone_drive(tmp_path / "drive.jsonl", 12, 120)
    env = {**os.environ, "FLUXWORLD_STATE_DIR": str(tmp_path / "state")}
    run = subprocess.run([sys.executable, "-m", "pipeline", "serve", "--shards", "2", "--world",
                          str(tmp_path / "world.json"), "--drive", str(tmp_path / "drive.jsonl"), "--hz", "200"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stderr.count("took zone group") == 2 and run.stderr.endswith("stopped at tick 120\n")
    again = subprocess.run([sys.executable, "-m", "pipeline", "serve", "--shards", "3"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert again.returncode == 2 and "split into 2 zone groups (1; 2), not 3: serve it with --shards 2" in again.stderr
    check = subprocess.run([sys.executable, "-m", "pipeline", "shards", "check"], env=env, capture_output=True,
                           text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "240 zone hashes compared up to tick 120" in check.stdout


def test_each_shard_of_serve_shards_serves_its_own_metrics_and_health(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from loadtest.shardworld import two_zone_world
    from pipeline.formats.worldfile import dump_world
    from pipeline.server.cluster import port_free
    from pipeline.xmpp.prosody import free_port
    from tests.operate.scraping import get, samples, value

    dump_world(two_zone_world(12), tmp_path / "world.json")
    port = free_port()
    while not all(port_free("127.0.0.1", p) for p in (port, port + 1)):
        port = free_port()
    env = {**os.environ, "FLUXWORLD_STATE_DIR": str(tmp_path / "state")}
    serve = subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--shards", "2", "--no-xmpp", "--world",
                              str(tmp_path / "world.json"), "--http", f"127.0.0.1:{port}"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        ticks = {}
        deadline = time.monotonic() + 60
        while len(ticks) < 2 and time.monotonic() < deadline:
            for p in (port, port + 1):
                try:
                    status, _ = get(p, "/health/ready")
                    if status == 200:
                        ticks[p] = value(samples(get(p, "/metrics")[1]), "fluxworld_world_tick")
                except OSError:
                    pass        # not listening yet
            time.sleep(0.2)
        assert set(ticks) == {port, port + 1}, "both shards ready, each on its own port"
        assert all(t > 0 for t in ticks.values())
    finally:
        serve.send_signal(signal.SIGTERM)
        _, stderr = serve.communicate(timeout=60)
    assert serve.returncode == 0, stderr[-2000:]
    assert f"http://127.0.0.1:{port}/metrics" in stderr and f"http://127.0.0.1:{port + 1}/metrics" in stderr

