"""The errors persistence/ raises on purpose; all are pipeline FluxworldErrors.

    FluxworldError                 (vocabulary/errors.py)
     +-- DatabaseError             PostgreSQL refused or failed; the message says what to do
          +-- DatabaseUnavailable  cannot reach or start the server, or it is too old; also a
          |                        pipeline StoreUnavailable, which the runner retries
          +-- PassingFailure       a statement failed for a reason that passes (a deadlock, a
          |                        timeout, an operator's cancel): nothing was written; also a
          |                        StoreUnavailable, so the runner retries it
          +-- SchemaNotCurrent     migrations are pending: run `fluxworld db migrate`
          +-- WorldExists          seeding over a stored world without replace
          +-- NoWorld              the database holds no world yet
          +-- TickConflict         a tick already committed, or not after the stored tick
          +-- Fenced               another server has taken the world over: this one must stop

asyncpg's own exceptions are translated into these at the edge of this
package, so callers never import asyncpg to handle them.
"""

from __future__ import annotations

from vocabulary.errors import FluxworldError, StoreUnavailable


class DatabaseError(FluxworldError):
    """Something about the database went wrong."""


class DatabaseUnavailable(DatabaseError, StoreUnavailable):
    """The server cannot be reached, started, or is unsuitable."""


class PassingFailure(DatabaseError, StoreUnavailable):
    """The statement failed and wrote nothing, for a reason that passes: the same write may be retried."""


class SchemaNotCurrent(DatabaseError):
    """The database's schema revision is not the migrations' head."""


class WorldExists(DatabaseError):
    """A world is already stored and replace was not asked for."""


class NoWorld(DatabaseError):
    """No world has been seeded into this database."""


class TickConflict(DatabaseError):
    """A tick was committed twice, or out of order: it is never applied twice."""

    def __init__(self, tick: int, message: str) -> None:
        self.tick = tick
        super().__init__(f"tick {tick}: {message}")


class Fenced(DatabaseError):
    """Another server took the world (a newer fence token): this one may never write it again."""
