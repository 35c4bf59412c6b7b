"""run_baseline on a real PostgreSQL: one transaction per command, money neither made nor lost."""

import asyncio

import pytest

from loadtest.baseline import run_baseline
from loadtest.transfers import TransferStream
from persistence.errors import DatabaseUnavailable

ACCOUNTS = 1000


async def test_runs_the_stream_and_conserves_the_money(fresh_dsn, run_sql):
    messages = []
    result = await run_baseline(fresh_dsn, accounts=ACCOUNTS, initial_balance=1000,
                                stream=TransferStream(ACCOUNTS, 1.5, seed=1), seconds=0.6,
                                connections=(2, 4), sweep_seconds=0.3, progress=messages.append)
    assert result["connections"] in (2, 4)
    assert [s["connections"] for s in result["sweep"]] == [2, 4]
    assert all(s["commands_per_s"] > 0 for s in result["sweep"])
    assert result["committed"] > 0 and result["balance_conserved"]
    assert result["commands_per_s"] == pytest.approx((result["committed"] + result["rejected"]) / result["seconds"])
    assert result["seconds"] >= 0.6
    latency = result["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert len(messages) >= 3 and all("commands/s" in m for m in messages)     # at least one a phase
    [row] = run_sql(fresh_dsn, "SELECT count(*) AS n, sum(balance)::bigint AS total, min(id) AS lo, max(id) AS hi "
                               "FROM baseline_account")
    assert tuple(row) == (ACCOUNTS, ACCOUNTS * 1000, 1, ACCOUNTS)
    # Money moved: the hot accounts' balances are not all the initial one any more.
    [moved] = run_sql(fresh_dsn, "SELECT count(*) FROM baseline_account WHERE balance <> 1000")
    assert moved[0] > 0


async def test_insufficient_funds_are_rejected_and_nothing_goes_negative(fresh_dsn, run_sql):
    # One coin each, amounts 1..100: most transfers are refused. One connection runs the
    # stream's prefix in order, so the outcome is exactly the game's rule replayed here.
    result = await run_baseline(fresh_dsn, accounts=ACCOUNTS, initial_balance=1,
                                stream=TransferStream(ACCOUNTS, 0.0, seed=19, max_amount=100), seconds=0.5,
                                connections=(1,))
    assert result["sweep"] == [] and result["connections"] == 1      # one count: nothing to sweep
    assert result["balance_conserved"]
    executed = result["committed"] + result["rejected"]
    balance = [1] * ACCOUNTS
    committed = 0
    for sender, receiver, amount in zip(*TransferStream(ACCOUNTS, 0.0, seed=19, max_amount=100).take(executed)):
        if 0 < amount <= balance[sender]:
            balance[sender] -= amount
            balance[receiver] += amount
            committed += 1
    assert result["committed"] == committed and result["rejected"] > 5 * committed > 0
    rows = run_sql(fresh_dsn, "SELECT id, balance FROM baseline_account ORDER BY id")
    assert [r["balance"] for r in rows] == balance and min(balance) >= 0


async def test_refills_the_table_on_each_run(fresh_dsn, run_sql):
    run_sql(fresh_dsn, "CREATE TABLE baseline_account (id bigint PRIMARY KEY, balance bigint NOT NULL)")
    run_sql(fresh_dsn, "INSERT INTO baseline_account VALUES (5000, 7)")
    result = await run_baseline(fresh_dsn, accounts=10, initial_balance=50, stream=TransferStream(10, 0.0, seed=3),
                                seconds=0.2, connections=(1,))
    assert result["balance_conserved"]
    [row] = run_sql(fresh_dsn, "SELECT count(*), max(id) FROM baseline_account")
    assert tuple(row) == (10, 10)


async def test_a_stream_over_other_accounts_is_refused(fresh_dsn):
    with pytest.raises(ValueError, match="accounts"):
        await run_baseline(fresh_dsn, accounts=10, initial_balance=1, stream=TransferStream(20, 0.0, seed=1),
                           seconds=0.1)


async def test_an_unreachable_server_is_named(fresh_dsn):
    dsn = "postgresql://nobody@127.0.0.1:1/nowhere"
    with pytest.raises(DatabaseUnavailable, match="127.0.0.1:1"):
        await run_baseline(dsn, accounts=10, initial_balance=1, stream=TransferStream(10, 0.0, seed=1), seconds=0.1)


async def test_losing_the_server_mid_run_is_named(fresh_dsn, run_sql):
    async def kill_backends():
        await asyncio.sleep(0.3)
        run_sql(fresh_dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")

    killer = asyncio.create_task(kill_backends())
    with pytest.raises(DatabaseUnavailable, match="during the baseline"):
        await run_baseline(fresh_dsn, accounts=ACCOUNTS, initial_balance=1000,
                           stream=TransferStream(ACCOUNTS, 0.0, seed=1), seconds=5, connections=(4,))
    await killer
