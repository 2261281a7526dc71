import numpy as np
import pytest

from rectransfer.prepared.prepare import prepare
from rectransfer.prepared.stats import BehaviourStats
from rectransfer.ranking import candidates, features
from rectransfer.ranking.candidates import CandidateConfig
from rectransfer.ranking.features import FEATURE_NAMES, Queries, candidate_rows
from tests.conftest import make_shop


@pytest.fixture(scope="module")
def prepared(encoder):
    return prepare(make_shop("feat", seed=3, n_users=60), encoder)


def _rows(prepared, config=None, **kwargs):
    histories = prepared.index.histories
    context = histories.truncate(1)
    queries = Queries(context=context, text_vectors=prepared.user_vectors, **kwargs)
    stats = BehaviourStats.build(context)
    config = config or CandidateConfig()
    return context, candidate_rows(prepared.catalogue, stats, queries, config=config)


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
    monkeypatch.setattr(candidates, "BLOCK_BUDGET_BYTES", 1)  # forces the smallest chunks
    assert candidates.chunk_size(prepared.catalogue.n_items) == 8
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


def _dense_z(rows: np.ndarray) -> np.ndarray:
    return (rows - rows.mean(axis=1, keepdims=True)) / rows.std(axis=1, keepdims=True)


def test_text_features_equal_whole_catalogue_formulas(prepared):
    """Per-candidate similarities and catalogue-wide z-scores match the dense computation."""
    context, rows = _rows(prepared)
    vectors = prepared.catalogue.vectors.astype(np.float64)
    dense = vectors @ vectors.T  # item x item similarity, the brute-force reference
    col = {name: FEATURE_NAMES.index(name) for name in FEATURE_NAMES}
    checked = 0
    for q in np.unique(rows.query)[:15]:
        seq = context.sequence(q)
        if len(seq) == 0:
            continue
        mine = rows.query == q
        items = rows.item[mine]
        x = rows.features[mine]
        last = seq[-1]
        recent = seq[-features.RECENT_ITEMS :]
        np.testing.assert_allclose(x[:, col["sim_last"]], dense[last, items], atol=1e-5)
        np.testing.assert_allclose(
            x[:, col["sim_last_z"]], _dense_z(dense[[last]])[0, items], atol=1e-3
        )
        np.testing.assert_allclose(
            x[:, col["sim_recent_max"]], dense[recent][:, items].max(axis=0), atol=1e-5
        )
        np.testing.assert_allclose(
            x[:, col["sim_recent_zmax"]], _dense_z(dense[recent])[:, items].max(axis=0), atol=1e-3
        )
        mean = vectors[seq].mean(axis=0)
        mean /= np.linalg.norm(mean)
        hist_row = vectors @ mean
        np.testing.assert_allclose(x[:, col["sim_hist_mean"]], hist_row[items], atol=1e-5)
        np.testing.assert_allclose(
            x[:, col["sim_hist_mean_z"]], _dense_z(hist_row[None])[0, items], atol=1e-3
        )
        checked += 1
    assert checked >= 10


def test_candidate_lists_hold_each_signals_exact_top_items(prepared):
    """The top items of the last-item text row and of co-occurrence are all candidates."""
    config = CandidateConfig(
        text_last=8, text_recent=0, text_user=0, cooc=6, transitions=0, popular=0
    )
    context, rows = _rows(prepared, config)
    vectors = prepared.catalogue.vectors
    stats = BehaviourStats.build(context)
    for q in np.unique(rows.query)[:15]:
        seq = context.sequence(q)
        proposed = set(rows.item[rows.query == q].tolist())
        open_items = np.setdiff1d(np.arange(prepared.catalogue.n_items), seq)
        sims = vectors[open_items] @ vectors[seq[-1]]
        order = np.lexsort((open_items, -sims))
        # every item strictly better than the n-th is in (ties at the boundary may go either way)
        nth = sims[order[config.text_last - 1]]
        assert set(open_items[sims > nth + 1e-6].tolist()) <= proposed
        window = seq[::-1][: features.COOC_HISTORY]  # newest first, decaying weights
        weights = features.COOC_DECAY ** np.arange(len(window))
        cooc = (weights @ stats.cooc[window].toarray())[open_items]
        if (cooc > 0).any():
            cooc_order = np.lexsort((open_items, -cooc))
            nth = cooc[cooc_order[min(config.cooc, len(cooc)) - 1]]
            assert set(open_items[(cooc > nth + 1e-6) & (cooc > 0)].tolist()) <= proposed
        assert len(proposed) <= config.text_last + config.cooc


def test_neighbour_lists_are_sorted_and_skip_items_not_allowed(prepared):
    vectors = prepared.catalogue.vectors
    allowed = np.ones(len(vectors), dtype=bool)
    allowed[::3] = False
    lists = candidates.TextNeighbours.build(vectors, allowed, width=10)
    assert allowed[lists.items[lists.items >= 0]].all()
    assert (np.diff(lists.sims, axis=1) <= 1e-7).all()
    dense = vectors @ vectors[allowed].T
    np.testing.assert_allclose(lists.sims[:, 0], dense.max(axis=1), atol=1e-6)


def test_one_catalogue_building_its_neighbours_does_not_hold_up_another(encoder, monkeypatch):
    import threading

    slow = prepare(make_shop("slow", seed=4, n_users=20), encoder).catalogue
    quick = prepare(make_shop("quick", seed=5, n_users=20), encoder).catalogue
    started, release = threading.Event(), threading.Event()
    build = candidates.TextNeighbours.build

    def blocking_build(vectors, allowed, width):
        if vectors is slow.vectors:
            started.set()
            release.wait(30)
        return build(vectors, allowed, width)

    monkeypatch.setattr(candidates.TextNeighbours, "build", staticmethod(blocking_build))
    config = CandidateConfig()
    waiting = threading.Thread(target=candidates.text_neighbours, args=(slow, None, config))
    waiting.start()
    try:
        assert started.wait(30)
        done = []
        other = threading.Thread(
            target=lambda: done.append(candidates.text_neighbours(quick, None, config))
        )
        other.start()
        other.join(10)
        assert done, "the second catalogue waited for the first one's build"
    finally:
        release.set()
        waiting.join(30)
    assert candidates.text_neighbours(slow, None, config).items.shape[0] == slow.n_items


def test_row_moments_give_every_items_similarity_spread_over_the_catalogue():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    moments = candidates.RowMoments.of(vectors)
    sims = vectors.astype(np.float64) @ vectors.T.astype(np.float64)
    np.testing.assert_allclose(moments.item_mean, sims.mean(axis=1), atol=1e-9)
    np.testing.assert_allclose(moments.item_std, sims.std(axis=1), atol=1e-7)
    query = rng.normal(size=(4, 16))
    mean, std = moments.spread(query)
    query_sims = query @ vectors.T.astype(np.float64)
    np.testing.assert_allclose(mean, query_sims.mean(axis=1), atol=1e-9)
    np.testing.assert_allclose(std, query_sims.std(axis=1), atol=1e-7)
