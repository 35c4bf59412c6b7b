"""The command log read back: read_log and `log export` give the batches that were committed."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from persistence.cli import COMMANDS
from persistence.database import open_database
from pipeline.formats.batches import read_batches
from pipeline.formats.worldfile import load_world
from pipeline.stages.plan import tick_write

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@click.group()
def cli() -> None:
    """The persistence commands, as pipeline/__main__.py registers them."""


for command in COMMANDS:
    cli.add_command(command)


@pytest.fixture
async def logged(migrated_dsn):
    """The tiny world with every batch of tiny.batches.jsonl committed (no fragment writes)."""
    batches = list(read_batches(EXAMPLES / "tiny.batches.jsonl", after_tick=0))
    async with open_database(migrated_dsn) as db:
        store = db.store()
        await store.seed(load_world(EXAMPLES / "tiny.world.json"))
        for b in batches:
            await store.commit_tick(tick_write(b.tick, 100, bytes([b.tick]) * 32, b.commands, b.text, {}, []))
    return migrated_dsn, batches


def same(a, b) -> bool:
    return [(x.tick, x.commands, x.text) for x in a] == [(x.tick, x.commands, x.text) for x in b]


@pytest.mark.parametrize("bounds", [(None, None), (3, None), (None, 4), (2, 5), (6, 2)])
async def test_read_log_gives_the_committed_batches_in_tick_order(logged, bounds):
    dsn, batches = logged
    low, high = bounds
    expected = [b for b in batches if (low is None or b.tick >= low) and (high is None or b.tick <= high)]
    async with open_database(dsn) as db:
        store = db.store()
        assert same([b async for b in store.read_log(low, high)], expected)
        assert await store.last_log() == (batches[-1].tick, bytes([batches[-1].tick]) * 32)
        assert await store.log_count() == len(batches)


def test_export_writes_a_batches_file_that_reads_back_equal(logged, tmp_path):
    dsn, batches = logged
    out = tmp_path / "exported.jsonl"
    result = CliRunner().invoke(cli, ["log", "export", "--db", dsn, str(out)])
    assert result.exit_code == 0, result.output
    assert same(list(read_batches(out, after_tick=0)), batches)
    assert out.read_text() == (EXAMPLES / "tiny.batches.jsonl").read_text()


def test_export_of_a_range(logged, tmp_path):
    dsn, batches = logged
    out = tmp_path / "part.jsonl"
    result = CliRunner().invoke(cli, ["log", "export", "--from", "2", "--to", "3", "--db", dsn, str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 2 batches (ticks 2..3)" in result.stdout
    assert same(list(read_batches(out, after_tick=1)), [b for b in batches if 2 <= b.tick <= 3])
    result = CliRunner().invoke(cli, ["log", "export", "--from", "5", "--to", "3", "--db", dsn, str(out)])
    assert result.exit_code == 2
