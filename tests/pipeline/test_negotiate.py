"""Negotiate: malformed, not allowed, out of order and over the rate are refused at once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from pipeline.context import TickContext
from pipeline.stages.negotiate import Negotiate
from pipeline.view import WorldView
from schema._generated.layout import COMMAND_DTYPE
from tests.support import npc, player, world
from vocabulary.types import Batch, Incoming

VIEW = WorldView.from_world(world(player(1, 5, 5, last_seq=4), player(2, 6, 6), npc(3, 1, 1)))


def negotiate(*incoming: Incoming, stage: Negotiate | None = None) -> TickContext:
    ctx = TickContext(tick=1, batch=Batch(1, b"", b""), view=VIEW, incoming=list(incoming))
    return asyncio.run((stage or Negotiate())(ctx))


def sent(command: dict[str, Any], sender: int | None = 1, at: float = 0.0) -> Incoming:
    return Incoming(command=command, sender=sender, received=at)


def accepted(ctx: TickContext) -> list[tuple[int, int]]:
    return [(c["player"], c["seq"]) for c in np.frombuffer(ctx.batch.commands, dtype=COMMAND_DTYPE)]


def test_accepted_commands_keep_their_arrival_order():
    ctx = negotiate(sent({"player": 2, "seq": 1, "op": "use"}, sender=2),
                    sent({"player": 1, "seq": 5, "op": "move", "dx": 1, "dy": 0}),
                    sent({"player": 1, "seq": 6, "op": "say", "text": "hi"}))
    assert accepted(ctx) == [(2, 1), (1, 5), (1, 6)] and ctx.refusals == []
    assert ctx.batch.text == b"hi"


def test_malformed_commands_are_refused_naming_the_field():
    ctx = negotiate(sent({"player": 1, "seq": 5, "op": "move", "dx": "1", "dy": 0}),
                    sent({"player": 1, "seq": 6, "op": "fly"}),
                    sent(["not", "an", "object"]))
    reasons = [r.reason for r in ctx.refusals]
    assert reasons[0].startswith("malformed: dx:") and "op" in reasons[1] and "malformed" in reasons[2]
    assert accepted(ctx) == []


def test_a_player_commands_only_its_own_entity():
    ctx = negotiate(sent({"player": 2, "seq": 1, "op": "leave"}, sender=1))
    assert ctx.refusals[0].reason.startswith("not allowed: player 2 is not your entity")


def test_stale_and_duplicate_seqs_are_refused():
    ctx = negotiate(sent({"player": 1, "seq": 4, "op": "leave"}),      # last accepted was 4
                    sent({"player": 1, "seq": 5, "op": "use"}),
                    sent({"player": 1, "seq": 5, "op": "use"}))
    assert accepted(ctx) == [(1, 5)]
    assert [r.reason for r in ctx.refusals] == ["out of order: seq 4 is not above your last seq 4",
                                                "out of order: seq 5 is not above your last seq 5"]


def test_a_seq_may_not_leap_so_far_that_the_seq_space_runs_out():
    ctx = negotiate(sent({"player": 1, "seq": 2**62, "op": "use"}),          # would leave no higher seq
                    sent({"player": 1, "seq": 4 + 2**32, "op": "use"}),      # the largest step
                    sent({"player": 1, "seq": 5 + 2**33, "op": "use"}),      # one more than that
                    sent({"player": 1, "seq": 2**62, "op": "use"}, sender=None),    # trusted: no bound
                    stage=Negotiate(clock=lambda: 0))
    assert accepted(ctx) == [(1, 4 + 2**32), (1, 2**62)]
    assert [r.reason.split(" leaps")[0] for r in ctx.refusals] == [f"out of order: seq {2**62}",
                                                                   f"out of order: seq {5 + 2**33}"]
    assert ctx.refusals[0].reason.endswith(f"at most {2**32} above your last seq 4 or above the time in "
                                           "microseconds since 1970")


def test_a_seq_may_be_the_time_in_microseconds():
    now = time.time_ns() // 1000
    ctx = negotiate(sent({"player": 1, "seq": now, "op": "use"}), sent({"player": 1, "seq": now + 2**33, "op": "use"}))
    assert accepted(ctx) == [(1, now)] and len(ctx.refusals) == 1


def test_a_flood_is_rate_limited_and_the_bucket_refills():
    stage = Negotiate(rate=10, burst=3)
    flood = [sent({"player": 1, "seq": s, "op": "use"}, at=0.0) for s in range(5, 11)]
    ctx = negotiate(*flood, stage=stage)
    assert accepted(ctx) == [(1, 5), (1, 6), (1, 7)]
    assert all(r.reason.startswith("rate limited") for r in ctx.refusals) and len(ctx.refusals) == 3
    later = negotiate(sent({"player": 1, "seq": 11, "op": "use"}, at=0.1), stage=stage)   # one token back
    assert accepted(later) == [(1, 11)]


def test_trusted_input_has_no_sender_check():
    ctx = negotiate(sent({"player": 2, "seq": 1, "op": "use"}, sender=None))
    assert accepted(ctx) == [(2, 1)]


def test_unreadable_input_and_oversized_text_are_refused_with_a_reason():
    from pipeline.stages.negotiate import MAX_TEXT_BYTES
    from vocabulary.types import Unreadable

    ctx = negotiate(sent(Unreadable("unknown command 'fly'")),
                    sent({"player": 1, "seq": 5, "op": "say", "text": "x" * (MAX_TEXT_BYTES + 1)}),
                    sent({"player": 1, "seq": 6, "op": "say", "text": "x" * 201}))
    assert [r.reason for r in ctx.refusals] == [
        "malformed: unknown command 'fly'", f"too large: text is {MAX_TEXT_BYTES + 1} bytes, at most 1024"]
    assert accepted(ctx) == [(1, 6)]   # 201 bytes: the rules' bad_text, not negotiate's
