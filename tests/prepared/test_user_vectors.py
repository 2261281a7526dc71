import numpy as np

from rectransfer.prepared.user_vectors import UserVectors


def _dense_and_stored():
    rng = np.random.default_rng(0)
    dense = np.zeros((12, 4), np.float32)
    rows = np.array([7, 2, 9, 2, 0])  # customer 2 twice: the last vector counts
    vectors = rng.normal(size=(5, 4)).astype(np.float32)
    vectors[2] = 0.0  # an encoded blank text: no text
    dense[rows] = vectors
    return dense, UserVectors.of(rows, vectors, 12)


def test_rows_read_like_the_dense_matrix():
    dense, stored = _dense_and_stored()
    assert stored.shape == dense.shape
    assert stored.rows.tolist() == [0, 2, 7]
    for index in (np.arange(12), np.array([9, 2, 2, 11, 0]), np.zeros(0, np.int64)):
        np.testing.assert_array_equal(stored[index], dense[index])
    np.testing.assert_array_equal(stored[3:9], dense[3:9])
    np.testing.assert_array_equal(stored.has_text(), np.linalg.norm(dense, axis=1) > 0)


def test_a_subset_is_a_new_set_of_customers_in_the_given_order():
    dense, stored = _dense_and_stored()
    pick = np.array([11, 7, 0, 5])
    subset = stored.subset(pick)
    assert subset.shape == (4, 4)
    np.testing.assert_array_equal(subset[np.arange(4)], dense[pick])
    assert UserVectors.empty(3, 4).subset(np.array([1])).has_text().tolist() == [False]
