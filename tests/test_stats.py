import numpy as np

from rectransfer.histories import Histories
from rectransfer.stats import BehaviourStats


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
