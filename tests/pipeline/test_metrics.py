"""What the tick loop counts: commands by outcome, refusals by kind, rule rejections, effects, traps."""

from __future__ import annotations

import time

from pipeline.context import TickContext
from pipeline.link.world import DROPPED
from pipeline.metrics import REFUSAL_KINDS, TickMetrics, refusal_kind
from pipeline.server.runner import Pipeline
from pipeline.stages.negotiate import Negotiate
from pipeline.stages.transform import TRAPPED
from pipeline.view import WorldView
from tests.pipeline.test_transform_traps import WORLD, TrapsOnBoom
from vocabulary.types import Batch, Incoming, Unreadable


def test_a_refusal_is_labelled_by_its_kind_never_its_text():
    assert refusal_kind("malformed: commands[0].dx: expected an integer") == "malformed"
    assert refusal_kind("too large: text is 9000 bytes, at most 4096") == "too_large"
    assert refusal_kind("not allowed: player 4 is not your entity (5)") == "not_allowed"
    assert refusal_kind("out of order: seq 1 is not above your last seq 7") == "out_of_order"
    assert refusal_kind("rate limited: at most 10 commands at once, 20 a second") == "rate_limited"
    assert refusal_kind(DROPPED) == "dropped"
    assert refusal_kind(TRAPPED) == "trapped"
    assert refusal_kind("who knows: <script>") == refusal_kind("") == "other"
    assert set(REFUSAL_KINDS) >= {refusal_kind(r) for r in ("malformed: x", DROPPED, TRAPPED, "x")}


def count(metrics: TickMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value or 0.0


async def test_one_tick_counts_each_outcome():
    """Two commands run; four are refused (three by negotiate, one the rules trap on); one is rejected."""
    now = time.monotonic()
    commands = [Incoming({"player": 1, "seq": 1, "op": "move", "dx": 1, "dy": 0}, 1, now),
                Incoming({"player": 2, "seq": 1, "op": "say", "text": "boom"}, 2, now),
                Incoming({"player": 3, "seq": 1, "op": "attack", "target": 999}, 3, now),
                Incoming({"player": 4, "seq": 1, "op": "use"}, 5, now),
                Incoming({"player": 1, "seq": 1, "op": "use"}, 1, now),          # seq 1 again
                Incoming(Unreadable("not XML"), 1, now)]
    engine = TrapsOnBoom()
    view = WorldView.from_world(WORLD)
    engine.project(view.frame())
    metrics = TickMetrics()
    pipeline = Pipeline(engine, None, None, negotiate=Negotiate(), metrics=metrics)
    ctx = await pipeline.commit(await pipeline.compute(TickContext(1, Batch(1, b"", b""), view, incoming=commands)))
    assert ctx.trapped
    assert count(metrics, "fluxworld_commands_total", outcome="accepted") == 2
    assert count(metrics, "fluxworld_commands_total", outcome="refused") == 4
    assert {kind: count(metrics, "fluxworld_commands_refused_total", reason=kind) for kind in REFUSAL_KINDS} == \
        {"malformed": 1, "too_large": 0, "not_allowed": 1, "out_of_order": 1, "rate_limited": 0, "dropped": 0,
         "trapped": 1, "elsewhere": 0, "other": 0}
    assert count(metrics, "fluxworld_engine_traps_total") == 1
    assert count(metrics, "fluxworld_rule_rejections_total", reason="no_target") == 1
    assert count(metrics, "fluxworld_effects_total", kind="rejected") == 1
    assert count(metrics, "fluxworld_effects_total", kind="update") > 0      # the sightings are counted too
    assert count(metrics, "fluxworld_commit_rows_count") == 1
    metrics.dropped(7)
    metrics.dropped(7)
    assert count(metrics, "fluxworld_commands_total", outcome="dropped") == 7
