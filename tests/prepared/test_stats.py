import numpy as np
import scipy.sparse as sp

import rectransfer.prepared.stats as stats_module
from rectransfer.data.histories import Histories
from rectransfer.prepared.stats import BehaviourStats, strongest_per_row


def _stats() -> BehaviourStats:
    # three customers: 0 -> 1 -> 2, 0 -> 1, 3 ; item 4 never seen
    h = Histories(
        indptr=np.array([0, 3, 5, 6]),
        items=np.array([0, 1, 2, 0, 1, 3], dtype=np.int32),
        times=np.array([1, 2, 3, 4, 5, 6], dtype=np.int64),
        n_items=5,
    )
    return BehaviourStats.build(h)


def test_counts_and_percentiles():
    s = _stats()
    assert s.count.tolist() == [2, 2, 1, 1, 0]
    assert s.pop_pct[4] == 0  # unseen
    assert s.pop_pct[0] > s.pop_pct[2] > 0
    assert np.isnan(s.first_seen_pct[4])
    assert s.first_seen_pct[0] < s.first_seen_pct[3]


def test_transitions_are_conditional_probabilities_in_both_directions():
    s = _stats()
    fwd = s.trans_fwd.toarray()
    assert fwd[0, 1] == 1.0  # 0 is always followed by 1
    assert fwd[1, 2] == 1.0
    assert fwd[2].sum() == 0  # nothing after 2
    bwd = s.trans_bwd.toarray()
    assert bwd[1, 0] == 1.0  # 1 is always preceded by 0


def test_cooccurrence_is_symmetric_and_never_crosses_customers():
    s = _stats()
    c = s.cooc.toarray()
    np.testing.assert_allclose(c, c.T)
    assert c[0, 1] > 0 and c[0, 2] > 0
    assert c[2, 3] == 0  # 3 was bought by another customer only
    assert np.all(np.diag(c) == 0)


def test_strongest_per_row_keeps_each_rows_largest_values_ties_to_the_lower_column():
    rng = np.random.default_rng(3)
    dense = rng.integers(0, 4, size=(40, 30)).astype(np.float32)  # many ties
    dense[rng.random(dense.shape) < 0.5] = 0
    kept = strongest_per_row(sp.csr_matrix(dense), 5).toarray()
    for row, out in zip(dense, kept, strict=True):
        nonzero = np.flatnonzero(row)
        best = nonzero[np.lexsort((nonzero, -row[nonzero]))][:5]
        expected = np.zeros_like(row)
        expected[best] = row[best]
        np.testing.assert_array_equal(out, expected)


def test_popular_items_keep_only_their_strongest_partners(monkeypatch):
    # item 0 follows and precedes each of items 1..6 in six customers' histories; item 1 twice
    sequences = [[0, i] for i in range(1, 7)] + [[1, 0]]
    h = Histories(
        indptr=np.cumsum([0] + [len(s) for s in sequences]),
        items=np.concatenate(sequences).astype(np.int32),
        times=np.arange(sum(len(s) for s in sequences), dtype=np.int64),
        n_items=7,
    )
    full = BehaviourStats.build(h)
    monkeypatch.setattr(stats_module, "ITEM_PARTNERS", 3)
    capped = BehaviourStats.build(h)
    for name in ("cooc", "trans_fwd", "trans_bwd"):
        before, after = getattr(full, name), getattr(capped, name)
        assert np.diff(after.indptr).max() <= 3, name
        np.testing.assert_array_equal(
            after.toarray(), strongest_per_row(before, 3).toarray(), err_msg=name
        )
    assert np.diff(full.cooc.indptr)[0] == 6 and np.diff(capped.cooc.indptr)[0] == 3
    assert capped.cooc[0, 1] == full.cooc[0, 1]  # the partner seen twice is kept


