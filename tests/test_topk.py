"""The pruned top-k returns exactly what scoring every product returns."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from recommender.models.topk import NormIndex


def brute_force(factors: np.ndarray, query: np.ndarray, k: int, banned: np.ndarray) -> np.ndarray:
    scores = factors @ query
    scores[banned] = -np.inf
    allowed = np.flatnonzero(np.isfinite(scores))
    return np.sort(scores[allowed])[::-1][:k]


def long_tail(rng: np.random.Generator, items: int, rank: int) -> np.ndarray:
    """Factors whose norms fall off like a shop's popularity (most products rarely bought)."""
    scale = 1.0 / (1.0 + np.arange(items)) ** 0.8
    return (rng.standard_normal((items, rank)) * rng.permutation(scale)[:, None]).astype(np.float32)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    items=st.integers(1, 3000),
    rank=st.integers(1, 16),
    k=st.integers(1, 60),
    banned_share=st.sampled_from([0.0, 0.01, 0.5, 0.99, 1.0]),
    tail=st.booleans(),
    first_block=st.sampled_from([1, 7, 64, 4096]),
)
def test_pruned_search_equals_scoring_everything(seed, items, rank, k, banned_share, tail, first_block):
    rng = np.random.default_rng(seed)
    factors = long_tail(rng, items, rank) if tail else rng.standard_normal((items, rank)).astype(np.float32)
    query = rng.standard_normal(rank).astype(np.float32)
    banned = rng.choice(items, size=int(items * banned_share), replace=False)
    banned = np.concatenate([banned, banned[: len(banned) // 3]])  # repeats are allowed
    index = NormIndex(factors, first_block=first_block)
    ids, scores = index.search(query, k, banned)
    expected = brute_force(factors, query, k, banned)
    assert len(ids) == len(expected) == min(k, items - len(np.unique(banned)))
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(factors[ids] @ query, scores, rtol=1e-5, atol=1e-6)  # ids carry those scores
    assert not set(ids.tolist()) & set(banned.tolist())
    assert len(set(ids.tolist())) == len(ids)


def test_long_tail_catalogue_is_mostly_skipped():
    rng = np.random.default_rng(3)
    factors = long_tail(rng, 100_000, 32)
    index = NormIndex(factors)
    queries = rng.standard_normal((50, 32)).astype(np.float32)
    scanned = []
    for query in queries:
        ids, scores = index.search(query, 10)
        np.testing.assert_allclose(scores, brute_force(factors, query, 10, np.zeros(0, np.int64)), rtol=1e-5)
        scanned.append(index.scanned)
    assert np.median(scanned) < 0.5 * len(factors)


def test_zero_query_and_k_edge_cases():
    factors = np.arange(12, dtype=np.float32).reshape(6, 2)
    index = NormIndex(factors)
    ids, scores = index.search(np.zeros(2, np.float32), 3)
    assert len(ids) == 3 and np.all(scores == 0)
    assert index.search(np.ones(2, np.float32), 0)[0].size == 0
    ids, _ = index.search(np.ones(2, np.float32), 100)
    assert ids.tolist() == [5, 4, 3, 2, 1, 0]
    ids, _ = index.search(np.ones(2, np.float32), 100, banned=np.arange(6))
    assert ids.size == 0


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_negative_scores_scan_everything(sign):
    factors = np.abs(np.random.default_rng(0).standard_normal((5000, 4))).astype(np.float32)
    index = NormIndex(factors, first_block=16)
    query = np.full(4, sign, np.float32)
    _, scores = index.search(query, 5)
    np.testing.assert_allclose(scores, brute_force(factors, query, 5, np.zeros(0, np.int64)), rtol=1e-5)
    if sign < 0:
        assert index.scanned == len(factors)  # every score is negative: no bound can stop early


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    items=st.integers(1, 2000),
    k=st.integers(1, 40),
    allow_share=st.sampled_from([0.0, 0.02, 0.5, 1.0]),
    banned=st.integers(0, 50),
)
def test_allow_mask_and_short_banned_list_equal_scoring_everything(seed, items, k, allow_share, banned):
    """The mask read per scanned block and the over-fetched short ban list leave the exact answer."""
    rng = np.random.default_rng(seed)
    factors = long_tail(rng, items, 8)
    query = rng.standard_normal(8).astype(np.float32)
    allow = rng.random(items) < allow_share
    ban = rng.integers(0, items, size=banned)
    index = NormIndex(factors, first_block=32)
    ids, scores = index.search(query, k, ban, allow=allow)
    expected = brute_force(factors, query, k, np.concatenate([ban, np.flatnonzero(~allow)]))
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    assert all(allow[i] for i in ids) and not set(ids.tolist()) & set(ban.tolist())
