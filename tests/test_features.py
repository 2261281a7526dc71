import numpy as np
import pytest

from rectransfer import features
from rectransfer.features import FEATURE_NAMES, CandidateConfig, Queries, candidate_rows
from rectransfer.prepare import prepare
from rectransfer.stats import BehaviourStats

from .conftest import make_shop


@pytest.fixture(scope="module")
def prepared(encoder):
    return prepare(make_shop("feat", seed=3, n_users=60), encoder)


def _rows(prepared, **kwargs):
    histories = prepared.index.histories
    context = histories.truncate(1)
    queries = Queries(context=context, text_vectors=prepared.user_vectors, **kwargs)
    stats = BehaviourStats.build(context)
    return context, candidate_rows(prepared.catalogue, stats, queries, config=CandidateConfig())


def test_candidates_exclude_the_context_and_have_every_feature(prepared):
    context, rows = _rows(prepared)
    assert rows.features.shape == (rows.n_rows, len(FEATURE_NAMES))
    for q in np.unique(rows.query)[:20]:
        own = set(context.sequence(q).tolist())
        proposed = rows.item[rows.query == q]
        assert not own & set(proposed.tolist())
        assert len(proposed) == len(set(proposed.tolist()))
    # text similarity to the last item is a cosine
    sim = rows.features[:, FEATURE_NAMES.index("sim_last")]
    assert np.nanmax(sim) <= 1.0 + 1e-5 and np.nanmin(sim) >= -1.0 - 1e-5


def test_planted_next_item_is_a_candidate_with_transition_evidence(prepared):
    histories = prepared.index.histories
    targets = histories.last(0)
    _, rows = _rows(prepared, targets=targets)
    found = rows.label == 1
    # the next item in a chain is found for nearly every customer
    assert len(np.unique(rows.query[found])) >= 0.9 * len(np.unique(rows.query))
    fwd = rows.features[:, FEATURE_NAMES.index("trans_fwd")]
    assert np.nanmean(fwd[found]) > 3 * np.nanmean(fwd[~found])


def test_chunked_and_unchunked_rows_are_identical(prepared, monkeypatch):
    _, whole = _rows(prepared)
    monkeypatch.setattr(features, "BLOCK_BUDGET_BYTES", 1)  # forces the smallest chunks
    assert features.chunk_size(prepared.catalogue.n_items) == 8
    _, chunked = _rows(prepared)
    np.testing.assert_array_equal(whole.query, chunked.query)
    np.testing.assert_array_equal(whole.item, chunked.item)
    np.testing.assert_allclose(whole.features, chunked.features, rtol=1e-4, atol=1e-5)


def test_allowed_mask_is_respected(prepared):
    histories = prepared.index.histories
    allowed = np.ones(prepared.catalogue.n_items, dtype=bool)
    allowed[::2] = False
    queries = Queries(context=histories, text_vectors=prepared.user_vectors)
    rows = candidate_rows(
        prepared.catalogue,
        BehaviourStats.build(histories),
        queries,
        config=CandidateConfig(),
        allowed=allowed,
    )
    assert rows.n_rows > 0
    assert allowed[rows.item].all()
