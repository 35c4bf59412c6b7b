"""The "transfer" workload: a seeded stream of money transfers between accounts.

The SpacetimeDB keynote benchmark's workload: `accounts` accounts; each
command moves a random amount (1..max_amount) from one account to another,
both picked from a Zipf distribution over the accounts, P(rank k) ~ 1/k**alpha
(alpha is the contention knob; 0 is uniform, the keynote's default is 1.5).

    stream = TransferStream(100_000, alpha=1.5, seed=7)
    sender, receiver, amount = stream.take(1_000)   # int64 arrays; account indexes 0..accounts-1

The fluxworld run and the conventional baseline must see the SAME commands,
so the stream is a pure function of (accounts, alpha, seed, max_amount): it is
generated in fixed blocks of BLOCK transfers and buffered, and take() only
slices, so take(10) then take(5) equals take(15) however the calls are chunked.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

BLOCK = 1 << 16            # transfers per generated block; part of the stream's definition
HOT_SHARE = 0.01           # contention() counts transfers touching the hottest 1% of accounts

Int64Array = npt.NDArray[np.int64]


def zipf_probabilities(accounts: int, alpha: float) -> npt.NDArray[np.float64]:
    """P(rank k) for k = 1..accounts, proportional to 1/k**alpha (rank 1 first)."""
    weights = np.arange(1, accounts + 1, dtype=np.float64) ** -alpha
    return weights / float(weights.sum())


def contention(alpha: float, accounts: int) -> float:
    """The share of transfers that touch (as sender or receiver) one of the 1%
    hottest accounts (at least one account), exactly, under TransferStream's rule
    (receiver redrawn while it equals the sender). Uniform: ~2%; alpha 1.5 over
    100,000 accounts: ~99.95%. (The keynote's "~80% contention" is its runner's
    measured share of commands meeting another in-flight command on an account,
    which depends on the concurrency, not only on the distribution.)"""
    _check(accounts, alpha)
    p = zipf_probabilities(accounts, alpha)
    cold = p[max(1, math.ceil(accounts * HOT_SHARE)):]
    cold_total = cold.sum()
    # Given a cold sender s, the receiver is cold with probability (cold_total - p_s) / (1 - p_s).
    both_cold = float((cold * (cold_total - cold) / (1.0 - cold)).sum())
    return 1.0 - both_cold


class TransferStream:
    """A seeded, reproducible stream of transfers between `accounts` accounts."""

    def __init__(self, accounts: int, alpha: float, seed: int, max_amount: int = 100) -> None:
        _check(accounts, alpha)
        if max_amount < 1:
            raise ValueError(f"max_amount must be at least 1, got {max_amount}")
        self.accounts, self.alpha, self.seed, self.max_amount = accounts, alpha, seed, max_amount
        layout_seed, draw_seed = np.random.SeedSequence(seed).spawn(2)
        # Rank -> account index through a random permutation, so that the hot
        # accounts are spread over the id range rather than being ids 1, 2, 3.
        account_of_rank = np.random.Generator(np.random.PCG64(layout_seed)).permutation(accounts)
        prob, alias = _alias_table(zipf_probabilities(accounts, alpha))
        self._prob = prob
        self._keep = account_of_rank                 # the account when the draw keeps its column
        self._alias = account_of_rank[alias]         # the account when it takes the column's alias
        self._rng = np.random.Generator(np.random.PCG64(draw_seed))
        self._block = _empty()
        self._pos = BLOCK                            # as if a block had just run out: generate on first take
        self.taken = 0                               # transfers handed out so far

    def take(self, n: int) -> tuple[Int64Array, Int64Array, Int64Array]:
        """The next `n` transfers as (sender, receiver, amount) int64 arrays of length n."""
        if n < 0:
            raise ValueError(f"cannot take {n} transfers")
        parts: list[tuple[Int64Array, Int64Array, Int64Array]] = []
        left = n
        while left:
            if self._pos == BLOCK:
                self._block, self._pos = self._generate_block(), 0
            start = self._pos
            k = min(left, BLOCK - start)
            sender, receiver, amount = self._block
            parts.append((sender[start:start + k], receiver[start:start + k], amount[start:start + k]))
            self._pos += k
            left -= k
        self.taken += n
        if not parts:
            return _empty()
        # Copies (concatenate always copies), so callers may keep or modify them.
        return (np.concatenate([part[0] for part in parts]), np.concatenate([part[1] for part in parts]),
                np.concatenate([part[2] for part in parts]))

    def _draw(self, n: int) -> Int64Array:
        """`n` account indexes from the Zipf distribution, by Walker's alias method:
        O(1) a draw. (np.searchsorted on the cumulative weights made 2.6 M
        transfers/s at alpha 0 over 100,000 accounts, 11 M/s at 1.5: each binary
        search misses the cache; this makes 14-25 M/s.) One uniform gives both the
        column (its integer part) and the coin (its fraction: 36 bits left of 53)."""
        x = self._rng.random(n) * self.accounts
        column = x.astype(np.int64)
        return np.where(x - column < self._prob[column], self._keep[column], self._alias[column])

    def _generate_block(self) -> tuple[Int64Array, Int64Array, Int64Array]:
        sender = self._draw(BLOCK)
        receiver = self._draw(BLOCK)
        amount = self._rng.integers(1, self.max_amount, size=BLOCK, dtype=np.int64, endpoint=True)
        # A transfer to oneself is no transfer: redraw those receivers until none collide.
        # Each round leaves about the hottest account's share of them: quick up to alpha ~3
        # (6 M transfers/s there), slow as that share nears 1 (1.4 M/s at alpha 5).
        clash = np.flatnonzero(sender == receiver)
        while clash.size:
            receiver[clash] = self._draw(clash.size)
            clash = clash[sender[clash] == receiver[clash]]
        return sender, receiver, amount


def _check(accounts: int, alpha: float) -> None:
    if accounts < 2:
        raise ValueError(f"a transfer needs two accounts, got accounts={accounts}")
    if not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")


def _alias_table(p: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], Int64Array]:
    """Vose's alias table for probabilities `p`: column i keeps i with probability
    prob[i], else gives alias[i]. Built once per stream (~50 ms for 100,000)."""
    n = len(p)
    scaled = (p * n).tolist()
    prob = np.ones(n)
    alias = np.arange(n, dtype=np.int64)
    small = [i for i, q in enumerate(scaled) if q < 1.0]
    large = [i for i, q in enumerate(scaled) if q >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        prob[s], alias[s] = scaled[s], g
        scaled[g] = (scaled[g] + scaled[s]) - 1.0
        (small if scaled[g] < 1.0 else large).append(g)
    # Whatever is left is 1.0 up to rounding: those columns keep themselves (prob stays 1).
    return prob, alias


def _empty() -> tuple[Int64Array, Int64Array, Int64Array]:
    return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
