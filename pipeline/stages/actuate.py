"""Stage 6, actuate: commit the tick, then let its effects out.

One transaction applies the planned writes, moves the world header and
appends the command log row (persistence/store.py). Effects go out only
after that commit returns, so no player ever sees a tick that could be lost.
The tick's sightings (computed meanwhile on the engine's thread) join its
other effects here. The runner keeps commits and deliveries in tick order.
"""

from __future__ import annotations

import time

from ..context import TickContext
from ..ports import Outbox, Store


class Actuate:
    def __init__(self, store: Store | None, outbox: Outbox | None) -> None:
        self.store, self.outbox = store, outbox

    async def __call__(self, ctx: TickContext) -> TickContext:
        if self.store is not None:
            assert ctx.write is not None, "actuate runs after plan"
            started = time.perf_counter()
            await self.store.commit_tick(ctx.write)
            ctx.timings["commit"] = time.perf_counter() - started
        await ctx.sighted()
        if self.outbox is not None:
            await self.outbox.deliver(ctx)
        return ctx
