"""One gateway in front of a world split into two shards, all real processes.

Embedded PostgreSQL, a two-zone world loaded and split (`fluxworld world
load`, `world split 1 2`), two `fluxworld serve --zones N --no-xmpp --link`
shard processes, the session's Prosody, and `fluxworld gateway --world
1=... --world 2=...`; players are slixmpp clients talking to the one
component address, never told there are shards.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import pytest

from loadtest.shardworld import two_zone_world
from persistence.shards import database_of, sibling_dsn
from pipeline.formats.worldfile import dump_world
from pipeline.xmpp.cli import _map
from pipeline.xmpp.gateway import SECRET_ENV
from pipeline.xmpp.players import ID_GAP
from pipeline.xmpp.protocol import UPDATE_NS
from schema._generated.layout import Kind
from tests.xmpp.harness import Bot, entity
from vocabulary.records import pack_entity
from vocabulary.types import WorldData

WAIT = 15.0
STARTUP = 40.0
ALICE, BOB, CAROL, DAVE = 1000, 1001, 1002, 1003
ACCOUNTS = {"alice": ALICE, "bob": BOB, "carol": CAROL, "dave": DAVE}


def world() -> WorldData:
    """loadtest's two zones (the starter meadow, 128x128, spawn 64,64; zone 2, 48x48, spawn 24,24, rats)
    and four players with 50 gold that no beast can hurt: alice and carol in zone 1, bob and dave
    in zone 2 a few cells either side of its spawn point."""
    base = two_zone_world(0)

    def someone(entity: int, zone: int, x: int, y: int, name: str) -> bytes:
        return pack_entity(id=entity, kind=Kind.player, zone=zone, x=x, y=y, hp=1000, max_hp=1000, attack=1,
                           defense=50, gold=50, name=name)

    players = [someone(ALICE, 1, 60, 60, "alice"), someone(CAROL, 1, 62, 60, "carol"),
               someone(BOB, 2, 20, 24, "bob"), someone(DAVE, 2, 28, 22, "dave")]
    return replace(base, entities=base.entities + b"".join(players), next_id=DAVE + 1)


def _fluxworld(*args: str, env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "pipeline", *args], env=env, capture_output=True, text=True,
                          timeout=STARTUP)
    assert done.returncode == 0, f"fluxworld {' '.join(args)}: {done.stdout}{done.stderr}"


class _Processes:
    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.directory, self.env = directory, env
        self.running: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.gateway_log = directory / "gateway.log"

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> Path:
        log = self.directory / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen([sys.executable, "-m", "pipeline", *args], env=env or self.env,
                                       stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.running.append((process, log))
        return log

    def wait_for(self, log: Path, text: str, timeout: float = STARTUP) -> None:
        deadline = time.monotonic() + timeout
        while text not in log.read_text(errors="replace"):
            for process, path in self.running:
                assert process.poll() is None, f"{path.name} exited with {process.returncode}:\n" \
                                               f"{path.read_text(errors='replace')[-3000:]}"
            assert time.monotonic() < deadline, f"no {text!r} in {log.name} within {timeout} s:\n" \
                                                f"{log.read_text(errors='replace')[-3000:]}"
            time.sleep(0.05)

    def stop(self) -> None:
        for process, _ in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in self.running:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-2500:]}" for _, path in self.running)


@pytest.fixture
def sharded_world(prosody: Any, migrated_dsn: str, run_sql: Any) -> Iterator[_Processes]:
    directory = Path(tempfile.mkdtemp(prefix="fw-shards-"))
    env = {**os.environ}
    path = directory / "world.json"
    dump_world(world(), path)
    _fluxworld("world", "load", str(path), "--db", migrated_dsn, env=env)
    _fluxworld("world", "split", "1", "2", "--db", migrated_dsn, env=env)
    for name, player in ACCOUNTS.items():
        run_sql(migrated_dsn, "INSERT INTO player_account VALUES ($1, $2)", f"{name}@{prosody.domain}", player)
    processes = _Processes(directory, env)
    with ExitStack() as cleanup:
        cleanup.callback(lambda: [run_sql(sibling_dsn(migrated_dsn, "postgres"), f'DROP DATABASE IF EXISTS '
                                          f'"{database_of(migrated_dsn)}_z{z}" WITH (FORCE)') for z in (1, 2)])
        cleanup.callback(processes.stop)
        shards = [processes.start(f"shard{z}", "serve", "--db", migrated_dsn, "--zones", str(z), "--no-xmpp",
                                  "--link", str(directory / f"z{z}.sock"), "--http", "off") for z in (1, 2)]
        endpoint = prosody.endpoint()
        gateway = processes.start("gateway", "gateway", "--world", f"1={directory / 'z1.sock'}",
                                  "--world", f"2={directory / 'z2.sock'}",
                                  "--xmpp-server", f"{endpoint.host}:{endpoint.port}",
                                  "--component", endpoint.component, "--db", migrated_dsn,
                                  env={**env, SECRET_ENV: endpoint.secret})
        for shard in shards:
            processes.wait_for(shard, "serves players")     # the gateway linked, and its component is up
        processes.wait_for(gateway, "connected to")
        cleanup.callback(lambda: print(processes.logs()))   # pytest shows it when the test failed
        yield processes


class Player(Bot):
    """A bot that also keeps every refusal and chat it was sent, whatever its expects skipped."""

    def __init__(self, prosody: Any, name: str) -> None:
        super().__init__(prosody, name)
        self.refusals: list[str] = []
        self.heard: list[str] = []

    def _on_message(self, msg: Any) -> None:
        self.refusals += [ET.tostring(r).decode() for r in msg.xml.iter(f"{{{UPDATE_NS}}}refused")]
        self.heard += [c.text or "" for c in msg.xml.iter(f"{{{UPDATE_NS}}}chat")]
        super()._on_message(msg)


def acked(seq: int) -> Any:
    return lambda body, update, refused: update is not None and int(update.get("acked") or 0) >= seq


def sees(who: int, **fields: str) -> Any:
    def wanted(body: str, update: Any, refused: Any) -> bool:
        seen = entity(update, who)
        return seen is not None and all(seen.get(k) == v for k, v in fields.items())
    return wanted


async def test_players_play_across_two_shards_through_one_gateway(sharded_world: _Processes, prosody: Any,
                                                                 migrated_dsn: str, run_sql: Any) -> None:
    async with Player(prosody, "alice") as alice, Player(prosody, "bob") as bob, \
            Player(prosody, "carol") as carol, Player(prosody, "dave") as dave, Player(prosody, "frank") as frank:
        for bot in (alice, bob, carol, dave, frank):
            bot.online()
        # Each joins in its own zone's shard, and answers as a program (payloads: 10 updates a second).
        for bot, me in ((alice, ALICE), (bob, BOB), (carol, CAROL), (dave, DAVE)):
            await bot.expect(sees(me, online="1"), WAIT)
            await bot.expect(acked(bot.command("move", dx=0, dy=0)), WAIT)
        # frank has no account: he gets an id above every shard's next_id, and joins zone 1 through its shard.
        await frank.expect(lambda b, u, r: u is not None and u.find("{urn:fluxworld:update:2}seen") is not None,
                           WAIT)
        (account,) = run_sql(migrated_dsn, "SELECT entity_id FROM player_account WHERE jid = $1",
                             f"frank@{prosody.domain}")
        franks = account["entity_id"]
        assert franks >= DAVE + 1 + ID_GAP
        await frank.expect(acked(frank.command("move", dx=0, dy=0)), WAIT)
        rows = run_sql(sibling_dsn(migrated_dsn, f"{database_of(migrated_dsn)}_z1"),
                       "SELECT id FROM player_registry WHERE id = $1", franks)
        assert len(rows) == 1

        # alice moves in zone 1, then travels to zone 2 and keeps moving there.
        seq = alice.command("move", dx=1, dy=0)
        await alice.expect(lambda b, u, r: acked(seq)(b, u, r) and sees(ALICE, x="61")(b, u, r), WAIT)
        seq = alice.command("travel", zone=2)
        await alice.expect(acked(seq), WAIT)
        await bob.expect(sees(ALICE, x="24", y="24"), WAIT)     # arrived at zone 2's spawn point, in bob's sight
        for step in range(1, 4):
            seq = alice.command("move", dx=1, dy=0)
            await alice.expect(acked(seq), WAIT)
            await bob.expect(sees(ALICE, x=str(24 + step)), WAIT)   # the moves are zone 2's shard's ticks

        # Said in zone 2: bob (zone 2) hears it; carol (zone 1) does not.
        alice.command("say", text="hello zone two")
        body, update, _ = await bob.expect(lambda b, u, r: u is not None and u.find(
            "{urn:fluxworld:update:2}chat") is not None, WAIT)
        chat = update.find("{urn:fluxworld:update:2}chat")
        assert chat.get("from") == str(ALICE) and chat.text == "hello zone two"
        await asyncio.sleep(0.3)
        assert "hello zone two" in dave.heard and "hello zone two" not in carol.heard

        # carol (zone 1's shard) sends dave (zone 2's) gold: the credit crosses shards.
        seq = carol.command("transfer", to=DAVE, amount=7)
        await carol.expect(lambda b, u, r: acked(seq)(b, u, r) and sees(CAROL, gold="43")(b, u, r), WAIT)
        await dave.expect(sees(DAVE, gold="57"), WAIT)        # a tick later, in the other shard

        # Back and forth as a bot plays: a travel, then moves every 10 ms (ticks are 50 ms), never waiting
        # for an answer. Those that reach the shard she left come back as elsewhere and go again to the
        # other, in order: she is refused nothing, and her last command of each round is acknowledged.
        for zone in (1, 2, 1):
            seqs = [alice.command("travel", zone=zone)]
            for _ in range(4):
                await asyncio.sleep(0.01)
                seqs.append(alice.command("move", dx=0, dy=1))
            await alice.expect(acked(seqs[-1]), WAIT)
            await asyncio.sleep(0.3)        # the token bucket refills (20 a second, 10 at once)
        await carol.expect(sees(ALICE), WAIT)                    # in zone 1 again, in carol's sight
        assert [bot.refusals for bot in (alice, bob, carol, dave, frank)] == [[]] * 5
        # Leaving zone 1's shard for zone 2's was no leave: the gateway joined alice once and never took her off.
        said = sharded_world.gateway_log.read_text()
        assert said.count(f"(player {ALICE}) joined the world") == 1 and f"(player {ALICE}) left" not in said
    # `fluxworld player add` allocates above every shard's next_id too (zone 1's moved with frank's join).
    assert await _map(migrated_dsn, f"erin@{prosody.domain}") == franks + 1 + ID_GAP


async def test_a_shard_killed_under_the_gateway_comes_back_and_nothing_is_lost(sharded_world: _Processes,
                                                                              prosody: Any, migrated_dsn: str) -> None:
    async with Player(prosody, "bob") as bob, Player(prosody, "carol") as carol:
        for bot, me in ((bob, BOB), (carol, CAROL)):
            bot.online()
            await bot.expect(sees(me, online="1"), WAIT)
        seq = carol.command("transfer", to=BOB, amount=5)
        await bob.expect(sees(BOB, gold="55"), WAIT)
        # SIGKILL zone 2's shard (bob's): the world waits for it at the barrier; a new one waits out the lease,
        # recovers the group, and the gateway links to it again.
        shard, _ = sharded_world.running.pop(1)
        shard.send_signal(signal.SIGKILL)
        shard.wait()
        again = sharded_world.start("shard2-again", "serve", "--db", migrated_dsn, "--zones", "2", "--no-xmpp",
                                    "--link", str(sharded_world.directory / "z2.sock"), "--http", "off")
        sharded_world.wait_for(again, "serves players")
        await bob.expect(acked(bob.command("move", dx=1, dy=0)), WAIT)
        seq = carol.command("transfer", to=BOB, amount=3)
        await carol.expect(lambda b, u, r: acked(seq)(b, u, r) and sees(CAROL, gold="42")(b, u, r), WAIT)
        await bob.expect(sees(BOB, gold="58"), WAIT)
    sharded_world.stop()
    # Every group's log replays, alone and merged in one process, to the hashes the shards logged.
    checked = subprocess.run([sys.executable, "-m", "pipeline", "shards", "check", "--db", migrated_dsn],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "zone hashes compared" in checked.stdout
