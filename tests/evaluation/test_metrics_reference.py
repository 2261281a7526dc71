"""The metrics against brute-force references: one customer, one item, one comparison at a time.

The protocol (docs/CLI.md, "The transfer benchmark"): every model ranks the whole catalogue with the
customer's own items removed, ties counting against the target; a target the customer already has is
therefore removed with the rest and is a miss at every K, as it is for the rankers, whose candidates
never include a customer's own items.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rectransfer.evaluation.baselines import dense_target_ranks, popularity_scorer
from rectransfer.metrics import (
    ndcg_at,
    ndcg_gains,
    popularity_ranks,
    recall_at,
    target_ranks,
)
from tests.conftest import histories_of


def _ndcg_reference(ranks: list[float], k: int) -> float:
    total = 0.0
    for rank in ranks:
        if rank <= k:
            total += 1.0 / math.log2(rank + 1)
    return total / len(ranks)


def _recall_reference(ranks: list[float], k: int) -> float:
    return sum(1 for rank in ranks if rank <= k) / len(ranks)


def _catalogue_rank(scores: list[float], target: int, own: set[int]) -> float:
    """Rank of ``target`` among the items not in ``own``, ties against it; inf if removed."""
    if target in own or not math.isfinite(scores[target]):
        return math.inf
    ahead = sum(
        1
        for item, score in enumerate(scores)
        if item != target and item not in own and score >= scores[target]
    )
    return float(ahead + 1)


ranks_lists = st.lists(
    st.one_of(st.integers(min_value=1, max_value=30).map(float), st.just(math.inf)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(ranks=ranks_lists, k=st.integers(min_value=1, max_value=25))
def test_ndcg_and_recall_match_a_brute_force_reference(ranks, k):
    array = np.array(ranks)
    assert ndcg_at(array, k) == pytest.approx(_ndcg_reference(ranks, k), abs=1e-12)
    assert recall_at(array, k) == pytest.approx(_recall_reference(ranks, k), abs=1e-12)


@pytest.mark.parametrize("k", [1, 5, 10, 20])
def test_rank_k_counts_and_rank_k_plus_one_does_not(k):
    at_k, beyond = np.array([float(k)]), np.array([float(k + 1)])
    assert recall_at(at_k, k) == 1.0
    assert recall_at(beyond, k) == 0.0
    assert ndcg_at(at_k, k) == pytest.approx(1.0 / math.log2(k + 1))
    assert ndcg_at(beyond, k) == 0.0
    assert ndcg_gains(np.array([float(k), float(k + 1), np.inf]), k).tolist() == [
        pytest.approx(1.0 / math.log2(k + 1)),
        0.0,
        0.0,
    ]


@st.composite
def candidate_lists(draw):
    """Groups of scored rows, each with at most one labelled row, scores with many ties."""
    n_groups = draw(st.integers(min_value=1, max_value=6))
    group, label, scores = [], [], []
    for g in range(n_groups):
        size = draw(st.integers(min_value=0, max_value=8))
        positive = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=max(size - 1, 0))))
        for row in range(size):
            group.append(g)
            label.append(1 if positive == row else 0)
            scores.append(float(draw(st.integers(min_value=0, max_value=4))))
    return np.array(group, dtype=np.int64), np.array(label), np.array(scores), n_groups


@settings(max_examples=200, deadline=None)
@given(lists=candidate_lists())
def test_target_ranks_match_a_brute_force_reference(lists):
    group, label, scores, n_groups = lists
    ranks = target_ranks(group, label, scores, n_groups)
    for g in range(n_groups):
        rows = [i for i in range(len(group)) if group[i] == g]
        positive = [i for i in rows if label[i] == 1]
        if not positive:
            assert ranks[g] == math.inf
            continue
        target = positive[0]
        ahead = sum(1 for i in rows if i != target and scores[i] >= scores[target])
        assert ranks[g] == ahead + 1


@st.composite
def catalogues(draw):
    """Popularity (with ties), each customer's own items (repeats allowed), targets, stock."""
    n_items = draw(st.integers(min_value=2, max_value=12))
    popularity = draw(
        st.lists(st.integers(min_value=0, max_value=5), min_size=n_items, max_size=n_items)
    )
    n_users = draw(st.integers(min_value=1, max_value=6))
    item = st.integers(min_value=0, max_value=n_items - 1)
    own = draw(st.lists(st.lists(item, min_size=0, max_size=6), min_size=n_users, max_size=n_users))
    targets = draw(st.lists(item, min_size=n_users, max_size=n_users))
    allowed = draw(
        st.one_of(st.none(), st.lists(st.booleans(), min_size=n_items, max_size=n_items))
    )
    return np.array(popularity, dtype=np.float64), own, np.array(targets), allowed


@settings(max_examples=300, deadline=None)
@given(case=catalogues())
def test_popularity_ranks_match_a_brute_force_reference(case):
    popularity, own, targets, allowed = case
    excluded = histories_of(own, len(popularity))
    allowed_mask = None if allowed is None else np.array(allowed)
    ranks = popularity_ranks(popularity, targets, excluded, allowed_mask)
    scores = [p if allowed is None or allowed[i] else -math.inf for i, p in enumerate(popularity)]
    expected = [_catalogue_rank(scores, int(t), set(o)) for t, o in zip(targets, own, strict=True)]
    assert ranks.tolist() == expected


@settings(max_examples=300, deadline=None)
@given(case=catalogues(), chunk=st.integers(min_value=1, max_value=4))
def test_dense_ranks_match_a_brute_force_reference(case, chunk):
    popularity, own, targets, _ = case
    excluded = histories_of(own, len(popularity))
    rng = np.random.default_rng(len(popularity))
    scores = rng.integers(0, 4, size=(len(own), len(popularity))).astype(np.float64)

    def scorer(rows):
        return scores[rows]

    rows = np.arange(len(own))
    ranks = dense_target_ranks(scorer, rows, targets, excluded, chunk=chunk)
    expected = [
        _catalogue_rank(scores[u].tolist(), int(targets[u]), set(own[u])) for u in range(len(own))
    ]
    assert ranks.tolist() == expected


def test_popularity_ranks_agree_with_the_dense_popularity_baseline():
    from rectransfer.prepared.stats import BehaviourStats

    rng = np.random.default_rng(0)
    sequences = [rng.integers(0, 30, size=rng.integers(1, 8)).tolist() for _ in range(50)]
    context = histories_of(sequences, 30)
    stats = BehaviourStats.build(context)
    targets = rng.integers(0, 30, size=50)
    # repeat targets (an item the customer already has) are among them
    assert any(int(t) in s for t, s in zip(targets, sequences, strict=True))
    dense = dense_target_ranks(popularity_scorer(stats), np.arange(50), targets, context)
    popularity = (stats.recent_pct + stats.pop_pct).astype(np.float32)
    assert popularity_ranks(popularity, targets, context).tolist() == dense.tolist()


def test_a_target_the_customer_already_has_is_a_miss_and_other_own_items_are_skipped():
    popularity = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    # customer 0 has items 0 and 2 and their target is item 2 again; customer 1 has item 0 and
    # their target is item 3: only items 1 and 2 are ahead of it
    own = histories_of([[0, 2], [0]], 5)
    assert popularity_ranks(popularity, np.array([2, 3]), own).tolist() == [math.inf, 3.0]

    def scorer(rows):
        return np.broadcast_to(popularity, (len(rows), 5)).copy()

    dense = dense_target_ranks(scorer, np.arange(2), np.array([2, 3]), own)
    assert dense.tolist() == [math.inf, 3.0]
