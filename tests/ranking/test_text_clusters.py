"""Transitions between text clusters: the small shop's pooled what-follows-what."""

import numpy as np
import pytest

from rectransfer.prepared.catalogue import Catalogue
from rectransfer.prepared.stats import BehaviourStats
from rectransfer.ranking.candidates import CandidateConfig
from rectransfer.ranking.features import _F, Queries, candidate_rows
from rectransfer.ranking.text_clusters import (
    cluster_count,
    cluster_lift,
    recent_cluster_lift,
    text_clusters,
)
from tests.conftest import histories_of

N_PER_KIND = 6  # items per kind; three kinds far apart in text: tents, sleeping bags, mugs


def _catalogue(n_kinds: int = 3, seed: int = 0) -> Catalogue:
    rng = np.random.default_rng(seed)
    centres = np.eye(8, dtype=np.float32)[:n_kinds] * 5
    vectors = np.repeat(centres, N_PER_KIND, axis=0) + rng.normal(
        0, 0.05, (n_kinds * N_PER_KIND, 8)
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


def _kind(item: int) -> int:
    return item // N_PER_KIND


def test_items_of_one_kind_share_a_cluster_and_the_clustering_is_seeded():
    catalogue = _catalogue(3)
    # 18 items: round(sqrt(18)) = 4 clusters for three kinds; a kind is never split across two
    # clusters that also hold another kind
    clusters = text_clusters(catalogue)
    assert len(np.unique(clusters)) == cluster_count(catalogue.n_items)
    for kind in range(3):
        own = set(clusters[kind * N_PER_KIND : (kind + 1) * N_PER_KIND].tolist())
        others = set(clusters[np.array([_kind(i) != kind for i in range(18)])].tolist())
        assert not own & others
    assert np.array_equal(clusters, text_clusters(_catalogue(3)))  # a fresh catalogue: same


def test_a_kind_always_followed_by_another_gets_the_highest_lift():
    catalogue = _catalogue(3)
    rng = np.random.default_rng(1)
    # every customer buys a tent, then a sleeping bag; mugs come alone
    sequences = [[int(rng.integers(0, 6)), int(rng.integers(6, 12))] for _ in range(30)] + [
        [int(rng.integers(12, 18))] * 1 for _ in range(10)
    ]
    stats = BehaviourStats.build(histories_of(sequences, catalogue.n_items))
    clusters = text_clusters(catalogue)
    lift = cluster_lift(stats, clusters)
    tent, bag, mug = clusters[0], clusters[6], clusters[12]
    assert lift[tent, bag] > 0 > lift[tent, mug]
    assert lift[bag, tent] > lift[bag, mug]  # both directions count
    assert cluster_lift(stats, clusters) is lift  # computed once per statistics and clustering


def test_the_feature_is_the_weighted_mean_over_recent_items_and_nan_without_history():
    lift = np.array([[1.0, -1.0], [0.5, 2.0]], np.float32)
    clusters = np.array([0, 0, 1, 1], np.int32)
    recent = np.array([[2, 0, -1], [-1, -1, -1]])  # newest first
    weights = np.array([1.0, 0.5, 0.25])
    cand_row = np.array([0, 0, 1])
    cand = np.array([1, 3, 1])
    got = recent_cluster_lift(lift, clusters, recent, weights, cand_row, cand)
    # candidate 1 (cluster 0) after items 2 (cluster 1) and 0 (cluster 0): (1*.5 + .5*1) / 1.5
    assert got[0] == pytest.approx((1.0 * 0.5 + 0.5 * 1.0) / 1.5)
    assert got[1] == pytest.approx((1.0 * 2.0 + 0.5 * -1.0) / 1.5)
    assert np.isnan(got[2])


def test_candidate_rows_carry_the_feature(encoder):
    catalogue = _catalogue(3)
    rng = np.random.default_rng(2)
    sequences = [[int(rng.integers(0, 6)), int(rng.integers(6, 12))] for _ in range(30)]
    context = histories_of(sequences, catalogue.n_items).truncate(1)
    stats = BehaviourStats.build(histories_of(sequences, catalogue.n_items))
    queries = Queries(context=context, text_vectors=np.zeros((30, 8), np.float32))
    rows = candidate_rows(catalogue, stats, queries, config=CandidateConfig())
    values = rows.features[:, _F["trans_cluster"]]
    bag = np.array([_kind(i) == 1 for i in rows.item])
    assert np.isfinite(values).all()
    assert values[bag].min() > values[~bag].max()  # after a tent, bags lift most
