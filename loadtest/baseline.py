"""The conventional server design, same run, same database: one transaction per command.

The transfer workload's yardstick: N asyncio workers, each with its own
asyncpg connection, take commands in order from ONE shared iterator over the
TransferStream (closed loop, as fast as they go) and run each as its own
transaction:

    BEGIN
    SELECT id, balance FROM baseline_account WHERE id = ANY($1) ORDER BY id FOR UPDATE
    -- sender's balance < amount: ROLLBACK, the command is rejected (the game's rule)
    UPDATE ... balance - $2 (sender);  UPDATE ... balance + $2 (receiver)
    COMMIT

Locking both rows in id order means two transfers never wait for each other
in a cycle, so there are no deadlocks to retry.

"As many connections as helps": a short sweep runs each connection count for
`sweep_seconds`, then the best one runs for `seconds`. The sweep consumes the
stream too: the main run starts where the sweep stopped, so the commands
executed over the whole call are the stream's prefix in dispatch order (less
the last chunk read ahead and not used).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

from persistence.database import connect, redact
from persistence.errors import DatabaseUnavailable
from persistence.store import CONNECTION_LOST

from .transfers import TransferStream

if TYPE_CHECKING:
    import asyncpg

    Connection = asyncpg.Connection[asyncpg.Record]

Command = tuple[int, int, int]     # sender id, receiver id, amount
CHUNK = 4096                       # transfers read from the stream at a time
PROGRESS_EVERY = 1.0               # seconds

_CREATE = "CREATE TABLE IF NOT EXISTS baseline_account (id bigint PRIMARY KEY, balance bigint NOT NULL)"
_LOCK = "SELECT id, balance FROM baseline_account WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE"
_DEBIT = "UPDATE baseline_account SET balance = balance - $2 WHERE id = $1"
_CREDIT = "UPDATE baseline_account SET balance = balance + $2 WHERE id = $1"
_TOTAL = "SELECT coalesce(sum(balance), 0)::bigint AS total, count(*) AS n FROM baseline_account"


class _Rejected(Exception):
    """Insufficient funds: leaves the transaction block, which rolls back."""


async def run_baseline(dsn: str, *, accounts: int, initial_balance: int, stream: TransferStream, seconds: float,
                       connections: Sequence[int] = (4, 16, 64), sweep_seconds: float = 2.0,
                       progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Fill `baseline_account` and run `stream` against it; the best connection count's figures.

    commands_per_s counts committed and rejected commands alike (each ran a
    transaction). A sweep is skipped when `connections` has one value.
    DatabaseUnavailable when the server cannot be reached or goes away.
    """
    if stream.accounts != accounts:
        raise ValueError(f"the stream draws from {stream.accounts} accounts, the table would hold {accounts}")
    if not connections or min(connections) < 1:
        raise ValueError(f"connection counts must be at least 1, got {list(connections)}")
    conns: list[Connection] = []
    try:
        setup = await connect(dsn)
        conns.append(setup)
        await _fill(setup, accounts, initial_balance)
        # Connections are opened once for all phases; idle ones cost the server next to nothing.
        conns += await asyncio.gather(*(connect(dsn) for _ in range(max(connections) - 1)))
        await asyncio.gather(*(_prepare(c) for c in conns))
        commands = _commands(stream)
        swept: dict[int, float] = {}      # connection count -> commands/s
        if len(connections) > 1:
            for count in connections:
                swept[count] = (await _phase(conns[:count], commands, sweep_seconds, None, progress))[2]
        best = max(swept, key=swept.__getitem__) if swept else connections[0]
        latencies: list[float] = []
        committed, rejected, rate, elapsed = await _phase(conns[:best], commands, seconds, latencies, progress)
        row = await setup.fetchrow(_TOTAL)
    except DatabaseUnavailable:
        raise
    except Exception as e:
        # A dying connection can also surface from asyncpg's client side (an InterfaceError
        # saying it is closed, from the transaction's exit): a closed connection tells.
        if not (isinstance(e, CONNECTION_LOST) or any(c.is_closed() for c in conns)):
            raise                                   # a refusal or a bug, not an outage
        why = _root_cause(e)
        raise DatabaseUnavailable(f"lost PostgreSQL at {redact(dsn)} during the baseline: "
                                  f"{type(why).__name__}: {why}") from e
    finally:
        await asyncio.gather(*(c.close(timeout=5) for c in conns), return_exceptions=True)
    assert row is not None
    ms = np.percentile(np.asarray(latencies) * 1e3, [50, 99, 100]) if latencies else np.zeros(3)
    return {"connections": best, "commands_per_s": rate, "committed": committed, "rejected": rejected,
            "seconds": elapsed, "sweep": [{"connections": c, "commands_per_s": x} for c, x in swept.items()],
            "latency_ms": {"p50": float(ms[0]), "p99": float(ms[1]), "max": float(ms[2])},
            "balance_conserved": row["n"] == accounts and row["total"] == accounts * initial_balance}