def test_counting_pairs_in_slices_of_customers_changes_nothing(monkeypatch):
    rng = np.random.default_rng(5)
    lengths = rng.integers(1, 9, size=40)
    h = Histories(
        indptr=np.concatenate([[0], np.cumsum(lengths)]),
        items=rng.integers(0, 25, size=int(lengths.sum())).astype(np.int32),
        times=np.arange(int(lengths.sum()), dtype=np.int64),
        n_items=25,
    )
    whole = BehaviourStats.build(h)
    monkeypatch.setattr(stats_module, "PAIR_EVENTS_PER_SLICE", 7)  # cuts inside customers
    sliced = BehaviourStats.build(h)
    for name in ("cooc", "trans_fwd", "trans_bwd"):
        np.testing.assert_array_equal(
            getattr(sliced, name).toarray(), getattr(whole, name).toarray(), err_msg=name
        )


def test_popularity_without_some_customers_takes_out_their_events_only():
    from rectransfer.prepared.stats import popularity_without

    histories = Histories(
        indptr=np.array([0, 3, 5, 8]),
        items=np.array([0, 1, 2, 1, 2, 3, 3, 3], dtype=np.int32),  # only customer 2 took item 3
        times=np.arange(8, dtype=np.int64),
        n_items=5,
    )
    full = BehaviourStats.build(histories)
    nobody, without = popularity_without(histories, [np.array([], dtype=np.int64), np.array([2])])
    assert np.allclose(nobody, full.recent_pct + full.pop_pct)
    assert without[3] == 0 and without[4] == 0  # as unknown as an item nobody took
    assert without[1] > 0 and without[2] > 0


# ----------------------------------------------------------------------------------------------
# Weights (the interactions' weight or quantity column)


def _weighted(weights: list[float] | None) -> Histories:
    # customer 0: 0 -> 1 ; customer 1: 2 -> 1 ; customer 2: 0 ; customer 3: 0
    return Histories(
        indptr=np.array([0, 2, 4, 5, 6]),
        items=np.array([0, 1, 2, 1, 0, 0], dtype=np.int32),
        times=np.arange(6, dtype=np.int64),
        n_items=4,
        weights=None if weights is None else np.array(weights, dtype=np.float32),
    )


def test_weights_count_log2_of_one_plus_weight_in_what_popular_lists_sort_by():
    plain = BehaviourStats.build(_weighted(None))
    # item 2 bought once by 255 units: it counts log2(256) = 8 times, above item 0's three
    # single units; item 1's events weigh 1 and 3: 1 + 2 = 3.
    heavy = BehaviourStats.build(_weighted([1, 1, 255, 3, 1, 1]))
    assert plain.popular[2] < plain.popular[1]
    assert heavy.popular[2] > heavy.popular[1] > 0
    assert heavy.popular[3] == 0  # still unseen
    # The ranker's inputs count events, as the broad ranker learnt them.
    for name in ("count", "pop_pct", "recent_pct", "trend"):
        np.testing.assert_array_equal(getattr(heavy, name), getattr(plain, name), err_msg=name)
    for name in ("cooc", "trans_fwd", "trans_bwd"):
        np.testing.assert_array_equal(
            getattr(heavy, name).toarray(), getattr(plain, name).toarray(), err_msg=name
        )


def test_weights_of_one_give_exactly_the_unweighted_statistics():
    plain = BehaviourStats.build(_weighted(None))
    ones = BehaviourStats.build(_weighted([1.0] * 6))
    np.testing.assert_array_equal(plain.popular, plain.recent_pct + plain.pop_pct)
    for name in ("count", "pop_pct", "recent_pct", "trend", "first_seen_pct", "popular"):
        np.testing.assert_array_equal(getattr(ones, name), getattr(plain, name), err_msg=name)
    for name in ("cooc", "trans_fwd", "trans_bwd"):
        np.testing.assert_array_equal(
            getattr(ones, name).toarray(), getattr(plain, name).toarray(), err_msg=name
        )


def test_a_weight_of_zero_counts_nothing_in_popularity():
    zero = BehaviourStats.build(_weighted([1, 1, 0, 1, 1, 1]))
    assert zero.popular[2] == 0  # as if nobody had taken it


def test_popularity_without_some_customers_takes_out_their_weight():
    from rectransfer.prepared.stats import popularity_without

    histories = _weighted([1, 1, 255, 3, 1, 1])
    full = BehaviourStats.build(histories)
    nobody, without = popularity_without(histories, [np.array([], dtype=np.int64), np.array([1])])
    assert np.allclose(nobody, full.popular)
    assert without[2] == 0  # customer 1's 255 units were all of item 2


