"""The text path's blend of a customer's text, their text neighbours and popularity, and how it
is chosen."""

from types import SimpleNamespace

import numpy as np
import pytest

from rectransfer.metrics import set_ndcg
from rectransfer.prepared.text_blend import (
    DEFAULT_CHOICE,
    NEIGHBOURS,
    POPULARITY_ALONE,
    TEXT_ALONE,
    TextBlend,
    blend,
    choices,
    fit_text_blend,
    standardise,
)
from rectransfer.prepared.text_neighbours import NeighbourPool
from rectransfer.prepared.user_vectors import UserVectors
from tests.conftest import histories_of

N_ITEMS = 30


def _prepared(
    sequences: list[list[int]],
    text_rows: list[int],
    text: np.ndarray,
    item_vectors: np.ndarray | None = None,
):
    """What fit_text_blend reads of a prepared retailer: item vectors (one-hot unless given),
    customers' text and the neighbour pool built from them."""
    histories = histories_of(sequences, N_ITEMS)
    user_vectors = UserVectors.of(np.array(text_rows), text, len(sequences))
    return SimpleNamespace(
        index=SimpleNamespace(histories=histories),
        user_vectors=user_vectors,
        catalogue=SimpleNamespace(
            vectors=np.eye(N_ITEMS, dtype=np.float32) if item_vectors is None else item_vectors
        ),
        neighbour_pool=NeighbourPool.build(histories, user_vectors),
    )


def _fit(prepared) -> TextBlend:
    return fit_text_blend(
        prepared.index.histories,
        prepared.user_vectors,
        prepared.catalogue.vectors,
        prepared.neighbour_pool,
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


def test_standardise_and_the_blend_of_three_signals():
    assert np.all(standardise(np.ones(4)) == 0)  # a constant row does not divide by zero
    similarity_z = standardise(np.array([[0.9, 0.1, 0.5]]))
    neighbours_z = standardise(np.array([[0.0, 3.0, 1.0]]))
    popularity_z = standardise(np.array([0.0, 2.0, 1.0]))
    assert np.array_equal(blend(TEXT_ALONE, similarity_z, None, popularity_z), similarity_z)
    assert np.array_equal(
        blend(POPULARITY_ALONE, similarity_z, None, popularity_z)[0], popularity_z
    )
    mixed = blend((0.25, 0.5, 0.25, 20), similarity_z, neighbours_z, popularity_z)[0]
    expected = 0.25 * similarity_z[0] + 0.5 * neighbours_z[0] + 0.25 * popularity_z
    assert mixed == pytest.approx(expected)
    with pytest.raises(ValueError, match="neighbours"):
        blend((0.0, 1.0, 0.0, 20), similarity_z, None, popularity_z)


def test_the_choices_cover_the_simplex_once_per_k():
    tried = choices()
    weights = {c[:3] for c in tried}
    assert len(weights) == 15 and all(sum(w) == pytest.approx(1.0) for w in weights)
    assert len(tried) == len(set(tried)) == 5 + 10 * len(NEIGHBOURS)
    assert all((c[3] == 0) == (c[1] == 0) for c in tried)  # K only where neighbours weigh


def test_text_that_names_what_customers_take_earns_a_text_weight():
    # 40 customers with text, each naming the item they took; 50 without text took 25..29.
    own = [i % 25 for i in range(40)]
    sequences = [[item] for item in own] + [[25, 26, 27, 28, 29] for _ in range(50)]
    chosen = _fit(_prepared(sequences, list(range(40)), _one_hot(own)))
    assert chosen.customers == 40
    assert chosen.text > 0
    assert chosen.ndcg[chosen.choice] == pytest.approx(1.0)
    assert chosen.ndcg[POPULARITY_ALONE] < 0.5  # popularity alone misses them


def test_text_neighbours_win_where_customer_text_says_who_is_alike_and_nothing_of_items():
    # Six groups of customers; each group writes alike and takes its own three items. Their text
    # lives in dimensions no item vector has, so similarity to items is 0 everywhere.
    groups, size = 6, 10
    rng = np.random.default_rng(0)
    group = np.repeat(np.arange(groups), size)
    sequences = [[3 * g, 3 * g + 1, 3 * g + 2] for g in group]
    text = np.zeros((len(group), N_ITEMS + groups), dtype=np.float32)
    text[np.arange(len(group)), N_ITEMS + group] = 1.0
    text[:, N_ITEMS:] += 0.1 * rng.random((len(group), groups)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    items = np.hstack([np.eye(N_ITEMS), np.zeros((N_ITEMS, groups))]).astype(np.float32)
    chosen = _fit(_prepared(sequences, list(range(len(group))), text, items))
    assert chosen.neighbours > 0 and chosen.k in NEIGHBOURS
    assert chosen.ndcg[chosen.choice] == pytest.approx(1.0)
    assert chosen.ndcg[POPULARITY_ALONE] < 0.5 and chosen.ndcg[TEXT_ALONE] < 0.5
    assert "neighbours" in chosen.reason


def test_text_that_says_nothing_leaves_the_popular_list():
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(40, N_ITEMS)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    sequences = [[0, 1, 2] for _ in range(40)] + [[0, 1, 2] for _ in range(50)]
    chosen = _fit(_prepared(sequences, list(range(40)), noise))
    assert chosen.popular_only and chosen.choice == POPULARITY_ALONE
    assert chosen.ndcg[POPULARITY_ALONE] == pytest.approx(1.0)
    assert chosen.ndcg[TEXT_ALONE] < 0.5


def test_popularity_for_the_choice_leaves_out_the_customers_it_is_measured_on():
    # Each customer with text took an item of their own, 30 times; nobody else took it. Counted
    # with their own events, it would be among the most popular items and popularity would find
    # it; as a newcomer's popularity, it has never been taken.
    sequences = [[25, 26, 27, 28, 29] for _ in range(20)] + [[i] * 30 for i in range(25)]
    noise = np.random.default_rng(1).normal(size=(25, N_ITEMS)).astype(np.float32)
    chosen = _fit(_prepared(sequences, list(range(20, 45)), noise))
    assert chosen.ndcg[POPULARITY_ALONE] == 0.0


def test_customers_are_not_their_own_neighbours_when_the_choice_is_made():
    # Every customer with text wrote something of their own and took an item nobody else took.
    # As their own neighbour they would find it at once (NDCG 1); among the others' it scores 0
    # and is only met by chance, among the items tied at 0.
    n = 25
    sequences = [[i] for i in range(n)]
    text = np.random.default_rng(2).normal(size=(n, N_ITEMS)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    items = np.zeros((N_ITEMS, N_ITEMS), dtype=np.float32)  # item text says nothing
    chosen = _fit(_prepared(sequences, list(range(n)), text, items))
    for k in NEIGHBOURS:
        assert chosen.ndcg[(0.0, 1.0, 0.0, k)] < 0.2


def test_too_few_customers_to_choose_on_gives_the_default_choice():
    sequences = [[i] for i in range(10)] + [[20] for _ in range(30)]
    chosen = _fit(_prepared(sequences, list(range(10)), _one_hot(list(range(10)))))
    assert chosen.choice == DEFAULT_CHOICE and chosen.customers == 10 and not chosen.ndcg
    assert "need 20" in chosen.reason
