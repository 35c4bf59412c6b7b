"""`fluxworld console --db`: the console of a stored world, with no world server running.

The map shows the stored world, read again when the database's tick moves
(a server may be running elsewhere against it), an entity's panel its
commands in the last logged ticks (effects are not stored; time travel to
a tick rebuilds the world it left), and time travel works as it does in a
running server. There are no charts: nothing ticks here.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

from aiohttp import web

from persistence.store import WorldStore

from ..view import WorldView
from .console import Console
from .recent import KEPT, SHOWN, commands_of
from .token import TOKEN_FILE, admin_token, guard

log = logging.getLogger(__name__)

RELOAD_EVERY = 1.0       # seconds between looks at the database's tick


class StoredWorld:
    """A stored world: read again from the database when its tick moves."""

    def __init__(self, store: WorldStore, dsn: str) -> None:
        self.store, self._dsn = store, dsn
        self._view: WorldView | None = None
        self._hash: bytes | None = None
        self._checked = 0.0

    @property
    def dsn(self) -> str | None:
        return self._dsn

    async def current(self) -> WorldView | None:
        if time.monotonic() - self._checked >= RELOAD_EVERY:
            self._checked = time.monotonic()
            stored = await self.store.stored_hash()
            if stored is not None and (self._view is None or stored[0] != self._view.tick):
                self._view = WorldView.from_world(await self.store.load_world())
                self._hash = stored[1]
        return self._view

    def header(self) -> dict[str, Any]:
        return {"mode": "stored", "hash": self._hash.hex() if self._hash else None}

    def figures(self) -> dict[str, Any] | None:
        return None

    async def history(self, entity_id: int) -> dict[str, Any]:
        if self._view is None:
            return {"commands": [], "effects": []}
        commands: list[dict[str, Any]] = []
        async for batch in self.store.read_log(max(0, self._view.tick - KEPT), self._view.tick):
            commands += commands_of(batch, entity_id)
        return {"kept_ticks": KEPT, "commands": commands[::-1][:SHOWN], "effects": []}

    async def wait_for_slack(self) -> None:
        return None


async def serve_console(db: str, host: str, port: int, state: Any) -> None:
    """Serve the console of the world stored in `db` on host:port until SIGINT or SIGTERM.
    `state` is the state directory, where the admin token is."""
    from persistence.database import open_database
    from persistence.migrator import require_current

    from .http import listen

    token = admin_token(state)
    async with open_database(db) as database:
        await require_current(database.dsn)
        console = Console(StoredWorld(database.store(), database.dsn))
        app = web.Application(middlewares=[guard(token)])
        app.add_routes(console.routes())
        runner = web.AppRunner(app, access_log=None)
        try:
            address = await listen(runner, host, port)
            log.info("console of the stored world: http://%s:%d/console?token=TOKEN, TOKEN in %s", *address,
                     state / TOKEN_FILE)
            stop = asyncio.Event()
            running = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                running.add_signal_handler(sig, stop.set)
            await stop.wait()
        finally:
            await console.close()
            await runner.cleanup()
