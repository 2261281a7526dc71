"""The text prior: transitions between regions of the shared text space, learnt on sources."""

import numpy as np
import pytest

from rectransfer.prepared import text_prior
from rectransfer.prepared.catalogue import Catalogue
from rectransfer.prepared.stats import BehaviourStats
from rectransfer.prepared.text_prior import (
    PriorCounts,
    TextPrior,
    codebook_sample,
    fit_codebook,
    log_lift,
    pair_counts,
)
from rectransfer.ranking.candidates import CandidateConfig
from rectransfer.ranking.features import _F, Queries, candidate_rows
from tests.conftest import histories_of

N_PER_KIND = 6  # items per kind; three kinds far apart in text: tents, sleeping bags, mugs


def _catalogue(seed: int) -> Catalogue:
    """Three kinds of N_PER_KIND items each, in the same regions of text space at every shop."""
    rng = np.random.default_rng(seed)
    centres = np.eye(8, dtype=np.float32)[:3] * 5
    vectors = np.repeat(centres, N_PER_KIND, axis=0) + rng.normal(
        0, 0.05, (3 * N_PER_KIND, 8)
    ).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    n = len(vectors)
    return Catalogue(
        vectors=vectors,
        category=np.full(n, -1, np.int32),
        brand=np.full(n, -1, np.int32),
        log_price=np.full(n, np.nan, np.float32),
        in_stock=np.ones(n, bool),
    )


def _tent_then_bag(seed: int, n: int = 30) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [[int(rng.integers(0, 6)), int(rng.integers(6, 12))] for _ in range(n)]


def _kind_centroids() -> np.ndarray:
    return np.eye(8, dtype=np.float32)[:3]


def test_pairs_are_consecutive_items_of_one_customer_counted_both_ways():
    histories = histories_of([[0, 1, 2], [2], [1, 0]], n_items=3)
    clusters = np.array([0, 1, 1], np.int32)
    counts = pair_counts(histories, clusters, k=2)
    # pairs (0,1), (1,2), (1,0); never (2 -> 1) across the second and third customers
    assert counts.tolist() == [[0.0, 2.0], [2.0, 2.0]]


def test_an_unseen_cluster_has_no_lift_and_a_frequent_pair_a_positive_one():
    counts = np.array([[0.0, 40.0, 0.0], [40.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    lift = log_lift(counts)
    assert lift[0, 1] > 0 > lift[0, 0]
    assert np.allclose(lift[2], 0.0)  # nothing left cluster 2: the overall distribution


def test_products_fall_into_their_nearest_centroid():
    prior = TextPrior(_kind_centroids(), np.zeros((3, 3), np.float32))
    catalogue = _catalogue(seed=5)
    assert prior.assign(catalogue.vectors).tolist() == [i // N_PER_KIND for i in range(18)]
    assert prior.clusters(catalogue) is prior.clusters(catalogue)  # once per catalogue


def test_the_codebook_takes_a_capped_seeded_sample_of_every_source(monkeypatch):
    monkeypatch.setattr(text_prior, "CODEBOOK_ITEMS_PER_SOURCE", 20)
    rng = np.random.default_rng(0)
    big = rng.normal(size=(500, 4)).astype(np.float32) + 10  # one region, many products
    small = rng.normal(size=(20, 4)).astype(np.float32) - 10  # another, few products
    samples = [codebook_sample(big, index=0), codebook_sample(small, index=1)]
    assert [len(s) for s in samples] == [20, 20]
    assert np.array_equal(samples[0], codebook_sample(big, index=0))  # seeded by position
    assert not np.array_equal(samples[0], codebook_sample(big, index=1))
    centroids = fit_codebook(samples, k=4)
    assert centroids.shape == (4, 4)
    # capped at 20 each, the small source is not swamped: some centroid sits in its region
    assert (centroids.mean(axis=1) < 0).sum() >= 1
    assert np.array_equal(centroids, fit_codebook(samples, k=4))
    assert fit_codebook([small[:3]], k=8).shape == (3, 4)  # never more clusters than products


def test_leaving_a_source_out_drops_exactly_its_transitions():
    counts = PriorCounts(_kind_centroids())
    camping, kitchen = _catalogue(seed=1), _catalogue(seed=2)
    counts.add("camping", camping, histories_of(_tent_then_bag(1), camping.n_items))
    counts.add("kitchen", kitchen, histories_of([[12, 13], [14, 15]], kitchen.n_items))
    without_camping = counts.leaving_out("camping")
    assert np.array_equal(without_camping.lift, log_lift(counts.counts["kitchen"]))
    assert without_camping.lift[0, 1] == 0.0  # tents and bags were only seen at camping
    everything = counts.leaving_out(None)
    assert everything.lift[0, 1] > 0
    assert everything.digest != without_camping.digest


def test_a_shop_without_pairs_of_its_own_inherits_what_follows_what():
    counts = PriorCounts(_kind_centroids())
    source = _catalogue(seed=1)
    counts.add("camping", source, histories_of(_tent_then_bag(1), source.n_items))
    prior = counts.leaving_out(None)
    # a new shop with other products of the same kinds; its customers bought one tent each
    shop = _catalogue(seed=3)
    context = histories_of([[t] for t in range(6)], shop.n_items)
    stats = BehaviourStats.build(context)  # no transitions at all
    queries = Queries(context=context, text_vectors=np.zeros((6, 8), np.float32))
    config = CandidateConfig(text_last=18, text_recent=18)
    rows = candidate_rows(shop, stats, queries, config=config, prior=prior)
    values = rows.features[:, _F["trans_prior"]]
    bag = (rows.item >= 6) & (rows.item < 12)
    assert np.isfinite(values).all()
    assert values[bag].min() > values[~bag].max()
    assert np.allclose(rows.features[:, _F["trans_cluster"]], 0.0)  # the shop knows nothing
    without = candidate_rows(shop, stats, queries, config=config)
    assert np.isnan(without.features[:, _F["trans_prior"]]).all()  # as for the shop alone
    others = [j for j in range(rows.features.shape[1]) if j != _F["trans_prior"]]
    assert np.array_equal(rows.features[:, others], without.features[:, others], equal_nan=True)


def test_the_digest_follows_the_arrays():
    lift = np.zeros((3, 3), np.float32)
    prior = TextPrior(_kind_centroids(), lift)
    assert prior.digest == TextPrior(_kind_centroids().copy(), lift.copy()).digest
    changed = lift.copy()
    changed[0, 1] = 1.0
    assert prior.digest != TextPrior(_kind_centroids(), changed).digest
    assert prior.info() == {"clusters": 3, "sha256": prior.digest}


@pytest.mark.parametrize("k", [1, 2])
def test_fewer_centroids_than_kinds_still_assign_every_product(k):
    prior = TextPrior(_kind_centroids()[:k], np.zeros((k, k), np.float32))
    assert set(prior.assign(_catalogue(seed=4).vectors).tolist()) <= set(range(k))