def test_truncate_and_select_carry_the_weights():
    h = _weighted([1, 2, 3, 4, 5, 6])
    truncated, selected = h.truncate(1), h.select(np.array([1, 0]))
    assert truncated.weights is not None and truncated.weights.tolist() == [1, 3]
    assert selected.weights is not None and selected.weights.tolist() == [3, 4, 1, 2]
    assert _weighted(None).truncate(1).weights is None


def _lexsort_reference(matrix: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    """strongest_per_row as first written: one three-key lexsort over every entry."""
    matrix = sp.csr_matrix(matrix)
    matrix.sum_duplicates()
    lengths = np.diff(matrix.indptr)
    row = np.repeat(np.arange(matrix.shape[0]), lengths)
    order = np.lexsort((matrix.indices, -matrix.data, row))
    starts = np.repeat(matrix.indptr[:-1], lengths)
    kept = order[np.arange(len(order)) - starts < keep]
    return sp.csr_matrix((matrix.data[kept], (row[kept], matrix.indices[kept])), shape=matrix.shape)


def test_strongest_per_row_in_blocks_matches_one_lexsort_over_all_entries(monkeypatch):
    rng = np.random.default_rng(5)
    dense = (rng.integers(0, 6, size=(300, 200)) / 7).astype(np.float32)  # many ties
    dense[rng.random(dense.shape) < 0.4] = 0
    signed = dense.copy()
    signed[3, :50] = -signed[3, :50]  # negative values take the lexsort path
    # stored zeros of both signs, which lexsort counts as equal (ties to the lower column)
    zeros = sp.csr_matrix(
        (np.array([0.0, -0.0, 0.0, -0.0, 1.0], np.float32), [4, 1, 2, 0, 3], [0, 5]), shape=(1, 5)
    )
    monkeypatch.setattr(stats_module, "TRIM_ENTRIES_PER_BLOCK", 500)  # many blocks
    for matrix in (sp.csr_matrix(dense), sp.csr_matrix(signed), zeros):
        for keep in (1, 2, 7, 100):
            got = strongest_per_row(matrix, keep)
            want = _lexsort_reference(matrix, keep)
            np.testing.assert_array_equal(got.indptr, want.indptr)
            np.testing.assert_array_equal(got.indices, want.indices)
            np.testing.assert_array_equal(got.data, want.data)


def test_first_seen_is_the_quantile_of_each_items_earliest_event():
    rng = np.random.default_rng(2)
    lengths = rng.integers(0, 6, 200)
    n_items = 60  # some never seen
    items = rng.integers(0, n_items - 5, int(lengths.sum())).astype(np.int32)
    times = rng.integers(0, 50, len(items)).astype(np.int64)  # many equal times
    h = Histories(np.concatenate([[0], np.cumsum(lengths)]), items, times, n_items)
    # the former computation: every event ranked in time, the earliest per item kept
    unique, inverse = np.unique(times, return_inverse=True)
    rank = (inverse / max(len(unique) - 1, 1)).astype(np.float32)
    expected = np.full(n_items, np.nan, dtype=np.float32)
    order = np.argsort(rank, kind="stable")[::-1]
    expected[items[order]] = rank[order]
    np.testing.assert_array_equal(stats_module._first_seen(h), expected)


def test_cooccurrence_is_normalised_exactly_as_by_diagonal_products():
    h = Histories(
        np.array([0, 4, 7, 9]),
        np.array([0, 1, 2, 1, 3, 1, 0, 2, 4], dtype=np.int32),
        np.arange(9, dtype=np.int64),
        5,
    )
    count = np.bincount(h.items, minlength=5).astype(np.float32)
    user = np.repeat(np.arange(3), h.lengths)
    pairs = stats_module._pair_matrix(h.items, user, 5, window=10, symmetric=True)
    diag = sp.diags(1.0 / np.sqrt(np.maximum(count, 1.0)))
    expected = sp.csr_matrix(diag @ pairs @ diag)
    stats_module._cosine_normalise(pairs, count)
    np.testing.assert_array_equal(pairs.toarray(), expected.toarray())
