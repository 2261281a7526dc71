import numpy as np
import pytest
import scipy.sparse as sp

from rectransfer.ranking.features import _Pairs, _rank_within
from rectransfer.serving.recommend import top_k_per_query
from rectransfer.utils.topk import descending_ranks_in_runs


def _lexsort_ranks(runs, values):
    """The plain definition: a stable sort by (run, value descending), NaN last."""
    order = np.lexsort((-values, runs))
    ranks = np.empty(len(runs), dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(runs[order][1:] != runs[order][:-1]) + 1]
    sizes = np.diff(np.r_[starts, len(order)])
    ranks[order] = np.arange(len(order)) - np.repeat(starts, sizes) + 1
    return ranks


@pytest.mark.parametrize("seed", range(5))
def test_ranks_in_runs_match_a_stable_lexsort_with_ties_and_nan(seed):
    rng = np.random.default_rng(seed)
    runs = np.repeat(np.sort(rng.choice(1000, 40, replace=False)), rng.integers(1, 30, 40))
    values = rng.integers(0, 5, len(runs)).astype(np.float32)  # many ties
    values[rng.random(len(runs)) < 0.1] = np.nan
    np.testing.assert_array_equal(
        descending_ranks_in_runs(runs, values), _lexsort_ranks(runs, values)
    )


def test_ranks_in_runs_of_very_unequal_length_are_the_same_without_padding():
    rng = np.random.default_rng(3)
    runs = np.r_[np.arange(3000), np.full(20_000, 3000)]  # a padded block would be 3001 x 20000
    values = rng.integers(0, 50, len(runs)).astype(np.float64)
    values[::97] = np.nan
    np.testing.assert_array_equal(
        descending_ranks_in_runs(runs, values), _lexsort_ranks(runs, values)
    )


def test_rank_within_handles_queries_whose_rows_are_apart():
    rng = np.random.default_rng(0)
    query = rng.integers(0, 7, 300)
    values = rng.normal(size=300).astype(np.float32)
    np.testing.assert_array_equal(_rank_within(query, values), _lexsort_ranks(query, values))
    assert len(descending_ranks_in_runs(np.zeros(0), np.zeros(0))) == 0


def _reference_top_k(query, item, scores, k):
    order = np.lexsort((item, -scores, query))
    out = {}
    for q, i, s in zip(query[order], item[order], scores[order], strict=True):
        out.setdefault(int(q), [])
        if len(out[int(q)]) < k:
            out[int(q)].append((int(i), float(s)))
    return out


@pytest.mark.parametrize("shuffled", [False, True])
def test_top_k_per_query_keeps_the_best_k_ties_by_item(shuffled):
    rng = np.random.default_rng(1)
    query = np.repeat(np.arange(50) * 3, rng.integers(1, 40, 50))
    item = np.concatenate(
        [np.sort(rng.choice(500, (query == q).sum(), replace=False)) for q in np.unique(query)]
    )
    scores = rng.integers(0, 6, len(query)).astype(np.float64)  # ties decided by item
    if shuffled:  # rows in any order give the same lists
        p = rng.permutation(len(query))
        query, item, scores = query[p], item[p], scores[p]
    got = {
        int(q): list(zip(i.tolist(), s.tolist(), strict=True))
        for q, i, s in top_k_per_query(query, item, scores, 7)
    }
    assert got == _reference_top_k(query, item, scores, 7)


def test_pairs_of_an_unsorted_sparse_product_are_in_key_order():
    rng = np.random.default_rng(2)
    a = sp.random(30, 40, density=0.2, format="csr", random_state=3, dtype=np.float32)
    b = sp.random(40, 60, density=0.2, format="csr", random_state=4, dtype=np.float32)
    product = a @ b
    pairs = _Pairs.of_sparse(product, 60)
    coo = product.tocoo()
    key = coo.row.astype(np.int64) * 60 + coo.col
    order = np.argsort(key)
    np.testing.assert_array_equal(pairs.key, key[order])
    np.testing.assert_array_equal(pairs.value, coo.data[order])
    probe = rng.integers(0, 30 * 60, 500)
    np.testing.assert_array_equal(pairs.lookup(probe), product.toarray().ravel()[probe])
