import numpy as np
import pytest

from rectransfer.data.histories import Histories
from rectransfer.metrics import ndcg_at, popularity_ranks, recall_at, target_ranks


def test_target_ranks_are_pessimistic_on_ties_and_inf_when_missing():
    group = np.array([0, 0, 0, 1, 1, 2])
    label = np.array([0, 1, 0, 0, 0, 1])
    scores = np.array([0.5, 0.5, 0.1, 1.0, 2.0, 3.0])
    ranks = target_ranks(group, label, scores, n_groups=3)
    assert ranks[0] == 2  # a tie with another row counts against the label
    assert np.isinf(ranks[1])  # label not among the candidates
    assert ranks[2] == 1


def test_ndcg_and_recall():
    ranks = np.array([1.0, 2.0, np.inf, 11.0])
    assert recall_at(ranks, 10) == 0.5
    assert ndcg_at(ranks, 10) == pytest.approx((1 + 1 / np.log2(3)) / 4)


def test_popularity_ranks_skip_the_customers_own_items():
    popularity = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    targets = np.array([2, 2])
    own = Histories(np.array([0, 2, 2]), np.array([0, 0], dtype=np.int32), np.zeros(2), 5)
    ranks = popularity_ranks(popularity, targets, own)
    # customer 0 already has item 0 (twice): only item 1 is ahead; customer 1: items 0 and 1
    assert ranks.tolist() == [2.0, 3.0]
