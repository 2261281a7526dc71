"""The neighbour pool: known customers whose text is nearest to a newcomer's, and what they took."""

import numpy as np
import pytest

from rectransfer.prepared.text_neighbours import NeighbourPool, nearest
from rectransfer.prepared.user_vectors import UserVectors
from tests.conftest import histories_of


def _unit(*angles: float) -> np.ndarray:
    return np.array([[np.cos(a), np.sin(a)] for a in angles], dtype=np.float32)


@pytest.fixture
def pool() -> NeighbourPool:
    # five customers; the fourth has no text and the fifth no interactions: neither is in the pool
    sequences = [[0, 1, 1], [1, 2], [3], [0, 1, 2, 3], []]
    vectors = UserVectors.of(np.array([0, 1, 2, 4]), _unit(0.0, 0.5, 3.0, 0.1), 5)
    return NeighbourPool.build(histories_of(sequences, 4), vectors)


def test_the_pool_holds_customers_with_text_and_interactions(pool):
    assert pool.rows.tolist() == [0, 1, 2]
    # an item taken twice counts once
    assert pool.taken.toarray().tolist() == [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]]


def test_neighbour_scores_sum_the_similarity_of_the_k_nearest_who_took_each_item(pool):
    query = _unit(0.2)
    near_0, near_1, near_2 = np.cos(0.2), np.cos(0.3), np.cos(2.8)  # near_2 < 0
    two = pool.scores(query, 2)[0]
    assert two == pytest.approx([near_0, near_0 + near_1, near_1, 0.0], rel=1e-6)
    # the third neighbour is dissimilar: it counts as 0, not negatively
    assert near_2 < 0
    assert pool.scores(query, 3)[0] == pytest.approx(two, rel=1e-6)
    one = pool.scores(query, 1)[0]
    assert one == pytest.approx([near_0, near_0, 0.0, 0.0], rel=1e-6)
    assert pool.scores(query, 1).dtype == np.float32
    by_k = pool.scores_by_k(query, (1, 2))
    assert np.array_equal(by_k[1], pool.scores(query, 1))
    assert np.array_equal(by_k[2], two[None])


def test_excluded_customers_are_never_neighbours(pool):
    query = _unit(0.2)
    without_first = pool.scores(query, 1, exclude=pool.mask(np.array([0])))[0]
    assert without_first == pytest.approx([0.0, np.cos(0.3), np.cos(0.3), 0.0], rel=1e-6)
    # K is capped by who is left
    everyone = pool.mask(pool.rows)
    assert not pool.scores(query, 2, exclude=everyone).any()
    with pytest.raises(ValueError, match="neighbour pool has 3"):
        pool.scores(query, 1, exclude=np.zeros(5, dtype=bool))


def test_ties_at_the_kth_place_keep_the_lowest_positions_whatever_the_block():
    similarity = np.array([[0.5, 0.9, 0.5, 0.5], [0.1, 0.1, 0.1, 0.1]], dtype=np.float32)
    kept = nearest(similarity, 2).toarray()
    assert np.allclose(kept, [[0.5, 0.9, 0.0, 0.0], [0.1, 0.1, 0.0, 0.0]])
    assert np.array_equal(nearest(similarity[1:], 2).toarray(), kept[1:])


def test_the_pool_is_capped_by_a_seeded_sample():
    sequences = [[i % 4] for i in range(50)]
    vectors = UserVectors.of(np.arange(50), _unit(*np.linspace(0, 1, 50)), 50)
    histories = histories_of(sequences, 4)
    small = NeighbourPool.build(histories, vectors, max_pool=10)
    assert small.size == 10 and np.all(np.diff(small.rows) > 0)
    assert np.array_equal(NeighbourPool.build(histories, vectors, max_pool=10).rows, small.rows)
    assert np.array_equal(small.vectors, vectors[small.rows])
