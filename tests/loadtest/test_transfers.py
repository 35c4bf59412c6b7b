"""TransferStream: reproducible under any chunking, well-formed, and Zipf-shaped."""

import numpy as np
import pytest

from loadtest.transfers import BLOCK, TransferStream, contention, zipf_probabilities


def _concat(parts):
    return tuple(np.concatenate(column) for column in zip(*parts))


@pytest.mark.parametrize("alpha", [0.0, 1.5])
def test_same_seed_same_stream_however_it_is_chunked(alpha):
    sizes = [10, 5, 0, 1, BLOCK - 16, 1, BLOCK + 100, 22]      # across block boundaries, past two blocks
    whole = TransferStream(1000, alpha, seed=3).take(sum(sizes))
    chunked = TransferStream(1000, alpha, seed=3)
    parts = [chunked.take(n) for n in sizes]
    for got, want in zip(_concat(parts), whole):
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)
    assert chunked.taken == sum(sizes) == 2 * BLOCK + 123


def test_another_seed_another_stream():
    a = TransferStream(1000, 1.5, seed=1).take(1000)
    b = TransferStream(1000, 1.5, seed=2).take(1000)
    assert not np.array_equal(a[0], b[0])


def test_take_returns_copies_not_views_of_the_buffer():
    stream = TransferStream(100, 0.0, seed=1)
    for column, buffered in zip(stream.take(5), stream._block):
        assert not np.shares_memory(column, buffered)


@pytest.mark.parametrize("alpha", [0.0, 1.5, 3.0])
def test_transfers_are_well_formed(alpha):
    sender, receiver, amount = TransferStream(50, alpha, seed=9, max_amount=7).take(100_000)
    assert len(sender) == len(receiver) == len(amount) == 100_000
    assert (sender != receiver).all()
    assert sender.min() >= 0 and max(sender.max(), receiver.max()) <= 49 and receiver.min() >= 0
    assert amount.min() == 1 and amount.max() == 7
    assert (np.bincount(amount)[1:] > 100_000 / 7 * 0.9).all()        # each amount ~uniformly often


def test_alpha_zero_is_uniform():
    sender, receiver, _ = TransferStream(100, 0.0, seed=5).take(200_000)
    counts = np.bincount(np.concatenate([sender, receiver]), minlength=100)
    # 4,000 expected per account; sd ~63, so 10% is ~6 sd.
    assert counts.min() > 3600 and counts.max() < 4400


def test_alpha_concentrates_on_a_few_accounts_spread_over_the_ids():
    accounts = 100_000
    sender, _, _ = TransferStream(accounts, 1.5, seed=5).take(500_000)
    counts = np.bincount(sender, minlength=accounts)
    hottest = np.argsort(counts)[::-1]
    p = zipf_probabilities(accounts, 1.5)
    # The hottest account takes ~38% of the senders, the next ~14%.
    assert abs(counts[hottest[0]] / len(sender) - p[0]) < 0.01
    assert abs(counts[hottest[1]] / len(sender) - p[1]) < 0.01
    assert counts[hottest[:1000]].sum() / len(sender) > 0.95
    assert set(hottest[:3].tolist()) != {0, 1, 2}          # permuted, not ids 0, 1, 2


def test_contention_is_the_hot_accounts_share():
    # Uniform, 1000 accounts, 10 hot: untouched iff both are among the other 990 (distinct).
    assert contention(0.0, 1000) == pytest.approx(1 - 990 / 1000 * 989 / 999)
    assert contention(1.5, 100_000) > 0.99
    assert 0.8 < contention(1.0, 100_000) < 0.9
    # Measured on the stream: the hottest 1% of the accounts by their true rank.
    stream = TransferStream(1000, 1.2, seed=4)
    hot = stream._keep[:10]                     # rank -> account
    sender, receiver, _ = stream.take(200_000)
    touched = np.isin(sender, hot) | np.isin(receiver, hot)
    assert touched.mean() == pytest.approx(contention(1.2, 1000), abs=0.005)


@pytest.mark.parametrize("accounts, alpha, max_amount", [(1, 0.0, 10), (10, -1.0, 10), (10, float("nan"), 10),
                                                         (10, 1.0, 0)])
def test_bad_parameters_are_refused(accounts, alpha, max_amount):
    with pytest.raises(ValueError):
        TransferStream(accounts, alpha, seed=1, max_amount=max_amount)
