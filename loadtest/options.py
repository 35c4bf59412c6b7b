"""The load test's options, as `fluxworld loadtest` takes them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from vocabulary.errors import InputError

SCENARIOS = ("mmo", "crowd", "transfer")
TRANSPORTS = ("inproc", "xmpp")
ENGINES = ("wasm", "python", "both")
# Commands a player sends a second, unless --rate says otherwise: an mmo
# player acts about twice a second; the bank's 100,000 accounts together
# offer 100,000 transfers a second (the goal), hot accounts many more.
DEFAULT_RATE = {"mmo": 2.0, "crowd": 2.0, "transfer": 1.0}
DEFAULT_PLAYERS = {"mmo": 10_000, "crowd": 2_000, "transfer": 100_000}


@dataclass(frozen=True)
class LoadOptions:
    scenario: str = "mmo"
    players: int = 10_000
    more_players: tuple[int, ...] = ()      # further player counts, a run each (the scaling plot)
    hz: float = 20.0
    duration: float = 30.0
    transport: str = "inproc"
    engine: str = "wasm"
    db: str = "embedded"              # "embedded", a postgresql:// DSN, or "none"
    report: Path | None = None
    rate: float = 2.0                 # commands per player per second, offered
    alpha: float = 1.5                # transfer: Zipf exponent picking accounts (0 = uniform)
    seed: int = 1
    queue_seconds: float = 2.0        # the inbox holds this many seconds of offered load; beyond, it drops
    baseline: bool = True             # transfer: also run the one-transaction-per-command baseline
    baseline_connections: tuple[int, ...] = (4, 16, 64)   # swept; the best one is reported
    echo: bool = True                 # xmpp: also measure the bare echo component
    open_loop: bool = False           # xmpp: bots offer `rate` a second each (Poisson) instead of a closed loop
    updates_hz: float | None = None   # xmpp: how often a bot hears from the world (None: the gateway's default)
    bot_processes: int = 1            # xmpp: worker processes for the bots
    xmpp_servers: int = 1             # xmpp: private Prosodys, the bots spread over them, a gateway each
    flooders: int = 0                 # xmpp: bots that flood; the world then keeps serve's own limits
    console: bool = False             # inproc: /metrics and the console served and watched during the run
    shards: int = 1                   # mmo inproc: zone groups, each ticked by a worker process (loadtest/sharded.py)
    more_shards: tuple[int, ...] = ()  # further shard counts, a run each at every player count (the scaling plot)
    shards_check: bool = True         # --shards: replay every group's log in one process afterwards

    def check(self) -> None:
        """InputError for a combination no run can do."""
        if self.transport == "xmpp" and self.scenario != "mmo":
            raise InputError("--transport xmpp runs the mmo scenario (the bank's transfers are in-process only)")
        if self.transport == "xmpp" and self.db == "none":
            raise InputError("--transport xmpp needs a database: player accounts live there (--db embedded or a DSN)")
        if self.xmpp_servers > 1 and self.transport != "xmpp":
            raise InputError("--xmpp-servers spreads XMPP bots over servers: it needs --transport xmpp")
        if self.console and self.transport != "inproc":
            raise InputError("--console is measured with --transport inproc (the tick loop's cost alone)")
        if self.flooders and (self.transport != "xmpp" or not self.open_loop):
            raise InputError("--flooders needs --transport xmpp --open-loop: the others keep to their --rate")
        if self.flooders and self.flooders >= min(self.players, *self.more_players, self.players):
            raise InputError(f"--flooders {self.flooders} leaves no player to measure among {self.players}")
        if max((self.shards, *self.more_shards)) > 1:
            self._check_shards()

    def _check_shards(self) -> None:
        from .scenarios import PLAYERS_PER_ZONE

        if self.transport != "inproc":
            raise InputError("--shards runs shard worker processes fed in-process: use --transport inproc")
        if self.db == "none":
            raise InputError("--shards needs a database: each zone group is a database of its own "
                             "(--db embedded or a DSN)")
        if self.scenario != "mmo":
            raise InputError(f"--shards runs the mmo scenario ({self.scenario} has one zone, so nothing to split)")
        if self.console:
            raise InputError("--console watches one process's tick loop: not with --shards")
        shards = max((self.shards, *self.more_shards))
        for players in (self.players, *self.more_players):
            zones = -(-players // PLAYERS_PER_ZONE)
            if zones < shards:
                raise InputError(f"--shards {shards} needs at least {shards} zones, but {players:,} players "
                                 f"make {zones} ({PLAYERS_PER_ZONE:,} a zone): give --players "
                                 f"{shards * PLAYERS_PER_ZONE:,} or more")

    @property
    def engines(self) -> tuple[str, ...]:
        return ("wasm", "python") if self.engine == "both" else (self.engine,)

    def runs(self) -> list[LoadOptions]:
        """One set of options per run: each player count, and at each, every shard count and engine
        one after the other, so the runs compared at a count share the machine's mood of the moment."""
        return [replace(self, players=n, more_players=(), shards=shards, more_shards=(), engine=engine)
                for n in (self.players, *self.more_players) for shards in (self.shards, *self.more_shards)
                for engine in self.engines]

    @property
    def offered_per_second(self) -> float:
        return self.players * self.rate
