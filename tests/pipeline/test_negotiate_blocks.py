"""Negotiate on CommandBlocks: the same checks and the same batch as for one dict per command."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest

from pipeline.blocks import block_problems
from pipeline.context import TickContext
from pipeline.formats.batches import batch_commands_json
from pipeline.server.runner import Inbox
from pipeline.stages.negotiate import Negotiate
from pipeline.view import WorldView
from schema._generated.layout import COMMAND_DTYPE, Op
from tests.support import npc, player, world
from vocabulary.records import pack_commands
from vocabulary.types import Batch, CommandBlock, Incoming

VIEW = WorldView.from_world(world(player(1, 5, 5, last_seq=4), player(2, 6, 6), npc(3, 1, 1)))


def block(commands: list[dict[str, Any]], senders: list[int], at: float = 0.0) -> CommandBlock:
    packed, text = pack_commands(commands)
    return CommandBlock(packed, text, np.array(senders, dtype="<u8").tobytes(), at)


def run(*incoming: Incoming | CommandBlock, stage: Negotiate | None = None) -> TickContext:
    ctx = TickContext(tick=1, batch=Batch(1, b"", b""), view=VIEW, incoming=list(incoming))
    return asyncio.run((stage or Negotiate())(ctx))


MIX = [({"player": 2, "seq": 1, "op": "say", "text": "héllo"}, 2),
       ({"player": 1, "seq": 4, "op": "use"}, 1),                        # stale: last seq is 4
       ({"player": 1, "seq": 5, "op": "move", "dx": 1, "dy": 0}, 1),
       ({"player": 2, "seq": 2, "op": "leave"}, 1),                      # not sender 1's entity
       ({"player": 1, "seq": 6, "op": "join", "zone": 1, "name": "al"}, 1),
       ({"player": 1, "seq": 6, "op": "use"}, 1),                        # duplicate
       ({"player": 2, "seq": 3, "op": "transfer", "to": 1, "amount": 5}, 2)]


@pytest.mark.parametrize("rate", [None, 20.0])
def test_a_block_negotiates_exactly_like_single_commands(rate):
    singles = run(*(Incoming(c, s, 0.0) for c, s in MIX), stage=Negotiate(rate=rate))
    blocked = run(block([c for c, _ in MIX], [s for _, s in MIX]), stage=Negotiate(rate=rate))
    assert blocked.batch.commands == singles.batch.commands and blocked.batch.text == singles.batch.text
    assert [(r.incoming.command, r.incoming.sender, r.reason) for r in blocked.refusals] == \
        [(r.incoming.command, r.incoming.sender, r.reason) for r in singles.refusals]
    assert len(blocked.refusals) == 3


@pytest.mark.parametrize("seqs, refused", [([5, 2**62], 1), ([2**62 - 1, 2**62], 2), ([4 + 2**32, 5 + 2**32], 0),
                                            ([5 + 2**32, 6], 1), ([6, 6 + 2**32, 7 + 2**33], 1)])
def test_a_leap_in_seq_is_refused_in_a_block_as_alone(seqs, refused):
    commands = [{"player": 1, "seq": s, "op": "use"} for s in seqs]
    singles = run(*(Incoming(c, 1, 0.0) for c in commands), stage=Negotiate(clock=lambda: 0))
    blocked = run(block(commands, [1] * len(commands)), stage=Negotiate(clock=lambda: 0))
    assert blocked.batch.commands == singles.batch.commands
    assert [r.reason for r in blocked.refusals] == [r.reason for r in singles.refusals]
    assert len(blocked.refusals) == refused


def test_seqs_stamped_with_the_time_pass_in_a_block():
    now = time.time_ns() // 1000
    ctx = run(block([{"player": 1, "seq": now + s, "op": "use"} for s in (0, 1, 2)], [1] * 3))
    assert ctx.refusals == [] and len(ctx.batch.commands) == 3 * COMMAND_DTYPE.itemsize


def test_blocks_and_single_commands_keep_arrival_order_and_text_offsets():
    first = Incoming({"player": 1, "seq": 5, "op": "say", "text": "one"}, 1, 0.0)
    middle = block([{"player": 2, "seq": 1, "op": "say", "text": "two"}, {"player": 2, "seq": 2, "op": "use"}], [2, 2])
    last = Incoming({"player": 1, "seq": 6, "op": "say", "text": "three"}, 1, 0.0)
    ctx = run(first, middle, last)
    expected = pack_commands([first.command, {"player": 2, "seq": 1, "op": "say", "text": "two"},
                              {"player": 2, "seq": 2, "op": "use"}, last.command])
    assert (ctx.batch.commands, ctx.batch.text) == expected


def test_a_flood_in_one_block_is_rate_limited():
    flood = block([{"player": 1, "seq": s, "op": "use"} for s in range(5, 11)], [1] * 6)
    ctx = run(flood, stage=Negotiate(rate=10, burst=3))
    assert [int(s) for s in np.frombuffer(ctx.batch.commands, dtype=COMMAND_DTYPE)["seq"]] == [5, 6, 7]
    assert [r.reason.split(":")[0] for r in ctx.refusals] == ["rate limited"] * 3
    assert len(run(flood, stage=Negotiate(rate=None)).refusals) == 0


def _records(**fields: Any) -> CommandBlock:
    """One `use` by player 1 from sender 1, with `fields` overridden."""
    records = np.zeros(1, dtype=COMMAND_DTYPE)
    for name, value in {"player": 1, "seq": 5, "op": Op.use, **fields}.items():
        records[name] = value
    return CommandBlock(records.tobytes(), b"", np.array([1], "<u8").tobytes(), 0.0)


@pytest.mark.parametrize("fields, reason", [
    ({"op": 99}, "malformed: unknown op 99"),
    ({"dx": 1}, "malformed: a use command has no dx"),
    ({"op": Op.attack}, "malformed: target must be at least 1"),
    ({"player": 0}, "malformed: player must be in"),
    ({"seq": 0}, "malformed: seq must be in"),
    ({"op": Op.say, "text_len": 3}, "malformed: the text lies outside"),
    ({"player": 2}, "not allowed: player 2 is not your entity (1)"),
])
def test_malformed_packed_commands_are_refused_naming_the_problem(fields, reason):
    problems = block_problems(_records(**fields))
    assert list(problems) == [0] and problems[0].startswith(reason), problems


def test_text_that_is_not_utf8_or_too_large_is_refused():
    records = np.zeros(2, dtype=COMMAND_DTYPE)
    records["player"], records["seq"], records["op"] = 1, [5, 6], Op.say
    records["text_len"], records["text_offset"] = [2, 1025], [0, 2]
    b = CommandBlock(records.tobytes(), b"\xff\xfe" + b"x" * 1025, np.array([1, 1], "<u8").tobytes(), 0.0)
    problems = block_problems(b)
    assert problems[0] == "malformed: text is not UTF-8" and problems[1].startswith("too large: text is 1025 bytes")


def test_one_sender_may_have_only_so_many_commands_waiting():
    inbox = Inbox(per_sender=2)
    flood = block([{"player": 2, "seq": s, "op": "use"} for s in (1, 2, 3, 4)] + [{"player": 1, "seq": 5, "op": "use"}],
                  [2, 2, 2, 2, 1])
    assert inbox.put_block(flood) == [2, 3] and inbox.dropped == 2 and len(inbox) == 3
    assert not inbox.put(Incoming({"player": 2, "seq": 9, "op": "use"}, 2, 0.0))      # still two of 2's waiting
    assert inbox.put(Incoming({"player": 1, "seq": 6, "op": "use"}, 1, 0.0))
    assert inbox.put(Incoming({"player": 3, "seq": 1, "op": "use"}, None, 0.0))      # trusted: no limit
    (queued, *_) = inbox.drain()
    assert [c["seq"] for c in batch_commands_json(Batch(1, queued.commands, queued.text))] == [1, 2, 5]
    assert inbox.put(Incoming({"player": 2, "seq": 9, "op": "use"}, 2, 0.0))          # the next tick: room again


def test_a_ticks_small_blocks_negotiate_as_one_with_their_texts_and_order():
    """A gateway sends a block per burst of stanzas; negotiate merges a run of them."""
    singles = run(*(Incoming(c, s, 0.0) for c, s in MIX))
    pieces = run(*(block([c], [s]) for c, s in MIX[:4]), block([c for c, _ in MIX[4:]], [s for _, s in MIX[4:]]))
    assert (pieces.batch.commands, pieces.batch.text) == (singles.batch.commands, singles.batch.text)
    assert [(r.incoming.command, r.reason) for r in pieces.refusals] == \
        [(r.incoming.command, r.reason) for r in singles.refusals]


def test_a_bounded_inbox_drops_what_does_not_fit_and_counts_it():
    inbox = Inbox(limit=3)
    assert inbox.put(Incoming({"player": 1, "seq": 5, "op": "use"}, 1, 0.0))
    queued = inbox.put_block(block([{"player": 2, "seq": s, "op": "say", "text": f"t{s}"} for s in (1, 2, 3)],
                                   [2, 2, 2]))
    assert queued == [2] and inbox.dropped == 1 and len(inbox) == 3
    assert not inbox.put(Incoming({"player": 1, "seq": 6, "op": "use"}, 1, 0.0)) and inbox.dropped == 2
    items = inbox.drain()
    assert len(inbox) == 0 and isinstance(items[1], CommandBlock) and len(items[1]) == 2
    assert items[1].text == b"t1t2"   # the dropped command's text went with it


@pytest.mark.parametrize("seed", range(40))
def test_random_blocks_negotiate_like_their_commands_one_at_a_time(seed):
    """Stale, repeated and rising seqs, bursts over the rate, trusted and sent commands, two blocks a
    tick apart: the block path (player by player) refuses and accepts exactly what the single path does."""
    rng = np.random.default_rng(seed)
    view = WorldView.from_world(world(*(player(p, last_seq=int(rng.integers(0, 4))) for p in range(1, 7))))
    singles, blocks = Negotiate(rate=20.0, burst=3), Negotiate(rate=20.0, burst=3)
    seq = {p: int(rng.integers(0, 5)) for p in range(1, 8)}
    for at in (0.0, 0.05, 0.3):
        commands, senders = [], []
        for _ in range(int(rng.integers(1, 25))):
            p = int(rng.integers(1, 8))
            seq[p] += int(rng.choice([-2, 0, 1, 1, 1, 2]))
            commands.append({"player": p, "seq": max(1, seq[p]), "op": "move", "dx": 1, "dy": 0})
            senders.append(int(rng.choice([0, p, p, p])) if seed % 2 else p)
        one = TickContext(tick=1, batch=Batch(1, b"", b""), view=view,
                          incoming=[Incoming(c, s or None, at) for c, s in zip(commands, senders)])
        many = TickContext(tick=1, batch=Batch(1, b"", b""), view=view, incoming=[block(commands, senders, at)])
        one, many = asyncio.run(singles(one)), asyncio.run(blocks(many))
        assert many.batch.commands == one.batch.commands
        assert [(r.incoming.command, r.incoming.sender, r.reason) for r in many.refusals] == \
            [(r.incoming.command, r.incoming.sender, r.reason) for r in one.refusals]