def _root_cause(error: BaseException) -> BaseException:
    """The connection error behind `error` when it was raised while handling one (the
    transaction's rollback on a dead connection fails too), else `error`."""
    seen: BaseException | None = error
    while seen is not None and not isinstance(seen, CONNECTION_LOST):
        seen = seen.__context__
    return seen or error


async def _fill(conn: Connection, accounts: int, initial_balance: int) -> None:
    """(Re)create the accounts: ids 1..accounts (account index i is id i+1), each `initial_balance`."""
    await conn.execute(_CREATE)
    async with conn.transaction():
        await conn.execute("TRUNCATE baseline_account")
        await conn.copy_records_to_table("baseline_account", columns=("id", "balance"),
                                         records=((i, initial_balance) for i in range(1, accounts + 1)))
    # Fresh statistics and visibility map, so the first phase does not pay for them.
    await conn.execute("VACUUM ANALYZE baseline_account")


async def _prepare(conn: Connection) -> None:
    """Run each statement once on no rows (ids start at 1), so that asyncpg has prepared and
    cached them before the clock starts: the sweep's later counts would pay for it otherwise."""
    await conn.fetch(_LOCK, [])
    await conn.execute(_DEBIT, 0, 0)
    await conn.execute(_CREDIT, 0, 0)


def _commands(stream: TransferStream) -> Iterator[Command]:
    """The stream as one command at a time, ids rather than indexes (read in chunks: take() is per call)."""
    while True:
        senders, receivers, amounts = stream.take(CHUNK)
        yield from zip((senders + 1).tolist(), (receivers + 1).tolist(), amounts.tolist())


async def _transfer(conn: Connection, sender: int, receiver: int, amount: int) -> bool:
    """One command in one transaction; False when rejected for insufficient funds."""
    try:
        async with conn.transaction():
            rows = await conn.fetch(_LOCK, [sender, receiver])
            balance = next(r["balance"] for r in rows if r["id"] == sender)
            if balance < amount:
                raise _Rejected
            await conn.execute(_DEBIT, sender, amount)
            await conn.execute(_CREDIT, receiver, amount)
    except _Rejected:
        return False
    return True


async def _phase(conns: Sequence[Connection], commands: Iterator[Command], seconds: float,
                 latencies: list[float] | None, progress: Callable[[str], None]) -> tuple[int, int, float, float]:
    """Run `commands` on one worker per connection for `seconds`: (committed, rejected, commands/s, elapsed)."""
    counts = [0, 0]                # committed, rejected
    start = time.perf_counter()
    deadline = start + seconds

    async def worker(conn: Connection) -> None:
        # The deadline is checked before taking a command, so none is taken and dropped.
        while time.perf_counter() < deadline:
            sender, receiver, amount = next(commands)   # no await between: the iterator needs no lock
            began = time.perf_counter()
            ok = await _transfer(conn, sender, receiver, amount)
            if latencies is not None:
                latencies.append(time.perf_counter() - began)
            counts[0 if ok else 1] += 1

    def report() -> None:
        done = counts[0] + counts[1]
        progress(f"baseline, {len(conns)} connections: {done / (time.perf_counter() - start):,.0f} commands/s "
                 f"({done:,} done, {counts[1]:,} rejected)")

    async def report_every_second() -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            report()

    reporter = asyncio.create_task(report_every_second())
    workers = [asyncio.create_task(worker(c)) for c in conns]
    try:
        await asyncio.gather(*workers)
    finally:
        # On a failure, stop the other workers too before the connections are closed under them.
        for task in (*workers, reporter):
            task.cancel()
        await asyncio.gather(*workers, reporter, return_exceptions=True)
    report()                       # once more at the end: a phase may be shorter than a second
    elapsed = time.perf_counter() - start
    return counts[0], counts[1], (counts[0] + counts[1]) / elapsed, elapsed
