"""Every error fluxworld raises on purpose. Imports nothing from the rest of fluxworld.

    FluxworldError
     +-- InputError          bad world file, batch file or command: names file, line, field
     +-- DivergenceError     the two engines disagree at a tick
     +-- CheckFailed         a consistency check failed (a stored world that does not match)
     +-- EngineError         the reducers failed; the world is unchanged
     |    +-- ReducerTrap    the WASM module trapped (a bug) or ran out of fuel
     +-- BuildError          the schema or the AssemblyScript build failed
     +-- StoreUnavailable    PostgreSQL cannot be reached now; the same write may be retried
     +-- RecoveryError       the stored world does not match its command log
     +-- XmppError           the XMPP server cannot be started or used (pipeline/xmpp/)
"""

from __future__ import annotations


class FluxworldError(Exception):
    """Base of every deliberate fluxworld error."""


class InputError(FluxworldError):
    """Malformed or out-of-range input, located as precisely as we can."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.file, self.line, self.field, self.reason = file, line, field, message
        where = ":".join(str(p) for p in (file, line) if p is not None)
        prefix = f"{where}: " if where else ""
        at = f"{field}: " if field else ""
        super().__init__(f"{prefix}{at}{message}")


class DivergenceError(FluxworldError):
    """The WASM and Python engines produced different results."""

    def __init__(self, tick: int, what: str) -> None:
        self.tick, self.what = tick, what
        super().__init__(f"engines diverge at tick {tick}: {what}")


class CheckFailed(FluxworldError):
    """A consistency check failed."""


class EngineError(FluxworldError):
    """A reducer call failed; the engine's world is as it was before the call."""

    def __init__(self, tick: int, message: str) -> None:
        self.tick = tick
        super().__init__(f"tick {tick}: {message}")


class ReducerTrap(EngineError):
    """The WASM module trapped or exhausted its fuel."""


class BuildError(FluxworldError):
    """Generating code from the schema or compiling the reducers failed."""


class StoreUnavailable(FluxworldError):
    """The database cannot be reached; nothing was committed, or the commit is recognisable."""


class RecoveryError(FluxworldError):
    """The world in the database does not hash to what its command log says."""


class XmppError(FluxworldError):
    """Starting, configuring or reaching the XMPP server failed; the message says why."""
