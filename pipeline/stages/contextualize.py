"""Stage 2, contextualize: the tick's working set, and loading what is missing.

The whole world is loaded when the server starts (recovery checks its hash),
so the engine holds every entity the server has seen. What can still be
missing is an entity created in PostgreSQL by another program since then:
the working set (each command's player and target) is checked against the
view and whatever is absent is asked for in one round trip. Found records go
to project; ids that exist nowhere are left for the rules to reject or
(join) create. While the database is unreachable the tick waits here
(pipeline/server/retry.py).

Only ids from the world's next_id up to the ids play creates (vocabulary/ids.py
PLAY_IDS) are looked for. The world handed out every id below next_id, and
its zones every id from PLAY_IDS up, so one of those missing from the view
was removed by a tick, and while that tick's commit is still in flight (the
next tick is computed beside it) its row is still in PostgreSQL: loading it
would bring a picked-up item back, gold and all. Another program that adds
entities must therefore give them ids from next_id up, as player accounts do.
"""

from __future__ import annotations

import numpy as np

from schema._generated.layout import COMMAND_DTYPE
from vocabulary.ids import PLAY_IDS

from ..context import TickContext
from ..ports import Store
from ..server.retry import Outages, until_available


class Contextualize:
    def __init__(self, store: Store | None, outages: Outages | None = None) -> None:
        self.store, self.outages = store, outages

    async def __call__(self, ctx: TickContext) -> TickContext:
        if self.store is None or not ctx.batch.commands:
            return ctx
        commands = np.frombuffer(ctx.batch.commands, dtype=COMMAND_DTYPE)
        wanted = np.unique(np.concatenate([commands["player"], commands["target"]]))
        view = ctx.view
        outside = wanted[(wanted >= view.next_id) & (wanted < PLAY_IDS)]
        missing = [i for i in outside.tolist() if i not in view]
        if missing:
            store = self.store
            ctx.loaded = await until_available(f"tick {ctx.tick} load", lambda: store.load_entities(missing),
                                               tick=ctx.tick, outages=self.outages)
            ctx.view = ctx.view.with_records(ctx.loaded)
        return ctx
