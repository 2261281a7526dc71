"""The text path's blend of a customer's own text with popularity, and how its weight is chosen."""

from types import SimpleNamespace

import numpy as np
import pytest

from rectransfer.histories import Histories
from rectransfer.text_blend import (
    DEFAULT_WEIGHT,
    TextBlend,
    blend,
    fit_text_blend,
    set_ndcg,
    standardise,
)
from rectransfer.user_vectors import UserVectors

N_ITEMS = 30


def _histories(sequences: list[list[int]]) -> Histories:
    lengths = [len(s) for s in sequences]
    items = np.array([i for s in sequences for i in s], dtype=np.int32)
    return Histories(
        indptr=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        items=items,
        times=np.arange(len(items), dtype=np.int64),
        n_items=N_ITEMS,
    )


def _prepared(sequences: list[list[int]], text_rows: list[int], text: np.ndarray):
    """What fit_text_blend reads of a prepared retailer: one-hot item vectors, customers' text."""
    return SimpleNamespace(
        index=SimpleNamespace(histories=_histories(sequences)),
        user_vectors=UserVectors.of(np.array(text_rows), text, len(sequences)),
        catalogue=SimpleNamespace(vectors=np.eye(N_ITEMS, dtype=np.float32)),
    )


def _one_hot(items: list[int]) -> np.ndarray:
    return np.eye(N_ITEMS, dtype=np.float32)[items]


def test_set_ndcg_counts_hits_by_position_against_the_ideal():
    relevant = np.zeros((3, 5), dtype=bool)
    relevant[0, [1]] = True  # found at place 2
    relevant[1, [0, 4]] = True  # both found, in the first two places: perfect
    relevant[2, [3]] = True  # not in the list
    top = np.array([[0, 1, 2], [4, 0, 1], [0, 1, 2]])
    ndcg = set_ndcg(top, relevant)
    assert ndcg == pytest.approx([1 / np.log2(3), 1.0, 0.0])


def test_standardise_and_the_two_ends_of_the_blend():
    assert np.all(standardise(np.ones(4)) == 0)  # a constant row does not divide by zero
    similarity = np.array([[0.9, 0.1, 0.5]], dtype=np.float32)
    popularity_z = standardise(np.array([0.0, 2.0, 1.0]))
    assert np.array_equal(blend(similarity, popularity_z, 1.0), similarity)
    assert np.array_equal(blend(similarity, popularity_z, 0.0)[0], popularity_z)
    halfway = blend(similarity, popularity_z, 0.5)[0]
    assert halfway == pytest.approx(0.5 * standardise(similarity)[0] + 0.5 * popularity_z)


def test_text_that_names_what_customers_take_earns_a_text_weight():
    # 40 customers with text, each naming the item they took; 50 without text took 25..29.
    own = [i % 25 for i in range(40)]
    sequences = [[item] for item in own] + [[25, 26, 27, 28, 29] for _ in range(50)]
    chosen = fit_text_blend(_prepared(sequences, list(range(40)), _one_hot(own)))
    assert chosen.customers == 40
    assert chosen.weight > 0
    assert chosen.ndcg[chosen.weight] == pytest.approx(1.0)
    assert chosen.ndcg[0.0] < 0.5  # popularity alone misses them


def test_text_that_says_nothing_leaves_the_popular_list():
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(40, N_ITEMS)).astype(np.float32)
    sequences = [[0, 1, 2] for _ in range(40)] + [[0, 1, 2] for _ in range(50)]
    chosen = fit_text_blend(_prepared(sequences, list(range(40)), noise))
    assert chosen.weight == 0.0
    assert chosen.ndcg[0.0] == pytest.approx(1.0)
    assert chosen.ndcg[1.0] < 0.5


def test_popularity_for_the_choice_leaves_out_the_customers_it_is_measured_on():
    # Each customer with text took an item of their own, 30 times; nobody else took it. Counted
    # with their own events, it would be among the most popular items and popularity would find
    # it; as a newcomer's popularity, it has never been taken.
    sequences = [[25, 26, 27, 28, 29] for _ in range(20)] + [[i] * 30 for i in range(25)]
    noise = np.random.default_rng(1).normal(size=(25, N_ITEMS)).astype(np.float32)
    chosen = fit_text_blend(_prepared(sequences, list(range(20, 45)), noise))
    assert chosen.ndcg[0.0] == 0.0


def test_too_few_customers_to_choose_on_gives_the_default_weight():
    sequences = [[i] for i in range(10)] + [[20] for _ in range(30)]
    chosen = fit_text_blend(_prepared(sequences, list(range(10)), _one_hot(list(range(10)))))
    assert chosen == TextBlend(DEFAULT_WEIGHT, 10, reason=chosen.reason)
    assert "need 20" in chosen.reason
